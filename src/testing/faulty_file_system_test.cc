// SPDX-License-Identifier: Apache-2.0
// Tests of FaultyFileSystem. Without faults it must behave like any other
// FileSystem (the shared conformance suite). Then its own contract: what
// survives a crash (synced data, synced directory entries), what does not,
// where torn writes are cut, and that injected faults fire exactly once at
// exactly the requested operation.
#include "testing/faulty_file_system.h"

#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "io/file_system_test_suite.h"

namespace vellum::testing {
namespace {

using io::File;
using io::OpenMode;
using io::conformance::FileSystemConformance;
using io::conformance::FileSystemFactory;

struct FaultyFixture : io::conformance::FileSystemFixture {
  FaultyFixture() : faulty(1) {
    fs = &faulty;
    root = "/root";
    EXPECT_TRUE(faulty.create_dirs(root).has_value());
  }
  FaultyFileSystem faulty;
};

INSTANTIATE_TEST_SUITE_P(Faulty, FileSystemConformance,
                         ::testing::Values(FileSystemFactory{
                             "faulty", [] { return std::make_unique<FaultyFixture>(); }}),
                         [](const auto& param_info) { return param_info.param.name; });

std::span<const std::byte> bytes_of(std::string_view text) {
  return std::as_bytes(std::span(text));
}

class FaultyFileSystemTest : public ::testing::Test {
 protected:
  FaultyFileSystemTest() : fs_(42) { EXPECT_TRUE(fs_.create_dirs("/d").has_value()); }

  // Creates /d/<name> with `data`, file and entry both durable.
  void write_durable(const std::string& name, std::string_view data) {
    auto file = fs_.open("/d/" + name, OpenMode::kCreate);
    ASSERT_TRUE(file.has_value());
    ASSERT_TRUE((*file)->write_at(0, bytes_of(data)).has_value());
    ASSERT_TRUE((*file)->sync().has_value());
    ASSERT_TRUE(fs_.sync_dir("/d").has_value());
  }

  std::unique_ptr<File> open_rw(const std::string& name) {
    auto file = fs_.open("/d/" + name, OpenMode::kReadWrite);
    EXPECT_TRUE(file.has_value());
    return file.has_value() ? std::move(*file) : nullptr;
  }

  std::string contents(const std::string& name) {
    auto data = fs_.contents("/d/" + name);
    return data.has_value() ? *data : "<missing>";
  }

  FaultyFileSystem fs_;
};

TEST_F(FaultyFileSystemTest, CrashDropsUnsyncedData) {
  write_durable("f", "");
  auto file = open_rw("f");
  ASSERT_TRUE(file->write_at(0, bytes_of("abc")).has_value());
  EXPECT_EQ(contents("f"), "abc");
  fs_.crash(false);
  EXPECT_EQ(contents("f"), "");
}

TEST_F(FaultyFileSystemTest, SyncedDataSurvivesACrash) {
  write_durable("f", "durable");
  auto file = open_rw("f");
  ASSERT_TRUE(file->write_at(7, bytes_of("+more")).has_value());
  ASSERT_TRUE(file->sync().has_value());
  ASSERT_TRUE(file->write_at(12, bytes_of("+lost")).has_value());
  fs_.drop_unsynced();
  EXPECT_EQ(contents("f"), "durable+more");
  EXPECT_EQ(*fs_.durable_contents("/d/f"), "durable+more");
}

TEST_F(FaultyFileSystemTest, UnsyncedOverwritesRevert) {
  write_durable("f", "aaaa");
  auto file = open_rw("f");
  ASSERT_TRUE(file->write_at(1, bytes_of("bb")).has_value());
  ASSERT_TRUE(file->truncate(2).has_value());
  fs_.crash(false);
  EXPECT_EQ(contents("f"), "aaaa");
}

TEST_F(FaultyFileSystemTest, AFileWhoseDirectoryWasNotSyncedVanishes) {
  auto file = fs_.open("/d/new", OpenMode::kCreate);
  ASSERT_TRUE(file.has_value());
  ASSERT_TRUE((*file)->write_at(0, bytes_of("data")).has_value());
  ASSERT_TRUE((*file)->sync().has_value());
  fs_.crash();
  EXPECT_FALSE(*fs_.exists("/d/new"));
  EXPECT_TRUE(*fs_.exists("/d")) << "directories from create_dirs are durable";
}

TEST_F(FaultyFileSystemTest, SyncDirMakesCreationsDurable) {
  auto file = fs_.open("/d/new", OpenMode::kCreate);
  ASSERT_TRUE(file.has_value());
  ASSERT_TRUE(fs_.sync_dir("/d").has_value());
  ASSERT_TRUE((*file)->write_at(0, bytes_of("data")).has_value());
  ASSERT_TRUE((*file)->sync().has_value());
  fs_.crash();
  EXPECT_EQ(contents("new"), "data");
}

TEST_F(FaultyFileSystemTest, ARenameRevertsUntilTheDirectoryIsSynced) {
  write_durable("current", "old");
  auto temp = fs_.open("/d/temp", OpenMode::kCreate);
  ASSERT_TRUE(temp.has_value());
  ASSERT_TRUE((*temp)->write_at(0, bytes_of("new")).has_value());
  ASSERT_TRUE((*temp)->sync().has_value());
  ASSERT_TRUE(fs_.rename("/d/temp", "/d/current").has_value());
  EXPECT_EQ(contents("current"), "new");
  fs_.crash();
  EXPECT_EQ(contents("current"), "old");
  EXPECT_FALSE(*fs_.exists("/d/temp"));
}

TEST_F(FaultyFileSystemTest, ASyncedRenameSurvives) {
  write_durable("current", "old");
  write_durable("temp", "new");
  ASSERT_TRUE(fs_.rename("/d/temp", "/d/current").has_value());
  ASSERT_TRUE(fs_.sync_dir("/d").has_value());
  fs_.crash();
  EXPECT_EQ(contents("current"), "new");
  EXPECT_FALSE(*fs_.exists("/d/temp"));
  auto names = fs_.list("/d");
  ASSERT_TRUE(names.has_value());
  EXPECT_EQ(*names, std::vector<std::string>{"current"});
}

TEST_F(FaultyFileSystemTest, AnUnsyncedRemovalIsUndoneByACrash) {
  write_durable("f", "keep");
  ASSERT_TRUE(fs_.remove("/d/f").has_value());
  EXPECT_FALSE(*fs_.exists("/d/f"));
  fs_.crash();
  EXPECT_EQ(contents("f"), "keep");
  ASSERT_TRUE(fs_.remove("/d/f").has_value());
  ASSERT_TRUE(fs_.sync_dir("/d").has_value());
  fs_.crash();
  EXPECT_FALSE(*fs_.exists("/d/f"));
}

// Every torn outcome of a 5000-byte unsynced append after 1000 durable bytes
// is: the durable bytes, then a prefix of the new ones ending at a multiple
// of 512 (or all of them). Over many seeds, several different cuts appear.
TEST(FaultyFileSystemTear, TornWritesEndAtSectorBoundaries) {
  const std::string durable(1000, 'd');
  std::string unsynced(5000, '\0');
  for (size_t i = 0; i < unsynced.size(); i++) unsynced[i] = static_cast<char>('a' + i % 26);
  std::set<size_t> sizes;
  for (uint64_t seed = 1; seed <= 300; seed++) {
    SCOPED_TRACE(seed);
    FaultyFileSystem fs(seed);
    fs.set_torn_garbage(false);
    auto file = fs.open("/f", OpenMode::kCreate);
    ASSERT_TRUE(file.has_value());
    ASSERT_TRUE((*file)->write_at(0, bytes_of(durable)).has_value());
    ASSERT_TRUE((*file)->sync().has_value());
    ASSERT_TRUE(fs.sync_dir("/").has_value());
    ASSERT_TRUE((*file)->write_at(1000, bytes_of(unsynced)).has_value());
    fs.crash();
    const std::string after = *fs.contents("/f");
    const std::string written = durable + unsynced;
    ASSERT_GE(after.size(), durable.size());
    ASSERT_TRUE(after.size() == durable.size() || after.size() == written.size() ||
                after.size() % 512 == 0)
        << after.size();
    EXPECT_EQ(after, written.substr(0, after.size()));
    sizes.insert(after.size());
  }
  EXPECT_GE(sizes.size(), 6u) << "expected a variety of tear points";
  EXPECT_TRUE(sizes.contains(1000)) << "sometimes nothing new survives";
  EXPECT_TRUE(sizes.contains(6000)) << "sometimes everything survives";
}

// With garbage enabled, durable bytes are never damaged, and anything that
// differs from what was written lies in one sector past the durable end.
TEST(FaultyFileSystemTear, GarbageOnlyAppearsPastTheDurableEnd) {
  const std::string durable(700, 'd');
  const std::string unsynced(3000, 'n');
  bool saw_garbage = false;
  for (uint64_t seed = 1; seed <= 300; seed++) {
    SCOPED_TRACE(seed);
    FaultyFileSystem fs(seed);
    auto file = fs.open("/f", OpenMode::kCreate);
    ASSERT_TRUE(file.has_value());
    ASSERT_TRUE((*file)->write_at(0, bytes_of(durable)).has_value());
    ASSERT_TRUE((*file)->sync().has_value());
    ASSERT_TRUE(fs.sync_dir("/").has_value());
    ASSERT_TRUE((*file)->write_at(700, bytes_of(unsynced)).has_value());
    fs.crash(true);
    const std::string after = *fs.contents("/f");
    ASSERT_EQ(after.substr(0, 700), durable);
    ASSERT_LE(after.size(), 3700u);
    size_t first_bad = after.size();
    for (size_t i = 700; i < after.size(); i++) {
      if (after[i] != 'n') {
        first_bad = i;
        break;
      }
    }
    if (first_bad == after.size()) continue;
    saw_garbage = true;
    EXPECT_EQ(after.size(), std::min<size_t>(3700, (first_bad / 512 + 1) * 512))
        << "garbage fills the rest of the torn sector and nothing more";
  }
  EXPECT_TRUE(saw_garbage);
}

TEST(FaultyFileSystemTear, TheSameSeedTearsTheSameWay) {
  auto run = [](uint64_t seed) {
    FaultyFileSystem fs(seed);
    auto file = fs.open("/f", OpenMode::kCreate);
    EXPECT_TRUE(fs.sync_dir("/").has_value());
    EXPECT_TRUE((*file)->write_at(0, bytes_of(std::string(10000, 'x'))).has_value());
    fs.crash();
    return *fs.contents("/f");
  };
  for (uint64_t seed = 1; seed <= 20; seed++) EXPECT_EQ(run(seed), run(seed));
}

TEST_F(FaultyFileSystemTest, HandlesFromBeforeACrashFail) {
  write_durable("f", "abc");
  auto file = open_rw("f");
  fs_.crash();
  auto write = file->write_at(0, bytes_of("x"));
  ASSERT_FALSE(write.has_value());
  EXPECT_EQ(write.error().code, ErrorCode::kIoError);
  EXPECT_NE(write.error().message.find("crashed"), std::string::npos);
  std::string buffer(3, '\0');
  EXPECT_FALSE(file->read_at(0, std::as_writable_bytes(std::span(buffer))).has_value());
  EXPECT_FALSE(file->sync().has_value());
  EXPECT_FALSE(file->truncate(0).has_value());
  EXPECT_FALSE(file->size().has_value());
  auto reopened = open_rw("f");
  EXPECT_EQ(*reopened->size(), 3u) << "new handles work";
}

TEST_F(FaultyFileSystemTest, ACrashReleasesLocks) {
  auto before = fs_.lock("/d/LOCK");
  ASSERT_TRUE(before.has_value());
  fs_.crash();
  auto after = fs_.lock("/d/LOCK");
  ASSERT_TRUE(after.has_value()) << "the process holding the lock is gone";
  before->reset();
  auto third = fs_.lock("/d/LOCK");
  ASSERT_FALSE(third.has_value()) << "the stale handle must not release the new lock";
  EXPECT_EQ(third.error().code, ErrorCode::kFailedPrecondition);
}

TEST_F(FaultyFileSystemTest, FailAfterFiresOnceAtTheNthWrite) {
  write_durable("f", "");
  auto file = open_rw("f");
  const uint64_t writes_before = fs_.write_count();
  fs_.fail_after(2, FaultOp::kWrite);
  EXPECT_TRUE(file->write_at(0, bytes_of("0")).has_value());
  EXPECT_TRUE(file->sync().has_value()) << "syncs are not writes";
  EXPECT_TRUE(file->write_at(1, bytes_of("1")).has_value());
  auto failed = file->write_at(2, bytes_of("2"));
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code, ErrorCode::kIoError);
  EXPECT_TRUE(file->write_at(2, bytes_of("3")).has_value()) << "fires only once";
  EXPECT_EQ(contents("f"), "013") << "a failed write writes nothing";
  EXPECT_EQ(fs_.write_count() - writes_before, 3u);
}

TEST_F(FaultyFileSystemTest, AFailedSyncMakesNothingDurable) {
  write_durable("f", "a");
  auto file = open_rw("f");
  ASSERT_TRUE(file->write_at(1, bytes_of("b")).has_value());
  const uint64_t syncs_before = fs_.sync_count();
  fs_.fail_after(0, FaultOp::kSync);
  EXPECT_EQ(file->sync().error().code, ErrorCode::kIoError);
  EXPECT_EQ(fs_.sync_count(), syncs_before);
  fs_.crash(false);
  EXPECT_EQ(contents("f"), "a");
}

TEST_F(FaultyFileSystemTest, SyncFaultsCountDirectorySyncs) {
  fs_.fail_after(1, FaultOp::kSync);
  const uint64_t syncs_before = fs_.sync_count();
  EXPECT_TRUE(fs_.sync_dir("/d").has_value());
  EXPECT_FALSE(fs_.sync_dir("/d").has_value());
  EXPECT_TRUE(fs_.sync_dir("/d").has_value());
  EXPECT_EQ(fs_.sync_count() - syncs_before, 2u);
}

TEST_F(FaultyFileSystemTest, RenameAndOpenFaults) {
  write_durable("a", "1");
  fs_.fail_after(0, FaultOp::kRename);
  EXPECT_FALSE(fs_.rename("/d/a", "/d/b").has_value());
  EXPECT_TRUE(*fs_.exists("/d/a")) << "a failed rename changes nothing";
  EXPECT_TRUE(fs_.rename("/d/a", "/d/b").has_value());
  fs_.fail_after(1, FaultOp::kOpen);
  EXPECT_TRUE(fs_.open("/d/b", OpenMode::kRead).has_value());
  EXPECT_EQ(fs_.open("/d/b", OpenMode::kRead).error().code, ErrorCode::kIoError);
  EXPECT_TRUE(fs_.open("/d/b", OpenMode::kRead).has_value());
}

TEST_F(FaultyFileSystemTest, AnyCountsEveryKindOfOperation) {
  write_durable("f", "");
  fs_.fail_after(2, FaultOp::kAny);
  auto file = fs_.open("/d/f", OpenMode::kReadWrite);  // 0
  ASSERT_TRUE(file.has_value());
  EXPECT_TRUE((*file)->write_at(0, bytes_of("x")).has_value());  // 1
  EXPECT_FALSE((*file)->sync().has_value());                     // 2: fails
  EXPECT_TRUE(fs_.rename("/d/f", "/d/g").has_value());
}

TEST_F(FaultyFileSystemTest, SeveralFaultsMayBeArmed) {
  write_durable("f", "");
  auto file = open_rw("f");
  fs_.fail_after(0, FaultOp::kWrite);
  fs_.fail_after(1, FaultOp::kWrite);
  EXPECT_FALSE(file->write_at(0, bytes_of("a")).has_value());
  EXPECT_FALSE(file->write_at(0, bytes_of("b")).has_value());
  EXPECT_TRUE(file->write_at(0, bytes_of("c")).has_value());
}

TEST_F(FaultyFileSystemTest, DiskFullFailsWritesUntilCleared) {
  write_durable("f", "abc");
  auto file = open_rw("f");
  fs_.set_disk_full(true);
  auto failed = file->write_at(3, bytes_of("d"));
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code, ErrorCode::kIoError);
  EXPECT_NE(failed.error().message.find("no space left on device"), std::string::npos);
  EXPECT_FALSE(file->truncate(10).has_value()) << "growing needs space";
  EXPECT_TRUE(file->truncate(1).has_value()) << "shrinking does not";
  std::string buffer(1, '\0');
  EXPECT_EQ(*file->read_at(0, std::as_writable_bytes(std::span(buffer))), 1u) << "reads work";
  EXPECT_TRUE(file->sync().has_value());
  fs_.set_disk_full(false);
  EXPECT_TRUE(file->write_at(1, bytes_of("z")).has_value());
  fs_.set_disk_full(true);
  fs_.fail_after(5, FaultOp::kWrite);
  fs_.clear_faults();
  for (int i = 0; i < 10; i++) EXPECT_TRUE(file->write_at(0, bytes_of("q")).has_value());
}

// Writes 200 bytes one at a time, syncing the file every 10 and the
// directory every 50: the last sync covers 191 bytes.
void write_and_sync(FaultyFileSystem& fs, const std::string& name) {
  auto file = fs.open(name, OpenMode::kCreate);
  ASSERT_TRUE(file.has_value());
  for (int i = 0; i < 200; i++) {
    ASSERT_TRUE((*file)->write_at(i, bytes_of("x")).has_value());
    if (i % 10 == 0) {
      ASSERT_TRUE((*file)->sync().has_value());
    }
    if (i % 50 == 0) {
      ASSERT_TRUE(fs.sync_dir("/d").has_value());
    }
  }
}

TEST_F(FaultyFileSystemTest, ConcurrentUseIsSafe) {
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([this, t] { write_and_sync(fs_, "/d/t" + std::to_string(t)); });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(fs_.write_count(), 800u);
  fs_.crash(false);
  for (int t = 0; t < 4; t++) EXPECT_EQ(contents("t" + std::to_string(t)).size(), 191u);
}

}  // namespace
}  // namespace vellum::testing
