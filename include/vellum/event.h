// SPDX-License-Identifier: Apache-2.0
// The value types of the event store: what a client appends (EventData), what
// it reads back (RecordedEvent), expected revisions and append results.
// All are plain values: safe to copy, move and share between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vellum/uuid.h"

namespace vellum {

// A revision is the 0-based number of an event within its stream.
// A position is the 0-based number of an event within the whole log: every
// committed event gets the next position, so positions are dense (no gaps)
// and strictly increasing in commit order.
inline constexpr int64_t kNoRevision = -1;

// What the writer expects the stream's state to be. A mismatch fails the
// append with kFailedPrecondition (and a RevisionConflict) and writes nothing.
class ExpectedRevision {
 public:
  enum class Kind : uint8_t { kAny, kNoStream, kStreamExists, kExact };

  static ExpectedRevision any() { return ExpectedRevision(Kind::kAny, 0); }
  // The stream has no events (or was soft-deleted).
  static ExpectedRevision no_stream() { return ExpectedRevision(Kind::kNoStream, 0); }
  // The stream has at least one visible event.
  static ExpectedRevision stream_exists() { return ExpectedRevision(Kind::kStreamExists, 0); }
  // The stream's last revision is exactly `revision`.
  static ExpectedRevision exact(uint64_t revision) {
    return ExpectedRevision(Kind::kExact, revision);
  }

  Kind kind() const { return kind_; }
  uint64_t revision() const { return revision_; }
  // "any", "no_stream", "stream_exists" or the decimal revision.
  std::string to_string() const;

  friend bool operator==(const ExpectedRevision&, const ExpectedRevision&) = default;

 private:
  ExpectedRevision(Kind kind, uint64_t revision) : kind_(kind), revision_(revision) {}
  Kind kind_;
  uint64_t revision_;
};

// An event as the client hands it to append(). Limits on every field are in
// ARCHITECTURE.md ("Limits") and checked by append(): violations return
// kInvalidArgument and nothing is written.
struct EventData {
  Uuid id;                                        // nil: the store generates a UUIDv7
  std::string type;                               // required, e.g. "OrderCreated"
  std::string content_type = "application/json";  // of `data`
  std::string data;                               // opaque bytes
  std::string metadata;                           // opaque bytes (JSON by convention)
  std::string correlation_id;                     // optional
  std::string causation_id;                       // optional
  std::string subject;                            // optional: the person the event concerns
  int64_t occurrence_time_unix_ns = 0;            // client's clock; 0 = not given
  uint32_t schema_version = 1;                    // of `data`, for upcasting
};

// An event as stored. `recorded_time_unix_ns` is the server's clock at commit;
// it never decreases along the log (the store clamps a clock that steps back).
struct RecordedEvent {
  Uuid id;
  std::string stream;
  uint64_t revision = 0;
  uint64_t position = 0;
  std::string type;
  std::string content_type;
  std::string data;
  std::string metadata;
  std::string correlation_id;
  std::string causation_id;
  std::string subject;
  int64_t occurrence_time_unix_ns = 0;
  int64_t recorded_time_unix_ns = 0;
  uint32_t schema_version = 1;
  // Id of the key that encrypts personal data in `data` (crypto-shredding);
  // 0 = not encrypted. Reserved: always 0 in this version.
  uint32_t key_id = 0;

  friend bool operator==(const RecordedEvent&, const RecordedEvent&) = default;
};

// A view of a stored event, handed to a visitor by Store::visit_stream and
// Store::visit_all. The views point into the store's read buffer and are valid
// only during the visitor call: copy what you keep (to_recorded() copies all).
struct EventRef {
  const Uuid& id;
  std::string_view stream;
  uint64_t revision = 0;
  uint64_t position = 0;
  std::string_view type;
  std::string_view content_type;
  std::string_view data;
  std::string_view metadata;
  std::string_view correlation_id;
  std::string_view causation_id;
  std::string_view subject;
  int64_t occurrence_time_unix_ns = 0;
  int64_t recorded_time_unix_ns = 0;
  uint32_t schema_version = 1;
  uint32_t key_id = 0;

  RecordedEvent to_recorded() const {
    return RecordedEvent{id,
                         std::string(stream),
                         revision,
                         position,
                         std::string(type),
                         std::string(content_type),
                         std::string(data),
                         std::string(metadata),
                         std::string(correlation_id),
                         std::string(causation_id),
                         std::string(subject),
                         occurrence_time_unix_ns,
                         recorded_time_unix_ns,
                         schema_version,
                         key_id};
  }
};

// The outcome of appending to one stream.
struct AppendResult {
  std::string stream;
  uint64_t first_revision = 0;
  uint64_t last_revision = 0;
  uint64_t first_position = 0;
  uint64_t last_position = 0;
  // True when every event id had already been written by an earlier identical
  // append, so nothing new was written and this is that append's result.
  bool idempotent_replay = false;

  friend bool operator==(const AppendResult&, const AppendResult&) = default;
};

// One part of a multi-stream atomic append.
struct StreamAppend {
  std::string stream;
  ExpectedRevision expected = ExpectedRevision::any();
  std::vector<EventData> events;
};

// Stream metadata. Every field is optional; an unset field imposes nothing.
struct StreamMetadata {
  std::optional<uint64_t> max_age_seconds;  // hide events recorded longer ago
  std::optional<uint64_t> max_count;        // keep only the newest N events visible
  std::optional<uint64_t> truncate_before;  // hide revisions below this one
  std::string custom;                       // opaque bytes (JSON by convention)

  friend bool operator==(const StreamMetadata&, const StreamMetadata&) = default;
};

// What the store knows about a stream.
struct StreamInfo {
  std::string name;
  int64_t last_revision = kNoRevision;  // of any event ever written, visible or not
  uint64_t last_position = 0;           // of the stream's newest event
  bool soft_deleted = false;            // deleted; appending recreates it
  bool tombstoned = false;              // deleted for ever
  StreamMetadata metadata;
};

}  // namespace vellum
