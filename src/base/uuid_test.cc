// SPDX-License-Identifier: Apache-2.0
// Uuid text form (parse/format) and UuidV7Generator: RFC 9562 layout
// (version and variant bits, 48-bit millisecond time) and the ordering
// promise the index relies on: ids from one generator strictly increase,
// within a millisecond and when the clock steps backwards.
#include "vellum/uuid.h"

#include <gtest/gtest.h>

#include "base/uuid_v7.h"

namespace vellum {
namespace {

constexpr int64_t kMs = 1'000'000;

TEST(Uuid, FormatsCanonicalLowerCase) {
  Uuid uuid;
  for (size_t i = 0; i < 16; i++) uuid.bytes[i] = static_cast<uint8_t>(0xf0 + i);
  EXPECT_EQ(uuid.to_string(), "f0f1f2f3-f4f5-f6f7-f8f9-fafbfcfdfeff");
  EXPECT_EQ(Uuid{}.to_string(), "00000000-0000-0000-0000-000000000000");
}

TEST(Uuid, ParseRoundTripsAndAcceptsUpperCase) {
  auto parsed = Uuid::parse("0189ABCD-ef01-7234-8567-89abcdef0123");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->bytes[0], 0x01);
  EXPECT_EQ(parsed->bytes[2], 0xab);
  EXPECT_EQ(parsed->bytes[15], 0x23);
  EXPECT_EQ(parsed->to_string(), "0189abcd-ef01-7234-8567-89abcdef0123");
  EXPECT_EQ(Uuid::parse(parsed->to_string()), parsed);
}

TEST(Uuid, ParseRejectsMalformedText) {
  EXPECT_FALSE(Uuid::parse(""));
  EXPECT_FALSE(Uuid::parse("0189abcd-ef01-7234-8567-89abcdef012"));    // too short
  EXPECT_FALSE(Uuid::parse("0189abcd-ef01-7234-8567-89abcdef01234"));  // too long
  EXPECT_FALSE(Uuid::parse("0189abcdef01-7234-8567-89abcdef0123-"));   // dashes misplaced
  EXPECT_FALSE(Uuid::parse("0189abcd_ef01-7234-8567-89abcdef0123"));
  EXPECT_FALSE(Uuid::parse("0189abcg-ef01-7234-8567-89abcdef0123"));  // not hex
  EXPECT_FALSE(Uuid::parse("{189abcd-ef01-7234-8567-89abcdef0123"));
  EXPECT_FALSE(Uuid::parse("0189abcd0ef0107234085670089abcdef0123"));
}

TEST(Uuid, NilIsAllZeros) {
  EXPECT_TRUE(Uuid{}.is_nil());
  Uuid uuid;
  uuid.bytes[15] = 1;
  EXPECT_FALSE(uuid.is_nil());
}

TEST(UuidV7, HasVersionVariantAndMillisecondTime) {
  UuidV7Generator generator(1);
  int64_t now = 1'700'000'000'123 * kMs + 456;
  Uuid uuid = generator.next(now);
  EXPECT_EQ(uuid.bytes[6] >> 4, 7);
  EXPECT_EQ(uuid.bytes[8] >> 6, 2);
  uint64_t ms = 0;
  for (int i = 0; i < 6; i++) ms = (ms << 8) | uuid.bytes[i];
  EXPECT_EQ(ms, 1'700'000'000'123u);
  EXPECT_FALSE(uuid.is_nil());
}

TEST(UuidV7, StrictlyIncreasingWithinOneMillisecond) {
  UuidV7Generator generator(2);
  int64_t now = 1'700'000'000'000 * kMs;
  Uuid previous = generator.next(now);
  // More ids than the 12-bit counter holds: the generator must borrow the
  // next millisecond rather than wrap.
  for (int i = 0; i < 10'000; i++) {
    Uuid next = generator.next(now);
    ASSERT_LT(previous, next) << i;
    ASSERT_LT(previous.to_string(), next.to_string()) << i;  // text sorts the same way
    previous = next;
  }
}

TEST(UuidV7, StrictlyIncreasingAcrossMillisecondsAndBackwardSteps) {
  UuidV7Generator generator(3);
  int64_t times[] = {5 * kMs, 6 * kMs, 6 * kMs + 1, 4 * kMs, 4 * kMs, 100 * kMs, 7 * kMs};
  Uuid previous = generator.next(times[0]);
  for (int64_t t : times) {
    Uuid next = generator.next(t);
    EXPECT_LT(previous, next) << t;
    previous = next;
  }
}

TEST(UuidV7, SameSeedSameSequence) {
  UuidV7Generator a(42), b(42);
  for (int i = 0; i < 100; i++) {
    int64_t now = (1000 + i / 3) * kMs;
    EXPECT_EQ(a.next(now), b.next(now));
  }
}

}  // namespace
}  // namespace vellum
