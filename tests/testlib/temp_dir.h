// SPDX-License-Identifier: Apache-2.0
// A directory of a test's own under /tmp, removed with everything in it when the object goes
// (the state files, sockets and run/ directories the daemon's tests leave in it included).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace lb::testing {

class TempDir {
 public:
  // `prefix` names the directory (/tmp/<prefix>.XXXXXX); path() is empty if mkdtemp failed.
  explicit TempDir(const std::string& prefix) {
    std::string tmpl = "/tmp/" + prefix + ".XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr)
      path_ = tmpl;
  }

  ~TempDir() {
    std::error_code ec;
    if (!path_.empty())
      std::filesystem::remove_all(path_, ec);
  }

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace lb::testing
