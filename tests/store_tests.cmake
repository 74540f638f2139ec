# SPDX-License-Identifier: Apache-2.0
# Whole-store tests through the public API: the randomized model test
# (tests/sim), the real-process SIGKILL test and the subscription test
# (tests/crash). Included from tests/CMakeLists.txt.

# Seeds 1..VL_SEEDS (default 8) run in CI; replay one with VL_SEED=N.
vellum_test(NAME model_test SRCS ${CMAKE_CURRENT_LIST_DIR}/sim/model_test.cc
            DEPS vellum::store vellum::testing LABELS sim TIMEOUT 300)

# The child the kill test starts and SIGKILLs: `vellum_kill_child <dir> <run>`.
add_executable(vellum_kill_child ${CMAKE_CURRENT_LIST_DIR}/crash/kill_child.cc)
target_link_libraries(vellum_kill_child PRIVATE vellum::store vellum::warnings)

# 50 kills by default (VL_KILLS overrides); about 30-60 s.
vellum_test(NAME kill_test SRCS ${CMAKE_CURRENT_LIST_DIR}/crash/kill_test.cc
            DEPS vellum::store LABELS crash TIMEOUT 240)
if(TARGET kill_test)
  add_dependencies(kill_test vellum_kill_child)
  target_compile_definitions(kill_test PRIVATE
    VL_KILL_CHILD_PATH="$<TARGET_FILE:vellum_kill_child>")
endif()

vellum_test(NAME subscription_test SRCS ${CMAKE_CURRENT_LIST_DIR}/crash/subscription_test.cc
            DEPS vellum::store LABELS crash tsan TIMEOUT 300)
