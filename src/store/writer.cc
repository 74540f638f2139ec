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
    // A nil id is replaced by a positional id when the writer knows the
    // position (build_commit); only client-chosen ids need checking.
    bool chosen = !event.id.is_nil();
    part.client_ids = part.client_ids || chosen;
    if (chosen && !context.ids.insert(event.id).second) {
      return invalid("event id " + event.id.to_string() + " appears twice in one append");
    }
    part.event_offsets.push_back(static_cast<uint32_t>(part.encoded.size()));
    log::encode_event(part.encoded, stream, 0, event.id, event);
    part.ids.push_back(event.id);
    part.fingerprints.push_back(chosen ? event_fingerprint(stream, event) : 0);
  }
  return part;
}

}  // namespace

void AppendRequest::complete(Result<std::vector<AppendResult>> outcome) {
  if (on_done) {
    // Asynchronous: nobody waits on `cv`. Move the callback out so that what
    // it captures is released as soon as it has run.
    Store::AppendCallback callback = std::move(on_done);
    callback(std::move(outcome));
    return;
  }
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
  EncodeContext context{uuids_, *clock_, 0, 0, {}};
  VL_TRY(part, encode_part(stream, expected, events, context));
  std::vector<EncodedPart> parts;
  parts.push_back(std::move(part));
  VL_TRY(results, submit(std::move(parts)));
  VL_ASSERT(results.size() == 1);
  return std::move(results[0]);
}

Result<std::vector<AppendResult>> StoreImpl::append_multi(std::span<const StreamAppend> appends) {
  VL_TRY(parts, encode_appends(appends));
  return submit(std::move(parts));
}

Result<std::vector<EncodedPart>> StoreImpl::encode_appends(std::span<const StreamAppend> appends) {
  if (appends.empty()) return invalid("append_multi needs at least one stream");
  if (appends.size() > limits::kAppendStreamsMax) {
    return invalid("append_multi takes at most " + std::to_string(limits::kAppendStreamsMax) +
                   " streams (kAppendStreamsMax)");
  }
  EncodeContext context{uuids_, *clock_, 0, 0, {}};
  std::unordered_set<std::string_view> streams;
  std::vector<EncodedPart> parts;
  for (const StreamAppend& append : appends) {
    if (!streams.insert(append.stream).second) {
      return invalid("stream " + append.stream + " appears twice in one append_multi");
    }
    VL_TRY(part, encode_part(append.stream, append.expected, append.events, context));
    parts.push_back(std::move(part));
  }
  return parts;
}

void StoreImpl::append_async(std::span<const StreamAppend> appends, AppendCallback done) {
  VL_ASSERT(done);
  auto parts = encode_appends(appends);
  if (!parts) {
    done(make_error(parts.error()));
    return;
  }
  auto request = std::make_shared<AppendRequest>();
  request->parts = std::move(*parts);
  request->enqueued_ns = clock_->monotonic_ns();
  request->on_done = std::move(done);
  std::optional<Error> refused;
  {
    std::lock_guard lock(queue_mutex_);
    if (stopping_) {
      refused = Error{ErrorCode::kCancelled, "the store is closing"};
    } else if (queue_.size() >= limits::kWriterQueueAppendsMax) {
      refused =
          Error{ErrorCode::kResourceExhausted, "the writer queue is full (" +
                                                   std::to_string(limits::kWriterQueueAppendsMax) +
                                                   " appends): overloaded, retry later"};
    } else {
      queue_.push_back(request);
    }
  }
  if (refused) {
    // Outside the lock: the callback may take its own locks.
    request->complete(make_error(std::move(*refused)));
    return;
  }
  queue_cv_.notify_one();
}

Result<std::vector<AppendResult>> StoreImpl::submit(std::vector<EncodedPart> parts) {
  auto request = std::make_shared<AppendRequest>();
  request->parts = std::move(parts);
  request->enqueued_ns = clock_->monotonic_ns();
  {
    std::unique_lock lock(queue_mutex_);
    queue_space_cv_.wait(
        lock, [&] { return stopping_ || queue_.size() < limits::kWriterQueueAppendsMax; });
    if (stopping_) return make_error(ErrorCode::kCancelled, "the store is closing");
    queue_.push_back(request);
  }
  queue_cv_.notify_one();
  return request->wait();
}

// ---- The writer thread ----

// Takes every queued append, checks and encodes them into commit records and
// writes them with one pwrite. It never waits for the disk: the syncer
// thread fsyncs everything written so far while the writer goes on, so each
// fdatasync covers all appends that arrived during the previous one.
void StoreImpl::writer_loop() {
  for (;;) {
    std::vector<std::shared_ptr<AppendRequest>> requests;
    {
      std::unique_lock lock(queue_mutex_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) break;
      uint64_t bytes = 0;
      while (!queue_.empty() && bytes < limits::kCommitGroupBytesMax) {
        for (const auto& part : queue_.front()->parts) bytes += part.encoded.size();
        requests.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    queue_space_cv_.notify_all();
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
    sync_queue_.push(std::move(group));
    streams_->evict_indexed(indexed_position_.load());
  }
  sync_queue_.close();
}

void StoreImpl::process_request(const std::shared_ptr<AppendRequest>& request, CommitGroup& group) {
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
    case ExpectedRevision::Kind::kAny:
      ok = true;
      break;
    case ExpectedRevision::Kind::kNoStream:
      ok = !state.exists();
      break;
    case ExpectedRevision::Kind::kStreamExists:
      ok = state.exists();
      break;
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
  int64_t recorded = std::max(clock_->now_unix_ns(), last_recorded_unix_ns_);
  std::string payload(log::kCommitHeaderSize, '\0');
  for (size_t i = 0; i < request.parts.size(); i++) {
    if (replayed[i]) continue;
    EncodedPart& part = request.parts[i];
    VL_TRY(state, streams_->get(part.stream));
    auto first_revision = static_cast<uint64_t>(state->last_revision + 1);
    auto count = static_cast<uint64_t>(part.event_offsets.size());
    for (size_t k = 0; k < part.event_offsets.size(); k++) {
      char* event = part.encoded.data() + part.event_offsets[k];
      log::patch_revision(event, first_revision + k);
      if (part.ids[k].is_nil()) log::patch_id(event, generate_id(recorded, position + k));
    }
    payload.append(part.encoded);
    results[i] = AppendResult{part.stream, first_revision,       first_revision + count - 1,
                              position,    position + count - 1, false};
    position += count;
  }
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
    if (!replayed[i]) {
      remember_ids(request.parts[i], results[i].first_position, results[i].first_revision);
    }
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

Uuid StoreImpl::generate_id(int64_t recorded_unix_ns, uint64_t position) {
  if (position <= index::kEventIdPositionMax) {
    return index::make_positional_id(log_->store_tag(), recorded_unix_ns, position);
  }
  // Beyond 2^44 events: a random UUIDv7, which the index then records.
  return uuids_.next(recorded_unix_ns);
}

Result<std::optional<RecentId>> StoreImpl::find_written_id(const Uuid& id) {
  auto it = recent_ids_.find(id);
  if (it != recent_ids_.end()) return std::optional<RecentId>(it->second);
  VL_TRY(position, index_->event_position(id));
  if (!position) {
    // A client-chosen id in this store's generated-id space: it names an
    // existing event, or it is refused (the writer may generate it later).
    auto claimed = index::positional_id_position(log_->store_tag(), id);
    if (!claimed) return std::optional<RecentId>();
    if (*claimed < indexed_position_.load()) position = claimed;
    if (position) {
      VL_TRY(existing, event_at(*position));
      if (existing && existing->id == id) {
        EventData data;
        data.type = existing->type;
        data.data = existing->data;
        data.metadata = existing->metadata;
        return std::optional<RecentId>(
            RecentId{*position, existing->revision, event_fingerprint(existing->stream, data)});
      }
    }
    return make_error(ErrorCode::kInvalidArgument,
                      "event id " + id.to_string() +
                          " lies in the range of ids this store generates; choose another id");
  }
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
    if (part.ids[k].is_nil()) continue;  // generated later: cannot exist yet
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
    bool consecutive =
        found[k].position == found[0].position + k && found[k].revision == found[0].revision + k;
    if (!consecutive) found.clear();
  }
  if (found.size() != part.ids.size()) {
    return make_error(ErrorCode::kAlreadyExists,
                      "some event ids of this append were already written by another append");
  }
  uint64_t n = found.size();
  return std::optional<AppendResult>(AppendResult{part.stream, found[0].revision,
                                                  found[0].revision + n - 1, found[0].position,
                                                  found[0].position + n - 1, true});
}

void StoreImpl::remember_ids(const EncodedPart& part, uint64_t first_position,
                             uint64_t first_revision) {
  if (!part.client_ids) return;  // generated UUIDv7s are unique: nothing to remember
  for (size_t k = 0; k < part.ids.size(); k++) {
    if (part.ids[k].is_nil()) continue;
    recent_ids_[part.ids[k]] =
        RecentId{first_position + k, first_revision + k, part.fingerprints[k]};
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
  VL_ASSERT(!group.records.empty());
  VL_RETURN_IF_ERROR(log_->write_group(false));
  writer_checkpoint_.next_position = log_->next_position();
  written_position_.store(writer_checkpoint_.next_position);
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

// ---- The syncer and indexer threads ----

// Takes every written group and makes them durable with one fdatasync (kFsync)
// before handing them to the indexer. kBatch hands them on at once and syncs
// every batch_interval_ms.
void StoreImpl::syncer_loop() {
  for (;;) {
    std::optional<std::chrono::milliseconds> timeout;
    if (unsynced_) timeout = std::chrono::milliseconds(options_.batch_interval_ms);
    auto groups = sync_queue_.take_all(timeout);
    if (!groups) break;
    auto synced = sync_for(*groups);
    for (auto& group : *groups) index_queue_.push(SyncedGroup{std::move(group), synced});
  }
  index_queue_.close();
}

// Indexes synced groups, publishes the new head and acknowledges the appends.
void StoreImpl::indexer_loop() {
  for (;;) {
    auto groups = index_queue_.take_all(std::nullopt);
    if (!groups) break;
    for (auto& synced : *groups) commit_group(synced.group, synced.synced);
  }
}

// Makes `groups` as durable as the durability mode promises before they are
// acknowledged. kBatch acknowledges first and syncs every batch_interval_ms.
Status StoreImpl::sync_for(const std::vector<CommitGroup>& groups) {
  const CommitGroup* last = nullptr;
  for (const auto& group : groups) {
    if (!group.records.empty()) last = &group;
  }
  if (last != nullptr) {
    synced_through_ = last->checkpoint.end;
    unsynced_ = options_.durability != Durability::kNone;
  }
  if (!unsynced_) return ok_status();
  int64_t now = clock_->monotonic_ns();
  bool due = options_.durability == Durability::kFsync ||
             now - last_sync_ns_ >= int64_t{options_.batch_interval_ms} * 1'000'000;
  if (!due) return ok_status();
  last_sync_ns_ = now;
  unsynced_ = false;
  auto synced = log_->sync_through(synced_through_);
  if (synced) stat_fsyncs_.fetch_add(1);
  if (!synced && options_.durability == Durability::kBatch) return ok_status();  // writer failed
  return synced;
}

void StoreImpl::commit_group(CommitGroup& group, const Status& synced) {
  auto indexed = synced ? index_group(group) : Status(make_error(synced.error()));
  if (!indexed) {
    if (synced) index_failed_.store(true);
    std::string what = synced ? "the index failed (" + indexed.error().message +
                                    "); the append is durable, reopen the store"
                              : "the append could not be made durable (" + indexed.error().message +
                                    "); the writer is stopped until the store is reopened";
    for (auto& request : group.requests) {
      request->complete(make_error(ErrorCode::kUnavailable, what));
    }
    return;
  }
  publish(group);
}

Status StoreImpl::index_group(CommitGroup& group) {
  if (index_failed_.load()) {
    return make_error(ErrorCode::kUnavailable, "the index failed earlier");
  }
  for (auto& record : group.records) {
    VL_TRY(commit, log::decode_commit(record.payload, "the indexer's input"));
    group.batch.add_commit(commit, record.location, record.stream_ids, log_->store_tag());
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
  if (!group.records.empty()) {
    // Buckets of 1, 4, 16, ... events: bucket i holds groups of <= 4^i events.
    size_t bucket = 0;
    while (bucket + 1 < stat_group_sizes_.size() && group.events > (uint64_t{1} << (2 * bucket))) {
      bucket++;
    }
    stat_group_sizes_[bucket].fetch_add(1);
  }
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
