// SPDX-License-Identifier: Apache-2.0
// Fixed-width integer coding: exact byte order (formats depend on it), round
// trips at the extremes, and ByteReader's refusal to read past the end.
#include "base/coding.h"

#include <cstdint>
#include <string>

#include <gtest/gtest.h>

namespace vellum {
namespace {

TEST(Coding, LittleEndianByteOrderIsExact) {
  std::string out;
  put_u16_le(out, 0x0102);
  put_u32_le(out, 0x03040506);
  put_u64_le(out, 0x0708090a0b0c0d0eull);
  EXPECT_EQ(out, std::string("\x02\x01\x06\x05\x04\x03\x0e\x0d\x0c\x0b\x0a\x09\x08\x07", 14));
}

TEST(Coding, BigEndianByteOrderIsExact) {
  std::string out;
  put_u64_be(out, 0x0102030405060708ull);
  EXPECT_EQ(out, std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  EXPECT_EQ(load_u64_be(out.data()), 0x0102030405060708ull);
}

TEST(Coding, RoundTripsExtremes) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{0x80}, uint64_t{0xff}, uint64_t{0x8000},
                     uint64_t{0xffffffff}, uint64_t{1} << 63, ~uint64_t{0}}) {
    std::string out;
    put_u16_le(out, static_cast<uint16_t>(v));
    put_u32_le(out, static_cast<uint32_t>(v));
    put_u64_le(out, v);
    put_u64_be(out, v);
    EXPECT_EQ(load_u16_le(out.data()), static_cast<uint16_t>(v));
    EXPECT_EQ(load_u32_le(out.data() + 2), static_cast<uint32_t>(v));
    EXPECT_EQ(load_u64_le(out.data() + 6), v);
    EXPECT_EQ(load_u64_be(out.data() + 14), v);
  }
}

TEST(Coding, StoreOverwritesInPlace) {
  std::string out(12, 'x');
  store_u32_le(out.data(), 0xa1b2c3d4);
  store_u64_le(out.data() + 4, 0x1122334455667788ull);
  EXPECT_EQ(load_u32_le(out.data()), 0xa1b2c3d4u);
  EXPECT_EQ(load_u64_le(out.data() + 4), 0x1122334455667788ull);
}

// Big-endian keys must sort like the numbers they encode (index keys).
TEST(Coding, BigEndianKeysSortNumerically) {
  uint64_t values[] = {0, 1, 255, 256, 65535, 65536, uint64_t{1} << 40, ~uint64_t{0}};
  for (size_t i = 0; i + 1 < std::size(values); i++) {
    std::string a, b;
    put_u64_be(a, values[i]);
    put_u64_be(b, values[i + 1]);
    EXPECT_LT(a, b) << values[i];
  }
}

TEST(ByteReader, ReadsInOrderAndTracksOffset) {
  std::string data;
  data.push_back('\x07');
  put_u16_le(data, 0x1234);
  put_u32_le(data, 0xdeadbeef);
  put_u64_le(data, 42);
  data.append("xyz");
  ByteReader reader(data);
  uint8_t a = 0;
  uint16_t b = 0;
  uint32_t c = 0;
  uint64_t d = 0;
  std::string_view e;
  ASSERT_TRUE(reader.u8(a) && reader.u16(b) && reader.u32(c) && reader.u64(d));
  ASSERT_TRUE(reader.bytes(3, e));
  EXPECT_EQ(a, 7);
  EXPECT_EQ(b, 0x1234);
  EXPECT_EQ(c, 0xdeadbeefu);
  EXPECT_EQ(d, 42u);
  EXPECT_EQ(e, "xyz");
  EXPECT_EQ(reader.offset(), data.size());
  EXPECT_EQ(reader.remaining(), 0u);
}

TEST(ByteReader, RefusesToReadPastTheEndAndDoesNotAdvance) {
  std::string data(3, '\x01');
  ByteReader reader(data);
  uint32_t v32 = 0;
  uint64_t v64 = 0;
  std::string_view view;
  EXPECT_FALSE(reader.u32(v32));
  EXPECT_FALSE(reader.u64(v64));
  EXPECT_FALSE(reader.bytes(4, view));
  EXPECT_EQ(reader.offset(), 0u);
  uint16_t v16 = 0;
  uint8_t v8 = 0;
  EXPECT_TRUE(reader.u16(v16));
  EXPECT_FALSE(reader.u16(v16));
  EXPECT_TRUE(reader.u8(v8));
  EXPECT_FALSE(reader.u8(v8));
  EXPECT_TRUE(reader.bytes(0, view));
  EXPECT_TRUE(view.empty());
}

TEST(ByteReader, HugeLengthDoesNotOverflow) {
  std::string data(8, '\0');
  ByteReader reader(data);
  std::string_view view;
  EXPECT_FALSE(reader.bytes(~size_t{0}, view));
  EXPECT_EQ(reader.remaining(), 8u);
}

}  // namespace
}  // namespace vellum
