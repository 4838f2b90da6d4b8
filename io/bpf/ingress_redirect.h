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
//   // The destructor detaches everything it attached.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "core/base/addr.h"

struct bpf_object;

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
};

// Summed over CPUs since create().
struct IngressRedirectCounters {
  uint64_t redirected_dst = 0;    // destination in the dsts set
  uint64_t redirected_reply = 0;  // source tuple in the replies set
  uint64_t passed = 0;            // everything else, left to the kernel (incl. ARP, NDP)
};

// Owns the loaded program and its maps, and the tc filters (plus clsact qdiscs) it attached.
// Control thread: create/attach/detach/set*; counters() from any thread. Not copyable.
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

  // Make the map equal to the given set: adds the missing entries first, then deletes the
  // stale ones, so a kept entry is never absent. Duplicates are fine. InvalidArgument for an
  // unspecified address or a ReplyKey with another protocol.
  absl::Status setDsts(const std::vector<IpAddr>& dsts);
  absl::Status setReplies(const std::vector<ReplyKey>& replies);

  absl::StatusOr<IngressRedirectCounters> counters() const;

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
  };

  absl::Status attachTcFilter(int ifindex);

  IngressRedirect() = default;

  IngressRedirectOptions options_;

  bpf_object* obj_ = nullptr;
  int prog_fd_ = -1;
  int dsts_fd_ = -1;
  int replies_fd_ = -1;
  int counters_fd_ = -1;
  // What each map holds (only this object writes them): a commit sends the kernel only the
  // keys that changed, not the whole set.
  absl::flat_hash_set<std::string> dsts_have_;
  absl::flat_hash_set<std::string> replies_have_;
  std::vector<Attachment> attached_;
};

}  // namespace lb::io
