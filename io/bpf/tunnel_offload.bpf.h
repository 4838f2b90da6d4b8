// SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only
// Part of ingress_redirect.bpf.c (included there, one BPF object): a tunnel conn's flows entry
// (struct lb_bpf_flow's `encap`), gateway mode. The client's packet is encapsulated in the
// tc program, as core's tunnel forwarder (core/xmit/tunnel.cc) would have done it in lbd:
// the inner TTL is decremented (its header checksum follows), bpf_skb_adjust_room makes room
// for the outer headers after the Ethernet header (IPv4 + UDP + GUE, IPv4 + GRE, or IPv4 alone
// for IPIP; for a GSO skb it also sets skb->encapsulation, the inner headers and
// SKB_GSO_UDP_TUNNEL, SKB_GSO_GRE or SKB_GSO_IPXIP4, and shrinks gso_size by the added bytes so
// every wire segment keeps its size), the outer headers are written, and the packet leaves
// through the device bpf_fib_lookup picks for the real server. Only one direction exists: the
// real server answers the client directly (as DR).

#define LB_GUE_OUTER_LEN (sizeof(struct iphdr) + sizeof(struct udphdr) + 4)
#define LB_IPIP_OUTER_LEN sizeof(struct iphdr)
#define LB_GRE_OUTER_LEN (sizeof(struct iphdr) + 4)

// The outer headers as core's writeOuterV4 + writeGue / writeGre make them (IPIP: `ip` alone).
struct lb_tun4_hdr {
  struct iphdr ip;

  union {
    struct {
      struct udphdr udp;
      __u8 gue[4];  // version 0, C 0, hlen 0; proto_ctype; flags 0
    };

    struct {
      __be16 flags;  // 0: no checksum, key or sequence number; version 0
      __be16 proto;  // ETH_P_IP
    } gre;
  };
};

_Static_assert(sizeof(struct lb_tun4_hdr) == LB_GUE_OUTER_LEN, "no padding in the outer headers");

// flowV4's tunnel branch, after flowMatch found an entry with `encap` set: 1 (*verdict set)
// when the entry decided, 0 for the slow path (nothing written yet). GUE, IPIP and GRE differ
// only in the outer headers' length and kind (LB_BPF_ENCAP_*).
static __always_inline int tunEncapV4(struct __sk_buff* skb,
                                      struct iphdr* iph,
                                      __u32 tot,
                                      __u32 l4_hlen,
                                      const struct lb_bpf_flow_key* k,
                                      struct lb_bpf_flow* f,
                                      __u8 tcp_flags,
                                      int* verdict) {
  const int gue = f->encap == LB_BPF_ENCAP_GUE4 || f->encap == LB_BPF_ENCAP_GUE4_NOPMTU;
  const int ipip = f->encap == LB_BPF_ENCAP_IPIP4 || f->encap == LB_BPF_ENCAP_IPIP4_NOPMTU;
  const int gre = f->encap == LB_BPF_ENCAP_GRE4 || f->encap == LB_BPF_ENCAP_GRE4_NOPMTU;
  const __u32 outer_len = gue ? LB_GUE_OUTER_LEN : gre ? LB_GRE_OUTER_LEN : LB_IPIP_OUTER_LEN;
  const __u32 outer_tot = tot + outer_len;
  // A UDP GSO super-datagram stays with lbd: lowering its gso_size would cut the sender's
  // datagrams at other boundaries (for TCP any segment size is valid).
  if (outer_tot > 0xffff || (iph->protocol == IPPROTO_UDP && skb->gso_size != 0) ||
      (!gue && !ipip && !gre)) {
    count(LB_BPF_CNT_FLOW_SLOW);
    return 0;
  }
  struct lb_tun4_hdr h = {};
  h.ip.version = 4;
  h.ip.ihl = 5;
  // ecnEncapsulate: the inner DS field, CE carried as ECT(0).
  h.ip.tos = (iph->tos & 3) == 3 ? (iph->tos & ~3) | 2 : iph->tos;
  h.ip.tot_len = bpf_htons(outer_tot);
  const int df = (f->encap == LB_BPF_ENCAP_GUE4 || f->encap == LB_BPF_ENCAP_IPIP4 ||
                  f->encap == LB_BPF_ENCAP_GRE4) &&
                 (iph->frag_off & bpf_htons(0x4000));
  h.ip.id = df ? 0 : iph->id;
  h.ip.frag_off = df ? bpf_htons(0x4000) : 0;
  h.ip.ttl = iph->ttl - 1;  // ttl > 1 was checked
  h.ip.protocol = gue ? IPPROTO_UDP : gre ? IPPROTO_GRE : IPPROTO_IPIP;
  __builtin_memcpy(&h.ip.saddr, f->new_saddr, 4);
  __builtin_memcpy(&h.ip.daddr, f->new_daddr, 4);
  if (gue) {
    h.udp.source = f->new_sport;
    h.udp.dest = f->new_dport;
    h.udp.len = bpf_htons(outer_tot - sizeof(struct iphdr));
    h.gue[1] = IPPROTO_IPIP;
  } else if (gre) {
    h.gre.proto = bpf_htons(ETH_P_IP);  // gre_build_header: flags 0 without TUNNEL_CSUM
  }
  const __s64 sum = bpf_csum_diff(NULL, 0, (__be32*)&h.ip, sizeof(h.ip), 0);
  if (sum < 0) {
    count(LB_BPF_CNT_FLOW_SLOW);
    return 0;
  }
  __u32 s = (__u32)sum;
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  h.ip.check = (__u16)~s;

  struct bpf_fib_lookup fib = {.family = LB_AF_INET, .l4_protocol = h.ip.protocol};
  if (gue) {
    fib.sport = h.udp.source;
    fib.dport = h.udp.dest;
  }
  fib.tos = h.ip.tos;
  fib.ipv4_src = h.ip.saddr;
  fib.ipv4_dst = h.ip.daddr;
  // A non-GSO packet: the outer packet against the route MTU (too big: the slow path, where
  // lbd answers FRAG_NEEDED or fragments as before). A GSO skb: its wire segments keep their
  // size (gso_size shrinks by the outer headers), so the inner headers + gso_size must fit.
  if (!flowRoute(skb, &fib, outer_tot, sizeof(*iph) + l4_hlen)) {
    count(LB_BPF_CNT_FLOW_SLOW);
    return 0;
  }
  __be16 old_ttl = ((__be16*)iph)[4];            // ttl and protocol
  __be16 new_ttl = old_ttl - bpf_htons(0x0100);  // ttl > 1 was checked
  if (!flowPrepare(skb, tot, ETH_HLEN + sizeof(*iph))) {
    *verdict = flowSlowToKernel();
    return 1;
  }
  // GUE: the GUE header sits between the UDP header and the inner packet, for GSO the inner
  // "MAC" header (__skb_udp_tunnel_segment cuts after it). GRE: the transport header is the GRE
  // header, the inner "MAC" header is empty (bpf_skb_net_grow: SKB_GSO_GRE, transport header
  // after the outer IPv4 one, inner MAC = inner network header), so gre_gso_segment takes the
  // 4 bytes between them as the GRE header, as for IPVS's own GRE skbs. IPIP: the inner IPv4
  // header follows the outer one (SKB_GSO_IPXIP4). A failure changes nothing: lbd takes the
  // packet.
  const __u64 room =
      gue ? BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP | BPF_F_ADJ_ROOM_ENCAP_L2(4)
      : gre ? BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_GRE
            : BPF_F_ADJ_ROOM_ENCAP_L3_IPV4;
  if (bpf_skb_adjust_room(skb, outer_len, BPF_ADJ_ROOM_MAC, room)) {
    *verdict = flowSlowToKernel();
    return 1;
  }
  const __u32 inner = ETH_HLEN + outer_len;
  if (bpf_l3_csum_replace(skb, inner + __builtin_offsetof(struct iphdr, check), old_ttl, new_ttl,
                          2) ||
      bpf_skb_store_bytes(skb, inner + __builtin_offsetof(struct iphdr, ttl), &new_ttl, 2, 0)) {
    *verdict = flowDrop();
    return 1;
  }
  __u8 macs[2 * ETH_ALEN];
  __builtin_memcpy(macs, fib.dmac, ETH_ALEN);
  __builtin_memcpy(macs + ETH_ALEN, fib.smac, ETH_ALEN);
  if (bpf_skb_store_bytes(skb, ETH_HLEN, &h, outer_len, 0) ||
      bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0)) {
    *verdict = flowDrop();
    return 1;
  }
  flowAccount(k, f, tcp_flags, tot);
  *verdict = bpf_redirect(fib.ifindex, 0);
  return 1;
}
