// SPDX-License-Identifier: Apache-2.0
// Tests of MemFileSystem: the shared FileSystem conformance suite (the same
// tests the posix implementation passes), then behaviour only the in-memory
// one has: path normalization, direct content access, directory renames.
#include "io/mem_file_system.h"

#include <gtest/gtest.h>

#include "io/file_system_test_suite.h"

namespace vellum::io {
namespace {

using conformance::FileSystemConformance;
using conformance::FileSystemFactory;

struct MemFixture : conformance::FileSystemFixture {
  MemFixture() {
    fs = &mem;
    root = "/root";
    EXPECT_TRUE(mem.create_dirs(root).has_value());
  }
  MemFileSystem mem;
};

INSTANTIATE_TEST_SUITE_P(Mem, FileSystemConformance,
                         ::testing::Values(FileSystemFactory{
                             "mem", [] { return std::make_unique<MemFixture>(); }}),
                         [](const auto& param_info) { return param_info.param.name; });

TEST(NormalizePath, CollapsesSlashesDotsAndTrailingSlash) {
  EXPECT_EQ(normalize_path("/a//b/./c/"), "/a/b/c");
  EXPECT_EQ(normalize_path("a/b/../c"), "a/c");
  EXPECT_EQ(normalize_path(""), ".");
  EXPECT_EQ(normalize_path("./"), ".");
  EXPECT_EQ(normalize_path("/"), "/");
  EXPECT_EQ(normalize_path("/.."), "/");
  EXPECT_EQ(normalize_path("../x"), "../x");
}

TEST(ParentPath, HandlesRootsAndRelativeNames) {
  EXPECT_EQ(parent_path("/a/b"), "/a");
  EXPECT_EQ(parent_path("/a"), "/");
  EXPECT_EQ(parent_path("a"), ".");
  EXPECT_EQ(parent_path("a/b"), "a");
}

TEST(PathIsInside, MatchesWholeComponentsOnly) {
  EXPECT_TRUE(path_is_inside("/a/b", "/a"));
  EXPECT_FALSE(path_is_inside("/ab", "/a"));
  EXPECT_FALSE(path_is_inside("/a", "/a"));
  EXPECT_TRUE(path_is_inside("/a", "/"));
  EXPECT_TRUE(path_is_inside("a", "."));
  EXPECT_FALSE(path_is_inside("/a", "."));
}

TEST(MemFileSystem, EquivalentSpellingsNameTheSameFile) {
  MemFileSystem fs;
  ASSERT_TRUE(fs.create_dirs("/d").has_value());
  auto file = fs.open("/d//f", OpenMode::kCreate);
  ASSERT_TRUE(file.has_value());
  EXPECT_TRUE(*fs.exists("/d/./f"));
  EXPECT_EQ(fs.open("/d/f", OpenMode::kCreate).error().code, ErrorCode::kAlreadyExists);
}

TEST(MemFileSystem, ContentsAndSetContentsAccessFilesDirectly) {
  MemFileSystem fs;
  fs.set_contents("/d/f", "abc");
  EXPECT_EQ(*fs.contents("/d/f"), "abc");
  EXPECT_EQ(fs.contents("/d/g").error().code, ErrorCode::kNotFound);
  auto names = fs.list("/d");
  ASSERT_TRUE(names.has_value());
  EXPECT_EQ(*names, std::vector<std::string>{"f"}) << "parent directories are implicit";
  auto file = fs.open("/d/f", OpenMode::kReadWrite);
  ASSERT_TRUE(file.has_value());
  ASSERT_TRUE((*file)->write_at(3, std::as_bytes(std::span("d", 1))).has_value());
  EXPECT_EQ(*fs.contents("/d/f"), "abcd");
}

TEST(MemFileSystem, RenamingADirectoryMovesEverythingBelowIt) {
  MemFileSystem fs;
  ASSERT_TRUE(fs.create_dirs("/a/b/c").has_value());
  fs.set_contents("/a/b/f", "1");
  ASSERT_TRUE(fs.rename("/a/b", "/a/z").has_value());
  EXPECT_FALSE(*fs.exists("/a/b"));
  EXPECT_TRUE(*fs.exists("/a/z/c"));
  EXPECT_EQ(*fs.contents("/a/z/f"), "1");
  EXPECT_FALSE(fs.rename("/a", "/a/z/inner").has_value()) << "not into itself";
}

TEST(MemFileSystem, RemovingADirectoryFails) {
  MemFileSystem fs;
  fs.set_contents("/d/f", "1");
  EXPECT_EQ(fs.remove("/d").error().code, ErrorCode::kIoError);
  EXPECT_TRUE(*fs.exists("/d/f"));
}

TEST(MemFileSystem, CreateDirsFailsWhenAFileIsInTheWay) {
  MemFileSystem fs;
  fs.set_contents("/f", "1");
  EXPECT_FALSE(fs.create_dirs("/f/g").has_value());
  EXPECT_FALSE(*fs.exists("/f/g"));
}

TEST(MemFileSystem, RemovedFilesStayUsableThroughOpenHandles) {
  MemFileSystem fs;
  fs.set_contents("/f", "abc");
  auto file = fs.open("/f", OpenMode::kReadWrite);
  ASSERT_TRUE(file.has_value());
  ASSERT_TRUE(fs.remove("/f").has_value());
  EXPECT_EQ(*(*file)->size(), 3u);
  EXPECT_TRUE((*file)->write_at(0, std::as_bytes(std::span("x", 1))).has_value());
  EXPECT_FALSE(*fs.exists("/f"));
}

TEST(MemFileSystem, FilesMayOutliveTheFileSystem) {
  std::unique_ptr<File> file;
  {
    MemFileSystem fs;
    fs.set_contents("/f", "abc");
    file = std::move(*fs.open("/f", OpenMode::kRead));
  }
  EXPECT_EQ(*file->size(), 3u);
}

TEST(MemFileSystem, RelativePathsLiveUnderTheCurrentDirectory) {
  MemFileSystem fs;
  fs.set_contents("data/f", "1");
  fs.set_contents("top", "2");
  auto names = fs.list(".");
  ASSERT_TRUE(names.has_value());
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"data", "top"}));
}

}  // namespace
}  // namespace vellum::io
