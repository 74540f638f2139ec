// SPDX-License-Identifier: Apache-2.0
// Clock: the one seam for time. Only clock.cc reads the system clock, so the
// engine can run under a simulated clock in tests.
#pragma once

#include <atomic>
#include <cstdint>

namespace vellum {

// Thread safety: implementations must be safe to call from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, nanoseconds since the Unix epoch. May step backwards.
  virtual int64_t now_unix_ns() = 0;
  // Monotonic time in nanoseconds from an arbitrary origin.
  virtual int64_t monotonic_ns() = 0;
};

// The system clock. Never destroyed.
Clock* system_clock();

// A clock that moves only when told to. For tests and simulation.
class SimClock final : public Clock {
 public:
  explicit SimClock(int64_t start_unix_ns = 1'700'000'000'000'000'000) : now_(start_unix_ns) {}
  int64_t now_unix_ns() override { return now_.load(); }
  int64_t monotonic_ns() override { return now_.load(); }
  void advance_ns(int64_t delta) { now_.fetch_add(delta); }
  void set_unix_ns(int64_t t) { now_.store(t); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace vellum
