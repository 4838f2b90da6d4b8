// SPDX-License-Identifier: Apache-2.0
// The hot restart's wire (lbd --takeover): a Unix stream socket next to the control socket,
// on which the new lbd asks and the old one answers with one message: file descriptors
// (SCM_RIGHTS: the owner lock and the TUN queues) and named byte sections (configuration,
// kernel state, conns). Then the new lbd answers "ok" once it serves, or "fail: why".
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lb::lbd {

inline constexpr char kTakeoverHello[] = "lbd-takeover 1";

struct HandoverMessage {
  std::vector<int> fds;  // received: owned by the receiver (close-on-exec)
  std::vector<std::pair<std::string, std::string>> sections;

  // The section named `name`, or nullptr.
  const std::string* find(const std::string& name) const;
};

// The takeover socket for a control socket `listen` (unix:///run/lbd/lbd.sock ->
// /run/lbd/lbd.sock.takeover); for a TCP listener, beside the namespace's owner lock
// (OwnerLock::lockPath: /run/lbd/owner-<netns>.lock.takeover).
std::string takeoverSocketPath(const std::string& listen, const std::string& lock_path);

// A listening socket at `path` (mode 0600), bound beside it and renamed over whatever is
// there, so that a path in use by an old lbd is replaced atomically. Returns the fd.
absl::StatusOr<int> listenTakeover(const std::string& path);
// Connects to `path`. NotFound / Unavailable when no lbd listens there.
absl::StatusOr<int> connectTakeover(const std::string& path);

// Sends `m` on a connected socket (at most 250 fds). Errors name the step.
absl::Status sendMessage(int sock, const HandoverMessage& m);
// Receives one message, waiting at most `timeout_ms` for each read. DeadlineExceeded on
// timeout; InvalidArgument for a malformed message.
absl::StatusOr<HandoverMessage> recvMessage(int sock, int timeout_ms);

// One line ('\n' excluded) of at most 4 KiB, within `timeout_ms`.
absl::Status sendLine(int sock, const std::string& line);
absl::StatusOr<std::string> recvLine(int sock, int timeout_ms);

}  // namespace lb::lbd
