// SPDX-License-Identifier: Apache-2.0
// CRC32C (Castagnoli), hardware-accelerated through Intel ISA-L, and the
// leveldb-style mask applied to CRCs stored next to the data they cover (a
// CRC of bytes that contain CRCs is otherwise weak).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace vellum::crc32c {

// CRC32C of `data`, continuing from `crc` (0 to start). Standard
// (RFC 3720) pre/post-inversion: value("123456789") == 0xE3069283.
uint32_t extend(uint32_t crc, const void* data, size_t size);
inline uint32_t value(std::string_view data) { return extend(0, data.data(), data.size()); }

inline constexpr uint32_t kMaskDelta = 0xa282ead8u;

inline uint32_t mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
inline uint32_t unmask(uint32_t masked) {
  uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace vellum::crc32c
