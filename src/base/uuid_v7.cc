// SPDX-License-Identifier: Apache-2.0
#include "base/uuid_v7.h"

namespace vellum {

Uuid UuidV7Generator::next(int64_t now_unix_ns) {
  std::lock_guard lock(mutex_);
  uint64_t ms = now_unix_ns > 0 ? static_cast<uint64_t>(now_unix_ns) / 1'000'000 : 0;
  if (ms > last_ms_) {
    last_ms_ = ms;
    counter_ = static_cast<uint32_t>(prng_.uniform(1u << 11));  // room to count up
  } else {
    // Same millisecond, or the clock stepped back: keep time frozen and count.
    counter_++;
    if (counter_ >= (1u << 12)) {
      last_ms_++;
      counter_ = 0;
    }
  }
  uint64_t random = prng_.next();
  Uuid uuid;
  for (int i = 0; i < 6; i++) uuid.bytes[i] = static_cast<uint8_t>(last_ms_ >> (40 - 8 * i));
  uuid.bytes[6] = static_cast<uint8_t>(0x70 | ((counter_ >> 8) & 0x0f));  // version 7
  uuid.bytes[7] = static_cast<uint8_t>(counter_);
  uuid.bytes[8] = static_cast<uint8_t>(0x80 | (random & 0x3f));  // variant 10
  for (int i = 9; i < 16; i++) uuid.bytes[i] = static_cast<uint8_t>(random >> (8 * (i - 8)));
  return uuid;
}

}  // namespace vellum
