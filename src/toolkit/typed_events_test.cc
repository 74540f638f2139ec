// SPDX-License-Identifier: Apache-2.0
// Typed events: encoding, decoding, and upcasting across a real schema bump.
#include "vellum/typed_events.h"

#include <gtest/gtest.h>

namespace vellum {
namespace {

// Version 1 of this event stored {"order_id", "total"} with total in whole
// euros. Version 2 (the code below) stores cents and a currency; version 3
// renamed order_id to id. Data written at 1 and 2 must still load.
struct PriceSet {
  static constexpr std::string_view kType = "PriceSet";
  static constexpr uint32_t kSchemaVersion = 3;
  std::string id;
  int64_t total_cents = 0;
  std::string currency;
  friend bool operator==(const PriceSet&, const PriceSet&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PriceSet, id, total_cents, currency)

struct NoteAdded {
  static constexpr std::string_view kType = "NoteAdded";
  static constexpr uint32_t kSchemaVersion = 1;
  std::string text;
  friend bool operator==(const NoteAdded&, const NoteAdded&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(NoteAdded, text)

using Codec = EventCodec<PriceSet, NoteAdded>;

Upcasters price_upcasters() {
  Upcasters upcasters;
  upcasters.add("PriceSet", 1, [](Json v1) -> Result<Json> {
    if (!v1.contains("total") || !v1["total"].is_number_integer()) {
      return make_error(ErrorCode::kInvalidArgument, "v1 PriceSet without an integer total");
    }
    v1["total_cents"] = v1["total"].get<int64_t>() * 100;
    v1["currency"] = "EUR";
    v1.erase("total");
    return v1;
  });
  upcasters.add("PriceSet", 2, [](Json v2) -> Result<Json> {
    v2["id"] = v2["order_id"];
    v2.erase("order_id");
    return v2;
  });
  return upcasters;
}

TEST(TypedEventsTest, EncodesTypeVersionAndJson) {
  EventData data = Codec::encode(PriceSet{"o-1", 1250, "EUR"});
  EXPECT_EQ(data.type, "PriceSet");
  EXPECT_EQ(data.schema_version, 3u);
  EXPECT_EQ(data.data, R"({"currency":"EUR","id":"o-1","total_cents":1250})");
  EXPECT_TRUE(Codec::knows("NoteAdded"));
  EXPECT_FALSE(Codec::knows("Other"));
}

TEST(TypedEventsTest, RoundTripsEveryAlternative) {
  Codec codec;
  for (const Codec::Event& event :
       {Codec::Event(PriceSet{"o-2", 5, "USD"}), Codec::Event(NoteAdded{"ring twice"})}) {
    EventData data = Codec::encode(event);
    auto decoded = codec.decode(data.type, data.schema_version, data.data);
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_EQ(*decoded, event);
  }
}

TEST(TypedEventsTest, UpcastsOldSchemaVersionsStepByStep) {
  Codec codec(price_upcasters());
  auto from_v1 = codec.decode("PriceSet", 1, R"({"order_id":"o-3","total":12})");
  ASSERT_TRUE(from_v1) << from_v1.error().message;
  EXPECT_EQ(std::get<PriceSet>(*from_v1), (PriceSet{"o-3", 1200, "EUR"}));
  auto from_v2 =
      codec.decode("PriceSet", 2, R"({"order_id":"o-4","total_cents":99,"currency":"GBP"})");
  ASSERT_TRUE(from_v2) << from_v2.error().message;
  EXPECT_EQ(std::get<PriceSet>(*from_v2), (PriceSet{"o-4", 99, "GBP"}));
}

TEST(TypedEventsTest, ReportsEveryKindOfBadInput) {
  Codec codec(price_upcasters());
  auto unknown = codec.decode("Refunded", 1, "{}");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  auto newer = codec.decode("PriceSet", 4, "{}");
  ASSERT_FALSE(newer);
  EXPECT_EQ(newer.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(newer.error().message.find("newer"), std::string::npos);
  auto not_json = codec.decode("NoteAdded", 1, "{not json");
  ASSERT_FALSE(not_json);
  EXPECT_EQ(not_json.error().code, ErrorCode::kInvalidArgument);
  auto wrong_shape = codec.decode("NoteAdded", 1, R"({"text":17})");
  ASSERT_FALSE(wrong_shape);
  EXPECT_EQ(wrong_shape.error().code, ErrorCode::kInvalidArgument);
  auto converter_error = codec.decode("PriceSet", 1, R"({"order_id":"o"})");
  ASSERT_FALSE(converter_error);
  EXPECT_EQ(converter_error.error().code, ErrorCode::kInvalidArgument);
}

TEST(TypedEventsTest, AMissingUpcastStepIsAnError) {
  Codec without_upcasters;
  auto old = without_upcasters.decode("PriceSet", 2, R"({"order_id":"o","total_cents":1})");
  ASSERT_FALSE(old);
  EXPECT_EQ(old.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(old.error().message.find("from schema version 2 to 3"), std::string::npos);
}

}  // namespace
}  // namespace vellum
