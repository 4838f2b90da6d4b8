// SPDX-License-Identifier: Apache-2.0
// A deliberate data race, built only in the ThreadSanitizer build: tsan_detects_test.sh runs it
// through tests/integration/tsan_run.sh the way an integration test runs lbd (in the background,
// its exit status ignored) and expects the wrapper to fail with a report. Proves that a race in
// a process the test does not watch still fails the test.
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

namespace {
long counter = 0;  // written by two threads: without the lock ("race"), a race
std::mutex mu;
bool locked = true;

void count() {
  for (int i = 0; i < 1000; ++i) {
    if (locked) {
      std::lock_guard<std::mutex> l(mu);
      ++counter;
    } else {
      ++counter;
    }
  }
}
}  // namespace

// tsan_racy race | clean
int main(int argc, char** argv) {
  locked = !(argc > 1 && std::strcmp(argv[1], "race") == 0);
  std::thread a(count);
  std::thread b(count);
  a.join();
  b.join();
  std::printf("%ld\n", counter);
  return 0;
}
