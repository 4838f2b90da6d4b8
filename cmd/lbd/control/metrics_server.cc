// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/control/metrics_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace lb::lbd {
namespace {

bool sendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::start(const std::string& listen,
                                                                    Render render) {
  const size_t colon = listen.rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--metrics=", listen, ": expected host:port"));
  }
  std::string host = listen.substr(0, colon);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host.c_str(), &a->sin6_addr) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("--metrics=", listen, ": bad address"));
    }
    len = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    if (host.empty())
      host = "0.0.0.0";
    if (inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("--metrics=", listen, ": bad address"));
    }
    len = sizeof(sockaddr_in);
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return absl::InternalError(absl::StrCat("metrics socket: ", std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  // A hot restart's new lbd binds the port while the old one still serves it.
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 16) != 0) {
    const int e = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat("metrics bind ", listen, ": ", std::strerror(e)));
  }
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  const uint16_t bound =
      ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                     : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return std::unique_ptr<MetricsServer>(new MetricsServer(fd, bound, std::move(render)));
}

MetricsServer::MetricsServer(int fd, uint16_t port, Render render)
    : fd_(fd), port_(port), render_(std::move(render)) {
  if (::pipe2(stop_pipe_, O_CLOEXEC) != 0)
    stop_pipe_[0] = stop_pipe_[1] = -1;
  thread_ = std::thread([this] { run(); });
}

MetricsServer::~MetricsServer() {
  stop();
}

void MetricsServer::stop() {
  if (!thread_.joinable())
    return;
  if (stop_pipe_[1] >= 0) {
    char c = 1;
    (void)!::write(stop_pipe_[1], &c, 1);
  }
  thread_.join();
  ::close(fd_);
  for (int& p : stop_pipe_) {
    if (p >= 0)
      ::close(p);
    p = -1;
  }
}

void MetricsServer::run() {
  for (;;) {
    pollfd pfd[2] = {{fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    int n = ::poll(pfd, 2, -1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 || (pfd[1].revents & POLLIN) != 0)
      return;
    if ((pfd[0].revents & POLLIN) == 0)
      continue;
    int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0)
      continue;
    serveOne(conn);
    ::close(conn);
  }
}

void MetricsServer::serveOne(int conn) {
  std::string req;
  char buf[1024];
  while (req.size() < 8192 && req.find("\r\n\r\n") == std::string::npos &&
         req.find("\n\n") == std::string::npos) {
    pollfd p{conn, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0)
      break;  // a slow client gets what it sent so far
    ssize_t n = ::recv(conn, buf, sizeof(buf), 0);
    if (n <= 0)
      break;
    req.append(buf, static_cast<size_t>(n));
  }
  if (absl::StartsWith(req, "GET /metrics ") || absl::StartsWith(req, "GET /metrics?") ||
      absl::StartsWith(req, "GET / ")) {
    const std::string body = render_();
    sendAll(conn, absl::StrCat("HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n",
                               "Content-Length: ", body.size(), "\r\n\r\n", body));
    return;
  }
  // Kubernetes probes (the Helm chart's liveness and readiness): this thread answers only while
  // lbd runs, and it starts after the data plane and the control service are up.
  if (absl::StartsWith(req, "GET /healthz ") || absl::StartsWith(req, "GET /readyz ")) {
    sendAll(conn, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n");
    return;
  }
  sendAll(conn, "HTTP/1.0 404 Not Found\r\nContent-Length: 10\r\n\r\nnot found\n");
}

}  // namespace lb::lbd
