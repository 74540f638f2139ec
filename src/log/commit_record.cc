// SPDX-License-Identifier: Apache-2.0
#include "log/commit_record.h"

#include <cstring>

#include "base/assert.h"
#include "base/coding.h"
#include "base/limits.h"

namespace vellum::log {

size_t encoded_event_size(std::string_view stream, const EventData& event) {
  return kEventFixedSize + stream.size() + event.type.size() + event.content_type.size() +
         event.correlation_id.size() + event.causation_id.size() + event.subject.size() +
         event.metadata.size() + event.data.size();
}

void encode_event(std::string& out, std::string_view stream, uint64_t revision, const Uuid& id,
                  const EventData& event) {
  VL_ASSERT(stream.size() <= limits::kStreamNameBytesMax + 2);  // "$$" + name
  VL_ASSERT(event.type.size() <= limits::kEventTypeBytesMax);
  VL_ASSERT(event.data.size() + event.metadata.size() <= limits::kEventBytesMax);
  size_t start = out.size();
  size_t size = encoded_event_size(stream, event);
  put_u32_le(out, static_cast<uint32_t>(size));
  put_u64_le(out, revision);
  out.append(reinterpret_cast<const char*>(id.bytes.data()), 16);
  put_u64_le(out, static_cast<uint64_t>(event.occurrence_time_unix_ns));
  put_u32_le(out, event.schema_version);
  put_u32_le(out, 0);  // key_id: reserved for crypto-shredding
  put_u16_le(out, 0);  // flags
  put_u16_le(out, static_cast<uint16_t>(stream.size()));
  put_u16_le(out, static_cast<uint16_t>(event.type.size()));
  put_u16_le(out, static_cast<uint16_t>(event.content_type.size()));
  put_u16_le(out, static_cast<uint16_t>(event.correlation_id.size()));
  put_u16_le(out, static_cast<uint16_t>(event.causation_id.size()));
  put_u16_le(out, static_cast<uint16_t>(event.subject.size()));
  put_u16_le(out, 0);  // reserved
  put_u32_le(out, static_cast<uint32_t>(event.metadata.size()));
  put_u32_le(out, static_cast<uint32_t>(event.data.size()));
  out.append(stream);
  out.append(event.type);
  out.append(event.content_type);
  out.append(event.correlation_id);
  out.append(event.causation_id);
  out.append(event.subject);
  out.append(event.metadata);
  out.append(event.data);
  VL_ASSERT(out.size() - start == size);
}

void patch_revision(char* event_start, uint64_t revision) {
  store_u64_le(event_start + kEventRevisionOffset, revision);
}

void patch_id(char* event_start, const Uuid& id) {
  std::memcpy(event_start + kEventIdOffset, id.bytes.data(), id.bytes.size());
}

std::string encode_commit_header(const CommitHeader& header) {
  std::string out;
  out.reserve(kCommitHeaderSize);
  put_u64_le(out, header.first_position);
  put_u64_le(out, static_cast<uint64_t>(header.recorded_time_unix_ns));
  out.append(reinterpret_cast<const char*>(header.prev_hash.data()), header.prev_hash.size());
  put_u32_le(out, header.event_count);
  put_u32_le(out, 0);  // reserved
  VL_ASSERT(out.size() == kCommitHeaderSize);
  return out;
}

namespace {

tl::unexpected<Error> corrupt(std::string_view where, const char* what) {
  return make_error(ErrorCode::kDataLoss,
                    "corrupt commit record at " + std::string(where) + ": " + what);
}

struct EventLengths {
  uint16_t stream = 0, type = 0, content_type = 0, correlation = 0, causation = 0, subject = 0;
  uint32_t metadata = 0, data = 0;
};

bool read_event_fixed(ByteReader& reader, EventView& view, EventLengths& lengths) {
  std::string_view id;
  uint64_t occurrence = 0;
  uint16_t flags = 0, reserved = 0;
  bool ok = reader.u64(view.revision) && reader.bytes(16, id) && reader.u64(occurrence) &&
            reader.u32(view.schema_version) && reader.u32(view.key_id) && reader.u16(flags) &&
            reader.u16(lengths.stream) && reader.u16(lengths.type) &&
            reader.u16(lengths.content_type) && reader.u16(lengths.correlation) &&
            reader.u16(lengths.causation) && reader.u16(lengths.subject) && reader.u16(reserved) &&
            reader.u32(lengths.metadata) && reader.u32(lengths.data);
  if (!ok || flags != 0 || reserved != 0) return false;
  std::memcpy(view.id.bytes.data(), id.data(), 16);
  view.occurrence_time_unix_ns = static_cast<int64_t>(occurrence);
  return true;
}

bool read_event_strings(ByteReader& reader, EventView& view, const EventLengths& lengths) {
  return reader.bytes(lengths.stream, view.stream) && reader.bytes(lengths.type, view.type) &&
         reader.bytes(lengths.content_type, view.content_type) &&
         reader.bytes(lengths.correlation, view.correlation_id) &&
         reader.bytes(lengths.causation, view.causation_id) &&
         reader.bytes(lengths.subject, view.subject) &&
         reader.bytes(lengths.metadata, view.metadata) && reader.bytes(lengths.data, view.data);
}

}  // namespace

Result<CommitView> decode_commit(std::string_view payload, std::string_view where) {
  ByteReader reader(payload);
  CommitView commit;
  uint64_t recorded = 0;
  std::string_view prev;
  uint32_t reserved = 0;
  if (!reader.u64(commit.header.first_position) || !reader.u64(recorded) ||
      !reader.bytes(32, prev) || !reader.u32(commit.header.event_count) || !reader.u32(reserved) ||
      reserved != 0) {
    return corrupt(where, "bad header");
  }
  commit.header.recorded_time_unix_ns = static_cast<int64_t>(recorded);
  std::memcpy(commit.header.prev_hash.data(), prev.data(), 32);
  if (commit.header.event_count == 0 || commit.header.event_count > payload.size()) {
    return corrupt(where, "bad event count");
  }
  commit.events.reserve(commit.header.event_count);
  for (uint32_t i = 0; i < commit.header.event_count; i++) {
    size_t start = reader.offset();
    uint32_t size = 0;
    EventView view;
    EventLengths lengths;
    if (!reader.u32(size) || !read_event_fixed(reader, view, lengths) ||
        !read_event_strings(reader, view, lengths)) {
      return corrupt(where, "truncated event");
    }
    if (reader.offset() - start != size || view.stream.empty() || view.type.empty()) {
      return corrupt(where, "event size mismatch");
    }
    commit.events.push_back(view);
  }
  if (reader.remaining() != 0) return corrupt(where, "trailing bytes");
  return commit;
}

RecordedEvent to_recorded_event(const EventView& view, uint64_t position,
                                int64_t recorded_time_unix_ns) {
  RecordedEvent event;
  event.id = view.id;
  event.stream = view.stream;
  event.revision = view.revision;
  event.position = position;
  event.type = view.type;
  event.content_type = view.content_type;
  event.data = view.data;
  event.metadata = view.metadata;
  event.correlation_id = view.correlation_id;
  event.causation_id = view.causation_id;
  event.subject = view.subject;
  event.occurrence_time_unix_ns = view.occurrence_time_unix_ns;
  event.recorded_time_unix_ns = recorded_time_unix_ns;
  event.schema_version = view.schema_version;
  event.key_id = view.key_id;
  return event;
}

Digest chain_hash(std::string_view payload) {
  Sha256 sha;
  sha.update(payload);
  return sha.finish();
}

}  // namespace vellum::log
