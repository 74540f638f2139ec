// SPDX-License-Identifier: Apache-2.0
#include "wire/codec.h"

#include <gtest/gtest.h>

namespace vellum::wire {
namespace {

TEST(Codec, ParsesWrappedAppendBody) {
  auto body = parse_append_body(
      R"({"expectedRevision": 4, "events": [
           {"type": "A", "data": {"x": 1}, "subject": "u-1", "time": "2026-11-23T10:00:00.5Z",
            "metadata": {"k": "v"}, "correlationid": "c", "causationid": "d",
            "schemaversion": 3, "id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"},
           {"type": "B", "datacontenttype": "text/plain", "data": "hello"},
           {"type": "C", "datacontenttype": "application/octet-stream", "data_base64": "AAEC"}]})",
      "application/json", "");
  ASSERT_TRUE(body.has_value()) << body.error().message;
  EXPECT_EQ(body->expected, ExpectedRevision::exact(4));
  ASSERT_EQ(body->events.size(), 3u);
  EXPECT_EQ(body->events[0].data, R"({"x":1})");
  EXPECT_EQ(body->events[0].metadata, R"({"k":"v"})");
  EXPECT_EQ(body->events[0].subject, "u-1");
  EXPECT_EQ(body->events[0].schema_version, 3u);
  EXPECT_EQ(body->events[0].occurrence_time_unix_ns, parse_rfc3339("2026-11-23T10:00:00.5Z"));
  EXPECT_EQ(body->events[0].id.to_string(), "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
  EXPECT_EQ(body->events[1].data, "hello");
  EXPECT_EQ(body->events[2].data, std::string("\0\1\2", 3));
}

// Data and metadata are stored as the client wrote them, keys in order.
TEST(Codec, KeepsObjectKeyOrder) {
  auto body = parse_append_body(
      R"([{"type":"A","data":{"b":1,"a":{"z":0,"y":1}},"metadata":{"k2":1,"k1":2}}])",
      "application/json", "");
  ASSERT_TRUE(body.has_value()) << body.error().message;
  EXPECT_EQ(body->events[0].data, R"({"b":1,"a":{"z":0,"y":1}})");
  EXPECT_EQ(body->events[0].metadata, R"({"k2":1,"k1":2})");
}

TEST(Codec, BareArrayTakesExpectedRevisionFromHeader) {
  auto body = parse_append_body(R"([{"specversion":"1.0","type":"A","source":"x"}])",
                                "application/cloudevents-batch+json", "no_stream");
  ASSERT_TRUE(body.has_value()) << body.error().message;
  EXPECT_EQ(body->expected, ExpectedRevision::no_stream());
  auto single = parse_append_body(R"({"type":"A"})", "application/cloudevents+json", "");
  ASSERT_TRUE(single.has_value()) << single.error().message;
  EXPECT_EQ(single->events.size(), 1u);
}

TEST(Codec, RefusesBadInputWithTheFieldNamed) {
  struct Case {
    const char* body;
    const char* message_part;
  };
  const Case cases[] = {
      {"not json", "not valid JSON"},
      {R"({"events": []})", "empty"},
      {R"({"events": [{"data": 1}]})", "events[0].type is required"},
      {R"({"events": [{"type": 5}]})", "events[0].type must be a string"},
      {R"({"events": [{"type": "A", "colour": "red"}]})", "unknown attribute \"colour\""},
      {R"({"events": [{"type": "A", "id": "nope"}]})", "not a UUID"},
      {R"({"events": [{"type": "A", "time": "yesterday"}]})", "RFC 3339"},
      {R"({"events": [{"type": "A", "specversion": "0.3"}]})", "specversion"},
      {R"({"events": [{"type": "A", "metadata": [1]}]})", "metadata must be a JSON object"},
      {R"({"events": [{"type": "A", "data": 1, "data_base64": "AA=="}]})", "not both"},
      {R"({"expectedRevision": "some", "events": [{"type": "A"}]})", "not any, no_stream"},
      {R"({"expectedRevision": -1, "events": [{"type": "A"}]})", "expectedRevision must be"},
      {R"({"events": [{"type": "A"}], "extra": 1})", "unknown field \"extra\""},
      {R"(42)", "must be"},
  };
  for (const Case& c : cases) {
    auto body = parse_append_body(c.body, "application/json", "");
    ASSERT_FALSE(body.has_value()) << c.body;
    EXPECT_EQ(body.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(body.error().message.find(c.message_part), std::string::npos)
        << c.body << " -> " << body.error().message;
  }
}

TEST(Codec, RefusesDeepNestingBeforeParsing) {
  std::string deep(10000, '[');
  auto body = parse_append_body(deep, "application/json", "");
  ASSERT_FALSE(body.has_value());
  EXPECT_NE(body.error().message.find("nests deeper"), std::string::npos);
  // Brackets inside strings do not count.
  std::string in_string = R"([{"type":"A","data":")" + std::string(1000, '[') + R"("}])";
  EXPECT_TRUE(parse_append_body(in_string, "application/json", "").has_value());
}

TEST(Codec, TransactionBody) {
  auto appends = parse_transaction_body(
      R"({"appends":[{"stream":"a-1","expectedRevision":"no_stream","events":[{"type":"A"}]},
                     {"stream":"b-1","events":[{"type":"B"},{"type":"C"}]}]})");
  ASSERT_TRUE(appends.has_value()) << appends.error().message;
  ASSERT_EQ(appends->size(), 2u);
  EXPECT_EQ((*appends)[0].expected, ExpectedRevision::no_stream());
  EXPECT_EQ((*appends)[1].expected, ExpectedRevision::any());
  EXPECT_EQ((*appends)[1].events.size(), 2u);
  EXPECT_FALSE(parse_transaction_body(R"({"appends":[{"events":[{"type":"A"}]}]})").has_value());
  // Missing members are errors, never a lookup of an absent key.
  auto no_events = parse_transaction_body(R"({"appends":[{"stream":"a-1"}]})");
  ASSERT_FALSE(no_events.has_value());
  EXPECT_NE(no_events.error().message.find("appends[0].events is required"), std::string::npos);
  EXPECT_FALSE(parse_transaction_body(R"({"appends":[]})").has_value());
}

TEST(Codec, MetadataRoundTrip) {
  auto metadata = parse_metadata_body(R"({"maxAge":60,"maxCount":null,"custom":{"a":[1]}})");
  ASSERT_TRUE(metadata.has_value()) << metadata.error().message;
  EXPECT_EQ(metadata->max_age_seconds, 60u);
  EXPECT_FALSE(metadata->max_count.has_value());
  EXPECT_EQ(dump(metadata_to_json(*metadata)),
            R"({"maxAge":60,"maxCount":null,"truncateBefore":null,"custom":{"a":[1]}})");
  EXPECT_FALSE(parse_metadata_body(R"({"maxAge":-1})").has_value());
  EXPECT_FALSE(parse_metadata_body(R"({"ttl":5})").has_value());
}

TEST(Codec, EventToJsonIsCloudEvents) {
  RecordedEvent event;
  event.id = *Uuid::parse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
  event.stream = "order-1";
  event.revision = 2;
  event.position = 7;
  event.type = "Paid";
  event.content_type = "application/json";
  event.data = R"({"total":5})";
  event.recorded_time_unix_ns = 1'700'000'000'000'000'000;
  OrderedJson json = event_to_json(event);
  EXPECT_EQ(json["specversion"], "1.0");
  EXPECT_EQ(json["data"]["total"], 5);
  EXPECT_EQ(json["streamrevision"], 2);
  EXPECT_EQ(json["position"], 7);
  EXPECT_EQ(json["recordedtime"], "2023-11-14T22:13:20Z");
  event.content_type = "application/octet-stream";
  event.data = std::string("\xff\x00", 2);
  json = event_to_json(event);
  EXPECT_EQ(json["data_base64"], "/wA=");
  EXPECT_FALSE(json.contains("data"));
}

TEST(Codec, Rfc3339AndBase64) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:01+01:00"), -3'599'000'000'000);
  EXPECT_FALSE(parse_rfc3339("2026-02-30T00:00:00Z").has_value());
  EXPECT_EQ(format_rfc3339(1'500'000'000), "1970-01-01T00:00:01.500000000Z");
  EXPECT_EQ(base64_decode(base64_encode("any bytes\n")), "any bytes\n");
  EXPECT_FALSE(base64_decode("abc").has_value());
}

}  // namespace
}  // namespace vellum::wire
