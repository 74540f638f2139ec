// SPDX-License-Identifier: Apache-2.0
// The codecs of record_format.h and commit_record.h: exact byte layouts (the
// docs/formats/segment.md tables are checked here, byte by byte), round
// trips, and rejection of every kind of malformed input the decoders guard.
#include "log/record_format.h"

#include <string>

#include <gtest/gtest.h>

#include "base/coding.h"
#include "base/crc32c.h"
#include "log/commit_record.h"

namespace vellum::log {
namespace {

SegmentHeader sample_header() {
  SegmentHeader header;
  header.segment_index = 7;
  header.first_position = 1234;
  header.created_unix_ns = 1'700'000'000'000'000'000;
  header.store_tag = 0xa1b2c3d4;
  return header;
}

// Re-seals a hand-edited header with a valid CRC.
void fix_header_crc(std::string& bytes) {
  store_u32_le(bytes.data() + kSegmentHeaderCrcOffset,
               crc32c::mask(crc32c::value(std::string_view(bytes).substr(0, 60))));
}

TEST(SegmentHeader, HasTheDocumentedLayout) {
  std::string bytes = encode_segment_header(sample_header());
  ASSERT_EQ(bytes.size(), kSegmentHeaderSize);
  EXPECT_EQ(bytes.substr(0, 8), "VLMSEG01");
  EXPECT_EQ(load_u16_le(bytes.data() + 8), kFormatVersion);
  EXPECT_EQ(load_u16_le(bytes.data() + 10), kMinReaderVersion);
  EXPECT_EQ(load_u32_le(bytes.data() + 12), 0u);
  EXPECT_EQ(load_u64_le(bytes.data() + 16), 7u);
  EXPECT_EQ(load_u64_le(bytes.data() + 24), 1234u);
  EXPECT_EQ(load_u64_le(bytes.data() + 32), 1'700'000'000'000'000'000u);
  EXPECT_EQ(load_u32_le(bytes.data() + 40), 0xa1b2c3d4u);
  EXPECT_EQ(bytes.substr(44, 16), std::string(16, '\0'));
  EXPECT_EQ(crc32c::unmask(load_u32_le(bytes.data() + 60)),
            crc32c::value(std::string_view(bytes).substr(0, 60)));
}

TEST(SegmentHeader, RoundTrips) {
  auto decoded = decode_segment_header(encode_segment_header(sample_header()));
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(decoded->format_version, kFormatVersion);
  EXPECT_EQ(decoded->min_reader_version, kMinReaderVersion);
  EXPECT_EQ(decoded->segment_index, 7u);
  EXPECT_EQ(decoded->first_position, 1234u);
  EXPECT_EQ(decoded->created_unix_ns, 1'700'000'000'000'000'000);
  EXPECT_EQ(decoded->store_tag, 0xa1b2c3d4u);
}

TEST(SegmentHeader, RejectsTruncatedBadMagicAndBadCrc) {
  std::string bytes = encode_segment_header(sample_header());
  for (size_t n = 0; n < kSegmentHeaderSize; n++) {
    EXPECT_EQ(decode_segment_header(bytes.substr(0, n)).error().code, ErrorCode::kDataLoss);
  }
  std::string magic = bytes;
  magic[7] = '2';
  fix_header_crc(magic);
  EXPECT_EQ(decode_segment_header(magic).error().code, ErrorCode::kDataLoss);
  std::string crc = bytes;
  crc[20] ^= 1;
  EXPECT_EQ(decode_segment_header(crc).error().code, ErrorCode::kDataLoss);
}

TEST(SegmentHeader, RejectsNonZeroReservedBytesEvenWithAValidCrc) {
  for (size_t offset : {12u, 15u, 44u, 59u}) {
    std::string bytes = encode_segment_header(sample_header());
    bytes[offset] = 1;
    fix_header_crc(bytes);
    auto decoded = decode_segment_header(bytes);
    ASSERT_FALSE(decoded.has_value()) << offset;
    EXPECT_EQ(decoded.error().code, ErrorCode::kDataLoss) << offset;
  }
}

TEST(SegmentHeader, NewerMinReaderVersionIsFailedPrecondition) {
  SegmentHeader header = sample_header();
  header.min_reader_version = kFormatVersion + 1;
  auto decoded = decode_segment_header(encode_segment_header(header));
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error().code, ErrorCode::kFailedPrecondition);
}

// A newer writer that stays readable by this version (min_reader_version
// unchanged) is accepted: that is what the two version fields are for.
TEST(SegmentHeader, NewerFormatVersionReadableByUsIsAccepted) {
  SegmentHeader header = sample_header();
  header.format_version = kFormatVersion + 3;
  auto decoded = decode_segment_header(encode_segment_header(header));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->format_version, kFormatVersion + 3);
}

TEST(Frame, SizeIsAlignedAndCoversHeaderPayloadTrailer) {
  EXPECT_EQ(frame_size(0), 16u);
  EXPECT_EQ(frame_size(1), 24u);
  EXPECT_EQ(frame_size(8), 24u);
  EXPECT_EQ(frame_size(9), 32u);
  for (uint64_t n = 0; n < 100; n++) {
    EXPECT_EQ(frame_size(n) % kFrameAlignment, 0u);
    EXPECT_GE(frame_size(n), kFrameHeaderSize + n + kFrameTrailerSize);
    EXPECT_LT(frame_size(n), kFrameHeaderSize + n + kFrameTrailerSize + kFrameAlignment);
  }
}

TEST(Frame, HasTheDocumentedLayout) {
  std::string out = "xyz";  // frames append: the prefix must be untouched
  append_frame(out, FrameType::kCommit, "hello");
  ASSERT_EQ(out.size(), 3 + frame_size(5));
  std::string_view frame = std::string_view(out).substr(3);
  EXPECT_EQ(load_u32_le(frame.data()), 5u);
  EXPECT_EQ(frame[8], 1);  // type
  EXPECT_EQ(frame[9], 0);  // flags
  EXPECT_EQ(load_u16_le(frame.data() + 10), 0u);
  EXPECT_EQ(frame.substr(12, 5), "hello");
  EXPECT_EQ(load_u32_le(frame.data() + 17), 5u);
  EXPECT_EQ(frame.substr(21), std::string(3, '\0'));
  // The CRC covers type, flags, reserved and payload, and is stored masked.
  EXPECT_EQ(crc32c::unmask(load_u32_le(frame.data() + 4)), crc32c::value(frame.substr(8, 9)));
  EXPECT_EQ(out.substr(0, 3), "xyz");
}

TEST(Frame, RoundTripsEveryPaddingAndBothTypes) {
  for (size_t n = 0; n < 70; n++) {
    std::string payload;
    for (size_t i = 0; i < n; i++) payload.push_back(static_cast<char>(i * 37 + n));
    for (FrameType type : {FrameType::kCommit, FrameType::kSeal}) {
      std::string out;
      append_frame(out, type, payload);
      out.append("trailing bytes of the next frame");
      DecodedFrame frame = decode_frame(out);
      ASSERT_EQ(frame.status, FrameStatus::kOk) << n;
      EXPECT_EQ(frame.type, type);
      EXPECT_EQ(frame.payload, payload);
      EXPECT_EQ(frame.size_bytes, frame_size(n));
    }
  }
}

TEST(Frame, UnknownTypesDecodeAndCarryTheirTag) {
  std::string out;
  append_frame(out, static_cast<FrameType>(0x81), "skip me");
  DecodedFrame frame = decode_frame(out);
  ASSERT_EQ(frame.status, FrameStatus::kOk);
  EXPECT_EQ(static_cast<uint8_t>(frame.type), 0x81);
  EXPECT_NE(static_cast<uint8_t>(frame.type) & kFrameTypeSkippableBit, 0);
}

TEST(Frame, EveryPrefixIsIncomplete) {
  std::string out;
  append_frame(out, FrameType::kCommit, "some payload bytes");
  for (size_t n = 0; n < out.size(); n++) {
    EXPECT_EQ(decode_frame(std::string_view(out).substr(0, n)).status, FrameStatus::kIncomplete)
        << n;
  }
}

TEST(Frame, DetectsEveryCorruptionKind) {
  std::string good;
  append_frame(good, FrameType::kCommit, "payload!!");  // 9 bytes: 3 bytes padding
  auto corrupt_at = [&](size_t offset, char value) {
    std::string bad = good;
    bad[offset] = value;
    return decode_frame(bad).status;
  };
  EXPECT_EQ(corrupt_at(4, good[4] ^ 1), FrameStatus::kCorrupt);  // stored CRC
  EXPECT_EQ(corrupt_at(8, 2), FrameStatus::kCorrupt);            // type (CRC-covered)
  EXPECT_EQ(corrupt_at(9, 1), FrameStatus::kCorrupt);            // flags (CRC-covered)
  EXPECT_EQ(corrupt_at(10, 1), FrameStatus::kCorrupt);           // reserved
  EXPECT_EQ(corrupt_at(12, 'P'), FrameStatus::kCorrupt);         // payload
  EXPECT_EQ(corrupt_at(21, 10), FrameStatus::kCorrupt);          // trailer length
  EXPECT_EQ(corrupt_at(25, 1), FrameStatus::kCorrupt);           // padding
  EXPECT_EQ(corrupt_at(0, 8), FrameStatus::kCorrupt);            // shorter length
  std::string huge = good;
  store_u32_le(huge.data(), kFramePayloadBytesMax + 1);
  EXPECT_EQ(decode_frame(huge).status, FrameStatus::kCorrupt);
  EXPECT_FALSE(peek_frame_length(huge).has_value());
  EXPECT_EQ(peek_frame_length(good), 9u);
  EXPECT_FALSE(peek_frame_length(good.substr(0, 11)).has_value());
}

SealInfo sample_seal() {
  SealInfo seal;
  seal.segment_index = 3;
  seal.first_position = 100;
  seal.next_position = 250;
  seal.record_count = 12;
  seal.last_hash = std::string(32, '\x5a');
  seal.segment_crc = 0xdeadbeef;
  return seal;
}

TEST(Seal, HasTheDocumentedLayoutAndRoundTrips) {
  std::string bytes = encode_seal(sample_seal());
  ASSERT_EQ(bytes.size(), kSealPayloadSize);
  EXPECT_EQ(load_u64_le(bytes.data()), 3u);
  EXPECT_EQ(load_u64_le(bytes.data() + 8), 100u);
  EXPECT_EQ(load_u64_le(bytes.data() + 16), 250u);
  EXPECT_EQ(load_u64_le(bytes.data() + 24), 12u);
  EXPECT_EQ(bytes.substr(32, 32), std::string(32, '\x5a'));
  EXPECT_EQ(load_u32_le(bytes.data() + 64), 0xdeadbeefu);
  EXPECT_EQ(load_u32_le(bytes.data() + 68), 0u);
  auto seal = decode_seal(bytes);
  ASSERT_TRUE(seal.has_value());
  EXPECT_EQ(seal->segment_index, 3u);
  EXPECT_EQ(seal->first_position, 100u);
  EXPECT_EQ(seal->next_position, 250u);
  EXPECT_EQ(seal->record_count, 12u);
  EXPECT_EQ(seal->last_hash, std::string(32, '\x5a'));
  EXPECT_EQ(seal->segment_crc, 0xdeadbeefu);
}

TEST(Seal, RejectsWrongSizeReservedAndBackwardPositions) {
  std::string bytes = encode_seal(sample_seal());
  EXPECT_FALSE(decode_seal(bytes.substr(0, kSealPayloadSize - 1)).has_value());
  EXPECT_FALSE(decode_seal(bytes + "x").has_value());
  std::string reserved = bytes;
  reserved[70] = 1;
  EXPECT_EQ(decode_seal(reserved).error().code, ErrorCode::kDataLoss);
  SealInfo backwards = sample_seal();
  backwards.next_position = 99;
  EXPECT_EQ(decode_seal(encode_seal(backwards)).error().code, ErrorCode::kDataLoss);
}

EventData full_event() {
  EventData event;
  event.type = "OrderPlaced";
  event.content_type = "application/json";
  event.data = R"({"total":42})";
  event.metadata = R"({"ip":"10.0.0.1"})";
  event.correlation_id = "corr-1";
  event.causation_id = "cause-1";
  event.subject = "user-9";
  event.occurrence_time_unix_ns = -5;  // before 1970: signed on disk
  event.schema_version = 3;
  return event;
}

Uuid id_of(uint8_t fill) {
  Uuid id;
  id.bytes.fill(fill);
  return id;
}

std::string sample_commit() {
  CommitHeader header{500, 1'700'000'000'000'000'123, Digest{}, 2};
  header.prev_hash.fill(0x11);
  std::string payload = encode_commit_header(header);
  encode_event(payload, "order-1", 4, id_of(0xaa), full_event());
  EventData minimal;
  minimal.type = "T";
  minimal.content_type = "";
  encode_event(payload, "s", 0, id_of(0xbb), minimal);
  return payload;
}

TEST(CommitRecord, HeaderAndEventHaveTheDocumentedLayout) {
  std::string payload = sample_commit();
  EXPECT_EQ(load_u64_le(payload.data()), 500u);
  EXPECT_EQ(load_u64_le(payload.data() + 8), 1'700'000'000'000'000'123u);
  EXPECT_EQ(payload.substr(16, 32), std::string(32, '\x11'));
  EXPECT_EQ(load_u32_le(payload.data() + 48), 2u);
  EXPECT_EQ(load_u32_le(payload.data() + 52), 0u);
  const char* e = payload.data() + kCommitHeaderSize;
  EventData event = full_event();
  EXPECT_EQ(load_u32_le(e), encoded_event_size("order-1", event));
  EXPECT_EQ(load_u64_le(e + 4), 4u);
  EXPECT_EQ(std::string(e + 12, 16), std::string(16, '\xaa'));
  EXPECT_EQ(static_cast<int64_t>(load_u64_le(e + 28)), -5);
  EXPECT_EQ(load_u32_le(e + 36), 3u);   // schema_version
  EXPECT_EQ(load_u32_le(e + 40), 0u);   // key_id
  EXPECT_EQ(load_u16_le(e + 44), 0u);   // flags
  EXPECT_EQ(load_u16_le(e + 46), 7u);   // stream
  EXPECT_EQ(load_u16_le(e + 48), 11u);  // type
  EXPECT_EQ(load_u16_le(e + 50), 16u);  // content type
  EXPECT_EQ(load_u16_le(e + 52), 6u);   // correlation
  EXPECT_EQ(load_u16_le(e + 54), 7u);   // causation
  EXPECT_EQ(load_u16_le(e + 56), 6u);   // subject
  EXPECT_EQ(load_u16_le(e + 58), 0u);   // reserved
  EXPECT_EQ(load_u32_le(e + 60), event.metadata.size());
  EXPECT_EQ(load_u32_le(e + 64), event.data.size());
  EXPECT_EQ(std::string(e + kEventFixedSize, 7 + 11), "order-1OrderPlaced");
}

TEST(CommitRecord, RoundTripsEveryField) {
  std::string payload = sample_commit();
  auto commit = decode_commit(payload, "test");
  ASSERT_TRUE(commit.has_value()) << commit.error().message;
  EXPECT_EQ(commit->header.first_position, 500u);
  EXPECT_EQ(commit->header.recorded_time_unix_ns, 1'700'000'000'000'000'123);
  EXPECT_EQ(commit->header.event_count, 2u);
  ASSERT_EQ(commit->events.size(), 2u);
  const EventView& a = commit->events[0];
  EXPECT_EQ(a.stream, "order-1");
  EXPECT_EQ(a.revision, 4u);
  EXPECT_EQ(a.id, id_of(0xaa));
  EXPECT_EQ(a.type, "OrderPlaced");
  EXPECT_EQ(a.content_type, "application/json");
  EXPECT_EQ(a.data, R"({"total":42})");
  EXPECT_EQ(a.metadata, R"({"ip":"10.0.0.1"})");
  EXPECT_EQ(a.correlation_id, "corr-1");
  EXPECT_EQ(a.causation_id, "cause-1");
  EXPECT_EQ(a.subject, "user-9");
  EXPECT_EQ(a.occurrence_time_unix_ns, -5);
  EXPECT_EQ(a.schema_version, 3u);
  EXPECT_EQ(a.key_id, 0u);
  const EventView& b = commit->events[1];
  EXPECT_EQ(b.stream, "s");
  EXPECT_EQ(b.type, "T");
  EXPECT_TRUE(b.content_type.empty() && b.data.empty() && b.subject.empty());
  RecordedEvent recorded = to_recorded_event(a, 500, 77);
  EXPECT_EQ(recorded.position, 500u);
  EXPECT_EQ(recorded.recorded_time_unix_ns, 77);
  EXPECT_EQ(recorded.stream, "order-1");
  EXPECT_EQ(recorded.schema_version, 3u);
}

TEST(CommitRecord, PatchRevisionRewritesOnlyTheRevision) {
  std::string payload = sample_commit();
  std::string before = payload;
  patch_revision(payload.data() + kCommitHeaderSize, 99);
  auto commit = decode_commit(payload, "test");
  ASSERT_TRUE(commit.has_value());
  EXPECT_EQ(commit->events[0].revision, 99u);
  size_t changed = 0;
  for (size_t i = 0; i < payload.size(); i++) changed += payload[i] != before[i];
  EXPECT_EQ(changed, 1u);  // 4 -> 99 differs in the low byte only
}

TEST(CommitRecord, RejectsMalformedPayloads) {
  std::string payload = sample_commit();
  auto fails = [](std::string bytes) {
    auto commit = decode_commit(bytes, "somewhere");
    return !commit.has_value() && commit.error().code == ErrorCode::kDataLoss &&
           commit.error().message.find("somewhere") != std::string::npos;
  };
  for (size_t n = 0; n < payload.size(); n++) EXPECT_TRUE(fails(payload.substr(0, n))) << n;
  EXPECT_TRUE(fails(payload + "x"));  // trailing bytes
  std::string zero_events = payload;
  store_u32_le(zero_events.data() + 48, 0);
  EXPECT_TRUE(fails(zero_events));
  std::string too_many = payload;
  store_u32_le(too_many.data() + 48, 3);
  EXPECT_TRUE(fails(too_many));
  std::string reserved = payload;
  reserved[52] = 1;
  EXPECT_TRUE(fails(reserved));
  std::string size_mismatch = payload;
  store_u32_le(size_mismatch.data() + kCommitHeaderSize, 1);
  EXPECT_TRUE(fails(size_mismatch));
  std::string event_flags = payload;
  event_flags[kCommitHeaderSize + 44] = 1;
  EXPECT_TRUE(fails(event_flags));
  std::string event_reserved = payload;
  event_reserved[kCommitHeaderSize + 58] = 1;
  EXPECT_TRUE(fails(event_reserved));
}

TEST(CommitRecord, RejectsEmptyStreamOrType) {
  CommitHeader header{0, 0, Digest{}, 1};
  EventData event;
  event.type = "T";
  std::string empty_stream = encode_commit_header(header);
  encode_event(empty_stream, "", 0, id_of(1), event);
  EXPECT_FALSE(decode_commit(empty_stream, "x").has_value());
  event.type = "";
  std::string empty_type = encode_commit_header(header);
  encode_event(empty_type, "s", 0, id_of(1), event);
  EXPECT_FALSE(decode_commit(empty_type, "x").has_value());
}

// chain_hash is plain SHA-256 of the payload (FIPS 180-2 test vector).
TEST(CommitRecord, ChainHashIsSha256OfThePayload) {
  EXPECT_EQ(digest_hex(chain_hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace vellum::log
