// SPDX-License-Identifier: Apache-2.0
// The Projections engine: one thread per running projection.
//
// A projection's thread alternates between two phases. Catch-up reads its
// source zero-copy (Store::visit_all / visit_stream) from the in-memory
// cursor `next`, batch_events matching events per sink transaction. When a
// read reaches the end, the thread opens a live Subscription starting at
// exactly that `next`; the subscription's cursor only advances past events it
// returned or examined, so the switch has no gap and no duplicate. If the
// subscription ever reports that it is not caught up (the projection fell
// behind), the thread drops it and catches up zero-copy again.
//
// Checkpoints: after each batch that applied events, the sink commits the
// batch with `next` = the position (revision) of the first event not yet
// examined. Stretches without matching events (filters) advance `next` too,
// but are checkpointed only every kIdleCheckpointEvents events or
// kIdleCheckpointInterval, and when the projection stops: replaying events
// that match nothing costs only a scan.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "vellum/projection.h"

#include "base/assert.h"
#include "base/clock.h"
#include "base/limits.h"

namespace vellum {
namespace {

constexpr size_t kProjectionNameBytesMax = 128;
// How long a live subscription waits for new events before the thread checks
// whether it was asked to stop (stop() also cancels the subscription).
constexpr std::chrono::milliseconds kLiveWaitTimeout{100};
// Checkpointing stretches of events that match nothing: at most this often.
constexpr uint64_t kIdleCheckpointEvents = 10'000;
constexpr int64_t kIdleCheckpointIntervalNs = 1'000'000'000;

bool valid_projection_name(std::string_view name) {
  if (name.empty() || name.size() > kProjectionNameBytesMax) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

EventRef to_event_ref(const RecordedEvent& event) {
  return EventRef{event.id,
                  event.stream,
                  event.revision,
                  event.position,
                  event.type,
                  event.content_type,
                  event.data,
                  event.metadata,
                  event.correlation_id,
                  event.causation_id,
                  event.subject,
                  event.occurrence_time_unix_ns,
                  event.recorded_time_unix_ns,
                  event.schema_version,
                  event.key_id};
}

// One registered projection. Entries are never removed, so pointers to them
// stay valid for the engine's lifetime.
struct Entry {
  // Set by add(), then read-only.
  std::string name;
  ProjectionSource source;
  uint32_t batch_events = 0;
  std::string kind;

  // Used by the projection's thread while it runs; by control calls (under
  // the engine's control mutex) only while no thread runs, i.e. after join().
  std::unique_ptr<ProjectionSink> sink;
  std::thread thread;
  std::atomic<bool> stop_requested{false};

  // The status, shared between the thread and readers.
  std::mutex mutex;
  std::condition_variable changed;  // notified whenever position or state change
  ProjectionState state = ProjectionState::kStopped;
  uint64_t position = 0;  // next position (revision) to examine
  uint64_t events_processed = 0;
  std::string error;
  std::optional<uint64_t> failed_position;
  Subscription* live = nullptr;  // the live subscription, for stop() to cancel

  bool is_stream_source() const { return !source.stream.empty(); }
};

// The body of one projection thread, from start() until it stops or fails.
class ProjectionRun {
 public:
  ProjectionRun(Store& store, Entry& entry, uint64_t checkpoint)
      : store_(store),
        entry_(entry),
        sink_(*entry.sink),
        next_(checkpoint),
        persisted_(checkpoint),
        persisted_at_ns_(system_clock()->monotonic_ns()) {}

  void run() {
    try {
      if (!run_phases()) return;  // failed: fail() published the state
      // Stopping: keep the progress made over events that matched nothing.
      if (!write_idle_checkpoint(/*force=*/true)) return;
      std::lock_guard lock(entry_.mutex);
      entry_.state = ProjectionState::kStopped;
      entry_.changed.notify_all();
    } catch (const std::exception& e) {
      // Sinks and handlers should return errors; an escaped exception still
      // must not take the process down.
      if (batch_begun_) sink_.abort();
      fail(Error{ErrorCode::kInternal, std::string("exception: ") + e.what(), std::nullopt},
           std::nullopt);
    }
  }

 private:
  enum class Step : uint8_t { kMore, kAtEnd, kStopped, kFailed };

  // Returns false when the projection failed.
  bool run_phases() {
    while (!entry_.stop_requested.load()) {
      Step step = catch_up_batch();
      if (step == Step::kFailed) return false;
      if (step == Step::kAtEnd) step = live();
      if (step == Step::kFailed) return false;
    }
    return true;
  }

  // Reads and applies up to batch_events events zero-copy from `next_`.
  Step catch_up_batch() {
    uint64_t head = store_.head_position();  // visit_all reads at least this far
    last_applied_.reset();
    Result<std::optional<uint64_t>> visited;
    auto visitor = [this](const EventRef& event) { return apply_one(event); };
    if (entry_.is_stream_source()) {
      ReadStreamOptions options;
      options.from_revision = next_;
      options.max_count = entry_.batch_events;
      visited = store_.visit_stream(entry_.source.stream, options, visitor);
      // A stream that does not exist (yet, or after a soft delete) has nothing to read.
      if (!visited && visited.error().code == ErrorCode::kNotFound) {
        visited = std::optional<uint64_t>();
      }
    } else {
      ReadAllOptions options;
      options.from_position = next_;
      options.max_count = entry_.batch_events;
      options.filter = entry_.source.filter;
      visited = store_.visit_all(options, visitor);
    }
    if (handler_error_) return fail_batch(std::nullopt);
    if (!visited) return fail_batch(visited.error());
    bool at_end = !visited->has_value();
    uint64_t next = at_end ? next_ : **visited;
    if (last_applied_) next = std::max(next, *last_applied_ + 1);
    // At the end of a log read, every event before `head` was examined.
    if (at_end && !entry_.is_stream_source()) next = std::max(next, head);
    if (!finish_batch(next)) return Step::kFailed;
    return at_end ? Step::kAtEnd : Step::kMore;
  }

  // Follows the source live until stopped, failed, or behind (back to catch-up).
  Step live() {
    SubscriptionOptions options;
    options.stream = entry_.source.stream;
    if (!entry_.is_stream_source()) options.filter = entry_.source.filter;
    options.from = next_;
    auto subscription = store_.subscribe(options);
    if (!subscription) {
      fail(subscription.error(), std::nullopt);
      return Step::kFailed;
    }
    set_live(subscription->get());
    Step step = follow(**subscription);
    set_live(nullptr);
    return step;
  }

  Step follow(Subscription& subscription) {
    while (!entry_.stop_requested.load()) {
      auto batch = subscription.next(entry_.batch_events, kLiveWaitTimeout);
      if (!batch) {
        if (batch.error().code == ErrorCode::kCancelled && entry_.stop_requested.load()) break;
        fail(batch.error(), std::nullopt);
        return Step::kFailed;
      }
      last_applied_.reset();
      for (const RecordedEvent& event : batch->events) {
        if (!apply_one(to_event_ref(event))) return fail_batch(std::nullopt);
      }
      VL_ASSERT(batch->next >= next_);
      if (!finish_batch(batch->next)) return Step::kFailed;
      if (!batch->caught_up) return Step::kMore;  // behind: catch up zero-copy
    }
    return Step::kStopped;
  }

  // The visitor: begins the sink's batch at its first event, applies `event`.
  // Returns false (stop reading) when the sink fails.
  bool apply_one(const EventRef& event) {
    uint64_t key = entry_.is_stream_source() ? event.revision : event.position;
    VL_ASSERT(key >= next_);
    if (!batch_begun_) {
      Status begun = sink_.begin();
      if (!begun) {
        handler_error_ = begun.error();
        return false;
      }
      batch_begun_ = true;
    }
    Status applied = sink_.apply(event);
    if (!applied) {
      handler_error_ = applied.error();
      failed_at_ = key;
      return false;
    }
    last_applied_ = key;
    batch_applied_++;
    return true;
  }

  // The sink (handler_error_ set) or else the read (`read_error`) failed: roll
  // the batch back and publish the failure. The checkpoint stays before it.
  Step fail_batch(const std::optional<Error>& read_error) {
    if (batch_begun_) sink_.abort();
    batch_begun_ = false;
    batch_applied_ = 0;
    if (handler_error_) {
      fail(*handler_error_, failed_at_);
    } else {
      VL_ASSERT(read_error.has_value());
      fail(*read_error, std::nullopt);
    }
    return Step::kFailed;
  }

  // Commits the batch in hand (if any) with checkpoint `next` and publishes
  // the progress. Returns false when the projection failed.
  bool finish_batch(uint64_t next) {
    VL_ASSERT(next >= next_);
    if (batch_begun_) {
      batch_begun_ = false;
      Status committed = sink_.commit(next);
      if (!committed) {
        fail(committed.error(), std::nullopt);
        return false;
      }
      persisted_ = next;
      persisted_at_ns_ = system_clock()->monotonic_ns();
    }
    next_ = next;
    uint64_t applied = std::exchange(batch_applied_, 0);
    if (!write_idle_checkpoint(/*force=*/false)) return false;
    std::lock_guard lock(entry_.mutex);
    entry_.position = next_;
    entry_.events_processed += applied;
    entry_.changed.notify_all();
    return true;
  }

  // Checkpoints progress over events that matched nothing, when due (or now).
  bool write_idle_checkpoint(bool force) {
    if (next_ <= persisted_) return true;
    int64_t now_ns = system_clock()->monotonic_ns();
    bool due = force || next_ - persisted_ >= kIdleCheckpointEvents ||
               now_ns - persisted_at_ns_ >= kIdleCheckpointIntervalNs;
    if (!due) return true;
    Status status = sink_.begin();
    if (status) status = sink_.commit(next_);
    if (!status) {
      sink_.abort();
      fail(status.error(), std::nullopt);
      return false;
    }
    persisted_ = next_;
    persisted_at_ns_ = now_ns;
    return true;
  }

  void set_live(Subscription* subscription) {
    std::lock_guard lock(entry_.mutex);
    entry_.live = subscription;
    // stop() may have run before the subscription existed: honour it now.
    if (subscription != nullptr && entry_.stop_requested.load()) subscription->cancel();
  }

  void fail(const Error& error, std::optional<uint64_t> failed_position) {
    std::lock_guard lock(entry_.mutex);
    entry_.state = ProjectionState::kFailed;
    entry_.error = std::string(error_code_name(error.code)) + ": " + error.message;
    entry_.failed_position = failed_position;
    entry_.changed.notify_all();
  }

  Store& store_;
  Entry& entry_;
  ProjectionSink& sink_;
  uint64_t next_;       // next position (revision) to examine
  uint64_t persisted_;  // the checkpoint the sink holds
  int64_t persisted_at_ns_;
  // The batch in hand.
  bool batch_begun_ = false;
  uint64_t batch_applied_ = 0;
  std::optional<uint64_t> last_applied_;
  std::optional<Error> handler_error_;
  std::optional<uint64_t> failed_at_;
};

}  // namespace

const char* projection_state_name(ProjectionState state) {
  switch (state) {
    case ProjectionState::kStopped:
      return "stopped";
    case ProjectionState::kRunning:
      return "running";
    case ProjectionState::kFailed:
      return "failed";
  }
  return "unknown";
}

struct Projections::Impl {
  explicit Impl(Store& store_in) : store(store_in) {}

  Store& store;
  // Serializes add/start/stop/reset/rebuild and the destructor, so that a
  // thread is started and joined by one caller at a time.
  std::mutex control_mutex;
  // Guards `entries` (the map; each Entry guards its own status).
  std::mutex map_mutex;
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> entries;

  Entry* find(std::string_view name) {
    std::lock_guard lock(map_mutex);
    auto it = entries.find(name);
    return it == entries.end() ? nullptr : it->second.get();
  }

  static tl::unexpected<Error> not_found(std::string_view name) {
    return make_error(ErrorCode::kNotFound, "no projection named '" + std::string(name) + "'");
  }

  // REQUIRES: control_mutex held.
  Status start(Entry& entry) {
    if (entry.thread.joinable()) {
      {
        std::lock_guard lock(entry.mutex);
        if (entry.state == ProjectionState::kRunning) return ok_status();
      }
      entry.thread.join();  // it ended by failing
    }
    VL_TRY(checkpoint, entry.sink->load_checkpoint());
    // A read model ahead of the log: the log lost acknowledged events (durability
    // batch or none, then a power loss) after the read model saw them. Resuming
    // would skip the events written at those positions again: the projection
    // fails, visibly, until it is reset or rebuilt.
    if (!entry.is_stream_source() && checkpoint > store.head_position()) {
      std::lock_guard lock(entry.mutex);
      entry.state = ProjectionState::kFailed;
      entry.position = checkpoint;
      entry.error = "the checkpoint " + std::to_string(checkpoint) +
                    " is ahead of the log's head " + std::to_string(store.head_position()) +
                    " (the log lost its tail?): reset or rebuild the projection";
      entry.failed_position = checkpoint;
      entry.changed.notify_all();
      return ok_status();
    }
    {
      std::lock_guard lock(entry.mutex);
      entry.state = ProjectionState::kRunning;
      entry.position = checkpoint;
      entry.error.clear();
      entry.failed_position.reset();
      entry.changed.notify_all();
    }
    entry.stop_requested.store(false);
    entry.thread =
        std::thread([this, &entry, checkpoint] { ProjectionRun(store, entry, checkpoint).run(); });
    return ok_status();
  }

  // REQUIRES: control_mutex held. A failed projection stays kFailed.
  void stop(Entry& entry) {
    if (!entry.thread.joinable()) return;
    entry.stop_requested.store(true);
    {
      std::lock_guard lock(entry.mutex);
      if (entry.live != nullptr) entry.live->cancel();
    }
    entry.thread.join();
    std::lock_guard lock(entry.mutex);
    VL_ASSERT(entry.state != ProjectionState::kRunning);
  }

  // REQUIRES: control_mutex held.
  Status reset(Entry& entry) {
    stop(entry);
    VL_RETURN_IF_ERROR(entry.sink->reset());
    std::lock_guard lock(entry.mutex);
    entry.state = ProjectionState::kStopped;
    entry.position = 0;
    entry.events_processed = 0;
    entry.error.clear();
    entry.failed_position.reset();
    entry.changed.notify_all();
    return ok_status();
  }

  ProjectionStatus status(Entry& entry) {
    ProjectionStatus status;
    {
      std::lock_guard lock(entry.mutex);
      status.name = entry.name;
      status.kind = entry.kind;
      status.state = entry.state;
      status.position = entry.position;
      status.events_processed = entry.events_processed;
      status.error = entry.error;
      status.failed_position = entry.failed_position;
    }
    add_lag(entry, status);
    return status;
  }

  // Lag is measured against the store now; read errors leave it at 0 (status
  // must answer even when the log is unreadable: the projection shows why).
  void add_lag(const Entry& entry, ProjectionStatus& status) {
    int64_t first_unexamined_recorded_ns = 0;
    auto remember_time = [&](const EventRef& event) {
      first_unexamined_recorded_ns = event.recorded_time_unix_ns;
      return false;
    };
    if (entry.is_stream_source()) {
      auto info = store.stream_info(entry.source.stream);
      if (!info || info->last_revision == kNoRevision) return;
      uint64_t end = static_cast<uint64_t>(info->last_revision) + 1;
      if (end <= status.position) return;
      status.lag_events = end - status.position;
      ReadStreamOptions options{.from_revision = status.position, .max_count = 1};
      (void)store.visit_stream(entry.source.stream, options, remember_time);
    } else {
      uint64_t head = store.head_position();
      if (head <= status.position) return;
      status.lag_events = head - status.position;
      ReadAllOptions options{.from_position = status.position, .max_count = 1};
      (void)store.visit_all(options, remember_time);
    }
    if (first_unexamined_recorded_ns == 0) return;
    int64_t age_ns = system_clock()->now_unix_ns() - first_unexamined_recorded_ns;
    status.lag_ms = std::max<int64_t>(0, age_ns / 1'000'000);
  }
};

Projections::Projections(Store& store) : impl_(std::make_unique<Impl>(store)) {}

Projections::~Projections() {
  std::lock_guard control(impl_->control_mutex);
  for (auto& [name, entry] : impl_->entries) impl_->stop(*entry);
}

Status Projections::add(ProjectionSpec spec) {
  if (!valid_projection_name(spec.name)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "projection names are 1-128 characters of [A-Za-z0-9_.-]");
  }
  if (spec.sink == nullptr) return make_error(ErrorCode::kInvalidArgument, "no sink");
  if (spec.batch_events == 0 || spec.batch_events > limits::kReadEventsMax) {
    return make_error(ErrorCode::kInvalidArgument, "batch_events must be 1..kReadEventsMax");
  }
  if (!spec.source.stream.empty() && !spec.source.filter.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "a stream source takes no filter; filter the log instead");
  }
  std::lock_guard control(impl_->control_mutex);
  if (impl_->find(spec.name) != nullptr) {
    return make_error(ErrorCode::kAlreadyExists, "projection '" + spec.name + "' exists");
  }
  VL_TRY(checkpoint, spec.sink->load_checkpoint());
  auto entry = std::make_unique<Entry>();
  entry->name = spec.name;
  entry->source = std::move(spec.source);
  entry->batch_events = spec.batch_events;
  entry->kind = std::string(spec.sink->kind());
  entry->sink = std::move(spec.sink);
  entry->position = checkpoint;
  Entry& added = *entry;
  {
    std::lock_guard lock(impl_->map_mutex);
    impl_->entries.emplace(spec.name, std::move(entry));
  }
  if (spec.start) return impl_->start(added);
  return ok_status();
}

Status Projections::start(std::string_view name) {
  std::lock_guard control(impl_->control_mutex);
  Entry* entry = impl_->find(name);
  if (entry == nullptr) return Impl::not_found(name);
  return impl_->start(*entry);
}

Status Projections::stop(std::string_view name) {
  std::lock_guard control(impl_->control_mutex);
  Entry* entry = impl_->find(name);
  if (entry == nullptr) return Impl::not_found(name);
  impl_->stop(*entry);
  return ok_status();
}

Status Projections::reset(std::string_view name) {
  std::lock_guard control(impl_->control_mutex);
  Entry* entry = impl_->find(name);
  if (entry == nullptr) return Impl::not_found(name);
  return impl_->reset(*entry);
}

Status Projections::rebuild(std::string_view name) {
  std::lock_guard control(impl_->control_mutex);
  Entry* entry = impl_->find(name);
  if (entry == nullptr) return Impl::not_found(name);
  VL_RETURN_IF_ERROR(impl_->reset(*entry));
  return impl_->start(*entry);
}

Result<ProjectionStatus> Projections::status(std::string_view name) {
  Entry* entry = impl_->find(name);
  if (entry == nullptr) return Impl::not_found(name);
  return impl_->status(*entry);
}

std::vector<ProjectionStatus> Projections::list() {
  std::vector<Entry*> entries;
  {
    std::lock_guard lock(impl_->map_mutex);
    for (auto& [name, entry] : impl_->entries) entries.push_back(entry.get());
  }
  std::vector<ProjectionStatus> statuses;
  statuses.reserve(entries.size());
  for (Entry* entry : entries) statuses.push_back(impl_->status(*entry));
  return statuses;
}

Result<std::string> Projections::kind(std::string_view name) {
  Entry* entry = impl_->find(name);
  if (entry == nullptr) return Impl::not_found(name);
  return entry->kind;
}

Result<ProjectionStatus> Projections::wait_for(std::string_view name, uint64_t position,
                                               std::chrono::milliseconds timeout) {
  Entry* entry = impl_->find(name);
  if (entry == nullptr) return Impl::not_found(name);
  {
    std::unique_lock lock(entry->mutex);
    entry->changed.wait_for(lock, timeout, [&] {
      return entry->position >= position || entry->state != ProjectionState::kRunning;
    });
  }
  return impl_->status(*entry);
}

}  // namespace vellum
