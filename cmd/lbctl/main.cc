// SPDX-License-Identifier: Apache-2.0
// lbctl: ipvsadm's command line for lbd. Everything lives in lbctl_lib (cmd/lbctl/lbctl.cc).
#include <iostream>
#include <string>
#include <vector>

#include "cmd/lbctl/lbctl.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return lb::lbctl::runLbctl(argv[0], args, std::cin, std::cout, std::cerr, lb::lbctl::makeStub);
}
