// SPDX-License-Identifier: Apache-2.0
// The checkers' I/O on one Boost.Asio io_context (one thread for thousands of checks): one
// attempt of TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, DNS_CHECK, PING_CHECK or MISC_CHECK,
// bounded by its timeout, ending in exactly one callback. The decisions are check_logic's.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include "cmd/lbd/health/keepalived_conf.h"

namespace lb::health {

struct ProbeResult {
  bool up = false;
  std::string reason;              // why it failed
  std::optional<uint32_t> weight;  // MISC_CHECK misc_dynamic
};

using ProbeCallback = std::function<void(ProbeResult)>;

// Where one checker connects, after keepalived's defaults (connect_ip/connect_port or the real
// server's address and port) and the virtualhost inheritance (url → checker → rs → vs).
struct ProbeTarget {
  std::string address;
  uint16_t port = 0;
  std::string bindto;
  uint16_t bind_port = 0;
  std::string bind_if;
  uint32_t fwmark = 0;
  Micros timeout = 5 * kSecond;  // connect_timeout (the whole attempt), or misc_timeout
  std::string vhost;             // HTTP_GET/SSL_GET Host, unless a url has its own
};

// Runs programs (MISC_CHECK, notify_*, quorum_*) without a thread or SIGCHLD handler: the
// child's pidfd is waited on by the io_context. `command` is run by /bin/sh -c, as a line of
// words keepalived would split and exec.
class ProcessRunner {
 public:
  explicit ProcessRunner(boost::asio::io_context& io) : io_(io) {}

  // exit status 0..255, or -1 when it was killed (the timeout) or could not start. timeout 0 =
  // none. user: run as that user (when lbd runs as root), empty = lbd's own.
  void run(const std::string& command,
           const std::vector<std::string>& extra_args,
           const std::string& user,
           Micros timeout,
           std::function<void(int status)> done);
  // Fire and forget (notify scripts): reaped when they end.
  void spawn(const std::string& command, const std::vector<std::string>& extra_args);

 private:
  boost::asio::io_context& io_;
};

class Probes {
 public:
  explicit Probes(boost::asio::io_context& io);
  ~Probes();

  // One attempt of `spec` against `target`; `done` runs once, on the io_context.
  void run(const CheckerSpec& spec, const ProbeTarget& target, ProbeCallback done);

  ProcessRunner& processes() { return processes_; }

 private:
  boost::asio::io_context& io_;
  boost::asio::ssl::context ssl_;
  ProcessRunner processes_;
  uint16_t next_id_ = 1;
};

}  // namespace lb::health
