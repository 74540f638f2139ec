# SPDX-License-Identifier: Apache-2.0
# The end-to-end tests of the `vellum` command-line tool, run against the
# freshly built binary. Included from tests/CMakeLists.txt.
#   cli_test                 every subcommand on a data directory (cli_test.sh)
#   cli_export_import_test   export -> import round trips, re-runs, bad lines, conflicts
#   cli_url_test             the subcommands through --url against a real `vellum serve`
if(TARGET vellum)
  foreach(_vl_cli_test cli_test cli_export_import_test cli_url_test)
    add_test(NAME ${_vl_cli_test}
      COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/${_vl_cli_test}.sh $<TARGET_FILE:vellum>)
    set_tests_properties(${_vl_cli_test} PROPERTIES LABELS integration TIMEOUT 120)
  endforeach()
endif()
