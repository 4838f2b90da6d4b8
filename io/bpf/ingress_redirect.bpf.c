// SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only
// tc (clsact) ingress fast path: packets for lbd (to a VIP or full-NAT local address, or a NAT
// reply from a real server's port) go straight to the TUN device with bpf_redirect, skipping
// ip_rcv, the policy-rule FIB lookup and ip_forward. Anything this program is not sure about
// is left to the kernel (TC_ACT_UNSPEC: the next tc filter, then the normal stack), which still
// routes it to lbd through lbd's routes and rules as before. Built with clang -target bpf.
//
// In front of that, the established-flow fast path ("flow offload", Katran-style): a packet of
// a connection lbd installed in `flows` is rewritten here (addresses, ports, checksums, TTL,
// MAC) and sent out of the egress device bpf_fib_lookup picks, never reaching userspace. What
// it cannot do (no neighbour, too big) takes the TUN path as before. lbd may install a TCP
// conn's entries right after it scheduled the client's SYN: the SYN-ACK, the handshake ACK,
// data, FINs and RSTs are all forwarded here, and each forwarded segment ORs its ACK/FIN/RST
// into its entry's flags, which lbd reads to drive its state machine. The last ACK of a close
// (after both FINs) or an RST finishes the conn: one record with both entries' counters and
// flags goes to the `done` ring buffer, and both entries are deleted. A SYN without ACK (a new
// connection on a reused tuple, or a retransmitted SYN) closes the entry and its reverse: that
// packet and the conn's later ones take the TUN path, so lbd decides about it.
// libbpf's headers need the kernel's types first.
// clang-format off
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
// clang-format on

#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include "io/bpf/redirect_abi.h"

// Set by the loader before load (its own read-only map, LB_BPF_CONFIG_SECTION), so the
// verifier sees constants.
const volatile struct lb_bpf_config cfg SEC(LB_BPF_CONFIG_SECTION) = {0};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, LB_BPF_MAX_DSTS);
  __type(key, struct lb_bpf_dst_key);
  __type(value, __u8);
} dsts SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, LB_BPF_MAX_REPLIES);
  __type(key, struct lb_bpf_reply_key);
  __type(value, __u8);
} replies SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, LB_BPF_MAX_FLOWS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct lb_bpf_flow_key);
  __type(value, struct lb_bpf_flow);
} flows SEC(".maps");

// Conns the program finished (struct lb_bpf_flow_done), read by the loader from its mmapped
// pages. Pushed without a wakeup: the loader polls it on its own clock, never epoll.
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, LB_BPF_DONE_BYTES);
} done SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, LB_BPF_CNT_MAX);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

#define LB_AF_INET 2
#define LB_AF_INET6 10
#define LB_IP_MF_OFFSET 0x3fff  // IP_MF | IP_OFFSET
#define LB_IP_OFFSET 0x1fff
// Linear bytes wanted for parsing: Ethernet, the largest IPv4 header, the L4 ports.
#define LB_PULL_LEN (ETH_HLEN + 60 + 4)

static __always_inline void count(__u32 idx) {
  __u64* v = bpf_map_lookup_elem(&counters, &idx);
  if (v)
    *v += 1;
}

static __always_inline int pass(void) {
  count(LB_BPF_CNT_PASS);
  return TC_ACT_UNSPEC;
}

// Hands the packet to the TUN device. bpf_redirect to an ARPHRD_NONE device takes the
// __bpf_redirect_no_mac path (net/core/filter.c): at ingress the MAC header is already pulled,
// so the TUN reader gets the IP packet; GSO and CHECKSUM_PARTIAL state travel with the skb and
// come out as the virtio-net header (dev_queue_xmit segments first if TUN lacks the offload).
// A non-GSO frame longer than the IP length (Ethernet padding) is trimmed first, as
// ip_rcv_core / ipv6_rcv do.
static __always_inline int redirect(struct __sk_buff* skb, __u32 l3_len, __u32 counter) {
  if (skb->gso_size == 0 && skb->len > ETH_HLEN + l3_len) {
    if (bpf_skb_change_tail(skb, ETH_HLEN + l3_len, 0))
      return pass();
  }
  count(counter);
  return bpf_redirect(cfg.tun_ifindex, 0);
}

static __always_inline int hasL4Ports(__u8 proto) {
  return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

static __always_inline int csumFoldOk(__u32 sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

// The IPv4 header checksum (ip_rcv_core drops a bad one; so does the kernel path we skip).
// Without options from the packet; with options from a copy on the stack, because the
// verifier cannot bound a variable-length walk over packet memory.
static __always_inline int ipv4CsumOk(struct __sk_buff* skb, const struct iphdr* iph, __u32 hlen) {
  __u32 sum = 0;
  if (hlen == sizeof(*iph)) {
    const __u16* w = (const __u16*)iph;
#pragma unroll
    for (int i = 0; i < 10; i++)
      sum += w[i];
    return csumFoldOk(sum);
  }
  __u16 w[30];
  if (hlen > sizeof(w) || bpf_skb_load_bytes(skb, ETH_HLEN, w, hlen))
    return 0;
  for (int i = 0; i < 30; i++) {
    if (i * 2 >= hlen)
      break;
    sum += w[i];
  }
  return csumFoldOk(sum);
}

// In gateway mode the local table (pref 0) wins over lbd's diversion rules: a packet from a
// real server's port to one of the balancer's own sockets is not a NAT reply.
static __always_inline int ownedByLocalSocket(struct __sk_buff* skb,
                                              struct bpf_sock_tuple* t,
                                              __u32 tlen,
                                              __u8 proto) {
  if (!cfg.local_sockets_first)
    return 0;
  if (proto == IPPROTO_TCP) {
    struct bpf_sock* sk = bpf_skc_lookup_tcp(skb, t, tlen, BPF_F_CURRENT_NETNS, 0);
    if (!sk)
      return 0;
    bpf_sk_release(sk);
    return 1;
  }
  if (proto == IPPROTO_UDP) {
    struct bpf_sock* sk = bpf_sk_lookup_udp(skb, t, tlen, BPF_F_CURRENT_NETNS, 0);
    if (!sk)
      return 0;
    bpf_sk_release(sk);
    return 1;
  }
  return 0;
}

// ---- Established-flow fast path -------------------------------------------------------

#define LB_TCP_FIN 0x01
#define LB_TCP_SYN 0x02
#define LB_TCP_RST 0x04
#define LB_TCP_ACK 0x10
// bpf_l4_csum_replace: an IPv6 pseudo-header change leaves a CHECKSUM_COMPLETE skb->csum
// alone (Linux 6.16; older kernels reject the flag with EINVAL and get the call without it).
#define LB_BPF_F_IPV6 (1ULL << 7)

static __always_inline int flowDrop(void) {
  count(LB_BPF_CNT_FLOW_DROP);
  return TC_ACT_SHOT;
}

// The slow path after a packet-changing helper: the parsed pointers are gone, so the kernel
// path (which still routes the packet to lbd) takes it rather than the dsts/replies lookup.
static __always_inline int flowSlowToKernel(void) {
  count(LB_BPF_CNT_FLOW_SLOW);
  return TC_ACT_UNSPEC;
}

// TCP flags (0 for UDP) and the L4 header length. 0 when the header is not in the linear data.
static __always_inline int flowL4(void* l4, void* end, __u8 proto, __u8* tcp_flags, __u32* hlen) {
  if (proto == IPPROTO_TCP) {
    struct tcphdr* th = l4;
    if ((void*)(th + 1) > end)
      return 0;
    *tcp_flags = ((__u8*)th)[13];
    *hlen = th->doff * 4;
    return 1;
  }
  struct udphdr* uh = l4;
  if ((void*)(uh + 1) > end)
    return 0;
  *tcp_flags = 0;
  *hlen = sizeof(*uh);
  return 1;
}

// Sets `bits` in an entry's flags. Several CPUs may update one entry (and a SYN on the
// reverse direction closes it), hence the atomic OR; a plain read first, so a flow
// whose bits are all set already (the steady state) writes nothing more to the entry.
static __always_inline void flowSetFlags(struct lb_bpf_flow* f, __u64 bits) {
  const __u64 missing = bits & ~*(volatile __u64*)&f->flags;
  if (missing)
    __sync_fetch_and_or(&f->flags, missing);
}

// The open entry for `k`, or NULL. A TCP SYN without ACK (a new connection on a reused tuple,
// or the client retransmitting its SYN) closes the entry and its reverse: lbd's state machine
// decides about it, and the conn's later packets, from here on. SYN-ACK, FIN and RST are
// forwarded like any other packet (flowTransmit records them).
static __always_inline struct lb_bpf_flow* flowMatch(const struct lb_bpf_flow_key* k,
                                                     __u8 tcp_flags) {
  struct lb_bpf_flow* f = bpf_map_lookup_elem(&flows, k);
  if (!f)
    return NULL;
  if (f->flags & LB_BPF_FLOW_F_CLOSED) {
    count(LB_BPF_CNT_FLOW_SLOW);
    return NULL;
  }
  if ((tcp_flags & (LB_TCP_SYN | LB_TCP_ACK)) == LB_TCP_SYN) {
    struct lb_bpf_flow_key rk = f->reverse;
    flowSetFlags(f, LB_BPF_FLOW_F_CLOSED);
    struct lb_bpf_flow* r = bpf_map_lookup_elem(&flows, &rk);
    if (r)
      flowSetFlags(r, LB_BPF_FLOW_F_CLOSED);
    count(LB_BPF_CNT_FLOW_SLOW);
    return NULL;
  }
  return f;
}

// The LB_BPF_FLOW_F_* bits a forwarded segment records (0 for UDP, whose tcp_flags are 0).
static __always_inline __u64 flowTcpBits(__u8 tcp_flags) {
  __u64 bits = 0;
  if ((tcp_flags & (LB_TCP_SYN | LB_TCP_ACK)) == LB_TCP_ACK)
    bits |= LB_BPF_FLOW_F_ACK;
  if (tcp_flags & LB_TCP_FIN)
    bits |= LB_BPF_FLOW_F_FIN;
  if (tcp_flags & LB_TCP_RST)
    bits |= LB_BPF_FLOW_F_RST;
  return bits;
}

// Routes the rewritten packet as ip_forward would when it comes out of the TUN device (lbd's
// slow path re-enters the kernel there): policy rules, forwarding on, a valid neighbour. A
// non-GSO packet is checked against the route MTU (tot_len); a GSO skb segment by segment
// against the egress device's MTU (with tot_len 0 is_skb_forwardable lets GSO through and
// reports the device MTU), as ip_forward's ip_exceeds_mtu does with skb_gso_validate_*.
static __always_inline int flowRoute(struct __sk_buff* skb,
                                     struct bpf_fib_lookup* fib,
                                     __u32 tot,
                                     __u32 hdrs) {
  if (skb->gso_size == 0 && tot > 0xffff)
    return 0;
  fib->tot_len = skb->gso_size != 0 ? 0 : tot;
  fib->ifindex = cfg.tun_ifindex;
  if (bpf_fib_lookup(skb, fib, sizeof(*fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
    return 0;
  return skb->gso_size == 0 || hdrs + skb->gso_size <= fib->mtu_result;
}

// Drops Ethernet padding (ip_rcv_core trims it too) and makes the headers up to `hdr_end`
// linear and writable (a tap may hold a clone), before anything is written.
static __always_inline int flowPrepare(struct __sk_buff* skb, __u32 tot, __u32 hdr_end) {
  if (skb->gso_size == 0 && skb->len > ETH_HLEN + tot &&
      bpf_skb_change_tail(skb, ETH_HLEN + tot, 0))
    return 0;
  return bpf_skb_pull_data(skb, hdr_end) == 0;
}

static __always_inline void flowCounts(struct lb_bpf_flow_counts* c, const struct lb_bpf_flow* f) {
  c->packets = f->packets;
  c->bytes = f->bytes;
  c->last_ns = f->last_ns;
  c->flags = f->flags;
}

// Finishes a TCP conn whose entry `f` (key `k`) has just forwarded a segment and recorded it:
// on an RST, or on an ACK without SYN and FIN from a direction that sent its FIN once the other
// direction's FIN was forwarded too (the last ACK of a close). Both entries' counters and flags
// go to the `done` ring in one record and both entries are deleted, so lbd learns about the
// close without a syscall. A full ring, or a missing reverse entry, leaves the entries as they
// are (lbd's periodic reads find the flags). Exactly once per conn: the record is reserved
// first, and the deletion of the reply == 0 entry decides which CPU pushes it.
static __always_inline void flowFinish(const struct lb_bpf_flow_key* k,
                                       struct lb_bpf_flow* f,
                                       __u8 tcp_flags) {
  const int rst = (tcp_flags & LB_TCP_RST) != 0;
  if (!rst && ((tcp_flags & (LB_TCP_SYN | LB_TCP_ACK | LB_TCP_FIN)) != LB_TCP_ACK ||
               !(f->flags & LB_BPF_FLOW_F_FIN)))
    return;
  struct lb_bpf_flow_key fk = *k;  // keys on the stack: the entries go away below
  struct lb_bpf_flow_key rk = f->reverse;
  struct lb_bpf_flow* r = bpf_map_lookup_elem(&flows, &rk);
  if (!r || (!rst && !(r->flags & LB_BPF_FLOW_F_FIN)))
    return;
  struct lb_bpf_flow_done* rec = bpf_ringbuf_reserve(&done, sizeof(*rec), 0);
  if (!rec)
    return;  // the ring is full
  const int f_is_in = !f->reply;
  rec->cookie = f->cookie;
  flowCounts(&rec->in, f_is_in ? f : r);
  flowCounts(&rec->out, f_is_in ? r : f);
  if (bpf_map_delete_elem(&flows, f_is_in ? &fk : &rk)) {
    bpf_ringbuf_discard(rec, BPF_RB_NO_WAKEUP);  // another CPU finished it (or lbd removed it)
    return;
  }
  bpf_map_delete_elem(&flows, f_is_in ? &rk : &fk);
  bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
  count(LB_BPF_CNT_FLOW_DONE);
}

// The packet is rewritten: MAC header, the entry's counters and TCP flags, the conn finished if
// this was its last segment (flowFinish), out of the egress device.
static __always_inline int flowTransmit(struct __sk_buff* skb,
                                        const struct lb_bpf_flow_key* k,
                                        struct lb_bpf_flow* f,
                                        const struct bpf_fib_lookup* fib,
                                        __u8 tcp_flags) {
  __u8 macs[2 * ETH_ALEN];
  __builtin_memcpy(macs, fib->dmac, ETH_ALEN);
  __builtin_memcpy(macs + ETH_ALEN, fib->smac, ETH_ALEN);
  if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0))
    return flowDrop();
  __sync_fetch_and_add(&f->packets, 1);
  __sync_fetch_and_add(&f->bytes, skb->len - ETH_HLEN);
  f->last_ns = bpf_ktime_get_ns();
  const __u64 bits = flowTcpBits(tcp_flags);
  if (bits) {
    flowSetFlags(f, bits);
    flowFinish(k, f, tcp_flags);
  }
  count(LB_BPF_CNT_FLOW_FWD);
  return bpf_redirect(fib->ifindex, 0);
}

// Checksum offsets: helpers handle CHECKSUM_PARTIAL (GSO from a veth: the field holds the
// pseudo-header seed, so only BPF_F_PSEUDO_HDR changes touch it) and CHECKSUM_COMPLETE.
static __always_inline __u32 flowCsumOff(__u32 l4_off, __u8 proto) {
  return l4_off + (proto == IPPROTO_TCP ? __builtin_offsetof(struct tcphdr, check)
                                        : __builtin_offsetof(struct udphdr, check));
}

// IPv4 without options, not a fragment, TCP or UDP: 1 when the flows entry decided the
// packet's fate (*verdict), 0 when the dsts/replies logic decides. (A verdict-or-sentinel
// return would not do: the verifier cannot tell bpf_redirect's result from the sentinel.)
static __always_inline int flowV4(
    struct __sk_buff* skb, struct iphdr* iph, void* end, __u32 tot, int* verdict) {
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
  fib.sport = f->new_sport;
  fib.dport = f->new_dport;
  fib.tos = iph->tos;
  fib.ipv4_src = addrs[2];
  fib.ipv4_dst = addrs[3];
  if (!flowRoute(skb, &fib, tot, sizeof(*iph) + l4_hlen)) {
    count(LB_BPF_CNT_FLOW_SLOW);
    return 0;
  }
  __be32 old_ports = *(__be32*)ports;
  __be32 new_ports;
  __builtin_memcpy(&new_ports, &f->new_sport, 4);  // new_sport, new_dport
  __be16 old_ttl = ((__be16*)iph)[4];              // ttl and protocol
  __be16 new_ttl = old_ttl - bpf_htons(0x0100);    // ttl > 1 was checked
  const __u32 csum_off = flowCsumOff(ETH_HLEN + sizeof(*iph), proto);
  const __u64 mangled = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
  if (!flowPrepare(skb, tot, csum_off + 2)) {
    *verdict = flowSlowToKernel();
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
  *verdict = flowTransmit(skb, &k, f, &fib, tcp_flags);
  return 1;
}

// IPv6 with TCP or UDP right after the fixed header: as flowV4.
static __always_inline int flowV6(
    struct __sk_buff* skb, struct ipv6hdr* ip6, void* end, __u32 tot, int* verdict) {
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
  fib.sport = f->new_sport;
  fib.dport = f->new_dport;
  fib.flowinfo = *(__be32*)ip6 & bpf_htonl(0x0fffffff);  // IPV6_FLOWINFO_MASK
  __builtin_memcpy(fib.ipv6_src, &addrs[8], 16);
  __builtin_memcpy(fib.ipv6_dst, &addrs[12], 16);
  if (!flowRoute(skb, &fib, tot, sizeof(*ip6) + l4_hlen)) {
    count(LB_BPF_CNT_FLOW_SLOW);
    return 0;
  }
  __be32 old_ports = *(__be32*)ports;
  __be32 new_ports;
  __builtin_memcpy(&new_ports, &f->new_sport, 4);  // new_sport, new_dport
  __be16 old_hop = ((__be16*)ip6)[3];              // nexthdr and hop_limit
  __be16 new_hop = old_hop - bpf_htons(0x0001);    // hop_limit > 1 was checked
  const __u32 csum_off = flowCsumOff(ETH_HLEN + sizeof(*ip6), proto);
  const __u64 mangled = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
  if (!flowPrepare(skb, tot, csum_off + 2)) {
    *verdict = flowSlowToKernel();
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
  // The hop limit has no header checksum: BPF_F_RECOMPUTE_CSUM keeps a CHECKSUM_COMPLETE
  // skb->csum right (an aligned 16-bit word, so the byte's parity is the word's).
  if (err || bpf_l4_csum_replace(skb, csum_off, old_ports, new_ports, mangled | 4) ||
      bpf_skb_store_bytes(skb, ETH_HLEN + 6, &new_hop, 2, BPF_F_RECOMPUTE_CSUM) ||
      bpf_skb_store_bytes(skb, ETH_HLEN + __builtin_offsetof(struct ipv6hdr, saddr), &addrs[8], 32,
                          0) ||
      bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(*ip6), &new_ports, 4, 0)) {
    *verdict = flowDrop();
    return 1;
  }
  *verdict = flowTransmit(skb, &k, f, &fib, tcp_flags);
  return 1;
}

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

// ---- SYN proxy: bare SYNs answered with lbd's SYN cookie ---------------------------------
// A port of core/pipeline/synproxy.cc's makeCookie and of the SYN-ACK synproxyAnswer makes
// with rewriteSegment; tests/io/bpf_synproxy_test.cc proves both give the same bytes. Kept in
// its own functions (spAnswerV4 / spAnswerV6, called from handleV4 / handleV6 once the flow
// fast path had no say).

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, LB_BPF_MAX_SYNPROXY);
  __type(key, struct lb_bpf_synproxy_key);
  __type(value, __u8);
} synproxy SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct lb_bpf_synproxy_cfg);
} synproxy_cfg SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, LB_BPF_SP_CNT_MAX);
  __type(key, __u32);
  __type(value, __u64);
} synproxy_cnt SEC(".maps");

#define LB_SP_COUNT_NS 64000000000ULL  // one cookie counter step: 64 s (synproxy.cc kCountNs)
#define LB_SP_COOKIE_MASK 0xffffffu    // 24 bits
#define LB_SP_TCP_LEN 24               // the SYN-ACK's TCP header: 20 + the MSS option

static __always_inline void spCount(__u32 idx) {
  __u64* v = bpf_map_lookup_elem(&synproxy_cnt, &idx);
  if (v)
    *v += 1;
}

static __always_inline __u64 spMix(__u64 x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// synproxy.cc's cookieHash: a[] and b[] are the 16-byte address fields (IPv4 in the first 4
// bytes, the rest zero) read as two native 64-bit words each, ports in host order.
static __always_inline __u32 spHash(__u64 secret,
                                    const __u64* a,
                                    const __u64* b,
                                    __u16 sport,
                                    __u16 dport,
                                    __u32 count,
                                    __u64 which) {
  __u64 h = secret ^ (0x9e3779b97f4a7c15ULL * (which + 1));
  h = spMix(h ^ a[0]);
  h = spMix(h ^ a[1]);
  h = spMix(h ^ b[0]);
  h = spMix(h ^ b[1]);
  h = spMix(h ^ (((__u64)sport << 48) | ((__u64)dport << 32) | count));
  return (__u32)(h >> 32);
}

// synproxy.cc's makeCookie with the time from bpf_ktime_get_ns (CLOCK_MONOTONIC, the
// dataplane's MonoTime). `mss` is the client's MSS option, 0 when absent.
static __always_inline __u32 spCookie(__u64 secret,
                                      __s64 clock_offset_ns,
                                      const __u64* saddr,
                                      const __u64* daddr,
                                      __u16 sport,
                                      __u16 dport,
                                      __u32 isn,
                                      __u16 mss) {
  if (mss == 0)
    mss = 536;
  __u32 idx = 0;  // kMssTable {536, 1300, 1440, 1460}: the largest not above mss
  if (mss >= 1300)
    idx = 1;
  if (mss >= 1440)
    idx = 2;
  if (mss >= 1460)
    idx = 3;
  const __u32 count = (__u32)((bpf_ktime_get_ns() + clock_offset_ns) / LB_SP_COUNT_NS);
  return spHash(secret, saddr, daddr, sport, dport, 0, 0) + isn + (count << 24) +
         ((spHash(secret, saddr, daddr, sport, dport, count, 1) + idx) & LB_SP_COOKIE_MASK);
}

// synproxy.cc's synMss over the options (`olen` bytes, at most 40) copied to the stack (44).
static __always_inline __u16 spSynMss(const __u8* opt, __u32 olen) {
  __u32 i = 0;
  for (int n = 0; n < 40; n++) {
    if (i >= olen)
      break;
    i &= 63;  // i < olen <= 40 already: for the verifier's bounds on the stack reads
    if (i > 39)
      break;
    const __u8 kind = opt[i];
    if (kind == 0)
      break;
    if (kind == 1) {
      i++;
      continue;
    }
    if (i + 1 >= olen)
      break;
    const __u8 len = opt[i + 1];
    if (len < 2)
      break;
    if (kind == 2 && len == 4 && i + 4 <= olen)
      return ((__u16)opt[i + 2] << 8) | opt[i + 3];
    i += len;
  }
  return 0;
}

// The client's MSS option of the SYN whose options (`olen` bytes) start at `off`: 0 when
// absent, -1 when they cannot be read. A global function, verified once on its own: inlined,
// the walk's paths multiplied with the caller's past the verifier's limit.
__attribute__((noinline)) int lb_sp_syn_mss(struct __sk_buff* skb, __u64 off, __u64 olen) {
  __u8 opt[44] = {};  // 40 and the 3 bytes past the last offset spSynMss reads at
  if (olen == 0)
    return 0;
  // 64-bit compares: the helper's size argument needs the register's 64-bit bounds.
  if (olen > 40 || bpf_skb_load_bytes(skb, (__u32)off, opt, olen))
    return -1;
  return spSynMss(opt, (__u32)olen);
}

static __always_inline __u32 spSum16(const __u16* w, int n, __u32 sum) {
#pragma unroll
  for (int i = 0; i < n; i++)
    sum += w[i];
  return sum;
}

static __always_inline __u16 spFold(__u32 sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (__u16)~sum;
}

// The SYN-ACK's TCP header (LB_SP_TCP_LEN bytes at `t`) for a SYN with `th`.
static __always_inline void spTcp(__u8* t,
                                  const struct tcphdr* th,
                                  __u32 cookie,
                                  __u32 isn,
                                  const struct lb_bpf_synproxy_cfg* c,
                                  __u16 mss) {
  __builtin_memset(t, 0, LB_SP_TCP_LEN);
  __builtin_memcpy(t, &th->dest, 2);
  __builtin_memcpy(t + 2, &th->source, 2);
  const __be32 seq = bpf_htonl(cookie);
  const __be32 ack = bpf_htonl(isn + 1);
  __builtin_memcpy(t + 4, &seq, 4);
  __builtin_memcpy(t + 8, &ack, 4);
  t[12] = (LB_SP_TCP_LEN / 4) << 4;
  t[13] = LB_TCP_SYN | LB_TCP_ACK;
  const __be16 win = bpf_htons(c->window);
  __builtin_memcpy(t + 14, &win, 2);
  t[20] = 2;
  t[21] = 4;
  t[22] = mss >> 8;
  t[23] = mss & 0xff;
}

// The SYN's TCP header and MSS option: 1 when the program may answer it (a bare SYN whose
// header lies within the IP packet), with *mss the client's MSS (0: none).
static __always_inline int spParseSyn(
    struct __sk_buff* skb, const struct tcphdr* th, __u32 l4_off, __u32 l4_len, __u16* mss) {
  const __u8 flags = ((const __u8*)th)[13];
  if ((flags & (LB_TCP_SYN | LB_TCP_ACK | LB_TCP_RST | LB_TCP_FIN)) != LB_TCP_SYN)
    return 0;
  const __u32 hlen = th->doff * 4;
  if (hlen < sizeof(*th) || hlen > l4_len)
    return 0;
  const int m = lb_sp_syn_mss(skb, l4_off + sizeof(*th), hlen - sizeof(*th));
  if (m < 0)
    return 0;
  *mss = (__u16)m;
  return 1;
}

// A TCP SYN to a synproxy VIP:port no flow entry or NAT reply rule claims, and the cfg:
// NULL when the program does not answer it (lbd's TUN path then does as before).
static __always_inline const struct lb_bpf_synproxy_cfg* spService(
    __u8 family, const void* saddr, const void* daddr, __u32 alen, __be16 sport, __be16 dport) {
  struct lb_bpf_synproxy_key sk = {.family = family, .port = dport};
  __builtin_memcpy(sk.addr, daddr, alen);
  if (!bpf_map_lookup_elem(&synproxy, &sk))
    return NULL;
  __u32 zero = 0;
  const struct lb_bpf_synproxy_cfg* c = bpf_map_lookup_elem(&synproxy_cfg, &zero);
  // lbd's pipeline looks for a reply (a conn from the real server side, nat_icmp_send) and for
  // an existing conn before it answers: a NAT real server's port, or a tuple with a flows
  // entry (open or closed), stays lbd's.
  struct lb_bpf_reply_key rk = {.family = family, .proto = IPPROTO_TCP, .port = sport};
  __builtin_memcpy(rk.addr, saddr, alen);
  struct lb_bpf_flow_key fk = {.family = family, .proto = IPPROTO_TCP};
  fk.sport = sport;
  fk.dport = dport;
  __builtin_memcpy(fk.saddr, saddr, alen);
  __builtin_memcpy(fk.daddr, daddr, alen);
  if (!c || !c->on || bpf_map_lookup_elem(&replies, &rk) || bpf_map_lookup_elem(&flows, &fk)) {
    spCount(LB_BPF_SP_CNT_SLOW);
    return NULL;
  }
  return c;
}

// Replaces the packet with `hdr` (`len` bytes: Ethernet, IP, TCP) and sends it back out of the
// device it came in on. Always decides (*verdict): past bpf_skb_change_tail the parsed
// pointers are gone, so a failed resize goes the kernel way (which still routes it to lbd).
static __always_inline int spSend(struct __sk_buff* skb, const void* hdr, __u32 len, int* verdict) {
  if (bpf_skb_change_tail(skb, len, 0)) {
    spCount(LB_BPF_SP_CNT_SLOW);
    *verdict = TC_ACT_UNSPEC;
    return 1;
  }
  // Past change_tail the packet may be shorter than it was: nothing else may fail half-way.
  // BPF_F_RECOMPUTE_CSUM keeps a CHECKSUM_COMPLETE skb->csum right when the length stayed.
  if (bpf_skb_store_bytes(skb, 0, hdr, len, BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH)) {
    *verdict = TC_ACT_SHOT;
    return 1;
  }
  spCount(LB_BPF_SP_CNT_SYNACK);
  *verdict = bpf_redirect(skb->ifindex, 0);
  return 1;
}

// IPv4 without options, not a fragment, TCP: 1 when the program answered the SYN (*verdict).
static __always_inline int spAnswerV4(
    struct __sk_buff* skb, struct iphdr* iph, void* end, __u32 tot, int* verdict) {
  struct tcphdr* th = (void*)(iph + 1);
  if ((void*)(th + 1) > end || skb->gso_size != 0)
    return 0;
  const __u8 flags = ((const __u8*)th)[13];
  if ((flags & (LB_TCP_SYN | LB_TCP_ACK | LB_TCP_RST | LB_TCP_FIN)) != LB_TCP_SYN)
    return 0;
  const struct lb_bpf_synproxy_cfg* c =
      spService(LB_AF_INET, &iph->saddr, &iph->daddr, 4, th->source, th->dest);
  if (!c)
    return 0;
  __u16 client_mss = 0;
  if (!spParseSyn(skb, th, ETH_HLEN + sizeof(*iph), tot - sizeof(*iph), &client_mss)) {
    spCount(LB_BPF_SP_CNT_SLOW);
    return 0;
  }
  __u64 sa[2] = {0, 0}, da[2] = {0, 0};
  __builtin_memcpy(sa, &iph->saddr, 4);
  __builtin_memcpy(da, &iph->daddr, 4);
  const __u32 isn = bpf_ntohl(th->seq);
  const __u32 cookie = spCookie(c->secret, c->clock_offset_ns, sa, da, bpf_ntohs(th->source),
                                bpf_ntohs(th->dest), isn, client_mss);
  // Ethernet 14 + IPv4 20 + TCP 24, built on the stack (2 bytes of lead so the IP and TCP
  // headers sit 16-bit aligned for the sums).
  __u16 buf[30];
  __u8* p = (__u8*)buf + 2;
  struct ethhdr* eth = (void*)(long)skb->data;
  if ((void*)(eth + 1) > end)
    return 0;
  __builtin_memcpy(p, eth->h_source, ETH_ALEN);
  __builtin_memcpy(p + ETH_ALEN, eth->h_dest, ETH_ALEN);
  __builtin_memcpy(p + 12, &eth->h_proto, 2);
  struct iphdr* ip = (void*)(p + ETH_HLEN);
  ip->version = 4;
  ip->ihl = 5;
  ip->tos = iph->tos;
  ip->tot_len = bpf_htons(sizeof(*ip) + LB_SP_TCP_LEN);
  ip->id = iph->id;
  ip->frag_off = bpf_htons(0x4000);  // DF
  ip->ttl = 64;
  ip->protocol = IPPROTO_TCP;
  ip->check = 0;
  ip->saddr = iph->daddr;
  ip->daddr = iph->saddr;
  __u8* t = p + ETH_HLEN + sizeof(*ip);
  spTcp(t, th, cookie, isn, c, c->mss4);
  ip->check = spFold(spSum16(&buf[8], 10, 0));
  // Pseudo-header: the addresses (words 14..17 of buf), protocol and TCP length.
  __u32 sum = spSum16(&buf[14], 4, bpf_htons(IPPROTO_TCP) + bpf_htons(LB_SP_TCP_LEN));
  const __u16 check = spFold(spSum16(&buf[18], LB_SP_TCP_LEN / 2, sum));
  __builtin_memcpy(t + 16, &check, 2);
  return spSend(skb, p, ETH_HLEN + sizeof(*ip) + LB_SP_TCP_LEN, verdict);
}

// IPv6 with TCP right after the fixed header: as spAnswerV4.
static __always_inline int spAnswerV6(
    struct __sk_buff* skb, struct ipv6hdr* ip6, void* end, __u32 tot, int* verdict) {
  struct tcphdr* th = (void*)(ip6 + 1);
  if ((void*)(th + 1) > end || skb->gso_size != 0)
    return 0;
  const __u8 flags = ((const __u8*)th)[13];
  if ((flags & (LB_TCP_SYN | LB_TCP_ACK | LB_TCP_RST | LB_TCP_FIN)) != LB_TCP_SYN)
    return 0;
  const struct lb_bpf_synproxy_cfg* c =
      spService(LB_AF_INET6, &ip6->saddr, &ip6->daddr, 16, th->source, th->dest);
  if (!c)
    return 0;
  __u16 client_mss = 0;
  if (!spParseSyn(skb, th, ETH_HLEN + sizeof(*ip6), tot - sizeof(*ip6), &client_mss)) {
    spCount(LB_BPF_SP_CNT_SLOW);
    return 0;
  }
  __u64 sa[2], da[2];
  __builtin_memcpy(sa, &ip6->saddr, 16);
  __builtin_memcpy(da, &ip6->daddr, 16);
  const __u32 isn = bpf_ntohl(th->seq);
  const __u32 cookie = spCookie(c->secret, c->clock_offset_ns, sa, da, bpf_ntohs(th->source),
                                bpf_ntohs(th->dest), isn, client_mss);
  // Ethernet 14 + IPv6 40 + TCP 24, 2 bytes of lead as in spAnswerV4.
  __u16 buf[40];
  __u8* p = (__u8*)buf + 2;
  struct ethhdr* eth = (void*)(long)skb->data;
  if ((void*)(eth + 1) > end)
    return 0;
  __builtin_memcpy(p, eth->h_source, ETH_ALEN);
  __builtin_memcpy(p + ETH_ALEN, eth->h_dest, ETH_ALEN);
  __builtin_memcpy(p + 12, &eth->h_proto, 2);
  struct ipv6hdr* ip = (void*)(p + ETH_HLEN);
  __builtin_memcpy(ip, ip6, 4);  // version, traffic class, flow label
  ip->payload_len = bpf_htons(LB_SP_TCP_LEN);
  ip->nexthdr = IPPROTO_TCP;
  ip->hop_limit = 64;
  __builtin_memcpy(&ip->saddr, &ip6->daddr, 16);
  __builtin_memcpy(&ip->daddr, &ip6->saddr, 16);
  __u8* t = p + ETH_HLEN + sizeof(*ip);
  spTcp(t, th, cookie, isn, c, c->mss6);
  // Pseudo-header: the addresses (words 12..27 of buf), TCP length and protocol.
  __u32 sum = spSum16(&buf[12], 16, bpf_htons(IPPROTO_TCP) + bpf_htons(LB_SP_TCP_LEN));
  const __u16 check = spFold(spSum16(&buf[28], LB_SP_TCP_LEN / 2, sum));
  __builtin_memcpy(t + 16, &check, 2);
  return spSend(skb, p, ETH_HLEN + sizeof(*ip) + LB_SP_TCP_LEN, verdict);
}

// ---- VIPs and NAT replies to the TUN device ------------------------------------------------

static __always_inline int handleV4(struct __sk_buff* skb, void* l3, void* end) {
  struct iphdr* iph = l3;
  if ((void*)(iph + 1) > end)
    return pass();
  __u32 hlen = iph->ihl * 4;
  if (iph->version != 4 || hlen < sizeof(*iph) || iph->ttl <= 1)
    return pass();
  __u32 tot = bpf_ntohs(iph->tot_len);
  // GSO (GRO-merged) packets may carry tot_len 0 (BIG TCP); their lengths are the stack's.
  if (skb->gso_size == 0 && (tot < hlen || tot > skb->len - ETH_HLEN))
    return pass();
  if (!ipv4CsumOk(skb, iph, hlen))
    return pass();
  if (skb->gso_size != 0)
    tot = skb->len - ETH_HLEN;
  if (hlen == sizeof(*iph) && !(bpf_ntohs(iph->frag_off) & LB_IP_MF_OFFSET) &&
      (iph->protocol == IPPROTO_TCP || iph->protocol == IPPROTO_UDP)) {
    int verdict;
    if (cfg.sidecar ? scFlowV4(skb, iph, end, tot, 0, &verdict)
                    : flowV4(skb, iph, end, tot, &verdict))
      return verdict;
  }
  if (hlen == sizeof(*iph) && !(bpf_ntohs(iph->frag_off) & LB_IP_MF_OFFSET) &&
      iph->protocol == IPPROTO_TCP) {
    int verdict;  // the SYN proxy's SYN-ACK
    if (spAnswerV4(skb, iph, end, tot, &verdict))
      return verdict;
  }

  struct lb_bpf_dst_key dk = {.family = LB_AF_INET};
  __builtin_memcpy(dk.addr, &iph->daddr, 4);
  if (bpf_map_lookup_elem(&dsts, &dk))
    return redirect(skb, tot, LB_BPF_CNT_REDIRECT_DST);
  // A non-first fragment has no ports: only the destination rule applies.
  if (bpf_ntohs(iph->frag_off) & LB_IP_OFFSET || !hasL4Ports(iph->protocol))
    return pass();
  __be16* ports = l3 + hlen;
  if ((void*)(ports + 2) > end)
    return pass();
  struct lb_bpf_reply_key rk = {.family = LB_AF_INET, .proto = iph->protocol, .port = ports[0]};
  __builtin_memcpy(rk.addr, &iph->saddr, 4);
  if (!bpf_map_lookup_elem(&replies, &rk))
    return pass();
  struct bpf_sock_tuple t = {};
  t.ipv4.saddr = iph->saddr;
  t.ipv4.daddr = iph->daddr;
  t.ipv4.sport = ports[0];
  t.ipv4.dport = ports[1];
  if (ownedByLocalSocket(skb, &t, sizeof(t.ipv4), rk.proto))
    return pass();
  return redirect(skb, tot, LB_BPF_CNT_REDIRECT_REPLY);
}

static __always_inline int handleV6(struct __sk_buff* skb, void* l3, void* end) {
  struct ipv6hdr* ip6 = l3;
  if ((void*)(ip6 + 1) > end)
    return pass();
  if (ip6->version != 6 || ip6->hop_limit <= 1)
    return pass();
  __u8 proto = ip6->nexthdr;
  // Extension headers (fragments, hop-by-hop jumbograms, ...) stay with the kernel.
  if (!hasL4Ports(proto) && proto != IPPROTO_ICMPV6)
    return pass();
  __u32 tot = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
  if (skb->gso_size != 0)
    tot = skb->len - ETH_HLEN;
  else if (tot == sizeof(*ip6) || tot > skb->len - ETH_HLEN)
    return pass();
  if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
    int verdict;
    if (cfg.sidecar ? scFlowV6(skb, ip6, end, tot, 0, &verdict)
                    : flowV6(skb, ip6, end, tot, &verdict))
      return verdict;
  }
  if (proto == IPPROTO_TCP) {
    int verdict;  // the SYN proxy's SYN-ACK
    if (spAnswerV6(skb, ip6, end, tot, &verdict))
      return verdict;
  }

  if (proto == IPPROTO_ICMPV6) {
    // Neighbour discovery to a proxied address (a unicast NS for NUD) is ip6_forward's
    // proxy-NDP business (ip6_forward_proxy_check), not lbd's: types 133..137 stay.
    __u8* type = (void*)(ip6 + 1);
    if ((void*)(type + 1) > end || (*type >= 133 && *type <= 137))
      return pass();
  }
  struct lb_bpf_dst_key dk = {.family = LB_AF_INET6};
  __builtin_memcpy(dk.addr, &ip6->daddr, 16);
  if (bpf_map_lookup_elem(&dsts, &dk))
    return redirect(skb, tot, LB_BPF_CNT_REDIRECT_DST);
  if (!hasL4Ports(proto))
    return pass();
  __be16* ports = (void*)(ip6 + 1);
  if ((void*)(ports + 2) > end)
    return pass();
  struct lb_bpf_reply_key rk = {.family = LB_AF_INET6, .proto = proto, .port = ports[0]};
  __builtin_memcpy(rk.addr, &ip6->saddr, 16);
  if (!bpf_map_lookup_elem(&replies, &rk))
    return pass();
  struct bpf_sock_tuple t = {};
  __builtin_memcpy(t.ipv6.saddr, &ip6->saddr, 16);
  __builtin_memcpy(t.ipv6.daddr, &ip6->daddr, 16);
  t.ipv6.sport = ports[0];
  t.ipv6.dport = ports[1];
  if (ownedByLocalSocket(skb, &t, sizeof(t.ipv6), proto))
    return pass();
  return redirect(skb, tot, LB_BPF_CNT_REDIRECT_REPLY);
}

SEC("tc")

int lb_ingress_redirect(struct __sk_buff* skb) {
  // ip_rcv drops PACKET_OTHERHOST; a VLAN tag still in the skb (an untagged-device program
  // seeing tagged traffic) would be re-inserted by TUN's virtio header path. Both stay.
  if (skb->pkt_type != PACKET_HOST || skb->vlan_present)
    return pass();
  __u32 want = skb->len < LB_PULL_LEN ? skb->len : LB_PULL_LEN;
  void* data = (void*)(long)skb->data;
  void* end = (void*)(long)skb->data_end;
  if (data + want > end) {
    if (bpf_skb_pull_data(skb, want))
      return pass();
    data = (void*)(long)skb->data;
    end = (void*)(long)skb->data_end;
  }
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end)
    return pass();
  if (eth->h_proto == bpf_htons(ETH_P_IP))
    return handleV4(skb, eth + 1, end);
  if (eth->h_proto == bpf_htons(ETH_P_IPV6))
    return handleV6(skb, eth + 1, end);
  return pass();
}

// lbd's TUN device's egress, sidecar mode: the app's packets to a VIP. An offloaded conn's
// packet is rewritten and sent out of the app's veth (scFlowV4/V6); everything else
// (TC_ACT_UNSPEC, and no counter: these are not the ingress program's packets) goes on to the
// TUN device and lbd as before. The device has no L2 header: the IP header is at 0.
SEC("tc")

int lb_sidecar_egress(struct __sk_buff* skb) {
  __u32 want = skb->len < 60 + 20 ? skb->len : 60 + 20;  // IP header (v4 max, v6 40) + TCP
  void* data = (void*)(long)skb->data;
  void* end = (void*)(long)skb->data_end;
  if (data + want > end) {
    if (bpf_skb_pull_data(skb, want))
      return TC_ACT_UNSPEC;
    data = (void*)(long)skb->data;
    end = (void*)(long)skb->data_end;
  }
  int verdict = TC_ACT_UNSPEC;
  if (skb->protocol == bpf_htons(ETH_P_IP)) {
    struct iphdr* iph = data;
    if ((void*)(iph + 1) > end || iph->version != 4 || iph->ihl != 5 || iph->ttl <= 1 ||
        (bpf_ntohs(iph->frag_off) & LB_IP_MF_OFFSET) ||
        (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP))
      return TC_ACT_UNSPEC;
    __u32 tot = bpf_ntohs(iph->tot_len);
    if (skb->gso_size != 0)
      tot = skb->len;
    else if (tot < sizeof(*iph) || tot > skb->len)
      return TC_ACT_UNSPEC;
    if (scFlowV4(skb, iph, end, tot, 1, &verdict))
      return verdict;
  } else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr* ip6 = data;
    if ((void*)(ip6 + 1) > end || ip6->version != 6 || ip6->hop_limit <= 1 ||
        (ip6->nexthdr != IPPROTO_TCP && ip6->nexthdr != IPPROTO_UDP))
      return TC_ACT_UNSPEC;
    __u32 tot = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
    if (skb->gso_size != 0)
      tot = skb->len;
    else if (tot == sizeof(*ip6) || tot > skb->len)
      return TC_ACT_UNSPEC;
    if (scFlowV6(skb, ip6, end, tot, 1, &verdict))
      return verdict;
  }
  return TC_ACT_UNSPEC;
}

// bpf_fib_lookup (the flow fast path's routing) is a GPL-only helper: the kernel refuses a
// program calling it unless the object declares a GPL-compatible licence
// (license_is_gpl_compatible; "Apache-2.0" is not on its list), hence this file's dual licence.
char LICENSE[] SEC("license") = "GPL";
