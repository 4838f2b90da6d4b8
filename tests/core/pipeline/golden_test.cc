// SPDX-License-Identifier: Apache-2.0
// Golden packets: {name, input, expected verdict / reason, expected output bytes}, each run
// through a fresh pipeline with one fixed configuration.
#include <functional>
#include <string>

#include "tests/core/pipeline/pipeline_fixture.h"

namespace lb::testing {
namespace {

// IPv4 header checksum recomputed after a test edits header bytes.
Bytes fixV4(Bytes b) {
  b[10] = b[11] = 0;
  uint32_t acc = 0;
  for (size_t i = 0; i < 20; i += 2)
    acc += static_cast<uint32_t>((b[i] << 8) | b[i + 1]);
  while (acc >> 16)
    acc = (acc & 0xffff) + (acc >> 16);
  b[10] = static_cast<uint8_t>(~acc >> 8);
  b[11] = static_cast<uint8_t>(~acc);
  return b;
}

struct GoldenCase {
  std::string name;
  std::function<Bytes()> input;
  Verdict verdict;
  DropReason reason;
  std::function<Bytes()> output;  // for drops and kToHost: the input, unchanged
};

// One fixed configuration: NAT TCP VIP:80 -> RS:8080, NAT UDP VIP:53 -> RS:5353, DR TCP
// VIP:81 -> RS:81, NAT TCP [VIP6]:80 -> [RS6]:8080.
class World : public PipelineFixture {
 public:
  World() {
    addService(tcpKey("198.18.100.1", 80));
    addDest(tcpKey("198.18.100.1", 80), dest("198.18.1.10", 8080, FwdMethod::kMasq));
    addService(udpKey("198.18.100.1", 53));
    addDest(udpKey("198.18.100.1", 53), dest("198.18.1.10", 5353, FwdMethod::kMasq));
    addService(tcpKey("198.18.100.1", 81));
    addDest(tcpKey("198.18.100.1", 81), dest("198.18.1.10", 81, FwdMethod::kDirectRoute));
    addService(tcpKey("2001:2:0:100::1", 80));
    addDest(tcpKey("2001:2:0:100::1", 80), dest("2001:2:0:1::10", 8080, FwdMethod::kMasq));
  }

  void TestBody() override {}

  using PipelineFixture::send;
};

Bytes tcp(const char* s, uint16_t sp, const char* d, uint16_t dp, uint8_t f, uint8_t ttl = 64) {
  return PacketBuilder::tcp(s, sp, d, dp, f).ttl(ttl).payload("golden").build();
}

const GoldenCase kCases[] = {
    {"nat_tcp_syn_v4", [] { return tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn); },
     Verdict::kForward, DropReason::kNone,
     [] { return tcp("198.18.0.1", 40000, "198.18.1.10", 8080, kTcpSyn, 63); }},
    {"nat_udp_v4",
     [] { return PacketBuilder::udp("198.18.0.1", 5000, "198.18.100.1", 53).payload("q").build(); },
     Verdict::kForward, DropReason::kNone,
     [] {
       return PacketBuilder::udp("198.18.0.1", 5000, "198.18.1.10", 5353)
           .ttl(63)
           .payload("q")
           .build();
     }},
    {"nat_tcp_syn_v6", [] { return tcp("2001:2::1", 40000, "2001:2:0:100::1", 80, kTcpSyn); },
     Verdict::kForward, DropReason::kNone,
     [] { return tcp("2001:2::1", 40000, "2001:2:0:1::10", 8080, kTcpSyn, 63); }},
    {"dr_syn_v4", [] { return tcp("198.18.0.1", 40000, "198.18.100.1", 81, kTcpSyn); },
     Verdict::kForward, DropReason::kNone,
     [] { return tcp("198.18.0.1", 40000, "198.18.100.1", 81, kTcpSyn, 63); }},
    {"no_service", [] { return tcp("198.18.0.1", 40000, "198.18.100.1", 82, kTcpSyn); },
     Verdict::kToHost, DropReason::kNone,
     [] { return tcp("198.18.0.1", 40000, "198.18.100.1", 82, kTcpSyn); }},
    {"not_new_conn", [] { return tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpAck); },
     Verdict::kDrop, DropReason::kNotNewConn,
     [] { return tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpAck); }},
    {"ttl_exceeded", [] { return tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn, 1); },
     Verdict::kDrop, DropReason::kTtlExceeded,
     [] { return tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn, 1); }},
    {"frag_needed",
     [] {
       return PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn)
           .df(true)
           .payloadSize(1600)
           .build();
     },
     Verdict::kDrop, DropReason::kFragNeeded,
     [] {
       return PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn)
           .df(true)
           .payloadSize(1600)
           .build();
     }},
    {"truncated_header",
     [] {
       Bytes b = tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn);
       b.resize(30);
       return b;
     },
     Verdict::kDrop, DropReason::kMalformed,
     [] {
       Bytes b = tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn);
       b.resize(30);
       return b;
     }},
    {"unknown_protocol",
     [] {
       Bytes b = tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn);
       b[9] = 47;
       return fixV4(b);
     },
     Verdict::kToHost, DropReason::kNone,
     [] {
       Bytes b = tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn);
       b[9] = 47;
       return fixV4(b);
     }},
    {"non_first_fragment",
     [] {
       Bytes b = tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn);
       b[7] = 0x10;  // offset 128 bytes
       return fixV4(b);
     },
     Verdict::kDrop, DropReason::kFragment,
     [] {
       Bytes b = tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn);
       b[7] = 0x10;
       return fixV4(b);
     }},
    {"echo_to_vip",
     [] {
       return PacketBuilder::icmpEcho("198.18.0.1", "198.18.100.1", 8, 9).payload("p").build();
     },
     Verdict::kForward, DropReason::kNone,
     [] {
       return PacketBuilder::icmpEcho("198.18.100.1", "198.18.0.1", 0, 9).payload("p").build();
     }},
    {"echo_v6_to_vip",
     [] { return PacketBuilder::icmpEcho("2001:2::1", "2001:2:0:100::1", 128, 9).build(); },
     Verdict::kForward, DropReason::kNone,
     [] { return PacketBuilder::icmpEcho("2001:2:0:100::1", "2001:2::1", 129, 9).build(); }},
    {"reply_without_conn", [] { return tcp("198.18.1.10", 8080, "198.18.0.1", 40000, kTcpAck); },
     Verdict::kToHost, DropReason::kNone,
     [] { return tcp("198.18.1.10", 8080, "198.18.0.1", 40000, kTcpAck); }},
};

TEST(PipelineGoldenTest, EveryCase) {
  for (const GoldenCase& c : kCases) {
    SCOPED_TRACE(c.name);
    World w;
    Result r = w.send(c.input());
    EXPECT_EQ(r.verdict, c.verdict);
    EXPECT_EQ(r.reason, c.reason) << dropReasonName(r.reason);
    Bytes want = c.output();
    EXPECT_BYTES(r.out, want);
    if (r.verdict == Verdict::kForward) {
      EXPECT_TRUE(checksumsValid(r.out));
    }
  }
}

}  // namespace
}  // namespace lb::testing
