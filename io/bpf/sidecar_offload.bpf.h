// SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only
// Included by ingress_redirect.bpf.c (one BPF object): the sidecar flow offload's functions.
// Uses that file's maps, cfg and helpers; not a header of its own.
#pragma once

// ---- Sidecar flow offload (lbd --mode=sidecar, in the app's namespace) -------------------
// The app's packets to a VIP leave through lbd's TUN device (ARPHRD_NONE, no L2 header): the
// program lb_sidecar_egress on its egress rewrites an offloaded conn's packet (DNAT, or full
// NAT), pushes an Ethernet header (bpf_skb_change_head, the helper made for L3 devices) with the
// MACs bpf_fib_lookup gives and redirects it out of the device the FIB picks (the app's veth).
// bpf_redirect_neigh would fill the MACs itself, but it refuses an skb without a MAC header
// (__bpf_redirect_neigh: mac_header >= network_header, as every skb leaving an L3 device has)
// and does its own route lookup without the MTU answer flowRoute needs.
// The replies arrive on that veth, where lb_ingress_redirect (cfg.sidecar) un-NATs them and
// hands them to the TUN device's ingress (bpf_redirect with BPF_F_INGRESS: the no-MAC path,
// netif_rx on the TUN device), so the stack sees them arrive there exactly as lbd's TUN write
// did: the source is the VIP, routed via the TUN device, so the reverse-path check passes as
// before, where TC_ACT_OK on the veth would meet rp_filter with the VIP arriving on the wrong
// device. The same flows entries, flags, counters and `done` records as the gateway's; the TTL /
// hop limit is decremented once each way, as lbd's NAT forwarder does.

// The rewritten packet (its Ethernet header at 0): out of the FIB's device with its MACs
// (egress), or into the TUN device's ingress (a reply, at the veth's ingress).
static __always_inline int scTransmit(struct __sk_buff* skb,
                                      const struct lb_bpf_flow_key* k,
                                      struct lb_bpf_flow* f,
                                      const struct bpf_fib_lookup* fib,
                                      __u8 tcp_flags,
                                      __u32 ip_bytes,
                                      const int egress,
                                      __be16 eth_proto) {
  if (egress) {
    struct ethhdr eth;
    __builtin_memcpy(eth.h_dest, fib->dmac, ETH_ALEN);
    __builtin_memcpy(eth.h_source, fib->smac, ETH_ALEN);
    eth.h_proto = eth_proto;
    if (bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0))
      return flowDrop();
  }
  flowAccount(k, f, tcp_flags, ip_bytes);
  if (egress)
    return bpf_redirect(fib->ifindex, 0);
  // __bpf_redirect_no_mac: the MAC header (already pulled at ingress) is dropped, the
  // protocol kept; netif_rx on the TUN device.
  return bpf_redirect(cfg.tun_ifindex, BPF_F_INGRESS);
}

// Makes room for the Ethernet header at egress (the L3 packet then starts at ETH_HLEN, as at
// ingress); 0 when the helper fails (nothing changed: the slow path takes the packet).
static __always_inline int scPushL2(struct __sk_buff* skb, const int egress) {
  return !egress || bpf_skb_change_head(skb, ETH_HLEN, 0) == 0;
}
