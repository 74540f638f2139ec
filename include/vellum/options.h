// SPDX-License-Identifier: Apache-2.0
// Options of the embedded store, each with its default written beside it.
#pragma once

#include <cstdint>

namespace vellum {

class Clock;
namespace io {
class FileSystem;
}

// When an append is acknowledged relative to the disk.
enum class Durability : uint8_t {
  // Default. The append returns OK only after fdatasync() covered it:
  // acknowledged => survives a crash or power loss. Concurrent appends share
  // one fdatasync (group commit).
  kFsync,
  // The append returns OK once written to the OS (survives a process crash,
  // not a power loss); the log is fdatasync'ed at most every
  // `batch_interval_ms`. Up to that much acknowledged data can be lost.
  kBatch,
  // Never fdatasync. For tests and benchmarks only.
  kNone,
};

struct StoreOptions {
  Durability durability = Durability::kFsync;
  // kBatch only: the longest time between fsyncs.
  uint32_t batch_interval_ms = 10;
  // A segment is sealed and a new one started once it reaches this size.
  uint64_t segment_size_bytes = uint64_t{256} << 20;
  // The newest segment is zero-filled this far ahead of the writes, so that
  // fdatasync flushes data only (no size change to journal). 0 = off.
  uint64_t preallocate_bytes = uint64_t{1} << 20;
  // Create the data directory and an empty log if there is none.
  bool create_if_missing = true;
  // Client-chosen event ids are remembered in memory for this many of the most
  // recent events; older ids are found through the persistent id index (one
  // RocksDB lookup per id). Both paths give the same answers.
  uint32_t recent_ids_count_max = 1u << 20;
  // RocksDB block cache for the index.
  uint64_t index_cache_bytes = uint64_t{64} << 20;

  // Seams for tests. Not owned; must outlive the Store. nullptr = the OS.
  // With a file system other than the OS's, the index is kept in memory.
  io::FileSystem* file_system = nullptr;
  Clock* clock = nullptr;
  // Keep the index in memory (RocksDB's in-memory Env): it is rebuilt from the
  // log on every open. For tests that simulate crashes of the whole machine.
  bool index_in_memory = false;
};

}  // namespace vellum
