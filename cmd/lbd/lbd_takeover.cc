// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/lbd_takeover.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "cmd/lbd/takeover/handover_socket.h"
#include "core/base/log.h"

namespace lb::lbd {
namespace {

constexpr int kHelloTimeoutMs = 5000;
constexpr int kReplyTimeoutMs = 60000;  // the new lbd builds its conn table and starts

int64_t monoMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

absl::StatusOr<Mode> modeFromName(const std::string& m) {
  if (m == "gateway")
    return Mode::kGateway;
  if (m == "sidecar")
    return Mode::kSidecar;
  if (m == "decap")
    return Mode::kDecap;
  return absl::InvalidArgumentError(absl::StrCat("takeover: unknown mode ", m));
}

}  // namespace

absl::StatusOr<std::unique_ptr<TakeoverServer>> TakeoverServer::start(const std::string& path,
                                                                      ControlPlane& control,
                                                                      Dataplane& dataplane,
                                                                      OwnerLock& owner,
                                                                      Mode,
                                                                      std::string mode_name) {
  auto fd = listenTakeover(path);
  if (!fd.ok())
    return fd.status();
  std::unique_ptr<TakeoverServer> s(
      new TakeoverServer(path, *fd, control, dataplane, owner, std::move(mode_name)));
  s->thread_ = std::thread([p = s.get()] { p->loop(); });
  return s;
}

TakeoverServer::TakeoverServer(std::string path,
                               int fd,
                               ControlPlane& control,
                               Dataplane& dataplane,
                               OwnerLock& owner,
                               std::string mode_name)
    : path_(std::move(path)),
      fd_(fd),
      control_(control),
      dataplane_(dataplane),
      owner_(owner),
      mode_name_(std::move(mode_name)) {}

TakeoverServer::~TakeoverServer() {
  stop();
}

void TakeoverServer::stop() {
  if (stop_.exchange(true))
    return;
  if (thread_.joinable())
    thread_.join();
  close(fd_);
  if (!handed_over_.load())
    unlink(path_.c_str());
}

void TakeoverServer::loop() {
  while (!stop_.load() && !handed_over_.load()) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0)
      continue;
    const int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0)
      continue;
    serve(conn);
    close(conn);
  }
}

// The old side of the protocol:
//   new -> old  "lbd-takeover 1"
//   old -> new  fds (owner lock, TUN queues) + config, lock_path, mode     (mutations refused)
//   new -> old  "ready" (its conn table, workers and tc program are made)
//   old -> new  kernel, ids, conns                                        (workers paused)
//   new -> old  "ok" (it serves: workers, control socket) -> the old lbd exits
// Anything else from the new lbd, or silence, and the old one carries on.
void TakeoverServer::serve(int conn) {
  auto hello = recvLine(conn, kHelloTimeoutMs);
  if (!hello.ok() || *hello != kTakeoverHello) {
    LB_LOG(kWarn, "takeover socket: not a takeover request (%s)",
           hello.ok() ? *hello : hello.status().ToString());
    return;
  }
  LB_LOG(kInfo, "takeover requested: handing over to a new lbd");
  HandoverMessage first;
  first.sections.emplace_back("config", control_.freezeForHandover());
  first.sections.emplace_back("lock_path", owner_.path());
  first.sections.emplace_back("mode", mode_name_);
  first.fds.push_back(owner_.fd());
  for (int fd : dataplane_.tunFds())
    first.fds.push_back(fd);
  absl::Status st = sendMessage(conn, first);
  absl::StatusOr<std::string> ready =
      st.ok() ? recvLine(conn, kReplyTimeoutMs) : absl::StatusOr<std::string>(st);
  if (!ready.ok() || *ready != "ready") {
    LB_LOG(kError, "takeover failed before the handover (%s): carrying on",
           ready.ok() ? *ready : ready.status().ToString());
    control_.thaw();
    return;
  }
  const int64_t t0 = monoMs();
  auto h = dataplane_.pauseForHandover();
  if (!h.ok()) {
    LB_LOG(kError, "takeover: %s", h.status().ToString());
    (void)sendLine(conn, absl::StrCat("fail: ", h.status().ToString()));
    control_.thaw();
    return;
  }
  HandoverMessage second;
  second.sections.emplace_back("kernel", std::move(h->kernel_state));
  second.sections.emplace_back("ids", std::move(h->ids));
  second.sections.emplace_back("conns", std::move(h->conns));
  st = sendMessage(conn, second);
  const int64_t t_sent = monoMs();
  absl::StatusOr<std::string> reply =
      st.ok() ? recvLine(conn, kReplyTimeoutMs) : absl::StatusOr<std::string>(st);
  if (reply.ok() && *reply == "ok") {
    LB_LOG(kInfo,
           "takeover: the new lbd serves; this one's workers stopped %d ms before (export %d ms, "
           "the new lbd's import and start %d ms); exiting without removing anything",
           static_cast<int>(monoMs() - t0), static_cast<int>(t_sent - t0),
           static_cast<int>(monoMs() - t_sent));
    handed_over_.store(true);
    kill(getpid(), SIGUSR2);
    return;
  }
  LB_LOG(kError, "takeover failed (%s): carrying on",
         reply.ok() ? *reply : reply.status().ToString());
  if (absl::Status r = dataplane_.resumeAfterHandover(); !r.ok())
    LB_LOG(kError, "resume after the failed takeover: %s", r.ToString());
  control_.thaw();
}

absl::StatusOr<TakenOver> takeOver(const std::string& path,
                                   DataplaneOptions options,
                                   ServiceTable& table,
                                   OwnerInfo me) {
  auto sock = connectTakeover(path);
  if (!sock.ok())
    return sock.status();
  TakenOver t;
  t.sock = *sock;
  auto fail = [&t](const absl::Status& s) -> absl::Status {
    if (t.dataplane != nullptr)
      t.dataplane->abandon();
    finishTakeover(t, s);
    return s;
  };
  const int64_t t0 = monoMs();
  if (absl::Status s = sendLine(t.sock, kTakeoverHello); !s.ok())
    return fail(s);
  auto m = recvMessage(t.sock, kReplyTimeoutMs);
  if (!m.ok())
    return fail(m.status());
  const std::string* config = m->find("config");
  const std::string* lock_path = m->find("lock_path");
  const std::string* mode = m->find("mode");
  auto md = mode != nullptr ? modeFromName(*mode)
                            : absl::StatusOr<Mode>(absl::InvalidArgumentError("no mode"));
  if (config == nullptr || lock_path == nullptr || !md.ok() || m->fds.size() < 2) {
    for (int fd : m->fds)
      close(fd);
    return fail(absl::InvalidArgumentError("takeover: incomplete handover message"));
  }
  options.mode = *md;
  t.mode = *mode;
  std::vector<int> tun_fds(m->fds.begin() + 1, m->fds.end());
  auto owner = OwnerLock::adopt(m->fds[0], *lock_path);
  if (!owner.ok()) {
    for (int fd : tun_fds)
      close(fd);
    return fail(owner.status());
  }
  t.owner = std::move(*owner);
  if (absl::Status s = ControlPlane::loadHandedOver(table, *config, &t.sync_daemons); !s.ok()) {
    for (int fd : tun_fds)
      close(fd);
    return fail(s);
  }
  auto dp = Dataplane::adopt(options, table, std::move(tun_fds));
  if (!dp.ok())
    return fail(dp.status());
  t.dataplane = std::move(*dp);
  const int64_t t_ready = monoMs();
  if (absl::Status s = sendLine(t.sock, "ready"); !s.ok())
    return fail(s);
  auto rest = recvMessage(t.sock, kReplyTimeoutMs);
  if (!rest.ok())
    return fail(rest.status());
  const int64_t t_rest = monoMs();
  DataplaneHandover h;
  for (const char* name : {"kernel", "ids", "conns"}) {
    if (rest->find(name) == nullptr)
      return fail(absl::InvalidArgumentError(absl::StrCat("takeover: no ", name, " handed over")));
  }
  h.kernel_state = *rest->find("kernel");
  h.ids = *rest->find("ids");
  h.conns = *rest->find("conns");
  if (absl::Status s = t.dataplane->completeHandover(h); !s.ok())
    return fail(s);
  me.mode = *mode;
  if (absl::Status s = t.owner->record(me); !s.ok())
    LB_LOG(kWarn, "%s", s.ToString());
  LB_LOG(kInfo,
         "takeover: prepared in %d ms (%d services); the old lbd paused and sent %d bytes of "
         "conns in %d ms; imported in %d ms",
         static_cast<int>(t_ready - t0), static_cast<int>(table.config().services.size()),
         static_cast<int>(h.conns.size()), static_cast<int>(t_rest - t_ready),
         static_cast<int>(monoMs() - t_rest));
  return t;
}

void finishTakeover(TakenOver& t, const absl::Status& outcome) {
  if (t.sock < 0)
    return;
  (void)sendLine(t.sock,
                 outcome.ok() ? std::string("ok") : absl::StrCat("fail: ", outcome.ToString()));
  close(t.sock);
  t.sock = -1;
}

}  // namespace lb::lbd
