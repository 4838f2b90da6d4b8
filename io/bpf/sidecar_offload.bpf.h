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

// After the rewrite: the entry's counters and TCP flags, the conn finished if this was its last
// segment (flowFinish). `ip_bytes`: the packet's IP length.
static __always_inline void scAccount(const struct lb_bpf_flow_key* k,
                                      struct lb_bpf_flow* f,
                                      __u8 tcp_flags,
                                      __u32 ip_bytes) {
  __sync_fetch_and_add(&f->packets, 1);
  __sync_fetch_and_add(&f->bytes, ip_bytes);
  f->last_ns = bpf_ktime_get_ns();
  const __u64 bits = flowTcpBits(tcp_flags);
  if (bits) {
    flowSetFlags(f, bits);
    flowFinish(k, f, tcp_flags);
  }
  count(LB_BPF_CNT_FLOW_FWD);
}

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
  scAccount(k, f, tcp_flags, ip_bytes);
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

// IPv4 without options, not a fragment, TCP or UDP, with its header at `l3` (0 at egress,
// ETH_HLEN at ingress): as flowV4, 1 when the flows entry decided (*verdict).
static __always_inline int scFlowV4(struct __sk_buff* skb,
                                    struct iphdr* iph,
                                    void* end,
                                    __u32 tot,
                                    const int egress,
                                    int* verdict) {
  const __u8 proto = iph->protocol;
  __be16* ports = (void*)(iph + 1);
  __u8 tcp_flags = 0;
  __u32 l4_hlen = 0;
  if (!flowL4(ports, end, proto, &tcp_flags, &l4_hlen))
    return 0;
  struct lb_bpf_flow_key k = {.family = LB_AF_INET, .proto = proto};
  k.sport = ports[0];
  k.dport = ports[1];
  __builtin_memcpy(k.saddr, &iph->saddr, 4);
  __builtin_memcpy(k.daddr, &iph->daddr, 4);
  struct lb_bpf_flow* f = flowMatch(&k, tcp_flags);
  if (!f)
    return 0;
  __be32 addrs[4] = {iph->saddr, iph->daddr};  // old saddr, daddr; new saddr, daddr
  __builtin_memcpy(&addrs[2], f->new_saddr, 4);
  __builtin_memcpy(&addrs[3], f->new_daddr, 4);
  struct bpf_fib_lookup fib = {.family = LB_AF_INET, .l4_protocol = proto};
  if (egress) {
    fib.sport = f->new_sport;
    fib.dport = f->new_dport;
    fib.tos = iph->tos;
    fib.ipv4_src = addrs[2];
    fib.ipv4_dst = addrs[3];
    if (!flowRoute(skb, &fib, tot, sizeof(*iph) + l4_hlen)) {
      count(LB_BPF_CNT_FLOW_SLOW);
      return 0;
    }
  }
  __be32 old_ports = *(__be32*)ports;
  __be32 new_ports;
  __builtin_memcpy(&new_ports, &f->new_sport, 4);  // new_sport, new_dport
  __be16 old_ttl = ((__be16*)iph)[4];              // ttl and protocol
  __be16 new_ttl = old_ttl - bpf_htons(0x0100);    // ttl > 1 was checked
  const __u32 csum_off = flowCsumOff(ETH_HLEN + sizeof(*iph), proto);
  const __u64 mangled = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
  if (!scPushL2(skb, egress)) {
    *verdict = flowSlowToKernel();
    return 1;
  }
  // From here on the packet is no longer what the TUN device expects at egress: a failure
  // drops it (TCP retransmits) rather than hand lbd a half-made frame.
  if (!flowPrepare(skb, tot, csum_off + 2)) {
    *verdict = egress ? flowDrop() : flowSlowToKernel();
    return 1;
  }
  const __s64 diff = bpf_csum_diff(&addrs[0], 8, &addrs[2], 8, 0);
  const __u32 l3_csum = ETH_HLEN + __builtin_offsetof(struct iphdr, check);
  if (diff < 0 || bpf_l4_csum_replace(skb, csum_off, 0, diff, BPF_F_PSEUDO_HDR | mangled) ||
      bpf_l4_csum_replace(skb, csum_off, old_ports, new_ports, mangled | 4) ||
      bpf_l3_csum_replace(skb, l3_csum, 0, diff, 0) ||
      bpf_l3_csum_replace(skb, l3_csum, old_ttl, new_ttl, 2) ||
      bpf_skb_store_bytes(skb, ETH_HLEN + __builtin_offsetof(struct iphdr, ttl), &new_ttl, 2, 0) ||
      bpf_skb_store_bytes(skb, ETH_HLEN + __builtin_offsetof(struct iphdr, saddr), &addrs[2], 8,
                          0) ||
      bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(*iph), &new_ports, 4, 0)) {
    *verdict = flowDrop();
    return 1;
  }
  *verdict = scTransmit(skb, &k, f, &fib, tcp_flags, tot, egress, bpf_htons(ETH_P_IP));
  return 1;
}

// IPv6 with TCP or UDP right after the fixed header: as scFlowV4.
static __always_inline int scFlowV6(struct __sk_buff* skb,
                                    struct ipv6hdr* ip6,
                                    void* end,
                                    __u32 tot,
                                    const int egress,
                                    int* verdict) {
  const __u8 proto = ip6->nexthdr;
  __be16* ports = (void*)(ip6 + 1);
  __u8 tcp_flags = 0;
  __u32 l4_hlen = 0;
  if (!flowL4(ports, end, proto, &tcp_flags, &l4_hlen))
    return 0;
  struct lb_bpf_flow_key k = {.family = LB_AF_INET6, .proto = proto};
  k.sport = ports[0];
  k.dport = ports[1];
  __builtin_memcpy(k.saddr, &ip6->saddr, 16);
  __builtin_memcpy(k.daddr, &ip6->daddr, 16);
  struct lb_bpf_flow* f = flowMatch(&k, tcp_flags);
  if (!f)
    return 0;
  __be32 addrs[16];  // old saddr, daddr; new saddr, daddr
  __builtin_memcpy(&addrs[0], &ip6->saddr, 32);
  __builtin_memcpy(&addrs[8], f->new_saddr, 32);  // new_saddr, new_daddr
  struct bpf_fib_lookup fib = {.family = LB_AF_INET6, .l4_protocol = proto};
  if (egress) {
    fib.sport = f->new_sport;
    fib.dport = f->new_dport;
    fib.flowinfo = *(__be32*)ip6 & bpf_htonl(0x0fffffff);  // IPV6_FLOWINFO_MASK
    __builtin_memcpy(fib.ipv6_src, &addrs[8], 16);
    __builtin_memcpy(fib.ipv6_dst, &addrs[12], 16);
    if (!flowRoute(skb, &fib, tot, sizeof(*ip6) + l4_hlen)) {
      count(LB_BPF_CNT_FLOW_SLOW);
      return 0;
    }
  }
  __be32 old_ports = *(__be32*)ports;
  __be32 new_ports;
  __builtin_memcpy(&new_ports, &f->new_sport, 4);  // new_sport, new_dport
  __be16 old_hop = ((__be16*)ip6)[3];              // nexthdr and hop_limit
  __be16 new_hop = old_hop - bpf_htons(0x0001);    // hop_limit > 1 was checked
  const __u32 csum_off = flowCsumOff(ETH_HLEN + sizeof(*ip6), proto);
  const __u64 mangled = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
  if (!scPushL2(skb, egress)) {
    *verdict = flowSlowToKernel();
    return 1;
  }
  if (!flowPrepare(skb, tot, csum_off + 2)) {
    *verdict = egress ? flowDrop() : flowSlowToKernel();
    return 1;
  }
  const __s64 diff = bpf_csum_diff(&addrs[0], 32, &addrs[8], 32, 0);
  if (diff < 0) {
    *verdict = flowDrop();
    return 1;
  }
  long err =
      bpf_l4_csum_replace(skb, csum_off, 0, diff, BPF_F_PSEUDO_HDR | LB_BPF_F_IPV6 | mangled);
  if (err == -22)  // EINVAL: a kernel before BPF_F_IPV6
    err = bpf_l4_csum_replace(skb, csum_off, 0, diff, BPF_F_PSEUDO_HDR | mangled);
  if (err || bpf_l4_csum_replace(skb, csum_off, old_ports, new_ports, mangled | 4) ||
      bpf_skb_store_bytes(skb, ETH_HLEN + 6, &new_hop, 2, BPF_F_RECOMPUTE_CSUM) ||
      bpf_skb_store_bytes(skb, ETH_HLEN + __builtin_offsetof(struct ipv6hdr, saddr), &addrs[8], 32,
                          0) ||
      bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(*ip6), &new_ports, 4, 0)) {
    *verdict = flowDrop();
    return 1;
  }
  *verdict = scTransmit(skb, &k, f, &fib, tcp_flags, tot, egress, bpf_htons(ETH_P_IPV6));
  return 1;
}
