// SPDX-License-Identifier: Apache-2.0
// tc (clsact) ingress fast path: packets for lbd (to a VIP or full-NAT local address, or a NAT
// reply from a real server's port) go straight to the TUN device with bpf_redirect, skipping
// ip_rcv, the policy-rule FIB lookup and ip_forward. Anything this program is not sure about
// is left to the kernel (TC_ACT_UNSPEC: the next tc filter, then the normal stack), which still
// routes it to lbd through lbd's routes and rules as before. Built with clang -target bpf.
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

char LICENSE[] SEC("license") = "Apache-2.0";
