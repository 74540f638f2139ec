// SPDX-License-Identifier: Apache-2.0
// UUIDv7 generation (RFC 9562): 48-bit Unix milliseconds, then a 12-bit
// counter (method 1 of section 6.2) so ids from one generator are strictly
// increasing even within a millisecond, then random bits.
#pragma once

#include <cstdint>
#include <mutex>

#include "vellum/uuid.h"

#include "base/prng.h"

namespace vellum {

// Thread-safe.
class UuidV7Generator {
 public:
  explicit UuidV7Generator(uint64_t seed) : prng_(seed) {}
  Uuid next(int64_t now_unix_ns);

 private:
  std::mutex mutex_;
  Prng prng_;
  uint64_t last_ms_ = 0;
  uint32_t counter_ = 0;
};

}  // namespace vellum
