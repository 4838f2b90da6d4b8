// SPDX-License-Identifier: Apache-2.0
// A scripted HTTP/1.1 server on 127.0.0.1 for the kube client's unit tests: each request goes to
// a handler that returns a Reply (status, headers, a body sent in chunks, or a hang until the
// client goes away). Every request is recorded. One thread per connection, Connection: close.
// Only for unit tests of the HTTP mechanics; the client is proven against a real API server in
// tests/integration.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace lbd::controller::kube::testing {

struct Reply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::string> chunks;  // chunked transfer encoding when more than one or `chunked`
  bool chunked = false;
  bool hang = false;  // after the chunks, keep the connection open until the client closes it
  int delay_ms = 0;   // between the head and the first chunk
};

struct Request {
  std::string method;
  std::string target;
  std::string authorization;
  std::string body;
};

class FakeApiServer {
 public:
  using Handler = std::function<Reply(const Request&)>;

  explicit FakeApiServer(Handler handler) : handler_(std::move(handler)), acceptor_(ioc_) {
    namespace net = boost::asio;
    net::ip::tcp::endpoint ep(net::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { acceptLoop(); });
  }

  ~FakeApiServer() {
    stopping_.store(true);
    boost::system::error_code ec;
    // Wake accept() with a connection of our own.
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::socket s(ioc);
    s.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
    thread_.join();
    std::vector<std::shared_ptr<boost::asio::ip::tcp::socket>> socks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      socks = open_;
    }
    for (auto& sock : socks)
      sock->shutdown(boost::asio::socket_base::shutdown_both, ec);
    for (auto& t : conns_)
      t.join();
  }

  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }

  std::vector<Request> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

  // Waits until at least n requests arrived; false after the deadline.
  bool waitForRequests(size_t n, std::chrono::milliseconds deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, deadline, [&] { return requests_.size() >= n; });
  }

 private:
  void acceptLoop() {
    while (!stopping_.load()) {
      auto sock = std::make_shared<boost::asio::ip::tcp::socket>(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(*sock, ec);
      if (ec || stopping_.load())
        break;
      std::lock_guard<std::mutex> lock(mu_);
      open_.push_back(sock);
      conns_.emplace_back([this, sock] { serve(*sock); });
    }
  }

  void serve(boost::asio::ip::tcp::socket& sock) {
    namespace http = boost::beast::http;
    boost::beast::flat_buffer buf;
    http::request<http::string_body> req;
    boost::system::error_code ec;
    http::read(sock, buf, req, ec);
    if (ec)
      return;
    Request r{std::string(req.method_string()), std::string(req.target()),
              std::string(req[http::field::authorization]), req.body()};
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(r);
    }
    cv_.notify_all();
    Reply reply = handler_(r);
    const bool chunked = reply.chunked || reply.chunks.size() > 1;
    std::string head =
        absl::StrFormat("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n", reply.status);
    for (const auto& [k, v] : reply.headers)
      absl::StrAppend(&head, k, ": ", v, "\r\n");
    std::string body;
    for (const auto& c : reply.chunks)
      body += c;
    if (chunked)
      absl::StrAppend(&head, "Transfer-Encoding: chunked\r\n\r\n");
    else
      absl::StrAppend(&head, "Content-Length: ", body.size(), "\r\nConnection: close\r\n\r\n",
                      body);
    boost::asio::write(sock, boost::asio::buffer(head), ec);
    if (reply.delay_ms > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(reply.delay_ms));
    if (chunked) {
      for (const auto& c : reply.chunks) {
        if (c.empty())
          continue;
        std::string piece = absl::StrFormat("%x\r\n%s\r\n", c.size(), c);
        boost::asio::write(sock, boost::asio::buffer(piece), ec);
      }
    }
    if (reply.hang) {
      char b[256];
      while (!ec)
        sock.read_some(boost::asio::buffer(b), ec);  // until the client closes or we shut down
      return;
    }
    if (chunked)
      boost::asio::write(sock, boost::asio::buffer(std::string("0\r\n\r\n")), ec);
    sock.shutdown(boost::asio::socket_base::shutdown_send, ec);
    char b[256];
    while (!ec)
      sock.read_some(boost::asio::buffer(b), ec);
  }

  Handler handler_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Request> requests_;
  std::vector<std::shared_ptr<boost::asio::ip::tcp::socket>> open_;
  std::vector<std::thread> conns_;
};

}  // namespace lbd::controller::kube::testing
