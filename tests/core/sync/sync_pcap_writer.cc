// SPDX-License-Identifier: Apache-2.0
// Writes lbd-encoded sync messages into a pcap file (no sockets: IPv4 + UDP headers built
// here, to 224.0.0.81:8848 as the kernel's master sends them), and prints, per connection
// entry, the fields tshark's IPVS dissector must show for it. sync_tshark_test.sh compares the
// two. Usage: sync_pcap_writer OUT.pcap > expected.txt
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/sync/sync_codec.h"

namespace {

using lb::IpAddr;
using lb::SyncConn;

IpAddr ip(const char* s) {
  return *IpAddr::parse(s);
}

void le32(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void le16(std::vector<uint8_t>& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}

uint16_t ipChecksum(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2)
    sum += static_cast<uint32_t>((p[i] << 8) | p[i + 1]);
  while ((sum >> 16) != 0)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// One pcap record: IPv4 (LINKTYPE_RAW) 198.18.0.10 -> 224.0.0.81, UDP 8848 -> 8848, TTL 1.
void record(std::vector<uint8_t>& out, absl::Span<const uint8_t> payload, uint32_t sec) {
  std::vector<uint8_t> pkt(28 + payload.size());
  const size_t total = pkt.size();
  pkt[0] = 0x45;
  pkt[2] = static_cast<uint8_t>(total >> 8);
  pkt[3] = static_cast<uint8_t>(total);
  pkt[6] = 0x40;  // DF
  pkt[8] = 1;     // TTL (mcast_ttl 1)
  pkt[9] = 17;
  const uint8_t src[4] = {198, 18, 0, 10};
  const uint8_t dst[4] = {224, 0, 0, 81};
  for (int i = 0; i < 4; ++i) {
    pkt[12 + i] = src[i];
    pkt[16 + i] = dst[i];
  }
  const uint16_t sum = ipChecksum(pkt.data(), 20);
  pkt[10] = static_cast<uint8_t>(sum >> 8);
  pkt[11] = static_cast<uint8_t>(sum);
  const size_t ulen = 8 + payload.size();
  pkt[20] = 0x22;  // 8848
  pkt[21] = 0x90;
  pkt[22] = 0x22;
  pkt[23] = 0x90;
  pkt[24] = static_cast<uint8_t>(ulen >> 8);
  pkt[25] = static_cast<uint8_t>(ulen);  // UDP checksum 0: none
  std::copy(payload.begin(), payload.end(), pkt.begin() + 28);
  le32(out, sec);
  le32(out, 0);
  le32(out, static_cast<uint32_t>(total));
  le32(out, static_cast<uint32_t>(total));
  out.insert(out.end(), pkt.begin(), pkt.end());
}

// The line sync_tshark_test.sh builds from tshark's fields, in the same order.
void expect(const SyncConn& c, int version) {
  const std::string ca = c.caddr.toString(), va = c.vaddr.toString(), da = c.daddr.toString();
  if (version == 0) {
    std::printf(
        "v0 proto=%u cport=%u vport=%u dport=%u caddr=%s vaddr=%s daddr=%s flags=0x%04x "
        "state=%u\n",
        c.protocol, c.cport, c.vport, c.dport, ca.c_str(), va.c_str(), da.c_str(),
        c.flags & lb::kSyncConnFWireMask, c.state);
    return;
  }
  std::printf(
      "v1 type=%u proto=%u cport=%u vport=%u dport=%u fwmark=%u timeout=%u caddr=%s "
      "vaddr=%s daddr=%s flags=0x%08x state=%u\n",
      c.af == lb::Af::kInet6 ? 1u : 0u, c.protocol, c.cport, c.vport, c.dport, c.fwmark,
      c.timeout_s, ca.c_str(), va.c_str(), da.c_str(), c.flags & lb::kSyncConnFWireMask, c.state);
}

SyncConn conn(
    const char* c, uint16_t cport, const char* v, uint16_t vport, const char* d, uint16_t dport) {
  SyncConn s;
  s.caddr = ip(c);
  s.af = s.caddr.af();
  s.vaddr = ip(v);
  s.daddr = ip(d);
  s.cport = cport;
  s.vport = vport;
  s.dport = dport;
  s.protocol = 6;
  s.state = 1;
  s.timeout_s = 900;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT.pcap\n", argv[0]);
    return 2;
  }
  // tshark's dissector (4.0) reads v1 entries at their fixed size and does not step over
  // options, so an entry with options (lbd's full-NAT one, the kernel's SEQ_DATA) goes last in
  // its message: its own fixed fields still decode.
  std::vector<SyncConn> v1;
  v1.push_back(conn("198.18.0.1", 40000, "198.18.100.1", 80, "198.19.0.2", 8080));  // NAT
  SyncConn dr = conn("198.18.0.2", 40001, "198.18.100.1", 80, "198.19.0.3", 80);
  dr.flags = 0x0183;  // DR | NOOUTPUT | INACTIVE
  dr.state = 4;       // FIN_WAIT
  dr.timeout_s = 120;
  v1.push_back(dr);
  SyncConn udp = conn("198.18.0.3", 5353, "198.18.100.2", 53, "198.19.0.4", 53);
  udp.protocol = 17;
  udp.state = 0;
  udp.flags = 0x0100;
  udp.fwmark = 7;
  udp.timeout_s = 300;
  v1.push_back(udp);
  SyncConn tpl = conn("198.18.0.0", 0, "198.18.100.1", 80, "198.19.0.2", 8080);
  tpl.flags = 0x1100;  // TEMPLATE | INACTIVE
  tpl.state = 0;
  tpl.timeout_s = 360;
  v1.push_back(tpl);
  SyncConn sctp = conn("198.18.0.4", 40004, "198.18.100.4", 38412, "198.19.0.6", 38412);
  sctp.protocol = 132;
  sctp.state = 8;  // ESTABLISHED
  sctp.timeout_s = 900;
  v1.push_back(sctp);
  SyncConn fnat = conn("198.18.0.5", 40005, "198.18.100.3", 443, "198.19.0.5", 8443);
  fnat.has_lbd = true;
  fnat.lbd.flags = lb::kSyncLbdFullNat;
  fnat.lbd.laddr = ip("198.18.200.1");
  fnat.lbd.lport = 5000;
  v1.push_back(fnat);
  SyncConn seq = conn("198.18.0.6", 40006, "198.18.100.1", 21, "198.19.0.2", 21);
  seq.flags = 0x0600;  // IN_SEQ | OUT_SEQ
  seq.has_seq = true;
  seq.in_seq = {1000, 5, 3};
  seq.out_seq = {2000, 7, 6};
  std::vector<SyncConn> v6;
  v6.push_back(conn("2001:2::1", 40010, "2001:2:0:64::1", 80, "2001:2:0:1::2", 8080));
  SyncConn v6udp = conn("2001:2::2", 40011, "2001:2:0:64::1", 53, "2001:2:0:1::3", 53);
  v6udp.protocol = 17;
  v6udp.state = 0;
  v6udp.flags = 0x0100;
  v6.push_back(v6udp);
  // v0: a SEQ entry (24 bytes of options, which tshark's v0 dissector does step over) first.
  SyncConn v0seq = seq;
  v0seq.timeout_s = 0;
  SyncConn v0dr = dr;
  v0dr.timeout_s = 0;
  std::vector<SyncConn> v0 = {v0seq, v0dr};

  std::vector<uint8_t> out;
  le32(out, 0xa1b2c3d4);
  le16(out, 2);
  le16(out, 4);
  le32(out, 0);
  le32(out, 0);
  le32(out, 65535);
  le32(out, 101);  // LINKTYPE_RAW
  std::vector<uint8_t> buf(1500);
  uint32_t sec = 1;
  auto emit = [&](const std::vector<SyncConn>& conns, int version) {
    lb::SyncMessageBuilder b(absl::MakeSpan(buf), 1472, 9, version);
    for (const SyncConn& c : conns) {
      if (b.add(c) != lb::SyncMessageBuilder::AddResult::kAdded) {
        std::fprintf(stderr, "encode failed\n");
        std::exit(1);
      }
      expect(c, version);
    }
    record(out, b.bytes(), sec++);
  };
  emit(v1, 1);
  emit({seq}, 1);
  emit(v6, 1);
  emit(v0, 0);
  FILE* f = std::fopen(argv[1], "wb");
  if (f == nullptr || std::fwrite(out.data(), 1, out.size(), f) != out.size()) {
    std::perror(argv[1]);
    return 1;
  }
  std::fclose(f);
  return 0;
}
