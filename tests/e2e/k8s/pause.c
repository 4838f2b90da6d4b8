// SPDX-License-Identifier: Apache-2.0
// The pod sandbox's process for the local test cluster (tests/testlib/k8s_cluster.sh): holds the
// pod's namespaces, reaps orphans (it is PID 1 when the pod shares its PID namespace) and exits
// on SIGINT/SIGTERM. Built static into a FROM-scratch image, so no registry is needed.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void onTerm(int sig) {
  _exit(sig == SIGTERM || sig == SIGINT ? 0 : 1);
}

static void onChild(int sig) {
  (void)sig;
  while (waitpid(-1, 0, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction term = {0}, child = {0};
  term.sa_handler = onTerm;
  child.sa_handler = onChild;
  child.sa_flags = SA_NOCLDSTOP;
  if (sigaction(SIGINT, &term, 0) != 0 || sigaction(SIGTERM, &term, 0) != 0 ||
      sigaction(SIGCHLD, &child, 0) != 0) {
    return 1;
  }
  for (;;)
    pause();
}
