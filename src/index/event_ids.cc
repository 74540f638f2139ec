// SPDX-License-Identifier: Apache-2.0
#include "index/event_ids.h"

#include "base/assert.h"

namespace vellum::index {
namespace {

constexpr uint32_t kTagMask = (1u << kEventIdTagBits) - 1;
constexpr uint32_t kTagLowBits = 18;

}  // namespace

Uuid make_positional_id(uint32_t store_tag, int64_t unix_ns, uint64_t position) {
  VL_ASSERT(position <= kEventIdPositionMax);
  uint32_t tag = store_tag & kTagMask;
  uint64_t ms = unix_ns > 0 ? static_cast<uint64_t>(unix_ns) / 1'000'000 : 0;
  uint64_t rand_a = tag >> kTagLowBits;  // 12 bits
  uint64_t rand_b = (uint64_t{tag & ((1u << kTagLowBits) - 1)} << kEventIdPositionBits) | position;
  Uuid id;
  for (int i = 0; i < 6; i++)
    id.bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(ms >> (40 - 8 * i));
  id.bytes[6] = static_cast<uint8_t>(0x70 | (rand_a >> 8));
  id.bytes[7] = static_cast<uint8_t>(rand_a);
  id.bytes[8] = static_cast<uint8_t>(0x80 | ((rand_b >> 56) & 0x3f));
  for (int i = 9; i < 16; i++) {
    id.bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(rand_b >> (8 * (15 - i)));
  }
  return id;
}

std::optional<uint64_t> positional_id_position(uint32_t store_tag, const Uuid& id) {
  if ((id.bytes[6] >> 4) != 7 || (id.bytes[8] >> 6) != 2) return std::nullopt;
  uint64_t rand_a = (uint64_t{id.bytes[6] & 0x0fu} << 8) | id.bytes[7];
  uint64_t rand_b = id.bytes[8] & 0x3fu;
  for (int i = 9; i < 16; i++) rand_b = (rand_b << 8) | id.bytes[static_cast<size_t>(i)];
  uint64_t tag = (rand_a << kTagLowBits) | (rand_b >> kEventIdPositionBits);
  if (tag != (store_tag & kTagMask)) return std::nullopt;
  return rand_b & kEventIdPositionMax;
}

}  // namespace vellum::index
