// SPDX-License-Identifier: Apache-2.0
// io::FileSystem: the one seam between the engine and the disk. Only src/io/
// calls open/pwrite/fdatasync; everything else goes through this interface, so
// tests can substitute an in-memory or fault-injecting file system.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vellum/result.h"

namespace vellum::io {

// An open file. Thread safety: read_at() may be called concurrently with
// itself and with one writer calling write_at()/sync()/truncate(); concurrent
// writers must be serialized by the caller.
class File {
 public:
  virtual ~File() = default;

  // Writes all of `data` at `offset_bytes`. Not durable until sync().
  // Errors: kIoError (including disk full: "no space").
  virtual Status write_at(uint64_t offset_bytes, std::span<const std::byte> data) = 0;

  // Reads up to `target.size()` bytes at `offset_bytes`; returns the number
  // read, which is smaller only at the end of the file.
  virtual Result<size_t> read_at(uint64_t offset_bytes, std::span<std::byte> target) = 0;

  // Makes every write so far durable (fdatasync). After an error the file's
  // state on disk is unknown: the caller must stop writing (see ARCHITECTURE.md).
  virtual Status sync() = 0;

  virtual Status truncate(uint64_t size_bytes) = 0;

  virtual Result<uint64_t> size() = 0;
};

enum class OpenMode : uint8_t {
  kRead,       // existing file, read only
  kReadWrite,  // existing file
  kCreate,     // create, fail if it exists
};

// Thread safety: all methods are safe to call concurrently.
class FileSystem {
 public:
  virtual ~FileSystem() = default;

  virtual Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) = 0;

  // Names (not paths) of the entries of directory `path`, unsorted.
  virtual Result<std::vector<std::string>> list(const std::string& path) = 0;

  virtual Result<bool> exists(const std::string& path) = 0;

  // Creates the directory and its parents if missing.
  virtual Status create_dirs(const std::string& path) = 0;

  virtual Status remove(const std::string& path) = 0;

  // Atomically replaces `target` with `source`. Durable after sync_dir().
  virtual Status rename(const std::string& source, const std::string& target) = 0;

  // Makes the directory's entries (creations, renames, removals) durable.
  virtual Status sync_dir(const std::string& path) = 0;

  // Takes an exclusive advisory lock on `path` (created if missing), held
  // until the returned object is destroyed. kFailedPrecondition if held.
  virtual Result<std::unique_ptr<File>> lock(const std::string& path) = 0;
};

// The operating system's file system. Never destroyed.
FileSystem* default_file_system();

// Writes `data` to `path` durably and atomically: temp file, fsync, rename,
// fsync of the directory.
Status write_file_atomic(FileSystem& fs, const std::string& path, std::string_view data);

// Reads a whole (small) file.
Result<std::string> read_file(FileSystem& fs, const std::string& path);

}  // namespace vellum::io
