// SPDX-License-Identifier: Apache-2.0
// pipeline_fuzz: a fixed configuration (a NAT, a full-NAT and a GUE tunnel service, IPv4 and
// IPv6; schedule_icmp, nat_icmp_send and the defences on) and each input as one packet through
// Pipeline::process, with the conn table kept between inputs. Invariants: no crash; a valid
// verdict; every drop has a reason; the packet fits its buffer; a forwarded packet parses, and
// its checksums are valid whenever the input's were; every ICMP error lbd generated parses and
// has valid checksums.
#include "core/pipeline/pipeline.h"

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "core/conn/conn_table.h"
#include "core/packet/parse.h"
#include "core/service/service_table.h"
#include "tests/testlib/packet_builder.h"

namespace {

using lb::testing::ip;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "pipeline_fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

class Sink : public lb::PacketSink {
 public:
  lb::PacketBuffer* allocate() noexcept override {
    if (used_ == kBufs)
      return nullptr;
    return &bufs_[used_++];
  }

  void reset() { used_ = 0; }

  size_t used() const { return used_; }

  lb::PacketBuffer& at(size_t i) { return bufs_[i]; }

 private:
  static constexpr size_t kBufs = 2;
  lb::PacketBuffer bufs_[kBufs];
  size_t used_ = 0;
};

struct World {
  World() {
    lb::ServiceTable::Limits limits;
    limits.max_services = 16;
    limits.max_dests = 64;
    table = std::make_unique<lb::ServiceTable>(limits);
    add("198.18.100.1", 80, "rr", {}, dest("198.18.1.10", 8080, lb::FwdMethod::kMasq));
    add("198.18.100.1", 90, "wlc", {ip("198.18.1.1")},
        dest("198.18.1.11", 9090, lb::FwdMethod::kFullNat));
    lb::DestConfig gue = dest("198.18.1.12", 91, lb::FwdMethod::kTunnel);
    gue.tun_type = lb::TunType::kGue;
    gue.tun_port = 6080;
    gue.tun_csum = lb::TunCsum::kCsum;
    add("198.18.100.1", 91, "rr", {}, gue);
    add("2001:2:0:100::1", 80, "rr", {}, dest("2001:2:0:1::10", 8080, lb::FwdMethod::kMasq));
    lb::ServiceConfig udp;
    udp.key.af = lb::Af::kInet;
    udp.key.proto = lb::L4Proto::kUdp;
    udp.key.vaddr = ip("198.18.100.1");
    udp.key.vport = 53;
    udp.scheduler = "rr";
    check(table->addService(udp).ok(), "config");
    check(table->addDest(udp.key, dest("198.18.1.10", 53, lb::FwdMethod::kMasq)).ok(), "config");
    // ICMP errors may schedule conns; the defences are on (drop_packet drops 1 in 3 new conns;
    // the 4096-entry table is under pressure from 3841 entries, turning on secure_tcp).
    lb::Sysctls sys;
    sys.schedule_icmp = true;
    sys.nat_icmp_send = true;
    sys.drop_packet = 3;
    sys.am_droprate = 3;
    sys.secure_tcp = 1;
    check(table->setSysctls(sys).ok(), "config");
    lb::ConnTable::Options opt;
    opt.capacity = 4096;
    opt.shards = 4;
    conns = std::make_unique<lb::ConnTable>(opt, lb::Pipeline::connEvents(table->runtime()));
    pipe = std::make_unique<lb::Pipeline>(*conns, 0, 1);
    snap = table->snapshot();
  }

  static lb::DestConfig dest(const char* a, uint16_t port, lb::FwdMethod fwd) {
    lb::DestConfig d;
    d.addr = ip(a);
    d.port = port;
    d.fwd = fwd;
    return d;
  }

  void add(const char* vip,
           uint16_t port,
           const char* sched,
           std::vector<lb::IpAddr> laddrs,
           const lb::DestConfig& d) {
    lb::ServiceConfig s;
    s.key.af = ip(vip).af();
    s.key.proto = lb::L4Proto::kTcp;
    s.key.vaddr = ip(vip);
    s.key.vport = port;
    s.scheduler = sched;
    s.local_addrs = std::move(laddrs);
    check(table->addService(s).ok(), "config");
    check(table->addDest(s.key, d).ok(), "config");
  }

  std::unique_ptr<lb::ServiceTable> table;
  std::unique_ptr<lb::ConnTable> conns;
  std::unique_ptr<lb::Pipeline> pipe;
  lb::SnapshotPtr snap;
  lb::MonoTime now = lb::MonoTime::fromSeconds(1000);
  Sink sink;
  lb::PacketBuffer pkt;
};

void checkOutput(const lb::PacketBuffer& b, bool want_checksums) {
  check(
      b.size() <= lb::PacketBuffer::kCapacity &&
          b.headroom() + b.size() <= lb::PacketBuffer::kCapacity + lb::PacketBuffer::kHeadroom * 2,
      "size within capacity");
  lb::ParsedPacket pp;
  lb::DropReason r = lb::parsePacket(b.span(), pp);
  check(r == lb::DropReason::kNone, "forwarded packet parses");
  if (want_checksums)
    check(lb::testing::checksumsValid(b.data(), b.size()), "checksums valid");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* w = new World();
  if (size > 65535)
    return 0;
  bool valid_in = lb::testing::checksumsValid(data, size);
  check(w->pkt.assign({data, size}), "assign");
  w->sink.reset();
  lb::PacketBuffer* batch[1] = {&w->pkt};
  w->pipe->process(*w->snap, absl::MakeConstSpan(batch, 1), w->sink, w->now);
  w->now = w->now + lb::millis(100);
  w->conns->expire(w->now);

  const lb::PacketBuffer& b = w->pkt;
  check(b.verdict == lb::Verdict::kForward || b.verdict == lb::Verdict::kDrop ||
            b.verdict == lb::Verdict::kToHost,
        "verdict valid");
  check(static_cast<int>(b.drop_reason) < lb::kDropReasonCount, "drop reason valid");
  if (b.verdict == lb::Verdict::kDrop)
    check(b.drop_reason != lb::DropReason::kNone, "drop has reason");
  if (b.verdict == lb::Verdict::kForward)
    checkOutput(b, valid_in);
  for (size_t i = 0; i < w->sink.used(); ++i) {
    if (w->sink.at(i).verdict == lb::Verdict::kForward)
      checkOutput(w->sink.at(i), true);
  }
  return 0;
}
