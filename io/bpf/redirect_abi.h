// SPDX-License-Identifier: Apache-2.0
// The map keys and counters shared by ingress_redirect.bpf.c (C, target bpf) and
// IngressRedirect (C++): the contract between the tc program and its loader. C and C++.
#pragma once

#include <linux/types.h>

// Map names in the BPF object.
#define LB_BPF_MAP_DSTS "dsts"
#define LB_BPF_MAP_REPLIES "replies"
#define LB_BPF_MAP_COUNTERS "counters"
#define LB_BPF_PROG_NAME "lb_ingress_redirect"
// The section (and libbpf map) holding struct lb_bpf_config.
#define LB_BPF_CONFIG_SECTION ".rodata.cfg"

// Capacities (hash maps; set at load time, fixed afterwards).
#define LB_BPF_MAX_DSTS 65536
#define LB_BPF_MAX_REPLIES 65536

// dsts key: a VIP or full-NAT local address. family is AF_INET (2) or AF_INET6 (10); an IPv4
// address fills addr[0..4), the rest is zero. Value: __u8, unused (1).
struct lb_bpf_dst_key {
  __u8 family;
  __u8 pad[3];
  __u8 addr[16];
};

// replies key: a NAT real server's (address, L4 protocol, port), port in network byte order;
// the same tuple as the `from RIP ipproto P sport PORT` policy rules. Value: __u8 (1).
struct lb_bpf_reply_key {
  __u8 family;
  __u8 proto;
  __be16 port;
  __u8 addr[16];
};

// Per-CPU counters, one array slot each.
enum lb_bpf_counter {
  LB_BPF_CNT_REDIRECT_DST = 0,    // redirected: destination in dsts
  LB_BPF_CNT_REDIRECT_REPLY = 1,  // redirected: (source, proto, sport) in replies
  LB_BPF_CNT_PASS = 2,            // left to the kernel
  LB_BPF_CNT_MAX = 3,
};

// The program's configuration, a `const volatile` global (.rodata) set before load.
struct lb_bpf_config {
  __u32 tun_ifindex;
  // Non-zero: a would-be reply that belongs to a local TCP/UDP socket (the balancer's own
  // connection to a real server) is left to the kernel, as the local table's rule (pref 0)
  // delivers it before lbd's diversion rules in gateway mode.
  __u32 local_sockets_first;
};
