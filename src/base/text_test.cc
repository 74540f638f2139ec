// SPDX-License-Identifier: Apache-2.0
// UTF-8 validation of names from outside: every class of malformed input the
// Unicode standard (table 3-7) rules out, and the boundary code points on
// either side of each rule.
#include "base/text.h"

#include <string>

#include <gtest/gtest.h>

namespace vellum {
namespace {

bool valid(std::string_view bytes) { return is_valid_utf8(bytes); }

TEST(Utf8, AcceptsAsciiAndEmpty) {
  EXPECT_TRUE(valid(""));
  EXPECT_TRUE(valid("order-123"));
  EXPECT_TRUE(valid(std::string("a\0b", 3)));  // NUL is UTF-8; name rules reject it elsewhere
  EXPECT_TRUE(valid("\x7f"));
}

TEST(Utf8, AcceptsEverySequenceLength) {
  EXPECT_TRUE(valid("\xc3\xa9"));          // U+00E9
  EXPECT_TRUE(valid("\xe2\x82\xac"));      // U+20AC
  EXPECT_TRUE(valid("\xf0\x9f\x98\x80"));  // U+1F600
  EXPECT_TRUE(valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80!"));
}

TEST(Utf8, AcceptsBoundaryCodePoints) {
  EXPECT_TRUE(valid("\xc2\x80"));          // U+0080, smallest 2-byte
  EXPECT_TRUE(valid("\xdf\xbf"));          // U+07FF
  EXPECT_TRUE(valid("\xe0\xa0\x80"));      // U+0800, smallest 3-byte
  EXPECT_TRUE(valid("\xed\x9f\xbf"));      // U+D7FF, just below the surrogates
  EXPECT_TRUE(valid("\xee\x80\x80"));      // U+E000, just above the surrogates
  EXPECT_TRUE(valid("\xef\xbf\xbf"));      // U+FFFF
  EXPECT_TRUE(valid("\xf0\x90\x80\x80"));  // U+10000, smallest 4-byte
  EXPECT_TRUE(valid("\xf4\x8f\xbf\xbf"));  // U+10FFFF, the largest code point
}

TEST(Utf8, RejectsOverlongEncodings) {
  EXPECT_FALSE(valid("\xc0\x80"));          // U+0000 in two bytes ("modified UTF-8")
  EXPECT_FALSE(valid("\xc0\xaf"));          // '/' in two bytes
  EXPECT_FALSE(valid("\xc1\xbf"));          // U+007F in two bytes
  EXPECT_FALSE(valid("\xe0\x80\x80"));      // U+0000 in three bytes
  EXPECT_FALSE(valid("\xe0\x9f\xbf"));      // U+07FF in three bytes
  EXPECT_FALSE(valid("\xf0\x80\x80\x80"));  // U+0000 in four bytes
  EXPECT_FALSE(valid("\xf0\x8f\xbf\xbf"));  // U+FFFF in four bytes
}

TEST(Utf8, RejectsSurrogates) {
  EXPECT_FALSE(valid("\xed\xa0\x80"));              // U+D800, first high surrogate
  EXPECT_FALSE(valid("\xed\xaf\xbf"));              // U+DBFF
  EXPECT_FALSE(valid("\xed\xb0\x80"));              // U+DC00, first low surrogate
  EXPECT_FALSE(valid("\xed\xbf\xbf"));              // U+DFFF
  EXPECT_FALSE(valid("\xed\xa0\xbd\xed\xb8\x80"));  // CESU-8 pair for U+1F600
}

TEST(Utf8, RejectsCodePointsAboveTheMaximum) {
  EXPECT_FALSE(valid("\xf4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(valid("\xf5\x80\x80\x80"));
  EXPECT_FALSE(valid("\xf7\xbf\xbf\xbf"));
  EXPECT_FALSE(valid("\xf8\x88\x80\x80\x80"));      // old 5-byte form
  EXPECT_FALSE(valid("\xfc\x84\x80\x80\x80\x80"));  // old 6-byte form
}

TEST(Utf8, RejectsInvalidLeadAndStrayContinuationBytes) {
  EXPECT_FALSE(valid("\x80"));
  EXPECT_FALSE(valid("\xbf"));
  EXPECT_FALSE(valid("a\x80z"));
  EXPECT_FALSE(valid("\xfe"));
  EXPECT_FALSE(valid("\xff"));
  EXPECT_FALSE(valid("\xc3\xa9\xa9"));  // one continuation too many
}

TEST(Utf8, RejectsTruncatedSequences) {
  EXPECT_FALSE(valid("\xc3"));
  EXPECT_FALSE(valid("\xe2\x82"));
  EXPECT_FALSE(valid("\xf0\x9f\x98"));
  EXPECT_FALSE(valid("abc\xf0"));
}

TEST(Utf8, RejectsNonContinuationInsideASequence) {
  EXPECT_FALSE(valid("\xc3\x41"));
  EXPECT_FALSE(valid("\xe2\x82\x41"));
  EXPECT_FALSE(valid("\xe2\x41\xac"));
  EXPECT_FALSE(valid("\xf0\x9f\x41\x80"));
  EXPECT_FALSE(valid("\xf0\x9f\x98\xc3"));
}

}  // namespace
}  // namespace vellum
