// SPDX-License-Identifier: Apache-2.0
// Positional event ids. An event whose id the client did not choose gets a
// UUIDv7 (RFC 9562) whose "random" bits are the store's tag and the event's
// position:
//
//   unix_ts_ms (48) | ver=7 (4) | tag[29..18] (12) | var=10 (2) | tag[17..0] (18)
//   | position (44)
//
// So the id itself says where the event is: read_event() finds it without an
// index entry, and the writer skips the per-event id index and the
// idempotency bookkeeping for generated ids (they are unique by
// construction). Ids chosen by clients are indexed as usual. The format is
// described in docs/formats/index.md ("Event ids").
#pragma once

#include <cstdint>
#include <optional>

#include "vellum/uuid.h"

namespace vellum::index {

inline constexpr uint32_t kEventIdTagBits = 30;
inline constexpr uint32_t kEventIdPositionBits = 44;
inline constexpr uint64_t kEventIdPositionMax = (uint64_t{1} << kEventIdPositionBits) - 1;
static_assert(kEventIdTagBits + kEventIdPositionBits == 74);  // 12 + 62 free bits of a v7

// REQUIRES: position <= kEventIdPositionMax.
Uuid make_positional_id(uint32_t store_tag, int64_t unix_ns, uint64_t position);

// The position encoded in `id` if it is a positional id of the store with
// `store_tag`. A match is a claim to verify against the log, not proof: a
// client may have chosen such an id.
std::optional<uint64_t> positional_id_position(uint32_t store_tag, const Uuid& id);

}  // namespace vellum::index
