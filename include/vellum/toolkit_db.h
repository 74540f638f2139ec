// SPDX-License-Identifier: Apache-2.0
// ToolkitDb: the toolkit's own RocksDB, beside the store's data. It holds
// aggregate snapshots, projection checkpoints and the key-value read models
// of projections. Everything in it is derived from the log: deleting it loses
// nothing (snapshots are written again, projections rebuild).
//
// Layout (docs/formats/toolkit-db.md): three column families,
//   snapshots:   <aggregate> 0x00 <stream> 0x00 <revision: u64 big-endian>
//   checkpoints: <projection name>
//   kv:          <projection name> 0x00 <key>
//
// Durability: writes go through RocksDB's write-ahead log without fsync:
// they survive a process crash, not a power loss. A KV read model and its
// checkpoint are written in one batch, so they are lost (and replayed) together.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "vellum/result.h"

namespace vellum {

// A stored aggregate state.
struct Snapshot {
  uint64_t revision = 0;       // the last stream revision the state covers
  uint64_t base_revision = 0;  // the first revision it was built from (> 0 after a soft delete)
  uint32_t logic_version = 0;  // of the evolve function that built it
  int64_t recorded_time_unix_ns = 0;  // of the event at `revision`
  std::string state;                  // the state, serialized (JSON by the toolkit)
};

// The changes of one projection batch to a key-value read model, with
// read-your-writes: get() sees earlier put()/erase() of the same batch.
class KvBatch {
 public:
  void put(std::string_view key, std::string_view value);
  void erase(std::string_view key);
  // The pending change of `key`: nullopt = untouched in this batch;
  // an empty optional inside = erased.
  std::optional<std::optional<std::string>> pending(std::string_view key) const;
  bool empty() const { return changes_.empty(); }
  size_t size() const { return changes_.size(); }
  void clear() { changes_.clear(); }
  const std::map<std::string, std::optional<std::string>, std::less<>>& changes() const {
    return changes_;
  }

 private:
  std::map<std::string, std::optional<std::string>, std::less<>> changes_;
};

class ToolkitDb {
 public:
  // Opens or creates the database in directory `path` (for example
  // "<data dir>/toolkit"). Errors: kIoError, kFailedPrecondition (locked by
  // another process).
  static Result<std::unique_ptr<ToolkitDb>> open(const std::string& path);
  ~ToolkitDb();
  ToolkitDb(const ToolkitDb&) = delete;
  ToolkitDb& operator=(const ToolkitDb&) = delete;

  // --- Snapshots ---
  Status put_snapshot(std::string_view aggregate, std::string_view stream,
                      const Snapshot& snapshot);
  // The newest snapshot of `stream` for `aggregate` with revision <=
  // `max_revision`, `logic_version` and `base_revision`; snapshots of other
  // logic versions or bases are skipped, never returned. nullopt if none.
  Result<std::optional<Snapshot>> find_snapshot(std::string_view aggregate, std::string_view stream,
                                                uint64_t max_revision, uint32_t logic_version,
                                                uint64_t base_revision);
  // Deletes every snapshot of `aggregate` (all streams). Returns how many.
  Result<uint64_t> delete_snapshots(std::string_view aggregate);

  // --- Projection checkpoints (of sinks without their own transactions) ---
  Result<std::optional<uint64_t>> checkpoint(std::string_view projection);
  Status set_checkpoint(std::string_view projection, uint64_t next);

  // --- Key-value read models ---
  // Writes `batch` and the checkpoint `next` of `projection` atomically.
  Status commit_kv(std::string_view projection, const KvBatch& batch, uint64_t next);
  Result<std::optional<std::string>> kv_get(std::string_view projection, std::string_view key);
  // Calls `visit(key, value)` for keys >= `start` that begin with `prefix`, in
  // key order, until it returns false or `limit` keys were visited.
  Status kv_scan(std::string_view projection, std::string_view prefix, std::string_view start,
                 uint32_t limit,
                 const std::function<bool(std::string_view key, std::string_view value)>& visit);
  // Deletes the read model and the checkpoint of `projection`.
  Status kv_reset(std::string_view projection);

 private:
  struct Impl;
  explicit ToolkitDb(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vellum
