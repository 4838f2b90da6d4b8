// SPDX-License-Identifier: Apache-2.0
// tc ingress eBPF fast path (io/bpf/ingress_redirect.bpf.c): packets for lbd go from an
// Ethernet device straight to the TUN device, skipping ip_rcv -> FIB rules -> ip_forward. It
// replaces nothing: lbd's routes and rules stay, and whatever the program leaves alone (or
// every packet, when BPF is not permitted) still reaches lbd the kernel way.
//
// Usage (control thread; the build defines LB_HAVE_BPF when this library exists):
//
//   auto r = io::IngressRedirect::create(tun->ifindex());
//   if (!r.ok()) { LB_LOG(kWarn, "bpf fast path off: %s", r.status().ToString()); }
//   else {
//     (*r)->setDsts(vips_and_local_addrs);        // after every config change
//     (*r)->setReplies(nat_reply_tuples);         // the tuples of the `from RIP ...` rules
//     (*r)->attach(if_nametoindex("eth0"));       // each ingress Ethernet device
//   }
//   // Established NAT / full-NAT connections (any one thread, see addFlow):
//   (*r)->addFlow(request_key, request_rewrite, reply_key);
//   (*r)->addFlow(reply_key, reply_rewrite, request_key);
//   // ... later: flowState() for counters and TCP flags, removeFlow() for both keys.
//   // TCP conns the program finished itself (last ACK after both FINs, or RST; entries gone):
//   (*r)->consumeDone([](const io::FlowDone& d) { /* d.cookie, d.in, d.out */ });
//   // From a worker thread, without allocating (an fd of its own, see FlowWriter):
//   io::FlowWriter w = *(*r)->flowWriter();       // control thread, once per worker
//   int err = w.add(request_key, request_rewrite, reply_key, cookie, /*reply=*/false);
//   // 0, EEXIST, E2BIG, ...; the reply direction with reply = true and the same cookie.
//   // The destructor detaches everything it attached.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "core/base/addr.h"

struct bpf_object;
struct ring_buffer;

namespace lb::io {

// A NAT real server's (address, L4 protocol, port): a packet from it is a reply for lbd. The
// same tuple as a `from RIP ipproto P sport PORT lookup 245` rule.
struct ReplyKey {
  IpAddr addr;
  L4Proto proto = L4Proto::kTcp;  // kTcp, kUdp or kSctp
  uint16_t port = 0;              // host byte order
  friend bool operator==(const ReplyKey&, const ReplyKey&) = default;
};

struct IngressRedirectOptions {
  // Gateway mode: a packet matching a ReplyKey but belonging to one of the balancer's own TCP
  // or UDP sockets is left to the kernel, as the local table (rule pref 0) wins over lbd's
  // diversion rules. Sidecar mode moves the local rule after them: set false there.
  bool local_sockets_first = true;

  // How the program is attached. kTcx: a tcx BPF link (Linux 6.6+), owned by a file descriptor
  // of this process, so the kernel detaches it when lbd dies, even by `kill -9`. kTcFilter: a
  // cls_bpf filter on a clsact qdisc (netlink), which outlives the process until the next start
  // replaces it. kAuto: tcx, and the tc filter where the kernel has no tcx.
  enum class Attach { kAuto, kTcx, kTcFilter };
  Attach attach = Attach::kAuto;

  // Sidecar mode (lbd in the app's namespace): a flows entry matched on an Ethernet device's
  // ingress is a reply to a local socket, un-NATed and handed to the TUN device's ingress
  // instead of routed out; the app's direction is offloaded by the TUN device's egress program
  // (attachSidecarEgress).
  bool sidecar = false;
};

// One direction of an offloaded connection: the packet's tuple as it arrives on an Ethernet
// device (host-order ports).
struct FlowKey {
  L4Proto proto = L4Proto::kTcp;  // kTcp or kUdp
  IpAddr saddr, daddr;            // one family
  uint16_t sport = 0, dport = 0;
  friend bool operator==(const FlowKey&, const FlowKey&) = default;

  template <typename H>
  friend H AbslHashValue(H h, const FlowKey& k) {
    return H::combine(std::move(h), k.proto, k.saddr, k.daddr, k.sport, k.dport);
  }
};

// A tunnel conn's entry (LB_BPF_ENCAP_*): kNone for NAT and full NAT.
enum class FlowEncap : uint8_t {
  kNone = 0,
  kGue4 = 1,         // IPv4 in IPv4 GUE, DF copied from the inner packet (sysctl pmtu_disc 1)
  kGue4NoPmtu = 2,   // the same without DF (pmtu_disc 0)
  kIpip4 = 3,        // IPv4 in IPv4 IPIP (protocol 4), DF copied (pmtu_disc 1)
  kIpip4NoPmtu = 4,  // the same without DF (pmtu_disc 0)
  kGre4 = 5,         // IPv4 in IPv4 GRE (protocol 47, no GRE checksum), DF copied (pmtu_disc 1)
  kGre4NoPmtu = 6,   // the same without DF (pmtu_disc 0)
};

// What the packet leaves with (same family as the key). With `encap` set (a tunnel conn's one
// entry, client -> VIP, IPv4 only) the packet is encapsulated unchanged but for its TTL:
// saddr / daddr are the outer source and the real server, sport / dport the outer UDP ports
// (GUE: udpFlowSrcPort of the conn's flow hash, the dest's tunnel port; IPIP and GRE: 0); the
// entry has no reverse.
struct FlowRewrite {
  IpAddr saddr, daddr;
  uint16_t sport = 0, dport = 0;
  FlowEncap encap = FlowEncap::kNone;
};

// A flow entry's program-written part. The TCP flags are sticky (set once, never cleared by
// the program) and come only from packets the program forwarded: one that took the slow path
// reached lbd's TUN device instead.
struct FlowState {
  uint64_t packets = 0;  // forwarded by the program
  uint64_t bytes = 0;    // IP bytes (one GSO skb counts once)
  int64_t last_ns = 0;   // CLOCK_MONOTONIC ns of the last forwarded packet; 0 = none yet
  // The program saw a TCP SYN without ACK on this flow or its reverse (a new connection on a
  // reused tuple, or a retransmitted SYN): that packet and all later ones of the conn take the
  // slow path. Set on both entries.
  bool closed = false;
  bool ack = false;  // forwarded a TCP segment with ACK set and SYN clear (not a SYN-ACK)
  bool fin = false;  // forwarded a TCP segment with FIN
  bool rst = false;  // forwarded a TCP segment with RST
};

// A TCP conn the program finished (it forwarded the last ACK after both directions' FINs, or
// an RST) and whose two entries it deleted: their final states.
struct FlowDone {
  uint64_t cookie = 0;  // as given to FlowWriter::add / addFlow
  FlowState in, out;    // in: the entry added with reply = false (client -> VIP); out: the other
};

// Adds and removes flow entries from a worker thread: its own dup of the flows map fd, so it
// outlives the IngressRedirect safely (writes then go to an orphaned map and are harmless).
// Never allocates or throws; one syscall per call. add() and remove() only read the fd, so
// threads may share a writer (not while it is moved or destroyed), and any number of writers,
// addFlow / removeFlow / flowState included, may work on the map at once.
class FlowWriter {
 public:
  FlowWriter() = default;  // invalid: add() and remove() return EBADF
  ~FlowWriter();
  FlowWriter(FlowWriter&& other) noexcept;
  FlowWriter& operator=(FlowWriter&& other) noexcept;
  FlowWriter(const FlowWriter&) = delete;
  FlowWriter& operator=(const FlowWriter&) = delete;

  bool valid() const { return fd_ >= 0; }

  // Installs `key` -> `rw` (`reverse`: the other direction's key, closed with it) only if no
  // entry for `key` exists (BPF_NOEXIST): 0 on success, else an errno (EEXIST: an entry for
  // the key is there already and is left unchanged; E2BIG or ENOMEM: the map is full). Keys
  // are not validated: the caller passes TCP or UDP keys and a rewrite of one family.
  // `cookie` (opaque) comes back in the conn's FlowDone; `reply`: this entry is the real server
  // -> client direction (FlowDone::out). Both entries of a conn get the same cookie.
  int add(const FlowKey& key,
          const FlowRewrite& rw,
          const FlowKey& reverse,
          uint64_t cookie = 0,
          bool reply = false) noexcept;
  // Removes the entry for `key`: 0, or an errno (ENOENT when absent).
  int remove(const FlowKey& key) noexcept;

 private:
  friend class IngressRedirect;

  explicit FlowWriter(int fd) : fd_(fd) {}

  int fd_ = -1;
};

// Summed over CPUs since create().
struct IngressRedirectCounters {
  uint64_t redirected_dst = 0;    // destination in the dsts set
  uint64_t redirected_reply = 0;  // source tuple in the replies set
  uint64_t passed = 0;            // everything else, left to the kernel (incl. ARP, NDP)
  uint64_t flow_forwarded = 0;    // forwarded by a flows entry, never reaching userspace
  uint64_t flow_slow = 0;         // a flows entry matched, the packet took the paths above
  uint64_t flow_dropped = 0;      // a flows rewrite failed half-way (helper error; expect 0)
  uint64_t flow_done = 0;         // TCP conns the program finished (FlowDone pushed, entries gone)
};

// The SYN proxy in the program (redirect_abi.h lb_bpf_synproxy_*): a bare TCP SYN to one of
// these VIP:ports is answered with the SYN-ACK lbd's pipeline would send (its cookie, made
// with `secret` and the CLOCK_MONOTONIC time, as core/pipeline/synproxy.h makeCookie).
struct SynproxyService {
  IpAddr vaddr;
  uint16_t vport = 0;  // host byte order, TCP
};

struct SynproxyConfig {
  uint64_t secret = 0;   // synproxy::secretOf(the conn table's seed)
  uint16_t mss4 = 1460;  // the SYN-ACK's MSS option, IPv4 and IPv6
  uint16_t mss6 = 1440;
  uint16_t window = 65535;
  int64_t clock_offset_ns = 0;  // added to CLOCK_MONOTONIC for the cookie's time (tests)
};

// Summed over CPUs since create().
struct SynproxyCounters {
  uint64_t synack = 0;  // SYN-ACKs the program sent
  uint64_t slow = 0;    // SYNs to a synproxy VIP:port the program left to lbd
};

// Owns the loaded program and its maps, and the tc filters (plus clsact qdiscs) it attached.
// Control thread: create/attach/detach/set*; counters() from any thread; addFlow/removeFlow/
// flowState from one other thread (or the control thread). Not copyable.
// Errors name the step and the kernel's errno: PermissionDenied (no CAP_BPF/CAP_SYS_ADMIN or
// CAP_NET_ADMIN, e.g. in a container), Unavailable (kernel without BPF, or the program is
// rejected), InvalidArgument, ResourceExhausted (a set larger than the map), Internal.
class IngressRedirect {
 public:
  // Loads the program, redirecting to `tun_ifindex` (an up TUN device in this namespace).
  // May allocate.
  static absl::StatusOr<std::unique_ptr<IngressRedirect>> create(
      int tun_ifindex, const IngressRedirectOptions& options = {});
  ~IngressRedirect();
  IngressRedirect(const IngressRedirect&) = delete;
  IngressRedirect& operator=(const IngressRedirect&) = delete;

  // Adds the program as a direct-action tc filter (handle/priority kTcHandle/kTcPriority) on
  // the ingress of `ifindex`, creating the clsact qdisc if missing. A filter of ours left at
  // that handle (a crashed run) is replaced. Attaching twice is a no-op.
  absl::Status attach(int ifindex);
  // Removes our filter, and the clsact qdisc only if attach() created it. NotFound if
  // `ifindex` was not attached by this object.
  absl::Status detach(int ifindex);

  // Sidecar mode: attaches the egress program (LB_BPF_SIDECAR_PROG_NAME) to the TUN device's
  // egress the way attach() does ingress (a tcx link, or a tc filter on clsact), so the app's
  // packets of an offloaded conn leave through the Ethernet device the FIB picks without
  // reaching lbd. Flow entries installed for this are the ones addFlow / FlowWriter make
  // (the client -> VIP key as the app sends it). detach(tun_ifindex) removes it.
  absl::Status attachSidecarEgress();

  // Make the map equal to the given set: adds the missing entries first, then deletes the
  // stale ones, so a kept entry is never absent. Duplicates are fine. InvalidArgument for an
  // unspecified address or a ReplyKey with another protocol.
  absl::Status setDsts(const std::vector<IpAddr>& dsts);
  absl::Status setReplies(const std::vector<ReplyKey>& replies);

  absl::StatusOr<IngressRedirectCounters> counters() const;

  // The established-flow fast path. These three touch only the flows map (its fd is fixed at
  // create()): they may be called from one thread other than the control thread, concurrently
  // with attach/detach/setDsts/setReplies. One syscall each; may allocate (the Status).
  //
  // Installs or replaces `key` -> `rw`; `reverse` is the other direction's key, closed with it;
  // `cookie` and `reply` as for FlowWriter::add. Counters start at 0. InvalidArgument (mixed
  // families, other protocols), ResourceExhausted (map full), Internal otherwise.
  absl::Status addFlow(const FlowKey& key,
                       const FlowRewrite& rw,
                       const FlowKey& reverse,
                       uint64_t cookie = 0,
                       bool reply = false);
  // NotFound when absent.
  absl::Status removeFlow(const FlowKey& key);
  // NotFound when absent.
  absl::StatusOr<FlowState> flowState(const FlowKey& key) const;
  // A writer for a worker thread: a dup (F_DUPFD_CLOEXEC) of the flows map fd. Any thread;
  // may allocate (the Status). Internal when dup fails (EMFILE, ...).
  absl::StatusOr<FlowWriter> flowWriter() const;

  // Calls `f` for each TCP conn the program finished since the last call, oldest first, and
  // returns how many. Reads the `done` ring buffer's mmapped pages: no syscall, no allocation
  // (unless `f` allocates). One consumer thread at a time (any one thread, concurrently with
  // everything else here). The program pushes a conn's record only when it fits, deleting its
  // entries then; when the ring (LB_BPF_DONE_BYTES) is full the entries stay in the map.
  size_t consumeDone(absl::FunctionRef<void(const FlowDone&)> f);

  // The SYN proxy: the program answers bare SYNs to `services` with `cfg`'s cookie (empty:
  // none, and the config is cleared). Control thread, as setDsts. InvalidArgument for an
  // address that is neither IPv4 nor IPv6, ResourceExhausted beyond LB_BPF_MAX_SYNPROXY.
  absl::Status setSynproxy(const SynproxyConfig& cfg, const std::vector<SynproxyService>& services);
  absl::StatusOr<SynproxyCounters> synproxyCounters() const;

  // Runs the program once on `frame` (an Ethernet frame) with BPF_PROG_TEST_RUN (a synthetic
  // skb on the loopback device): its return value, and the frame it left in *out. For tests.
  absl::StatusOr<uint32_t> testRun(const std::vector<uint8_t>& frame,
                                   std::vector<uint8_t>* out) const;

  // Interfaces attached by this object.
  std::vector<int> attached() const;

  // The tc filter's identity on every device (245: lbd's number, as kLbdProto).
  static constexpr uint32_t kTcHandle = 245;
  static constexpr uint32_t kTcPriority = 245;

 private:
  struct Attachment {
    int ifindex = 0;
    int link_fd = -1;  // a tcx link; -1: a tc filter
    bool created_qdisc = false;
    bool egress = false;  // attachSidecarEgress's
  };

  absl::Status attachTcFilter(int ifindex, bool egress = false);
  // ring_buffer_sample_fn for done_: one record to *done_fn_.
  static int onDone(void* ctx, void* data, size_t size);

  IngressRedirect() = default;

  IngressRedirectOptions options_;

  bpf_object* obj_ = nullptr;
  int prog_fd_ = -1;
  int sidecar_prog_fd_ = -1;  // lb_sidecar_egress
  int tun_ifindex_ = 0;
  int dsts_fd_ = -1;
  int replies_fd_ = -1;
  int counters_fd_ = -1;
  int flows_fd_ = -1;
  ring_buffer* done_ = nullptr;  // libbpf's consumer of the `done` ring buffer map
  // The callback of the consumeDone() in progress (libbpf's ctx is fixed at ring_buffer__new).
  absl::FunctionRef<void(const FlowDone&)>* done_fn_ = nullptr;
  // What each map holds (only this object writes them): a commit sends the kernel only the
  // keys that changed, not the whole set.
  absl::flat_hash_set<std::string> dsts_have_;
  absl::flat_hash_set<std::string> replies_have_;
  absl::flat_hash_set<std::string> synproxy_have_;  // setSynproxy
  std::vector<Attachment> attached_;
};

}  // namespace lb::io
