// SPDX-License-Identifier: Apache-2.0
// The append path: encoding in the caller's thread, the single writer thread
// (checks, commit records, group write + fdatasync) and the indexer thread
// (index batch, publication, acknowledgement). See store_impl.h.
#include <algorithm>
#include <unordered_set>

#include "base/assert.h"
#include "base/limits.h"
#include "log/commit_record.h"
#include "store/store_impl.h"

namespace vellum::store {
namespace {

tl::unexpected<Error> invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

struct EncodeContext {
  UuidV7Generator& uuids;
  Clock& clock;
  uint64_t bytes = 0;  // data + metadata so far in this append
  uint64_t events = 0;
  std::unordered_set<Uuid, UuidHash> ids;
};

Result<EncodedPart> encode_part(std::string_view stream, ExpectedRevision expected,
                                std::span<const EventData> events, EncodeContext& context) {
  VL_RETURN_IF_ERROR(validate_stream_name(stream, false));
  if (events.empty()) return invalid("an append needs at least one event");
  EncodedPart part;
  part.stream = stream;
  part.expected = expected;
  part.event_offsets.reserve(events.size());
  part.ids.reserve(events.size());
  for (const EventData& event : events) {
    VL_RETURN_IF_ERROR(validate_event(event));
    context.bytes += event.data.size() + event.metadata.size();
    context.events++;
    if (context.bytes > limits::kAppendBytesMax) {
      return invalid("the append exceeds " + std::to_string(limits::kAppendBytesMax) +
                     " bytes (kAppendBytesMax)");
    }
    if (context.events > limits::kAppendEventsMax) {
      return invalid("the append has more than " + std::to_string(limits::kAppendEventsMax) +
                     " events (kAppendEventsMax)");
    }
    Uuid id = event.id.is_nil() ? context.uuids.next(context.clock.now_unix_ns()) : event.id;
    part.client_ids = part.client_ids || !event.id.is_nil();
    if (!context.ids.insert(id).second) {
      return invalid("event id " + id.to_string() + " appears twice in one append");
    }
    part.event_offsets.push_back(static_cast<uint32_t>(part.encoded.size()));
    log::encode_event(part.encoded, stream, 0, id, event);
    part.ids.push_back(id);
    part.fingerprints.push_back(event_fingerprint(stream, event));
  }
  return part;
}

}  // namespace

void AppendRequest::complete(Result<std::vector<AppendResult>> outcome) {
  std::lock_guard lock(mutex);
  result = std::move(outcome);
  done = true;
  cv.notify_one();
}

Result<std::vector<AppendResult>> AppendRequest::wait() {
  std::unique_lock lock(mutex);
  cv.wait(lock, [&] { return done; });
  return std::move(result);
}

Result<AppendResult> StoreImpl::append(std::string_view stream, ExpectedRevision expected,
                                       std::span<const EventData> events) {
  EncodeContext context{uuids_, *clock_};
  VL_TRY(part, encode_part(stream, expected, events, context));
  std::vector<EncodedPart> parts;
  parts.push_back(std::move(part));
  VL_TRY(results, submit(std::move(parts)));
  VL_ASSERT(results.size() == 1);
  return std::move(results[0]);
}

Result<std::vector<AppendResult>> StoreImpl::append_multi(std::span<const StreamAppend> appends) {
  if (appends.empty()) return invalid("append_multi needs at least one stream");
  if (appends.size() > limits::kAppendStreamsMax) {
    return invalid("append_multi takes at most " + std::to_string(limits::kAppendStreamsMax) +
                   " streams (kAppendStreamsMax)");
  }
  EncodeContext context{uuids_, *clock_};
  std::unordered_set<std::string_view> streams;
  std::vector<EncodedPart> parts;
  for (const StreamAppend& append : appends) {
    if (!streams.insert(append.stream).second) {
      return invalid("stream " + append.stream + " appears twice in one append_multi");
    }
    VL_TRY(part, encode_part(append.stream, append.expected, append.events, context));
    parts.push_back(std::move(part));
  }
  return submit(std::move(parts));
}

Result<std::vector<AppendResult>> StoreImpl::submit(std::vector<EncodedPart> parts) {
  auto request = std::make_shared<AppendRequest>();
  request->parts = std::move(parts);
  request->enqueued_ns = clock_->monotonic_ns();
  {
    std::unique_lock lock(queue_mutex_);
    queue_space_cv_.wait(lock, [&] {
      return stopping_ || queue_.size() < limits::kWriterQueueAppendsMax;
    });
    if (stopping_) return make_error(ErrorCode::kCancelled, "the store is closing");
    queue_.push_back(request);
  }
  queue_cv_.notify_one();
  return request->wait();
}

// ---- The writer thread ----

void StoreImpl::writer_loop() {
  for (;;) {
    std::vector<std::shared_ptr<AppendRequest>> requests;
    {
      std::unique_lock lock(queue_mutex_);
      auto wake = [&] { return stopping_ || !queue_.empty(); };
      if (unsynced_) {
        queue_cv_.wait_for(lock, std::chrono::milliseconds(options_.batch_interval_ms), wake);
      } else {
        queue_cv_.wait(lock, wake);
      }
      if (queue_.empty() && stopping_) break;
      uint64_t bytes = 0;
      while (!queue_.empty() && bytes < limits::kCommitGroupBytesMax) {
        for (const auto& part : queue_.front()->parts) bytes += part.encoded.size();
        requests.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    queue_space_cv_.notify_all();
    int64_t now = clock_->monotonic_ns();
    bool sync_due = unsynced_ &&
                    now - last_sync_ns_ >= int64_t{options_.batch_interval_ms} * 1'000'000;
    if (sync_due && !log_->failed()) {
      if (log_->sync()) stat_fsyncs_.fetch_add(1);
      unsynced_ = false;
      last_sync_ns_ = now;
    }
    if (requests.empty()) continue;
    CommitGroup group;
    for (auto& request : requests) process_request(request, group);
    if (group.requests.empty()) continue;
    if (!group.records.empty()) {
      auto written = write_group(group);
      if (!written) {
        fail_group(group, written.error());
        continue;
      }
    }
    for (auto& [name, state] : streams_->drain_touched()) {
      group.batch.put_stream(name, state);
      group.touched.emplace_back(std::move(name), std::move(state));
    }
    group.checkpoint = writer_checkpoint_;
    {
      std::unique_lock lock(index_mutex_);
      index_cv_.wait(lock, [&] { return index_queue_.size() < kIndexQueueGroupsMax; });
      index_queue_.push_back(std::move(group));
    }
    index_cv_.notify_all();
    streams_->evict_indexed(indexed_position_.load());
  }
  {
    std::lock_guard lock(index_mutex_);
    index_stopping_ = true;
  }
  index_cv_.notify_all();
}

void StoreImpl::process_request(const std::shared_ptr<AppendRequest>& request,
                                CommitGroup& group) {
  auto results = check_and_build(*request, group);
  if (!results) {
    request->complete(make_error(results.error()));
    return;
  }
  request->result = std::move(*results);
  group.requests.push_back(request);
}

Status StoreImpl::check_expected(const EncodedPart& part, const index::StreamState& state) {
  const ExpectedRevision& expected = part.expected;
  bool ok = false;
  switch (expected.kind()) {
    case ExpectedRevision::Kind::kAny: ok = true; break;
    case ExpectedRevision::Kind::kNoStream: ok = !state.exists(); break;
    case ExpectedRevision::Kind::kStreamExists: ok = state.exists(); break;
    case ExpectedRevision::Kind::kExact:
      ok = state.exists() && state.last_revision == static_cast<int64_t>(expected.revision());
      break;
  }
  if (ok) return ok_status();
  int64_t actual = state.exists() ? state.last_revision : kNoRevision;
  Error error{ErrorCode::kFailedPrecondition,
              "wrong expected revision for stream " + part.stream + ": expected " +
                  expected.to_string() + ", actual " + std::to_string(actual),
              RevisionConflict{part.stream, expected.to_string(), actual}};
  return make_error(std::move(error));
}

Result<std::vector<AppendResult>> StoreImpl::check_and_build(AppendRequest& request,
                                                             CommitGroup& group) {
  if (log_->failed()) {
    return make_error(ErrorCode::kUnavailable,
                      "the writer failed earlier (an fsync or write error); reopen the store");
  }
  std::vector<AppendResult> results(request.parts.size());
  std::vector<bool> replayed(request.parts.size(), false);
  for (size_t i = 0; i < request.parts.size(); i++) {
    EncodedPart& part = request.parts[i];
    if (part.client_ids) {
      VL_TRY(replay, idempotent_replay(part));
      if (replay) {
        results[i] = *replay;
        replayed[i] = true;
        continue;
      }
    }
    // A metadata write (stream "$$x") is checked against x's state.
    bool system = part.system != EncodedPart::SystemOp::kNone;
    std::string_view target = system ? std::string_view(part.stream).substr(2) : part.stream;
    VL_TRY(state, streams_->get(target));
    if (state->tombstoned) {
      return make_error(ErrorCode::kStreamDeleted,
                        "stream " + std::string(target) + " is deleted (tombstoned)");
    }
    VL_RETURN_IF_ERROR(check_expected(part, *state));
    if (system) VL_RETURN_IF_ERROR(encode_system_part(part, *state));
  }
  if (std::all_of(replayed.begin(), replayed.end(), [](bool r) { return r; })) return results;
  VL_RETURN_IF_ERROR(build_commit(request, replayed, results, group));
  return results;
}

Status StoreImpl::build_commit(AppendRequest& request, const std::vector<bool>& replayed,
                               std::vector<AppendResult>& results, CommitGroup& group) {
  uint64_t first_position = log_->next_position();
  uint64_t position = first_position;
  std::string payload(log::kCommitHeaderSize, '\0');
  for (size_t i = 0; i < request.parts.size(); i++) {
    if (replayed[i]) continue;
    EncodedPart& part = request.parts[i];
    VL_TRY(state, streams_->get(part.stream));
    auto first_revision = static_cast<uint64_t>(state->last_revision + 1);
    auto count = static_cast<uint64_t>(part.event_offsets.size());
    for (size_t k = 0; k < part.event_offsets.size(); k++) {
      log::patch_revision(part.encoded.data() + part.event_offsets[k], first_revision + k);
    }
    payload.append(part.encoded);
    results[i] = AppendResult{part.stream, first_revision, first_revision + count - 1, position,
                              position + count - 1, false};
    position += count;
  }
  int64_t recorded = std::max(clock_->now_unix_ns(), last_recorded_unix_ns_);
  log::CommitHeader header{first_position, recorded, Digest{},
                           static_cast<uint32_t>(position - first_position)};
  std::string encoded_header = log::encode_commit_header(header);
  payload.replace(0, encoded_header.size(), encoded_header);
  VL_TRY(location, log_->add_commit(payload));
  last_recorded_unix_ns_ = recorded;
  auto commit = log::decode_commit(payload, "the writer's own commit");
  VL_ASSERT(commit.has_value());  // pair assertion: what we write, we can read
  VL_TRY(stream_ids, streams_->apply(*commit));
  for (size_t i = 0; i < request.parts.size(); i++) {
    if (!replayed[i]) remember_ids(request.parts[i], results[i].first_position,
                                   results[i].first_revision);
  }
  group.events += position - first_position;
  group.records.push_back(CommitGroup::Record{location, std::move(payload), std::move(stream_ids)});
  return ok_status();
}

Status StoreImpl::encode_system_part(EncodedPart& part, const index::StreamState& target) {
  index::MetadataRecord record{target.metadata, target.soft_deleted, false};
  switch (part.system) {
    case EncodedPart::SystemOp::kSetMetadata:
      record.metadata = part.metadata;
      break;
    case EncodedPart::SystemOp::kSoftDelete:
      if (target.last_revision == kNoRevision) {
        return make_error(ErrorCode::kNotFound, "stream " + part.stream.substr(2) + " not found");
      }
      record.metadata.truncate_before = static_cast<uint64_t>(target.last_revision + 1);
      record.soft_deleted = true;
      break;
    case EncodedPart::SystemOp::kTombstone:
      record.tombstoned = true;
      break;
    case EncodedPart::SystemOp::kNone:
      VL_ASSERT(false);
  }
  EventData event;
  event.type = index::kMetadataEventType;
  event.content_type = "application/vnd.vellum.metadata";
  event.data = index::encode_metadata_record(record);
  Uuid id = uuids_.next(clock_->now_unix_ns());
  part.encoded.clear();
  part.event_offsets = {0};
  part.ids = {id};
  part.fingerprints = {event_fingerprint(part.stream, event)};
  log::encode_event(part.encoded, part.stream, 0, id, event);
  return ok_status();
}

Status StoreImpl::submit_system(std::string_view stream, EncodedPart::SystemOp op,
                                ExpectedRevision expected, StreamMetadata metadata) {
  VL_RETURN_IF_ERROR(validate_stream_name(stream, false));
  if (metadata.custom.size() > limits::kEventBytesMax / 2) {
    return invalid("custom stream metadata is larger than kEventBytesMax / 2");
  }
  EncodedPart part;
  part.stream = index::metadata_stream_of(stream);
  part.expected = expected;
  part.system = op;
  part.metadata = std::move(metadata);
  std::vector<EncodedPart> parts;
  parts.push_back(std::move(part));
  VL_TRY(results, submit(std::move(parts)));
  return ok_status();
}

Status StoreImpl::set_stream_metadata(std::string_view stream, const StreamMetadata& metadata) {
  return submit_system(stream, EncodedPart::SystemOp::kSetMetadata, ExpectedRevision::any(),
                       metadata);
}

Status StoreImpl::delete_stream(std::string_view stream, ExpectedRevision expected,
                                bool tombstone) {
  auto op = tombstone ? EncodedPart::SystemOp::kTombstone : EncodedPart::SystemOp::kSoftDelete;
  return submit_system(stream, op, expected, StreamMetadata{});
}

Result<std::optional<RecentId>> StoreImpl::find_written_id(const Uuid& id) {
  auto it = recent_ids_.find(id);
  if (it != recent_ids_.end()) return std::optional<RecentId>(it->second);
  VL_TRY(position, index_->event_position(id));
  if (!position) return std::optional<RecentId>();
  VL_TRY(record, index_->record_at(*position));
  if (!record) return make_error(ErrorCode::kDataLoss, "event id index points past the log");
  VL_TRY(payload, log_->read_commit(record->location));
  VL_TRY(commit, log::decode_commit(payload, "idempotency check"));
  uint64_t index_in_record = *position - record->first_position;
  if (index_in_record >= commit.events.size()) {
    return make_error(ErrorCode::kDataLoss, "event id index points outside its record");
  }
  const log::EventView& event = commit.events[index_in_record];
  VL_ASSERT(event.id == id);  // pair assertion: the index entry leads to the same event
  return std::optional<RecentId>(RecentId{*position, event.revision, event_fingerprint(event)});
}

Result<std::optional<AppendResult>> StoreImpl::idempotent_replay(const EncodedPart& part) {
  std::vector<RecentId> found;
  for (size_t k = 0; k < part.ids.size(); k++) {
    VL_TRY(written, find_written_id(part.ids[k]));
    if (!written) continue;
    if (written->fingerprint != part.fingerprints[k]) {
      return make_error(ErrorCode::kAlreadyExists,
                        "event id " + part.ids[k].to_string() +
                            " already exists with different content or in another stream");
    }
    found.push_back(*written);
  }
  if (found.empty()) return std::optional<AppendResult>();
  for (size_t k = 1; k < found.size(); k++) {
    bool consecutive = found[k].position == found[0].position + k &&
                       found[k].revision == found[0].revision + k;
    if (!consecutive) found.clear();
  }
  if (found.size() != part.ids.size()) {
    return make_error(ErrorCode::kAlreadyExists,
                      "some event ids of this append were already written by another append");
  }
  uint64_t n = found.size();
  return std::optional<AppendResult>(
      AppendResult{part.stream, found[0].revision, found[0].revision + n - 1, found[0].position,
                   found[0].position + n - 1, true});
}

void StoreImpl::remember_ids(const EncodedPart& part, uint64_t first_position,
                             uint64_t first_revision) {
  if (!part.client_ids) return;  // generated UUIDv7s are unique: nothing to remember
  for (size_t k = 0; k < part.ids.size(); k++) {
    recent_ids_[part.ids[k]] = RecentId{first_position + k, first_revision + k,
                                        part.fingerprints[k]};
    recent_order_.emplace_back(part.ids[k], first_position + k);
  }
  // Forget the oldest ids, but only once indexed: the index answers for them.
  uint64_t indexed = indexed_position_.load();
  while (recent_order_.size() > options_.recent_ids_count_max &&
         recent_order_.front().second < indexed) {
    recent_ids_.erase(recent_order_.front().first);
    recent_order_.pop_front();
  }
}

Status StoreImpl::write_group(CommitGroup& group) {
  bool sync_now = options_.durability == Durability::kFsync;
  VL_RETURN_IF_ERROR(log_->write_group(sync_now));
  if (sync_now) {
    stat_fsyncs_.fetch_add(1);
  } else if (!unsynced_) {
    unsynced_ = true;
    last_sync_ns_ = clock_->monotonic_ns();
  }
  if (options_.durability == Durability::kNone) unsynced_ = false;
  writer_checkpoint_.next_position = log_->next_position();
  writer_checkpoint_.end = log_->written_end();
  writer_checkpoint_.last_hash = log_->last_hash();
  writer_checkpoint_.next_stream_id = streams_->next_stream_id();
  writer_checkpoint_.last_recorded_unix_ns = last_recorded_unix_ns_;
  return ok_status();
}

void StoreImpl::fail_group(CommitGroup& group, const Error& error) {
  std::string message = "the append could not be made durable (" + error.message +
                        "); the writer is stopped until the store is reopened";
  for (auto& request : group.requests) {
    request->complete(make_error(ErrorCode::kUnavailable, message));
  }
}

// ---- The indexer thread ----

void StoreImpl::indexer_loop() {
  for (;;) {
    CommitGroup group;
    {
      std::unique_lock lock(index_mutex_);
      index_cv_.wait(lock, [&] { return index_stopping_ || !index_queue_.empty(); });
      if (index_queue_.empty()) break;
      group = std::move(index_queue_.front());
      index_queue_.pop_front();
    }
    index_cv_.notify_all();
    auto indexed = index_group(group);
    if (!indexed) {
      index_failed_.store(true);
      for (auto& request : group.requests) {
        request->complete(make_error(ErrorCode::kUnavailable,
                                     "the append is durable in the log but the index failed (" +
                                         indexed.error().message + "); reopen the store"));
      }
      continue;
    }
    publish(group);
  }
}

Status StoreImpl::index_group(CommitGroup& group) {
  if (index_failed_.load()) {
    return make_error(ErrorCode::kUnavailable, "the index failed earlier");
  }
  for (auto& record : group.records) {
    VL_TRY(commit, log::decode_commit(record.payload, "the indexer's input"));
    group.batch.add_commit(commit, record.location, record.stream_ids);
  }
  if (group.records.empty()) return ok_status();
  return index_->write(group.batch, group.checkpoint);
}

void StoreImpl::publish(CommitGroup& group) {
  update_restricted(group.touched);
  if (!group.records.empty()) {
    {
      std::lock_guard lock(head_mutex_);
      indexed_position_.store(group.checkpoint.next_position);
    }
    head_cv_.notify_all();
  }
  stat_groups_.fetch_add(group.records.empty() ? 0 : 1);
  stat_events_.fetch_add(group.events);
  stat_appends_.fetch_add(group.requests.size());
  for (auto& request : group.requests) request->complete(std::move(request->result));
}

void StoreImpl::update_restricted(
    const std::vector<std::pair<std::string, index::StreamState>>& touched) {
  bool any_change = false;
  for (const auto& [name, state] : touched) {
    any_change = any_change || state.restricts_reads() || any_restricted_.load();
  }
  if (!any_change) return;
  std::unique_lock lock(restricted_mutex_);
  for (const auto& [name, state] : touched) {
    if (state.restricts_reads()) {
      restricted_[name] = state;
    } else {
      restricted_.erase(name);
    }
  }
  any_restricted_.store(!restricted_.empty());
}

}  // namespace vellum::store
