// SPDX-License-Identifier: Apache-2.0
// lbd: wiring only. Everything testable lives in lbd_lib (cmd/lbd/lbd_main.cc).
#include <cstdio>
#include <exception>

#include "cmd/lbd/lbd_main.h"

int main(int argc, char** argv) {
  try {
    return lb::lbd::lbdMain(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lbd: fatal: %s\n", e.what());
    return 1;
  }
}
