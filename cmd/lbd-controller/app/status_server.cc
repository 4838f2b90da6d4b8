// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/app/status_server.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include <boost/asio/ip/address.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace lbd::controller::app {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket s, const std::map<std::string, StatusServer::Handler>& routes)
      : stream_(std::move(s)), routes_(routes) {}

  void start() {
    stream_.expires_after(std::chrono::seconds(10));
    http::async_read(stream_, buf_, req_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (!ec)
                         self->respond();
                     });
  }

 private:
  void respond() {
    std::string path(req_.target());
    if (size_t q = path.find('?'); q != std::string::npos)
      path.resize(q);
    StatusServer::Page page{404, "text/plain; charset=utf-8", "not found\n"};
    if (req_.method() != http::verb::get && req_.method() != http::verb::head)
      page = {405, "text/plain; charset=utf-8", "GET only\n"};
    else if (auto it = routes_.find(path); it != routes_.end())
      page = it->second();
    res_.result(static_cast<unsigned>(page.status));
    res_.version(11);
    res_.set(http::field::content_type, page.content_type);
    res_.keep_alive(false);
    if (req_.method() != http::verb::head)
      res_.body() = std::move(page.body);
    res_.prepare_payload();
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code, size_t) {
      beast::error_code ec;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    });
  }

  beast::tcp_stream stream_;
  const std::map<std::string, StatusServer::Handler>& routes_;
  beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
};

}  // namespace

StatusServer::StatusServer(std::map<std::string, Handler> routes)
    : routes_(std::move(routes)), acceptor_(ioc_) {}

absl::StatusOr<std::unique_ptr<StatusServer>> StatusServer::start(
    const std::string& listen, std::map<std::string, Handler> routes) {
  size_t colon = listen.rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port > 65535)
    return absl::InvalidArgumentError(absl::StrCat("--metrics=", listen, ": want HOST:PORT"));
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty())
    host = "0.0.0.0";
  beast::error_code ec;
  net::ip::address addr = net::ip::make_address(host, ec);
  if (ec)
    return absl::InvalidArgumentError(absl::StrCat("--metrics=", listen, ": bad address"));
  std::unique_ptr<StatusServer> s(new StatusServer(std::move(routes)));
  tcp::endpoint ep(addr, static_cast<uint16_t>(port));
  s->acceptor_.open(ep.protocol(), ec);
  if (!ec)
    s->acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec)
    s->acceptor_.bind(ep, ec);
  if (!ec)
    s->acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return absl::UnavailableError(absl::StrCat("--metrics=", listen, ": ", ec.message()));
  s->port_ = s->acceptor_.local_endpoint().port();
  s->accept();
  s->thread_ = std::thread([p = s.get()] { p->ioc_.run(); });
  return s;
}

void StatusServer::accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket sock) {
    if (ec == net::error::operation_aborted)
      return;
    if (!ec)
      std::make_shared<Session>(std::move(sock), routes_)->start();
    accept();
  });
}

StatusServer::~StatusServer() {
  stop();
}

void StatusServer::stop() {
  ioc_.stop();
  if (thread_.joinable())
    thread_.join();
}

}  // namespace lbd::controller::app
