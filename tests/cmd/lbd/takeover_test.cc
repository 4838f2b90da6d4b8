// SPDX-License-Identifier: Apache-2.0
// The owner lock (one lbd per network namespace) and the hot restart's wire.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "gtest/gtest.h"

#include "cmd/lbd/takeover/handover_socket.h"
#include "cmd/lbd/takeover/owner_lock.h"
#include "tests/testlib/temp_dir.h"

namespace lb::lbd {
namespace {

using lb::testing::TempDir;
constexpr char kTmp[] = "lbd-takeover-test";

TEST(OwnerLockTest, SecondOwnerIsRefusedNamingTheFirst) {
  const TempDir tmp(kTmp);
  const std::string dir = tmp.path() + "/run";  // created by acquire()
  OwnerInfo me{4242, "lbd0", "gateway", "unix:///run/lbd/lbd.sock"};
  auto first = OwnerLock::acquire(dir, me);
  ASSERT_TRUE(first.ok()) << first.status();
  // flock locks belong to open file descriptions: a second open in this process conflicts
  // just as another process's would.
  auto second = OwnerLock::acquire(dir, OwnerInfo{1, "lbd1", "sidecar", "unix:///x.sock"});
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status()));
  EXPECT_NE(second.status().message().find("pid 4242 "), absl::string_view::npos)
      << second.status();
  EXPECT_NE(second.status().message().find("control socket unix:///run/lbd/lbd.sock"),
            absl::string_view::npos);
  const std::string path = (*first)->path();
  first->reset();
  EXPECT_NE(access(path.c_str(), F_OK), 0) << "a stopping owner removes its lock file";
  auto third = OwnerLock::acquire(dir, OwnerInfo{7, "lbd0", "gateway", "unix:///y.sock"});
  EXPECT_TRUE(third.ok()) << "the lock goes with its owner: " << third.status();
}

TEST(OwnerLockTest, StaleFdOfARemovedFileDoesNotBlock) {
  const TempDir tmp(kTmp);
  const std::string dir = tmp.path();
  auto first = OwnerLock::acquire(dir, OwnerInfo{1, "lbd0", "gateway", "unix:///a"});
  ASSERT_TRUE(first.ok());
  // An fd opened on the file before its owner removed it: locking it proves nothing.
  const int stale = open((*first)->path().c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(stale, 0);
  first->reset();
  ASSERT_EQ(flock(stale, LOCK_EX | LOCK_NB), 0);
  auto second = OwnerLock::acquire(dir, OwnerInfo{2, "lbd0", "gateway", "unix:///b"});
  EXPECT_TRUE(second.ok()) << "the path's new file is free: " << second.status();
  close(stale);
}

TEST(OwnerLockTest, RecordRoundTrips) {
  OwnerInfo in{12, "lbd9", "decap", "tcp://127.0.0.1:5000"};
  OwnerInfo out = OwnerLock::parse(OwnerLock::format(in));
  EXPECT_EQ(out.pid, 12);
  EXPECT_EQ(out.tun, "lbd9");
  EXPECT_EQ(out.mode, "decap");
  EXPECT_EQ(out.listen, "tcp://127.0.0.1:5000");
  EXPECT_EQ(OwnerLock::parse("garbage").pid, 0);
}

TEST(OwnerLockTest, AdoptedFdKeepsTheLock) {
  const TempDir tmp(kTmp);
  const std::string dir = tmp.path();
  auto first = OwnerLock::acquire(dir, OwnerInfo{1, "lbd0", "gateway", "unix:///a"});
  ASSERT_TRUE(first.ok());
  // What SCM_RIGHTS does: another fd of the same open file description.
  auto adopted = OwnerLock::adopt(dup((*first)->fd()), (*first)->path());
  ASSERT_TRUE(adopted.ok()) << adopted.status();
  ASSERT_TRUE((*adopted)->record(OwnerInfo{2, "lbd0", "gateway", "unix:///b"}).ok());
  (*first)->handedOver();
  first->reset();  // the old lbd exits, leaving the file to the new one
  auto other = OwnerLock::acquire(dir, OwnerInfo{3, "lbd0", "gateway", "unix:///c"});
  ASSERT_FALSE(other.ok()) << "the adopted fd still holds the lock";
  EXPECT_NE(other.status().message().find("pid 2 "), absl::string_view::npos) << other.status();
}

TEST(HandoverSocketTest, FdsAndSectionsArrive) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  HandoverMessage m;
  m.fds = {pipefd[1]};
  m.sections = {
      {"config", std::string("a\0b", 3)}, {"conns", std::string(1 << 20, 'x')}, {"empty", ""}};
  std::thread sender([&] { EXPECT_TRUE(sendMessage(sv[0], m).ok()); });
  auto got = recvMessage(sv[1], 5000);
  sender.join();
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->fds.size(), 1u);
  ASSERT_NE(got->find("config"), nullptr);
  EXPECT_EQ(*got->find("config"), std::string("a\0b", 3));
  EXPECT_EQ(got->find("conns")->size(), 1u << 20);
  EXPECT_EQ(*got->find("empty"), "");
  EXPECT_EQ(got->find("missing"), nullptr);
  // The received fd is the pipe's write end.
  ASSERT_EQ(write(got->fds[0], "z", 1), 1);
  char c = 0;
  ASSERT_EQ(read(pipefd[0], &c, 1), 1);
  EXPECT_EQ(c, 'z');
  EXPECT_NE(fcntl(got->fds[0], F_GETFD) & FD_CLOEXEC, 0);

  ASSERT_TRUE(sendLine(sv[0], "ready").ok());
  auto line = recvLine(sv[1], 5000);
  ASSERT_TRUE(line.ok());
  EXPECT_EQ(*line, "ready");
  for (int fd : {sv[0], sv[1], pipefd[0], pipefd[1], got->fds[0]})
    close(fd);
}

TEST(HandoverSocketTest, SilenceAndGarbageAreErrors) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  auto none = recvMessage(sv[1], 50);
  EXPECT_TRUE(absl::IsDeadlineExceeded(none.status())) << none.status();
  ASSERT_EQ(write(sv[0], "not a handover message at all", 29), 29);
  EXPECT_FALSE(recvMessage(sv[1], 1000).ok());
  close(sv[0]);
  EXPECT_FALSE(recvLine(sv[1], 1000).ok()) << "closed";
  close(sv[1]);
}

TEST(HandoverSocketTest, TakeoverSocketSitsBesideTheControlSocket) {
  EXPECT_EQ(takeoverSocketPath("unix:///run/lbd/lbd.sock", "/run/lbd"),
            "/run/lbd/lbd.sock.takeover");
  EXPECT_EQ(takeoverSocketPath("tcp://0.0.0.0:50051", "/run/x/owner-c7.lock"),
            "/run/x/owner-c7.lock.takeover");
}

}  // namespace
}  // namespace lb::lbd
