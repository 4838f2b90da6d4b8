// SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only
// Included by ingress_redirect.bpf.c (one BPF object): the SYN proxy's SYN-ACK answer.
// Uses that file's maps, cfg and helpers; not a header of its own.
#pragma once

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
