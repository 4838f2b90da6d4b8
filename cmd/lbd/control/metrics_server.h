// SPDX-License-Identifier: Apache-2.0
// A tiny HTTP/1.0 responder for Prometheus: GET /metrics answers the rendered text, anything
// else 404. One thread, one connection at a time (scrapes are rare and small).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace lb::lbd {

class MetricsServer {
 public:
  using Render = std::function<std::string()>;
  // Listens on "host:port" ("[v6]:port"; port 0 picks one). Render runs on the server thread.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> start(const std::string& listen,
                                                              Render render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  // Stops the thread and closes the socket; safe to call twice.
  void stop();

  uint16_t port() const { return port_; }

 private:
  MetricsServer(int fd, uint16_t port, Render render);
  void run();
  void serveOne(int conn);

  int fd_;
  int stop_pipe_[2] = {-1, -1};
  uint16_t port_;
  Render render_;
  std::thread thread_;
};

}  // namespace lb::lbd
