# SPDX-License-Identifier: Apache-2.0
# The end-to-end test of the `vellum` command-line tool (cli_test.sh), run
# against the freshly built binary. Included from tests/CMakeLists.txt.
if(TARGET vellum)
  add_test(NAME cli_test
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/cli_test.sh $<TARGET_FILE:vellum>)
  set_tests_properties(cli_test PROPERTIES LABELS integration TIMEOUT 120)
endif()
