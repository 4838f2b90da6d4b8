// SPDX-License-Identifier: Apache-2.0
#include "io/tun/tun_node.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace lb::io {
namespace {

constexpr unsigned kMiscMajor = 10;  // include/uapi/linux/major.h MISC_MAJOR
constexpr unsigned kTunMinor = 200;  // include/linux/miscdevice.h TUN_MINOR

absl::Status checkOpen(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    ::close(fd);
    return absl::OkStatus();
  }
  const int e = errno;
  if (e == EPERM || e == EACCES) {
    return absl::FailedPreconditionError(absl::StrCat(
        "open ", path, ": ", std::strerror(e),
        ": the container runtime's device rules forbid the TUN device (character 10:200); "
        "give the container the device (docker run --device /dev/net/tun, or a device plugin "
        "in Kubernetes) or allow c 10:200 rwm in its device cgroup"));
  }
  if (e == ENODEV || e == ENXIO) {
    return absl::FailedPreconditionError(absl::StrCat(
        "open ", path, ": ", std::strerror(e), ": the kernel has no TUN driver (modprobe tun)"));
  }
  return absl::FailedPreconditionError(absl::StrCat("open ", path, ": ", std::strerror(e)));
}

}  // namespace

absl::Status ensureTunNode(const std::string& path, bool* created) {
  if (created != nullptr)
    *created = false;

  struct stat st {};

  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != kMiscMajor || minor(st.st_rdev) != kTunMinor) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " exists but is not the TUN character device 10:200"));
    }
    return checkOpen(path);
  }
  if (errno != ENOENT)
    return absl::FailedPreconditionError(absl::StrCat("stat ", path, ": ", std::strerror(errno)));
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    const std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::FailedPreconditionError(absl::StrCat("mkdir ", dir, ": ", std::strerror(errno)));
    }
  }
  if (::mknod(path.c_str(), S_IFCHR | 0666, makedev(kMiscMajor, kTunMinor)) != 0 &&
      errno != EEXIST) {
    const int e = errno;
    return absl::FailedPreconditionError(absl::StrCat(
        path, " is missing and mknod failed: ", std::strerror(e),
        e == EPERM ? ": lbd needs CAP_MKNOD to create it (Kubernetes: securityContext."
                     "capabilities.add: [MKNOD]), or give the container the device (docker run "
                     "--device /dev/net/tun)"
                   : ""));
  }
  ::chmod(path.c_str(), 0666);  // mknod's mode is filtered by the umask
  if (created != nullptr)
    *created = true;
  return checkOpen(path);
}

}  // namespace lb::io
