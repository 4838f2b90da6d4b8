// SPDX-License-Identifier: Apache-2.0
// The FTP helper's pure part (core/pipeline/ftp.h): ip_vs_ftp.c's parsers on good and malformed
// commands and replies, the replacement texts, the payload surgery byte by byte with checksums
// verified by the test library's independent implementation, and ip_vs_app.c's sequence
// adjustment including wraparound.
#include "core/pipeline/ftp.h"

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "core/packet/parse.h"
#include "tests/testlib/packet_builder.h"

namespace lb::testing {
namespace {

using ftp::AddrPort;
using ftp::ClientScan;
using ftp::Mode;
using ftp::ParseResult;
using ftp::SeqAdjust;

// --- sequence adjustment (ip_vs_app.c) ---

TEST(FtpSeq, NoAdjustmentIsIdentity) {
  SeqAdjust s;
  EXPECT_EQ(ftp::fixSeq(s, 12345u), 12345u);
  EXPECT_EQ(ftp::fixAck(s, 12345u), 12345u);
}

TEST(FtpSeq, GrowthShiftsLaterSegmentsOnly) {
  SeqAdjust s;
  bool active = false;
  // The segment at 1000 grew by 3 bytes.
  ftp::seqUpdate(s, active, 1000, 3);
  EXPECT_TRUE(active);
  EXPECT_EQ(s.init_seq, 1000u);
  EXPECT_EQ(s.delta, 3u);
  EXPECT_EQ(s.previous_delta, 0u);
  // The mangled segment itself and retransmissions of it keep their number (not after
  // init_seq); the segments after it move by 3.
  EXPECT_EQ(ftp::fixSeq(s, 1000), 1000u);
  EXPECT_EQ(ftp::fixSeq(s, 999), 999u);
  EXPECT_EQ(ftp::fixSeq(s, 1040), 1043u);
  // Acks from the peer: above init_seq + delta they come back by 3; at or below, unchanged.
  EXPECT_EQ(ftp::fixAck(s, 1043), 1040u);
  EXPECT_EQ(ftp::fixAck(s, 1003), 1003u);
  EXPECT_EQ(ftp::fixAck(s, 900), 900u);
}

TEST(FtpSeq, RetransmissionDoesNotAddTwice) {
  SeqAdjust s;
  bool active = false;
  ftp::seqUpdate(s, active, 1000, 3);
  ftp::seqUpdate(s, active, 1000, 3);  // the same segment again
  EXPECT_EQ(s.delta, 3u);
  ftp::seqUpdate(s, active, 990, 3);  // an older one
  EXPECT_EQ(s.delta, 3u);
  // A later segment shrank by 2: previous_delta keeps 3 for segments up to it.
  ftp::seqUpdate(s, active, 2000, -2);
  EXPECT_EQ(s.init_seq, 2000u);
  EXPECT_EQ(s.delta, 1u);
  EXPECT_EQ(s.previous_delta, 3u);
  EXPECT_EQ(ftp::fixSeq(s, 1500), 1503u);
  EXPECT_EQ(ftp::fixSeq(s, 2000), 2003u);
  EXPECT_EQ(ftp::fixSeq(s, 2100), 2101u);
  EXPECT_EQ(ftp::fixAck(s, 2101), 2100u);
  EXPECT_EQ(ftp::fixAck(s, 1503), 1500u);
}

TEST(FtpSeq, Wraparound) {
  SeqAdjust s;
  bool active = false;
  ftp::seqUpdate(s, active, 0xfffffff0u, 5);
  EXPECT_EQ(ftp::fixSeq(s, 0xfffffff0u), 0xfffffff0u);
  EXPECT_EQ(ftp::fixSeq(s, 0xfffffffeu), 0x00000003u);  // crosses 2^32
  EXPECT_EQ(ftp::fixSeq(s, 0x00000010u), 0x00000015u);  // after, though numerically smaller
  EXPECT_EQ(ftp::fixAck(s, 0x00000015u), 0x00000010u);
  EXPECT_EQ(ftp::fixAck(s, 0xfffffff5u), 0xfffffff5u);  // == init_seq + delta: not after
  // A shrink across the wrap: delta is two's complement.
  SeqAdjust t;
  bool on = false;
  ftp::seqUpdate(t, on, 0xfffffffeu, -4);
  EXPECT_EQ(t.delta, 0xfffffffcu);
  EXPECT_EQ(ftp::fixSeq(t, 0x00000002u), 0xfffffffeu);
  EXPECT_EQ(ftp::fixAck(t, 0xffffffffu), 0x00000003u);
  EXPECT_TRUE(ftp::seqAfter(1u, 0xffffffffu));
  EXPECT_FALSE(ftp::seqAfter(0xffffffffu, 1u));
}

// --- parsers (ip_vs_ftp.c) ---

TEST(FtpParse, Pasv227) {
  AddrPort ap;
  const std::string r = "227 Entering Passive Mode (198,18,1,10,195,80).\r\n";
  ASSERT_EQ(ftp::parseReply(r, Mode::kPasv, Af::kInet, IpAddr(), ap), ParseResult::kFound);
  EXPECT_EQ(ap.addr, ip("198.18.1.10"));
  EXPECT_EQ(ap.port, 195 * 256 + 80);
  EXPECT_EQ(r.substr(ap.start, ap.end - ap.start), "198,18,1,10,195,80");
  // "(" is optional.
  const std::string r2 = "227 =198,18,1,10,4,1\r\n";
  ASSERT_EQ(ftp::parseReply(r2, Mode::kPasv, Af::kInet, IpAddr(), ap), ParseResult::kFound);
  EXPECT_EQ(ap.port, 1025);
  EXPECT_EQ(r2.substr(ap.start, ap.end - ap.start), "198,18,1,10,4,1");
  // Case-insensitive pattern match is moot for digits; a different code is no match.
  EXPECT_EQ(ftp::parseReply("226 Transfer complete.\r\n", Mode::kPasv, Af::kInet, IpAddr(), ap),
            ParseResult::kNoMatch);
  // Only when the client asked for PASV.
  EXPECT_EQ(ftp::parseReply(r, Mode::kActive, Af::kInet, IpAddr(), ap), ParseResult::kNoMatch);
}

TEST(FtpParse, Pasv227Malformed) {
  AddrPort ap;
  for (const char* bad : {
           "227 Entering Passive Mode (198,18,1,10,195).\r\n",      // five fields
           "227 Entering Passive Mode (198,18,1,10,195,80",         // no terminator
           "227 Entering Passive Mode (198,18,1,300,195,80).\r\n",  // byte > 255
           "227 Entering Passive Mode",                             // nothing to parse
           "22",                                                    // partial pattern
       }) {
    EXPECT_EQ(ftp::parseReply(bad, Mode::kPasv, Af::kInet, IpAddr(), ap), ParseResult::kMalformed)
        << bad;
  }
}

TEST(FtpParse, Epsv229) {
  AddrPort ap;
  const std::string r = "229 Entering Extended Passive Mode (|||40001|)\r\n";
  const IpAddr rs = ip("198.18.1.10");
  ASSERT_EQ(ftp::parseReply(r, Mode::kEpsv, Af::kInet, rs, ap), ParseResult::kFound);
  EXPECT_EQ(ap.addr, rs);  // preset: the reply names no address
  EXPECT_EQ(ap.port, 40001);
  EXPECT_EQ(r.substr(ap.start, ap.end - ap.start), "|||40001|");
  // An address of the conn's family is accepted.
  const std::string r6 = "229 ok (!2!2001:2::10!2121!)\r\n";
  ASSERT_EQ(ftp::parseReply(r6, Mode::kEpsv, Af::kInet6, ip("2001:2::1"), ap), ParseResult::kFound);
  EXPECT_EQ(ap.addr, ip("2001:2::10"));
  EXPECT_EQ(ap.port, 2121);
  for (const char* bad : {
           "229 Entering Extended Passive Mode (|||0|)\r\n",      // port 0
           "229 Entering Extended Passive Mode (|||70000|)\r\n",  // port > 65535
           "229 Entering Extended Passive Mode (|||4000)\r\n",    // no closing delimiter
           "229 x (|2|2001:2::10|2121|)\r\n",                     // family not the conn's
           "229 x (\x7f\x7f\x7f"
           "2121\x7f)\r\n",  // delimiter not 33..126
       }) {
    EXPECT_EQ(ftp::parseReply(bad, Mode::kEpsv, Af::kInet, rs, ap), ParseResult::kMalformed) << bad;
  }
}

TEST(FtpParse, ClientPasvEpsv) {
  EXPECT_EQ(ftp::scanClient("PASV\r\n", Af::kInet).kind, ClientScan::Kind::kPasv);
  EXPECT_EQ(ftp::scanClient("pasv\r\n", Af::kInet).kind, ClientScan::Kind::kPasv);
  EXPECT_EQ(ftp::scanClient("PASV\r\n", Af::kInet6).kind, ClientScan::Kind::kNone);
  EXPECT_EQ(ftp::scanClient("EPSV\r\n", Af::kInet).kind, ClientScan::Kind::kEpsv);
  EXPECT_EQ(ftp::scanClient("EPSV 1\r\n", Af::kInet).kind, ClientScan::Kind::kEpsv);
  EXPECT_EQ(ftp::scanClient("EPSV 2\r\n", Af::kInet).kind, ClientScan::Kind::kNone);
  EXPECT_EQ(ftp::scanClient("EPSV 2\r\n", Af::kInet6).kind, ClientScan::Kind::kEpsv);
  EXPECT_EQ(ftp::scanClient("EPSV ALL\r\n", Af::kInet).kind, ClientScan::Kind::kNone);
  EXPECT_EQ(ftp::scanClient("TYPE I\r\n", Af::kInet).kind, ClientScan::Kind::kNone);
}

TEST(FtpParse, ClientPortEprt) {
  const std::string port = "PORT 198,18,0,1,200,10\r\n";
  ClientScan c = ftp::scanClient(port, Af::kInet);
  ASSERT_EQ(c.kind, ClientScan::Kind::kPort);
  EXPECT_EQ(c.ap.addr, ip("198.18.0.1"));
  EXPECT_EQ(c.ap.port, 200 * 256 + 10);
  EXPECT_EQ(port.substr(c.ap.start, c.ap.end - c.ap.start), "198,18,0,1,200,10");

  const std::string eprt = "EPRT |1|198.18.0.1|51234|\r\n";
  c = ftp::scanClient(eprt, Af::kInet);
  ASSERT_EQ(c.kind, ClientScan::Kind::kEprt);
  EXPECT_EQ(c.ap.addr, ip("198.18.0.1"));
  EXPECT_EQ(c.ap.port, 51234);
  EXPECT_EQ(eprt.substr(c.ap.start, c.ap.end - c.ap.start), "|1|198.18.0.1|51234|");

  c = ftp::scanClient("eprt |2|2001:2::5|2000|\r\n", Af::kInet6);
  ASSERT_EQ(c.kind, ClientScan::Kind::kEprt);
  EXPECT_EQ(c.ap.addr, ip("2001:2::5"));
  // PORT is IPv4 only.
  EXPECT_EQ(ftp::scanClient("PORT 198,18,0,1,200,10\r\n", Af::kInet6).kind,
            ClientScan::Kind::kNone);
}

TEST(FtpParse, ClientMalformedCounted) {
  for (const char* bad : {
           "PORT 198,18,0,1,200\r\n",       // five fields
           "PORT 198,18,0,256,200,10\r\n",  // byte > 255
           "PORT",                          // nothing after
           "EPRT |1|198.18.0.1|0|\r\n",     // port 0
           "EPRT |2|2001:2::5|2000|\r\n",   // family not the conn's
           "EPRT |1|198.18.0|2000|\r\n",    // not an address
           "EPRT |1|198.18.0.1|2000\r\n",   // no closing delimiter
           "EPRT ||198.18.0.1|2000|\r\n",   // empty family (EPSV replies only)
       }) {
    EXPECT_EQ(ftp::scanClient(bad, Af::kInet).kind, ClientScan::Kind::kMalformed) << bad;
  }
  // As in the kernel, a seventh field ends the parse like any other terminator: the first six
  // count, and the rewrite replaces only them.
  const std::string seven = "PORT 198,18,0,1,200,10,5\r\n";
  ClientScan c = ftp::scanClient(seven, Af::kInet);
  ASSERT_EQ(c.kind, ClientScan::Kind::kPort);
  EXPECT_EQ(seven.substr(c.ap.start, c.ap.end - c.ap.start), "198,18,0,1,200,10");
  // Not at the start of the payload: no match (the kernel looks there only).
  EXPECT_EQ(ftp::scanClient("NOOP\r\nPORT 198,18,0,1,200,10\r\n", Af::kInet).kind,
            ClientScan::Kind::kNone);
}

TEST(FtpFormat, Texts) {
  char buf[ftp::kMaxText];
  size_t n = ftp::formatOld(ip("198.18.100.1"), 50000, buf);
  EXPECT_EQ(std::string(buf, n), "198,18,100,1,195,80");
  n = ftp::formatEpsv(40001, buf);
  EXPECT_EQ(std::string(buf, n), "|||40001|");
  n = ftp::formatEprt(ip("198.18.1.1"), 1024, '|', buf);
  EXPECT_EQ(std::string(buf, n), "|1|198.18.1.1|1024|");
  n = ftp::formatEprt(ip("2001:2::ab"), 65535, '!', buf);
  EXPECT_EQ(std::string(buf, n), "!2!2001:2:0:0:0:0:0:ab!65535!");
  // The longest forms fit.
  n = ftp::formatEprt(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 65535, '|', buf);
  EXPECT_LE(n, ftp::kMaxText);
  EXPECT_EQ(ftp::scanClient(std::string("EPRT ") + std::string(buf, n) + "\r\n", Af::kInet6).kind,
            ClientScan::Kind::kEprt);
}

// --- payload surgery ---

struct Mangled {
  std::vector<uint8_t> bytes;
  std::optional<int32_t> diff;
};

Mangled mangleOf(const std::vector<uint8_t>& in,
                 size_t start,
                 size_t end,
                 const std::string& text,
                 size_t padding = 0) {
  PacketBuffer pkt;
  std::vector<uint8_t> padded = in;
  padded.resize(in.size() + padding, 0xee);  // link padding beyond the IP length
  EXPECT_TRUE(pkt.assign(padded));
  ParsedPacket pp;
  EXPECT_EQ(parsePacket(pkt.span(), pp), DropReason::kNone);
  Mangled m;
  m.diff = ftp::mangle(pkt, pp.outer, start, end, text);
  m.bytes.assign(pkt.data(), pkt.data() + pkt.size());
  return m;
}

TEST(FtpMangle, GrowV4ByteExact) {
  const std::string before = "227 Entering Passive Mode (198,18,1,10,195,80).\r\n";
  const std::string after = "227 Entering Passive Mode (198,18,100,1,195,80).\r\n";
  auto in = PacketBuilder::tcp("198.18.1.10", 21, "198.18.1.1", 40000, kTcpAck | kTcpPsh)
                .seq(5000)
                .ack(7000)
                .payload(before)
                .build();
  auto want = PacketBuilder::tcp("198.18.1.10", 21, "198.18.1.1", 40000, kTcpAck | kTcpPsh)
                  .seq(5000)
                  .ack(7000)
                  .payload(after)
                  .build();
  AddrPort ap;
  ASSERT_EQ(ftp::parseReply(before, Mode::kPasv, Af::kInet, IpAddr(), ap), ParseResult::kFound);
  Mangled m = mangleOf(in, ap.start, ap.end, "198,18,100,1,195,80", /*padding=*/6);
  ASSERT_TRUE(m.diff.has_value());
  EXPECT_EQ(*m.diff, 1);
  EXPECT_TRUE(checksumsValid(m.bytes)) << hexDump(m.bytes.data(), m.bytes.size());
  EXPECT_EQ(m.bytes, want) << hexDump(m.bytes.data(), m.bytes.size());
}

TEST(FtpMangle, ShrinkV4AndV6ByteExact) {
  const std::string before = "PORT 198,18,100,100,200,10\r\n";
  const std::string after = "PORT 198,18,1,1,200,10\r\n";
  auto in = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 21, kTcpAck | kTcpPsh)
                .payload(before)
                .build();
  auto want = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 21, kTcpAck | kTcpPsh)
                  .payload(after)
                  .build();
  Mangled m = mangleOf(in, 5, 5 + 21, "198,18,1,1,200,10");
  ASSERT_TRUE(m.diff.has_value());
  EXPECT_EQ(*m.diff, -4);
  EXPECT_TRUE(checksumsValid(m.bytes));
  EXPECT_EQ(m.bytes, want) << hexDump(m.bytes.data(), m.bytes.size());

  const std::string b6 = "EPRT |2|2001:2::5|2000|\r\n";
  const std::string a6 = "EPRT |2|2001:2:0:0:0:0:1:1|2000|\r\n";
  auto in6 =
      PacketBuilder::tcp("2001:2::5", 40000, "2001:2:100::1", 21, kTcpAck).payload(b6).build();
  auto want6 =
      PacketBuilder::tcp("2001:2::5", 40000, "2001:2:100::1", 21, kTcpAck).payload(a6).build();
  ClientScan c = ftp::scanClient(b6, Af::kInet6);
  ASSERT_EQ(c.kind, ClientScan::Kind::kEprt);
  char buf[ftp::kMaxText];
  size_t n = ftp::formatEprt(ip("2001:2::1:1"), 2000, '|', buf);
  m = mangleOf(in6, c.ap.start, c.ap.end, std::string(buf, n));
  ASSERT_TRUE(m.diff.has_value());
  EXPECT_EQ(*m.diff, static_cast<int32_t>(a6.size()) - static_cast<int32_t>(b6.size()));
  EXPECT_TRUE(checksumsValid(m.bytes));
  EXPECT_EQ(m.bytes, want6) << hexDump(m.bytes.data(), m.bytes.size());
}

TEST(FtpMangle, RefusesOutOfRange) {
  auto in = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 21, kTcpAck)
                .payload("PORT 1,2,3,4,5,6\r\n")
                .build();
  Mangled m = mangleOf(in, 5, 100, "x");
  EXPECT_FALSE(m.diff.has_value());
  EXPECT_EQ(m.bytes, in);  // untouched
  m = mangleOf(in, 6, 5, "x");
  EXPECT_FALSE(m.diff.has_value());
}

TEST(FtpMangle, SetSeqFieldKeepsChecksum) {
  auto in = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 21, kTcpAck)
                .seq(0xfffffffeu)
                .ack(77)
                .payload("NOOP\r\n")
                .build();
  PacketBuffer pkt;
  ASSERT_TRUE(pkt.assign(in));
  ParsedPacket pp;
  ASSERT_EQ(parsePacket(pkt.span(), pp), DropReason::kNone);
  ftp::setSeqField(pkt, pp.outer, 3, false);
  ftp::setSeqField(pkt, pp.outer, 70, true);
  std::vector<uint8_t> out(pkt.data(), pkt.data() + pkt.size());
  auto want = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 21, kTcpAck)
                  .seq(3)
                  .ack(70)
                  .payload("NOOP\r\n")
                  .build();
  EXPECT_EQ(out, want);
  EXPECT_TRUE(checksumsValid(out));
}

}  // namespace
}  // namespace lb::testing
