// SPDX-License-Identifier: Apache-2.0
#include "io/bpf/ingress_redirect.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "core/base/log.h"
#include "io/bpf/redirect_abi.h"

#include "ingress_redirect_obj.h"

namespace lb::io {
namespace {

// The layouts the program and lbd share (redirect_abi.h), 64-bit aligned without holes.
static_assert(sizeof(lb_bpf_flow_key) == 40);
static_assert(sizeof(lb_bpf_flow) == 120);
static_assert(sizeof(lb_bpf_flow_counts) == 32);
static_assert(sizeof(lb_bpf_flow_done) == 72);

absl::Status errnoStatus(absl::string_view what, int err) {
  std::string msg = absl::StrCat(what, ": ", strerror(err));
  switch (err) {
    case EPERM:
    case EACCES:
      return absl::PermissionDeniedError(
          absl::StrCat(msg, " (needs CAP_BPF or CAP_SYS_ADMIN, and CAP_NET_ADMIN)"));
    case ENOSYS:
    case EOPNOTSUPP:
      return absl::UnavailableError(msg);
    case E2BIG:
      return absl::ResourceExhaustedError(msg);
    case ENODEV:
    case ENOENT:
      return absl::NotFoundError(msg);
    default:
      return absl::InternalError(msg);
  }
}

// libbpf's messages go to lbd's log at debug level: the Status carries what matters, so a
// container without BPF logs once (by the caller), not libbpf's probe chatter.
int libbpfPrint(libbpf_print_level level, const char* fmt, va_list ap) {
  if (level == LIBBPF_DEBUG)
    return 0;
  char buf[512];
  int n = vsnprintf(buf, sizeof(buf), fmt, ap);
  absl::string_view line(buf, static_cast<size_t>(std::clamp(n, 0, int{sizeof(buf)} - 1)));
  while (!line.empty() && line.back() == '\n')
    line.remove_suffix(1);
  LB_LOG(kDebug, "libbpf: %s", line);
  return n;
}

void fillDstKey(const IpAddr& a, lb_bpf_dst_key& k) {
  std::memset(&k, 0, sizeof(k));
  k.family = static_cast<uint8_t>(a.af());
  std::memcpy(k.addr, a.data(), a.size());
}

void fillReplyKey(const ReplyKey& r, lb_bpf_reply_key& k) {
  std::memset(&k, 0, sizeof(k));
  k.family = static_cast<uint8_t>(r.addr.af());
  k.proto = static_cast<uint8_t>(r.proto);
  k.port = htobe16(r.port);
  std::memcpy(k.addr, r.addr.data(), r.addr.size());
}

// InvalidArgument unless `k` is a TCP or UDP tuple of one family (`af`, when given).
absl::Status checkFlowKey(const FlowKey& k, absl::string_view what, Af af) {
  if (k.proto != L4Proto::kTcp && k.proto != L4Proto::kUdp) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bpf flow ", what, ": protocol ", static_cast<int>(k.proto), " is not TCP or UDP"));
  }
  if ((!k.saddr.isV4() && !k.saddr.isV6()) || k.daddr.af() != k.saddr.af() ||
      (af != Af::kUnspec && k.saddr.af() != af)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bpf flow ", what, " ", formatAddrPort(k.saddr, k.sport), " -> ",
                     formatAddrPort(k.daddr, k.dport), ": mixed or missing address families"));
  }
  return absl::OkStatus();
}

void fillFlowKey(const FlowKey& f, lb_bpf_flow_key& k) noexcept {
  std::memset(&k, 0, sizeof(k));
  k.family = static_cast<uint8_t>(f.saddr.af());
  k.proto = static_cast<uint8_t>(f.proto);
  k.sport = htobe16(f.sport);
  k.dport = htobe16(f.dport);
  std::memcpy(k.saddr, f.saddr.data(), f.saddr.size());
  std::memcpy(k.daddr, f.daddr.data(), f.daddr.size());
}

// A new entry: the rewrite, the reverse key, cookie and direction; flags and counters 0.
void fillFlow(const FlowRewrite& rw,
              const FlowKey& reverse,
              uint64_t cookie,
              bool reply,
              lb_bpf_flow& v) noexcept {
  std::memset(&v, 0, sizeof(v));
  v.cookie = cookie;
  v.reply = reply ? 1 : 0;
  std::memcpy(v.new_saddr, rw.saddr.data(), rw.saddr.size());
  std::memcpy(v.new_daddr, rw.daddr.data(), rw.daddr.size());
  v.new_sport = htobe16(rw.sport);
  v.new_dport = htobe16(rw.dport);
  v.encap = static_cast<uint8_t>(rw.encap);
  if (rw.encap == FlowEncap::kNone)
    fillFlowKey(reverse, v.reverse);  // a tunnel entry's stays zero: no other direction
}

// Keys as raw bytes, so one sync routine serves both maps.
using KeySet = absl::flat_hash_set<std::string>;

template <typename Key>
std::string keyBytes(const Key& k) {
  return std::string(reinterpret_cast<const char*>(&k), sizeof(k));
}

// Makes map `fd`, which holds `have`, hold exactly `want`: adds the missing keys first, then
// deletes the stale ones, so a kept key is never absent; only changed keys cost a syscall. A
// map too full for the additions (E2BIG) has its stale keys deleted first. On error `have` is
// re-read from the kernel, so the next call starts from the truth.
absl::Status syncMap(int fd,
                     size_t key_size,
                     size_t max_entries,
                     const KeySet& want,
                     KeySet& have,
                     absl::string_view what) {
  if (want.size() > max_entries) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": ", want.size(), " entries, the map holds ", max_entries));
  }
  auto reread = [&] {
    have.clear();
    std::string cur(key_size, '\0');
    std::string next(key_size, '\0');
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
      have.insert(next);
      cur = next;
      prev = cur.data();
    }
  };
  // A failed syscall: `have` is re-read, so the next call starts from the truth.
  auto fail = [&](absl::string_view step) {
    const int err = errno;
    reread();
    return errnoStatus(absl::StrCat(step, " ", what), err);
  };
  auto deleteStale = [&]() -> absl::Status {
    std::vector<std::string> stale;
    for (const std::string& k : have) {
      if (!want.contains(k))
        stale.push_back(k);
    }
    for (const std::string& k : stale) {
      if (bpf_map_delete_elem(fd, k.data()) != 0 && errno != ENOENT)
        return fail("delete stale entry of");
      have.erase(k);
    }
    return absl::OkStatus();
  };
  const uint8_t one = 1;
  bool pruned = false;
  for (const std::string& k : want) {
    if (have.contains(k))
      continue;
    if (bpf_map_update_elem(fd, k.data(), &one, BPF_ANY) != 0) {
      if (errno != E2BIG || pruned)
        return fail("update");
      if (absl::Status s = deleteStale(); !s.ok())
        return s;
      pruned = true;
      if (bpf_map_update_elem(fd, k.data(), &one, BPF_ANY) != 0)
        return fail("update");
    }
    have.insert(k);
  }
  return deleteStale();
}

FlowState flowStateOf(uint64_t packets, uint64_t bytes, uint64_t last_ns, uint64_t flags) {
  FlowState st;
  st.packets = packets;
  st.bytes = bytes;
  st.last_ns = static_cast<int64_t>(last_ns);
  st.closed = (flags & LB_BPF_FLOW_F_CLOSED) != 0;
  st.ack = (flags & LB_BPF_FLOW_F_ACK) != 0;
  st.fin = (flags & LB_BPF_FLOW_F_FIN) != 0;
  st.rst = (flags & LB_BPF_FLOW_F_RST) != 0;
  return st;
}

FlowState flowStateOf(const lb_bpf_flow_counts& c) {
  return flowStateOf(c.packets, c.bytes, c.last_ns, c.flags);
}

bpf_tc_hook ingressHook(int ifindex, bool egress = false) {
  bpf_tc_hook hook;
  std::memset(&hook, 0, sizeof(hook));
  hook.sz = sizeof(hook);
  hook.ifindex = ifindex;
  hook.attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS;
  return hook;
}

bpf_tc_opts filterOpts(uint32_t handle, uint32_t priority) {
  bpf_tc_opts opts;
  std::memset(&opts, 0, sizeof(opts));
  opts.sz = sizeof(opts);
  opts.handle = handle;
  opts.priority = priority;
  return opts;
}

}  // namespace

absl::StatusOr<std::unique_ptr<IngressRedirect>> IngressRedirect::create(
    int tun_ifindex, const IngressRedirectOptions& options) {
  static std::once_flag print_once;
  std::call_once(print_once, [] { libbpf_set_print(libbpfPrint); });
  if (tun_ifindex <= 0)
    return absl::InvalidArgumentError(absl::StrCat("tun ifindex ", tun_ifindex));

  std::unique_ptr<IngressRedirect> r(new IngressRedirect());
  r->options_ = options;
  bpf_object_open_opts open_opts;
  std::memset(&open_opts, 0, sizeof(open_opts));
  open_opts.sz = sizeof(open_opts);
  open_opts.object_name = "lb_ingress_redirect";
  r->obj_ = bpf_object__open_mem(kIngressRedirectBpfObj, kIngressRedirectBpfObjSize, &open_opts);
  if (r->obj_ == nullptr)
    return errnoStatus("open embedded BPF object", errno);

  bpf_map* cfg_map = bpf_object__find_map_by_name(r->obj_, LB_BPF_CONFIG_SECTION);
  bpf_program* prog = bpf_object__find_program_by_name(r->obj_, LB_BPF_PROG_NAME);
  if (cfg_map == nullptr || prog == nullptr)
    return absl::InternalError("BPF object lacks " LB_BPF_CONFIG_SECTION " or its program");
  lb_bpf_config cfg{};
  cfg.tun_ifindex = static_cast<uint32_t>(tun_ifindex);
  cfg.local_sockets_first = options.local_sockets_first ? 1 : 0;
  cfg.sidecar = options.sidecar ? 1 : 0;
  if (int err = bpf_map__set_initial_value(cfg_map, &cfg, sizeof(cfg)); err != 0)
    return errnoStatus("set BPF config", -err);

  // The verifier's log, for the Status when the kernel rejects the program.
  std::string log(64 * 1024, '\0');
  if (int err = bpf_program__set_log_buf(prog, log.data(), log.size()); err != 0)
    return errnoStatus("set BPF log buffer", -err);
  if (int err = bpf_object__load(r->obj_); err != 0) {
    // EPERM: no CAP_BPF/CAP_SYS_ADMIN (map or program creation). Anything else, EACCES
    // included, is the verifier (or an older kernel) rejecting the program.
    if (-err == EPERM || -err == ENOSYS)
      return errnoStatus("load BPF program " LB_BPF_PROG_NAME, -err);
    log.resize(strnlen(log.data(), log.size()));
    std::string tail = log.size() > 600 ? log.substr(log.size() - 600) : log;
    return absl::UnavailableError(absl::StrCat("load BPF program " LB_BPF_PROG_NAME ": ",
                                               strerror(-err), "; verifier: ", tail));
  }
  r->prog_fd_ = bpf_program__fd(prog);
  r->tun_ifindex_ = tun_ifindex;
  if (bpf_program* sc = bpf_object__find_program_by_name(r->obj_, LB_BPF_SIDECAR_PROG_NAME))
    r->sidecar_prog_fd_ = bpf_program__fd(sc);
  r->dsts_fd_ = bpf_object__find_map_fd_by_name(r->obj_, LB_BPF_MAP_DSTS);
  r->replies_fd_ = bpf_object__find_map_fd_by_name(r->obj_, LB_BPF_MAP_REPLIES);
  r->counters_fd_ = bpf_object__find_map_fd_by_name(r->obj_, LB_BPF_MAP_COUNTERS);
  r->flows_fd_ = bpf_object__find_map_fd_by_name(r->obj_, LB_BPF_MAP_FLOWS);
  const int done_fd = bpf_object__find_map_fd_by_name(r->obj_, LB_BPF_MAP_DONE);
  if (r->prog_fd_ < 0 || r->dsts_fd_ < 0 || r->replies_fd_ < 0 || r->counters_fd_ < 0 ||
      r->flows_fd_ < 0 || done_fd < 0)
    return absl::InternalError("BPF object lacks its maps after load");
  // mmaps the ring's consumer and producer pages once; consumeDone() only reads them.
  r->done_ = ring_buffer__new(done_fd, &IngressRedirect::onDone, r.get(), nullptr);
  if (r->done_ == nullptr)
    return errnoStatus("map the bpf " LB_BPF_MAP_DONE " ring buffer (ring_buffer__new)", errno);
  return r;
}

IngressRedirect::~IngressRedirect() {
  while (!attached_.empty()) {
    // detach() forgets the attachment even when the kernel refuses.
    if (absl::Status s = detach(attached_.back().ifindex); !s.ok())
      LB_LOG(kWarn, "%s", s.ToString());
  }
  if (done_ != nullptr)
    ring_buffer__free(done_);
  if (obj_ != nullptr)
    bpf_object__close(obj_);
}

// A tcx ingress (or egress) link (BPF_LINK_CREATE, attach type BPF_TCX_INGRESS / _EGRESS,
// Linux 6.6): the link lives as long as its file descriptor, so a killed lbd leaves nothing
// attached. Debian bookworm's UAPI headers predate tcx, hence the numbers. Returns the fd or
// -errno.
static int tcxLinkCreate(int prog_fd, int ifindex, bool egress = false) {
  constexpr int kBpfTcxIngress = 46;
  constexpr int kBpfTcxEgress = 47;
  bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.link_create.prog_fd = static_cast<uint32_t>(prog_fd);
  attr.link_create.target_ifindex = static_cast<uint32_t>(ifindex);
  attr.link_create.attach_type =
      static_cast<bpf_attach_type>(egress ? kBpfTcxEgress : kBpfTcxIngress);
  const long fd = syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
  return fd < 0 ? -errno : static_cast<int>(fd);
}

absl::Status IngressRedirect::attach(int ifindex) {
  for (const Attachment& a : attached_) {
    if (a.ifindex == ifindex && !a.egress)
      return absl::OkStatus();
  }
  if (options_.attach != IngressRedirectOptions::Attach::kTcFilter) {
    const int fd = tcxLinkCreate(prog_fd_, ifindex);
    if (fd >= 0) {
      // A filter of ours that a crashed tc-filter run left behind would still redirect what
      // this program passes on (tcx runs first, then the clsact filters): remove it.
      bpf_tc_hook hook = ingressHook(ifindex);
      bpf_tc_opts opts = filterOpts(kTcHandle, kTcPriority);
      (void)bpf_tc_detach(&hook, &opts);
      Attachment a;
      a.ifindex = ifindex;
      a.link_fd = fd;
      attached_.push_back(a);
      LB_LOG(kInfo, "bpf ingress redirect attached to ifindex %d (tcx link)", ifindex);
      return absl::OkStatus();
    }
    // EINVAL: a kernel without tcx (before 6.6) rejects the attach type.
    if (options_.attach == IngressRedirectOptions::Attach::kTcx || fd != -EINVAL)
      return errnoStatus(absl::StrCat("attach tcx ingress link on ifindex ", ifindex), -fd);
  }
  return attachTcFilter(ifindex);
}

absl::Status IngressRedirect::attachSidecarEgress() {
  for (const Attachment& a : attached_) {
    if (a.ifindex == tun_ifindex_ && a.egress)
      return absl::OkStatus();
  }
  if (sidecar_prog_fd_ < 0)
    return absl::InternalError("BPF object lacks " LB_BPF_SIDECAR_PROG_NAME);
  if (options_.attach != IngressRedirectOptions::Attach::kTcFilter) {
    const int fd = tcxLinkCreate(sidecar_prog_fd_, tun_ifindex_, /*egress=*/true);
    if (fd >= 0) {
      bpf_tc_hook hook = ingressHook(tun_ifindex_, /*egress=*/true);
      bpf_tc_opts opts = filterOpts(kTcHandle, kTcPriority);
      (void)bpf_tc_detach(&hook, &opts);  // a crashed tc-filter run's
      Attachment a;
      a.ifindex = tun_ifindex_;
      a.link_fd = fd;
      a.egress = true;
      attached_.push_back(a);
      LB_LOG(kInfo, "bpf sidecar egress attached to ifindex %d (tcx link)", tun_ifindex_);
      return absl::OkStatus();
    }
    if (options_.attach == IngressRedirectOptions::Attach::kTcx || fd != -EINVAL)
      return errnoStatus(absl::StrCat("attach tcx egress link on ifindex ", tun_ifindex_), -fd);
  }
  return attachTcFilter(tun_ifindex_, /*egress=*/true);
}

absl::Status IngressRedirect::attachTcFilter(int ifindex, bool egress) {
  bpf_tc_hook hook = ingressHook(ifindex, egress);
  int err = bpf_tc_hook_create(&hook);
  if (err != 0 && err != -EEXIST)
    return errnoStatus(absl::StrCat("create clsact qdisc on ifindex ", ifindex), -err);
  Attachment a;
  a.ifindex = ifindex;
  a.created_qdisc = err == 0;
  a.egress = egress;
  bpf_tc_opts opts = filterOpts(kTcHandle, kTcPriority);
  opts.prog_fd = egress ? sidecar_prog_fd_ : prog_fd_;
  opts.flags = BPF_TC_F_REPLACE;
  if (err = bpf_tc_attach(&hook, &opts); err != 0) {
    if (a.created_qdisc) {
      hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
      (void)bpf_tc_hook_destroy(&hook);
    }
    return errnoStatus(absl::StrCat("attach tc ingress filter on ifindex ", ifindex), -err);
  }
  attached_.push_back(a);
  LB_LOG(kInfo, "bpf ingress redirect attached to ifindex %d%s", ifindex,
         a.created_qdisc ? " (clsact created)" : "");
  return absl::OkStatus();
}

absl::Status IngressRedirect::detach(int ifindex) {
  auto it = std::find_if(attached_.begin(), attached_.end(),
                         [&](const Attachment& a) { return a.ifindex == ifindex; });
  if (it == attached_.end())
    return absl::NotFoundError(absl::StrCat("ifindex ", ifindex, " not attached"));
  const Attachment a = *it;
  attached_.erase(it);
  if (a.link_fd >= 0) {
    close(a.link_fd);  // the last reference: the kernel detaches the link
    return absl::OkStatus();
  }
  bpf_tc_hook hook = ingressHook(ifindex, a.egress);
  bpf_tc_opts opts = filterOpts(kTcHandle, kTcPriority);
  int err = bpf_tc_detach(&hook, &opts);
  // ENODEV/ENOENT: the device (or the filter) is gone already, so nothing of ours is left.
  if (err != 0 && err != -ENODEV && err != -ENOENT)
    return errnoStatus(absl::StrCat("detach tc ingress filter on ifindex ", ifindex), -err);
  if (a.created_qdisc && err == 0) {
    // Ingress and egress together: that is how libbpf deletes the clsact qdisc itself.
    hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
    err = bpf_tc_hook_destroy(&hook);
    if (err != 0 && err != -ENODEV && err != -ENOENT)
      return errnoStatus(absl::StrCat("delete clsact qdisc on ifindex ", ifindex), -err);
  }
  return absl::OkStatus();
}

absl::Status IngressRedirect::setDsts(const std::vector<IpAddr>& dsts) {
  KeySet want;
  for (const IpAddr& a : dsts) {
    if (!a.isV4() && !a.isV6())
      return absl::InvalidArgumentError("bpf dsts: address without a family");
    lb_bpf_dst_key k;
    fillDstKey(a, k);
    want.insert(keyBytes(k));
  }
  return syncMap(dsts_fd_, sizeof(lb_bpf_dst_key), LB_BPF_MAX_DSTS, want, dsts_have_, "bpf dsts");
}

absl::Status IngressRedirect::setReplies(const std::vector<ReplyKey>& replies) {
  KeySet want;
  for (const ReplyKey& r : replies) {
    if (!r.addr.isV4() && !r.addr.isV6())
      return absl::InvalidArgumentError("bpf replies: address without a family");
    if (r.proto != L4Proto::kTcp && r.proto != L4Proto::kUdp && r.proto != L4Proto::kSctp) {
      return absl::InvalidArgumentError(
          absl::StrCat("bpf replies: ", formatAddrPort(r.addr, r.port), " protocol ",
                       static_cast<int>(r.proto), " has no ports"));
    }
    lb_bpf_reply_key k;
    fillReplyKey(r, k);
    want.insert(keyBytes(k));
  }
  return syncMap(replies_fd_, sizeof(lb_bpf_reply_key), LB_BPF_MAX_REPLIES, want, replies_have_,
                 "bpf replies");
}

absl::StatusOr<IngressRedirectCounters> IngressRedirect::counters() const {
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0)
    return errnoStatus("count possible CPUs", -ncpu);
  std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpu));
  uint64_t sums[LB_BPF_CNT_MAX] = {};
  for (uint32_t i = 0; i < LB_BPF_CNT_MAX; ++i) {
    if (bpf_map_lookup_elem(counters_fd_, &i, per_cpu.data()) != 0)
      return errnoStatus("read bpf counters", errno);
    for (uint64_t v : per_cpu)
      sums[i] += v;
  }
  IngressRedirectCounters c;
  c.redirected_dst = sums[LB_BPF_CNT_REDIRECT_DST];
  c.redirected_reply = sums[LB_BPF_CNT_REDIRECT_REPLY];
  c.passed = sums[LB_BPF_CNT_PASS];
  c.flow_forwarded = sums[LB_BPF_CNT_FLOW_FWD];
  c.flow_slow = sums[LB_BPF_CNT_FLOW_SLOW];
  c.flow_dropped = sums[LB_BPF_CNT_FLOW_DROP];
  c.flow_done = sums[LB_BPF_CNT_FLOW_DONE];
  return c;
}

absl::Status IngressRedirect::addFlow(const FlowKey& key,
                                      const FlowRewrite& rw,
                                      const FlowKey& reverse,
                                      uint64_t cookie,
                                      bool reply) {
  if (absl::Status s = checkFlowKey(key, "key", Af::kUnspec); !s.ok())
    return s;
  if (rw.encap != FlowEncap::kNone) {
    if (!key.saddr.isV4() || reply || rw.encap > FlowEncap::kGre4NoPmtu) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bpf flow ", formatAddrPort(key.saddr, key.sport), " -> ",
          formatAddrPort(key.daddr, key.dport), ": a tunnel entry is IPv4, client -> VIP"));
    }
  } else if (absl::Status s = checkFlowKey(reverse, "reverse key", key.saddr.af()); !s.ok()) {
    return s;
  }
  if (rw.saddr.af() != key.saddr.af() || rw.daddr.af() != key.saddr.af()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bpf flow ", formatAddrPort(key.saddr, key.sport), " -> ",
        formatAddrPort(key.daddr, key.dport), ": rewrite to ", formatAddrPort(rw.saddr, rw.sport),
        " -> ", formatAddrPort(rw.daddr, rw.dport), " is another family"));
  }
  lb_bpf_flow_key k;
  fillFlowKey(key, k);
  lb_bpf_flow v;
  fillFlow(rw, reverse, cookie, reply, v);
  if (bpf_map_update_elem(flows_fd_, &k, &v, BPF_ANY) != 0) {
    return errnoStatus(absl::StrCat("add bpf flow ", formatAddrPort(key.saddr, key.sport), " -> ",
                                    formatAddrPort(key.daddr, key.dport)),
                       errno);
  }
  return absl::OkStatus();
}

absl::Status IngressRedirect::removeFlow(const FlowKey& key) {
  if (absl::Status s = checkFlowKey(key, "key", Af::kUnspec); !s.ok())
    return s;
  lb_bpf_flow_key k;
  fillFlowKey(key, k);
  if (bpf_map_delete_elem(flows_fd_, &k) != 0) {
    return errnoStatus(absl::StrCat("remove bpf flow ", formatAddrPort(key.saddr, key.sport),
                                    " -> ", formatAddrPort(key.daddr, key.dport)),
                       errno);
  }
  return absl::OkStatus();
}

absl::StatusOr<FlowState> IngressRedirect::flowState(const FlowKey& key) const {
  if (absl::Status s = checkFlowKey(key, "key", Af::kUnspec); !s.ok())
    return s;
  lb_bpf_flow_key k;
  fillFlowKey(key, k);
  lb_bpf_flow v;
  if (bpf_map_lookup_elem(flows_fd_, &k, &v) != 0) {
    return errnoStatus(absl::StrCat("bpf flow ", formatAddrPort(key.saddr, key.sport), " -> ",
                                    formatAddrPort(key.daddr, key.dport)),
                       errno);
  }
  return flowStateOf(v.packets, v.bytes, v.last_ns, v.flags);
}

int IngressRedirect::onDone(void* ctx, void* data, size_t size) {
  auto* self = static_cast<IngressRedirect*>(ctx);
  if (size < sizeof(lb_bpf_flow_done) || self->done_fn_ == nullptr)
    return 0;  // not ours (a newer program's record is at least as long)
  lb_bpf_flow_done rec;
  std::memcpy(&rec, data, sizeof(rec));
  FlowDone d;
  d.cookie = rec.cookie;
  d.in = flowStateOf(rec.in);
  d.out = flowStateOf(rec.out);
  (*self->done_fn_)(d);
  return 0;
}

size_t IngressRedirect::consumeDone(absl::FunctionRef<void(const FlowDone&)> f) {
  done_fn_ = &f;
  const int n = ring_buffer__consume(done_);
  done_fn_ = nullptr;
  return n > 0 ? static_cast<size_t>(n) : 0;
}

absl::StatusOr<FlowWriter> IngressRedirect::flowWriter() const {
  const int fd = fcntl(flows_fd_, F_DUPFD_CLOEXEC, 0);
  if (fd < 0)
    return errnoStatus("dup the bpf flows map fd", errno);
  return FlowWriter(fd);
}

FlowWriter::~FlowWriter() {
  if (fd_ >= 0)
    close(fd_);
}

FlowWriter::FlowWriter(FlowWriter&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

FlowWriter& FlowWriter::operator=(FlowWriter&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0)
      close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

// libbpf's wrappers fill a bpf_attr on the stack and make the syscall; on failure they set
// errno (libbpf 1.x also returns -errno, 0.x returns -1).
int FlowWriter::add(const FlowKey& key,
                    const FlowRewrite& rw,
                    const FlowKey& reverse,
                    uint64_t cookie,
                    bool reply) noexcept {
  if (fd_ < 0)
    return EBADF;
  lb_bpf_flow_key k;
  fillFlowKey(key, k);
  lb_bpf_flow v;
  fillFlow(rw, reverse, cookie, reply, v);
  return bpf_map_update_elem(fd_, &k, &v, BPF_NOEXIST) == 0 ? 0 : errno;
}

int FlowWriter::remove(const FlowKey& key) noexcept {
  if (fd_ < 0)
    return EBADF;
  lb_bpf_flow_key k;
  fillFlowKey(key, k);
  return bpf_map_delete_elem(fd_, &k) == 0 ? 0 : errno;
}

std::vector<int> IngressRedirect::attached() const {
  std::vector<int> out;
  for (const Attachment& a : attached_)
    out.push_back(a.ifindex);
  return out;
}

// ---- SYN proxy (lb_bpf_synproxy_*) ----------------------------------------------------------

static_assert(sizeof(lb_bpf_synproxy_key) == 20);
static_assert(sizeof(lb_bpf_synproxy_cfg) == 24);

absl::Status IngressRedirect::setSynproxy(const SynproxyConfig& cfg,
                                          const std::vector<SynproxyService>& services) {
  const int svc_fd = bpf_object__find_map_fd_by_name(obj_, LB_BPF_MAP_SYNPROXY);
  const int cfg_fd = bpf_object__find_map_fd_by_name(obj_, LB_BPF_MAP_SYNPROXY_CFG);
  if (svc_fd < 0 || cfg_fd < 0)
    return absl::InternalError("BPF object lacks its synproxy maps");
  KeySet want;
  for (const SynproxyService& s : services) {
    if (!s.vaddr.isV4() && !s.vaddr.isV6()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bpf synproxy service ", formatAddrPort(s.vaddr, s.vport)));
    }
    lb_bpf_synproxy_key k;
    std::memset(&k, 0, sizeof(k));
    k.family = static_cast<uint8_t>(s.vaddr.af());
    k.port = htobe16(s.vport);
    std::memcpy(k.addr, s.vaddr.data(), s.vaddr.size());
    want.insert(keyBytes(k));
  }
  // The config first when turning on (a marked service is never answered with a stale
  // secret), last when turning off.
  lb_bpf_synproxy_cfg c;
  std::memset(&c, 0, sizeof(c));
  if (!want.empty()) {
    c.secret = cfg.secret;
    c.mss4 = cfg.mss4;
    c.mss6 = cfg.mss6;
    c.window = cfg.window;
    c.on = 1;
    c.clock_offset_ns = cfg.clock_offset_ns;
  }
  const uint32_t zero = 0;
  if (!want.empty() && bpf_map_update_elem(cfg_fd, &zero, &c, BPF_ANY) != 0)
    return errnoStatus("update bpf synproxy_cfg", errno);
  if (absl::Status s = syncMap(svc_fd, sizeof(lb_bpf_synproxy_key), LB_BPF_MAX_SYNPROXY, want,
                               synproxy_have_, "bpf synproxy services");
      !s.ok()) {
    return s;
  }
  if (want.empty() && bpf_map_update_elem(cfg_fd, &zero, &c, BPF_ANY) != 0)
    return errnoStatus("update bpf synproxy_cfg", errno);
  return absl::OkStatus();
}

absl::StatusOr<SynproxyCounters> IngressRedirect::synproxyCounters() const {
  const int fd = bpf_object__find_map_fd_by_name(obj_, LB_BPF_MAP_SYNPROXY_CNT);
  if (fd < 0)
    return absl::InternalError("BPF object lacks " LB_BPF_MAP_SYNPROXY_CNT);
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0)
    return errnoStatus("count possible CPUs", -ncpu);
  std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpu));
  uint64_t sums[LB_BPF_SP_CNT_MAX] = {};
  for (uint32_t i = 0; i < LB_BPF_SP_CNT_MAX; ++i) {
    if (bpf_map_lookup_elem(fd, &i, per_cpu.data()) != 0)
      return errnoStatus("read bpf synproxy counters", errno);
    for (uint64_t v : per_cpu)
      sums[i] += v;
  }
  SynproxyCounters c;
  c.synack = sums[LB_BPF_SP_CNT_SYNACK];
  c.slow = sums[LB_BPF_SP_CNT_SLOW];
  return c;
}

absl::StatusOr<uint32_t> IngressRedirect::testRun(const std::vector<uint8_t>& frame,
                                                  std::vector<uint8_t>* out) const {
  out->assign(frame.size() + 256, 0);
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  opts.data_in = frame.data();
  opts.data_size_in = static_cast<uint32_t>(frame.size());
  opts.data_out = out->data();
  opts.data_size_out = static_cast<uint32_t>(out->size());
  opts.repeat = 1;
  if (bpf_prog_test_run_opts(prog_fd_, &opts) != 0)
    return errnoStatus("BPF_PROG_TEST_RUN " LB_BPF_PROG_NAME, errno);
  out->resize(opts.data_size_out);
  return opts.retval;
}

}  // namespace lb::io
