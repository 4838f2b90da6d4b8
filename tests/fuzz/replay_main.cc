// SPDX-License-Identifier: Apache-2.0
// Replays every file under the given directories (or files) through LLVMFuzzerTestOneInput, so
// the default (gcc) build exercises each fuzzer's corpus and committed crash reproducers.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

int runFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int n = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(p)) {
        if (e.is_regular_file())
          n += runFile(e.path());
      }
    } else if (std::filesystem::exists(p)) {
      n += runFile(p);
    }
  }
  std::printf("replayed %d inputs\n", n);
  if (n == 0) {
    std::fprintf(stderr, "no corpus inputs found\n");
    return 1;
  }
  return 0;
}
