// SPDX-License-Identifier: Apache-2.0
#include "log/record_format.h"

#include <cstring>

#include "base/assert.h"
#include "base/coding.h"
#include "base/crc32c.h"

namespace vellum::log {

std::string encode_segment_header(const SegmentHeader& header) {
  std::string out;
  out.reserve(kSegmentHeaderSize);
  out.append(kSegmentMagic, sizeof(kSegmentMagic));
  put_u16_le(out, header.format_version);
  put_u16_le(out, header.min_reader_version);
  put_u32_le(out, 0);  // reserved
  put_u64_le(out, header.segment_index);
  put_u64_le(out, header.first_position);
  put_u64_le(out, static_cast<uint64_t>(header.created_unix_ns));
  put_u32_le(out, header.store_tag);
  out.append(kSegmentHeaderCrcOffset - out.size(), '\0');
  put_u32_le(out, crc32c::mask(crc32c::value(out)));
  VL_ASSERT(out.size() == kSegmentHeaderSize);
  return out;
}

Result<SegmentHeader> decode_segment_header(std::string_view bytes) {
  if (bytes.size() < kSegmentHeaderSize) {
    return make_error(ErrorCode::kDataLoss, "segment header is truncated");
  }
  if (std::memcmp(bytes.data(), kSegmentMagic, sizeof(kSegmentMagic)) != 0) {
    return make_error(ErrorCode::kDataLoss, "segment header has a bad magic number");
  }
  uint32_t stored = crc32c::unmask(load_u32_le(bytes.data() + kSegmentHeaderCrcOffset));
  if (stored != crc32c::value(bytes.substr(0, kSegmentHeaderCrcOffset))) {
    return make_error(ErrorCode::kDataLoss, "segment header checksum mismatch");
  }
  SegmentHeader header;
  header.format_version = load_u16_le(bytes.data() + 8);
  header.min_reader_version = load_u16_le(bytes.data() + 10);
  if (load_u32_le(bytes.data() + 12) != 0) {
    return make_error(ErrorCode::kDataLoss, "segment header reserved bytes are not zero");
  }
  header.segment_index = load_u64_le(bytes.data() + 16);
  header.first_position = load_u64_le(bytes.data() + 24);
  header.created_unix_ns = static_cast<int64_t>(load_u64_le(bytes.data() + 32));
  header.store_tag = load_u32_le(bytes.data() + 40);
  for (uint32_t i = 44; i < kSegmentHeaderCrcOffset; i++) {
    if (bytes[i] != '\0') {
      return make_error(ErrorCode::kDataLoss, "segment header reserved bytes are not zero");
    }
  }
  if (header.min_reader_version > kFormatVersion) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "segment needs reader version " + std::to_string(header.min_reader_version) +
                          ", this build reads " + std::to_string(kFormatVersion));
  }
  return header;
}

void append_frame(std::string& out, FrameType type, std::string_view payload) {
  VL_ASSERT(payload.size() <= kFramePayloadBytesMax);
  auto length = static_cast<uint32_t>(payload.size());
  size_t start = out.size();
  put_u32_le(out, length);
  put_u32_le(out, 0);  // CRC, filled below
  out.push_back(static_cast<char>(type));
  out.push_back('\0');  // flags
  put_u16_le(out, 0);   // reserved
  out.append(payload);
  put_u32_le(out, length);
  out.append(frame_size(length) - (out.size() - start), '\0');
  uint32_t crc = crc32c::extend(0, out.data() + start + 8, 4 + payload.size());
  store_u32_le(out.data() + start + 4, crc32c::mask(crc));
  VL_ASSERT(out.size() - start == frame_size(length));
}

std::optional<uint32_t> peek_frame_length(std::string_view header_bytes) {
  if (header_bytes.size() < kFrameHeaderSize) return std::nullopt;
  uint32_t length = load_u32_le(header_bytes.data());
  if (length > kFramePayloadBytesMax) return std::nullopt;
  return length;
}

namespace {

bool padding_is_zero(std::string_view bytes) {
  for (char c : bytes) {
    if (c != '\0') return false;
  }
  return true;
}

}  // namespace

DecodedFrame decode_frame(std::string_view bytes) {
  DecodedFrame frame;
  if (bytes.size() < kFrameHeaderSize) {
    frame.status = FrameStatus::kIncomplete;
    return frame;
  }
  auto length = peek_frame_length(bytes);
  if (!length) return frame;  // kCorrupt: impossible length
  uint64_t size = frame_size(*length);
  if (bytes.size() < size) {
    frame.status = FrameStatus::kIncomplete;
    return frame;
  }
  const char* p = bytes.data();
  uint32_t stored_crc = crc32c::unmask(load_u32_le(p + 4));
  uint32_t trailer = load_u32_le(p + kFrameHeaderSize + *length);
  size_t padding_start = kFrameHeaderSize + *length + kFrameTrailerSize;
  if (trailer != *length || load_u16_le(p + 10) != 0 ||
      !padding_is_zero(bytes.substr(padding_start, size - padding_start))) {
    return frame;
  }
  if (crc32c::extend(0, p + 8, 4 + *length) != stored_crc) return frame;
  frame.status = FrameStatus::kOk;
  frame.type = static_cast<FrameType>(static_cast<uint8_t>(p[8]));
  frame.payload = bytes.substr(kFrameHeaderSize, *length);
  frame.size_bytes = size;
  return frame;
}

std::string encode_seal(const SealInfo& seal) {
  VL_ASSERT(seal.last_hash.size() == 32);
  std::string out;
  out.reserve(kSealPayloadSize);
  put_u64_le(out, seal.segment_index);
  put_u64_le(out, seal.first_position);
  put_u64_le(out, seal.next_position);
  put_u64_le(out, seal.record_count);
  out.append(seal.last_hash);
  put_u32_le(out, seal.segment_crc);
  put_u32_le(out, 0);  // reserved
  VL_ASSERT(out.size() == kSealPayloadSize);
  return out;
}

Result<SealInfo> decode_seal(std::string_view payload) {
  if (payload.size() != kSealPayloadSize) {
    return make_error(ErrorCode::kDataLoss, "seal frame has the wrong size");
  }
  SealInfo seal;
  const char* p = payload.data();
  seal.segment_index = load_u64_le(p);
  seal.first_position = load_u64_le(p + 8);
  seal.next_position = load_u64_le(p + 16);
  seal.record_count = load_u64_le(p + 24);
  seal.last_hash.assign(p + 32, 32);
  seal.segment_crc = load_u32_le(p + 64);
  if (load_u32_le(p + 68) != 0 || seal.next_position < seal.first_position) {
    return make_error(ErrorCode::kDataLoss, "seal frame is inconsistent");
  }
  return seal;
}

}  // namespace vellum::log
