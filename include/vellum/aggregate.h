// SPDX-License-Identifier: Apache-2.0
// Aggregates and command handling on the event store: the decide/evolve model.
//
// An aggregate definition is a struct of types and static functions:
//
//   struct Order {
//     using Codec = EventCodec<OrderCreated, OrderConfirmed, OrderCancelled>;
//     using Event = Codec::Event;
//     struct State { ... };          // JSON-convertible if snapshots are wanted
//     using Command = std::variant<CreateOrder, ConfirmOrder, CancelOrder>;
//     static constexpr std::string_view kCategory = "order";  // streams "order-<id>"
//     static constexpr uint32_t kLogicVersion = 1;  // bump when evolve() changes
//     static State initial();
//     static State evolve(State state, const Event& event);
//     static Result<std::vector<Event>> decide(const State& state, const Command& command);
//   };
//
// decide() returns business-rule violations as errors (say kFailedPrecondition
// "order already delivered"), never exceptions. AggregateStore<Order> loads
// state (newest valid snapshot + the events after it), runs decide(), appends
// with the expected revision it loaded, and on a concurrency conflict reloads
// and decides again, a bounded number of times. A command id makes a retried
// command append at most once: its events get ids derived from (stream,
// command id, index), and a command whose first event already exists is
// answered from the log without calling decide() again.
//
// Snapshots (in a ToolkitDb) carry the revision they cover, the base revision
// (after a soft delete the stream restarts there) and kLogicVersion: a
// snapshot of another logic version or base is ignored, never misapplied.
// Streams whose metadata hides events by count or age (maxCount, maxAge) are
// loaded from their visible events without snapshots.
#pragma once

#include <atomic>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vellum/result.h"
#include "vellum/store.h"
#include "vellum/toolkit_db.h"
#include "vellum/typed_events.h"

namespace vellum {

template <class A>
concept AggregateDefinition = requires(typename A::State state,
                                       const typename A::Codec::Event& event,
                                       const typename A::Command& command) {
  { A::kCategory } -> std::convertible_to<std::string_view>;
  { A::kLogicVersion } -> std::convertible_to<uint32_t>;
  { A::initial() } -> std::same_as<typename A::State>;
  { A::evolve(std::move(state), event) } -> std::same_as<typename A::State>;
  { A::decide(state, command) } -> std::same_as<Result<std::vector<typename A::Codec::Event>>>;
};

// States that can be snapshotted: nlohmann::json conversions both ways.
template <class S>
concept JsonState = requires(const S& state, const Json& json) {
  {Json(state)};
  { json.get<S>() } -> std::same_as<S>;
};

struct SnapshotPolicy {
  // Write a snapshot when an append crosses a multiple of this many events
  // (counted from the stream's base revision). 0 = never by count.
  uint32_t every_events = 100;
  // Write a snapshot after a load that applied more than this many events.
  // 0 = never.
  uint32_t load_events_over = 100;
};

struct AggregateOptions {
  SnapshotPolicy snapshots;
  // Attempts of a command under concurrency conflicts before kAborted.
  uint32_t max_attempts = 5;
  // Skip events of types the codec does not know instead of failing the load
  // (for readers older than some writers). Off: an unknown type is an error.
  bool skip_unknown_event_types = false;
};

// An aggregate's state as loaded from the log.
template <class State>
struct Loaded {
  State state;
  std::string stream;
  // The last revision applied: the expected revision of the next append.
  // kNoRevision: the aggregate has no (visible) events yet.
  int64_t revision = kNoRevision;
  uint64_t events_applied = 0;                // read from the log by this load
  std::optional<uint64_t> snapshot_revision;  // the snapshot it started from
  int64_t last_recorded_time_unix_ns = 0;     // of the event at `revision`; 0 if none read
};

// Who and why, attached to every event a command appends.
struct CommandContext {
  std::string command_id;  // idempotency key; empty = none
  std::string correlation_id;
  std::string causation_id;
  std::string subject;                  // the person the events concern
  Json metadata = Json::object();       // merged into each event's metadata
  int64_t occurrence_time_unix_ns = 0;  // the client's clock; 0 = not given
};

template <class A>
struct CommandResult {
  typename A::State state;  // after the command
  int64_t revision = kNoRevision;
  std::vector<typename A::Codec::Event> events;  // appended now (empty on replay)
  std::optional<AppendResult> append;            // nullopt: decide() returned no events
  uint32_t attempts = 1;
  bool replayed = false;  // the command id had been applied before: nothing new written
};

struct AggregateStats {
  uint64_t loads = 0;
  uint64_t events_applied = 0;
  uint64_t snapshots_used = 0;
  uint64_t snapshots_written = 0;
  uint64_t snapshot_errors = 0;  // failed writes or undecodable snapshots (ignored)
  uint64_t conflicts = 0;        // concurrency conflicts retried
  uint64_t commands_replayed = 0;
};

namespace detail {

// The non-template parts of AggregateStore (src/toolkit/aggregate.cc).
struct StreamPlan {
  bool exists = false;                  // has visible events
  bool snapshots_usable = false;        // metadata hides nothing by count or age
  uint64_t base_revision = 0;           // truncate-before (a soft delete sets it)
  int64_t last_revision = kNoRevision;  // of the stream's newest event
};
// Errors: kStreamDeleted (tombstoned), the store's.
Result<StreamPlan> plan_load(Store& store, std::string_view stream);

// Visits the visible events of `stream` with revisions in [from, to] in order.
Status visit_revisions(Store& store, std::string_view stream, uint64_t from, uint64_t to,
                       const std::function<Status(const EventRef&)>& visit);

// The newest revision of `stream` recorded at or before `unix_ns`.
// Errors: kNotFound (none then), the store's.
Result<uint64_t> revision_at_time(Store& store, std::string_view stream, int64_t unix_ns);

// The id of event `index` of command `command_id` on `stream`: a UUIDv8 from
// SHA-256, so that a retry of the command writes the same ids.
Uuid command_event_id(std::string_view stream, std::string_view command_id, uint32_t index);

// The append that applied `command_id` to `stream`, if any.
Result<std::optional<AppendResult>> find_command(Store& store, std::string_view stream,
                                                 std::string_view command_id);

// Fills ids and context into encoded events.
void stamp_events(std::vector<EventData>& events, std::string_view stream,
                  const CommandContext& context);

Error with_context(Error error, std::string_view stream, uint64_t revision);

}  // namespace detail

// Loads aggregates of type A and handles their commands.
// Thread safety: every method may be called concurrently. The Store and the
// ToolkitDb (nullable: no snapshots) must outlive it.
template <AggregateDefinition A>
class AggregateStore {
 public:
  using State = typename A::State;
  using Event = typename A::Codec::Event;
  using Command = typename A::Command;

  AggregateStore(Store& store, ToolkitDb* snapshots, typename A::Codec codec = {},
                 AggregateOptions options = {})
      : store_(store), snapshots_(snapshots), codec_(std::move(codec)), options_(options) {}

  static std::string stream_of(std::string_view id) {
    return std::string(A::kCategory) + "-" + std::string(id);
  }

  // The current state. A new aggregate (no events) loads as A::initial() with
  // revision kNoRevision. Errors: kStreamDeleted, decoding errors naming the
  // stream and revision, the store's.
  Result<Loaded<State>> load(std::string_view id) { return load_until(stream_of(id), kEnd); }

  // The state as of `revision` (inclusive), from a snapshot at or before it
  // when one exists. Errors: kNotFound when the stream has no such revision.
  Result<Loaded<State>> load_at_revision(std::string_view id, uint64_t revision) {
    VL_TRY(loaded, load_until(stream_of(id), revision));
    if (loaded.revision != static_cast<int64_t>(revision)) {
      return make_error(ErrorCode::kNotFound, "stream '" + stream_of(id) + "' has no revision " +
                                                  std::to_string(revision));
    }
    return loaded;
  }

  // The state as it was at `unix_ns`: every event recorded at or before it.
  // Errors: kNotFound when the aggregate had no events then.
  Result<Loaded<State>> load_at_time(std::string_view id, int64_t unix_ns) {
    VL_TRY(revision, detail::revision_at_time(store_, stream_of(id), unix_ns));
    return load_until(stream_of(id), revision);
  }

  // One attempt: decide on `loaded` and append expecting its revision.
  // Errors: decide()'s own; kFailedPrecondition with a RevisionConflict when
  // the stream moved since `loaded`; the store's.
  Result<CommandResult<A>> execute(const Loaded<State>& loaded, const Command& command,
                                   const CommandContext& context = {}) {
    VL_TRY(events, A::decide(loaded.state, command));
    CommandResult<A> result{loaded.state, loaded.revision, {}, std::nullopt, 1, false};
    if (events.empty()) return result;
    std::vector<EventData> data;
    data.reserve(events.size());
    for (const Event& event : events) data.push_back(A::Codec::encode(event));
    detail::stamp_events(data, loaded.stream, context);
    ExpectedRevision expected =
        loaded.revision == kNoRevision
            ? ExpectedRevision::no_stream()
            : ExpectedRevision::exact(static_cast<uint64_t>(loaded.revision));
    VL_TRY(appended, store_.append(loaded.stream, expected, data));
    for (const Event& event : events) result.state = A::evolve(std::move(result.state), event);
    result.revision = static_cast<int64_t>(appended.last_revision);
    result.events = std::move(events);
    result.append = appended;
    maybe_snapshot_after_append(loaded, result);
    return result;
  }

  // Loads, decides and appends, reloading and deciding again after a
  // concurrency conflict (at most options.max_attempts times). With a
  // command id, a command applied before is answered from the log
  // (replayed = true) and never appended twice.
  // Errors: decide()'s (the business rule, after the latest reload);
  // kAborted after max_attempts conflicts; the store's.
  Result<CommandResult<A>> handle(std::string_view id, const Command& command,
                                  const CommandContext& context = {}) {
    const std::string stream = stream_of(id);
    for (uint32_t attempt = 1; attempt <= options_.max_attempts; ++attempt) {
      if (!context.command_id.empty()) {
        VL_TRY(applied, detail::find_command(store_, stream, context.command_id));
        if (applied) return replay(id, *applied, attempt);
      }
      VL_TRY(loaded, load(id));
      Result<CommandResult<A>> result = execute(loaded, command, context);
      if (result) {
        result->attempts = attempt;
        return result;
      }
      if (!is_retryable(result.error(), context)) return result;
      stats_.conflicts.fetch_add(1, std::memory_order_relaxed);
    }
    return make_error(ErrorCode::kAborted, "command on '" + stream + "' gave up after " +
                                               std::to_string(options_.max_attempts) +
                                               " concurrency conflicts");
  }

  AggregateStats stats() const {
    return AggregateStats{stats_.loads.load(),
                          stats_.events_applied.load(),
                          stats_.snapshots_used.load(),
                          stats_.snapshots_written.load(),
                          stats_.snapshot_errors.load(),
                          stats_.conflicts.load(),
                          stats_.commands_replayed.load()};
  }

  const typename A::Codec& codec() const { return codec_; }

 private:
  struct AtomicStats {
    std::atomic<uint64_t> loads{0}, events_applied{0}, snapshots_used{0}, snapshots_written{0},
        snapshot_errors{0}, conflicts{0}, commands_replayed{0};
  };

  static bool is_retryable(const Error& error, const CommandContext& context) {
    if (error.code == ErrorCode::kFailedPrecondition && error.conflict) return true;
    // The same command id raced in from elsewhere: the next attempt finds it.
    return error.code == ErrorCode::kAlreadyExists && !context.command_id.empty();
  }

  Result<CommandResult<A>> replay(std::string_view id, const AppendResult& applied,
                                  uint32_t attempt) {
    stats_.commands_replayed.fetch_add(1, std::memory_order_relaxed);
    VL_TRY(loaded, load(id));
    return CommandResult<A>{std::move(loaded.state), loaded.revision, {}, applied, attempt, true};
  }

  Result<Loaded<State>> load_until(const std::string& stream, uint64_t last_revision) {
    stats_.loads.fetch_add(1, std::memory_order_relaxed);
    Loaded<State> loaded{A::initial(), stream};
    VL_TRY(plan, detail::plan_load(store_, stream));
    if (!plan.exists) return loaded;
    uint64_t from = plan.base_revision;
    if (plan.snapshots_usable) {
      // Never past the stream's end: a snapshot ahead of the log (which lost
      // its tail: durability batch or none and a power loss) is ignored.
      const uint64_t newest =
          std::min<uint64_t>(last_revision, static_cast<uint64_t>(plan.last_revision));
      std::optional<Snapshot> snapshot = find_snapshot(stream, newest, plan.base_revision);
      if (snapshot && restore(*snapshot, loaded)) from = snapshot->revision + 1;
    }
    VL_RETURN_IF_ERROR(
        detail::visit_revisions(store_, stream, from, last_revision,
                                [&](const EventRef& ref) -> Status { return apply(ref, loaded); }));
    stats_.events_applied.fetch_add(loaded.events_applied, std::memory_order_relaxed);
    const uint32_t over = options_.snapshots.load_events_over;
    if (plan.snapshots_usable && over > 0 && loaded.events_applied > over) {
      write_snapshot(loaded.stream, plan.base_revision, loaded.state,
                     static_cast<uint64_t>(loaded.revision), loaded.last_recorded_time_unix_ns);
    }
    return loaded;
  }

  Status apply(const EventRef& ref, Loaded<State>& loaded) {
    Result<Event> event = codec_.decode(ref);
    if (!event) {
      if (event.error().code == ErrorCode::kNotFound && options_.skip_unknown_event_types) {
        loaded.revision = static_cast<int64_t>(ref.revision);
        return ok_status();
      }
      return tl::unexpected(
          detail::with_context(std::move(event).error(), ref.stream, ref.revision));
    }
    loaded.state = A::evolve(std::move(loaded.state), *event);
    loaded.revision = static_cast<int64_t>(ref.revision);
    loaded.last_recorded_time_unix_ns = ref.recorded_time_unix_ns;
    ++loaded.events_applied;
    return ok_status();
  }

  std::optional<Snapshot> find_snapshot(const std::string& stream, uint64_t last_revision,
                                        uint64_t base_revision) {
    if constexpr (JsonState<State>) {
      if (snapshots_ == nullptr) return std::nullopt;
      Result<std::optional<Snapshot>> found = snapshots_->find_snapshot(
          A::kCategory, stream, last_revision, A::kLogicVersion, base_revision);
      if (!found) {
        stats_.snapshot_errors.fetch_add(1, std::memory_order_relaxed);
        return std::nullopt;
      }
      return *found;
    } else {
      return std::nullopt;
    }
  }

  // Restores `loaded` from `snapshot`; false (and counted) if undecodable.
  bool restore(const Snapshot& snapshot, Loaded<State>& loaded) {
    if constexpr (JsonState<State>) {
      Json json = Json::parse(snapshot.state, nullptr, /*allow_exceptions=*/false);
      if (!json.is_discarded()) {
        try {
          loaded.state = json.get<State>();
          loaded.revision = static_cast<int64_t>(snapshot.revision);
          loaded.snapshot_revision = snapshot.revision;
          loaded.last_recorded_time_unix_ns = snapshot.recorded_time_unix_ns;
          stats_.snapshots_used.fetch_add(1, std::memory_order_relaxed);
          return true;
        } catch (const Json::exception&) {
          // Falls through: an undecodable snapshot is ignored, not an error.
        }
      }
      stats_.snapshot_errors.fetch_add(1, std::memory_order_relaxed);
    }
    return false;
  }

  void maybe_snapshot_after_append(const Loaded<State>& loaded, const CommandResult<A>& done) {
    const uint32_t every = options_.snapshots.every_events;
    if (snapshots_ == nullptr || every == 0 || !done.append) return;
    Result<detail::StreamPlan> plan = detail::plan_load(store_, loaded.stream);
    if (!plan || !plan->snapshots_usable) return;
    const uint64_t base = plan->base_revision;
    // Events since the base before and after this append: a snapshot is due
    // when the count crosses a multiple of `every`.
    const uint64_t before =
        loaded.revision == kNoRevision ? 0 : static_cast<uint64_t>(loaded.revision) + 1 - base;
    const uint64_t after = done.append->last_revision + 1 - base;
    if (after / every > before / every) {
      write_snapshot(loaded.stream, base, done.state, done.append->last_revision, 0);
    }
  }

  void write_snapshot(const std::string& stream, uint64_t base_revision, const State& state,
                      uint64_t revision, int64_t recorded_time_unix_ns) {
    if constexpr (JsonState<State>) {
      if (snapshots_ == nullptr) return;
      Snapshot snapshot{revision, base_revision, A::kLogicVersion, recorded_time_unix_ns,
                        Json(state).dump()};
      Status written = snapshots_->put_snapshot(A::kCategory, stream, snapshot);
      auto& counter = written ? stats_.snapshots_written : stats_.snapshot_errors;
      counter.fetch_add(1, std::memory_order_relaxed);
    }
  }

  Store& store_;
  ToolkitDb* snapshots_;
  typename A::Codec codec_;
  AggregateOptions options_;
  AtomicStats stats_;
};

}  // namespace vellum
