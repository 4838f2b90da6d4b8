// SPDX-License-Identifier: Apache-2.0
// The flow offload fast path (bpf_flow_offload_fixture.h): UDP and crafted TCP rewritten by the
// program with valid checksums, flows the FIB cannot forward and removed flows taking the old
// path, addFlow's checks and a worker's FlowWriter.
#include <errno.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "tests/io/bpf_flow_offload_fixture.h"

namespace lb::io::flow_offload_test {

// Real UDP sockets in C and S; the datagrams carry CHECKSUM_PARTIAL from the sender's veth.
void FlowOffloadTest::udpRoundTrip(bool v6, bool full_nat) {
  const IpAddr client = ip(v6 ? kClient6 : kClient), vip = ip(v6 ? kVip6 : kVip);
  const IpAddr rip = ip(v6 ? kRip6 : kRip), lip = ip(v6 ? kLip6 : kLip);
  uint16_t cport = 0, rport = 0;
  const uint16_t vport = 8053, lport = 40123;
  int cs = udpSocket(Ns::kClient, client, &cport);
  int ss = udpSocket(Ns::kServer, rip, &rport);
  ASSERT_GE(cs, 0);
  ASSERT_GE(ss, 0);
  const IpAddr src = full_nat ? lip : client;  // what S sees
  const uint16_t src_port = full_nat ? lport : cport;
  const FlowKey in{L4Proto::kUdp, client, vip, cport, vport};
  const FlowKey out{L4Proto::kUdp, rip, src, rport, src_port};
  addConnection(in, {src, rip, src_port, rport}, out, {vip, client, vport, cport});
  const int64_t before = monoNs();

  ASSERT_TRUE(sendDatagram(cs, vip, vport, "request"));
  auto d = recvDatagram(ss);
  ASSERT_TRUE(d.has_value()) << "the server got nothing";
  EXPECT_EQ(d->payload, "request");
  EXPECT_EQ(d->from, src) << d->from.toString();
  EXPECT_EQ(d->port, src_port);
  bool partial = false;
  auto p = BpfNetns::nextCaptured(cap_s_, kWait, toPort(IPPROTO_UDP, rport), &partial);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(ttl(*p), 63) << "TTL / hop limit decremented once";
  EXPECT_EQ(srcAddr(*p), src);
  EXPECT_EQ(dstAddr(*p), rip);
  EXPECT_TRUE(l4ChecksumOk(*p, partial))
      << (partial ? "partial " : "") << hexDump(p->data(), p->size());
  RecordProperty("server_saw_partial_csum", partial ? 1 : 0);

  ASSERT_TRUE(sendDatagram(ss, src, src_port, "reply"));
  auto r = recvDatagram(cs);
  ASSERT_TRUE(r.has_value()) << "the client got no reply";
  EXPECT_EQ(r->payload, "reply");
  EXPECT_EQ(r->from, vip) << r->from.toString();
  EXPECT_EQ(r->port, vport);
  auto q = BpfNetns::nextCaptured(cap_c_, kWait, toPort(IPPROTO_UDP, cport), &partial);
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(ttl(*q), 63);
  EXPECT_TRUE(l4ChecksumOk(*q, partial)) << hexDump(q->data(), q->size());

  const uint64_t hdrs = (v6 ? 40 : 20) + 8;
  FlowState a = state(in), b = state(out);
  EXPECT_EQ(a.packets, 1u);
  EXPECT_EQ(a.bytes, hdrs + 7);
  EXPECT_GE(a.last_ns, before);
  EXPECT_LE(a.last_ns, monoNs());
  EXPECT_FALSE(a.closed);
  EXPECT_EQ(b.packets, 1u);
  EXPECT_EQ(b.bytes, hdrs + 5);
  EXPECT_GE(b.last_ns, a.last_ns);
  IngressRedirectCounters c = counters();
  EXPECT_EQ(c.flow_forwarded, 2u);
  EXPECT_EQ(c.flow_slow, 0u);
  EXPECT_EQ(c.flow_dropped, 0u);
  EXPECT_EQ(c.flow_done, 0u) << "UDP is never finished by the program";
  EXPECT_TRUE(done().empty());
  for (const Bytes& stray : tunBeforeMarkers([](const Bytes&) { return true; }))
    ADD_FAILURE() << "on the TUN device: " << hexDump(stray.data(), stray.size());
  close(cs);
  close(ss);
}

TEST_F(FlowOffloadTest, UdpNatV4RoundTrip) {
  udpRoundTrip(false, false);
}

TEST_F(FlowOffloadTest, UdpFullNatV4RoundTrip) {
  udpRoundTrip(false, true);
}

TEST_F(FlowOffloadTest, UdpNatV6RoundTrip) {
  udpRoundTrip(true, false);
}

TEST_F(FlowOffloadTest, UdpFullNatV6RoundTrip) {
  udpRoundTrip(true, true);
}

// Crafted TCP segments with complete checksums: the program's incremental update must leave
// a checksum that verifies from scratch.
void FlowOffloadTest::tcpCrafted(bool v6) {
  const char* client = v6 ? kFarClient6 : kFarClient;
  const char* vip = v6 ? kVip6 : kVip;
  const char* rip = v6 ? kRip6 : kRip;
  addNat(L4Proto::kTcp, ip(client), 40000, ip(vip), 80, ip(rip), 8080);
  Bytes seg = PacketBuilder::tcp(client, 40000, vip, 80, 0x18).payload("segment").build();
  ASSERT_TRUE(net_.sendFrame(seg));
  bool partial = true;
  auto p = BpfNetns::nextCaptured(cap_s_, kWait, toPort(IPPROTO_TCP, 8080), &partial);
  ASSERT_TRUE(p.has_value()) << "the server side saw nothing";
  EXPECT_FALSE(partial);
  EXPECT_EQ(srcAddr(*p), ip(client));
  EXPECT_EQ(dstAddr(*p), ip(rip));
  EXPECT_EQ(sport(*p), 40000);
  EXPECT_EQ(dport(*p), 8080);
  EXPECT_EQ(ttl(*p), 63);
  EXPECT_EQ(p->size(), seg.size());
  EXPECT_TRUE(checksumsValid(*p)) << hexDump(p->data(), p->size());

  Bytes ans = PacketBuilder::tcp(rip, 8080, client, 40000, 0x10).payload("answer").build();
  ASSERT_TRUE(net_.sendFrameFromServer(ans));
  auto q = BpfNetns::nextCaptured(cap_c_, kWait, toPort(IPPROTO_TCP, 40000), &partial);
  ASSERT_TRUE(q.has_value()) << "the client side saw nothing";
  EXPECT_EQ(srcAddr(*q), ip(vip));
  EXPECT_EQ(dstAddr(*q), ip(client));
  EXPECT_EQ(sport(*q), 80);
  EXPECT_EQ(ttl(*q), 63);
  EXPECT_TRUE(checksumsValid(*q)) << hexDump(q->data(), q->size());
  EXPECT_EQ(counters().flow_forwarded, 2u);
}

TEST_F(FlowOffloadTest, TcpV4RewrittenWithValidChecksum) {
  tcpCrafted(false);
}

TEST_F(FlowOffloadTest, TcpV6RewrittenWithValidChecksum) {
  tcpCrafted(true);
}

// A segment that takes the slow path (here: no neighbour for the real server) records nothing:
// lbd sees it itself.
TEST_F(FlowOffloadTest, SlowPathSegmentsRecordNoFlags) {
  FlowKey in;
  addNat(L4Proto::kTcp, ip(kFarClient), 43000, ip(kVip), 80, ip("198.18.94.99"), 8080, &in);
  expectOldPath(PacketBuilder::tcp(kFarClient, 43000, kVip, 80, 0x11).build());
  expectOldPath(PacketBuilder::tcp(kFarClient, 43000, kVip, 80, 0x14).build());
  FlowState s = state(in);
  EXPECT_EQ(s.packets, 0u);
  EXPECT_FALSE(s.ack || s.fin || s.rst || s.closed);
  EXPECT_EQ(counters().flow_slow, 2u);
  EXPECT_EQ(counters().flow_done, 0u) << "an RST that was not forwarded finishes nothing";
  EXPECT_TRUE(done().empty());
}

// A flow the FIB cannot forward right now takes the old path and stays open.
TEST_F(FlowOffloadTest, NoNeighbourUnroutableAndTooBigTakeTheOldPath) {
  FlowKey no_neigh, unroutable, big;
  addNat(L4Proto::kUdp, ip(kFarClient), 1001, ip(kVip), 53, ip("198.18.94.99"), 53, &no_neigh);
  addNat(L4Proto::kUdp, ip(kFarClient), 1002, ip(kVip), 53, ip("198.18.99.1"), 53, &unroutable);
  addNat(L4Proto::kUdp, ip(kFarClient), 1003, ip(kVip), 53, ip(kRip), 5353, &big);
  expectOldPath(PacketBuilder::udp(kFarClient, 1001, kVip, 53).payload("no neighbour").build());
  expectOldPath(PacketBuilder::udp(kFarClient, 1002, kVip, 53).payload("no route").build());
  // Egress MTU 1000: a 1200-byte datagram (no GSO) is the kernel's to fragment or refuse.
  ASSERT_TRUE(net_.ipInB("link set vbs mtu 1000"));
  expectOldPath(PacketBuilder::udp(kFarClient, 1003, kVip, 53).payloadSize(1172).build());
  EXPECT_EQ(counters().flow_slow, 3u);
  for (const FlowKey& k : {no_neigh, unroutable, big}) {
    FlowState s = state(k);
    EXPECT_FALSE(s.closed);
    EXPECT_EQ(s.packets, 0u);
  }
  // The same flow still forwards what fits.
  ASSERT_TRUE(
      net_.sendFrame(PacketBuilder::udp(kFarClient, 1003, kVip, 53).payloadSize(900).build()));
  auto p = BpfNetns::nextCaptured(cap_s_, kWait, toPort(IPPROTO_UDP, 5353));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->size(), 928u);
  EXPECT_TRUE(checksumsValid(*p));
  EXPECT_EQ(state(big).packets, 1u);
  EXPECT_EQ(state(big).bytes, 928u);
  EXPECT_EQ(counters().flow_forwarded, 1u);
}

TEST_F(FlowOffloadTest, RemovedFlowTakesTheOldPath) {
  FlowKey in, out;
  addNat(L4Proto::kUdp, ip(kFarClient6), 2000, ip(kVip6), 53, ip(kRip6), 5353, &in, &out);
  ASSERT_TRUE(net_.sendFrame(PacketBuilder::udp(kFarClient6, 2000, kVip6, 53).build()));
  ASSERT_TRUE(BpfNetns::nextCaptured(cap_s_, kWait, toPort(IPPROTO_UDP, 5353)).has_value());
  ASSERT_TRUE(redirect_->removeFlow(in).ok());
  expectOldPath(PacketBuilder::udp(kFarClient6, 2000, kVip6, 53).build());
  EXPECT_EQ(redirect_->flowState(in).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(redirect_->removeFlow(in).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(redirect_->flowState(out).ok());
  EXPECT_EQ(counters().flow_slow, 0u) << "a miss is not a slow flow";
}

TEST_F(FlowOffloadTest, AddFlowRejectsMixedFamiliesAndOtherProtocols) {
  const FlowKey v4{L4Proto::kUdp, ip(kClient), ip(kVip), 1, 2};
  const FlowKey mixed{L4Proto::kUdp, ip(kClient), ip(kVip6), 1, 2};
  const FlowKey icmp{L4Proto::kIcmp, ip(kClient), ip(kVip), 1, 2};
  const FlowRewrite rw4{ip(kClient), ip(kRip), 1, 2};
  const FlowRewrite rw6{ip(kClient6), ip(kRip6), 1, 2};
  EXPECT_EQ(redirect_->addFlow(mixed, rw4, v4).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(redirect_->addFlow(v4, rw6, v4).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(redirect_->addFlow(icmp, rw4, v4).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(redirect_->addFlow(v4, rw4, mixed).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(redirect_->addFlow(v4, rw4, v4).ok());
  EXPECT_TRUE(redirect_->addFlow(v4, rw4, v4).ok()) << "replaces";
}

// A worker's writer: BPF_NOEXIST, errnos, no Status.
TEST_F(FlowOffloadTest, FlowWriterAddsOnlyAbsentKeys) {
  FlowWriter none;
  EXPECT_FALSE(none.valid());
  const FlowKey in{L4Proto::kUdp, ip(kFarClient), ip(kVip), 3000, 53};
  const FlowKey out{L4Proto::kUdp, ip(kRip), ip(kFarClient), 5353, 3000};
  const FlowRewrite rw{ip(kFarClient), ip(kRip), 3000, 5353};
  EXPECT_EQ(none.add(in, rw, out), EBADF);
  EXPECT_EQ(none.remove(in), EBADF);

  auto w = redirect_->flowWriter();
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE(w->valid());
  ASSERT_EQ(w->add(in, rw, out), 0);
  ASSERT_TRUE(net_.sendFrame(PacketBuilder::udp(kFarClient, 3000, kVip, 53).build()));
  ASSERT_TRUE(BpfNetns::nextCaptured(cap_s_, kWait, toPort(IPPROTO_UDP, 5353)).has_value());
  EXPECT_EQ(state(in).packets, 1u);

  // Another rewrite for the same key: refused, the entry (rewrite and counters) unchanged.
  const FlowRewrite other{ip(kFarClient), ip(kRip), 3000, 5454};
  EXPECT_EQ(w->add(in, other, out), EEXIST);
  EXPECT_EQ(state(in).packets, 1u);
  ASSERT_TRUE(net_.sendFrame(PacketBuilder::udp(kFarClient, 3000, kVip, 53).build()));
  ASSERT_TRUE(BpfNetns::nextCaptured(cap_s_, kWait, toPort(IPPROTO_UDP, 5353)).has_value());
  EXPECT_EQ(state(in).packets, 2u);

  // Moving hands the fd over.
  FlowWriter moved = std::move(*w);
  EXPECT_FALSE(w->valid());
  EXPECT_TRUE(moved.valid());
  EXPECT_EQ(moved.remove(in), 0);
  EXPECT_EQ(moved.remove(in), ENOENT);
  EXPECT_EQ(redirect_->flowState(in).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(moved.add(in, other, out), 0);
  EXPECT_EQ(state(in).packets, 0u);
}

TEST_F(FlowOffloadTest, FlowWriterReportsAFullMap) {
  auto w = redirect_->flowWriter();
  ASSERT_TRUE(w.ok()) << w.status();
  const FlowRewrite rw{ip(kFarClient6), ip(kRip6), 1, 2};
  FlowKey k{L4Proto::kUdp, ip(kFarClient6), ip(kVip6), 0, 53};
  int err = 0;
  uint32_t added = 0;
  for (uint32_t i = 0; i < 200'000 && err == 0; ++i) {
    k.sport = static_cast<uint16_t>(i);
    k.dport = static_cast<uint16_t>(53 + (i >> 16));
    err = w->add(k, rw, k);
    added += err == 0 ? 1 : 0;
  }
  EXPECT_TRUE(err == E2BIG || err == ENOMEM) << strerror(err);
  EXPECT_EQ(added, 131072u) << "LB_BPF_MAX_FLOWS";
}

// The writer's fd keeps the map alive: after the IngressRedirect is gone its writes go to an
// orphaned map, harmlessly.
TEST_F(FlowOffloadTest, FlowWriterOutlivesIngressRedirect) {
  auto w = redirect_->flowWriter();
  ASSERT_TRUE(w.ok()) << w.status();
  redirect_.reset();
  const FlowKey k{L4Proto::kTcp, ip(kFarClient), ip(kVip), 4000, 80};
  EXPECT_EQ(w->add(k, {ip(kFarClient), ip(kRip), 4000, 8080}, k), 0);
  EXPECT_EQ(w->add(k, {ip(kFarClient), ip(kRip), 4000, 8080}, k), EEXIST);
  EXPECT_EQ(w->remove(k), 0);
  // Nothing is attached any more: a packet of the flow takes the kernel path (B has no route to
  // the VIP: dropped). A marker to S's own address after it, which B's kernel forwards, is the
  // next packet S receives of the two: the segment was not forwarded behind it (the same veth
  // queue and CPU backlog keep them in order).
  ASSERT_TRUE(net_.sendFrame(PacketBuilder::tcp(kFarClient, 4000, kVip, 80, 0x10).build()));
  ASSERT_TRUE(net_.sendFrame(PacketBuilder::udp(kClient, 5000, kRip, 5000).build()));
  auto p = BpfNetns::nextCaptured(cap_s_, kWait, [](const Bytes& q) {
    return toPort(IPPROTO_TCP, 8080)(q) || toPort(IPPROTO_UDP, 5000)(q);
  });
  ASSERT_TRUE(p.has_value()) << "the marker did not reach S";
  EXPECT_EQ(l4Proto(*p), IPPROTO_UDP) << "forwarded: " << hexDump(p->data(), p->size());
}

}  // namespace lb::io::flow_offload_test
