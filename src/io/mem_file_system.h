// SPDX-License-Identifier: Apache-2.0
// MemFileSystem: an io::FileSystem that keeps every file in memory. Unit tests
// of log/, index/ and store/ use it to run without touching the disk and to
// inspect or damage file contents directly. It models the namespace the way
// the engine relies on it (create-exclusive, atomic rename, direct-children
// listing, in-process advisory locks) but not durability: nothing is ever lost.
// For crash semantics use testing::FaultyFileSystem instead.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "io/file_system.h"

namespace vellum::io {

// Lexically normalizes a path for the in-memory file systems: collapses
// repeated '/', drops "." components, resolves ".." and any trailing '/'.
// "" and "." become "."; an absolute path keeps its leading '/'.
std::string normalize_path(std::string_view path);

// The directory holding `path` (already normalized): "a/b" -> "a", "/a" -> "/",
// "a" -> ".". The parent of "/" or "." is itself.
std::string parent_path(std::string_view path);

// True if normalized `path` is strictly inside normalized directory `dir`.
bool path_is_inside(std::string_view path, std::string_view dir);

// Thread safety: every method, and every method of the Files it returns, is
// safe to call concurrently (one mutex guards all state; Files share it).
// Ownership: Files keep the shared state alive, so a File may outlive the
// MemFileSystem that opened it. A removed file stays readable and writable
// through Files already open on it, as on POSIX.
class MemFileSystem : public FileSystem {
 public:
  MemFileSystem();
  ~MemFileSystem() override;

  Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override;
  Result<std::vector<std::string>> list(const std::string& path) override;
  Result<bool> exists(const std::string& path) override;
  Status create_dirs(const std::string& path) override;
  Status remove(const std::string& path) override;
  Status rename(const std::string& source, const std::string& target) override;
  // Nothing to do in memory: every change is already as durable as it gets.
  Status sync_dir(const std::string& path) override;
  Result<std::unique_ptr<File>> lock(const std::string& path) override;

  // Test helpers. The contents of the file at `path`, or kNotFound.
  Result<std::string> contents(const std::string& path);
  // Replaces the contents of the file at `path`, creating it if missing.
  void set_contents(const std::string& path, std::string data);

  // Shared between the file system and its Files; defined in the .cc.
  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace vellum::io
