// SPDX-License-Identifier: Apache-2.0
// ensureTunNode on a scratch directory: created when missing, accepted when present, refused
// when the path is something else. Needs root (mknod); label integration.
#include "io/tun/tun_node.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

#include "tests/testlib/skip.h"

namespace lb::io {
namespace {

class TunNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0)
      LB_SKIP_UNLESS_CI("needs root");
    char tmpl[] = "/tmp/lbd-tun-node-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }

  void TearDown() override {
    if (!dir_.empty())
      (void)!std::system(("rm -rf " + dir_).c_str());
  }

  std::string dir_;
};

TEST_F(TunNodeTest, CreatesMissingNodeAndItsDirectory) {
  const std::string path = dir_ + "/net/tun";
  bool created = false;
  ASSERT_TRUE(ensureTunNode(path, &created).ok());
  EXPECT_TRUE(created);

  struct stat st {};

  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(major(st.st_rdev), 10u);
  EXPECT_EQ(minor(st.st_rdev), 200u);
  EXPECT_EQ(st.st_mode & 0777, 0666u);
  // A second call finds it and creates nothing.
  ASSERT_TRUE(ensureTunNode(path, &created).ok());
  EXPECT_FALSE(created);
}

TEST_F(TunNodeTest, RefusesSomethingElse) {
  const std::string path = dir_ + "/tun";
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY, 0600);
  ASSERT_GE(fd, 0);
  ::close(fd);
  bool created = true;
  absl::Status s = ensureTunNode(path, &created);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("not the TUN character device"), absl::string_view::npos);
  EXPECT_FALSE(created);
}

}  // namespace
}  // namespace lb::io
