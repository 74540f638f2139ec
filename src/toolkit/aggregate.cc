// SPDX-License-Identifier: Apache-2.0
// The non-template parts of AggregateStore (include/vellum/aggregate.h).
#include "vellum/aggregate.h"

#include <algorithm>

#include "base/limits.h"
#include "base/sha256.h"
#include "base/uuid_v8.h"

namespace vellum::detail {

Result<StreamPlan> plan_load(Store& store, std::string_view stream) {
  Result<StreamInfo> info = store.stream_info(stream);
  if (!info) {
    if (info.error().code == ErrorCode::kNotFound) return StreamPlan{};
    return tl::unexpected(std::move(info).error());
  }
  if (info->tombstoned) {
    return make_error(ErrorCode::kStreamDeleted,
                      "stream '" + std::string(stream) + "' is permanently deleted");
  }
  StreamPlan plan;
  const StreamMetadata& metadata = info->metadata;
  plan.base_revision = metadata.truncate_before.value_or(0);
  plan.exists = !info->soft_deleted && info->last_revision != kNoRevision &&
                static_cast<uint64_t>(info->last_revision) >= plan.base_revision;
  // A sliding window (by count or age) moves the first visible event without
  // a metadata change: no snapshot could say which events it covers.
  plan.snapshots_usable = !metadata.max_count && !metadata.max_age_seconds;
  plan.last_revision = info->last_revision;
  return plan;
}

Status visit_revisions(Store& store, std::string_view stream, uint64_t from, uint64_t to,
                       const std::function<Status(const EventRef&)>& visit) {
  ReadStreamOptions options;
  options.from_revision = from;
  options.max_count = limits::kReadEventsMax;
  Status failed = ok_status();
  bool past_end = false;
  while (!past_end && failed) {
    Result<std::optional<uint64_t>> next =
        store.visit_stream(stream, options, [&](const EventRef& event) {
          if (event.revision > to) {
            past_end = true;
            return false;
          }
          failed = visit(event);
          return failed.has_value();
        });
    if (!next) {
      // A stream deleted between planning and reading has no events now.
      if (next.error().code == ErrorCode::kNotFound) return ok_status();
      return tl::unexpected(std::move(next).error());
    }
    if (!*next) break;
    options.from_revision = **next;
  }
  return failed;
}

Result<uint64_t> revision_at_time(Store& store, std::string_view stream, int64_t unix_ns) {
  ReadStreamOptions options;
  options.direction = Direction::kBackward;
  options.from_revision = kEnd;
  options.max_count = 1;
  options.as_of_time_unix_ns = unix_ns;
  Result<ReadStreamResult> read = store.read_stream(stream, options);
  if (!read && read.error().code != ErrorCode::kNotFound) {
    return tl::unexpected(std::move(read).error());
  }
  if (!read || read->events.empty()) {
    return make_error(ErrorCode::kNotFound,
                      "stream '" + std::string(stream) + "' had no events at that time");
  }
  return read->events.front().revision;
}

Uuid command_event_id(std::string_view stream, std::string_view command_id, uint32_t index) {
  Sha256 hash;
  hash.update("vellum.command-event-id");
  const uint32_t sizes[2] = {static_cast<uint32_t>(stream.size()),
                             static_cast<uint32_t>(command_id.size())};
  hash.update(sizes, sizeof(sizes));  // lengths first: no ambiguity between fields
  hash.update(stream);
  hash.update(command_id);
  hash.update(&index, sizeof(index));
  return uuid_v8_from_digest(hash.finish());
}

Result<std::optional<AppendResult>> find_command(Store& store, std::string_view stream,
                                                 std::string_view command_id) {
  auto find = [&](uint32_t index) -> Result<std::optional<RecordedEvent>> {
    Result<RecordedEvent> event = store.read_event(command_event_id(stream, command_id, index));
    if (!event) {
      if (event.error().code == ErrorCode::kNotFound) return std::nullopt;
      return tl::unexpected(std::move(event).error());
    }
    if (event->stream != stream) return std::nullopt;
    return std::optional<RecordedEvent>(std::move(*event));
  };
  VL_TRY(first, find(0));
  if (!first) return std::nullopt;
  AppendResult result{first->stream,   first->revision, first->revision,
                      first->position, first->position, /*idempotent_replay=*/true};
  for (uint32_t index = 1; index < limits::kAppendEventsMax; ++index) {
    VL_TRY(event, find(index));
    if (!event) break;
    result.last_revision = event->revision;
    result.last_position = event->position;
  }
  return result;
}

void stamp_events(std::vector<EventData>& events, std::string_view stream,
                  const CommandContext& context) {
  Json metadata = context.metadata.is_object() ? context.metadata : Json::object();
  if (!context.command_id.empty()) metadata["commandId"] = context.command_id;
  const std::string metadata_text = metadata.empty() ? std::string() : metadata.dump();
  for (size_t i = 0; i < events.size(); ++i) {
    EventData& event = events[i];
    if (!context.command_id.empty()) {
      event.id = command_event_id(stream, context.command_id, static_cast<uint32_t>(i));
    }
    event.metadata = metadata_text;
    event.correlation_id = context.correlation_id;
    event.causation_id = context.causation_id;
    event.subject = context.subject;
    event.occurrence_time_unix_ns = context.occurrence_time_unix_ns;
  }
}

Error with_context(Error error, std::string_view stream, uint64_t revision) {
  error.message = "stream '" + std::string(stream) + "' revision " + std::to_string(revision) +
                  ": " + error.message;
  return error;
}

}  // namespace vellum::detail
