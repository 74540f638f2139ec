# SPDX-License-Identifier: Apache-2.0
# Helpers in the style of abseil's absl_cc_library / absl_cc_test.

# Warnings and sanitizers for our own targets only (never global flags).
add_library(vellum_warnings INTERFACE)
add_library(vellum::warnings ALIAS vellum_warnings)
target_compile_options(vellum_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wimplicit-fallthrough
  # Designated initializers that rely on member defaults are idiomatic C++20.
  -Wno-missing-field-initializers)
if(VL_WERROR)
  target_compile_options(vellum_warnings INTERFACE -Werror)
endif()
if(VL_SANITIZE)
  string(REPLACE ";" "," _vl_san "${VL_SANITIZE}")
  target_compile_options(vellum_warnings INTERFACE -fsanitize=${_vl_san} -fno-omit-frame-pointer
    -fno-sanitize-recover=undefined)
  target_link_options(vellum_warnings INTERFACE -fsanitize=${_vl_san})
endif()

# vellum_library(NAME log SRCS a.cc b.cc DEPS vellum::base)
function(vellum_library)
  cmake_parse_arguments(VL "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(vellum_${VL_NAME} STATIC ${VL_SRCS})
  add_library(vellum::${VL_NAME} ALIAS vellum_${VL_NAME})
  target_include_directories(vellum_${VL_NAME} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/src>)
  target_link_libraries(vellum_${VL_NAME} PUBLIC ${VL_DEPS} PRIVATE vellum::warnings)
endfunction()

# vellum_test(NAME frame_test SRCS frame_test.cc DEPS vellum::log LABELS unit [TIMEOUT s])
function(vellum_test)
  cmake_parse_arguments(VL "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  if(NOT VL_BUILD_TESTS)
    return()
  endif()
  add_executable(${VL_NAME} ${VL_SRCS})
  target_link_libraries(${VL_NAME} PRIVATE ${VL_DEPS} GTest::gtest GTest::gtest_main
    vellum::warnings)
  target_include_directories(${VL_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/src
    ${PROJECT_SOURCE_DIR}/include)
  add_test(NAME ${VL_NAME} COMMAND ${VL_NAME})
  if(NOT VL_TIMEOUT)
    set(VL_TIMEOUT 300)
  endif()
  set_tests_properties(${VL_NAME} PROPERTIES LABELS "${VL_LABELS}" TIMEOUT ${VL_TIMEOUT})
endfunction()
