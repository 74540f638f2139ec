// SPDX-License-Identifier: Apache-2.0
// verify_log(): a clean log verifies; damage in a sealed segment, in the
// middle and at the tail of the active segment, and a hash chain broken under
// valid CRCs are each reported with file and offset; verification goes on to
// the next segment after a damaged sealed one, and never changes a byte.
#include "log/verify.h"

#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/coding.h"
#include "io/mem_file_system.h"
#include "log/commit_record.h"
#include "log/log.h"
#include "log/record_format.h"

namespace vellum::log {
namespace {

constexpr const char* kDir = "/store/log";
constexpr uint64_t kSegmentBytes = 4096;

std::string segment_file(uint64_t index) {
  char name[64];
  std::snprintf(name, sizeof(name), "%s/segment-%08" PRIu64 ".vlm", kDir, index);
  return name;
}

struct Written {
  RecordLocation location;
  std::string payload;
};

class VerifyTest : public ::testing::Test {
 protected:
  // Writes `count` commits of 1-3 events through Log, rolling 4 KiB segments.
  void write_log(int count) {
    auto log = Log::open(fs_, kDir, LogOptions{kSegmentBytes, true, 0}, clock_).value();
    for (int i = 0; i < count; i++) {
      uint32_t events = 1 + i % 3;
      std::string payload =
          encode_commit_header(CommitHeader{log->next_position(), 1'000 + i, Digest{}, events});
      for (uint32_t k = 0; k < events; k++) {
        EventData event;
        event.type = "Happened";
        event.data = std::string(40 + (i * 11 + k) % 60, 'd');
        Uuid id;
        store_u64_le(reinterpret_cast<char*>(id.bytes.data()), log->next_position() + k + 1);
        encode_event(payload, "s-" + std::to_string(i % 4), k, id, event);
      }
      auto location = log->add_commit(payload).value();
      ASSERT_TRUE(log->write_group(true).has_value());
      written_.push_back(Written{location, payload});
      events_ += events;
    }
    segments_ = log->segment_count();
  }

  VerifyReport verify() {
    auto report = verify_log(fs_, kDir, nullptr);
    EXPECT_TRUE(report.has_value()) << report.error().message;
    return report.value_or(VerifyReport{});
  }

  // The problem line mentioning `needle`, or "" if none does.
  static std::string find_problem(const VerifyReport& report, const std::string& needle) {
    for (const auto& problem : report.problems) {
      if (problem.find(needle) != std::string::npos) return problem;
    }
    return "";
  }

  static std::string at(uint64_t segment, uint64_t offset) {
    return segment_file(segment) + " at offset " + std::to_string(offset);
  }

  void flip_byte(const std::string& path, uint64_t offset) {
    std::string bytes = fs_.contents(path).value();
    bytes[offset] = static_cast<char>(bytes[offset] ^ 0x20);
    fs_.set_contents(path, bytes);
  }

  // Replaces the commit frame of `w` with one whose payload has the wrong
  // prev_hash but whose frame CRC is valid.
  void break_chain(const Written& w) {
    std::string bytes = fs_.contents(segment_file(w.location.segment_index)).value();
    std::string payload = w.payload;
    payload[16] = static_cast<char>(payload[16] ^ 0xff);  // first byte of prev_hash
    std::string frame;
    append_frame(frame, FrameType::kCommit, payload);
    bytes.replace(w.location.offset, frame.size(), frame);
    fs_.set_contents(segment_file(w.location.segment_index), bytes);
  }

  std::vector<std::string> snapshot() {
    std::vector<std::string> files;
    for (uint64_t i = 0; i < segments_; i++) files.push_back(fs_.contents(segment_file(i)).value());
    return files;
  }

  io::MemFileSystem fs_;
  SimClock clock_;
  std::vector<Written> written_;
  uint64_t events_ = 0;
  uint64_t segments_ = 0;
};

TEST_F(VerifyTest, CleanLogVerifies) {
  write_log(60);
  ASSERT_GE(segments_, 3u);
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  auto report = verify_log(fs_, kDir,
                           [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); });
  ASSERT_TRUE(report.has_value());
  EXPECT_TRUE(report->problems.empty()) << report->problems.front();
  EXPECT_EQ(report->segments, segments_);
  EXPECT_EQ(report->records, written_.size());
  EXPECT_EQ(report->events, events_);
  uint64_t bytes = 0;
  for (const auto& file : snapshot()) bytes += file.size();
  EXPECT_EQ(report->bytes, bytes);
  EXPECT_EQ(report->last_hash, chain_hash(written_.back().payload));
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back(), std::make_pair(bytes, bytes));
}

TEST_F(VerifyTest, EmptyLogVerifies) {
  write_log(0);
  VerifyReport report = verify();
  EXPECT_TRUE(report.problems.empty());
  EXPECT_EQ(report.segments, 1u);
  EXPECT_EQ(report.records, 0u);
  EXPECT_EQ(report.last_hash, Digest{});
}

TEST_F(VerifyTest, FlippedByteInSealedSegmentIsReportedAndVerificationContinues) {
  write_log(60);
  const Written& victim = written_[2];
  ASSERT_EQ(victim.location.segment_index, 0u);
  flip_byte(segment_file(0), victim.location.offset + kFrameHeaderSize + 80);
  auto before = snapshot();
  VerifyReport report = verify();
  ASSERT_EQ(report.problems.size(), 1u) << report.problems.front();
  EXPECT_NE(report.problems[0].find(at(0, victim.location.offset)), std::string::npos)
      << report.problems[0];
  // Segments after the damaged one were still verified.
  uint64_t after_segment0 = 0;
  for (const auto& w : written_) after_segment0 += w.location.segment_index > 0;
  EXPECT_EQ(report.records, 2 + after_segment0);
  EXPECT_EQ(report.last_hash, chain_hash(written_.back().payload));
  EXPECT_EQ(snapshot(), before);
}

TEST_F(VerifyTest, FlippedByteInTheMiddleOfTheActiveSegmentIsReported) {
  write_log(60);
  uint64_t newest = segments_ - 1;
  std::vector<Written> in_newest;
  for (const auto& w : written_) {
    if (w.location.segment_index == newest) in_newest.push_back(w);
  }
  ASSERT_GE(in_newest.size(), 2u);
  uint64_t offset = in_newest[0].location.offset;
  flip_byte(segment_file(newest), offset + kFrameHeaderSize + 30);
  VerifyReport report = verify();
  ASSERT_EQ(report.problems.size(), 1u) << report.problems.front();
  EXPECT_NE(report.problems[0].find(at(newest, offset)), std::string::npos) << report.problems[0];
  EXPECT_NE(report.problems[0].find("followed by a valid frame"), std::string::npos);
}

TEST_F(VerifyTest, TornTailIsReportedAndNotTruncated) {
  write_log(5);
  const Written& last = written_.back();
  std::string bytes = fs_.contents(segment_file(0)).value();
  fs_.set_contents(segment_file(0), bytes.substr(0, bytes.size() - 5));
  VerifyReport report = verify();
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].find(segment_file(0) + ": torn tail at offset " +
                                    std::to_string(last.location.offset) +
                                    ", would be truncated on open"),
            0u)
      << report.problems[0];
  EXPECT_EQ(report.records, 4u);
  EXPECT_EQ(report.last_hash, chain_hash(written_[3].payload));
  EXPECT_EQ(fs_.contents(segment_file(0)).value().size(), bytes.size() - 5);
}

TEST_F(VerifyTest, BrokenHashChainIsDetected) {
  write_log(60);
  const Written& victim = written_[3];  // in sealed segment 0
  ASSERT_EQ(victim.location.segment_index, 0u);
  break_chain(victim);
  VerifyReport report = verify();
  std::string problem = find_problem(report, at(0, victim.location.offset));
  EXPECT_NE(problem.find("hash chain broken"), std::string::npos) << problem;
  // The rewritten frame also changes the bytes the seal's CRC covers.
  EXPECT_NE(find_problem(report, "segment_crc"), "");
}

TEST_F(VerifyTest, BrokenHashChainInTheActiveSegmentIsDetected) {
  write_log(4);
  break_chain(written_[2]);
  VerifyReport report = verify();
  ASSERT_FALSE(report.problems.empty());
  EXPECT_NE(find_problem(report, at(0, written_[2].location.offset)).find("hash chain broken"),
            std::string::npos);
}

TEST_F(VerifyTest, SealThatDisagreesWithItsSegmentIsReported) {
  write_log(40);
  std::string bytes = fs_.contents(segment_file(0)).value();
  uint64_t seal_offset = bytes.size() - frame_size(kSealPayloadSize);
  DecodedFrame frame = decode_frame(std::string_view(bytes).substr(seal_offset));
  ASSERT_EQ(frame.status, FrameStatus::kOk);
  SealInfo seal = decode_seal(frame.payload).value();
  seal.record_count += 1;
  std::string rewritten;
  append_frame(rewritten, FrameType::kSeal, encode_seal(seal));
  bytes.replace(seal_offset, rewritten.size(), rewritten);
  fs_.set_contents(segment_file(0), bytes);
  VerifyReport report = verify();
  ASSERT_EQ(report.problems.size(), 1u) << report.problems.front();
  EXPECT_NE(report.problems[0].find(at(0, seal_offset) + ": seal frame record_count"),
            std::string::npos)
      << report.problems[0];
}

TEST_F(VerifyTest, MissingSegmentIsReported) {
  write_log(60);
  ASSERT_TRUE(fs_.remove(segment_file(1)).has_value());
  VerifyReport report = verify();
  EXPECT_NE(find_problem(report, segment_file(1) + " is missing"), "");
}

TEST_F(VerifyTest, DamagedHeaderIsReportedAtOffsetZero) {
  write_log(60);
  flip_byte(segment_file(1), 20);
  VerifyReport report = verify();
  EXPECT_NE(find_problem(report, at(1, 0)), "");
}

TEST(Verify, MissingDirectoryIsNotFound) {
  io::MemFileSystem fs;
  auto report = verify_log(fs, "/nowhere", nullptr);
  ASSERT_FALSE(report.has_value());
  EXPECT_EQ(report.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace vellum::log
