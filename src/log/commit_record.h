// SPDX-License-Identifier: Apache-2.0
// The payload of a kCommit frame: one atomic append (one or more streams),
// with the hash-chain link to the previous commit. Layout in
// docs/formats/segment.md, "Commit record". The writer encodes events in the
// caller's thread (encode_event) and patches revisions in later (patch_revision),
// so the single writer thread does as little per-event work as possible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "vellum/event.h"
#include "vellum/result.h"

#include "base/sha256.h"

namespace vellum::log {

// first_position u64 | recorded_time_unix_ns i64 | prev_hash [32] | event_count u32 | reserved u32
inline constexpr uint32_t kCommitHeaderSize = 8 + 8 + 32 + 4 + 4;
// event_bytes u32 | revision u64 | id [16] | occurrence_time i64 | schema_version u32 | key_id u32
// | flags u16 | stream_len u16 | type_len u16 | content_type_len u16 | correlation_len u16
// | causation_len u16 | subject_len u16 | reserved u16 | metadata_len u32 | data_len u32
inline constexpr uint32_t kEventFixedSize = 4 + 8 + 16 + 8 + 4 + 4 + 2 * 8 + 4 + 4;
inline constexpr uint32_t kEventRevisionOffset = 4;
inline constexpr uint32_t kEventIdOffset = 12;
static_assert(kCommitHeaderSize == 56);
static_assert(kEventFixedSize == 68);

struct CommitHeader {
  uint64_t first_position = 0;
  int64_t recorded_time_unix_ns = 0;
  Digest prev_hash{};
  uint32_t event_count = 0;
};

// Appends the encoding of `event` in `stream` at `revision` to `out`, with
// `id` in place of event.id (which may be nil).
// REQUIRES: the event passed validation (field lengths within limits).
void encode_event(std::string& out, std::string_view stream, uint64_t revision, const Uuid& id,
                  const EventData& event);
size_t encoded_event_size(std::string_view stream, const EventData& event);

// Overwrite the revision / id of the encoded event starting at `event_start`.
void patch_revision(char* event_start, uint64_t revision);
void patch_id(char* event_start, const Uuid& id);

std::string encode_commit_header(const CommitHeader& header);

// A decoded event: views into the payload it was decoded from.
struct EventView {
  std::string_view stream;
  uint64_t revision = 0;
  Uuid id;
  std::string_view type;
  std::string_view content_type;
  std::string_view data;
  std::string_view metadata;
  std::string_view correlation_id;
  std::string_view causation_id;
  std::string_view subject;
  int64_t occurrence_time_unix_ns = 0;
  uint32_t schema_version = 0;
  uint32_t key_id = 0;
};

struct CommitView {
  CommitHeader header;
  std::vector<EventView> events;
};

// Decodes and checks the structure of a commit payload (the frame's CRC has
// already been checked). Errors: kDataLoss with `where` in the message.
Result<CommitView> decode_commit(std::string_view payload, std::string_view where);

RecordedEvent to_recorded_event(const EventView& view, uint64_t position,
                                int64_t recorded_time_unix_ns);

// The chain hash of a commit: SHA-256 of its whole payload (which contains
// the previous commit's hash, so each hash covers all history before it).
Digest chain_hash(std::string_view payload);

}  // namespace vellum::log
