// SPDX-License-Identifier: Apache-2.0
// Reads: by stream, the global log (optionally filtered through the type,
// category and subject indexes), by id, and as of a past position or time.
// Every read honours stream metadata and deletion, and sees only indexed
// (published) events.
#include <algorithm>

#include "base/assert.h"
#include "base/limits.h"
#include "store/store_impl.h"

namespace vellum::store {
EventRef to_event_ref(const log::EventView& event, uint64_t position, int64_t recorded) {
  return EventRef{.id = event.id,
                  .stream = event.stream,
                  .revision = event.revision,
                  .position = position,
                  .type = event.type,
                  .content_type = event.content_type,
                  .data = event.data,
                  .metadata = event.metadata,
                  .correlation_id = event.correlation_id,
                  .causation_id = event.causation_id,
                  .subject = event.subject,
                  .occurrence_time_unix_ns = event.occurrence_time_unix_ns,
                  .recorded_time_unix_ns = recorded,
                  .schema_version = event.schema_version,
                  .key_id = event.key_id};
}

namespace {

tl::unexpected<Error> invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

Status validate_count(uint32_t max_count) {
  if (max_count == 0 || max_count > limits::kReadEventsMax) {
    return invalid("max_count must be between 1 and " + std::to_string(limits::kReadEventsMax));
  }
  return ok_status();
}

// Whether stream metadata or deletion hides an event.
bool hidden_by(const index::StreamState& state, uint64_t revision, int64_t recorded_unix_ns,
               int64_t now_unix_ns) {
  if (state.tombstoned) return true;
  const StreamMetadata& m = state.metadata;
  if (m.truncate_before && revision < *m.truncate_before) return true;
  if (m.max_count && state.last_revision >= 0 &&
      revision + *m.max_count <= static_cast<uint64_t>(state.last_revision)) {
    return true;
  }
  if (m.max_age_seconds) {
    int64_t age_ns =
        static_cast<int64_t>(std::min<uint64_t>(*m.max_age_seconds, 1ull << 32)) * 1'000'000'000;
    if (recorded_unix_ns < now_unix_ns - age_ns) return true;
  }
  return false;
}

// The decoded commit record last read, reused while reads stay inside it.
class RecordCache {
 public:
  RecordCache(log::Log& log, index::Index& index) : log_(log), index_(index) {}

  // The record holding `position`, or nullptr if none is indexed.
  Result<const log::CommitView*> covering(uint64_t position) {
    if (valid_ && position >= ref_.first_position &&
        position < ref_.first_position + ref_.event_count) {
      return &view_;
    }
    VL_TRY(ref, index_.record_at(position));
    if (!ref) return static_cast<const log::CommitView*>(nullptr);
    VL_RETURN_IF_ERROR(load(*ref));
    return &view_;
  }

  Result<const log::CommitView*> at(log::RecordLocation location) {
    if (valid_ && location == ref_.location) return &view_;
    index::RecordRef ref;
    ref.location = location;
    VL_RETURN_IF_ERROR(load(ref));
    ref_.first_position = view_.header.first_position;
    ref_.event_count = view_.header.event_count;
    return &view_;
  }

 private:
  Status load(const index::RecordRef& ref) {
    valid_ = false;
    VL_TRY(payload, log_.read_commit(ref.location));
    payload_ = std::move(payload);
    VL_TRY(view,
           log::decode_commit(payload_, "segment " + std::to_string(ref.location.segment_index) +
                                            " offset " + std::to_string(ref.location.offset)));
    view_ = std::move(view);
    ref_ = ref;
    ref_.first_position = view_.header.first_position;
    ref_.event_count = view_.header.event_count;
    valid_ = true;
    return ok_status();
  }

  log::Log& log_;
  index::Index& index_;
  bool valid_ = false;
  index::RecordRef ref_;
  std::string payload_;
  log::CommitView view_;
};

}  // namespace

bool StoreImpl::event_visible(std::string_view stream, uint64_t revision,
                              int64_t recorded_unix_ns) {
  if (stream.starts_with('$')) return false;  // reserved streams are not in the global log
  if (!any_restricted_.load()) return true;
  std::shared_lock lock(restricted_mutex_);
  auto it = restricted_.find(std::string(stream));
  if (it == restricted_.end()) return true;
  return !hidden_by(it->second, revision, recorded_unix_ns, clock_->now_unix_ns());
}

Result<uint64_t> StoreImpl::resolve_as_of(std::optional<uint64_t> position,
                                          std::optional<int64_t> time) {
  uint64_t limit = indexed_position_.load();
  if (position) limit = std::min(limit, *position);
  if (time) {
    VL_TRY(at, position_at(*time));
    limit = std::min(limit, at);
  }
  return limit;
}

Result<uint64_t> StoreImpl::position_at(int64_t time_unix_ns) {
  uint64_t head = indexed_position_.load();
  VL_TRY(after, index_->first_position_after(time_unix_ns));
  return after ? std::min(*after, head) : head;
}

Result<std::optional<index::StreamState>> StoreImpl::visible_state(std::string_view stream) {
  VL_RETURN_IF_ERROR(validate_stream_name(stream, true));
  VL_TRY(state, index_->get_stream(stream));
  // A tombstone is reported even on a stream that never had events: the
  // name is gone for ever, which a reader must be able to tell from "not yet".
  if (state && state->tombstoned) {
    return make_error(ErrorCode::kStreamDeleted,
                      "stream " + std::string(stream) + " is deleted (tombstoned)");
  }
  if (!state || state->last_revision == kNoRevision) {
    return make_error(ErrorCode::kNotFound, "stream " + std::string(stream) + " not found");
  }
  if (state->soft_deleted) {
    return make_error(ErrorCode::kNotFound, "stream " + std::string(stream) + " was deleted");
  }
  return state;
}

// Walks one stream in `options.direction`, calling `emit` for every visible
// event until max_count events were emitted or `emit` returns false. Returns
// the revision to continue from, or nullopt at the end.
Result<std::optional<uint64_t>> StoreImpl::stream_pass(std::string_view stream,
                                                       const ReadStreamOptions& options,
                                                       const Emit& emit) {
  VL_RETURN_IF_ERROR(validate_count(options.max_count));
  VL_TRY(found, visible_state(stream));
  const index::StreamState& state = *found;
  VL_TRY(limit, resolve_as_of(options.as_of_position, options.as_of_time_unix_ns));
  auto last = static_cast<uint64_t>(state.last_revision);
  uint64_t lowest = state.metadata.truncate_before.value_or(0);
  if (state.metadata.max_count && last + 1 > *state.metadata.max_count) {
    lowest = std::max(lowest, last + 1 - *state.metadata.max_count);
  }
  bool forward = options.direction == Direction::kForward;
  uint64_t revision =
      forward ? std::max(options.from_revision, lowest) : std::min(options.from_revision, last);
  bool in_range = forward ? revision <= last : revision >= lowest;
  RecordCache cache(*log_, *index_);
  int64_t now = clock_->now_unix_ns();
  uint32_t emitted = 0;
  bool stop = false;
  while (in_range && !stop) {
    VL_TRY(chunks, index_->stream_chunks(state.stream_id, revision, options.direction,
                                         options.max_count - emitted));
    uint64_t revision_before = revision;
    for (size_t c = 0; c < chunks.size() && in_range && !stop; c++) {
      const index::StreamChunk& chunk = chunks[c];
      uint64_t chunk_last = chunk.first_revision + chunk.count - 1;
      VL_TRY(view, cache.at(chunk.location));
      while (in_range && !stop && revision >= chunk.first_revision && revision <= chunk_last) {
        uint64_t offset = revision - chunk.first_revision;
        const log::EventView& event = view->events[chunk.first_event_index + offset];
        VL_ASSERT(event.revision == revision);  // pair assertion: index and log agree
        uint64_t position = chunk.first_position + offset;
        int64_t recorded = view->header.recorded_time_unix_ns;
        if (position >= limit) {
          // Not yet published (or after the as-of point): forward, nothing
          // later in the stream can be visible either.
          if (forward) return std::optional<uint64_t>(revision);
        } else if (!hidden_by(state, revision, recorded, now)) {
          emitted++;
          stop = !emit(event, position, recorded) || emitted >= options.max_count;
        }
        if (forward) {
          revision++;
          in_range = revision <= last;
        } else {
          in_range = revision > lowest;
          revision--;
        }
      }
    }
    if (revision == revision_before && in_range) {
      return make_error(ErrorCode::kDataLoss, "the stream index of " + std::string(stream) +
                                                  " has a gap at revision " +
                                                  std::to_string(revision));
    }
  }
  return in_range ? std::optional<uint64_t>(revision) : std::nullopt;
}

Result<ReadStreamResult> StoreImpl::read_stream(std::string_view stream,
                                                const ReadStreamOptions& options) {
  ReadStreamResult result;
  result.events.reserve(std::min<uint32_t>(options.max_count, 1024));
  VL_TRY(next,
         stream_pass(stream, options,
                     [&](const log::EventView& event, uint64_t position, int64_t recorded) {
                       result.events.push_back(log::to_recorded_event(event, position, recorded));
                       return true;
                     }));
  result.next_revision = next;
  return result;
}

Result<std::optional<uint64_t>> StoreImpl::visit_stream(std::string_view stream,
                                                        const ReadStreamOptions& options,
                                                        const EventVisitor& visitor) {
  return stream_pass(stream, options,
                     [&](const log::EventView& event, uint64_t position, int64_t recorded) {
                       return visitor(to_event_ref(event, position, recorded));
                     });
}

Result<RecordedEvent> StoreImpl::read_event(const Uuid& id) {
  std::optional<uint64_t> position = index::positional_id_position(log_->store_tag(), id);
  if (position && *position < indexed_position_.load()) {
    VL_TRY(event, event_at(*position));
    if (event && event->id == id) {
      if (event->stream.starts_with('$') ||
          !event_visible(event->stream, event->revision, event->recorded_time_unix_ns)) {
        return make_error(ErrorCode::kNotFound, "event " + id.to_string() + " not found");
      }
      return std::move(*event);
    }
  }
  VL_TRY(indexed, index_->event_position(id));
  position = indexed;
  if (!position || *position >= indexed_position_.load()) {
    return make_error(ErrorCode::kNotFound, "event " + id.to_string() + " not found");
  }
  VL_TRY(event, event_at(*position));
  if (!event || event->id != id || event->stream.starts_with('$') ||
      !event_visible(event->stream, event->revision, event->recorded_time_unix_ns)) {
    return make_error(ErrorCode::kNotFound, "event " + id.to_string() + " not found");
  }
  return std::move(*event);
}

Result<std::optional<RecordedEvent>> StoreImpl::event_at(uint64_t position) {
  RecordCache cache(*log_, *index_);
  VL_TRY(view, cache.covering(position));
  if (view == nullptr) return std::optional<RecordedEvent>();
  const log::EventView& event = view->events[position - view->header.first_position];
  return std::optional<RecordedEvent>(
      log::to_recorded_event(event, position, view->header.recorded_time_unix_ns));
}

namespace {

// Candidate positions for a read of the global log, in read order. Either the
// whole log, or the runs of one or more index keys (merged).
class PositionSource {
 public:
  virtual ~PositionSource() = default;
  // The next candidate, or nullopt when the source is exhausted.
  virtual Result<std::optional<uint64_t>> next() = 0;
  // True if next() stopped because of its scan budget, not the end.
  virtual bool truncated() const { return false; }
  // Where to continue when truncated.
  virtual uint64_t resume_position() const { return 0; }
};

class AllPositions final : public PositionSource {
 public:
  AllPositions(uint64_t from, uint64_t limit, bool forward)
      : next_(from), limit_(limit), forward_(forward) {}
  Result<std::optional<uint64_t>> next() override {
    if (forward_ ? next_ >= limit_ : next_ == UINT64_MAX) return std::optional<uint64_t>();
    uint64_t position = next_;
    next_ = forward_ ? next_ + 1 : (next_ == 0 ? UINT64_MAX : next_ - 1);
    return std::optional<uint64_t>(position);
  }

 private:
  uint64_t next_;
  uint64_t limit_;
  bool forward_;
};

// Positions from index runs of one or more keys of one kind, merged in order.
class RunPositions final : public PositionSource {
 public:
  RunPositions(index::Index& index, index::RunKind kind, std::vector<std::string> keys,
               uint64_t from, bool forward, uint64_t budget)
      : index_(index),
        kind_(kind),
        keys_(std::move(keys)),
        from_(from),
        forward_(forward),
        budget_(budget) {}

  Result<std::optional<uint64_t>> next() override {
    if (!loaded_) VL_RETURN_IF_ERROR(load());
    if (cursor_ >= positions_.size()) return std::optional<uint64_t>();
    return std::optional<uint64_t>(positions_[cursor_++]);
  }
  bool truncated() const override { return truncated_; }
  uint64_t resume_position() const override { return resume_; }

 private:
  // Loads up to `budget_` positions per key; the merged list is exact up to
  // the smallest "furthest position" among truncated keys.
  Status load() {
    loaded_ = true;
    auto dir = forward_ ? Direction::kForward : Direction::kBackward;
    std::optional<uint64_t> horizon;  // positions beyond this may be missing
    for (const auto& key : keys_) {
      VL_TRY(runs, index_.runs(kind_, key, from_, dir, budget_));
      uint64_t loaded = 0;
      for (const auto& run : runs) {
        for (uint64_t k = 0; k < run.count; k++) {
          uint64_t p = forward_ ? run.first_position + k : run.first_position + run.count - 1 - k;
          if (forward_ ? p < from_ : p > from_) continue;
          positions_.push_back(p);
          loaded++;
        }
      }
      if (loaded >= budget_ && !positions_.empty()) {
        uint64_t furthest = positions_.back();
        horizon = horizon ? (forward_ ? std::min(*horizon, furthest) : std::max(*horizon, furthest))
                          : furthest;
      }
    }
    if (forward_) {
      std::sort(positions_.begin(), positions_.end());
    } else {
      std::sort(positions_.rbegin(), positions_.rend());
    }
    if (horizon) {
      truncated_ = true;
      resume_ = forward_ ? *horizon + 1 : (*horizon == 0 ? 0 : *horizon - 1);
      auto beyond = [&](uint64_t p) { return forward_ ? p > *horizon : p < *horizon; };
      positions_.erase(std::remove_if(positions_.begin(), positions_.end(), beyond),
                       positions_.end());
    }
    return ok_status();
  }

  index::Index& index_;
  index::RunKind kind_;
  std::vector<std::string> keys_;
  uint64_t from_;
  bool forward_;
  uint64_t budget_;
  bool loaded_ = false;
  bool truncated_ = false;
  uint64_t resume_ = 0;
  std::vector<uint64_t> positions_;
  size_t cursor_ = 0;
};

bool matches(const EventFilter& filter, const log::EventView& event) {
  if (!filter.types.empty() &&
      std::find(filter.types.begin(), filter.types.end(), event.type) == filter.types.end()) {
    return false;
  }
  if (!filter.category.empty() && index::category_of(event.stream) != filter.category) {
    return false;
  }
  if (!filter.subject.empty() && event.subject != filter.subject) return false;
  return filter.stream_prefix.empty() || event.stream.starts_with(filter.stream_prefix);
}

std::unique_ptr<PositionSource> choose_source(index::Index& index, const EventFilter& filter,
                                              uint64_t from, uint64_t limit, bool forward) {
  uint64_t budget = limits::kReadScanEventsMax;
  if (!filter.subject.empty()) {
    return std::make_unique<RunPositions>(index, index::RunKind::kSubject,
                                          std::vector<std::string>{filter.subject}, from, forward,
                                          budget);
  }
  if (!filter.types.empty()) {
    std::vector<std::string> types = filter.types;
    std::sort(types.begin(), types.end());
    types.erase(std::unique(types.begin(), types.end()), types.end());
    return std::make_unique<RunPositions>(index, index::RunKind::kType, std::move(types), from,
                                          forward, budget);
  }
  if (!filter.category.empty()) {
    return std::make_unique<RunPositions>(index, index::RunKind::kCategory,
                                          std::vector<std::string>{filter.category}, from, forward,
                                          budget);
  }
  return std::make_unique<AllPositions>(from, limit, forward);
}

}  // namespace

Result<StoreImpl::ScanResult> StoreImpl::scan_all(const ReadAllOptions& options) {
  ScanResult result;
  VL_TRY(scan,
         scan_pass(options, [&](const log::EventView& event, uint64_t position, int64_t recorded) {
           result.events.push_back(log::to_recorded_event(event, position, recorded));
           return true;
         }));
  result.end_position = scan.end_position;
  result.reached_end = scan.reached_end;
  return result;
}

Result<std::optional<uint64_t>> StoreImpl::visit_all(const ReadAllOptions& options,
                                                     const EventVisitor& visitor) {
  VL_TRY(scan,
         scan_pass(options, [&](const log::EventView& event, uint64_t position, int64_t recorded) {
           return visitor(to_event_ref(event, position, recorded));
         }));
  if (scan.reached_end) return std::optional<uint64_t>();
  return std::optional<uint64_t>(scan.end_position);
}

// Walks the global log from `options.from_position`, calling `emit` for each
// matching, visible event until max_count were emitted, `emit` returns false
// or the scan budget is spent. Reports where to continue.
Result<StoreImpl::ScanResult> StoreImpl::scan_pass(const ReadAllOptions& options,
                                                   const Emit& emit) {
  VL_RETURN_IF_ERROR(validate_count(options.max_count));
  if (options.filter.types.size() > 100) return invalid("at most 100 event types per filter");
  VL_TRY(limit, resolve_as_of(options.as_of_position, options.as_of_time_unix_ns));
  bool forward = options.direction == Direction::kForward;
  ScanResult result;
  result.reached_end = true;
  result.end_position = forward ? std::max(options.from_position, limit) : 0;
  if (limit == 0 || (forward && options.from_position >= limit)) return result;
  uint64_t from = forward ? options.from_position : std::min(options.from_position, limit - 1);
  auto source = choose_source(*index_, options.filter, from, limit, forward);
  RecordCache cache(*log_, *index_);
  uint64_t examined = 0;
  uint32_t emitted = 0;
  std::optional<uint64_t> last_examined;
  bool stopped_early = false;
  bool stop = false;
  for (;;) {
    VL_TRY(candidate, source->next());
    if (!candidate || (forward && *candidate >= limit)) break;
    if (!forward && *candidate >= limit) continue;
    if (examined >= limits::kReadScanEventsMax || stop) {
      stopped_early = true;
      break;
    }
    examined++;
    last_examined = *candidate;
    VL_TRY(view, cache.covering(*candidate));
    if (view == nullptr) {
      return make_error(ErrorCode::kDataLoss,
                        "position " + std::to_string(*candidate) + " is missing from the index");
    }
    const log::EventView& event = view->events[*candidate - view->header.first_position];
    int64_t recorded = view->header.recorded_time_unix_ns;
    if (matches(options.filter, event) && event_visible(event.stream, event.revision, recorded)) {
      emitted++;
      stop = !emit(event, *candidate, recorded) || emitted >= options.max_count;
    }
  }
  bool more = stopped_early || source->truncated();
  if (more && last_examined && (forward || *last_examined > 0)) {
    result.reached_end = false;
    result.end_position = forward ? *last_examined + 1 : *last_examined - 1;
  } else if (more && !last_examined) {
    // The source ran out of budget before yielding anything in range.
    result.reached_end = false;
    result.end_position = source->resume_position();
  }
  return result;
}

Result<ReadAllResult> StoreImpl::read_all(const ReadAllOptions& options) {
  VL_TRY(scan, scan_all(options));
  ReadAllResult result;
  result.events = std::move(scan.events);
  if (!scan.reached_end) result.next_position = scan.end_position;
  return result;
}

}  // namespace vellum::store
