// SPDX-License-Identifier: Apache-2.0
// The byte layout of segment files: constants and the frame codec. This file
// and docs/formats/segment.md are one pair: change them together, and bump
// kFormatVersion (with a golden file under tests/data/formats/) on any change.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "vellum/result.h"

#include "base/limits.h"

namespace vellum::log {

// ---- Segment header (docs/formats/segment.md, "Segment header") ----
inline constexpr char kSegmentMagic[8] = {'V', 'L', 'M', 'S', 'E', 'G', '0', '1'};
inline constexpr uint16_t kFormatVersion = 1;
inline constexpr uint16_t kMinReaderVersion = 1;
inline constexpr uint32_t kSegmentHeaderSize = 64;
inline constexpr uint32_t kSegmentHeaderCrcOffset = 60;

struct SegmentHeader {
  uint16_t format_version = kFormatVersion;
  uint16_t min_reader_version = kMinReaderVersion;
  uint64_t segment_index = 0;
  uint64_t first_position = 0;  // position of the first event in the segment
  int64_t created_unix_ns = 0;
  // A random number chosen when the store is created and copied into every
  // segment: it marks the event ids this store generates (store/event_ids.h).
  uint32_t store_tag = 0;
};

std::string encode_segment_header(const SegmentHeader& header);
// Errors: kDataLoss (bad magic, CRC or reserved bytes), kFailedPrecondition
// (min_reader_version newer than this reader).
Result<SegmentHeader> decode_segment_header(std::string_view bytes);

// ---- Frames (docs/formats/segment.md, "Frames") ----
//   length u32 | crc u32 (masked) | type u8 | flags u8 | reserved u16 (= 0)
//   | payload[length] | length u32 | zero padding to a multiple of 8
inline constexpr uint32_t kFrameHeaderSize = 4 + 4 + 1 + 1 + 2;
inline constexpr uint32_t kFrameTrailerSize = 4;
inline constexpr uint32_t kFrameAlignment = 8;
inline constexpr uint32_t kFramePayloadBytesMax = limits::kRecordBytesMax;

static_assert(kFrameHeaderSize == 12);
static_assert(kSegmentHeaderSize % kFrameAlignment == 0);
static_assert(uint64_t{kFramePayloadBytesMax} + kFrameHeaderSize + kFrameTrailerSize +
                  kFrameAlignment <
              (uint64_t{1} << 32));

// Type tags are append-only: never renumber or reuse one. Tags with the high
// bit set (0x80) are skippable by older readers; any other unknown tag is
// an error.
enum class FrameType : uint8_t {
  kCommit = 1,  // one atomic append: events of one or more streams
  kSeal = 2,    // the last frame of a sealed segment
};
inline constexpr uint8_t kFrameTypeSkippableBit = 0x80;

inline constexpr uint64_t frame_size(uint64_t payload_bytes) {
  uint64_t raw = kFrameHeaderSize + payload_bytes + kFrameTrailerSize;
  return (raw + kFrameAlignment - 1) / kFrameAlignment * kFrameAlignment;
}

// Appends one frame to `out`.
// REQUIRES: payload.size() <= kFramePayloadBytesMax.
void append_frame(std::string& out, FrameType type, std::string_view payload);

// What decode_frame() found at the start of `bytes`.
enum class FrameStatus : uint8_t {
  kOk,          // a whole, valid frame
  kIncomplete,  // `bytes` ends before the frame does (maybe torn, maybe short read)
  kCorrupt,     // lengths disagree, CRC mismatch, non-zero reserved or padding
};

struct DecodedFrame {
  FrameStatus status = FrameStatus::kCorrupt;
  FrameType type = FrameType::kCommit;
  std::string_view payload;  // points into the input
  uint64_t size_bytes = 0;   // whole frame incl. padding (when kOk)
};

DecodedFrame decode_frame(std::string_view bytes);

// The payload length a frame header announces, if the header is plausible.
std::optional<uint32_t> peek_frame_length(std::string_view header_bytes);

// ---- Seal frame payload (docs/formats/segment.md, "Seal") ----
struct SealInfo {
  uint64_t segment_index = 0;
  uint64_t first_position = 0;
  uint64_t next_position = 0;  // first position after this segment
  uint64_t record_count = 0;
  std::string last_hash;     // 32 bytes: chain hash of the last record
  uint32_t segment_crc = 0;  // crc32c of every byte before the seal frame
};
inline constexpr uint32_t kSealPayloadSize = 8 * 4 + 32 + 4 + 4;

std::string encode_seal(const SealInfo& seal);
Result<SealInfo> decode_seal(std::string_view payload);

}  // namespace vellum::log
