// SPDX-License-Identifier: Apache-2.0
// CRC32C against the test vectors of RFC 3720 (iSCSI), appendix B.4, plus the
// properties the log relies on: extend() composes, and mask() is reversible
// and changes the value (so a CRC stored inside CRC-covered data stays strong).
#include "base/crc32c.h"

#include <cstdint>
#include <string>

#include <gtest/gtest.h>

namespace vellum::crc32c {
namespace {

std::string bytes_of(std::initializer_list<uint8_t> values) {
  std::string out;
  for (uint8_t v : values) out.push_back(static_cast<char>(v));
  return out;
}

TEST(Crc32c, MatchesRfc3720ZeroVector) { EXPECT_EQ(value(std::string(32, '\0')), 0x8a9136aau); }

TEST(Crc32c, MatchesRfc3720OnesVector) { EXPECT_EQ(value(std::string(32, '\xff')), 0x62a8ab43u); }

TEST(Crc32c, MatchesRfc3720AscendingAndDescendingVectors) {
  std::string ascending, descending;
  for (int i = 0; i < 32; i++) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(value(ascending), 0x46dd794eu);
  EXPECT_EQ(value(descending), 0x113fdb5cu);
}

TEST(Crc32c, MatchesRfc3720ScsiReadCommandVector) {
  std::string pdu =
      bytes_of({0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
                0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00});
  ASSERT_EQ(pdu.size(), 48u);
  EXPECT_EQ(value(pdu), 0xd9963a56u);
}

TEST(Crc32c, MatchesTheStandardCheckValue) {
  EXPECT_EQ(value("123456789"), 0xe3069283u);
  EXPECT_EQ(value(""), 0u);
}

// The log extends the running CRC of a segment write by write.
TEST(Crc32c, ExtendComposesOverEverySplitPoint) {
  std::string data = "hello world, this is the vellum event store";
  uint32_t whole = value(data);
  for (size_t split = 0; split <= data.size(); split++) {
    uint32_t first = extend(0, data.data(), split);
    EXPECT_EQ(extend(first, data.data() + split, data.size() - split), whole) << split;
  }
}

TEST(Crc32c, DifferentDataGivesDifferentValues) {
  EXPECT_NE(value("a"), value("foo"));
  EXPECT_NE(value("bar"), value("foo"));
}

TEST(Crc32c, MaskIsReversibleAndChangesTheValue) {
  for (uint32_t crc : {0u, 1u, 0xe3069283u, 0xffffffffu, value("foo")}) {
    EXPECT_NE(mask(crc), crc);
    EXPECT_NE(mask(mask(crc)), mask(crc));
    EXPECT_EQ(unmask(mask(crc)), crc);
    EXPECT_EQ(unmask(unmask(mask(mask(crc)))), crc);
  }
}

}  // namespace
}  // namespace vellum::crc32c
