// SPDX-License-Identifier: Apache-2.0
// Projections: consumers of the log that maintain read models, each with a
// durable checkpoint, run by a Projections engine (one thread each).
//
// A projection reads its source (the whole log, filtered, or one stream) in
// order from its checkpoint, hands events to its sink in batches and records
// the new checkpoint with each batch. Sinks that have transactions (the
// key-value read model, PostgreSQL) write the batch's changes and the
// checkpoint in one transaction: every event takes effect exactly once, even
// across crashes. The callback sink is at-least-once: after a crash, the
// events after the last checkpoint are delivered again.
//
// A failing projection (its handler returns an error) stops: the batch is
// rolled back (transactional sinks), the checkpoint stays before the failing
// event, and the status shows the error and that event's position. Nothing is
// skipped; start() retries from the checkpoint.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vellum/event.h"
#include "vellum/result.h"
#include "vellum/store.h"
#include "vellum/toolkit_db.h"

namespace vellum {

// The read-model side of a projection. The engine calls, from the
// projection's thread only: load_checkpoint() when it starts, then for each
// batch begin(), apply() for each event in order, and commit(next) -- or
// abort() if apply() failed. reset() only while the projection is stopped.
class ProjectionSink {
 public:
  virtual ~ProjectionSink() = default;

  // "callback", "kv", "postgres": shown in status; the server serves
  // GET /projections/{name}/state/{key} for "kv" sinks.
  virtual std::string_view kind() const = 0;
  // Whether batches are transactional (exactly-once effect).
  virtual bool exactly_once() const = 0;

  // Where to resume: the position (log sources) or revision (stream sources)
  // of the next event to examine. 0 when the read model is empty.
  virtual Result<uint64_t> load_checkpoint() = 0;
  virtual Status begin() = 0;
  // The view is valid only during the call.
  virtual Status apply(const EventRef& event) = 0;
  // Makes the batch's changes and the checkpoint `next` durable.
  virtual Status commit(uint64_t next) = 0;
  // Discards the batch's changes (transactional sinks); the checkpoint stays.
  virtual void abort() = 0;
  // Deletes the read model and the checkpoint (for reset and rebuild).
  virtual Status reset() = 0;
};

// An in-process callback: at-least-once, checkpoint in a ToolkitDb (or in
// memory only when `db` is null: kept across stop()/start() of this sink, lost
// with it, so every new process replays from the beginning). reset() sets the
// checkpoint to 0 before calling `reset`, so a crash in between replays
// (duplicates) rather than skips.
std::unique_ptr<ProjectionSink> make_callback_sink(ToolkitDb* db, std::string name,
                                                   std::function<Status(const EventRef&)> handle,
                                                   std::function<Status()> reset = {});

// A key-value read model kept in the ToolkitDb under the projection's name;
// batch changes and checkpoint are written atomically. The handler reads and
// writes keys through the KvView (values are bytes; JSON by convention, as
// GET /projections/{name}/state/{key} returns them).
class KvView {
 public:
  virtual ~KvView() = default;
  virtual Result<std::optional<std::string>> get(std::string_view key) = 0;
  virtual void put(std::string_view key, std::string_view value) = 0;
  virtual void erase(std::string_view key) = 0;
};
std::unique_ptr<ProjectionSink> make_kv_sink(
    ToolkitDb& db, std::string name, std::function<Status(const EventRef&, KvView&)> handle);

// What a projection reads.
struct ProjectionSource {
  std::string stream;  // one stream (checkpoints are revisions), or empty:
  EventFilter filter;  // the whole log, filtered (checkpoints are positions)
};

struct ProjectionSpec {
  std::string name;  // unique; [A-Za-z0-9_.-]{1,128}
  ProjectionSource source;
  std::unique_ptr<ProjectionSink> sink;
  uint32_t batch_events = 1000;  // events per sink transaction, at most
  bool start = true;             // start running when added
};

enum class ProjectionState : uint8_t { kStopped, kRunning, kFailed };
const char* projection_state_name(ProjectionState state);  // "stopped", ...

struct ProjectionStatus {
  std::string name;
  std::string kind;  // the sink's
  ProjectionState state = ProjectionState::kStopped;
  // The next position (revision, for stream sources) to examine: the checkpoint.
  // With a filter it may run ahead of the durable checkpoint over events that
  // match nothing (those are checkpointed every 10,000 events or second, and on
  // stop); replaying them after a crash applies nothing.
  uint64_t position = 0;
  // Events applied in committed batches since add() or the last reset().
  uint64_t events_processed = 0;
  // Behind the head: log events (or stream events) not yet examined, and the
  // age of the oldest of them (0 when caught up).
  uint64_t lag_events = 0;
  int64_t lag_ms = 0;
  // kFailed: the error and the position (revision) of the event that failed.
  std::string error;
  std::optional<uint64_t> failed_position;
};

// Runs projections over one Store. Thread safety: every method may be called
// from any thread. Destroy before the Store (the destructor stops everything).
class Projections {
 public:
  explicit Projections(Store& store);
  ~Projections();
  Projections(const Projections&) = delete;
  Projections& operator=(const Projections&) = delete;

  // Errors: kAlreadyExists (name taken), kInvalidArgument (bad name or
  // spec), and load_checkpoint()'s errors.
  Status add(ProjectionSpec spec);

  // start: runs from the checkpoint (also after a failure); a no-op when
  // running. stop: finishes the batch in hand and stops (promptly: a live
  // projection is woken); a failed projection stays kFailed with its error.
  // reset: stops, deletes the read model and checkpoint, stays stopped.
  // rebuild: reset + start.
  // Errors: kNotFound (no such projection), the sink's reset() errors.
  Status start(std::string_view name);
  Status stop(std::string_view name);
  Status reset(std::string_view name);
  Status rebuild(std::string_view name);

  Result<ProjectionStatus> status(std::string_view name);
  std::vector<ProjectionStatus> list();  // in name order
  // The sink's kind, for routing reads to it; kNotFound.
  Result<std::string> kind(std::string_view name);

  // Blocks until the projection's checkpoint reaches `position` (it has
  // examined every event before it), it fails or stops, or `timeout` passes;
  // returns its status then. For tests, tools and read-your-writes.
  Result<ProjectionStatus> wait_for(std::string_view name, uint64_t position,
                                    std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vellum
