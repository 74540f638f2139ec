// SPDX-License-Identifier: Apache-2.0
// Layouts: docs/formats/index.md ("Stream state", "Metadata record").
#include "index/stream_state.h"

#include "base/coding.h"

namespace vellum::index {
namespace {

constexpr uint8_t kFormat = 1;
constexpr uint8_t kHasMaxAge = 1, kHasMaxCount = 2, kHasTruncateBefore = 4;
constexpr uint8_t kSoftDeleted = 1, kTombstoned = 2;

void put_metadata(std::string& out, const StreamMetadata& metadata) {
  uint8_t present = (metadata.max_age_seconds ? kHasMaxAge : 0) |
                    (metadata.max_count ? kHasMaxCount : 0) |
                    (metadata.truncate_before ? kHasTruncateBefore : 0);
  out.push_back(static_cast<char>(present));
  put_u64_le(out, metadata.max_age_seconds.value_or(0));
  put_u64_le(out, metadata.max_count.value_or(0));
  put_u64_le(out, metadata.truncate_before.value_or(0));
  put_u32_le(out, static_cast<uint32_t>(metadata.custom.size()));
  out.append(metadata.custom);
}

bool get_metadata(ByteReader& reader, StreamMetadata& metadata) {
  uint8_t present = 0;
  uint64_t max_age = 0, max_count = 0, truncate_before = 0;
  uint32_t custom_size = 0;
  std::string_view custom;
  if (!reader.u8(present) || !reader.u64(max_age) || !reader.u64(max_count) ||
      !reader.u64(truncate_before) || !reader.u32(custom_size) ||
      !reader.bytes(custom_size, custom)) {
    return false;
  }
  if (present & kHasMaxAge) metadata.max_age_seconds = max_age;
  if (present & kHasMaxCount) metadata.max_count = max_count;
  if (present & kHasTruncateBefore) metadata.truncate_before = truncate_before;
  metadata.custom = custom;
  return true;
}

}  // namespace

std::string encode_metadata_record(const MetadataRecord& record) {
  std::string out;
  out.push_back(static_cast<char>(kFormat));
  out.push_back(static_cast<char>((record.soft_deleted ? kSoftDeleted : 0) |
                                  (record.tombstoned ? kTombstoned : 0)));
  put_metadata(out, record.metadata);
  return out;
}

Result<MetadataRecord> decode_metadata_record(std::string_view bytes) {
  ByteReader reader(bytes);
  uint8_t format = 0, flags = 0;
  MetadataRecord record;
  if (!reader.u8(format) || format != kFormat || !reader.u8(flags) ||
      !get_metadata(reader, record.metadata) || reader.remaining() != 0) {
    return make_error(ErrorCode::kDataLoss, "malformed $metadata event");
  }
  record.soft_deleted = (flags & kSoftDeleted) != 0;
  record.tombstoned = (flags & kTombstoned) != 0;
  return record;
}

std::string encode_stream_state(const StreamState& state) {
  std::string out;
  out.push_back(static_cast<char>(kFormat));
  put_u64_le(out, state.stream_id);
  put_u64_le(out, static_cast<uint64_t>(state.last_revision));
  put_u64_le(out, state.last_position);
  out.push_back(static_cast<char>((state.soft_deleted ? kSoftDeleted : 0) |
                                  (state.tombstoned ? kTombstoned : 0)));
  put_metadata(out, state.metadata);
  return out;
}

Result<StreamState> decode_stream_state(std::string_view bytes) {
  ByteReader reader(bytes);
  uint8_t format = 0, flags = 0;
  uint64_t last_revision = 0;
  StreamState state;
  if (!reader.u8(format) || format != kFormat || !reader.u64(state.stream_id) ||
      !reader.u64(last_revision) || !reader.u64(state.last_position) || !reader.u8(flags) ||
      !get_metadata(reader, state.metadata) || reader.remaining() != 0) {
    return make_error(ErrorCode::kDataLoss, "malformed stream state in the index");
  }
  state.last_revision = static_cast<int64_t>(last_revision);
  state.soft_deleted = (flags & kSoftDeleted) != 0;
  state.tombstoned = (flags & kTombstoned) != 0;
  return state;
}

}  // namespace vellum::index
