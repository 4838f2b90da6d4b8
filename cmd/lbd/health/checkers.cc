// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/health/checkers.h"

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include <boost/asio/generic/datagram_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "cmd/lbd/health/check_logic.h"

namespace lb::health {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using boost::system::error_code;

constexpr size_t kMaxHttpResponse = 1 << 20;  // keepalived reads at most what it digests

std::chrono::microseconds micros(Micros m) {
  return std::chrono::microseconds(m);
}

// Socket options every connection checker applies: bindto/bind_port, bind_if, fwmark.
template <typename Socket, typename Endpoint>
std::string prepare(Socket& s, const ProbeTarget& t, const Endpoint& remote) {
  error_code ec;
  s.open(remote.protocol(), ec);
  if (ec)
    return absl::StrCat("socket: ", ec.message());
  if (!t.bind_if.empty() && ::setsockopt(s.native_handle(), SOL_SOCKET, SO_BINDTODEVICE,
                                         t.bind_if.c_str(), t.bind_if.size()) != 0) {
    return absl::StrCat("bind_if ", t.bind_if, ": ", std::strerror(errno));
  }
  if (t.fwmark != 0 &&
      ::setsockopt(s.native_handle(), SOL_SOCKET, SO_MARK, &t.fwmark, sizeof(t.fwmark)) != 0) {
    return absl::StrCat("fwmark: ", std::strerror(errno));
  }
  if (!t.bindto.empty() || t.bind_port != 0) {
    asio::ip::address a =
        t.bindto.empty() ? (remote.address().is_v6() ? asio::ip::address(asio::ip::address_v6())
                                                     : asio::ip::address(asio::ip::address_v4()))
                         : asio::ip::make_address(t.bindto, ec);
    if (ec)
      return absl::StrCat("bindto ", t.bindto, ": ", ec.message());
    s.bind(Endpoint(a, t.bind_port), ec);
    if (ec)
      return absl::StrCat("bind: ", ec.message());
  }
  return "";
}

// The state of one attempt: finishes once, cancels its timer and socket.
struct OpBase : std::enable_shared_from_this<OpBase> {
  explicit OpBase(asio::io_context& io, ProbeCallback cb) : timer(io), done(std::move(cb)) {}

  virtual ~OpBase() = default;
  virtual void closeSocket() = 0;

  void finish(ProbeResult r) {
    if (finished)
      return;
    finished = true;
    timer.cancel();
    closeSocket();
    ProbeCallback cb = std::move(done);
    cb(std::move(r));
  }

  void fail(std::string why) { finish({false, std::move(why), std::nullopt}); }

  void armTimer(Micros timeout, std::string why_timeout, bool timeout_is_success = false) {
    timer.expires_after(micros(timeout));
    timer.async_wait([self = shared_from_this(), why = std::move(why_timeout),
                      timeout_is_success](const error_code& ec) {
      if (ec)
        return;
      if (timeout_is_success || self->doneInTime())
        self->finish({true, "", std::nullopt});
      else
        self->fail(why);
    });
  }

  // At the timeout: whether the attempt in fact succeeded and only its completion has not been
  // handled yet (a busy thread may run the timer first). TCP_CHECK: the socket is connected.
  virtual bool doneInTime() { return false; }

  asio::steady_timer timer;
  ProbeCallback done;
  bool finished = false;
};

struct TcpOp : OpBase {
  TcpOp(asio::io_context& io, ProbeCallback cb) : OpBase(io, std::move(cb)), sock(io) {}

  void closeSocket() override {
    error_code ec;
    sock.close(ec);
  }

  bool doneInTime() override {
    int err = 0;
    socklen_t len = sizeof(err);
    sockaddr_storage peer{};
    socklen_t plen = sizeof(peer);
    return sock.is_open() &&
           ::getsockopt(sock.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0 &&
           ::getpeername(sock.native_handle(), reinterpret_cast<sockaddr*>(&peer), &plen) == 0;
  }

  tcp::socket sock;
};

void runTcp(asio::io_context& io, const ProbeTarget& t, ProbeCallback done) {
  auto op = std::make_shared<TcpOp>(io, std::move(done));
  error_code ec;
  tcp::endpoint ep(asio::ip::make_address(t.address, ec), t.port);
  if (ec)
    return op->fail(absl::StrCat("address ", t.address, ": ", ec.message()));
  if (std::string err = prepare(op->sock, t, ep); !err.empty())
    return op->fail(err);
  op->armTimer(t.timeout, "connect timeout");
  op->sock.async_connect(ep, [op](const error_code& e) {
    if (e)
      return op->fail(absl::StrCat("connect: ", e.message()));
    op->finish({true, "", std::nullopt});
  });
}

// HTTP_GET and SSL_GET: every url in turn on its own connection; the checker is up when all
// of them pass (check_http.c http_check_thread walks the url list).
struct HttpOp : OpBase {
  HttpOp(asio::io_context& io, ProbeCallback cb, asio::ssl::context* ctx)
      : OpBase(io, std::move(cb)), sock(io) {
    if (ctx != nullptr)
      tls = std::make_unique<asio::ssl::stream<tcp::socket&>>(sock, *ctx);
  }

  void closeSocket() override {
    error_code ec;
    sock.close(ec);
  }

  template <typename Fn>
  void readSome(Fn fn) {
    if (tls)
      tls->async_read_some(asio::buffer(buf), fn);
    else
      sock.async_read_some(asio::buffer(buf), fn);
  }

  tcp::socket sock;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls;
  std::array<char, 16384> buf{};
  std::string request;
  std::string response;
  CheckerSpec spec;
  ProbeTarget target;
  size_t url = 0;
};

void httpRead(const std::shared_ptr<HttpOp>& op) {
  op->readSome([op](const error_code& e, size_t n) {
    op->response.append(op->buf.data(), n);
    const bool eof = e == asio::error::eof || e == asio::ssl::error::stream_truncated;
    if (e && !eof)
      return op->fail(absl::StrCat("read: ", e.message()));
    if (!eof && op->response.size() < kMaxHttpResponse && !httpResponseComplete(op->response))
      return httpRead(op);
    Verdict v = judgeHttp(op->spec.urls[op->url], op->response);
    if (!v.up)
      return op->fail(absl::StrCat(op->spec.urls[op->url].path, ": ", v.reason));
    op->finish({true, "", std::nullopt});
  });
}

void httpSend(const std::shared_ptr<HttpOp>& op) {
  auto after = [op](const error_code& e, size_t) {
    if (e)
      return op->fail(absl::StrCat("write: ", e.message()));
    httpRead(op);
  };
  if (op->tls)
    asio::async_write(*op->tls, asio::buffer(op->request), after);
  else
    asio::async_write(op->sock, asio::buffer(op->request), after);
}

void runHttpUrl(asio::io_context& io,
                asio::ssl::context* ctx,
                const CheckerSpec& spec,
                const ProbeTarget& t,
                size_t url,
                ProbeCallback done);

void runHttpUrl(asio::io_context& io,
                asio::ssl::context* ctx,
                const CheckerSpec& spec,
                const ProbeTarget& t,
                size_t url,
                ProbeCallback done) {
  // The next url runs after this one passed; the first failure ends the attempt.
  ProbeCallback next = [&io, ctx, spec, t, url, done](ProbeResult r) {
    if (!r.up || url + 1 >= spec.urls.size())
      return done(std::move(r));
    runHttpUrl(io, ctx, spec, t, url + 1, done);
  };
  auto op = std::make_shared<HttpOp>(io, std::move(next), ctx);
  op->spec = spec;
  op->target = t;
  op->url = url;
  const UrlSpec& u = spec.urls[url];
  op->request = httpRequest(
      u.path, httpHost(u.virtualhost.empty() ? t.vhost : u.virtualhost, t.address, t.port),
      spec.http_protocol);
  error_code ec;
  tcp::endpoint ep(asio::ip::make_address(t.address, ec), t.port);
  if (ec)
    return op->fail(absl::StrCat("address ", t.address, ": ", ec.message()));
  if (std::string err = prepare(op->sock, t, ep); !err.empty())
    return op->fail(err);
  op->armTimer(t.timeout, "timeout");
  op->sock.async_connect(ep, [op](const error_code& e) {
    if (e)
      return op->fail(absl::StrCat("connect: ", e.message()));
    if (!op->tls)
      return httpSend(op);
    if (op->spec.enable_sni) {
      const std::string sni = !op->spec.sni_name.empty()  ? op->spec.sni_name
                              : !op->target.vhost.empty() ? op->target.vhost
                                                          : op->target.address;
      SSL_set_tlsext_host_name(op->tls->native_handle(), sni.c_str());
    }
    op->tls->async_handshake(asio::ssl::stream_base::client, [op](const error_code& he) {
      if (he)
        return op->fail(absl::StrCat("TLS handshake: ", he.message()));
      httpSend(op);
    });
  });
}

// UDP_CHECK and DNS_CHECK: one datagram out, replies read until the verdict or the timeout.
struct UdpOp : OpBase {
  UdpOp(asio::io_context& io, ProbeCallback cb) : OpBase(io, std::move(cb)), sock(io) {}

  void closeSocket() override {
    error_code ec;
    sock.close(ec);
  }

  udp::socket sock;
  std::array<char, 65536> buf{};
  std::string out;
  CheckerSpec spec;
  uint16_t dns_id = 0;
};

void udpRead(const std::shared_ptr<UdpOp>& op) {
  op->sock.async_receive(asio::buffer(op->buf), [op](const error_code& e, size_t n) {
    if (e == asio::error::operation_aborted)
      return;
    if (e) {
      // ECONNREFUSED: the ICMP port unreachable keepalived relies on.
      return op->fail(absl::StrCat("receive: ", e.message()));
    }
    const absl::string_view reply(op->buf.data(), n);
    if (op->spec.type == CheckType::kDns) {
      std::optional<Verdict> v = judgeDns(op->dns_id, reply);
      if (!v.has_value())
        return udpRead(op);
      return op->finish({v->up, v->reason, std::nullopt});
    }
    if (!op->spec.require_reply)
      return op->finish({true, "", std::nullopt});
    Verdict v = judgeUdpReply(op->spec, reply);
    op->finish({v.up, v.reason, std::nullopt});
  });
}

void runUdp(asio::io_context& io,
            const CheckerSpec& spec,
            const ProbeTarget& t,
            uint16_t dns_id,
            ProbeCallback done) {
  auto op = std::make_shared<UdpOp>(io, std::move(done));
  op->spec = spec;
  op->dns_id = dns_id;
  error_code ec;
  udp::endpoint ep(asio::ip::make_address(t.address, ec), t.port);
  if (ec)
    return op->fail(absl::StrCat("address ", t.address, ": ", ec.message()));
  if (std::string err = prepare(op->sock, t, ep); !err.empty())
    return op->fail(err);
  op->sock.connect(ep, ec);
  if (ec)
    return op->fail(absl::StrCat("connect: ", ec.message()));
  if (spec.type == CheckType::kDns) {
    op->out = dnsQuery(dns_id, spec.dns_name, spec.dns_type);
    op->armTimer(t.timeout, "read timeout");
  } else {
    op->out = spec.payload;
    if (op->out.empty()) {
      // keepalived sends a random payload when none is given.
      std::mt19937 rng(dns_id);
      op->out.resize(16);
      for (char& c : op->out)
        c = static_cast<char>(rng());
    }
    // Without require_reply, silence until the timeout is success: only an ICMP error fails.
    op->armTimer(t.timeout, "no reply", !spec.require_reply);
  }
  op->sock.async_send(asio::buffer(op->out), [op](const error_code& e, size_t) {
    if (e)
      return op->fail(absl::StrCat("send: ", e.message()));
    udpRead(op);
  });
}

// PING_CHECK: an ICMP echo on a datagram ICMP socket (net.ipv4.ping_group_range), else a raw
// socket (CAP_NET_RAW).
struct PingOp : OpBase {
  PingOp(asio::io_context& io, ProbeCallback cb) : OpBase(io, std::move(cb)), sock(io) {}

  void closeSocket() override {
    error_code ec;
    sock.close(ec);
  }

  asio::generic::datagram_protocol::socket sock;
  std::array<char, 2048> buf{};
  std::string out;
  bool raw = false;
  bool v6 = false;
  uint16_t seq = 0;
};

uint16_t icmpChecksum(const std::string& b) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < b.size(); i += 2)
    sum += static_cast<uint32_t>(static_cast<uint8_t>(b[i]) << 8 | static_cast<uint8_t>(b[i + 1]));
  if (b.size() % 2 != 0)
    sum += static_cast<uint32_t>(static_cast<uint8_t>(b.back()) << 8);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

void pingRead(const std::shared_ptr<PingOp>& op) {
  op->sock.async_receive(asio::buffer(op->buf), [op](const error_code& e, size_t n) {
    if (e == asio::error::operation_aborted)
      return;
    if (e)
      return op->fail(absl::StrCat("receive: ", e.message()));
    size_t off = 0;
    if (op->raw && !op->v6) {
      if (n < 20)
        return pingRead(op);
      off = static_cast<size_t>(op->buf[0] & 0x0f) * 4;
    }
    if (n < off + 8)
      return pingRead(op);
    const uint8_t type = static_cast<uint8_t>(op->buf[off]);
    const uint16_t seq = static_cast<uint16_t>(static_cast<uint8_t>(op->buf[off + 6]) << 8 |
                                               static_cast<uint8_t>(op->buf[off + 7]));
    const uint8_t echo_reply = op->v6 ? 129 : 0;
    if (type != echo_reply || seq != op->seq)
      return pingRead(op);
    op->finish({true, "", std::nullopt});
  });
}

void runPing(asio::io_context& io, const ProbeTarget& t, uint16_t seq, ProbeCallback done) {
  auto op = std::make_shared<PingOp>(io, std::move(done));
  error_code ec;
  asio::ip::address a = asio::ip::make_address(t.address, ec);
  if (ec)
    return op->fail(absl::StrCat("address ", t.address, ": ", ec.message()));
  op->v6 = a.is_v6();
  op->seq = seq;
  const int family = op->v6 ? AF_INET6 : AF_INET;
  const int proto = op->v6 ? static_cast<int>(IPPROTO_ICMPV6) : static_cast<int>(IPPROTO_ICMP);
  int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  if (fd < 0) {
    fd = ::socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
    op->raw = true;
  }
  if (fd < 0)
    return op->fail(absl::StrCat("ICMP socket: ", std::strerror(errno)));
  op->sock.assign(asio::generic::datagram_protocol(family, proto), fd, ec);
  if (ec) {
    ::close(fd);
    return op->fail(absl::StrCat("ICMP socket: ", ec.message()));
  }
  if (t.fwmark != 0)
    ::setsockopt(fd, SOL_SOCKET, SO_MARK, &t.fwmark, sizeof(t.fwmark));
  if (!t.bind_if.empty())
    ::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, t.bind_if.c_str(), t.bind_if.size());
  op->out = std::string(8, '\0');
  op->out[0] = static_cast<char>(op->v6 ? 128 : 8);  // echo request
  op->out[4] = static_cast<char>(getpid() >> 8);
  op->out[5] = static_cast<char>(getpid() & 0xff);
  op->out[6] = static_cast<char>(seq >> 8);
  op->out[7] = static_cast<char>(seq & 0xff);
  op->out += "lbd PING_CHECK";
  if (!op->v6) {
    const uint16_t sum = icmpChecksum(op->out);
    op->out[2] = static_cast<char>(sum >> 8);
    op->out[3] = static_cast<char>(sum & 0xff);
  }
  asio::generic::datagram_protocol::endpoint ep;
  if (op->v6) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    auto bytes = a.to_v6().to_bytes();
    std::memcpy(&sa.sin6_addr, bytes.data(), bytes.size());
    ep = asio::generic::datagram_protocol::endpoint(&sa, sizeof(sa), proto);
  } else {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    auto bytes = a.to_v4().to_bytes();
    std::memcpy(&sa.sin_addr, bytes.data(), bytes.size());
    ep = asio::generic::datagram_protocol::endpoint(&sa, sizeof(sa), proto);
  }
  op->armTimer(t.timeout, "no echo reply");
  op->sock.async_send_to(asio::buffer(op->out), ep, [op](const error_code& e, size_t) {
    if (e)
      return op->fail(absl::StrCat("send: ", e.message()));
    pingRead(op);
  });
}

}  // namespace

// --- processes -------------------------------------------------------------------------------

namespace {

struct ProcOp : std::enable_shared_from_this<ProcOp> {
  ProcOp(asio::io_context& io) : timer(io), pidfd(io) {}

  asio::steady_timer timer;
  asio::posix::stream_descriptor pidfd;
  pid_t pid = -1;
  bool killed = false;
  std::function<void(int)> done;
};

pid_t startChild(const std::string& command,
                 const std::vector<std::string>& extra_args,
                 const std::string& user) {
  uid_t uid = 0;
  gid_t gid = 0;
  const bool switch_user = !user.empty() && ::geteuid() == 0;
  if (switch_user) {
    passwd pw{};
    passwd* res = nullptr;
    std::array<char, 4096> pwbuf{};
    if (::getpwnam_r(user.c_str(), &pw, pwbuf.data(), pwbuf.size(), &res) != 0 || res == nullptr)
      return -1;
    uid = pw.pw_uid;
    gid = pw.pw_gid;
  }
  // The command line and the extra words ("$@") prepared before fork: the child only execs.
  std::string line = command;
  std::vector<std::string> argv_s = {"/bin/sh", "-c", line + " \"$@\"", "sh"};
  for (const std::string& a : extra_args)
    argv_s.push_back(a);
  std::vector<char*> argv;
  for (std::string& s : argv_s)
    argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid != 0)
    return pid;
  // Child: default signal mask and dispositions, stdin from /dev/null, then exec.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  const int devnull = ::open("/dev/null", O_RDONLY);
  if (devnull >= 0)
    ::dup2(devnull, 0);
  if (switch_user && (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0))
    ::_exit(127);
  ::execv("/bin/sh", argv.data());
  ::_exit(127);
}

}  // namespace

void ProcessRunner::run(const std::string& command,
                        const std::vector<std::string>& extra_args,
                        const std::string& user,
                        Micros timeout,
                        std::function<void(int status)> done) {
  auto op = std::make_shared<ProcOp>(io_);
  op->done = std::move(done);
  op->pid = startChild(command, extra_args, user);
  if (op->pid < 0) {
    asio::post(io_, [op] { op->done(-1); });
    return;
  }
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, op->pid, 0));
  if (fd < 0) {
    // No pidfd (Linux < 5.3): wait for it blocking; the run is short and rare here.
    int st = 0;
    ::waitpid(op->pid, &st, 0);
    const int status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    asio::post(io_, [op, status] { op->done(status); });
    return;
  }
  error_code ec;
  op->pidfd.assign(fd, ec);
  if (timeout > 0) {
    op->timer.expires_after(micros(timeout));
    op->timer.async_wait([op](const error_code& e) {
      if (e)
        return;
      op->killed = true;
      ::kill(op->pid, SIGKILL);
    });
  }
  op->pidfd.async_wait(asio::posix::stream_descriptor::wait_read, [op](const error_code&) {
    int st = 0;
    ::waitpid(op->pid, &st, 0);
    op->timer.cancel();
    error_code ignore;
    op->pidfd.close(ignore);
    const int status = (!op->killed && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
    op->done(status);
  });
}

void ProcessRunner::spawn(const std::string& command, const std::vector<std::string>& extra_args) {
  run(command, extra_args, "", 0, [](int) {});
}

// --- Probes ----------------------------------------------------------------------------------

Probes::Probes(asio::io_context& io)
    : io_(io), ssl_(asio::ssl::context::tls_client), processes_(io) {
  // keepalived's SSL_GET does not verify the server's certificate (no `ca` given).
  ssl_.set_verify_mode(asio::ssl::verify_none);
}

Probes::~Probes() = default;

void Probes::run(const CheckerSpec& spec, const ProbeTarget& target, ProbeCallback done) {
  const uint16_t id = next_id_++;
  switch (spec.type) {
    case CheckType::kTcp:
      return runTcp(io_, target, std::move(done));
    case CheckType::kHttp:
      return runHttpUrl(io_, nullptr, spec, target, 0, std::move(done));
    case CheckType::kSsl:
      return runHttpUrl(io_, &ssl_, spec, target, 0, std::move(done));
    case CheckType::kUdp:
    case CheckType::kDns:
      return runUdp(io_, spec, target, id, std::move(done));
    case CheckType::kPing:
      return runPing(io_, target, id, std::move(done));
    case CheckType::kMisc: {
      const bool dynamic = spec.misc_dynamic;
      processes_.run(spec.misc_path, {}, spec.user, target.timeout,
                     [dynamic, done = std::move(done)](int status) {
                       MiscVerdict v = judgeMisc(status, dynamic);
                       done({v.up, v.reason, v.weight});
                     });
      return;
    }
  }
}

}  // namespace lb::health
