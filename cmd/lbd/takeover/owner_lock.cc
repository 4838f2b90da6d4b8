// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/takeover/owner_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "io/netlink/netlink.h"

namespace lb::lbd {
namespace {

absl::Status errnoError(absl::string_view what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(err)));
}

std::string readAll(int fd) {
  std::string text;
  char buf[1024];
  ssize_t n = 0;
  off_t off = 0;
  while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
    text.append(buf, static_cast<size_t>(n));
    off += n;
  }
  return text;
}

void sleepMs(int ms) {
  const timespec ts{ms / 1000, static_cast<long>(ms % 1000) * 1'000'000};
  nanosleep(&ts, nullptr);
}

}  // namespace

std::string OwnerLock::lockPath(const std::string& run_dir) {
  const std::string id = io::netnsId();
  if (id.empty())
    return "";
  return absl::StrCat(run_dir, "/owner-", id, ".lock");
}

std::string OwnerLock::format(const OwnerInfo& info) {
  return absl::StrCat("pid ", info.pid, "\ntun ", info.tun, "\nmode ", info.mode, "\nlisten ",
                      info.listen, "\n");
}

OwnerInfo OwnerLock::parse(const std::string& text) {
  OwnerInfo info;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits(' ', 1));
    if (kv.first == "pid")
      (void)absl::SimpleAtoi(kv.second, &info.pid);
    else if (kv.first == "tun")
      info.tun = kv.second;
    else if (kv.first == "mode")
      info.mode = kv.second;
    else if (kv.first == "listen")
      info.listen = kv.second;
  }
  return info;
}

absl::StatusOr<std::unique_ptr<OwnerLock>> OwnerLock::acquire(const std::string& run_dir,
                                                              const OwnerInfo& me) {
  const std::string path = lockPath(run_dir);
  if (path.empty())
    return absl::InternalError("owner lock: cannot identify the network namespace");
  if (mkdir(run_dir.c_str(), 0755) != 0 && errno != EEXIST)
    return errnoError(absl::StrCat("owner lock: mkdir ", run_dir), errno);
  // The owner removes the file when it stops (holding the lock), so a lock taken on a file
  // that is no longer the one at the path proves nothing: take it again on the new one.
  int fd = -1;
  for (int attempt = 0;; ++attempt) {
    // O_CREAT without O_TRUNC: a running owner's record is read, never touched.
    fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      return errnoError(absl::StrCat("owner lock: open ", path), errno);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      if (err != EWOULDBLOCK) {
        close(fd);
        return errnoError(absl::StrCat("owner lock: flock ", path), err);
      }
      const OwnerInfo owner = parse(readAll(fd));
      close(fd);
      return absl::FailedPreconditionError(absl::StrCat(
          "another lbd owns this network namespace: pid ", owner.pid, " (tun ",
          owner.tun.empty() ? "?" : owner.tun, ", mode ", owner.mode.empty() ? "?" : owner.mode,
          ", control socket ", owner.listen.empty() ? "?" : owner.listen, "; lock ", path,
          "). Nothing was changed. Stop it first, or replace it with `lbd --takeover`"));
    }

    struct stat held {};

    struct stat named {};

    if (fstat(fd, &held) == 0 && stat(path.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
        held.st_dev == named.st_dev) {
      break;
    }
    close(fd);
    if (attempt == 10)
      return absl::InternalError(absl::StrCat("owner lock: ", path, " keeps being replaced"));
  }
  std::unique_ptr<OwnerLock> lock(new OwnerLock(fd, path));
  if (absl::Status s = lock->record(me); !s.ok())
    return s;
  return lock;
}

absl::StatusOr<std::unique_ptr<OwnerLock>> OwnerLock::adopt(int fd, std::string path) {
  // The flock is the open file description's: still held by this fd. Check it is.
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    close(fd);
    return errnoError("owner lock: the fd handed over does not hold the lock", err);
  }
  return std::unique_ptr<OwnerLock>(new OwnerLock(fd, std::move(path)));
}

absl::Status OwnerLock::record(const OwnerInfo& me) {
  const std::string text = format(me);
  if (ftruncate(fd_, 0) != 0 ||
      pwrite(fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    return errnoError(absl::StrCat("owner lock: write ", path_), errno);
  }
  return absl::OkStatus();
}

OwnerLock::~OwnerLock() {
  // Removed while still locked (a taker that opened it meanwhile sees it is gone, see
  // acquire); left for the next owner after a handover.
  if (!handed_over_)
    unlink(path_.c_str());
  close(fd_);
}

absl::Status checkNoLiveOwner(const std::string& tun, int wait_ms) {
  auto nl = io::Netlink::open();
  if (!nl.ok())
    return nl.status();
  std::string found;
  for (int waited = 0;; waited += 50) {
    found.clear();
    if (if_nametoindex(tun.c_str()) != 0)
      found = absl::StrCat("a device named ", tun, " exists");
    for (Af af : {Af::kInet, Af::kInet6}) {
      auto routes = (*nl)->listRoutes(af, io::kLbdProto);
      if (!routes.ok())
        return routes.status();
      if (!routes->empty() && found.empty()) {
        const io::RouteSpec& r = routes->front();
        char dev[IF_NAMESIZE] = {};
        if (if_indextoname(static_cast<unsigned>(r.oif), dev) == nullptr)
          dev[0] = '?';
        found = absl::StrCat("lbd's route ",
                             r.prefix_len == 0 ? std::string("default")
                                               : absl::StrCat(r.dst.toString(), "/", r.prefix_len),
                             " table ", r.table, " dev ", dev, " is live");
      }
    }
    if (found.empty())
      return absl::OkStatus();
    if (waited >= wait_ms)
      break;
    sleepMs(50);
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "another lbd seems to own this network namespace (", found,
      ") although its owner lock is free: one started with another /run/lbd (a container with "
      "its own /run?). Nothing was changed"));
}

}  // namespace lb::lbd
