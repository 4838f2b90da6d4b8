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

// After the rewrite: the entry's counters and TCP flags, the conn finished if this was its last
// segment (flowFinish). `ip_bytes`: the packet's IP length.
static __always_inline void flowAccount(const struct lb_bpf_flow_key* k,
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

// The packet is rewritten: MAC header, flowAccount, out of the egress device.
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
  flowAccount(k, f, tcp_flags, skb->len - ETH_HLEN);
  return bpf_redirect(fib->ifindex, 0);
}

// Checksum offsets: helpers handle CHECKSUM_PARTIAL (GSO from a veth: the field holds the
// pseudo-header seed, so only BPF_F_PSEUDO_HDR changes touch it) and CHECKSUM_COMPLETE.
static __always_inline __u32 flowCsumOff(__u32 l4_off, __u8 proto) {
  return l4_off + (proto == IPPROTO_TCP ? __builtin_offsetof(struct tcphdr, check)
                                        : __builtin_offsetof(struct udphdr, check));
}

// Who runs a flows entry: a constant at each call site, so that each gets its own copy.
#define LB_FLOW_GATEWAY 0     // lb_ingress_redirect at a gateway: out of the FIB's device
#define LB_FLOW_SC_INGRESS 1  // lb_ingress_redirect in a sidecar: a reply, into lbd0's ingress
#define LB_FLOW_SC_EGRESS 2   // lb_sidecar_egress: the app's packet, out of the FIB's device

#include "io/bpf/sidecar_offload.bpf.h"
#include "io/bpf/tunnel_offload.bpf.h"

// IPv4 without options, not a fragment, TCP or UDP, its header at ETH_HLEN (or at 0 for
// LB_FLOW_SC_EGRESS, until scPushL2 makes room): 1 when the flows entry decided the
// packet's fate (*verdict), 0 when the dsts/replies logic decides. (A verdict-or-sentinel
// return would not do: the verifier cannot tell bpf_redirect's result from the sentinel.)
static __always_inline int flowV4(
    struct __sk_buff* skb, struct iphdr* iph, void* end, __u32 tot, const int mode, int* verdict) {
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
  if (f->encap != LB_BPF_ENCAP_NONE) {  // a tunnel conn: gateway mode only
    if (mode == LB_FLOW_GATEWAY)
      return tunEncapV4(skb, iph, tot, l4_hlen, &k, f, tcp_flags, verdict);
    count(LB_BPF_CNT_FLOW_SLOW);
    return 0;
  }
  __be32 addrs[4] = {iph->saddr, iph->daddr};  // old saddr, daddr; new saddr, daddr
  __builtin_memcpy(&addrs[2], f->new_saddr, 4);
  __builtin_memcpy(&addrs[3], f->new_daddr, 4);
  struct bpf_fib_lookup fib = {.family = LB_AF_INET, .l4_protocol = proto};
  if (mode != LB_FLOW_SC_INGRESS) {  // a sidecar's reply goes to lbd0's ingress: no route
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
  if (!scPushL2(skb, mode == LB_FLOW_SC_EGRESS)) {
    *verdict = flowSlowToKernel();
    return 1;
  }
  // From here on a sidecar's outgoing packet is no longer what the TUN device expects at
  // egress: a failure drops it (TCP retransmits) rather than hand lbd a half-made frame.
  if (!flowPrepare(skb, tot, csum_off + 2)) {
    *verdict = mode == LB_FLOW_SC_EGRESS ? flowDrop() : flowSlowToKernel();
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
  *verdict = mode == LB_FLOW_GATEWAY ? flowTransmit(skb, &k, f, &fib, tcp_flags)
                                     : scTransmit(skb, &k, f, &fib, tcp_flags, tot,
                                                  mode == LB_FLOW_SC_EGRESS, bpf_htons(ETH_P_IP));
  return 1;
}

// IPv6 with TCP or UDP right after the fixed header: as flowV4.
static __always_inline int flowV6(struct __sk_buff* skb,
                                  struct ipv6hdr* ip6,
                                  void* end,
                                  __u32 tot,
                                  const int mode,
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
  if (f->encap != LB_BPF_ENCAP_NONE) {  // tunnel entries are IPv4 only
    count(LB_BPF_CNT_FLOW_SLOW);
    return 0;
  }
  __be32 addrs[16];  // old saddr, daddr; new saddr, daddr
  __builtin_memcpy(&addrs[0], &ip6->saddr, 32);
  __builtin_memcpy(&addrs[8], f->new_saddr, 32);  // new_saddr, new_daddr
  struct bpf_fib_lookup fib = {.family = LB_AF_INET6, .l4_protocol = proto};
  if (mode != LB_FLOW_SC_INGRESS) {  // a sidecar's reply goes to lbd0's ingress: no route
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
  if (!scPushL2(skb, mode == LB_FLOW_SC_EGRESS)) {
    *verdict = flowSlowToKernel();
    return 1;
  }
  // From here on a sidecar's outgoing packet is no longer what the TUN device expects at
  // egress: a failure drops it (TCP retransmits) rather than hand lbd a half-made frame.
  if (!flowPrepare(skb, tot, csum_off + 2)) {
    *verdict = mode == LB_FLOW_SC_EGRESS ? flowDrop() : flowSlowToKernel();
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
  *verdict = mode == LB_FLOW_GATEWAY ? flowTransmit(skb, &k, f, &fib, tcp_flags)
                                     : scTransmit(skb, &k, f, &fib, tcp_flags, tot,
                                                  mode == LB_FLOW_SC_EGRESS, bpf_htons(ETH_P_IPV6));
  return 1;
}

#include "io/bpf/synproxy.bpf.h"

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
    if (cfg.sidecar ? flowV4(skb, iph, end, tot, LB_FLOW_SC_INGRESS, &verdict)
                    : flowV4(skb, iph, end, tot, LB_FLOW_GATEWAY, &verdict))
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
    if (cfg.sidecar ? flowV6(skb, ip6, end, tot, LB_FLOW_SC_INGRESS, &verdict)
                    : flowV6(skb, ip6, end, tot, LB_FLOW_GATEWAY, &verdict))
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
// packet is rewritten and sent out of the app's veth (flowV4/V6, LB_FLOW_SC_EGRESS); everything
// else (TC_ACT_UNSPEC, and no counter: these are not the ingress program's packets) goes on to the
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
    if (flowV4(skb, iph, end, tot, LB_FLOW_SC_EGRESS, &verdict))
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
    if (flowV6(skb, ip6, end, tot, LB_FLOW_SC_EGRESS, &verdict))
      return verdict;
  }
  return TC_ACT_UNSPEC;
}

// bpf_fib_lookup (the flow fast path's routing) is a GPL-only helper: the kernel refuses a
// program calling it unless the object declares a GPL-compatible licence
// (license_is_gpl_compatible; "Apache-2.0" is not on its list), hence this file's dual licence.
char LICENSE[] SEC("license") = "GPL";
