// SPDX-License-Identifier: Apache-2.0
// Log: writes, reads, segment rolling, and above all recovery. The two
// exhaustive loops of style.md 6.11 are here: truncate the newest segment at
// every byte of its last frame, and flip every bit of the segment header and
// of the last frame's header, trailer and padding (and a sample of its
// payload bits); after each, Log::open must either report kDataLoss or treat
// the damage as a torn tail, never anything else. The other tests cover the
// remaining recovery rules of docs/formats/segment.md ("Recovery").
#include "log/log.h"

#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/coding.h"
#include "base/crc32c.h"
#include "io/mem_file_system.h"
#include "log/commit_record.h"
#include "testing/faulty_file_system.h"

namespace vellum::log {
namespace {

constexpr const char* kDir = "/store/log";

std::string segment_file(uint64_t index) {
  char name[64];
  std::snprintf(name, sizeof(name), "%s/segment-%08" PRIu64 ".vlm", kDir, index);
  return name;
}

// A commit payload of `events` events of one stream, as the store builds it
// (prev_hash left zero: Log::add_commit fills it in). `seed` varies sizes.
std::string make_payload(uint64_t first_position, uint32_t events, uint32_t seed) {
  std::string payload =
      encode_commit_header(CommitHeader{first_position, 1'000 + seed, Digest{}, events});
  for (uint32_t i = 0; i < events; i++) {
    EventData event;
    event.type = "Type" + std::to_string(seed % 5);
    event.data = std::string(20 + (seed * 7 + i * 13) % 90, static_cast<char>('a' + seed % 26));
    Uuid id;
    store_u64_le(reinterpret_cast<char*>(id.bytes.data()), first_position + i + 1);
    encode_event(payload, "stream-" + std::to_string(seed % 3), i, id, event);
  }
  return payload;
}

struct Written {
  RecordLocation location;
  std::string payload;  // as written, prev_hash filled in
};

class LogTest : public ::testing::Test {
 protected:
  std::unique_ptr<Log> open_log(uint64_t segment_size = uint64_t{1} << 20) {
    auto log = Log::open(fs_, kDir, LogOptions{segment_size, true, 0}, clock_);
    EXPECT_TRUE(log.has_value()) << log.error().message;
    return log ? std::move(*log) : nullptr;
  }
  Result<std::unique_ptr<Log>> try_open(uint64_t segment_size = uint64_t{1} << 20) {
    return Log::open(fs_, kDir, LogOptions{segment_size, true, 0}, clock_);
  }

  // Appends `count` commits, each written and synced as its own group.
  std::vector<Written> append(Log& log, int count) {
    std::vector<Written> written;
    for (int i = 0; i < count; i++) {
      std::string payload = make_payload(log.next_position(), 1 + i % 3, seed_++);
      auto location = log.add_commit(payload);
      EXPECT_TRUE(location.has_value());
      EXPECT_TRUE(log.write_group(true).has_value());
      written.push_back(Written{*location, payload});
    }
    return written;
  }

  // Every commit in `written` reads back bit for bit.
  void expect_readable(Log& log, const std::vector<Written>& written) {
    for (const auto& w : written) {
      auto payload = log.read_commit(w.location);
      ASSERT_TRUE(payload.has_value()) << payload.error().message;
      ASSERT_EQ(*payload, w.payload);
    }
  }

  void flip_bit(const std::string& path, uint64_t offset, int bit) {
    std::string bytes = fs_.contents(path).value();
    bytes[offset] = static_cast<char>(bytes[offset] ^ (1 << bit));
    fs_.set_contents(path, bytes);
  }

  static uint64_t end_position(const std::vector<Written>& written) {
    auto commit = decode_commit(written.back().payload, "test").value();
    return commit.header.first_position + commit.header.event_count;
  }

  io::MemFileSystem fs_;
  SimClock clock_;
  uint32_t seed_ = 1;
};

TEST_F(LogTest, NewLogStartsEmpty) {
  auto log = open_log();
  EXPECT_EQ(log->recovered_tail().next_position, 0u);
  EXPECT_EQ(log->recovered_tail().end, (RecordLocation{0, kSegmentHeaderSize}));
  EXPECT_EQ(log->last_hash(), Digest{});
  EXPECT_EQ(log->segment_count(), 1u);
  EXPECT_EQ(fs_.contents(segment_file(0)).value().size(), kSegmentHeaderSize);
}

TEST_F(LogTest, WritesChainAndReadsBackAfterReopen) {
  auto log = open_log();
  auto written = append(*log, 6);
  Digest previous{};
  for (const auto& w : written) {
    auto commit = decode_commit(w.payload, "test").value();
    EXPECT_EQ(commit.header.prev_hash, previous);  // add_commit filled in the link
    previous = chain_hash(w.payload);
  }
  EXPECT_EQ(log->last_hash(), previous);
  log.reset();
  log = open_log();
  expect_readable(*log, written);
  EXPECT_EQ(log->recovered_tail().next_position, end_position(written));
  EXPECT_EQ(log->recovered_tail().last_hash, previous);
  EXPECT_EQ(log->recovered_tail().truncated_bytes, 0u);
  EXPECT_EQ(log->recovered_tail().last_recorded_unix_ns, 1'000 + 6);
  std::vector<std::string> scanned;
  ASSERT_TRUE(log->scan(log->begin(), log->written_end(),
                        [&](RecordLocation, std::string_view payload) -> Status {
                          scanned.emplace_back(payload);
                          return ok_status();
                        })
                  .has_value());
  ASSERT_EQ(scanned.size(), written.size());
  for (size_t i = 0; i < scanned.size(); i++) EXPECT_EQ(scanned[i], written[i].payload);
}

// Goal: a cut anywhere inside the last frame (a torn write) loses exactly
// that frame. Method: for every byte offset of the last frame, truncate the
// segment there, reopen, and check the tail, the survivors and that the log
// continues correctly (a new commit chains onto the survivor).
TEST_F(LogTest, ExhaustiveTruncationOfTheLastFrame) {
  auto log = open_log();
  auto written = append(*log, 5);
  log.reset();
  const std::string original = fs_.contents(segment_file(0)).value();
  const uint64_t start = written.back().location.offset;
  ASSERT_EQ(start + frame_size(written.back().payload.size()), original.size());
  std::vector<Written> survivors(written.begin(), written.end() - 1);
  const Digest survivor_hash = chain_hash(survivors.back().payload);
  const uint64_t survivor_end = end_position(survivors);
  for (uint64_t cut = start; cut < original.size(); cut++) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    fs_.set_contents(segment_file(0), original.substr(0, cut));
    auto reopened = open_log();
    ASSERT_NE(reopened, nullptr);
    const LogTail& tail = reopened->recovered_tail();
    EXPECT_EQ(tail.end, (RecordLocation{0, start}));
    EXPECT_EQ(tail.truncated_bytes, cut - start);
    EXPECT_EQ(tail.next_position, survivor_end);
    EXPECT_EQ(tail.last_hash, survivor_hash);
    EXPECT_EQ(fs_.contents(segment_file(0)).value(), original.substr(0, start));
    expect_readable(*reopened, survivors);
    auto more = append(*reopened, 1);
    EXPECT_EQ(more[0].location, (RecordLocation{0, start}));
    EXPECT_EQ(decode_commit(more[0].payload, "t").value().header.prev_hash, survivor_hash);
  }
}

// What Log::open may do with one flipped bit in the newest segment: refuse
// with kDataLoss, or cut the last frame as a torn tail. Nothing else.
void expect_data_loss_or_torn(const Result<std::unique_ptr<Log>>& opened, uint64_t last_start,
                              uint64_t survivor_end, const Digest& survivor_hash) {
  if (!opened.has_value()) {
    EXPECT_EQ(opened.error().code, ErrorCode::kDataLoss) << opened.error().message;
    return;
  }
  const LogTail& tail = (*opened)->recovered_tail();
  EXPECT_EQ(tail.end, (RecordLocation{0, last_start}));
  EXPECT_EQ(tail.next_position, survivor_end);
  EXPECT_EQ(tail.last_hash, survivor_hash);
}

TEST_F(LogTest, ExhaustiveBitFlipsInHeaderAndLastFrame) {
  auto log = open_log();
  auto written = append(*log, 4);
  log.reset();
  const std::string original = fs_.contents(segment_file(0)).value();
  const uint64_t start = written.back().location.offset;
  const uint64_t payload_bytes = written.back().payload.size();
  std::vector<Written> survivors(written.begin(), written.end() - 1);
  const Digest survivor_hash = chain_hash(survivors.back().payload);
  const uint64_t survivor_end = end_position(survivors);
  std::vector<uint64_t> bits;  // bit numbers within the file
  for (uint64_t b = 0; b < kSegmentHeaderSize * 8; b++) bits.push_back(b);
  for (uint64_t b = 0; b < kFrameHeaderSize * 8; b++) bits.push_back(start * 8 + b);
  for (uint64_t b = (start + kFrameHeaderSize + payload_bytes) * 8; b < original.size() * 8; b++) {
    bits.push_back(b);  // trailer and padding
  }
  for (uint64_t b = (start + kFrameHeaderSize) * 8;
       b < (start + kFrameHeaderSize + payload_bytes) * 8; b += 7) {
    bits.push_back(b);  // a sample of the payload
  }
  int header_data_loss = 0;
  for (uint64_t bit : bits) {
    SCOPED_TRACE("bit " + std::to_string(bit));
    std::string damaged = original;
    damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
    fs_.set_contents(segment_file(0), damaged);
    auto opened = try_open();
    expect_data_loss_or_torn(opened, start, survivor_end, survivor_hash);
    if (bit < kSegmentHeaderSize * 8) {
      header_data_loss += !opened.has_value();  // the header is never a torn tail
    } else if (opened.has_value()) {
      expect_readable(**opened, survivors);
    }
  }
  EXPECT_EQ(header_data_loss, static_cast<int>(kSegmentHeaderSize * 8));
}

// A whole last record whose payload changed after it was written is not a
// torn write: it may be acknowledged data, so open refuses instead of cutting.
TEST_F(LogTest, WholeLastRecordWithBadChecksumIsDataLossNotTruncated) {
  auto log = open_log();
  auto written = append(*log, 3);
  log.reset();
  uint64_t last = written.back().location.offset;
  std::string before = fs_.contents(segment_file(0)).value();
  flip_bit(segment_file(0), last + kFrameHeaderSize + 20, 3);  // inside the payload
  auto reopened = try_open();
  ASSERT_FALSE(reopened.has_value());
  EXPECT_EQ(reopened.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(reopened.error().message.find(std::to_string(last)), std::string::npos);
  EXPECT_EQ(fs_.contents(segment_file(0)).value().size(), before.size());  // nothing cut
}

// A torn write (a sector of the last record never reached the disk, read back
// as zeros) is cut, and the cut bytes are kept beside the segment.
TEST_F(LogTest, TornLastRecordIsCutAndItsBytesKept) {
  auto log = open_log();
  append(*log, 2);
  std::string big = make_payload(log->next_position(), 1, 99);
  big.append(2000, 'x');  // not a valid commit any more, but the frame is whole
  store_u32_le(big.data() + 48, 1);
  auto location = log->add_commit(big);
  ASSERT_TRUE(location.has_value());
  ASSERT_TRUE(log->write_group(true).has_value());
  log.reset();
  std::string bytes = fs_.contents(segment_file(0)).value();
  uint64_t sector = (location->offset + 511) / 512 * 512;
  ASSERT_LE(sector + 512, bytes.size());
  std::fill(bytes.begin() + static_cast<long>(sector),
            bytes.begin() + static_cast<long>(sector) + 512, '\0');
  fs_.set_contents(segment_file(0), bytes);
  auto reopened = open_log();
  EXPECT_EQ(reopened->recovered_tail().end.offset, location->offset);
  auto kept = fs_.contents(segment_file(0) + ".torn-" + std::to_string(location->offset));
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(*kept, bytes.substr(location->offset));
}

// With preallocation the active segment ends in zeros: recovery treats them as
// the clean end of the data (no torn bytes, nothing kept), a torn record in
// the zero-filled space is still cut, and a sealed segment ends at its seal.
TEST_F(LogTest, PreallocatedZerosAreTheCleanEndOfTheData) {
  LogOptions options{8192, true, 4096};
  auto log = Log::open(fs_, kDir, options, clock_).value();
  std::vector<Written> written = append(*log, 3);
  EXPECT_GT(fs_.contents(segment_file(0)).value().size(), written.back().location.offset + 64);
  log.reset();
  log = Log::open(fs_, kDir, options, clock_).value();
  EXPECT_EQ(log->recovered_tail().truncated_bytes, 0u);
  EXPECT_EQ(log->recovered_tail().next_position, end_position(written));
  expect_readable(*log, written);
  // A record torn inside the zero-filled space: its first bytes landed.
  std::string payload = make_payload(log->next_position(), 2, 77);
  auto location = log->add_commit(payload).value();
  ASSERT_TRUE(log->write_group(true).has_value());
  log.reset();
  std::string bytes = fs_.contents(segment_file(0)).value();
  uint64_t cut = location.offset + 24;
  std::fill(bytes.begin() + static_cast<long>(cut), bytes.end(), '\0');
  fs_.set_contents(segment_file(0), bytes);
  log = Log::open(fs_, kDir, options, clock_).value();
  EXPECT_EQ(log->recovered_tail().end.offset, location.offset);
  EXPECT_GT(log->recovered_tail().truncated_bytes, 0u);
  expect_readable(*log, written);
  // Rolling seals segment 0 at its seal frame: no zeros after it.
  append(*log, 40);
  ASSERT_GT(log->segment_count(), 1u);
  std::string sealed = fs_.contents(segment_file(0)).value();
  DecodedFrame seal = decode_frame(std::string_view(sealed).substr(sealed.size() - 88));
  EXPECT_EQ(seal.status, FrameStatus::kOk);
  EXPECT_EQ(seal.type, FrameType::kSeal);
}

TEST_F(LogTest, DamageInTheMiddleOfTheActiveSegmentIsDataLoss) {
  auto log = open_log();
  auto written = append(*log, 5);
  log.reset();
  uint64_t offset = written[2].location.offset;
  flip_bit(segment_file(0), offset + kFrameHeaderSize + 60, 3);
  auto opened = try_open();
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(opened.error().message.find(segment_file(0) + " at offset " + std::to_string(offset)),
            std::string::npos)
      << opened.error().message;
  // Nothing was truncated: the damage is refused, not skipped.
  EXPECT_EQ(fs_.contents(segment_file(0)).value().size(),
            written.back().location.offset + frame_size(written.back().payload.size()));
}

// Rewrites the frame at `offset` with a payload whose prev_hash is wrong but
// whose frame CRC is valid: only the hash chain can tell.
void break_chain_at(io::MemFileSystem& fs, const std::string& path, const Written& w) {
  std::string bytes = fs.contents(path).value();
  std::string payload = w.payload;
  payload[kCommitHeaderSize - 40] ^= 0x01;  // inside prev_hash (offset 16..47)
  std::string frame;
  append_frame(frame, FrameType::kCommit, payload);
  bytes.replace(w.location.offset, frame.size(), frame);
  fs.set_contents(path, bytes);
}

TEST_F(LogTest, BrokenHashChainIsDataLossOnOpen) {
  auto log = open_log();
  auto written = append(*log, 4);
  log.reset();
  break_chain_at(fs_, segment_file(0), written[2]);
  auto opened = try_open();
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(opened.error().message.find("hash chain"), std::string::npos);
  EXPECT_NE(opened.error().message.find("offset " + std::to_string(written[2].location.offset)),
            std::string::npos);
}

TEST_F(LogTest, RollsSegmentsAndReopens) {
  auto log = open_log(4096);
  auto written = append(*log, 60);
  ASSERT_GE(log->segment_count(), 3u);
  uint64_t segments = log->segment_count();
  for (uint64_t i = 0; i < segments; i++) {
    EXPECT_LE(fs_.contents(segment_file(i)).value().size(), 4096u) << i;
  }
  log.reset();
  log = open_log(4096);
  EXPECT_EQ(log->segment_count(), segments);
  expect_readable(*log, written);
  EXPECT_EQ(log->recovered_tail().next_position, end_position(written));
  EXPECT_EQ(log->recovered_tail().last_hash, chain_hash(written.back().payload));
  auto more = append(*log, 30);
  written.insert(written.end(), more.begin(), more.end());
  log.reset();
  log = open_log(4096);
  expect_readable(*log, written);
  uint64_t count = 0;
  ASSERT_TRUE(log->scan(log->begin(), log->written_end(),
                        [&](RecordLocation location, std::string_view payload) -> Status {
                          EXPECT_EQ(location, written[count].location);
                          EXPECT_EQ(payload, written[count].payload);
                          count++;
                          return ok_status();
                        })
                  .has_value());
  EXPECT_EQ(count, written.size());
}

// Sealed segments are checked lazily: open reads only header and seal frame,
// so damage inside one surfaces when the record is read.
TEST_F(LogTest, DamageInASealedSegmentIsDataLossOnRead) {
  auto log = open_log(4096);
  auto written = append(*log, 40);
  ASSERT_GE(log->segment_count(), 2u);
  log.reset();
  ASSERT_EQ(written[1].location.segment_index, 0u);
  uint64_t offset = written[1].location.offset;
  flip_bit(segment_file(0), offset + kFrameHeaderSize + 70, 0);
  log = open_log(4096);
  ASSERT_NE(log, nullptr);
  auto read = log->read_commit(written[1].location);
  ASSERT_FALSE(read.has_value());
  EXPECT_EQ(read.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(read.error().message.find(segment_file(0) + " at offset " + std::to_string(offset)),
            std::string::npos)
      << read.error().message;
  EXPECT_TRUE(log->read_commit(written[0].location).has_value());
  auto scanned = log->scan(log->begin(), log->written_end(),
                           [](RecordLocation, std::string_view) { return ok_status(); });
  ASSERT_FALSE(scanned.has_value());
  EXPECT_EQ(scanned.error().code, ErrorCode::kDataLoss);
}

TEST_F(LogTest, DamagedSealFrameIsDataLossOnOpen) {
  auto log = open_log(4096);
  append(*log, 40);
  log.reset();
  uint64_t size = fs_.contents(segment_file(0)).value().size();
  uint64_t seal_offset = size - frame_size(kSealPayloadSize);
  flip_bit(segment_file(0), seal_offset + kFrameHeaderSize + 20, 5);
  auto opened = try_open(4096);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(
      opened.error().message.find(segment_file(0) + " at offset " + std::to_string(seal_offset)),
      std::string::npos)
      << opened.error().message;
}

TEST_F(LogTest, TruncatedSealedSegmentIsDataLossOnOpen) {
  auto log = open_log(4096);
  append(*log, 40);
  log.reset();
  std::string bytes = fs_.contents(segment_file(0)).value();
  fs_.set_contents(segment_file(0), bytes.substr(0, bytes.size() - 8));
  auto opened = try_open(4096);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(opened.error().message.find(segment_file(0)), std::string::npos);
}

void rewrite_min_reader_version(io::MemFileSystem& fs, const std::string& path) {
  std::string bytes = fs.contents(path).value();
  SegmentHeader header = decode_segment_header(bytes).value();
  header.min_reader_version = kFormatVersion + 1;
  bytes.replace(0, kSegmentHeaderSize, encode_segment_header(header));
  fs.set_contents(path, bytes);
}

TEST_F(LogTest, NewerMinReaderVersionIsFailedPrecondition) {
  auto log = open_log(4096);
  append(*log, 40);
  uint64_t newest = log->segment_count() - 1;
  log.reset();
  for (uint64_t index : {newest, uint64_t{0}}) {  // the active segment, then a sealed one
    SCOPED_TRACE(index);
    std::string saved = fs_.contents(segment_file(index)).value();
    rewrite_min_reader_version(fs_, segment_file(index));
    auto opened = try_open(4096);
    ASSERT_FALSE(opened.has_value());
    EXPECT_EQ(opened.error().code, ErrorCode::kFailedPrecondition) << opened.error().message;
    EXPECT_NE(opened.error().message.find(segment_file(index)), std::string::npos);
    fs_.set_contents(segment_file(index), saved);
  }
}

TEST_F(LogTest, MissingSegmentIsDataLoss) {
  auto log = open_log(4096);
  append(*log, 60);
  ASSERT_GE(log->segment_count(), 3u);
  log.reset();
  ASSERT_TRUE(fs_.remove(segment_file(1)).has_value());
  auto opened = try_open(4096);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(opened.error().message.find(segment_file(1)), std::string::npos);
  EXPECT_NE(opened.error().message.find("missing"), std::string::npos);
}

TEST_F(LogTest, SegmentFromAnotherPlaceIsDataLoss) {
  auto log = open_log(4096);
  append(*log, 60);
  log.reset();
  // Segment 1 copied over segment 2: positions and index no longer continue.
  fs_.set_contents(segment_file(2), fs_.contents(segment_file(1)).value());
  auto opened = try_open(4096);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kDataLoss);
}

// A crash right after a roll can leave the new segment without a whole
// header (it is written before any frame). Open recreates it; the tail must
// be where the sealed segments ended.
TEST_F(LogTest, NewestSegmentWithTornHeaderIsRecreated) {
  auto log = open_log(4096);
  auto written = append(*log, 40);
  uint64_t newest = log->segment_count() - 1;
  log.reset();
  std::vector<Written> sealed;
  for (const auto& w : written) {
    if (w.location.segment_index < newest) sealed.push_back(w);
  }
  // The state of a crash just after the roll: the newest segment has only
  // part of its header.
  std::string newest_bytes = fs_.contents(segment_file(newest)).value();
  fs_.set_contents(segment_file(newest), newest_bytes.substr(0, 20));
  log = open_log(4096);
  EXPECT_EQ(log->recovered_tail().next_position, end_position(sealed));
  EXPECT_EQ(log->recovered_tail().last_hash, chain_hash(sealed.back().payload));
  EXPECT_EQ(log->recovered_tail().end, (RecordLocation{newest, kSegmentHeaderSize}));
  auto more = append(*log, 2);
  EXPECT_EQ(decode_commit(more[0].payload, "t").value().header.prev_hash,
            chain_hash(sealed.back().payload));
  log.reset();
  log = open_log(4096);
  expect_readable(*log, sealed);
  expect_readable(*log, more);
}

// A crash after the seal frame was synced but before the next segment's
// file was made durable: the newest segment is sealed. Open starts the next.
TEST_F(LogTest, SealedNewestSegmentGetsASuccessor) {
  auto log = open_log(4096);
  auto written = append(*log, 40);
  uint64_t newest = log->segment_count() - 1;
  log.reset();
  ASSERT_TRUE(fs_.remove(segment_file(newest)).has_value());
  std::vector<Written> sealed;
  for (const auto& w : written) {
    if (w.location.segment_index < newest) sealed.push_back(w);
  }
  log = open_log(4096);
  EXPECT_EQ(log->segment_count(), newest + 1);
  EXPECT_EQ(log->recovered_tail().next_position, end_position(sealed));
  EXPECT_EQ(log->recovered_tail().last_hash, chain_hash(sealed.back().payload));
  EXPECT_EQ(log->recovered_tail().end, (RecordLocation{newest, kSegmentHeaderSize}));
  auto more = append(*log, 1);
  EXPECT_EQ(more[0].location, (RecordLocation{newest, kSegmentHeaderSize}));
  expect_readable(*log, sealed);
}

// After a failed fsync the writer refuses everything (the page cache can no
// longer be trusted), while reads of what was written keep working.
TEST(LogFaults, FailedSyncFailsTheWriterButNotReaders) {
  testing::FaultyFileSystem fs(7);
  SimClock clock;
  auto log = Log::open(fs, kDir, LogOptions{}, clock).value();
  std::vector<Written> written;
  for (uint32_t i = 0; i < 3; i++) {
    std::string payload = make_payload(log->next_position(), 2, i);
    auto location = log->add_commit(payload).value();
    ASSERT_TRUE(log->write_group(true).has_value());
    written.push_back(Written{location, payload});
  }
  fs.fail_after(0, testing::FaultOp::kSync);
  std::string payload = make_payload(log->next_position(), 1, 9);
  ASSERT_TRUE(log->add_commit(payload).has_value());
  auto status = log->write_group(true);
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, ErrorCode::kIoError);
  EXPECT_TRUE(log->failed());
  std::string next = make_payload(log->next_position(), 1, 10);
  auto added = log->add_commit(next);
  ASSERT_FALSE(added.has_value());
  EXPECT_EQ(added.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(log->write_group(false).error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(log->sync().error().code, ErrorCode::kUnavailable);
  for (const auto& w : written) {
    auto read = log->read_commit(w.location);
    ASSERT_TRUE(read.has_value()) << read.error().message;
    EXPECT_EQ(*read, w.payload);
  }
}

TEST(LogFaults, FailedWriteFailsTheWriter) {
  testing::FaultyFileSystem fs(8);
  SimClock clock;
  auto log = Log::open(fs, kDir, LogOptions{}, clock).value();
  std::string payload = make_payload(0, 1, 1);
  auto location = log->add_commit(payload).value();
  ASSERT_TRUE(log->write_group(true).has_value());
  fs.fail_after(0, testing::FaultOp::kWrite);
  std::string second = make_payload(log->next_position(), 1, 2);
  ASSERT_TRUE(log->add_commit(second).has_value());
  EXPECT_EQ(log->write_group(false).error().code, ErrorCode::kIoError);
  EXPECT_TRUE(log->failed());
  EXPECT_EQ(log->write_group(true).error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(log->read_commit(location).value(), payload);
}

TEST(LogOpen, RejectsTinySegmentsAndMissingDirectory) {
  io::MemFileSystem fs;
  SimClock clock;
  EXPECT_EQ(Log::open(fs, kDir, LogOptions{1024, true}, clock).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(Log::open(fs, kDir, LogOptions{4096, false}, clock).error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace vellum::log
