// SPDX-License-Identifier: Apache-2.0
// The sync codec against byte vectors written by hand from the kernel's structs
// (net/netfilter/ipvs/ip_vs_sync.c: ip_vs_sync_mesg, ip_vs_sync_v4/v6, ip_vs_sync_mesg_v0,
// ip_vs_sync_conn_v0, ip_vs_sync_conn_options), never from the encoder itself.
#include "core/sync/sync_codec.h"

#include <cstdint>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lb {
namespace {

using Bytes = std::vector<uint8_t>;

IpAddr ip(const char* s) {
  return *IpAddr::parse(s);
}

// Decodes and returns the delivered entries, with string views copied out.
struct Decoded {
  SyncConn conn;
  std::string pe_data, pe_name;
};

std::vector<Decoded> decode(const Bytes& b, SyncDecodeCounters& c, uint8_t syncid = 0) {
  std::vector<Decoded> out;
  decodeSyncMessage(
      absl::MakeConstSpan(b), syncid,
      [&](const SyncConn& sc) {
        out.push_back({sc, std::string(sc.pe_data), std::string(sc.pe_name)});
      },
      c);
  return out;
}

Bytes encode(const std::vector<SyncConn>& conns, uint8_t syncid, int version = 1) {
  Bytes buf(65536);
  SyncMessageBuilder b(absl::MakeSpan(buf), 65507, syncid, version);
  for (const SyncConn& c : conns)
    EXPECT_EQ(b.add(c), SyncMessageBuilder::AddResult::kAdded);
  auto s = b.bytes();
  return Bytes(s.begin(), s.end());
}

// A TCP conn, DR, INACTIVE | NOOUTPUT, ESTABLISHED: 198.18.0.1:12345 -> 198.18.100.1:80 ->
// 198.19.0.2:8080, timeout 900 s.
SyncConn tcpV4() {
  SyncConn c;
  c.af = Af::kInet;
  c.protocol = 6;
  c.flags = 0x0183;
  c.state = 1;
  c.cport = 12345;
  c.vport = 80;
  c.dport = 8080;
  c.timeout_s = 900;
  c.caddr = ip("198.18.0.1");
  c.vaddr = ip("198.18.100.1");
  c.daddr = ip("198.19.0.2");
  return c;
}

// struct ip_vs_sync_mesg (8) + struct ip_vs_sync_v4 (36).
const Bytes kV1Tcp4 = {
    0x00, 0x07, 0x00, 0x2c,  // reserved, syncid 7, size 44
    0x01, 0x01, 0x00, 0x00,  // nr_conns 1, version 1, spare
    0x00, 0x06, 0x00, 0x24,  // type 0 (IPv4), IPPROTO_TCP, ver_size: version 0, size 36
    0x00, 0x00, 0x01, 0x83,  // flags: INACTIVE | NOOUTPUT | DROUTE
    0x00, 0x01, 0x30, 0x39,  // state ESTABLISHED, cport 12345
    0x00, 0x50, 0x1f, 0x90,  // vport 80, dport 8080
    0x00, 0x00, 0x00, 0x00,  // fwmark
    0x00, 0x00, 0x03, 0x84,  // timeout 900 s
    0xc6, 0x12, 0x00, 0x01,  // caddr 198.18.0.1
    0xc6, 0x12, 0x64, 0x01,  // vaddr 198.18.100.1
    0xc6, 0x13, 0x00, 0x02,  // daddr 198.19.0.2
};

TEST(SyncCodecTest, EncodesV1Ipv4ByteExact) {
  EXPECT_EQ(encode({tcpV4()}, 7), kV1Tcp4);
}

TEST(SyncCodecTest, DecodesV1Ipv4EveryField) {
  SyncDecodeCounters c;
  auto got = decode(kV1Tcp4, c);
  ASSERT_EQ(got.size(), 1u);
  const SyncConn& s = got[0].conn;
  EXPECT_EQ(s.af, Af::kInet);
  EXPECT_EQ(s.protocol, 6);
  EXPECT_EQ(s.flags, 0x0183u);
  EXPECT_EQ(s.state, 1);
  EXPECT_EQ(s.cport, 12345);
  EXPECT_EQ(s.vport, 80);
  EXPECT_EQ(s.dport, 8080);
  EXPECT_EQ(s.fwmark, 0u);
  EXPECT_EQ(s.timeout_s, 900u);
  EXPECT_EQ(s.caddr, ip("198.18.0.1"));
  EXPECT_EQ(s.vaddr, ip("198.18.100.1"));
  EXPECT_EQ(s.daddr, ip("198.19.0.2"));
  EXPECT_FALSE(s.has_seq);
  EXPECT_FALSE(s.has_lbd);
  EXPECT_EQ(c.messages, 1u);
  EXPECT_EQ(c.messages_v0, 0u);
  EXPECT_EQ(c.conns, 1u);
}

// IPv6, UDP, fwmark, with IPVS_OPT_SEQ_DATA: 72 + 2 + 24 = 98 B.
SyncConn udpV6Seq() {
  SyncConn c;
  c.af = Af::kInet6;
  c.protocol = 17;
  c.flags = 0x0600 | 0x0100;  // IN_SEQ | OUT_SEQ | INACTIVE, MASQ
  c.state = 0;
  c.cport = 0x1234;
  c.vport = 53;
  c.dport = 5353;
  c.fwmark = 0x01020304;
  c.timeout_s = 300;
  c.caddr = ip("2001:2::1");
  c.vaddr = ip("2001:2:0:64::1");
  c.daddr = ip("2001:2:0:1::2");
  c.has_seq = true;
  c.in_seq = {0x11111111, 0x22222222, 0x33333333};
  c.out_seq = {0x44444444, 0x55555555, 0x66666666};
  return c;
}

Bytes v6SeqBytes() {
  Bytes b = {0x00, 0x2a, 0x00, 0x6a,   // reserved, syncid 42, size 106
             0x01, 0x01, 0x00, 0x00,   // nr_conns 1, version 1
             0x01, 0x11, 0x00, 0x62,   // type STYPE_F_INET6, UDP, size 98
             0x00, 0x00, 0x07, 0x00,   // flags
             0x00, 0x00, 0x12, 0x34,   // state NORMAL, cport
             0x00, 0x35, 0x14, 0xe9,   // vport 53, dport 5353
             0x01, 0x02, 0x03, 0x04,   // fwmark
             0x00, 0x00, 0x01, 0x2c};  // timeout 300
  const uint8_t caddr[16] = {0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const uint8_t vaddr[16] = {0x20, 0x01, 0, 2, 0, 0, 0, 0x64, 0, 0, 0, 0, 0, 0, 0, 1};
  const uint8_t daddr[16] = {0x20, 0x01, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2};
  b.insert(b.end(), caddr, caddr + 16);
  b.insert(b.end(), vaddr, vaddr + 16);
  b.insert(b.end(), daddr, daddr + 16);
  const Bytes seq = {0x01, 0x18,  // IPVS_OPT_SEQ_DATA, 24
                     0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x22, 0x22, 0x33, 0x33, 0x33, 0x33,
                     0x44, 0x44, 0x44, 0x44, 0x55, 0x55, 0x55, 0x55, 0x66, 0x66, 0x66, 0x66};
  b.insert(b.end(), seq.begin(), seq.end());
  return b;
}

TEST(SyncCodecTest, EncodesV1Ipv6WithSeqOptionByteExact) {
  EXPECT_EQ(encode({udpV6Seq()}, 42), v6SeqBytes());
}

TEST(SyncCodecTest, DecodesV1Ipv6WithSeqOption) {
  SyncDecodeCounters c;
  auto got = decode(v6SeqBytes(), c);
  ASSERT_EQ(got.size(), 1u);
  const SyncConn& s = got[0].conn;
  const SyncConn want = udpV6Seq();
  EXPECT_EQ(s.af, Af::kInet6);
  EXPECT_EQ(s.protocol, want.protocol);
  EXPECT_EQ(s.flags, want.flags);
  EXPECT_EQ(s.cport, want.cport);
  EXPECT_EQ(s.vport, want.vport);
  EXPECT_EQ(s.dport, want.dport);
  EXPECT_EQ(s.fwmark, want.fwmark);
  EXPECT_EQ(s.timeout_s, want.timeout_s);
  EXPECT_EQ(s.caddr, want.caddr);
  EXPECT_EQ(s.vaddr, want.vaddr);
  EXPECT_EQ(s.daddr, want.daddr);
  ASSERT_TRUE(s.has_seq);
  EXPECT_EQ(s.in_seq, want.in_seq);
  EXPECT_EQ(s.out_seq, want.out_seq);
}

// A template with PE data and name (ip_vs_pe_sip), followed by a second entry: the first entry's
// size (36 + 2+3 + 2+3 = 46) is not padded in ver_size, but the next starts at 8 + 48.
TEST(SyncCodecTest, PeOptionsAndPaddingBetweenEntries) {
  SyncConn t = tcpV4();
  t.protocol = 17;
  t.flags = 0x1000 | 0x0100;  // TEMPLATE | INACTIVE
  t.state = 0;
  t.cport = 0;
  t.pe_data = "abc";
  t.pe_name = "sip";
  Bytes want = {0x00, 0x01, 0x00, 0x5c,  // size 8 + 48 + 36 = 92
                0x02, 0x01, 0x00, 0x00,  // nr_conns 2
                0x00, 0x11, 0x00, 0x2e,  // UDP, size 46
                0x00, 0x00, 0x11, 0x00,  // TEMPLATE | INACTIVE
                0x00, 0x00, 0x00, 0x00,  // state 0, cport 0
                0x00, 0x50, 0x1f, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x03, 0x84, 0xc6, 0x12, 0x00, 0x01, 0xc6, 0x12, 0x64, 0x01,
                0xc6, 0x13, 0x00, 0x02, 0x02, 0x03, 'a',  'b',  'c',  // IPVS_OPT_PE_DATA
                0x03, 0x03, 's',  'i',  'p',                          // IPVS_OPT_PE_NAME
                0x00, 0x00};                                          // padding to 48
  Bytes second(kV1Tcp4.begin() + 8, kV1Tcp4.end());
  want.insert(want.end(), second.begin(), second.end());
  EXPECT_EQ(encode({t, tcpV4()}, 1), want);

  SyncDecodeCounters c;
  auto got = decode(want, c);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].pe_data, "abc");
  EXPECT_EQ(got[0].pe_name, "sip");
  EXPECT_EQ(got[0].conn.flags, 0x1100u);
  EXPECT_EQ(got[1].conn.cport, 12345);
  EXPECT_TRUE(got[1].pe_data.empty());
}

// lbd's option 0x4C (bit 0x40: optional, so kernels skip it): flags, seq_delta, lport, 0,
// laddr.
TEST(SyncCodecTest, LbdOptionByteExactAndRoundTrip) {
  SyncConn c = tcpV4();
  c.flags = 0x0100;  // MASQ: full NAT has no kernel method bits
  c.has_lbd = true;
  c.lbd.flags = kSyncLbdFullNat | kSyncLbdSynproxy;
  c.lbd.seq_delta = 0xdeadbeef;
  c.lbd.laddr = ip("198.18.200.7");
  c.lbd.lport = 40000;
  Bytes b = encode({c}, 7);
  ASSERT_EQ(b.size(), 8u + 36 + 18);
  const Bytes opt(b.begin() + 44, b.end());
  EXPECT_EQ(opt, (Bytes{0x4c, 0x10, 0x00, 0x00, 0x00, 0x03, 0xde, 0xad, 0xbe, 0xef, 0x9c, 0x40,
                        0x00, 0x00, 0xc6, 0x12, 0xc8, 0x07}));
  EXPECT_EQ(b[11], 36 + 18);  // ver_size counts the option
  SyncDecodeCounters cnt;
  auto got = decode(b, cnt);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(got[0].conn.has_lbd);
  EXPECT_EQ(got[0].conn.lbd, c.lbd);

  // IPv6 local address: 28-byte option.
  SyncConn v6 = udpV6Seq();
  v6.has_lbd = true;
  v6.lbd.flags = kSyncLbdFullNat;
  v6.lbd.laddr = ip("2001:2:0:c8::7");
  v6.lbd.lport = 1024;
  Bytes b6 = encode({v6}, 7);
  got = decode(b6, cnt);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].conn.lbd, v6.lbd);
  EXPECT_EQ(got[0].conn.in_seq, v6.in_seq);
}

// An unknown option with IPVS_OPT_F_PARAM is skipped; without it the entry is skipped (retc
// 20) and the next entry still delivered.
TEST(SyncCodecTest, UnknownOptions) {
  Bytes b = kV1Tcp4;
  b[3] = 44 + 4 + 40;  // two entries, the first with a 4-byte option
  b[4] = 2;
  b[11] = 40;
  b.insert(b.end(), {0x45, 0x02, 0xaa, 0xbb});  // optional unknown (0x40 | 5)
  b.insert(b.end(), kV1Tcp4.begin() + 8, kV1Tcp4.end());
  b.insert(b.end(), {0x05, 0x02, 0xaa, 0xbb});  // mandatory unknown
  b[8 + 40 + 3] = 40;
  SyncDecodeCounters c;
  auto got = decode(b, c);
  EXPECT_EQ(got.size(), 1u);
  EXPECT_EQ(c.drop(SyncDropReason::kUnknownOption), 1u);
}

// struct ip_vs_sync_mesg_v0 + ip_vs_sync_conn_v0 (+ ip_vs_sync_conn_options in host order).
TEST(SyncCodecTest, V0ByteExactBothWays) {
  SyncConn c = tcpV4();
  c.timeout_s = 0;                       // v0 carries none
  Bytes want = {0x01, 0x07, 0x00, 0x1c,  // nr_conns 1, syncid 7, size 28
                0x00, 0x06, 0x30, 0x39,  // reserved, TCP, cport
                0x00, 0x50, 0x1f, 0x90,  // vport, dport
                0xc6, 0x12, 0x00, 0x01, 0xc6, 0x12, 0x64, 0x01,
                0xc6, 0x13, 0x00, 0x02, 0x01, 0x83, 0x00, 0x01};  // flags (16 bits), state
  EXPECT_EQ(encode({c}, 7, 0), want);
  SyncDecodeCounters cnt;
  auto got = decode(want, cnt);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(cnt.messages_v0, 1u);
  const SyncConn& s = got[0].conn;
  EXPECT_EQ(s.protocol, 6);
  EXPECT_EQ(s.flags, 0x0183u);
  EXPECT_EQ(s.state, 1);
  EXPECT_EQ(s.cport, 12345);
  EXPECT_EQ(s.vport, 80);
  EXPECT_EQ(s.dport, 8080);
  EXPECT_EQ(s.caddr, c.caddr);
  EXPECT_EQ(s.vaddr, c.vaddr);
  EXPECT_EQ(s.daddr, c.daddr);
  EXPECT_EQ(s.timeout_s, 0u);

  // With IN_SEQ: 24 more bytes, each u32 little-endian (the kernel's memcpy on x86).
  c.flags |= 0x0400;
  c.has_seq = true;
  c.in_seq = {1, 2, 3};
  c.out_seq = {0x01020304, 5, 6};
  Bytes w2 = want;
  w2[3] = 4 + 48;
  w2[24] = 0x05;
  const Bytes opts = {1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 3, 2, 1, 5, 0, 0, 0, 6, 0, 0, 0};
  w2.insert(w2.end(), opts.begin(), opts.end());
  EXPECT_EQ(encode({c}, 7, 0), w2);
  got = decode(w2, cnt);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].conn.has_seq);
  EXPECT_EQ(got[0].conn.in_seq, c.in_seq);
  EXPECT_EQ(got[0].conn.out_seq, c.out_seq);
}

TEST(SyncCodecTest, V0RefusesIpv6) {
  Bytes buf(1500);
  SyncMessageBuilder b(absl::MakeSpan(buf), 1472, 0, 0);
  EXPECT_EQ(b.add(udpV6Seq()), SyncMessageBuilder::AddResult::kUnencodable);
  EXPECT_TRUE(b.empty());
}

// Every field, through the encoder and the decoder, for both families and all options.
TEST(SyncCodecTest, RoundTripsEveryField) {
  for (Af af : {Af::kInet, Af::kInet6}) {
    SyncConn c;
    c.af = af;
    c.protocol = 132;
    c.flags = 0x0fbf;  // every wire bit below 0x1000 except HASHED
    c.state = 13;      // SCTP CLOSED
    c.cport = 1;
    c.vport = 65535;
    c.dport = 0x8001;
    c.fwmark = 0xfffffffe;
    c.timeout_s = 0x7fffffff;
    c.caddr = af == Af::kInet ? ip("198.18.1.2") : ip("2001:2::a");
    c.vaddr = af == Af::kInet ? ip("198.18.3.4") : ip("2001:2::b");
    c.daddr = af == Af::kInet ? ip("198.19.5.6") : ip("2001:2::c");
    c.has_seq = true;
    c.in_seq = {7, 8, 9};
    c.out_seq = {10, 11, 12};
    std::string pe(255, 'x');
    c.pe_data = pe;
    c.pe_name = "0123456789abcdef";
    c.has_lbd = true;
    c.lbd = {kSyncLbdFullNat, 99, af == Af::kInet ? ip("198.18.9.9") : ip("2001:2::9"), 2000};
    Bytes b = encode({c, c}, 200);
    SyncDecodeCounters cnt;
    auto got = decode(b, cnt, 200);
    ASSERT_EQ(got.size(), 2u);
    for (const Decoded& d : got) {
      const SyncConn& s = d.conn;
      EXPECT_EQ(s.af, c.af);
      EXPECT_EQ(s.protocol, c.protocol);
      EXPECT_EQ(s.flags, c.flags);
      EXPECT_EQ(s.state, c.state);
      EXPECT_EQ(s.cport, c.cport);
      EXPECT_EQ(s.vport, c.vport);
      EXPECT_EQ(s.dport, c.dport);
      EXPECT_EQ(s.fwmark, c.fwmark);
      EXPECT_EQ(s.timeout_s, c.timeout_s);
      EXPECT_EQ(s.caddr, c.caddr);
      EXPECT_EQ(s.vaddr, c.vaddr);
      EXPECT_EQ(s.daddr, c.daddr);
      EXPECT_EQ(s.in_seq, c.in_seq);
      EXPECT_EQ(s.out_seq, c.out_seq);
      EXPECT_EQ(d.pe_data, pe);
      EXPECT_EQ(d.pe_name, "0123456789abcdef");
      EXPECT_EQ(s.lbd, c.lbd);
    }
  }
}

// The wire flags never carry HASHED nor lbd's bits above 16 (they travel in the lbd option).
TEST(SyncCodecTest, EncoderMasksHashedAndLbdBits) {
  SyncConn c = tcpV4();
  c.flags = 0x0183 | kConnFHashed | kConnFFullNat | kSyncConnFNfct;
  Bytes b = encode({c}, 7);
  EXPECT_EQ(b, kV1Tcp4);
}

// --- Malformed and truncated input: each drop counted with its reason. ---

struct DropCase {
  const char* name;
  Bytes bytes;
  SyncDropReason reason;
  size_t delivered;
};

Bytes withSize(Bytes b) {
  b[2] = static_cast<uint8_t>(b.size() >> 8);
  b[3] = static_cast<uint8_t>(b.size());
  return b;
}

std::vector<DropCase> dropCases() {
  std::vector<DropCase> v;
  v.push_back({"too_short", {0x00, 0x07, 0x00}, SyncDropReason::kTooShort, 0});
  {
    Bytes b = kV1Tcp4;
    b[3] = 45;
    v.push_back({"bad_size", b, SyncDropReason::kBadSize, 0});
  }
  {
    // nr_conns 2 but only one entry: the second is truncated.
    Bytes b = kV1Tcp4;
    b[4] = 2;
    v.push_back({"conn_truncated", b, SyncDropReason::kConnTruncated, 1});
  }
  {
    Bytes b = kV1Tcp4;
    b[11] = 40;  // entry claims 40 bytes, 36 present
    v.push_back({"conn_overrun", b, SyncDropReason::kConnOverrun, 0});
  }
  {
    Bytes b = kV1Tcp4;
    b[10] = 0x10;  // ver_size version 1
    v.push_back({"conn_version", b, SyncDropReason::kConnVersion, 0});
  }
  {
    Bytes b = kV1Tcp4;
    b[8] = 0x02;  // type: neither 0 nor IPv6
    v.push_back({"bad_type", b, SyncDropReason::kBadType, 0});
  }
  {
    Bytes b = kV1Tcp4;
    b[8] = 0x01;  // IPv6 entry of 36 bytes: shorter than struct ip_vs_sync_v6
    v.push_back({"conn_short", b, SyncDropReason::kConnShort, 0});
  }
  {
    Bytes b = kV1Tcp4;
    b.push_back(0x01);  // one byte of option header
    b[11] = 37;
    v.push_back({"option_truncated", withSize(b), SyncDropReason::kOptionTruncated, 0});
  }
  {
    Bytes b = kV1Tcp4;
    b.insert(b.end(), {0x02, 0x00});  // length 0
    b[11] = 38;
    v.push_back({"option_length_zero", withSize(b), SyncDropReason::kOptionLength, 0});
  }
  {
    Bytes b = kV1Tcp4;
    b.insert(b.end(), {0x02, 0x05, 0x61});  // 5 bytes claimed, 1 present
    b[11] = 39;
    v.push_back({"option_length_past", withSize(b), SyncDropReason::kOptionLength, 0});
  }
  {
    Bytes b = kV1Tcp4;
    b.insert(b.end(), {0x01, 0x02, 0x00, 0x00});  // SEQ_DATA of 2 bytes
    b[11] = 40;
    v.push_back({"seq_option", withSize(b), SyncDropReason::kSeqOption, 0});
  }
  {
    Bytes b = kV1Tcp4;
    b.insert(b.end(), {0x02, 0x01, 0x61, 0x02, 0x01, 0x62});  // PE_DATA twice
    b[11] = 42;
    v.push_back({"pe_data_twice", withSize(b), SyncDropReason::kPeDataOption, 0});
  }
  {
    Bytes b = kV1Tcp4;
    b.push_back(0x03);
    b.push_back(17);  // PE_NAME of 17 > IP_VS_PENAME_MAXLEN
    b.insert(b.end(), 17, 'n');
    b[11] = 36 + 19;
    v.push_back({"pe_name_long", withSize(b), SyncDropReason::kPeNameOption, 0});
  }
  {
    Bytes b = kV1Tcp4;
    b.insert(b.end(), {0x4c, 0x02, 0x00, 0x00});  // lbd option of 2 bytes
    b[11] = 40;
    v.push_back({"lbd_option", withSize(b), SyncDropReason::kLbdOption, 0});
  }
  {
    Bytes b = kV1Tcp4;
    b.insert(b.end(), {0x02, 0x01, 0x61});  // PE data without a name
    b[11] = 39;
    v.push_back({"pe_without_name", withSize(b), SyncDropReason::kPeWithoutName, 0});
  }
  {
    Bytes b = kV1Tcp4;
    b[9] = 1;  // ICMP
    v.push_back({"bad_protocol", b, SyncDropReason::kBadProtocol, 0});
  }
  {
    Bytes b = kV1Tcp4;
    b[17] = 11;  // TCP state 11 = IP_VS_TCP_S_LAST
    v.push_back({"bad_state", b, SyncDropReason::kBadState, 0});
  }
  {
    Bytes b = kV1Tcp4;
    b[9] = 17;
    b[17] = 1;  // UDP has one state
    v.push_back({"bad_udp_state", b, SyncDropReason::kBadState, 0});
  }
  {
    Bytes b = {0x02, 0x07, 0x00, 0x1c, 0x00, 0x06, 0x30, 0x39, 0x00, 0x50, 0x1f, 0x90, 0xc6, 0x12,
               0x00, 0x01, 0xc6, 0x12, 0x64, 0x01, 0xc6, 0x13, 0x00, 0x02, 0x01, 0x83, 0x00, 0x01};
    v.push_back({"v0_conn_truncated", b, SyncDropReason::kV0ConnTruncated, 1});
  }
  {
    Bytes b = {0x01, 0x07, 0x00, 0x1c, 0x00, 0x06, 0x30, 0x39, 0x00, 0x50, 0x1f, 0x90, 0xc6, 0x12,
               0x00, 0x01, 0xc6, 0x12, 0x64, 0x01, 0xc6, 0x13, 0x00, 0x02, 0x05, 0x83, 0x00, 0x01};
    v.push_back({"v0_options_truncated", b, SyncDropReason::kV0OptionsTruncated, 0});
  }
  {
    Bytes b = {0x01, 0x07, 0x00, 0x1c, 0x00, 0x01, 0x30, 0x39, 0x00, 0x50, 0x1f, 0x90, 0xc6, 0x12,
               0x00, 0x01, 0xc6, 0x12, 0x64, 0x01, 0xc6, 0x13, 0x00, 0x02, 0x01, 0x83, 0x00, 0x01};
    v.push_back({"v0_bad_protocol", b, SyncDropReason::kBadProtocol, 0});
  }
  return v;
}

TEST(SyncCodecTest, MalformedInputIsDroppedWithItsReason) {
  for (const DropCase& dc : dropCases()) {
    SCOPED_TRACE(dc.name);
    SyncDecodeCounters c;
    auto got = decode(dc.bytes, c);
    EXPECT_EQ(got.size(), dc.delivered);
    EXPECT_EQ(c.drop(dc.reason), 1u) << syncDropReasonName(dc.reason);
    uint64_t total = 0;
    for (uint64_t n : c.drops)
      total += n;
    EXPECT_EQ(total, 1u);
  }
}

// Every prefix of a valid message is refused (its size field no longer matches), and every
// prefix with a fixed-up size decodes without reading past its end (ASan builds check that).
TEST(SyncCodecTest, EveryTruncationIsCounted) {
  Bytes full = v6SeqBytes();
  for (size_t n = 0; n < full.size(); ++n) {
    Bytes b(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    SyncDecodeCounters c;
    EXPECT_TRUE(decode(b, c).empty());
    EXPECT_EQ(c.drop(SyncDropReason::kTooShort) + c.drop(SyncDropReason::kBadSize), 1u) << n;
    // 4..7 bytes make a v0 header of 0 conns: nothing to drop, as in the kernel.
    if (n >= 8) {
      SyncDecodeCounters c2;
      EXPECT_TRUE(decode(withSize(b), c2).empty()) << n;
      uint64_t total = 0;
      for (uint64_t d : c2.drops)
        total += d;
      EXPECT_EQ(total, 1u) << n;
    }
  }
}

TEST(SyncCodecTest, SyncIdFilter) {
  SyncDecodeCounters c;
  EXPECT_EQ(decode(kV1Tcp4, c, 7).size(), 1u);
  EXPECT_EQ(decode(kV1Tcp4, c, 0).size(), 1u);  // backup syncid 0 accepts every syncid
  EXPECT_TRUE(decode(kV1Tcp4, c, 8).empty());
  EXPECT_EQ(c.drop(SyncDropReason::kSyncId), 1u);
}

// version == 1 but spare != 0 (or reserved != 0): parsed as v0, as the kernel does.
TEST(SyncCodecTest, V1HeaderWithSpareIsReadAsV0) {
  Bytes b = kV1Tcp4;
  b[7] = 1;
  SyncDecodeCounters c;
  decode(b, c);
  EXPECT_EQ(c.messages_v0, 1u);
}

TEST(SyncCodecTest, BuilderRespectsMaxLen) {
  Bytes buf(2000);
  // Room for the header and one 36-byte entry (8 + 36 = 44), the second needs 80.
  SyncMessageBuilder b(absl::MakeSpan(buf), 79, 3);
  EXPECT_EQ(b.add(tcpV4()), SyncMessageBuilder::AddResult::kAdded);
  EXPECT_EQ(b.add(tcpV4()), SyncMessageBuilder::AddResult::kFull);
  EXPECT_EQ(b.bytes().size(), 44u);
  b.reset();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.bytes().size(), 8u);
  // An empty message takes an entry past maxlen (the kernel's max(len + header, maxlen)).
  SyncMessageBuilder small(absl::MakeSpan(buf), 20, 3);
  EXPECT_EQ(small.add(udpV6Seq()), SyncMessageBuilder::AddResult::kAdded);
  EXPECT_EQ(small.add(tcpV4()), SyncMessageBuilder::AddResult::kFull);
  // nr_conns is a u8: 255 entries at most.
  Bytes big(65536);
  SyncMessageBuilder many(absl::MakeSpan(big), 65507, 3);
  for (int i = 0; i < 255; ++i)
    ASSERT_EQ(many.add(tcpV4()), SyncMessageBuilder::AddResult::kAdded);
  EXPECT_EQ(many.add(tcpV4()), SyncMessageBuilder::AddResult::kFull);
  SyncDecodeCounters c;
  EXPECT_EQ(decodeSyncMessage(
                many.bytes(), 0, [](const SyncConn&) {}, c),
            255u);
}

// start_sync_thread's sync_maxlen.
TEST(SyncCodecTest, SyncMaxLen) {
  EXPECT_EQ(syncMaxLen(SyncRole::kMaster, false, 0, 9000), 1472u);
  EXPECT_EQ(syncMaxLen(SyncRole::kMaster, true, 0, 9000), 1452u);
  EXPECT_EQ(syncMaxLen(SyncRole::kBackup, false, 0, 9000), 8972u);
  EXPECT_EQ(syncMaxLen(SyncRole::kBackup, false, 0, 1280), 1472u);
  EXPECT_EQ(syncMaxLen(SyncRole::kBackup, false, 100, 1500), 1024u);
  EXPECT_EQ(syncMaxLen(SyncRole::kMaster, false, 100, 1500), 100u);
  EXPECT_EQ(syncMaxLen(SyncRole::kMaster, false, 70000, 1500), 65507u);
  EXPECT_EQ(syncMaxLen(SyncRole::kMaster, true, 70000, 1500), 65487u);
}

TEST(SyncCodecTest, DropReasonNames) {
  EXPECT_EQ(syncDropReasonName(SyncDropReason::kTooShort), "too_short");
  EXPECT_EQ(syncDropReasonName(SyncDropReason::kPeWithoutName), "pe_without_name");
}

}  // namespace
}  // namespace lb
