// SPDX-License-Identifier: Apache-2.0
// FlowOffload's bookkeeping for tunnel conns (GUE, IPIP, GRE: one entry each, fed by the client's
// packets only), against the fixture of flow_offload_fixture.h.
#include "cmd/lbd/dataplane/flow_offload.h"
#include "tests/cmd/lbd/flow_offload_fixture.h"

namespace lb::lbd::flow_offload_test {
namespace {

// A GUE tunnel conn (offerTunnel): ONE entry, client -> VIP, rewritten to the tunnel source,
// the real server and the outer UDP ports, with no reverse; its state follows the client's
// flags only (the input-only table), its stats are the in direction's, and it goes back to the
// slow path at the client's FIN with one map removal.
TEST_F(FlowOffloadTest, TunnelConnHasOneEntryFedByTheClientOnly) {
  ASSERT_NO_FATAL_FAILURE(offerTunnelConn(41000, L4Proto::kTcp, true));
  const io::FlowKey in = key(kClient, 41000, kVip, 80);
  ASSERT_EQ(map_.flows.size(), 1u);
  ASSERT_NO_FATAL_FAILURE(expectTunnelEntry(in, 50000, 6080, io::FlowEncap::kGue4));
  EXPECT_EQ(offload_->inMap(), 1);
  tick();
  EXPECT_EQ(offload_->active(), 1u);
  EXPECT_EQ(offload_->counters().installed.value(), 1u);
  EXPECT_EQ(map_.flows.size(), 1u) << "nothing forwarded: still in, no reverse looked for";
  EXPECT_EQ(offload_->counters().removed.value(), 0u);

  inState(41000) = io::FlowState{.packets = 5, .bytes = 500, .last_ns = now_.ns, .ack = true};
  tick();
  EXPECT_EQ(connFrom(41000).state, kTcpEstablished);
  EXPECT_EQ(destStats().inpkts, 5u);
  EXPECT_EQ(destStats().outpkts, 0u);
  EXPECT_EQ(map_.flows.size(), 1u);

  inState(41000).fin = true;
  inState(41000).packets = 6;
  inState(41000).last_ns = (now_ + seconds(1)).ns;
  tick();
  EXPECT_TRUE(map_.flows.empty());
  EXPECT_EQ(offload_->counters().removed.value(), 1u);
  EXPECT_EQ(offload_->active(), 0u);
  EXPECT_EQ(offload_->inMap(), 0);
  EXPECT_EQ(destStats().inpkts, 6u);
  EXPECT_NE(connFrom(41000).state, kTcpEstablished);
}

// pmtu_disc 0: the entry's encapsulation leaves DF clear.
TEST_F(FlowOffloadTest, TunnelConnWithoutPmtuDisc) {
  ASSERT_NO_FATAL_FAILURE(offerTunnelConn(41001, L4Proto::kUdp, false));
  const io::FlowKey in{L4Proto::kUdp, ip(kClient), ip(kVip), 41001, 80};
  ASSERT_EQ(map_.flows.size(), 1u);
  EXPECT_EQ(map_.flows[in].rw.encap, io::FlowEncap::kGue4NoPmtu);
  tick();
  EXPECT_EQ(offload_->active(), 1u);
  EXPECT_EQ(map_.flows.size(), 1u);
}

// An IPIP conn (ipvsadm -i): the same one entry, no outer ports, its own encap kind; fed by the
// client's packets only and given back at the client's FIN.
TEST_F(FlowOffloadTest, IpipTunnelConnHasOneEntryFedByTheClientOnly) {
  expectPortlessTunnelConns(41002, TunType::kIpip, io::FlowEncap::kIpip4,
                            io::FlowEncap::kIpip4NoPmtu);
}

// A GRE conn (--tun-type gre without --tun-csum): the same as IPIP, with GRE's encap kinds.
TEST_F(FlowOffloadTest, GreTunnelConnHasOneEntryFedByTheClientOnly) {
  expectPortlessTunnelConns(41004, TunType::kGre, io::FlowEncap::kGre4, io::FlowEncap::kGre4NoPmtu);
}

}  // namespace
}  // namespace lb::lbd::flow_offload_test
