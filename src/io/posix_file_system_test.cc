// SPDX-License-Identifier: Apache-2.0
// Runs the FileSystem conformance suite against io::default_file_system() in
// a fresh temporary directory, so the in-memory fakes and the real disk are
// held to the same behaviour. Also checks the helpers built on FileSystem
// (write_file_atomic, read_file) on the real disk.
#include <filesystem>
#include <system_error>

#include <gtest/gtest.h>
#include <stdlib.h>

#include "io/file_system.h"
#include "io/file_system_test_suite.h"

namespace vellum::io {
namespace {

using conformance::FileSystemConformance;
using conformance::FileSystemFactory;

// Owns a temporary directory under $TMPDIR (or /tmp); removes it afterwards.
struct PosixFixture : conformance::FileSystemFixture {
  PosixFixture() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/vellum_posix_fs_test.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed for " << pattern;
      return;
    }
    fs = default_file_system();
    root = pattern;
  }
  ~PosixFixture() override {
    std::error_code ignored;
    if (!root.empty()) std::filesystem::remove_all(root, ignored);
  }
};

INSTANTIATE_TEST_SUITE_P(Posix, FileSystemConformance,
                         ::testing::Values(FileSystemFactory{
                             "posix", [] { return std::make_unique<PosixFixture>(); }}),
                         [](const auto& param_info) { return param_info.param.name; });

TEST(PosixFileSystem, WriteFileAtomicReplacesTheWholeFile) {
  PosixFixture fixture;
  const std::string path = fixture.root + "/checkpoint";
  ASSERT_TRUE(write_file_atomic(*fixture.fs, path, "first version").has_value());
  ASSERT_TRUE(write_file_atomic(*fixture.fs, path, "second").has_value());
  auto data = read_file(*fixture.fs, path);
  ASSERT_TRUE(data.has_value()) << data.error().message;
  EXPECT_EQ(*data, "second");
  auto names = fixture.fs->list(fixture.root);
  ASSERT_TRUE(names.has_value());
  EXPECT_EQ(*names, std::vector<std::string>{"checkpoint"}) << "no temp file is left behind";
}

TEST(PosixFileSystem, ReadFileOfAMissingFileIsNotFound) {
  PosixFixture fixture;
  auto data = read_file(*fixture.fs, fixture.root + "/missing");
  ASSERT_FALSE(data.has_value());
  EXPECT_EQ(data.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace vellum::io
