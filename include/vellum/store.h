// SPDX-License-Identifier: Apache-2.0
// The embedded event store: a durable, append-only log of events grouped in
// streams, with optimistic concurrency, indexed reads, time travel and
// subscriptions. This is the library a program links to use Vellum without a
// server; the server is a thin adapter over exactly this interface.
//
// Vocabulary (see ARCHITECTURE.md, "Glossary"): a *stream* is a named
// sequence of events; an event's *revision* is its 0-based index in its
// stream; its *position* is its 0-based index in the whole log. Positions are
// dense and strictly increasing in commit order. The *category* of a stream is
// its name up to the first '-' ("order-17" -> "order"). Names starting with
// '$' are reserved for the store.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vellum/event.h"
#include "vellum/options.h"
#include "vellum/result.h"
#include "vellum/uuid.h"

namespace vellum {

enum class Direction : uint8_t { kForward, kBackward };

// Called with each event of a zero-copy read; returns false to stop.
using EventVisitor = std::function<bool(const EventRef&)>;

// Use as a revision or position to mean "from the end" in backward reads.
inline constexpr uint64_t kEnd = UINT64_MAX;

struct ReadStreamOptions {
  Direction direction = Direction::kForward;
  // First revision to return. For backward reads, kEnd = the newest.
  uint64_t from_revision = 0;
  uint32_t max_count = 100;  // at most kReadEventsMax
  // Time travel: read the stream as it was when the log ended before this
  // position (exclusive), or at this time (events recorded at or before it).
  std::optional<uint64_t> as_of_position;
  std::optional<int64_t> as_of_time_unix_ns;
};

struct ReadStreamResult {
  std::vector<RecordedEvent> events;
  // The revision to pass as `from_revision` to continue, or nullopt at the end.
  std::optional<uint64_t> next_revision;
};

// Selects events of the global log. Unset fields select everything; set
// fields must all match. Events of reserved '$' streams are never returned.
struct EventFilter {
  std::vector<std::string> types;  // any of these event types
  std::string category;            // stream category
  std::string subject;             // events about this person
  std::string stream_prefix;       // stream names starting with this
  bool empty() const {
    return types.empty() && category.empty() && subject.empty() && stream_prefix.empty();
  }
};

struct ReadAllOptions {
  Direction direction = Direction::kForward;
  // First position to consider. For backward reads, kEnd = the newest.
  uint64_t from_position = 0;
  uint32_t max_count = 100;  // at most kReadEventsMax
  EventFilter filter;
  std::optional<uint64_t> as_of_position;  // exclusive: see ReadStreamOptions
  std::optional<int64_t> as_of_time_unix_ns;
};

struct ReadAllResult {
  std::vector<RecordedEvent> events;
  // The position to pass as `from_position` to continue, or nullopt at the
  // end. A filtered read examines at most kReadScanEventsMax events per call,
  // so it may return fewer than max_count events (even none) with a `next`.
  std::optional<uint64_t> next_position;
};

// Where a subscription starts.
struct SubscriptionOptions {
  // Exactly one of: a stream name, or (stream empty) the whole log filtered
  // by `filter` (a category subscription is filter.category).
  std::string stream;
  EventFilter filter;
  // First revision (stream) or position (log) to deliver. nullopt = live only:
  // start after the events committed when subscribe() is called.
  std::optional<uint64_t> from;
};

// One delivery: zero or more events, in order, and whether the subscriber has
// caught up with the head of the log as of this batch.
struct SubscriptionBatch {
  std::vector<RecordedEvent> events;
  bool caught_up = false;
  // The next revision (stream) or position (log) the subscription will read.
  uint64_t next = 0;
};

// A pull-based subscription. It reads from the store at its own pace: catching
// up from disk, then waiting for new commits. Delivery is in order, with no
// gap and no duplicate, including across the switch from catch-up to live.
// A subscriber that falls behind never blocks writers and holds no queue:
// memory per subscription is bounded by one batch.
//
// Thread safety: next() from one thread at a time; cancel() from any thread.
// Lifetime: must be destroyed before the Store that created it.
class Subscription {
 public:
  virtual ~Subscription() = default;

  // Returns up to `max_count` events. Blocks until at least one event is
  // available, the subscription is cancelled or `timeout` passes; then returns
  // what it has (possibly no events). `caught_up` is set when the batch ends
  // at the head of the log.
  //
  // Errors:
  //   kCancelled      cancel() was called or the store is closing
  //   kNotFound       (stream subscriptions) never: waits for the stream
  //   kStreamDeleted  the stream was tombstoned
  //   kDataLoss/kIoError  the log could not be read
  virtual Result<SubscriptionBatch> next(uint32_t max_count, std::chrono::milliseconds timeout) = 0;

  // Wakes a blocked next() and makes every later call return kCancelled.
  virtual void cancel() = 0;
};

// Counters for monitoring. Monotonic since open, except the gauges.
struct StoreStats {
  uint64_t appends = 0;  // successful append calls (incl. idempotent replays)
  uint64_t events_written = 0;
  uint64_t bytes_written = 0;  // log bytes, framing included
  uint64_t fsyncs = 0;
  uint64_t commit_groups = 0;  // group commits; events_written / commit_groups = batch size
  // Group commits by events per group: bucket i counts groups of at most 4^i
  // events (1, 4, 16, ...); the last bucket counts all larger ones.
  static constexpr size_t kGroupSizeBuckets = 8;
  std::array<uint64_t, kGroupSizeBuckets> commit_group_events_buckets{};
  uint64_t head_position = 0;  // gauge: next position to be assigned (written, maybe not visible)
  uint64_t indexed_position = 0;  // gauge: events visible to readers
  uint64_t log_size_bytes = 0;    // gauge
  uint64_t segments = 0;          // gauge
  uint64_t streams_cached = 0;    // gauge
  // What recovery did on open: the index was found stale (ahead of the log or
  // not chaining onto it) and rebuilt; bytes of a torn tail were cut (kept in
  // `<segment>.torn-<offset>`).
  bool index_rebuilt_on_open = false;
  uint64_t torn_bytes_cut_on_open = 0;
};

// Store is the embedded event store.
//
// Thread safety: every method may be called concurrently from any number of
// threads. Appends are serialized by one internal writer thread and grouped:
// concurrent appends share one fdatasync.
//
// Ownership: open() returns the only owner. Destroying the Store waits for
// in-flight appends, stops its threads and flushes the index; Subscriptions
// must be destroyed first.
class Store {
 public:
  virtual ~Store() = default;

  // Opens (or with options.create_if_missing creates) the store in directory
  // `path`. Recovers the log: a torn record at the tail of the newest segment
  // is truncated; any other damage fails the open. Then brings the index up to
  // date by replaying the log from the index's checkpoint.
  //
  // Errors:
  //   kInvalidArgument  bad options
  //   kNotFound         no store at `path` and create_if_missing is false
  //   kDataLoss         a damaged record that is not a torn tail; the message
  //                     names the file and byte offset. Nothing is repaired.
  //   kFailedPrecondition  the files were written by a newer, incompatible
  //                     format version, or another process holds the lock
  //   kIoError          the OS failed
  static Result<std::unique_ptr<Store>> open(const std::string& path, const StoreOptions& options);

  // Appends `events` to `stream` atomically: all of them or none, with
  // consecutive revisions. Blocks until durable per options.durability.
  //
  // Idempotency: if every event id was already written, by an earlier append
  // of the same events to the same stream at the same revisions, returns that
  // append's result (idempotent_replay = true) and writes nothing. Ids are
  // remembered for ever (the persistent id index).
  //
  // Errors (nothing is written in every case):
  //   kFailedPrecondition  wrong expected revision; error.conflict says the
  //                        actual one. Do not retry blindly: reload state.
  //   kAlreadyExists   an event id exists with different content or elsewhere
  //   kInvalidArgument a limit or a name rule is broken (ARCHITECTURE.md, Limits)
  //   kStreamDeleted   the stream is tombstoned
  //   kUnavailable     the writer failed (an fsync or write error): no more
  //                    appends until the store is reopened. Reads still work.
  //   kCancelled       the store is closing
  virtual Result<AppendResult> append(std::string_view stream, ExpectedRevision expected,
                                      std::span<const EventData> events) = 0;

  // Appends to several streams in one atomic, durable commit: every part is
  // checked, and either every part is written or none is. A stream may appear
  // at most once. Results are in the order of `appends`. Errors as append();
  // a conflict names the failing stream.
  virtual Result<std::vector<AppendResult>> append_multi(std::span<const StreamAppend> appends) = 0;

  // The asynchronous form of append_multi (one part = a plain append): checks
  // and encodes `appends` in the calling thread, queues them and returns at
  // once. `done` is called exactly once with what append_multi would have
  // returned, when the append is durable (per options.durability) or failed.
  // It may be called before append_async returns (invalid input) or on one of
  // the store's internal threads: it must be short and must not block or call
  // back into the Store (post the result to your own executor). A server uses
  // this so that one thread can have thousands of appends in flight.
  //
  // Errors, in addition to append_multi's:
  //   kResourceExhausted  the writer's queue is full (limits::kWriterQueueAppendsMax
  //                       appends): overloaded, retry later. append() waits instead.
  using AppendCallback = std::function<void(Result<std::vector<AppendResult>>)>;
  virtual void append_async(std::span<const StreamAppend> appends, AppendCallback done) = 0;

  // Reads events of one stream. Honours the stream's metadata (max age, max
  // count, truncate-before) and deletion.
  // Errors: kNotFound (no such stream, or soft-deleted), kStreamDeleted
  // (tombstoned), kInvalidArgument, kDataLoss/kIoError.
  virtual Result<ReadStreamResult> read_stream(std::string_view stream,
                                               const ReadStreamOptions& options) = 0;

  // Reads the global log, optionally filtered. Honours every stream's metadata
  // and deletion. Errors: kInvalidArgument, kDataLoss, kIoError.
  virtual Result<ReadAllResult> read_all(const ReadAllOptions& options) = 0;

  // Zero-copy reads: like read_stream / read_all, but instead of copying
  // events into a result they call `visitor` with a view of each (valid only
  // during the call; see EventRef). The visitor returns false to stop early.
  // Returns where to continue (a revision / a position), or nullopt at the
  // end. For scans and projections that touch millions of events.
  // Errors: as read_stream / read_all.
  virtual Result<std::optional<uint64_t>> visit_stream(std::string_view stream,
                                                       const ReadStreamOptions& options,
                                                       const EventVisitor& visitor) = 0;
  virtual Result<std::optional<uint64_t>> visit_all(const ReadAllOptions& options,
                                                    const EventVisitor& visitor) = 0;

  // The event with this id. Errors: kNotFound (never written, or hidden by its
  // stream's metadata or deletion), kDataLoss, kIoError.
  virtual Result<RecordedEvent> read_event(const Uuid& id) = 0;

  // The log position at a point in time: the number of events recorded at or
  // before `time_unix_ns`. Reading "as of" that position shows the log as it
  // was then.
  virtual Result<uint64_t> position_at(int64_t time_unix_ns) = 0;

  // What the store knows about a stream, deleted or not.
  // Errors: kNotFound (never written), kInvalidArgument.
  virtual Result<StreamInfo> stream_info(std::string_view stream) = 0;

  // Replaces the stream's metadata (durably, like an append). The stream need
  // not exist yet. Errors: kInvalidArgument, kStreamDeleted, kUnavailable.
  virtual Status set_stream_metadata(std::string_view stream, const StreamMetadata& metadata) = 0;

  // Deletes a stream. Soft (tombstone = false): its events are hidden and a
  // later append recreates it, continuing its revisions. Tombstone: permanent;
  // later appends fail with kStreamDeleted. `expected` as for append().
  // Errors: kFailedPrecondition, kNotFound, kStreamDeleted, kUnavailable.
  virtual Status delete_stream(std::string_view stream, ExpectedRevision expected,
                               bool tombstone) = 0;

  // Starts a subscription. Errors: kInvalidArgument.
  virtual Result<std::unique_ptr<Subscription>> subscribe(const SubscriptionOptions& options) = 0;

  // The position the next committed event will get (= number of events).
  virtual uint64_t head_position() = 0;

  virtual StoreStats stats() = 0;

  // Deletes the index and rebuilds it from the log. Requires that no other
  // call runs concurrently. `progress` (may be empty) is called now and then
  // with (events indexed, events total).
  static Status reindex(const std::string& path, const StoreOptions& options,
                        const std::function<void(uint64_t, uint64_t)>& progress);
};

}  // namespace vellum
