// SPDX-License-Identifier: Apache-2.0
// lbd-controller's wiring: flags, the Kubernetes client, three reflectors (Services,
// EndpointSlices, this Node), the reconcile loop, Events and the status server.
#pragma once

namespace lbd::controller::app {

// Returns the process exit code. Runs until SIGTERM or SIGINT.
int controllerMain(int argc, char** argv);

}  // namespace lbd::controller::app
