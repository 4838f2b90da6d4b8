// SPDX-License-Identifier: Apache-2.0
// lbd-controller: wiring only. Everything lives in lbd_controller_app (app/controller_main.cc).
#include <cstdio>
#include <exception>

#include "cmd/lbd-controller/app/controller_main.h"

int main(int argc, char** argv) {
  try {
    return lbd::controller::app::controllerMain(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lbd-controller: fatal: %s\n", e.what());
    return 1;
  }
}
