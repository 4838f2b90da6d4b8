// SPDX-License-Identifier: Apache-2.0
#include "tests/bench/bench_main.h"

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace lb::bench {
namespace {

constexpr const char* kForcedErrorFlag = "--lb_bench_forced_error";

// Whether a run ended in an error. Google Benchmark 1.7 has Run::error_occurred; 1.8 replaced it
// with Run::skipped (SkippedWithError, or SkippedWithMessage for state.SkipWithMessage).
template <typename Run>
bool runErrored(const Run& run) {
  if constexpr (requires { run.error_occurred; })
    return run.error_occurred;
  else
    return run.skipped != decltype(run.skipped){};
}

// Forwards to the display reporter the flags chose (--benchmark_format) and counts errored runs.
class ErrorCountingReporter : public benchmark::BenchmarkReporter {
 public:
  explicit ErrorCountingReporter(benchmark::BenchmarkReporter* inner) : inner_(inner) {}

  int64_t errors() const { return errors_; }

  const std::vector<std::string>& errored() const { return errored_; }

  // benchmark::BenchmarkReporter
  bool ReportContext(const Context& context) override { return inner_->ReportContext(context); }

  void ReportRuns(const std::vector<Run>& reports) override {
    for (const Run& run : reports) {
      if (runErrored(run)) {
        ++errors_;
        errored_.push_back(run.benchmark_name() + ": " + run.error_message);
      }
    }
    inner_->ReportRuns(reports);
  }

  void Finalize() override { inner_->Finalize(); }

 private:
  benchmark::BenchmarkReporter* inner_;
  int64_t errors_ = 0;
  std::vector<std::string> errored_;
};

void BM_LbBenchForcedError(benchmark::State& state) {
  state.SkipWithError("forced by --lb_bench_forced_error");
  for (auto _ : state) {
  }
}

// Removes --lb_bench_forced_error from argv (Google Benchmark rejects flags it does not know);
// returns whether it was there.
bool takeForcedErrorFlag(int& argc, char** argv) {
  bool found = false;
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], kForcedErrorFlag) == 0)
      found = true;
    else
      argv[out++] = argv[i];
  }
  argc = out;
  argv[argc] = nullptr;
  return found;
}

}  // namespace

int runBenchmarks(int argc, char** argv) {
  if (takeForcedErrorFlag(argc, argv))
    benchmark::RegisterBenchmark("BM_LbBenchForcedError", BM_LbBenchForcedError);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 1;
  ErrorCountingReporter reporter(benchmark::CreateDefaultDisplayReporter());
  const size_t ran = benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  if (ran == 0) {
    std::fprintf(stderr, "FAIL: no benchmark matched the filter\n");
    return 1;
  }
  if (reporter.errors() > 0) {
    std::fprintf(stderr, "FAIL: %lld benchmark run(s) reported an error:\n",
                 static_cast<long long>(reporter.errors()));
    for (const std::string& e : reporter.errored())
      std::fprintf(stderr, "  %s\n", e.c_str());
    return 1;
  }
  return 0;
}

}  // namespace lb::bench
