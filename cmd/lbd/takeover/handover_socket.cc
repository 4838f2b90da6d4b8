// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/takeover/handover_socket.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace lb::lbd {
namespace {

constexpr uint32_t kMagic = 0x4c424448;  // "LBDH"
constexpr size_t kMaxFds = 250;
constexpr uint64_t kMaxPayload = 1ull << 34;  // 16 GiB: far above 1M conns' ~100 MB

struct Header {
  uint32_t magic = kMagic;
  uint32_t nfds = 0;
  uint64_t payload = 0;
};

absl::Status errnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat("takeover: ", what, ": ", strerror(errno)));
}

absl::Status waitReadable(int sock, int timeout_ms) {
  pollfd p{sock, POLLIN, 0};
  for (;;) {
    const int r = poll(&p, 1, timeout_ms);
    if (r > 0)
      return absl::OkStatus();
    if (r == 0)
      return absl::DeadlineExceededError("takeover: the other lbd did not answer in time");
    if (errno != EINTR)
      return errnoError("poll");
  }
}

absl::Status writeAll(int sock, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = send(sock, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return errnoError("send");
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

absl::Status readAll(int sock, char* p, size_t n, int timeout_ms) {
  while (n > 0) {
    if (absl::Status s = waitReadable(sock, timeout_ms); !s.ok())
      return s;
    const ssize_t r = recv(sock, p, n, 0);
    if (r == 0)
      return absl::UnavailableError("takeover: the other lbd closed the connection");
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return errnoError("recv");
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return absl::OkStatus();
}

absl::StatusOr<sockaddr_un> unixAddr(const std::string& path) {
  sockaddr_un sa{};
  if (path.size() >= sizeof(sa.sun_path))
    return absl::InvalidArgumentError(absl::StrCat("takeover socket path too long: ", path));
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.c_str(), path.size());
  return sa;
}

}  // namespace

const std::string* HandoverMessage::find(const std::string& name) const {
  for (const auto& [n, v] : sections) {
    if (n == name)
      return &v;
  }
  return nullptr;
}

std::string takeoverSocketPath(const std::string& listen, const std::string& lock_path) {
  if (absl::StartsWith(listen, "unix://"))
    return absl::StrCat(listen.substr(7), ".takeover");
  return absl::StrCat(lock_path, ".takeover");
}

absl::StatusOr<int> listenTakeover(const std::string& path) {
  const std::string tmp = path + ".new";
  auto sa = unixAddr(tmp);
  if (!sa.ok())
    return sa.status();
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return errnoError("socket");
  unlink(tmp.c_str());
  const mode_t old_mask = umask(0177);
  const int b = bind(fd, reinterpret_cast<const sockaddr*>(&*sa), sizeof(*sa));
  umask(old_mask);
  if (b != 0 || listen(fd, 4) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status s = errnoError(absl::StrCat("listen on ", path));
    close(fd);
    unlink(tmp.c_str());
    return s;
  }
  return fd;
}

absl::StatusOr<int> connectTakeover(const std::string& path) {
  auto sa = unixAddr(path);
  if (!sa.ok())
    return sa.status();
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return errnoError("socket");
  if (connect(fd, reinterpret_cast<const sockaddr*>(&*sa), sizeof(*sa)) != 0) {
    const int e = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("--takeover: no running lbd answers on ", path, ": ", strerror(e)));
  }
  return fd;
}

absl::Status sendMessage(int sock, const HandoverMessage& m) {
  if (m.fds.size() > kMaxFds)
    return absl::InvalidArgumentError(absl::StrCat("takeover: ", m.fds.size(), " fds (max 250)"));
  std::string payload;
  for (const auto& [name, value] : m.sections) {
    const uint32_t nl = static_cast<uint32_t>(name.size());
    const uint64_t vl = value.size();
    payload.append(reinterpret_cast<const char*>(&nl), sizeof(nl));
    payload += name;
    payload.append(reinterpret_cast<const char*>(&vl), sizeof(vl));
    payload += value;
  }
  Header h;
  h.nfds = static_cast<uint32_t>(m.fds.size());
  h.payload = payload.size();
  iovec iov{&h, sizeof(h)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * kMaxFds));
  if (!m.fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * m.fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * m.fds.size());
    std::memcpy(CMSG_DATA(c), m.fds.data(), sizeof(int) * m.fds.size());
  }
  ssize_t w = 0;
  do {
    w = sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (w < 0 && errno == EINTR);
  if (w != static_cast<ssize_t>(sizeof(h)))
    return errnoError("sendmsg (fds)");
  return writeAll(sock, payload.data(), payload.size());
}

absl::StatusOr<HandoverMessage> recvMessage(int sock, int timeout_ms) {
  HandoverMessage m;
  Header h;
  iovec iov{&h, sizeof(h)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * kMaxFds));
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  if (absl::Status s = waitReadable(sock, timeout_ms); !s.ok())
    return s;
  ssize_t r = 0;
  do {
    r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  } while (r < 0 && errno == EINTR);
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      const size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const size_t at = m.fds.size();
      m.fds.resize(at + n);
      std::memcpy(m.fds.data() + at, CMSG_DATA(c), n * sizeof(int));
    }
  }
  auto bad = [&m](absl::string_view why) {
    for (int fd : m.fds)
      close(fd);
    return absl::InvalidArgumentError(absl::StrCat("takeover: ", why));
  };
  if (r == 0)
    return bad("the old lbd closed the connection (see its log)");
  if (r != static_cast<ssize_t>(sizeof(h)) || h.magic != kMagic)
    return bad("not an lbd handover message");
  if ((msg.msg_flags & MSG_CTRUNC) != 0 || m.fds.size() != h.nfds)
    return bad(absl::StrCat("expected ", h.nfds, " fds, got ", m.fds.size()));
  if (h.payload > kMaxPayload)
    return bad("payload too large");
  std::string payload(static_cast<size_t>(h.payload), '\0');
  if (absl::Status s = readAll(sock, payload.data(), payload.size(), timeout_ms); !s.ok()) {
    for (int fd : m.fds)
      close(fd);
    return s;
  }
  size_t off = 0;
  auto take = [&](void* out, size_t n) {
    if (payload.size() - off < n)
      return false;
    std::memcpy(out, payload.data() + off, n);
    off += n;
    return true;
  };
  while (off < payload.size()) {
    uint32_t nl = 0;
    uint64_t vl = 0;
    if (!take(&nl, sizeof(nl)) || payload.size() - off < nl)
      return bad("truncated section name");
    std::string name = payload.substr(off, nl);
    off += nl;
    if (!take(&vl, sizeof(vl)) || payload.size() - off < vl)
      return bad("truncated section");
    m.sections.emplace_back(std::move(name), payload.substr(off, static_cast<size_t>(vl)));
    off += static_cast<size_t>(vl);
  }
  return m;
}

absl::Status sendLine(int sock, const std::string& line) {
  const std::string l = line + "\n";
  return writeAll(sock, l.data(), l.size());
}

absl::StatusOr<std::string> recvLine(int sock, int timeout_ms) {
  std::string out;
  char c = 0;
  while (out.size() < 4096) {
    if (absl::Status s = readAll(sock, &c, 1, timeout_ms); !s.ok())
      return s;
    if (c == '\n')
      return out;
    out += c;
  }
  return absl::InvalidArgumentError("takeover: line too long");
}

}  // namespace lb::lbd
