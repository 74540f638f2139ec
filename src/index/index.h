// SPDX-License-Identifier: Apache-2.0
// Index: everything derived from the log, kept in RocksDB. The log is the
// truth; the index can always be rebuilt from it (`vellum reindex`). It is
// written without RocksDB's WAL: each batch carries the log location it has
// reached (the checkpoint), and on open the store replays the log from there.
// Key layout: docs/formats/index.md.
//
// Thread safety: reads from any thread; write() from one thread at a time.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vellum/event.h"
#include "vellum/result.h"
#include "vellum/store.h"

#include "base/sha256.h"
#include "index/stream_state.h"
#include "log/commit_record.h"
#include "log/log.h"

namespace rocksdb {
class DB;
class Env;
class WriteBatch;
class Cache;
}  // namespace rocksdb

namespace vellum::index {

// How far the index has consumed the log.
struct Checkpoint {
  uint64_t next_position = 0;  // first position not indexed
  log::RecordLocation end;     // location right after the last indexed commit
  Digest last_hash{};          // chain hash of the last indexed commit
  uint64_t next_stream_id = 1;
  int64_t last_recorded_unix_ns = 0;
};

// A run of events of one stream at consecutive revisions and positions,
// inside one commit record.
struct StreamChunk {
  uint64_t first_revision = 0;
  uint64_t first_position = 0;
  uint32_t count = 0;
  log::RecordLocation location;    // of the commit record
  uint32_t first_event_index = 0;  // index of the first event inside the record
};

// One commit record: its first position, size and location.
struct RecordRef {
  uint64_t first_position = 0;
  uint32_t event_count = 0;
  log::RecordLocation location;
  int64_t recorded_unix_ns = 0;
};

// A run of consecutive positions sharing an attribute (type, category, subject).
struct PositionRun {
  uint64_t first_position = 0;
  uint32_t count = 0;
};

enum class RunKind : char { kType = 'T', kCategory = 'C', kSubject = 'U' };

struct IndexOptions {
  bool in_memory = false;
  uint64_t cache_bytes = uint64_t{64} << 20;
};

// Collects the index entries of committed records; written by Index::write().
// Not thread-safe. The caller supplies each touched stream's new state.
class IndexBatch {
 public:
  IndexBatch();
  ~IndexBatch();
  IndexBatch(IndexBatch&&) noexcept;
  IndexBatch& operator=(IndexBatch&&) noexcept;

  // Adds the entries of one commit record. `stream_ids` gives the id of each
  // event's stream, in event order. Events whose id is the positional id of
  // their position under `store_tag` (index/event_ids.h) get no id entry.
  void add_commit(const log::CommitView& commit, log::RecordLocation location,
                  const std::vector<uint64_t>& stream_ids, uint32_t store_tag);
  // Records the new state of a stream (last writer wins within the batch).
  void put_stream(std::string_view name, const StreamState& state);
  bool empty() const { return commits_ == 0; }
  uint64_t commits() const { return commits_; }
  rocksdb::WriteBatch& batch() { return *batch_; }

 private:
  std::unique_ptr<rocksdb::WriteBatch> batch_;
  uint64_t commits_ = 0;
};

class Index {
 public:
  // Opens (creating if missing) the index in directory `dir`.
  static Result<std::unique_ptr<Index>> open(const std::string& dir, const IndexOptions& options);
  // Deletes the index in `dir` (for reindex).
  static Status destroy(const std::string& dir);
  ~Index();

  const Checkpoint& checkpoint_at_open() const { return checkpoint_at_open_; }

  // Applies `batch` and the new checkpoint atomically (one RocksDB write,
  // without WAL). Errors: kIoError.
  Status write(IndexBatch& batch, const Checkpoint& checkpoint);
  // Persists the memtable (so the checkpoint survives a crash).
  Status flush();

  Result<std::optional<StreamState>> get_stream(std::string_view name);
  // Streams whose state restricts reads (metadata set, deleted).
  Result<std::vector<std::pair<std::string, StreamState>>> restricted_streams();

  // Chunks of `stream_id` covering revisions from `from_revision` in
  // `direction`, until they hold at least `events_max` events.
  Result<std::vector<StreamChunk>> stream_chunks(uint64_t stream_id, uint64_t from_revision,
                                                 Direction direction, uint64_t events_max);
  // Commit records from the one holding `from_position`, in `direction`.
  Result<std::vector<RecordRef>> records(uint64_t from_position, Direction direction,
                                         uint64_t events_max);
  Result<std::optional<RecordRef>> record_at(uint64_t position);
  // Runs for `key` (a type, category or subject) from `from_position`.
  Result<std::vector<PositionRun>> runs(RunKind kind, std::string_view key, uint64_t from_position,
                                        Direction direction, uint64_t events_max);
  Result<std::optional<uint64_t>> event_position(const Uuid& id);
  // The first position recorded after `time_unix_ns`, or nullopt if none.
  Result<std::optional<uint64_t>> first_position_after(int64_t time_unix_ns);

 private:
  Index() = default;
  Result<Checkpoint> read_checkpoint();

  std::unique_ptr<rocksdb::Env> mem_env_;
  std::unique_ptr<rocksdb::DB> db_;
  Checkpoint checkpoint_at_open_;
};

}  // namespace vellum::index
