# SPDX-License-Identifier: Apache-2.0
# The ThreadSanitizer build (LB_SANITIZE=thread; scripts/test.sh stage 4b): core's unit tests
# (the multi-threaded ConnTable test among them), the daemon's unit tests (the in-process gRPC
# server, control batches, health service, flow offload, takeover) and, with the daemon built,
# the integration subset of integration/tsan.cmake. No benchmarks, lint or fuzz replay: their
# binaries are not built here. `cmake --build <dir> --target lb_tsan_targets` builds exactly what
# these tests run.
list(REMOVE_ITEM LB_TEST_DIRS fuzz bench lint api cmd/lbctl cmd/lbd-controller io e2e)
list(APPEND LB_TEST_DIRS tsan)  # the harness's own test: a deliberate race must fail

add_custom_target(lb_tsan_targets)
if(NOT LB_CORE_ONLY)
  add_dependencies(lb_tsan_targets lbd lbctl)
endif()

# Every executable the TSan test directories define, collected once they are all added.
function(lb_tsan_collect dir)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t ${targets})
    get_target_property(type ${t} TYPE)
    if(type STREQUAL "EXECUTABLE")
      add_dependencies(lb_tsan_targets ${t})
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(s ${subdirs})
    lb_tsan_collect(${s})
  endforeach()
endfunction()
function(lb_tsan_collect_all)
  foreach(d ${LB_TEST_DIRS})
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${d}/CMakeLists.txt)
      lb_tsan_collect(${CMAKE_CURRENT_SOURCE_DIR}/${d})
    endif()
  endforeach()
endfunction()
cmake_language(DEFER CALL lb_tsan_collect_all)
