// SPDX-License-Identifier: Apache-2.0
// Unit tests of the server's pure parts: request targets and API keys. The
// endpoints themselves are tested over real sockets (tests/integration).
#include "server/api.h"

#include <gtest/gtest.h>

#include "server/auth.h"

namespace vellum::server {
namespace {

TEST(Target, DecodesSegmentsAndQuery) {
  auto target = parse_target("/streams/order%2F1/metadata?from=5&type=A%2CB&x=a+b&flag");
  ASSERT_TRUE(target.has_value()) << target.error().message;
  ASSERT_EQ(target->segments.size(), 3u);
  EXPECT_EQ(target->segments[1], "order/1");
  EXPECT_EQ(target->query.at("from"), "5");
  EXPECT_EQ(target->query.at("type"), "A,B");
  EXPECT_EQ(target->query.at("x"), "a b");
  EXPECT_EQ(target->query.at("flag"), "");
  EXPECT_FALSE(parse_target("/streams/%zz").has_value());
  EXPECT_FALSE(parse_target("/streams/%4").has_value());
  EXPECT_FALSE(parse_target("streams").has_value());
  EXPECT_EQ(parse_target("/")->segments.size(), 0u);
  EXPECT_EQ(parse_target("/all/")->segments.size(), 1u);
}

ApiKey key(const std::string& token, Role role, std::vector<std::string> prefixes) {
  Sha256 hash;
  hash.update(token);
  return ApiKey{token, hash.finish(), role, std::move(prefixes)};
}

TEST(Auth, TokensRolesAndPrefixes) {
  Authenticator auth({key("r", Role::kReader, {"order-"}),
                      key("w", Role::kWriter, {"order-", "user-"}), key("a", Role::kAdmin, {"*"})});
  ASSERT_TRUE(auth.enabled());
  EXPECT_EQ(auth.authenticate("Bearer nope"), nullptr);
  EXPECT_EQ(auth.authenticate("Basic r"), nullptr);
  EXPECT_EQ(auth.authenticate(""), nullptr);
  const ApiKey* reader = auth.authenticate("Bearer r");
  const ApiKey* writer = auth.authenticate("bearer w");
  const ApiKey* admin = auth.authenticate("Bearer a");
  ASSERT_TRUE(reader && writer && admin);
  EXPECT_TRUE(auth.allows_stream(reader, Access::kRead, "order-1"));
  EXPECT_FALSE(auth.allows_stream(reader, Access::kWrite, "order-1"));
  EXPECT_FALSE(auth.allows_stream(reader, Access::kRead, "user-1"));
  EXPECT_TRUE(auth.allows_stream(writer, Access::kWrite, "user-1"));
  EXPECT_FALSE(auth.allows_stream(writer, Access::kAdmin, "user-1"));
  EXPECT_TRUE(auth.allows_stream(admin, Access::kAdmin, "anything"));
  EXPECT_FALSE(auth.allows_prefix(reader, Access::kRead, ""));
  EXPECT_TRUE(auth.allows_prefix(reader, Access::kRead, "order-12"));
  EXPECT_FALSE(auth.allows_prefix(reader, Access::kRead, "order"));
  EXPECT_TRUE(auth.allows_prefix(admin, Access::kRead, ""));
  Authenticator open({});
  EXPECT_FALSE(open.enabled());
  EXPECT_TRUE(open.allows_stream(nullptr, Access::kAdmin, "x"));
}

TEST(Errors, EngineCodesMapToStatuses) {
  Error conflict{ErrorCode::kFailedPrecondition, "wrong", RevisionConflict{"s", "3", 5}};
  HttpResponse response = error_response(conflict, 11);
  EXPECT_EQ(response.result_int(), 409u);
  EXPECT_NE(response.body().find(R"("error":"wrong_expected_revision")"), std::string::npos);
  EXPECT_NE(response.body().find(R"("actual":5)"), std::string::npos);
  EXPECT_EQ(error_response(Error{ErrorCode::kStreamDeleted, "x", {}}, 11).result_int(), 410u);
  EXPECT_EQ(error_response(Error{ErrorCode::kInvalidArgument, "x", {}}, 11).result_int(), 400u);
  EXPECT_EQ(error_response(Error{ErrorCode::kResourceExhausted, "x", {}}, 11).result_int(), 429u);
  EXPECT_EQ(error_response(Error{ErrorCode::kDataLoss, "x", {}}, 11).result_int(), 500u);
}

}  // namespace
}  // namespace vellum::server
