// SPDX-License-Identifier: Apache-2.0
// Always-on assertions. VL_ASSERT checks a programmer invariant in every
// build, release included (TigerBeetle's and Redpanda's habit): a broken
// invariant in a database must stop the process before it writes garbage.
// Never use it for conditions that input can cause (requests, bytes read from
// disk): those are Results.
#pragma once

namespace vellum::detail {
[[noreturn]] void assert_fail(const char* condition, const char* file, int line);
}  // namespace vellum::detail

#define VL_ASSERT(condition)                                         \
  do {                                                               \
    if (!(condition)) [[unlikely]] {                                 \
      ::vellum::detail::assert_fail(#condition, __FILE__, __LINE__); \
    }                                                                \
  } while (false)

// VL_DASSERT is for checks too expensive for release builds (O(n) scans).
#ifdef NDEBUG
#define VL_DASSERT(condition) \
  do {                        \
  } while (false)
#else
#define VL_DASSERT(condition) VL_ASSERT(condition)
#endif
