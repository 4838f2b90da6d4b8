// SPDX-License-Identifier: Apache-2.0
// The daemon's flags, start-up order, signals and shutdown.
#pragma once

namespace lb::lbd {

// Parses flags, loads configuration, starts the dataplane and the control plane, and runs
// until SIGTERM/SIGINT. Returns the process exit code.
int lbdMain(int argc, char** argv);

}  // namespace lb::lbd
