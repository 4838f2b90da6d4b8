// SPDX-License-Identifier: Apache-2.0
// The map keys and counters shared by ingress_redirect.bpf.c (C, target bpf) and
// IngressRedirect (C++): the contract between the tc program and its loader. C and C++.
#pragma once

#include <linux/types.h>

// Map names in the BPF object.
#define LB_BPF_MAP_DSTS "dsts"
#define LB_BPF_MAP_REPLIES "replies"
#define LB_BPF_MAP_COUNTERS "counters"
#define LB_BPF_MAP_FLOWS "flows"
#define LB_BPF_MAP_DONE "done"
#define LB_BPF_PROG_NAME "lb_ingress_redirect"
// Sidecar mode: the tc egress program on lbd's own TUN device (the app's direction of an
// offloaded conn; see lb_sidecar_egress in ingress_redirect.bpf.c).
#define LB_BPF_SIDECAR_PROG_NAME "lb_sidecar_egress"
// The section (and libbpf map) holding struct lb_bpf_config.
#define LB_BPF_CONFIG_SECTION ".rodata.cfg"

// Capacities (hash maps; set at load time, fixed afterwards).
#define LB_BPF_MAX_DSTS 65536
#define LB_BPF_MAX_REPLIES 65536
#define LB_BPF_MAX_FLOWS 131072  // two per connection; BPF_F_NO_PREALLOC
// The `done` ring buffer's data area (a power of two, a multiple of the page size): about
// 13,000 struct lb_bpf_flow_done records (72 bytes plus an 8-byte header each).
#define LB_BPF_DONE_BYTES (1u << 20)

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

// flows key: one direction of an offloaded NAT or full-NAT connection, the packet's tuple as
// it arrives at ingress. family AF_INET (2) or AF_INET6 (10), proto IPPROTO_TCP or
// IPPROTO_UDP, ports in network byte order, pad zero; an IPv4 address fills [0..4), the rest
// is zero.
struct lb_bpf_flow_key {
  __u8 family;
  __u8 proto;
  __be16 sport, dport;
  __u8 pad[2];
  __u8 saddr[16], daddr[16];
};

// flows value flags (`flags`), set by the program and never cleared by it; the loader writes 0.
// CLOSED: the program saw a TCP SYN without ACK on this flow or its reverse (a new connection
// on a reused tuple, or a retransmitted SYN); the packet and every later packet of both
// directions take the slow path (lbd's TUN device) again. Set on both entries.
#define LB_BPF_FLOW_F_CLOSED 1u
// The TCP flags of the packets this entry forwarded (never of one that took the slow path,
// which lbd sees itself): ACK for a segment with ACK set and SYN clear (so not a SYN-ACK),
// FIN and RST for a segment carrying them. lbd reads them to drive its TCP state machine.
#define LB_BPF_FLOW_F_ACK 2u
#define LB_BPF_FLOW_F_FIN 4u
#define LB_BPF_FLOW_F_RST 8u

// flows value: what a matching packet leaves with (same family as the key), written by the
// loader; `flags` and the counters are written by the program (atomically: several CPUs may
// forward the same flow). A packet that is forwarded leaves through the device the FIB picks
// for the new tuple, with its TTL / hop limit decremented once.
struct lb_bpf_flow {
  __u8 new_saddr[16], new_daddr[16];
  __be16 new_sport, new_dport;
  // 1: this entry is the real server -> client direction; 0: client -> VIP. Tells the `done`
  // record's `in` from its `out`.
  __u8 reply;
  // LB_BPF_ENCAP_*: 0 for a NAT or full-NAT entry (rewritten as above). Otherwise a tunnel
  // conn's only entry (client -> VIP, reply 0; the real server answers the client directly):
  // the packet is encapsulated as is (inner TTL decremented), new_saddr / new_daddr are the
  // outer source (lbd's tunnel source) and the real server, new_sport / new_dport the outer
  // UDP ports (GUE: the flow hash's port, the dest's tunnel port; IPIP and GRE: 0); `reverse`
  // is all zero.
  __u8 encap;
  __u8 pad[2];                     // zero
  struct lb_bpf_flow_key reverse;  // the other direction's key: closed and finished together
  // LB_BPF_FLOW_F_*. 64 bits because the program ORs bits in with an atomic, and clang's BPF
  // target (without -mcpu=v3) has only the 64-bit form.
  __u64 flags;
  __u64 packets, bytes, last_ns;  // IP bytes (a GSO skb counts once); bpf_ktime_get_ns()
  __u64 cookie;                   // the loader's, opaque: copied into the `done` record
};

// struct lb_bpf_flow's `encap`: IPv4 outer, IPv4 inner, GUE (UDP + a 4-byte GUE header,
// version 0, proto_ctype 4, UDP checksum 0), as core's tunnel forwarder writes it: outer DS
// field from the inner one (ECN CE as ECT(0)), TTL the inner one after its decrement. DF and ID:
// GUE4 copies the inner DF (ID 0 with DF, else the inner ID; sysctl pmtu_disc 1), GUE4_NOPMTU
// never sets DF and always copies the ID (pmtu_disc 0). A non-GSO packet whose outer packet
// exceeds the route MTU, and anything the program cannot encapsulate, takes the slow path.
// IPIP4 / IPIP4_NOPMTU: the same with the outer IPv4 header alone (protocol 4, RFC 2003).
// GRE4 / GRE4_NOPMTU: the outer IPv4 header (protocol 47) and a 4-byte GRE header (RFC 2784:
// no checksum, key or sequence number, version 0, protocol 0x0800), as ipvs_gre_encap writes it
// for a dest without --tun-csum.
#define LB_BPF_ENCAP_NONE 0
#define LB_BPF_ENCAP_GUE4 1
#define LB_BPF_ENCAP_GUE4_NOPMTU 2
#define LB_BPF_ENCAP_IPIP4 3
#define LB_BPF_ENCAP_IPIP4_NOPMTU 4
#define LB_BPF_ENCAP_GRE4 5
#define LB_BPF_ENCAP_GRE4_NOPMTU 6

// One direction's program-written part, as the `done` record carries it.
struct lb_bpf_flow_counts {
  __u64 packets, bytes, last_ns, flags;  // as in struct lb_bpf_flow
};

// A `done` ring buffer record: the program finished a TCP conn (it forwarded the last ACK after
// both directions' FINs, or an RST) and deleted both of its entries. Pushed only when the
// record fits in the ring, and then exactly once per conn (the deletion of the reply == 0
// entry is the claim, so two CPUs finishing the same conn at once push one record); when the
// ring is full the entries stay, and the loader finds the conn through them as before.
struct lb_bpf_flow_done {
  __u64 cookie;                       // of the entry whose packet finished the conn
  struct lb_bpf_flow_counts in, out;  // in: the reply == 0 entry (client -> VIP); out: the other
};

// Per-CPU counters, one array slot each.
enum lb_bpf_counter {
  LB_BPF_CNT_REDIRECT_DST = 0,    // redirected: destination in dsts
  LB_BPF_CNT_REDIRECT_REPLY = 1,  // redirected: (source, proto, sport) in replies
  LB_BPF_CNT_PASS = 2,            // left to the kernel
  LB_BPF_CNT_FLOW_FWD = 3,        // forwarded by a flows entry
  LB_BPF_CNT_FLOW_SLOW = 4,       // a flows entry matched, but the packet took the paths above
  LB_BPF_CNT_FLOW_DROP = 5,       // a flows rewrite failed half-way (never seen in practice)
  LB_BPF_CNT_FLOW_DONE = 6,       // TCP conns finished: `done` record pushed, entries deleted
  LB_BPF_CNT_MAX = 7,
};

// The program's configuration, a `const volatile` global (.rodata) set before load.
struct lb_bpf_config {
  __u32 tun_ifindex;
  // Non-zero: a would-be reply that belongs to a local TCP/UDP socket (the balancer's own
  // connection to a real server) is left to the kernel, as the local table's rule (pref 0)
  // delivers it before lbd's diversion rules in gateway mode.
  __u32 local_sockets_first;
  // Non-zero (lbd --mode=sidecar, in the app's namespace): a flows entry matched at ingress is
  // a reply to one of this namespace's own sockets: un-NATed and handed to the TUN device's
  // ingress (the stack sees it arrive there, as lbd's TUN write), not routed out. The app's
  // direction is lb_sidecar_egress's, on the TUN device's egress.
  __u32 sidecar;
};

// ---- SYN proxy: bare SYNs answered in the program (core/pipeline/synproxy.h's cookie) ----
// A TCP SYN without ACK/RST/FIN (IPv4 without options and not a fragment, IPv6 without
// extension headers) to a VIP:port in `synproxy` is answered with the SYN-ACK lbd's pipeline
// would send (same cookie, window, MSS option only, TTL 64), out of the device it came in on.
// The client's ACK goes to lbd, whose checkCookie opens the conn.
#define LB_BPF_MAP_SYNPROXY "synproxy"
#define LB_BPF_MAP_SYNPROXY_CFG "synproxy_cfg"
#define LB_BPF_MAP_SYNPROXY_CNT "synproxy_cnt"
#define LB_BPF_MAX_SYNPROXY 4096

// synproxy key: a SYN proxy service's VIP and TCP port (network byte order); an IPv4 address
// fills addr[0..4), the rest and pad are zero. Value: __u8 (1).
struct lb_bpf_synproxy_key {
  __u8 family;
  __u8 pad;
  __be16 port;
  __u8 addr[16];
};

// synproxy_cfg: an array of one. `on` 0: no SYN is answered (the loader has not set it yet).
struct lb_bpf_synproxy_cfg {
  __u64 secret;      // core's synproxy::secretOf(the conn table's seed)
  __u16 mss4, mss6;  // the SYN-ACK's MSS option (the pipeline's MTU - 40 / - 60)
  __u16 window;      // the SYN-ACK's window
  __u16 on;
  __s64 clock_offset_ns;  // added to bpf_ktime_get_ns() for the cookie's time: 0 (tests move it)
};

// synproxy_cnt: per-CPU counters, one array slot each.
enum lb_bpf_synproxy_counter {
  LB_BPF_SP_CNT_SYNACK = 0,  // SYN-ACKs sent
  LB_BPF_SP_CNT_SLOW = 1,    // a SYN to a synproxy VIP:port left to lbd (unsure, or cfg off)
  LB_BPF_SP_CNT_MAX = 2,
};
