// SPDX-License-Identifier: Apache-2.0
// The FTP helper's packet path allocates nothing (core/pipeline/ftp_pipeline.cc): whole NAT FTP
// sessions (PASV/227 with a data conn, PORT with an active data conn, rewrites
// that change lengths and the sequence adjustment after them) after a warm-up.
#include <cstdint>
#include <string>
#include <vector>

#include "core/pipeline/ftp.h"
#include "core/pipeline/pipeline.h"
#include "tests/core/pipeline/pipeline_fixture.h"
#include "tests/testlib/alloc_counter.h"

namespace lb::testing {
namespace {

class FtpNoAllocTest : public PipelineFixture {
 protected:
  // One session from client port `cp` (data ports cp+1, cp+2) through `vip`; appends packets.
  static void session(std::vector<Bytes>& out, const char* vip, const char* seen, uint16_t cp) {
    const char* c = "198.18.0.1";
    const char* rs = "198.18.1.10";
    auto from_c = [&](uint16_t sp, uint16_t dp, uint8_t f, uint32_t s, uint32_t a,
                      const std::string& d) {
      PacketBuilder b = PacketBuilder::tcp(c, sp, vip, dp, f).seq(s).ack(a);
      if (!d.empty())
        b.payload(d);
      out.push_back(b.build());
    };
    auto from_s = [&](uint16_t sp, const char* to, uint16_t dp, uint8_t f, uint32_t s, uint32_t a,
                      const std::string& d) {
      PacketBuilder b = PacketBuilder::tcp(rs, sp, to, dp, f).seq(s).ack(a);
      if (!d.empty())
        b.payload(d);
      out.push_back(b.build());
    };
    from_c(cp, 21, kTcpSyn, 1000, 0, "");
    from_c(cp, 21, kTcpAck, 1001, 5001, "");
    from_c(cp, 21, kTcpAck | kTcpPsh, 1001, 5001, "PASV\r\n");
    const uint16_t pasv = static_cast<uint16_t>(30000 + cp % 1000);
    from_s(21, seen, cp, kTcpAck | kTcpPsh, 5001, 1007,
           "227 Entering Passive Mode (198,18,1,10," + std::to_string(pasv >> 8) + "," +
               std::to_string(pasv & 0xff) + ").\r\n");
    from_s(21, seen, cp, kTcpAck | kTcpPsh, 5060, 1007, "150 ok\r\n");
    from_c(static_cast<uint16_t>(cp + 1), pasv, kTcpSyn, 9000, 0, "");
    const uint16_t act = static_cast<uint16_t>(cp + 2);
    from_c(
        cp, 21, kTcpAck | kTcpPsh, 1007, 5070,
        "PORT 198,18,0,1," + std::to_string(act >> 8) + "," + std::to_string(act & 0xff) + "\r\n");
    from_s(20, c, act, kTcpSyn, 3000, 0, "");
    from_c(cp, 21, kTcpAck | kTcpPsh, 1040, 5070, "PORT 1,2\r\n");  // malformed
  }
};

TEST_F(FtpNoAllocTest, SessionsDoNotAllocateAfterWarmUp) {
  ftp::StateTable table(1024);
  const uint16_t ports[] = {21};
  pipe_->setFtp(&table, ports);
  addService(tcpKey("198.18.100.1", 21), "rr");
  addDest(tcpKey("198.18.100.1", 21), dest("198.18.1.10", 21, FwdMethod::kMasq));
  addService(tcpKey("198.18.100.2", 21), "rr", 0, 0, {ip("198.18.1.1")});
  addDest(tcpKey("198.18.100.2", 21), dest("198.18.1.10", 21, FwdMethod::kFullNat));
  std::vector<Bytes> warm, measured;
  for (uint16_t p = 1000; p < 1030; p += 3)
    session(warm, "198.18.100.1", "198.18.0.1", p);
  for (uint16_t p = 2000; p < 2300; p += 3)
    session(measured, "198.18.100.1", "198.18.0.1", p);
  std::vector<std::unique_ptr<PacketBuffer>> bufs;
  for (size_t i = 0; i < measured.size(); ++i)
    bufs.push_back(std::make_unique<PacketBuffer>());
  SnapshotPtr snap = table_->snapshot();
  auto run = [&](const std::vector<Bytes>& pkts) {
    for (size_t i = 0; i < pkts.size(); ++i) {
      ASSERT_TRUE(bufs[i]->assign(pkts[i]));
      PacketBuffer* b = bufs[i].get();
      sink_.clear();
      pipe_->process(*snap, absl::MakeConstSpan(&b, 1), sink_, clock_.now());
    }
  };
  run(warm);
  const uint64_t passive0 = pipe_->counters().ftp_passive.value();
  const uint64_t before = threadAllocations();
  run(measured);
  const uint64_t after = threadAllocations();
  EXPECT_EQ(after - before, 0u);
  // The sessions really went through the helper.
  EXPECT_EQ(pipe_->counters().ftp_passive.value() - passive0, 100u);
  EXPECT_GE(pipe_->counters().ftp_active.value(), 100u);
  EXPECT_GE(pipe_->counters().ftp_malformed.value(), 100u);
}

}  // namespace
}  // namespace lb::testing
