# SPDX-License-Identifier: Apache-2.0
# The integration tests a ThreadSanitizer build (LB_SANITIZE=thread) runs: traffic through lbd
# that exercises every one of its threads (workers, the gRPC control server and its pool, the
# housekeeping thread with the flow offload's ticks, the metrics server, the health checkers,
# the hot restart's handover), each through tsan_run.sh, which fails the test on any report.
# scripts/test.sh stage 4b builds lb_tsan_targets and runs `ctest -L integration` here.
set(LB_TSAN_INTEGRATION
  dataplane_gateway_nat  # NAT, 2 workers, flow offload (tc program + housekeeping ticks), metrics
  dataplane_sidecar      # sidecar mode
  dataplane_fullnat      # full NAT: the local address pool shared by the workers
  dataplane_persist      # persistence templates, quiescing, removal; state file
  dataplane_stats        # estimators (housekeeping) read by the control thread (--stats, --rate)
  hot_restart            # --takeover: the handover thread, workers paused and resumed under traffic
  single_owner           # the owner lock; a second lbd refused
  health_checks          # the health checker and commit threads against the control plane
)
set(LB_TSAN_SCRIPT_dataplane_gateway_nat dataplane_gateway_nat.sh)
set(LB_TSAN_SCRIPT_dataplane_sidecar dataplane_sidecar.sh)
set(LB_TSAN_SCRIPT_dataplane_fullnat dataplane_fullnat.sh)
set(LB_TSAN_SCRIPT_dataplane_persist dataplane_persist.sh)
set(LB_TSAN_SCRIPT_dataplane_stats dataplane_stats.sh)
set(LB_TSAN_SCRIPT_hot_restart hot_restart.sh)
set(LB_TSAN_SCRIPT_single_owner single_owner.sh)
set(LB_TSAN_SCRIPT_health_checks health_checks.sh)

foreach(name ${LB_TSAN_INTEGRATION})
  add_test(NAME ${name}_tsan
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tsan_run.sh
            ${CMAKE_CURRENT_SOURCE_DIR}/${LB_TSAN_SCRIPT_${name}})
  set_tests_properties(${name}_tsan PROPERTIES
    LABELS integration
    SKIP_RETURN_CODE 77
    TIMEOUT 600
    ENVIRONMENT "LBD_BIN=$<TARGET_FILE:lbd>;LBCTL_BIN=$<TARGET_FILE:lbctl>;LB_TSAN_SUPP=${PROJECT_SOURCE_DIR}/tests/tsan.supp")
endforeach()
