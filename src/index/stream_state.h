// SPDX-License-Identifier: Apache-2.0
// StreamState: what the index keeps per stream, and the codec of stream
// metadata (used both in the index and in the log's `$metadata` events).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "vellum/event.h"
#include "vellum/result.h"

namespace vellum::index {

struct StreamState {
  uint64_t stream_id = 0;
  int64_t last_revision = kNoRevision;
  uint64_t last_position = 0;
  bool soft_deleted = false;
  bool tombstoned = false;
  StreamMetadata metadata;

  // True when reads must consult this state to hide events.
  bool restricts_reads() const {
    return soft_deleted || tombstoned || metadata.max_age_seconds || metadata.max_count ||
           metadata.truncate_before;
  }
  // The stream "exists" for expected-revision checks.
  bool exists() const { return last_revision != kNoRevision && !soft_deleted && !tombstoned; }
};

// A `$metadata` event's data: the stream's new metadata and deletion flags.
struct MetadataRecord {
  StreamMetadata metadata;
  bool soft_deleted = false;
  bool tombstoned = false;
};

std::string encode_metadata_record(const MetadataRecord& record);
Result<MetadataRecord> decode_metadata_record(std::string_view bytes);

std::string encode_stream_state(const StreamState& state);
Result<StreamState> decode_stream_state(std::string_view bytes);

// The category of a stream: its name up to the first '-', or the whole name.
inline std::string_view category_of(std::string_view stream) {
  size_t dash = stream.find('-');
  return dash == std::string_view::npos ? stream : stream.substr(0, dash);
}

// The reserved stream that holds `stream`'s metadata events.
inline std::string metadata_stream_of(std::string_view stream) {
  return "$$" + std::string(stream);
}
inline constexpr std::string_view kMetadataEventType = "$metadata";

}  // namespace vellum::index
