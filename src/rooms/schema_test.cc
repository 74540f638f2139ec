// SPDX-License-Identifier: Apache-2.0
// Schema parsing: every mistake an app developer can make is a kInvalidArgument that names it.
#include "rooms/schema.h"

#include <string>

#include <gtest/gtest.h>

namespace vellum::rooms {
namespace {

using Json = nlohmann::json;

// Parses `text`, expects kInvalidArgument, and returns the message.
std::string schema_error(const std::string& text) {
  auto schema = RoomSchema::parse_text(text);
  EXPECT_FALSE(schema.has_value()) << text;
  if (schema.has_value()) return "";
  EXPECT_EQ(schema.error().code, ErrorCode::kInvalidArgument);
  return schema.error().message;
}

// A schema with `policies` and one action "a" made of `ops`.
std::string with_ops(const std::string& policies, const std::string& ops) {
  return R"({"policies":)" + policies + R"(,"actions":{"a":)" + ops + "}}";
}

TEST(RoomSchema, ParsesPoliciesAndBindsOpsToTheirRule) {
  auto schema = RoomSchema::parse_text(R"({
    "policies": {"/title": "lww", "/scores/*": "counter", "/a~1b/x~0y": "set"},
    "actions": {
      "rename": [{"op": "set", "path": "/title", "value": "$payload.title"}],
      "score": [{"op": "increment", "path": "/scores/{participant}"}],
      "tag": [{"op": "add", "path": "/a~1b/x~0y", "value": "$$literal"}],
      "noop": []
    }})");
  ASSERT_TRUE(schema.has_value()) << schema.error().message;
  ASSERT_EQ(schema->rules().size(), 3u);
  const auto* score = schema->find_action("score");
  ASSERT_NE(score, nullptr);
  ASSERT_EQ(score->size(), 1u);
  EXPECT_EQ(schema->rules()[(*score)[0].rule_index].policy, Policy::kCounter);
  EXPECT_EQ((*score)[0].path[1].kind, PathSegment::Kind::kParticipant);
  EXPECT_EQ(schema->find_action("missing"), nullptr);
  EXPECT_EQ(schema->match({"scores", "ann"}), schema->match({"scores", "bob"}));
  EXPECT_TRUE(schema->match({"a/b", "x~y"}).has_value());
  EXPECT_FALSE(schema->match({"scores"}).has_value());
  EXPECT_FALSE(schema->match({"scores", "ann", "x"}).has_value());
}

TEST(RoomSchema, RejectsMalformedDocuments) {
  EXPECT_NE(schema_error("[]").find("must be a JSON object"), std::string::npos);
  EXPECT_NE(schema_error("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(schema_error(R"({"policies":{},"actions":{},"extra":1})").find("unknown key 'extra'"),
            std::string::npos);
  EXPECT_NE(schema_error(R"({"actions":{}})").find("\"policies\" is missing"), std::string::npos);
  EXPECT_NE(schema_error(R"({"policies":{}})").find("\"actions\" must be an object"),
            std::string::npos);
  EXPECT_NE(schema_error(R"({"policies":[],"actions":{}})").find("must be an object"),
            std::string::npos);
}

TEST(RoomSchema, RejectsBadPolicyPaths) {
  auto policies = [](const std::string& body) {
    return schema_error(R"({"policies":)" + body + R"(,"actions":{}})");
  };
  EXPECT_NE(policies(R"({"title":"lww"})").find("starts with '/'"), std::string::npos);
  EXPECT_NE(policies(R"({"/a//b":"lww"})").find("empty segment"), std::string::npos);
  EXPECT_NE(policies(R"({"/a~2":"lww"})").find("'~' must be followed by 0 or 1"),
            std::string::npos);
  EXPECT_NE(policies(R"({"/a":"lwww"})").find("unknown policy 'lwww'"), std::string::npos);
  EXPECT_NE(policies(R"({"/a":1})").find("must be a string"), std::string::npos);
  EXPECT_NE(policies(R"({"/a/{participant}":"lww"})").find("use '*' here"), std::string::npos);
  EXPECT_NE(policies(R"({"/a/*":"lww","/a/b":"counter"})").find("overlap"), std::string::npos);
  EXPECT_NE(policies(R"({"/a":"lww","/a/b":"counter"})").find("may not nest"), std::string::npos);
  EXPECT_NE(policies(R"({"/*/x":"lww","/a/*":"set"})").find("overlap"), std::string::npos);
  std::string deep = "/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a";  // 17 segments
  EXPECT_NE(policies(R"({")" + deep + R"(":"lww"})").find("more than 16 segments"),
            std::string::npos);
  // Siblings and different depths under different names do not overlap.
  EXPECT_TRUE(RoomSchema::parse_text(
                  R"({"policies":{"/a/*/x":"lww","/a/*/y":"set","/b":"max"},"actions":{}})")
                  .has_value());
}

TEST(RoomSchema, RejectsOpsThatDoNotFitTheirPath) {
  std::string policies = R"({"/t":"lww","/s":"set","/l":"list","/m":"max","/c/*":"counter"})";
  auto op_error = [&](const std::string& ops) { return schema_error(with_ops(policies, ops)); };
  EXPECT_NE(op_error(R"([{"op":"increment","path":"/t"}])")
                .find("op 'increment' does not fit path '/t', whose policy is 'lww'"),
            std::string::npos);
  EXPECT_NE(op_error(R"([{"op":"set","path":"/s","value":1}])").find("does not fit"),
            std::string::npos);
  EXPECT_NE(op_error(R"([{"op":"delete","path":"/m"}])").find("does not fit"), std::string::npos);
  EXPECT_NE(op_error(R"([{"op":"insert","path":"/s","value":{"id":"x"}}])").find("does not fit"),
            std::string::npos);
  EXPECT_NE(op_error(R"([{"op":"push","path":"/l"}])").find("unknown op 'push'"),
            std::string::npos);
  EXPECT_NE(op_error(R"([{"op":"set","path":"/nowhere","value":1}])").find("matches no policy"),
            std::string::npos);
  EXPECT_NE(op_error(R"([{"op":"increment","path":"/c"}])").find("matches no policy"),
            std::string::npos);
  EXPECT_NE(op_error(R"([{"op":"increment","path":"/c/*"}])").find("'*' belongs in policy"),
            std::string::npos);
  EXPECT_NE(op_error(R"([{"op":"increment","path":"/c/{who}"}])").find("bad placeholder"),
            std::string::npos);
  EXPECT_NE(op_error(R"([{"op":"increment","path":"/c/x{participant}"}])").find("whole segment"),
            std::string::npos);
  EXPECT_NE(op_error(R"([{"op":"increment","path":"/c/{payload.}"}])").find("bad placeholder"),
            std::string::npos);
  // A placeholder matches only a '*' segment: it could name any member.
  EXPECT_NE(schema_error(with_ops(R"({"/c/ann":"counter"})",
                                  R"([{"op":"increment","path":"/c/{participant}"}])"))
                .find("matches no policy"),
            std::string::npos);
}

TEST(RoomSchema, RejectsBadOpValues) {
  std::string policies = R"({"/t":"lww","/s":"set","/l":"list","/m":"max","/c":"counter"})";
  auto op_error = [&](const std::string& ops) { return schema_error(with_ops(policies, ops)); };
  EXPECT_NE(op_error(R"([{"op":"set","path":"/t"}])").find("set needs a \"value\""),
            std::string::npos);
  EXPECT_NE(op_error(R"([{"op":"delete","path":"/t","value":1}])").find("takes no value"),
            std::string::npos);
  EXPECT_NE(op_error(R"([{"op":"delete","path":"/l"}])").find("delete needs a \"value\""),
            std::string::npos);
  EXPECT_NE(op_error(R"([{"op":"increment","path":"/c","value":1.5}])").find("integers"),
            std::string::npos);
  EXPECT_NE(op_error(R"([{"op":"increment","path":"/c","value":"x"}])").find("takes an integer"),
            std::string::npos);
  EXPECT_NE(op_error(R"([{"op":"max","path":"/m","value":9007199254740992}])").find("2^53"),
            std::string::npos);
  EXPECT_NE(op_error(R"([{"op":"add","path":"/s","value":{"a":1}}])").find("set elements"),
            std::string::npos);
  EXPECT_NE(op_error(R"([{"op":"insert","path":"/l","value":{"name":"x"}}])").find("\"id\""),
            std::string::npos);
  EXPECT_NE(
      op_error(R"([{"op":"set","path":"/t","value":"$payload..x"}])").find("unknown reference"),
      std::string::npos);
  EXPECT_NE(op_error(R"([{"op":"set","path":"/t","value":{"by":"$user"}}])")
                .find("unknown reference '$user'"),
            std::string::npos);
  EXPECT_NE(op_error(R"([{"op":"set","path":"/t","value":1,"when":2}])").find("unknown key 'when'"),
            std::string::npos);
  EXPECT_NE(op_error(R"([{"path":"/t","value":1}])").find("\"op\" must be a string"),
            std::string::npos);
  EXPECT_NE(op_error(R"({"op":"set"})").find("must be an array of ops"), std::string::npos);
  EXPECT_NE(schema_error(R"({"policies":{},"actions":{"$join":[]}})").find("reserved"),
            std::string::npos);
  // References are checked against the payload later, on every event.
  EXPECT_TRUE(RoomSchema::parse_text(
                  with_ops(policies, R"([{"op":"increment","path":"/c","value":"$payload.n"}])"))
                  .has_value());
}

// Every member of a valid schema replaced by values of other types: an error or a schema,
// never an exception or an assertion.
TEST(RoomSchema, MutatedSchemasNeverThrow) {
  Json schema = Json::parse(R"({
    "policies": {"/t": "lww", "/s/*": "set", "/l": "list", "/m": "max", "/c": "counter"},
    "actions": {"a": [{"op": "set", "path": "/t", "value": {"x": ["$payload.x", "$$y"]}},
                      {"op": "add", "path": "/s/{payload.k}", "value": "$participant"},
                      {"op": "insert", "path": "/l", "value": {"id": "$eventId"}},
                      {"op": "max", "path": "/m", "value": 3},
                      {"op": "increment", "path": "/c"}]}})");
  ASSERT_TRUE(RoomSchema::parse(schema).has_value());
  const Json replacements[] = {nullptr,        -1,  "x", "$", "/*", "{payload.}", Json::array(),
                               Json::object(), 1.5, true};
  Json flat = schema.flatten();
  for (const auto& [pointer, unused] : flat.items()) {
    for (const Json& replacement : replacements) {
      Json mutated = schema;
      mutated[Json::json_pointer(pointer)] = replacement;
      EXPECT_NO_THROW((void)RoomSchema::parse(mutated)) << pointer;
    }
  }
}

TEST(RoomSchema, PointersRoundTrip) {
  auto path = parse_pointer("/a~1b/c~0d/e");
  ASSERT_TRUE(path.has_value());
  EXPECT_EQ(*path, (Path{"a/b", "c~d", "e"}));
  EXPECT_EQ(format_pointer(*path), "/a~1b/c~0d/e");
  EXPECT_FALSE(parse_pointer("").has_value());
  EXPECT_FALSE(parse_pointer("/").has_value());
  EXPECT_FALSE(parse_pointer("/a~").has_value());
}

TEST(CanonicalJson, SortsKeysAndWritesNoWhitespace) {
  Json value = Json::parse(R"({"b": [1, -2, {"z": true, "a": null}], "a": "é\n", "A": 0})");
  auto text = canonical_json(value);
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(*text, "{\"A\":0,\"a\":\"é\\n\",\"b\":[1,-2,{\"a\":null,\"z\":true}]}");
  EXPECT_FALSE(canonical_json(Json::parse("[1.5]")).has_value());
  EXPECT_FALSE(canonical_json(Json::parse("[1e3]")).has_value());
  EXPECT_FALSE(canonical_json(Json(std::string("\xff"))).has_value());
  EXPECT_FALSE(canonical_json(Json(uint64_t{1} << 60)).has_value());
}

}  // namespace
}  // namespace vellum::rooms
