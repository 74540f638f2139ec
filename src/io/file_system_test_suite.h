// SPDX-License-Identifier: Apache-2.0
// A behavioural test suite that every io::FileSystem must pass: the contract
// the engine relies on (create-exclusive, short reads at the end, zero-filled
// gaps, direct-children listing, atomic rename replacing the target,
// exclusive in-process locks). Each implementation's test file instantiates
// it with INSTANTIATE_TEST_SUITE_P and a factory, so the in-memory fakes are
// held to exactly the behaviour of the real disk.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "io/file_system.h"

namespace vellum::io::conformance {

// A file system under test plus a fresh, empty directory inside it.
struct FileSystemFixture {
  virtual ~FileSystemFixture() = default;
  FileSystem* fs = nullptr;
  std::string root;  // exists and is empty when the test starts
};

struct FileSystemFactory {
  std::string name;
  std::function<std::unique_ptr<FileSystemFixture>()> make;
};

// GoogleTest finds the printer of a parameter by this exact name.
inline void PrintTo(const FileSystemFactory& factory,  // NOLINT(readability-identifier-naming)
                    std::ostream* out) {
  *out << factory.name;
}

class FileSystemConformance : public ::testing::TestWithParam<FileSystemFactory> {
 protected:
  void SetUp() override {
    fixture_ = GetParam().make();
    ASSERT_NE(fixture_, nullptr);
    fs_ = fixture_->fs;
    root_ = fixture_->root;
  }

  std::string path(std::string_view name) const { return root_ + "/" + std::string(name); }

  // Writes `data` to a new file at `name` (relative to root_).
  void write_new(std::string_view name, std::string_view data) {
    auto file = fs_->open(path(name), OpenMode::kCreate);
    ASSERT_TRUE(file.has_value()) << file.error().message;
    ASSERT_TRUE((*file)->write_at(0, std::as_bytes(std::span(data))).has_value());
  }

  // The whole file at `name`, or "<error>".
  std::string read_all(std::string_view name) {
    auto file = fs_->open(path(name), OpenMode::kRead);
    if (!file.has_value()) return "<error>";
    return read_file_handle(**file);
  }

  static std::string read_file_handle(File& file) {
    auto size = file.size();
    if (!size.has_value()) return "<error>";
    std::string data(*size, '\0');
    auto count = file.read_at(0, std::as_writable_bytes(std::span(data)));
    if (!count.has_value()) return "<error>";
    data.resize(*count);
    return data;
  }

  std::vector<std::string> sorted_list(std::string_view name) {
    auto names = fs_->list(name.empty() ? root_ : path(name));
    if (!names.has_value()) return {"<error>"};
    std::sort(names->begin(), names->end());
    return *names;
  }

  std::unique_ptr<FileSystemFixture> fixture_;
  FileSystem* fs_ = nullptr;
  std::string root_;
};

inline std::span<const std::byte> bytes_of(std::string_view text) {
  return std::as_bytes(std::span(text));
}

TEST_P(FileSystemConformance, WritesAndReadsBack) {
  write_new("a", "hello world");
  EXPECT_EQ(read_all("a"), "hello world");
  auto file = fs_->open(path("a"), OpenMode::kRead);
  ASSERT_TRUE(file.has_value());
  std::string part(5, '\0');
  auto count = (*file)->read_at(6, std::as_writable_bytes(std::span(part)));
  ASSERT_TRUE(count.has_value());
  EXPECT_EQ(*count, 5u);
  EXPECT_EQ(part, "world");
}

TEST_P(FileSystemConformance, ReadAtEndIsShort) {
  write_new("a", "abc");
  auto file = fs_->open(path("a"), OpenMode::kRead);
  ASSERT_TRUE(file.has_value());
  std::string buffer(10, 'x');
  auto count = (*file)->read_at(1, std::as_writable_bytes(std::span(buffer)));
  ASSERT_TRUE(count.has_value());
  EXPECT_EQ(*count, 2u);
  EXPECT_EQ(buffer.substr(0, 2), "bc");
  count = (*file)->read_at(3, std::as_writable_bytes(std::span(buffer)));
  ASSERT_TRUE(count.has_value());
  EXPECT_EQ(*count, 0u);
  count = (*file)->read_at(100, std::as_writable_bytes(std::span(buffer)));
  ASSERT_TRUE(count.has_value());
  EXPECT_EQ(*count, 0u);
}

TEST_P(FileSystemConformance, WriteBeyondEndZeroFillsTheGap) {
  auto file = fs_->open(path("a"), OpenMode::kCreate);
  ASSERT_TRUE(file.has_value());
  ASSERT_TRUE((*file)->write_at(4, bytes_of("xy")).has_value());
  EXPECT_EQ(*(*file)->size(), 6u);
  EXPECT_EQ(read_all("a"), std::string("\0\0\0\0xy", 6));
  ASSERT_TRUE((*file)->write_at(1, bytes_of("Q")).has_value());
  EXPECT_EQ(read_all("a"), std::string("\0Q\0\0xy", 6));
}

TEST_P(FileSystemConformance, TruncateShrinksAndGrows) {
  write_new("a", "abcdef");
  auto file = fs_->open(path("a"), OpenMode::kReadWrite);
  ASSERT_TRUE(file.has_value());
  ASSERT_TRUE((*file)->truncate(2).has_value());
  EXPECT_EQ(*(*file)->size(), 2u);
  EXPECT_EQ(read_all("a"), "ab");
  ASSERT_TRUE((*file)->truncate(4).has_value());
  EXPECT_EQ(read_all("a"), std::string("ab\0\0", 4));
}

TEST_P(FileSystemConformance, CreateFailsIfTheFileExists) {
  write_new("a", "1");
  auto again = fs_->open(path("a"), OpenMode::kCreate);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(read_all("a"), "1");
}

TEST_P(FileSystemConformance, OpeningAMissingFileIsNotFound) {
  for (OpenMode mode : {OpenMode::kRead, OpenMode::kReadWrite}) {
    auto file = fs_->open(path("missing"), mode);
    ASSERT_FALSE(file.has_value());
    EXPECT_EQ(file.error().code, ErrorCode::kNotFound);
  }
}

TEST_P(FileSystemConformance, CreatingAFileNeedsItsDirectory) {
  auto file = fs_->open(path("missing/a"), OpenMode::kCreate);
  ASSERT_FALSE(file.has_value());
  EXPECT_EQ(file.error().code, ErrorCode::kNotFound);
  write_new("a", "1");
  EXPECT_FALSE(fs_->rename(path("a"), path("missing/a")).has_value());
  EXPECT_FALSE(fs_->lock(path("missing/LOCK")).has_value());
  EXPECT_FALSE(*fs_->exists(path("missing")));
}

TEST_P(FileSystemConformance, ReadOnlyFilesRejectWrites) {
  write_new("a", "abc");
  auto file = fs_->open(path("a"), OpenMode::kRead);
  ASSERT_TRUE(file.has_value());
  EXPECT_FALSE((*file)->write_at(0, bytes_of("z")).has_value());
  EXPECT_EQ(read_all("a"), "abc");
}

TEST_P(FileSystemConformance, ReadWriteKeepsExistingContent) {
  write_new("a", "abcdef");
  auto file = fs_->open(path("a"), OpenMode::kReadWrite);
  ASSERT_TRUE(file.has_value());
  ASSERT_TRUE((*file)->write_at(2, bytes_of("ZZ")).has_value());
  EXPECT_EQ(read_all("a"), "abZZef");
}

TEST_P(FileSystemConformance, ListReturnsDirectChildrenOnly) {
  ASSERT_TRUE(fs_->create_dirs(path("d/e/f")).has_value());
  write_new("x", "1");
  write_new("d/y", "2");
  write_new("d/e/z", "3");
  EXPECT_EQ(sorted_list(""), (std::vector<std::string>{"d", "x"}));
  EXPECT_EQ(sorted_list("d"), (std::vector<std::string>{"e", "y"}));
  EXPECT_EQ(sorted_list("d/e"), (std::vector<std::string>{"f", "z"}));
  EXPECT_EQ(sorted_list("d/e/f"), (std::vector<std::string>{}));
  // A trailing slash names the same directory.
  auto names = fs_->list(path("d") + "/");
  ASSERT_TRUE(names.has_value());
  EXPECT_EQ(names->size(), 2u);
}

TEST_P(FileSystemConformance, ListOfAMissingDirectoryFails) {
  EXPECT_FALSE(fs_->list(path("nope")).has_value());
}

TEST_P(FileSystemConformance, ExistsSeesFilesAndDirectories) {
  EXPECT_FALSE(*fs_->exists(path("a")));
  write_new("a", "1");
  EXPECT_TRUE(*fs_->exists(path("a")));
  ASSERT_TRUE(fs_->create_dirs(path("d1/d2")).has_value());
  EXPECT_TRUE(*fs_->exists(path("d1")));
  EXPECT_TRUE(*fs_->exists(path("d1/d2")));
  EXPECT_TRUE(fs_->create_dirs(path("d1/d2")).has_value()) << "create_dirs is idempotent";
}

TEST_P(FileSystemConformance, RenameReplacesTheTargetAtomically) {
  write_new("a", "new");
  write_new("b", "old");
  ASSERT_TRUE(fs_->rename(path("a"), path("b")).has_value());
  EXPECT_FALSE(*fs_->exists(path("a")));
  EXPECT_EQ(read_all("b"), "new");
  EXPECT_EQ(sorted_list(""), (std::vector<std::string>{"b"}));
  ASSERT_TRUE(fs_->sync_dir(root_).has_value());
}

TEST_P(FileSystemConformance, RenameOfAMissingFileFails) {
  EXPECT_FALSE(fs_->rename(path("missing"), path("b")).has_value());
  EXPECT_FALSE(*fs_->exists(path("b")));
}

TEST_P(FileSystemConformance, OpenFilesFollowARename) {
  write_new("a", "abc");
  auto file = fs_->open(path("a"), OpenMode::kReadWrite);
  ASSERT_TRUE(file.has_value());
  ASSERT_TRUE(fs_->rename(path("a"), path("b")).has_value());
  ASSERT_TRUE((*file)->write_at(3, bytes_of("d")).has_value());
  EXPECT_EQ(read_all("b"), "abcd");
}

TEST_P(FileSystemConformance, RemoveDeletesFilesOnly) {
  write_new("a", "1");
  ASSERT_TRUE(fs_->remove(path("a")).has_value());
  EXPECT_FALSE(*fs_->exists(path("a")));
  EXPECT_FALSE(fs_->remove(path("a")).has_value());
  ASSERT_TRUE(fs_->create_dirs(path("d")).has_value());
  EXPECT_FALSE(fs_->remove(path("d")).has_value()) << "remove() is for files (unlink)";
  EXPECT_TRUE(*fs_->exists(path("d")));
}

TEST_P(FileSystemConformance, SyncSucceedsOnWrittenFiles) {
  auto file = fs_->open(path("a"), OpenMode::kCreate);
  ASSERT_TRUE(file.has_value());
  ASSERT_TRUE((*file)->write_at(0, bytes_of("abc")).has_value());
  EXPECT_TRUE((*file)->sync().has_value());
  EXPECT_TRUE(fs_->sync_dir(root_).has_value());
}

TEST_P(FileSystemConformance, LockIsExclusiveUntilReleased) {
  auto first = fs_->lock(path("LOCK"));
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_TRUE(*fs_->exists(path("LOCK"))) << "lock() creates the file";
  auto second = fs_->lock(path("LOCK"));
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code, ErrorCode::kFailedPrecondition);
  auto other = fs_->lock(path("OTHER"));
  EXPECT_TRUE(other.has_value()) << "locks on other paths are independent";
  first->reset();
  auto third = fs_->lock(path("LOCK"));
  EXPECT_TRUE(third.has_value()) << "released by destroying the lock object";
}

inline constexpr int kConcurrentChunks = 200;
inline constexpr size_t kConcurrentChunkSize = 64;

inline char chunk_byte(int chunk) { return static_cast<char>('a' + chunk % 26); }

// Reads every chunk once; each byte must be the chunk's byte or, not yet
// written (the size grew first), zero.
inline void read_chunks_checking(File& file) {
  std::string buffer(kConcurrentChunkSize, '\0');
  for (int i = 0; i < kConcurrentChunks; i++) {
    auto count = file.read_at(i * kConcurrentChunkSize, std::as_writable_bytes(std::span(buffer)));
    ASSERT_TRUE(count.has_value());
    const std::string_view seen(buffer.data(), *count);
    ASSERT_EQ(seen.find_first_not_of(std::string{chunk_byte(i), '\0'}), std::string_view::npos);
  }
}

// One writer appends while readers check that every byte they can see is
// exactly what was written: the documented File thread-safety contract.
TEST_P(FileSystemConformance, ReadersRunConcurrentlyWithOneWriter) {
  auto file = fs_->open(path("a"), OpenMode::kCreate);
  ASSERT_TRUE(file.has_value());
  File* handle = file->get();
  std::thread writer([handle] {
    for (int i = 0; i < kConcurrentChunks; i++) {
      const std::string chunk(kConcurrentChunkSize, chunk_byte(i));
      EXPECT_TRUE(handle->write_at(i * kConcurrentChunkSize, bytes_of(chunk)).has_value());
    }
  });
  std::thread reader1([handle] { read_chunks_checking(*handle); });
  std::thread reader2([handle] { read_chunks_checking(*handle); });
  writer.join();
  reader1.join();
  reader2.join();
  EXPECT_EQ(*handle->size(), kConcurrentChunks * kConcurrentChunkSize);
}

}  // namespace vellum::io::conformance
