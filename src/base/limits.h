// SPDX-License-Identifier: Apache-2.0
// Every bound of the engine, in one place, with units. Limits are checked at
// the edge (append() returns kInvalidArgument) and asserted inside. The table
// in ARCHITECTURE.md ("Limits") is generated from this file by hand: keep them
// in step.
#pragma once

#include <cstdint>

namespace vellum::limits {

// A stream name: 1..kStreamNameBytesMax bytes of UTF-8 without NUL.
inline constexpr uint32_t kStreamNameBytesMax = 512;
// An event type name: 1..kEventTypeBytesMax bytes of UTF-8 without NUL.
inline constexpr uint32_t kEventTypeBytesMax = 256;
inline constexpr uint32_t kContentTypeBytesMax = 128;
// correlation id, causation id, subject: 0..kShortFieldBytesMax bytes.
inline constexpr uint32_t kShortFieldBytesMax = 256;
// data + metadata of one event.
inline constexpr uint32_t kEventBytesMax = 1u << 20;  // 1 MiB
// One append call: all its events' data + metadata together.
inline constexpr uint32_t kAppendBytesMax = 16u << 20;  // 16 MiB
inline constexpr uint32_t kAppendEventsMax = 10'000;
// Streams in one append_multi call.
inline constexpr uint32_t kAppendStreamsMax = 100;
// Events one read call returns.
inline constexpr uint32_t kReadEventsMax = 10'000;
// Events a filtered read_all examines per call before returning a `next`.
inline constexpr uint32_t kReadScanEventsMax = 100'000;
// Appends waiting for the writer; further callers block (back-pressure).
inline constexpr uint32_t kWriterQueueAppendsMax = 4096;
// Bytes the writer gathers into one commit group before writing it.
inline constexpr uint32_t kCommitGroupBytesMax = 8u << 20;  // 8 MiB
// A record (one atomic append, framed) must fit the frame's length field.
inline constexpr uint32_t kRecordBytesMax = kAppendBytesMax + (4u << 20);
// Streams whose state the writer caches in memory (LRU beyond this).
inline constexpr uint32_t kStreamCacheEntriesMax = 1u << 20;

static_assert(kEventBytesMax <= kAppendBytesMax);
static_assert(kAppendBytesMax < kRecordBytesMax);
static_assert(kRecordBytesMax < (uint64_t{1} << 31));
static_assert(kCommitGroupBytesMax >= (1u << 20));

}  // namespace vellum::limits
