// SPDX-License-Identifier: Apache-2.0
// A ServiceTable, a ConnTable wired with Pipeline::connEvents, one Pipeline (worker 0) and a
// FakeClock, with helpers to push one packet through and read what came out.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "core/conn/conn_table.h"
#include "core/pipeline/pipeline.h"
#include "core/proto/proto.h"
#include "core/service/service_table.h"
#include "tests/testlib/fake_clock.h"
#include "tests/testlib/packet_builder.h"

namespace lb::testing {

using Bytes = std::vector<uint8_t>;

// Sets IPv4 TOS, ID and TTL of a built packet and recomputes its header checksum (from scratch).
inline Bytes patchV4(Bytes b, uint8_t tos, uint16_t id, uint8_t ttl) {
  b[1] = tos;
  b[4] = static_cast<uint8_t>(id >> 8);
  b[5] = static_cast<uint8_t>(id);
  b[8] = ttl;
  b[10] = b[11] = 0;
  uint32_t acc = 0;
  for (size_t i = 0; i < 20; i += 2)
    acc += static_cast<uint32_t>((b[i] << 8) | b[i + 1]);
  while (acc >> 16)
    acc = (acc & 0xffff) + (acc >> 16);
  uint16_t c = static_cast<uint16_t>(~acc);
  b[10] = static_cast<uint8_t>(c >> 8);
  b[11] = static_cast<uint8_t>(c);
  return b;
}

// Hands out up to N preallocated buffers per batch; the test reads what was filled.
class TestSink : public PacketSink {
 public:
  explicit TestSink(size_t n = 4) {
    for (size_t i = 0; i < n; ++i)
      bufs_.push_back(std::make_unique<PacketBuffer>());
  }

  PacketBuffer* allocate() noexcept override {
    if (used_ == bufs_.size())
      return nullptr;
    return bufs_[used_++].get();
  }

  // The buffers filled with a packet to send since the last clear().
  std::vector<Bytes> sent() const {
    std::vector<Bytes> out;
    for (size_t i = 0; i < used_; ++i) {
      if (bufs_[i]->verdict == Verdict::kForward) {
        out.emplace_back(bufs_[i]->data(), bufs_[i]->data() + bufs_[i]->size());
      }
    }
    return out;
  }

  void clear() {
    for (auto& b : bufs_)
      b->reset();
    used_ = 0;
  }

 private:
  std::vector<std::unique_ptr<PacketBuffer>> bufs_;
  size_t used_ = 0;
};

struct Result {
  Verdict verdict = Verdict::kDrop;
  DropReason reason = DropReason::kNone;
  Bytes out;
  TxPath tx = TxPath::kTun;
  IpAddr next_hop;
  bool learn_dst = true;
  std::vector<Bytes> icmp;  // packets the pipeline originated
};

class PipelineFixture : public ::testing::Test {
 protected:
  explicit PipelineFixture(size_t conn_capacity = 4096) {
    ServiceTable::Limits limits;
    limits.max_services = 64;
    limits.max_dests = 256;
    table_ = std::make_unique<ServiceTable>(limits);
    ConnTable::Options opt;
    opt.capacity = conn_capacity;
    opt.shards = 4;
    conns_ = std::make_unique<ConnTable>(opt, Pipeline::connEvents(table_->runtime()));
    pipe_ = std::make_unique<Pipeline>(*conns_, 0, 42);
  }

  static ServiceKey tcpKey(const char* vip, uint16_t port) {
    ServiceKey k;
    k.af = ip(vip).af();
    k.proto = L4Proto::kTcp;
    k.vaddr = ip(vip);
    k.vport = port;
    return k;
  }

  static ServiceKey udpKey(const char* vip, uint16_t port) {
    ServiceKey k = tcpKey(vip, port);
    k.proto = L4Proto::kUdp;
    return k;
  }

  void addService(const ServiceKey& key,
                  const std::string& sched = "rr",
                  uint32_t flags = 0,
                  uint32_t timeout_s = 0,
                  std::vector<IpAddr> laddrs = {}) {
    ServiceConfig s;
    s.key = key;
    s.scheduler = sched;
    s.flags = flags;
    s.timeout_s = timeout_s;
    s.local_addrs = std::move(laddrs);
    absl::Status st = table_->addService(s);
    ASSERT_TRUE(st.ok()) << st;
  }

  DestConfig dest(const char* addr, uint16_t port, FwdMethod fwd, uint32_t weight = 1) {
    DestConfig d;
    d.addr = ip(addr);
    d.port = port;
    d.fwd = fwd;
    d.weight = weight;
    return d;
  }

  void addDest(const ServiceKey& key, const DestConfig& d) {
    absl::Status st = table_->addDest(key, d);
    ASSERT_TRUE(st.ok()) << st;
  }

  DestId destId(const ServiceKey& key, const char* addr, uint16_t port) {
    auto id = table_->destId(key, ip(addr), port);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? *id : kNoDest;
  }

  ServiceId svcId(const ServiceKey& key) {
    auto id = table_->serviceId(key);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? *id : kNoService;
  }

  void setSysctls(const Sysctls& s) {
    absl::Status st = table_->setSysctls(s);
    ASSERT_TRUE(st.ok()) << st;
  }

  const DestCounters& counters(DestId d) { return table_->runtime().destCounters()[d]; }

  int active(DestId d) { return counters(d).active_conns.load(); }

  int inactive(DestId d) { return counters(d).inact_conns.load(); }

  int persistent(DestId d) { return counters(d).persist_conns.load(); }

  Result send(const Bytes& in) {
    auto buf = std::make_unique<PacketBuffer>();
    EXPECT_TRUE(buf->assign(in));
    PacketBuffer* b = buf.get();
    sink_.clear();
    SnapshotPtr snap = table_->snapshot();
    pipe_->process(*snap, absl::MakeConstSpan(&b, 1), sink_, clock_.now());
    Result r;
    r.verdict = buf->verdict;
    r.reason = buf->drop_reason;
    r.out.assign(buf->data(), buf->data() + buf->size());
    r.tx = buf->tx;
    r.next_hop = buf->next_hop;
    r.learn_dst = buf->learn_dst;
    r.icmp = sink_.sent();
    return r;
  }

  // All conns (templates included), as -Lnc would list them.
  std::vector<Conn> conns() const {
    std::vector<Conn> out;
    conns_->forEach([&](const Conn& c) { out.push_back(c); });
    return out;
  }

  // The one non-template conn from caddr:cport, or a default conn (cport 0) if none.
  Conn connFrom(const char* caddr, uint16_t cport) const {
    for (const Conn& c : conns()) {
      if ((c.flags & kConnFTemplate) == 0 && c.caddr == ip(caddr) && c.cport == cport)
        return c;
    }
    return Conn();
  }

  std::string stateOf(const char* caddr, uint16_t cport) const {
    Conn c = connFrom(caddr, cport);
    if (c.cport == 0)
      return "<none>";
    return std::string(connStateName(c));
  }

  uint64_t drops(DropReason r) const {
    return pipe_->counters().drops[static_cast<int>(r)].value();
  }

  std::unique_ptr<ServiceTable> table_;
  std::unique_ptr<ConnTable> conns_;
  std::unique_ptr<Pipeline> pipe_;
  FakeClock clock_;
  TestSink sink_;
};

#define EXPECT_BYTES(actual, expected)                                                             \
  EXPECT_EQ(actual, expected) << "got:\n"                                                          \
                              << ::lb::testing::hexDump(actual.data(), actual.size()) << "want:\n" \
                              << ::lb::testing::hexDump(expected.data(), expected.size())

}  // namespace lb::testing
