// SPDX-License-Identifier: Apache-2.0
// Unit tests of ToolkitDb on a real RocksDB in a temporary directory:
// snapshot lookup rules, checkpoints, atomic kv batches, scans and resets,
// and that everything survives a reopen.
#include "vellum/toolkit_db.h"

#include <filesystem>
#include <map>

#include <gtest/gtest.h>
#include <stdlib.h>

#include "vellum/store.h"

namespace vellum {
namespace {

class ToolkitDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "vellum_toolkit_db_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    reopen();
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  void reopen() {
    db_.reset();
    auto db = ToolkitDb::open(dir_ + "/toolkit");
    ASSERT_TRUE(db.has_value()) << db.error().message;
    db_ = std::move(*db);
  }

  void put(std::string_view aggregate, std::string_view stream, uint64_t revision,
           uint32_t logic_version, uint64_t base_revision, std::string state) {
    Snapshot snapshot;
    snapshot.revision = revision;
    snapshot.base_revision = base_revision;
    snapshot.logic_version = logic_version;
    snapshot.recorded_time_unix_ns = static_cast<int64_t>(revision) * 1000 - 5;
    snapshot.state = std::move(state);
    auto status = db_->put_snapshot(aggregate, stream, snapshot);
    ASSERT_TRUE(status.has_value()) << status.error().message;
  }

  std::optional<Snapshot> find(std::string_view aggregate, std::string_view stream,
                               uint64_t max_revision, uint32_t logic_version,
                               uint64_t base_revision) {
    auto found = db_->find_snapshot(aggregate, stream, max_revision, logic_version, base_revision);
    EXPECT_TRUE(found.has_value()) << found.error().message;
    return found ? *found : std::nullopt;
  }

  std::map<std::string, std::string> scan_all(std::string_view projection) {
    std::map<std::string, std::string> out;
    auto status = db_->kv_scan(projection, "", "", UINT32_MAX, [&](auto key, auto value) {
      out.emplace(std::string(key), std::string(value));
      return true;
    });
    EXPECT_TRUE(status.has_value());
    return out;
  }

  std::string dir_;
  std::unique_ptr<ToolkitDb> db_;
};

TEST_F(ToolkitDbTest, FindsNewestSnapshotAtOrBeforeMaxRevision) {
  put("Order", "order-1", 10, 1, 0, "s10");
  put("Order", "order-1", 20, 1, 0, "s20");
  put("Order", "order-1", 30, 1, 0, "s30");
  EXPECT_FALSE(find("Order", "order-1", 9, 1, 0).has_value());
  EXPECT_EQ(find("Order", "order-1", 10, 1, 0)->state, "s10");
  EXPECT_EQ(find("Order", "order-1", 29, 1, 0)->state, "s20");
  auto newest = find("Order", "order-1", kEnd, 1, 0);
  ASSERT_TRUE(newest.has_value());
  EXPECT_EQ(newest->state, "s30");
  EXPECT_EQ(newest->revision, 30u);
  EXPECT_EQ(newest->logic_version, 1u);
  EXPECT_EQ(newest->base_revision, 0u);
  EXPECT_EQ(newest->recorded_time_unix_ns, 29995);
}

TEST_F(ToolkitDbTest, SkipsSnapshotsOfOtherLogicVersionsAndBases) {
  put("Order", "order-1", 5, 1, 0, "v1");
  put("Order", "order-1", 8, 2, 0, "v2");
  put("Order", "order-1", 9, 1, 7, "base7");
  put("Order", "order-1", 12, 2, 7, "v2-base7");
  EXPECT_EQ(find("Order", "order-1", kEnd, 1, 0)->state, "v1");
  EXPECT_EQ(find("Order", "order-1", kEnd, 2, 0)->state, "v2");
  EXPECT_EQ(find("Order", "order-1", kEnd, 1, 7)->state, "base7");
  EXPECT_EQ(find("Order", "order-1", 11, 2, 7), std::nullopt);
  EXPECT_EQ(find("Order", "order-1", kEnd, 3, 0), std::nullopt);
}

TEST_F(ToolkitDbTest, KeepsAggregatesAndStreamsApart) {
  // "a" + "bc" and "ab" + "c" must not collide; neither may a stream that is a
  // prefix of another.
  put("a", "bc", 1, 1, 0, "a/bc");
  put("ab", "c", 2, 1, 0, "ab/c");
  put("a", "b", 3, 1, 0, "a/b");
  put("Other", "bc", 4, 1, 0, "Other/bc");
  EXPECT_EQ(find("a", "bc", kEnd, 1, 0)->state, "a/bc");
  EXPECT_EQ(find("ab", "c", kEnd, 1, 0)->state, "ab/c");
  EXPECT_EQ(find("a", "b", kEnd, 1, 0)->state, "a/b");
  EXPECT_EQ(find("a", "b", 2, 1, 0), std::nullopt);
  EXPECT_EQ(find("a", "zz", kEnd, 1, 0), std::nullopt);

  auto deleted = db_->delete_snapshots("a");
  ASSERT_TRUE(deleted.has_value());
  EXPECT_EQ(*deleted, 2u);
  EXPECT_EQ(find("a", "bc", kEnd, 1, 0), std::nullopt);
  EXPECT_EQ(find("ab", "c", kEnd, 1, 0)->state, "ab/c");
  EXPECT_EQ(find("Other", "bc", kEnd, 1, 0)->state, "Other/bc");
}

TEST_F(ToolkitDbTest, SnapshotStateMayHoldAnyBytesAndSurvivesReopen) {
  std::string state("\0\xff{\"x\":1}\0", 11);
  put("Order", "order-1", 3, 4, 2, state);
  reopen();
  auto found = find("Order", "order-1", 3, 4, 2);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->state, state);
  EXPECT_EQ(found->revision, 3u);
}

TEST_F(ToolkitDbTest, RefusesNamesWithNul) {
  Snapshot snapshot;
  EXPECT_EQ(db_->put_snapshot(std::string_view("a\0b", 3), "s", snapshot).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(db_->set_checkpoint("", 1).error().code, ErrorCode::kInvalidArgument);
}

TEST_F(ToolkitDbTest, CheckpointsAreAbsentUntilSetAndSurviveReopen) {
  EXPECT_EQ(*db_->checkpoint("p"), std::nullopt);
  ASSERT_TRUE(db_->set_checkpoint("p", 42).has_value());
  ASSERT_TRUE(db_->set_checkpoint("q", uint64_t{1} << 40).has_value());
  reopen();
  EXPECT_EQ(*db_->checkpoint("p"), 42u);
  EXPECT_EQ(*db_->checkpoint("q"), uint64_t{1} << 40);
}

TEST_F(ToolkitDbTest, KvBatchReadsItsOwnWrites) {
  KvBatch batch;
  EXPECT_EQ(batch.pending("k"), std::nullopt);
  batch.put("k", "1");
  EXPECT_EQ(batch.pending("k"), std::optional<std::string>("1"));
  batch.erase("k");
  ASSERT_TRUE(batch.pending("k").has_value());
  EXPECT_EQ(*batch.pending("k"), std::nullopt);
  batch.put("k", "2");
  EXPECT_EQ(batch.pending("k"), std::optional<std::string>("2"));
  EXPECT_EQ(batch.size(), 1u);
}

TEST_F(ToolkitDbTest, CommitKvWritesChangesAndCheckpointTogether) {
  KvBatch first;
  first.put("a", "1");
  first.put("b", "2");
  ASSERT_TRUE(db_->commit_kv("p", first, 10).has_value());
  KvBatch second;
  second.erase("a");
  second.put("c", "3");
  ASSERT_TRUE(db_->commit_kv("p", second, 20).has_value());
  KvBatch other;
  other.put("a", "other");
  ASSERT_TRUE(db_->commit_kv("p2", other, 1).has_value());
  reopen();
  EXPECT_EQ(*db_->checkpoint("p"), 20u);
  EXPECT_EQ(*db_->kv_get("p", "a"), std::nullopt);
  EXPECT_EQ(*db_->kv_get("p", "b"), "2");
  EXPECT_EQ(*db_->kv_get("p", "c"), "3");
  EXPECT_EQ(*db_->kv_get("p2", "a"), "other");
  EXPECT_EQ(scan_all("p"), (std::map<std::string, std::string>{{"b", "2"}, {"c", "3"}}));
}

TEST_F(ToolkitDbTest, ScanHonoursPrefixStartAndLimit) {
  KvBatch batch;
  for (const char* key : {"user/1", "user/2", "user/3", "users", "zebra", "a"}) {
    batch.put(key, key);
  }
  ASSERT_TRUE(db_->commit_kv("p", batch, 1).has_value());
  KvBatch neighbour;
  neighbour.put("user/0", "x");  // "p." sorts right after "p" + NUL: must stay invisible
  ASSERT_TRUE(db_->commit_kv("p.", neighbour, 1).has_value());
  std::vector<std::string> keys;
  auto collect = [&](std::string_view key, std::string_view) {
    keys.emplace_back(key);
    return true;
  };
  ASSERT_TRUE(db_->kv_scan("p", "user/", "", 100, collect).has_value());
  EXPECT_EQ(keys, (std::vector<std::string>{"user/1", "user/2", "user/3"}));
  keys.clear();
  ASSERT_TRUE(db_->kv_scan("p", "user/", "user/2", 100, collect).has_value());
  EXPECT_EQ(keys, (std::vector<std::string>{"user/2", "user/3"}));
  keys.clear();
  ASSERT_TRUE(db_->kv_scan("p", "", "b", 2, collect).has_value());
  EXPECT_EQ(keys, (std::vector<std::string>{"user/1", "user/2"}));
  keys.clear();
  ASSERT_TRUE(db_->kv_scan("p", "", "", 100,
                           [&](std::string_view key, std::string_view) {
                             keys.emplace_back(key);
                             return keys.size() < 3;  // the visitor stops the scan
                           })
                  .has_value());
  EXPECT_EQ(keys.size(), 3u);
}

TEST_F(ToolkitDbTest, KvResetDeletesOnlyThatModelAndItsCheckpoint) {
  KvBatch batch;
  batch.put("k", "v");
  ASSERT_TRUE(db_->commit_kv("p", batch, 5).has_value());
  ASSERT_TRUE(db_->commit_kv("p2", batch, 6).has_value());
  ASSERT_TRUE(db_->commit_kv("p.", batch, 7).has_value());
  ASSERT_TRUE(db_->kv_reset("p").has_value());
  reopen();
  EXPECT_EQ(*db_->checkpoint("p"), std::nullopt);
  EXPECT_TRUE(scan_all("p").empty());
  EXPECT_EQ(*db_->kv_get("p2", "k"), "v");
  EXPECT_EQ(*db_->kv_get("p.", "k"), "v");
  EXPECT_EQ(*db_->checkpoint("p2"), 6u);
}

TEST_F(ToolkitDbTest, SecondOpenOfTheSameDirectoryIsRefused) {
  auto second = ToolkitDb::open(dir_ + "/toolkit");
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code, ErrorCode::kFailedPrecondition) << second.error().message;
}

}  // namespace
}  // namespace vellum
