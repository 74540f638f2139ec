// SPDX-License-Identifier: Apache-2.0
// The v1 golden segment, tests/data/formats/v1/segment-00000000.vlm (contents
// described in the README beside it). Every later version of the code must
// still read it: the test copies the checked-in file into a MemFileSystem,
// opens it with Log::open and verify_log, and checks every decoded field and
// the chain hash of the last record against values written down here.
//
// build_golden_segment() is the generator. It uses the codec directly (not
// Log) so the bytes are deterministic: Log picks a random store tag. To
// regenerate after a deliberate change of the generator (never of the v1
// format: a format change gets a new vN directory), run
//   VL_WRITE_GOLDEN=/path/to/segment-00000000.vlm log_test --gtest_filter='GoldenV1.*'
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "base/crc32c.h"
#include "io/mem_file_system.h"
#include "log/commit_record.h"
#include "log/log.h"
#include "log/record_format.h"
#include "log/verify.h"

#ifndef VL_SOURCE_DIR
#error "VL_SOURCE_DIR must name the source tree (target_compile_definitions)"
#endif

namespace vellum::log {
namespace {

constexpr const char* kGoldenPath = VL_SOURCE_DIR "/tests/data/formats/v1/segment-00000000.vlm";
constexpr uint32_t kGoldenStoreTag = 0x5eedf00d;
constexpr int64_t kStartUnixNs = 1'700'000'000'000'000'000;  // SimClock's default
constexpr int64_t kMs = 1'000'000;

// The event ids: 01890000-0000-7000-8000-0000000000NN for N = 1..5.
Uuid golden_id(uint8_t n) {
  Uuid id = *Uuid::parse("01890000-0000-7000-8000-000000000000");
  id.bytes[15] = n;
  return id;
}

struct GoldenEvent {
  std::string stream;
  uint64_t revision;
  EventData data;
};

EventData event_data(uint8_t n, std::string type, std::string data) {
  EventData event;
  event.id = golden_id(n);
  event.type = std::move(type);
  event.data = std::move(data);
  return event;
}

// The three commits of the golden log, in order.
std::vector<std::vector<GoldenEvent>> golden_commits() {
  EventData notified = event_data(4, "CustomerNotified", R"({"order":"order-1"})");
  notified.metadata = R"({"by":"mailer"})";
  notified.correlation_id = "corr-1";
  notified.causation_id = golden_id(3).to_string();
  notified.subject = "customer-7";
  EventData binary = event_data(5, "BlobStored", std::string("\x00\xff\x10\x80", 4));
  binary.content_type = "application/octet-stream";
  binary.occurrence_time_unix_ns = kStartUnixNs - 60 * 1000 * kMs;
  binary.schema_version = 2;
  return {
      {{"order-1", 0, event_data(1, "OrderPlaced", R"({"total":42})")},
       {"order-1", 1, event_data(2, "OrderPaid", R"({"amount":42})")}},
      {{"order-1", 2, event_data(3, "OrderShipped", "{}")}, {"customer-7", 0, notified}},
      {{"order-2", 0, binary}},
  };
}

// The golden segment: header, the three commits (recorded 1 ms apart,
// starting 1 ms after creation), and the seal frame.
std::string build_golden_segment() {
  SimClock clock;
  SegmentHeader header;
  header.created_unix_ns = clock.now_unix_ns();
  header.store_tag = kGoldenStoreTag;
  std::string segment = encode_segment_header(header);
  uint64_t position = 0;
  uint64_t records = 0;
  Digest hash{};
  for (const auto& events : golden_commits()) {
    clock.advance_ns(kMs);
    auto count = static_cast<uint32_t>(events.size());
    std::string payload =
        encode_commit_header(CommitHeader{position, clock.now_unix_ns(), hash, count});
    for (const auto& e : events) encode_event(payload, e.stream, e.revision, e.data.id, e.data);
    append_frame(segment, FrameType::kCommit, payload);
    hash = chain_hash(payload);
    position += count;
    records++;
  }
  SealInfo seal{
      0, 0, position, records, std::string(hash.begin(), hash.end()), crc32c::value(segment)};
  append_frame(segment, FrameType::kSeal, encode_seal(seal));
  return segment;
}

std::string read_golden() {
  std::ifstream in(kGoldenPath, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << kGoldenPath;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(GoldenV1, WriteWhenAsked) {
  const char* target = std::getenv("VL_WRITE_GOLDEN");
  if (target == nullptr) GTEST_SKIP() << "set VL_WRITE_GOLDEN=<path> to regenerate";
  std::string segment = build_golden_segment();
  std::ofstream out(target, std::ios::binary | std::ios::trunc);
  out.write(segment.data(), static_cast<std::streamsize>(segment.size()));
  ASSERT_TRUE(out.good());
}

// The generator still produces the checked-in bytes: the codec has not
// drifted from v1.
TEST(GoldenV1, GeneratorReproducesTheFile) {
  std::string golden = read_golden();
  EXPECT_EQ(golden.size(), 1024u);
  EXPECT_TRUE(golden == build_golden_segment());
}

// Log writes the same commit frames as the generator (only the header's
// store tag and creation time, and the absence of a seal, differ).
TEST(GoldenV1, LogWritesTheSameFrames) {
  io::MemFileSystem fs;
  SimClock clock;
  auto log = Log::open(fs, "/log", LogOptions{uint64_t{256} << 20, true, 0}, clock).value();
  for (const auto& events : golden_commits()) {
    clock.advance_ns(kMs);
    auto count = static_cast<uint32_t>(events.size());
    std::string payload = encode_commit_header(
        CommitHeader{log->next_position(), clock.now_unix_ns(), Digest{}, count});
    for (const auto& e : events) encode_event(payload, e.stream, e.revision, e.data.id, e.data);
    ASSERT_TRUE(log->add_commit(payload).has_value());
  }
  ASSERT_TRUE(log->write_group(true).has_value());
  std::string written = fs.contents("/log/segment-00000000.vlm").value();
  std::string golden = read_golden();
  uint64_t seal_offset = golden.size() - frame_size(kSealPayloadSize);
  EXPECT_TRUE(written.substr(kSegmentHeaderSize) ==
              golden.substr(kSegmentHeaderSize, seal_offset - kSegmentHeaderSize));
}

class GoldenV1Read : public ::testing::Test {
 protected:
  void SetUp() override {
    golden_ = read_golden();
    ASSERT_FALSE(golden_.empty());
    ASSERT_TRUE(fs_.create_dirs("/store/log").has_value());
    fs_.set_contents("/store/log/segment-00000000.vlm", golden_);
  }
  io::MemFileSystem fs_;
  SimClock clock_;
  std::string golden_;
};

TEST_F(GoldenV1Read, HeaderFields) {
  auto header = decode_segment_header(golden_).value();
  EXPECT_EQ(header.format_version, 1);
  EXPECT_EQ(header.min_reader_version, 1);
  EXPECT_EQ(header.segment_index, 0u);
  EXPECT_EQ(header.first_position, 0u);
  EXPECT_EQ(header.created_unix_ns, kStartUnixNs);
  EXPECT_EQ(header.store_tag, kGoldenStoreTag);
}

TEST_F(GoldenV1Read, SealFields) {
  uint64_t seal_offset = golden_.size() - frame_size(kSealPayloadSize);
  EXPECT_EQ(seal_offset, 936u);
  DecodedFrame frame = decode_frame(std::string_view(golden_).substr(seal_offset));
  ASSERT_EQ(frame.status, FrameStatus::kOk);
  ASSERT_EQ(frame.type, FrameType::kSeal);
  SealInfo seal = decode_seal(frame.payload).value();
  EXPECT_EQ(seal.segment_index, 0u);
  EXPECT_EQ(seal.first_position, 0u);
  EXPECT_EQ(seal.next_position, 5u);
  EXPECT_EQ(seal.record_count, 3u);
  EXPECT_EQ(seal.segment_crc, crc32c::value(std::string_view(golden_).substr(0, seal_offset)));
}

TEST_F(GoldenV1Read, VerifiesClean) {
  auto report = verify_log(fs_, "/store/log", nullptr).value();
  EXPECT_TRUE(report.problems.empty()) << report.problems.front();
  EXPECT_EQ(report.segments, 1u);
  EXPECT_EQ(report.records, 3u);
  EXPECT_EQ(report.events, 5u);
  EXPECT_EQ(report.bytes, golden_.size());
  EXPECT_EQ(digest_hex(report.last_hash),
            "8ee9515a93286481d4bb1ae33c5270877f538d10247baba73ef6dac049b16d6b");
}

// Every decoded field of every event, through Log::open and scan().
TEST_F(GoldenV1Read, EveryDecodedField) {
  auto log = Log::open(fs_, "/store/log", LogOptions{}, clock_).value();
  const LogTail& tail = log->recovered_tail();
  EXPECT_EQ(tail.next_position, 5u);
  EXPECT_EQ(tail.truncated_bytes, 0u);
  EXPECT_EQ(digest_hex(tail.last_hash),
            "8ee9515a93286481d4bb1ae33c5270877f538d10247baba73ef6dac049b16d6b");
  std::vector<std::pair<RecordLocation, std::string>> records;
  ASSERT_TRUE(log->scan(log->begin(), RecordLocation{0, golden_.size()},
                        [&](RecordLocation location, std::string_view payload) -> Status {
                          records.emplace_back(location, std::string(payload));
                          return ok_status();
                        })
                  .has_value());
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].first, (RecordLocation{0, 64}));
  EXPECT_EQ(records[1].first, (RecordLocation{0, 368}));
  EXPECT_EQ(records[2].first, (RecordLocation{0, 744}));
  auto expected = golden_commits();
  Digest previous{};
  uint64_t position = 0;
  for (size_t r = 0; r < records.size(); r++) {
    SCOPED_TRACE("record " + std::to_string(r));
    auto commit = decode_commit(records[r].second, "golden").value();
    EXPECT_EQ(commit.header.first_position, position);
    EXPECT_EQ(commit.header.recorded_time_unix_ns,
              kStartUnixNs + static_cast<int64_t>(r + 1) * kMs);
    EXPECT_EQ(commit.header.prev_hash, previous);
    ASSERT_EQ(commit.header.event_count, expected[r].size());
    for (size_t i = 0; i < expected[r].size(); i++) {
      const GoldenEvent& want = expected[r][i];
      const EventView& got = commit.events[i];
      EXPECT_EQ(got.stream, want.stream);
      EXPECT_EQ(got.revision, want.revision);
      EXPECT_EQ(got.id, want.data.id);
      EXPECT_EQ(got.type, want.data.type);
      EXPECT_EQ(got.content_type, want.data.content_type);
      EXPECT_EQ(got.data, want.data.data);
      EXPECT_EQ(got.metadata, want.data.metadata);
      EXPECT_EQ(got.correlation_id, want.data.correlation_id);
      EXPECT_EQ(got.causation_id, want.data.causation_id);
      EXPECT_EQ(got.subject, want.data.subject);
      EXPECT_EQ(got.occurrence_time_unix_ns, want.data.occurrence_time_unix_ns);
      EXPECT_EQ(got.schema_version, want.data.schema_version);
      EXPECT_EQ(got.key_id, 0u);
    }
    previous = chain_hash(records[r].second);
    position += commit.header.event_count;
    EXPECT_EQ(log->read_commit(records[r].first).value(), records[r].second);
  }
  // Spot checks of literal values, independent of the generator above.
  auto last = decode_commit(records[2].second, "golden").value();
  EXPECT_EQ(last.events[0].id.to_string(), "01890000-0000-7000-8000-000000000005");
  EXPECT_EQ(last.events[0].data, std::string("\x00\xff\x10\x80", 4));
  EXPECT_EQ(last.events[0].occurrence_time_unix_ns, 1'699'999'940'000'000'000);
  EXPECT_EQ(last.events[0].schema_version, 2u);
  auto second = decode_commit(records[1].second, "golden").value();
  EXPECT_EQ(second.events[1].causation_id, "01890000-0000-7000-8000-000000000003");
  EXPECT_EQ(second.events[1].subject, "customer-7");
}

}  // namespace
}  // namespace vellum::log
