// SPDX-License-Identifier: Apache-2.0
#include "base/clock.h"

#include <chrono>

namespace vellum {
namespace {

class SystemClock final : public Clock {
 public:
  int64_t now_unix_ns() override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t monotonic_ns() override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace

Clock* system_clock() {
  static SystemClock* clock = new SystemClock();  // never destroyed: no exit-order races
  return clock;
}

}  // namespace vellum
