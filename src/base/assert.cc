// SPDX-License-Identifier: Apache-2.0
#include "base/assert.h"

#include <cstdio>
#include <cstdlib>

namespace vellum::detail {

void assert_fail(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "vellum: assertion failed: %s at %s:%d\n", condition, file, line);
  std::fflush(stderr);
  std::abort();
}

}  // namespace vellum::detail
