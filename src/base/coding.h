// SPDX-License-Identifier: Apache-2.0
// Little-endian fixed-width integer encoding for on-disk formats, and
// big-endian encoding for index keys (so that byte order sorts numerically).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace vellum {

inline void put_u16_le(std::string& out, uint16_t v) {
  char b[2] = {static_cast<char>(v), static_cast<char>(v >> 8)};
  out.append(b, 2);
}
inline void put_u32_le(std::string& out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; i++) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, 4);
}
inline void put_u64_le(std::string& out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; i++) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, 8);
}
inline void store_u32_le(char* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<char>(v >> (8 * i));
}
inline void store_u64_le(char* p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = static_cast<char>(v >> (8 * i));
}
inline uint16_t load_u16_le(const char* p) {
  return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) |
                               (static_cast<uint16_t>(static_cast<uint8_t>(p[1])) << 8));
}
inline uint32_t load_u32_le(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
inline uint64_t load_u64_le(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

inline void put_u64_be(std::string& out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; i++) b[i] = static_cast<char>(v >> (56 - 8 * i));
  out.append(b, 8);
}
inline uint64_t load_u64_be(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// A bounds-checked reader over bytes read from disk. Every getter returns
// false instead of reading past the end: corrupt input is data, not a bug.
class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}

  bool u8(uint8_t& v) {
    if (remaining() < 1) return false;
    v = static_cast<uint8_t>(bytes_[offset_]);
    offset_ += 1;
    return true;
  }
  bool u16(uint16_t& v) {
    if (remaining() < 2) return false;
    v = load_u16_le(bytes_.data() + offset_);
    offset_ += 2;
    return true;
  }
  bool u32(uint32_t& v) {
    if (remaining() < 4) return false;
    v = load_u32_le(bytes_.data() + offset_);
    offset_ += 4;
    return true;
  }
  bool u64(uint64_t& v) {
    if (remaining() < 8) return false;
    v = load_u64_le(bytes_.data() + offset_);
    offset_ += 8;
    return true;
  }
  bool bytes(size_t n, std::string_view& v) {
    if (remaining() < n) return false;
    v = bytes_.substr(offset_, n);
    offset_ += n;
    return true;
  }
  size_t remaining() const { return bytes_.size() - offset_; }
  size_t offset() const { return offset_; }

 private:
  std::string_view bytes_;
  size_t offset_ = 0;
};

}  // namespace vellum
