// SPDX-License-Identifier: Apache-2.0
// The Replicache protocol's pure rules (replicache.h): request parsing and
// versions, the lastMutationID rules of a push, the patch between two room
// states, and deterministic event ids. The endpoints run end to end in
// tests/integration/replicache_test.py and against the real npm client in
// clients/js/test/replicache/.
#include "server/replicache.h"

#include <gtest/gtest.h>

namespace vellum::server::replicache {
namespace {

using Json = nlohmann::json;

Json push_body(Json mutations) {
  return Json{{"pushVersion", 1},
              {"schemaVersion", ""},
              {"profileID", "p1"},
              {"clientGroupID", "g1"},
              {"mutations", std::move(mutations)}};
}

Json mutation(const std::string& client, uint64_t id, const std::string& name = "rename") {
  return Json{{"clientID", client},
              {"id", id},
              {"name", name},
              {"args", {{"title", "x"}}},
              {"timestamp", 175.85}};
}

PushRequest parsed_push(Json mutations) {
  Result<PushRequest> push = parse_push(push_body(std::move(mutations)));
  EXPECT_TRUE(push) << push.error().message;
  return push ? *push : PushRequest{};
}

ClientLookup records(std::map<std::string, ClientRecord> known) {
  return [known](const std::string& client) -> std::optional<ClientRecord> {
    auto found = known.find(client);
    if (found == known.end()) return std::nullopt;
    return found->second;
  };
}

TEST(Replicache, OnlyVersionOneIsSupported) {
  EXPECT_FALSE(unsupported_version(push_body(Json::array()), "push"));
  Json v0 = push_body(Json::array());
  v0["pushVersion"] = 0;
  EXPECT_EQ(*unsupported_version(v0, "push"),
            (Json{{"error", "VersionNotSupported"}, {"versionType", "push"}}));
  EXPECT_EQ((*unsupported_version(Json{{"clientGroupID", "g"}}, "pull"))["versionType"], "pull");
}

TEST(Replicache, ParsesPushAndRefusesBadMembers) {
  PushRequest push = parsed_push(Json::array({mutation("c1", 1), mutation("c1", 2, "step")}));
  EXPECT_EQ(push.client_group_id, "g1");
  ASSERT_EQ(push.mutations.size(), 2u);
  EXPECT_EQ(push.mutations[1].name, "step");
  EXPECT_EQ(push.mutations[1].args["title"], "x");
  for (const Json& bad :
       {Json{{"clientID", "c1"}, {"id", 0}, {"name", "a"}},
        Json{{"clientID", ""}, {"id", 1}, {"name", "a"}},
        Json{{"clientID", "c 1"}, {"id", 1}, {"name", "a"}},
        Json{{"clientID", "c1"}, {"id", -1}, {"name", "a"}}, Json{{"clientID", "c1"}, {"id", 1}}}) {
    EXPECT_FALSE(parse_push(push_body(Json::array({bad})))) << bad.dump();
  }
  Json no_group = push_body(Json::array());
  no_group.erase("clientGroupID");
  EXPECT_FALSE(parse_push(no_group));
}

TEST(Replicache, PullCookiesAreNullOurNumbersOrForeign) {
  Json body{{"pullVersion", 1}, {"clientGroupID", "g1"}, {"cookie", nullptr}};
  EXPECT_FALSE(parse_pull(body)->cookie);
  body["cookie"] = 42;
  EXPECT_EQ(parse_pull(body)->cookie, 42u);
  for (const Json& foreign : {Json("42"), Json(-1), Json{{"order", 1}}, Json(1.5)}) {
    body["cookie"] = foreign;
    EXPECT_TRUE(parse_pull(body)->foreign_cookie) << foreign.dump();
  }
}

TEST(Replicache, PushSkipsProcessedMutationsAndAppliesTheNextInOrder) {
  PushRequest push = parsed_push(
      Json::array({mutation("c1", 3), mutation("c1", 4), mutation("c2", 1), mutation("c1", 5)}));
  Result<PushPlan> plan = plan_push(push, records({{"c1", {"g1", 3, 17}}}), 100);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->apply, (std::vector<size_t>{1, 2, 3}));  // c1:3 is done
  EXPECT_FALSE(plan->gap);
}

TEST(Replicache, AGapStopsThePushThere) {
  PushRequest push =
      parsed_push(Json::array({mutation("c1", 1), mutation("c1", 3), mutation("c2", 1)}));
  Result<PushPlan> plan = plan_push(push, records({}), 100);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->apply, (std::vector<size_t>{0}));
  ASSERT_TRUE(plan->gap);
  EXPECT_EQ(*plan->gap, 1u);
  EXPECT_EQ(plan->gap_expected, 2u);
  // Every mutation already processed: nothing to do, no gap.
  Result<PushPlan> replay = plan_push(parsed_push(Json::array({mutation("c1", 1)})),
                                      records({{"c1", {"g1", 1, 5}}}), 100);
  EXPECT_TRUE(replay->apply.empty());
  EXPECT_FALSE(replay->gap);
}

TEST(Replicache, AClientOfAnotherGroupIsRefused) {
  Result<PushPlan> plan = plan_push(parsed_push(Json::array({mutation("c1", 1)})),
                                    records({{"c1", {"other", 0, 0}}}), 100);
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code, ErrorCode::kFailedPrecondition);
}

TEST(Replicache, APushBeyondTheLimitAppliesAPrefixWithoutAGap) {
  Json mutations = Json::array();
  for (uint64_t id = 1; id <= 5; ++id) mutations.push_back(mutation("c1", id));
  Result<PushPlan> plan = plan_push(parsed_push(mutations), records({}), 3);
  EXPECT_EQ(plan->apply, (std::vector<size_t>{0, 1, 2}));
  EXPECT_FALSE(plan->gap);
}

TEST(Replicache, FirstPullClearsAndPutsEverySlot) {
  std::map<std::string, Json> after{{"/title", "Trip"}, {"/votes/a", 2}};
  EXPECT_EQ(patch(nullptr, after), Json::parse(R"([{"op":"clear"},
      {"op":"put","key":"/title","value":"Trip"},{"op":"put","key":"/votes/a","value":2}])"));
  EXPECT_EQ(patch(nullptr, {}), Json::parse(R"([{"op":"clear"}])"));
}

TEST(Replicache, LaterPullsPutChangedAndNewSlotsAndDeleteRemovedOnes) {
  std::map<std::string, Json> before{{"/a", 1}, {"/b", Json::array({1})}, {"/c", "same"}};
  std::map<std::string, Json> after{{"/b", Json::array({1, 2})}, {"/c", "same"}, {"/d", true}};
  EXPECT_EQ(patch(&before, after), Json::parse(R"([{"op":"del","key":"/a"},
      {"op":"put","key":"/b","value":[1,2]},{"op":"put","key":"/d","value":true}])"));
  EXPECT_EQ(patch(&after, after), Json::array());
}

TEST(Replicache, MutationEventIdsAreDeterministicVersion8Uuids) {
  const Uuid id = mutation_event_id("trips", "r1", "c1", 7);
  EXPECT_EQ(id, mutation_event_id("trips", "r1", "c1", 7));
  EXPECT_NE(id, mutation_event_id("trips", "r1", "c1", 8));
  EXPECT_NE(id, mutation_event_id("trips", "r1c", "1", 7));  // lengths separate the fields
  EXPECT_NE(id, mutation_event_id("trips", "r2", "c1", 7));
  EXPECT_EQ(id.bytes[6] >> 4, 8);
  EXPECT_EQ(id.bytes[8] >> 6, 2);
  EXPECT_EQ(id.to_string()[14], '8');
}

TEST(Replicache, RecordsAndOriginsRoundTrip) {
  ClientRecord record{"g1", 9, 120};
  Result<ClientRecord> back = client_record_from_json(client_record_to_json(record).dump());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->client_group_id, "g1");
  EXPECT_EQ(back->last_mutation_id, 9u);
  EXPECT_EQ(back->changed_seq, 120u);
  EXPECT_EQ(client_record_from_json("{}").error().code, ErrorCode::kDataLoss);
  Mutation m{"c1", 4, "rename", Json::object()};
  std::optional<Origin> origin = parse_origin(mutation_origin("g1", m));
  ASSERT_TRUE(origin);
  EXPECT_EQ(origin->client_group_id, "g1");
  EXPECT_EQ(origin->client_id, "c1");
  EXPECT_EQ(origin->mutation_id, 4u);
  EXPECT_FALSE(parse_origin(Json{{"other", 1}}));
}

}  // namespace
}  // namespace vellum::server::replicache
