// SPDX-License-Identifier: Apache-2.0
// FaultyFileSystem: an in-memory io::FileSystem that knows what is durable, so
// tests can cut the power. For every file it keeps the content as of its last
// successful sync() and the current content; for every directory it keeps the
// entries as of its last sync_dir() and the current ones. crash() throws away
// everything not durable, optionally tearing unsynced writes at a 512-byte
// sector boundary, the way a real disk loses a write in flight. fail_after()
// and set_disk_full() inject I/O errors. This is how tests/crash and tests/sim
// check that an acknowledged append survives any crash (leveldb's
// FaultInjectionTestEnv, TigerBeetle's storage faults).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "io/file_system.h"

namespace vellum::testing {

// The kinds of operations fail_after() counts. kWrite = File::write_at;
// kSync = File::sync and FileSystem::sync_dir; kRename = FileSystem::rename;
// kOpen = FileSystem::open and lock. kAny counts every one of those.
enum class FaultOp : uint8_t { kWrite, kSync, kRename, kOpen, kAny };

// Durability model:
// - File data becomes durable at File::sync(): the whole current content of
//   the file (a file has one durable content, however many handles).
// - A directory entry (creation, rename, removal) becomes durable at
//   sync_dir() of its parent directory. A file whose entry is not durable
//   vanishes on crash, even if its data was synced; a removed or renamed-over
//   file whose removal is not durable comes back.
// - Directories made by create_dirs() are durable at once (a simplification:
//   the engine creates its directory once, before any data matters).
//
// Thread safety: every method, and every method of the Files it returns, may
// be called concurrently (one mutex). Ownership: Files share the state, so
// they may outlive the file system; after crash() every File opened before it
// returns kIoError ("crashed") and its lock, if it was one, is released.
class FaultyFileSystem : public io::FileSystem {
 public:
  // `seed` drives every random choice (where writes tear, what garbage is
  // written), so a test run replays exactly from its seed.
  explicit FaultyFileSystem(uint64_t seed);
  ~FaultyFileSystem() override;

  Result<std::unique_ptr<io::File>> open(const std::string& path, io::OpenMode mode) override;
  Result<std::vector<std::string>> list(const std::string& path) override;
  Result<bool> exists(const std::string& path) override;
  Status create_dirs(const std::string& path) override;
  Status remove(const std::string& path) override;
  Status rename(const std::string& source, const std::string& target) override;
  Status sync_dir(const std::string& path) override;
  Result<std::unique_ptr<io::File>> lock(const std::string& path) override;

  // Simulates a power loss: every directory reverts to its durable entries
  // and every file to its durable content. With `tear_last_write`, a file with
  // unsynced data keeps a random prefix of it, cut at a random 512-byte
  // boundary; sometimes the sector after the cut holds garbage or zeros
  // instead (see set_torn_garbage). Faults armed by fail_after() and the
  // disk-full flag stay as they are; see clear_faults().
  void crash(bool tear_last_write = true);

  // crash(false): exactly the durable state, nothing torn.
  void drop_unsynced();

  // Makes the n-th next operation of kind `op` (0 = the very next one) fail
  // with kIoError, once. Several faults may be armed at the same time.
  void fail_after(uint64_t n, FaultOp op);

  // While set, every write_at() and truncate() that grows a file fails with
  // kIoError "no space left on device" and writes nothing.
  void set_disk_full(bool full);

  // Disarms every fail_after() fault and clears the disk-full flag.
  void clear_faults();

  // Whether crash() may leave garbage or zeros in the torn sector (default
  // true). Off, a torn file holds only bytes that were really written.
  void set_torn_garbage(bool enabled);

  // Successful File::sync() and sync_dir() calls, and successful write_at()
  // calls, since construction.
  uint64_t sync_count() const;
  uint64_t write_count() const;

  // Test helpers: the current and the durable content of the file at `path`
  // (kNotFound if there is no such entry, current or durable respectively).
  Result<std::string> contents(const std::string& path);
  Result<std::string> durable_contents(const std::string& path);

  // Shared with the Files; defined in the .cc.
  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace vellum::testing
