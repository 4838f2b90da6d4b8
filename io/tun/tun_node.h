// SPDX-License-Identifier: Apache-2.0
// /dev/net/tun when the container runtime did not provide it: Kubernetes pods get no
// /dev/net/tun without a device plugin or privileged mode, but runc and containerd allow the
// character device 10:200 in their default device rules, so a container with CAP_MKNOD may
// create the node itself (drivers/net/tun.c registers misc minor TUN_MINOR = 200).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lb::io {

inline constexpr absl::string_view kTunNodePath = "/dev/net/tun";

// Control thread, at start, before the first TunDevice::create. Makes sure `path` is the TUN
// character device and can be opened: does nothing when it is; creates the node (and its
// directory) when it is missing, and sets *created. Errors name the cause and the way out:
// FailedPrecondition when the node cannot be created (no CAP_MKNOD) or opened (a device cgroup
// that forbids 10:200), or when `path` is something else. May allocate.
absl::Status ensureTunNode(const std::string& path, bool* created);

}  // namespace lb::io
