// SPDX-License-Identifier: Apache-2.0
// /metrics, /healthz and /readyz over plain HTTP/1.1 (Beast, one thread, one request per
// connection, 10 s per connection so a stuck client cannot block the probes).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace lbd::controller::app {

class StatusServer {
 public:
  struct Page {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
  };

  using Handler = std::function<Page()>;

  // listen: "host:port" or "[v6]:port"; port 0 picks one. Handlers run on the server thread.
  static absl::StatusOr<std::unique_ptr<StatusServer>> start(const std::string& listen,
                                                             std::map<std::string, Handler> routes);
  ~StatusServer();
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;
  void stop();

  uint16_t port() const { return port_; }

 private:
  explicit StatusServer(std::map<std::string, Handler> routes);
  void accept();

  std::map<std::string, Handler> routes_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace lbd::controller::app
