// SPDX-License-Identifier: Apache-2.0
// Unit tests of the server's pure parts (request targets, API keys, the
// declared projections and their config), and of the /projections routes
// driven through Api::handle on a real store and projection engine, without
// sockets. The other endpoints are tested over real sockets
// (tests/integration/server_test.py).
#include "server/api.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <stdlib.h>

#include "vellum/projection.h"
#include "vellum/toolkit_db.h"

#include "server/auth.h"
#include "server/config.h"
#include "server/declared_projections.h"

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

// ---- Declared projections ----

// A KvView over a map, as the kv sink gives one to the handler.
class MapView : public KvView {
 public:
  Result<std::optional<std::string>> get(std::string_view key) override {
    auto it = values.find(std::string(key));
    if (it == values.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  void put(std::string_view key, std::string_view value) override {
    values[std::string(key)] = std::string(value);
  }
  void erase(std::string_view key) override { values.erase(std::string(key)); }
  std::map<std::string, std::string> values;
};

DeclaredProjection declared(std::string key, std::string reduce) {
  DeclaredProjectionFields fields;
  fields.name = "p";
  fields.key = std::move(key);
  fields.reduce = std::move(reduce);
  auto parsed = parse_declared_projection(fields, "projections[0]");
  EXPECT_TRUE(parsed.has_value()) << parsed.error().message;
  return parsed.has_value() ? *parsed : DeclaredProjection{};
}

// Applies an event with these fields (the views point into `storage`).
struct TestEvent {
  Uuid id{};
  std::string stream = "user-1";
  std::string type = "Changed";
  std::string content_type = "application/json";
  std::string data;
  std::string subject;
  uint64_t position = 0;

  EventRef ref() const {
    return EventRef{id,      stream, 0, position, type, content_type, data, {}, {}, {},
                    subject, 0,      0, 1,        0};
  }
};

TEST(DeclaredProjection, ParsesAndRefusesFields) {
  DeclaredProjectionFields fields;
  fields.name = "users";
  fields.key = "/data/a~1b~0c/0";
  fields.reduce = "merge";
  auto parsed = parse_declared_projection(fields, "projections[0]");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->key, ProjectionKey::kJsonPointer);
  EXPECT_EQ(parsed->key_pointer_tokens, (std::vector<std::string>{"data", "a/b~c", "0"}));
  EXPECT_EQ(parsed->reduce, ProjectionReduce::kMerge);
  auto refused = [&](DeclaredProjectionFields bad, std::string_view words) {
    auto result = parse_declared_projection(bad, "projections[3]");
    ASSERT_FALSE(result.has_value()) << words;
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(result.error().message.find("projections[3]"), std::string::npos);
    EXPECT_NE(result.error().message.find(words), std::string::npos) << result.error().message;
  };
  DeclaredProjectionFields bad = fields;
  bad.key = "data/userId";
  refused(bad, "JSON pointer");
  bad.key = "/data/~2";
  refused(bad, "JSON pointer");
  bad = fields;
  bad.reduce = "sum";
  refused(bad, "reduce \"sum\"");
  bad = fields;
  bad.name = "no spaces";
  refused(bad, "name");
  bad = fields;
  bad.stream = "user-1";
  bad.filter.category = "user";
  refused(bad, "stream");
}

TEST(DeclaredProjection, MergeBySubject) {
  DeclaredProjection projection = declared("subject", "merge");
  MapView view;
  TestEvent event;
  event.subject = "alice";
  event.data = R"({"name":"Alice","email":"a@x","tags":{"x":1}})";
  ASSERT_TRUE(apply_declared_projection(projection, event.ref(), view).has_value());
  event.data = R"({"email":"alice@x","tags":{"x":null,"y":2}})";
  ASSERT_TRUE(apply_declared_projection(projection, event.ref(), view).has_value());
  EXPECT_EQ(view.values.at("alice"), R"({"name":"Alice","email":"alice@x","tags":{"y":2}})");
  // Skipped: no subject, data that is not JSON.
  event.subject = "";
  ASSERT_TRUE(apply_declared_projection(projection, event.ref(), view).has_value());
  event.subject = "bob";
  event.content_type = "application/octet-stream";
  event.data = "\x01\x02";
  ASSERT_TRUE(apply_declared_projection(projection, event.ref(), view).has_value());
  EXPECT_EQ(view.values.size(), 1u);
  // A null result (data null) erases the key.
  event.subject = "alice";
  event.content_type = "application/json";
  event.data = "null";
  ASSERT_TRUE(apply_declared_projection(projection, event.ref(), view).has_value());
  EXPECT_TRUE(view.values.empty());
  // A value the projection did not write is reported, never overwritten.
  view.values["alice"] = "not json";
  event.data = R"({"a":1})";
  auto status = apply_declared_projection(projection, event.ref(), view);
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, ErrorCode::kDataLoss);
}

TEST(DeclaredProjection, CountByPointerAndLatestByStream) {
  DeclaredProjection count = declared("/data/userId", "count");
  MapView view;
  TestEvent event;
  for (const char* data : {R"({"userId":"u1"})", R"({"userId":"u1"})", R"({"userId":7})",
                           R"({"other":1})", R"({"userId":{"nested":1}})", R"([1])"}) {
    event.data = data;
    ASSERT_TRUE(apply_declared_projection(count, event.ref(), view).has_value()) << data;
  }
  EXPECT_EQ(view.values, (std::map<std::string, std::string>{{"u1", "2"}, {"7", "1"}}));
  // Pointers reach every CloudEvents attribute, and array elements.
  DeclaredProjection by_type = declared("/type", "count");
  DeclaredProjection by_item = declared("/data/items/1", "count");
  MapView types, items;
  event.data = R"({"items":["a","b"]})";
  ASSERT_TRUE(apply_declared_projection(by_type, event.ref(), types).has_value());
  ASSERT_TRUE(apply_declared_projection(by_item, event.ref(), items).has_value());
  EXPECT_EQ(types.values.at("Changed"), "1");
  EXPECT_EQ(items.values.at("b"), "1");
  DeclaredProjection latest = declared("stream", "latest");
  MapView latest_view;
  event.position = 42;
  ASSERT_TRUE(apply_declared_projection(latest, event.ref(), latest_view).has_value());
  auto json = nlohmann::json::parse(latest_view.values.at("user-1"));
  EXPECT_EQ(json["position"], 42);
  EXPECT_EQ(json["type"], "Changed");
  EXPECT_EQ(json["data"]["items"][1], "b");
}

// ServeOptions::finish on a config file with these contents.
Status finish_config(const std::string& text, ServerConfig& config) {
  std::string path = (std::filesystem::temp_directory_path() /
                      ("vellum_api_test_" + std::to_string(::getpid()) + ".toml"))
                         .string();
  std::ofstream(path) << text;
  CLI::App app;
  ServeOptions options(app, config);
  std::vector<std::string> args = {"--config", path};
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  app.parse(args);
  Status status = options.finish(false);
  std::filesystem::remove(path);
  return status;
}

TEST(Config, DeclaredProjections) {
  ServerConfig config;
  Status status = finish_config(R"(
[[projections]]
name = "users"
category = "user"
types = ["UserRegistered", "EmailChanged"]
key = "subject"
reduce = "merge"

[[projections]]
name = "orders-per-user"
stream = "orders"
key = "/data/userId"
reduce = "count"
)",
                                config);
  ASSERT_TRUE(status.has_value()) << status.error().message;
  ASSERT_EQ(config.projections.size(), 2u);
  EXPECT_EQ(config.projections[0].source.filter.category, "user");
  EXPECT_EQ(config.projections[0].source.filter.types.size(), 2u);
  EXPECT_EQ(config.projections[1].source.stream, "orders");
  EXPECT_EQ(config.projections[1].key_pointer, "/data/userId");
  auto refused = [](const std::string& text, std::string_view words) {
    ServerConfig bad;
    Status result = finish_config(text, bad);
    ASSERT_FALSE(result.has_value()) << words;
    EXPECT_NE(result.error().message.find(words), std::string::npos) << result.error().message;
  };
  std::string one = "[[projections]]\nname = \"a\"\nkey = \"stream\"\nreduce = \"count\"\n";
  refused(one + one, "already taken");
  refused(one + "colour = \"red\"\n", "unknown key \"colour\"");
  refused("[[projections]]\nname = \"a\"\nkey = \"userId\"\nreduce = \"count\"\n", "JSON pointer");
  refused("[[projections]]\nname = \"a\"\nkey = \"stream\"\nreduce = \"max\"\n", "reduce");
  refused("[[projections]]\nname = \"a\"\nreduce = \"count\"\n", "key is required");
  refused("[[projections]]\nname = \"a\"\nkey = \"stream\"\nreduce = \"count\"\ntypes = \"A\"\n",
          "types must be an array");
}

// ---- The /projections routes, through Api::handle ----

class ProjectionRoutes : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "vellum_api_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    StoreOptions options;
    options.durability = Durability::kNone;
    auto store = Store::open(dir_ + "/data", options);
    ASSERT_TRUE(store.has_value()) << store.error().message;
    store_ = std::move(*store);
    auto db = ToolkitDb::open(dir_ + "/data/toolkit");
    ASSERT_TRUE(db.has_value()) << db.error().message;
    db_ = std::move(*db);
    hub_ = std::make_unique<Hub>(*store_, metrics_);
    projections_ = std::make_unique<Projections>(*store_);
    DeclaredProjectionFields fields{"users", "", {}, "subject", "merge"};
    fields.filter.category = "user";
    auto users = parse_declared_projection(fields, "test");
    ASSERT_TRUE(users.has_value());
    ASSERT_TRUE(projections_->add(make_declared_projection_spec(*users, *db_)).has_value());
    ProjectionSpec audit;
    audit.name = "audit";
    audit.sink =
        make_callback_sink(db_.get(), "audit", [](const EventRef&) { return ok_status(); });
    ASSERT_TRUE(projections_->add(std::move(audit)).has_value());
    api_ = std::make_unique<Api>(*store_, *hub_, metrics_, auth_, config_, projections_.get(),
                                 db_.get());
  }
  void TearDown() override {
    if (api_) api_->finish_projection_work();
    api_.reset();
    projections_.reset();
    hub_.reset();
    db_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  uint64_t append(const std::string& stream, const std::string& subject, const std::string& data) {
    EventData event;
    event.type = "Changed";
    event.subject = subject;
    event.data = data;
    auto result = store_->append(stream, ExpectedRevision::any(), std::span(&event, 1));
    EXPECT_TRUE(result.has_value()) << result.error().message;
    return result.has_value() ? result->last_position : 0;
  }

  // Sends one request and runs the io_context until it is answered.
  HttpResponse call(http::verb method, const std::string& target, const std::string& token = "a") {
    HttpRequest request{method, target, 11};
    if (!token.empty()) request.set(http::field::authorization, "Bearer " + token);
    std::promise<HttpResponse> promise;
    auto answer = promise.get_future();
    api_->handle(std::move(request), io_.get_executor(),
                 [&promise](HttpResponse response) { promise.set_value(std::move(response)); });
    while (answer.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(5));
    }
    return answer.get();
  }
  nlohmann::json call_json(http::verb method, const std::string& target, unsigned status = 200) {
    HttpResponse response = call(method, target);
    EXPECT_EQ(response.result_int(), status) << target << ": " << response.body();
    return nlohmann::json::parse(response.body(), nullptr, false);
  }
  void wait_caught_up(const std::string& name, uint64_t position) {
    auto status = projections_->wait_for(name, position + 1, std::chrono::seconds(10));
    ASSERT_TRUE(status.has_value()) << status.error().message;
    ASSERT_GT(status->position, position) << status->error;
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ToolkitDb> db_;
  Metrics metrics_;
  std::unique_ptr<Hub> hub_;
  std::unique_ptr<Projections> projections_;
  Authenticator auth_{{key("a", Role::kAdmin, {"*"}), key("r", Role::kReader, {"*"}),
                       key("w", Role::kWriter, {"user-"})}};
  ServerConfig config_;
  std::unique_ptr<Api> api_;
  boost::asio::io_context io_;
};

TEST_F(ProjectionRoutes, ListStatusAndState) {
  append("user-1", "alice", R"({"name":"Alice"})");
  append("order-1", "alice", R"({"ignored":true})");
  uint64_t last = append("user-1", "alice", R"({"email":"a@x"})");
  append("user-2", "bob", R"({"name":"Bob"})");
  last = append("user-3", "carol", R"({"name":"Carol"})");
  wait_caught_up("users", last);
  auto list = call_json(http::verb::get, "/projections");
  ASSERT_EQ(list["projections"].size(), 2u);
  EXPECT_EQ(list["projections"][0]["name"], "audit");
  EXPECT_EQ(list["projections"][1]["name"], "users");
  auto users = call_json(http::verb::get, "/projections/users");
  EXPECT_EQ(users["kind"], "kv");
  EXPECT_EQ(users["state"], "running");
  EXPECT_EQ(users["position"], last + 1);
  EXPECT_TRUE(users["error"].is_null());
  EXPECT_TRUE(users["failedPosition"].is_null());
  for (const char* field : {"eventsProcessed", "lagEvents", "lagMs"}) {
    EXPECT_TRUE(users[field].is_number()) << field;
  }
  EXPECT_EQ(call_json(http::verb::get, "/projections/users/state/alice"),
            nlohmann::json::parse(R"({"name":"Alice","email":"a@x"})"));
  EXPECT_EQ(call(http::verb::get, "/projections/users/state/alice")[http::field::content_type],
            "application/json");
  // Paging: two keys, then the rest; prefix narrows.
  auto page = call_json(http::verb::get, "/projections/users/state?limit=2");
  ASSERT_EQ(page["items"].size(), 2u);
  EXPECT_EQ(page["items"][0]["key"], "alice");
  EXPECT_EQ(page["items"][1]["value"]["name"], "Bob");
  EXPECT_EQ(page["next"], "bob");
  page = call_json(http::verb::get, "/projections/users/state?limit=2&after=bob");
  ASSERT_EQ(page["items"].size(), 1u);
  EXPECT_EQ(page["items"][0]["key"], "carol");
  EXPECT_TRUE(page["next"].is_null());
  page = call_json(http::verb::get, "/projections/users/state?prefix=b");
  ASSERT_EQ(page["items"].size(), 1u);
  EXPECT_EQ(page["items"][0]["key"], "bob");
  // Errors.
  EXPECT_EQ(call_json(http::verb::get, "/projections/nope", 404)["error"], "projection_not_found");
  EXPECT_EQ(call_json(http::verb::get, "/projections/nope/state/x", 404)["error"],
            "projection_not_found");
  EXPECT_EQ(call_json(http::verb::get, "/projections/users/state/dave", 404)["error"],
            "key_not_found");
  EXPECT_EQ(call_json(http::verb::get, "/projections/audit/state/x", 400)["error"],
            "invalid_argument");
  EXPECT_EQ(call_json(http::verb::get, "/projections/users/state?limit=0", 400)["error"],
            "invalid_argument");
  EXPECT_EQ(call_json(http::verb::get, "/projections/users/bogus", 404)["error"], "not_found");
  EXPECT_EQ(call_json(http::verb::get, "/projections/users/stop", 405)["error"],
            "method_not_allowed");
  EXPECT_EQ(call_json(http::verb::delete_, "/projections/users", 405)["error"],
            "method_not_allowed");
}

TEST_F(ProjectionRoutes, ControlNeedsAdminAndRebuildGivesTheSameState) {
  append("user-1", "alice", R"({"name":"Alice"})");
  uint64_t last = append("user-1", "alice", R"({"email":"a@x"})");
  wait_caught_up("users", last);
  std::string before = call(http::verb::get, "/projections/users/state/alice").body();
  EXPECT_EQ(call(http::verb::post, "/projections/users/stop", "r").result_int(), 403u);
  EXPECT_EQ(call(http::verb::post, "/projections/users/stop", "w").result_int(), 403u);
  EXPECT_EQ(call(http::verb::get, "/projections", "w").result_int(), 403u);
  EXPECT_EQ(call(http::verb::get, "/projections", "").result_int(), 401u);
  EXPECT_EQ(call(http::verb::get, "/projections/users/state/alice", "r").result_int(), 200u);
  EXPECT_EQ(call_json(http::verb::post, "/projections/users/stop")["state"], "stopped");
  auto reset = call_json(http::verb::post, "/projections/users/reset");
  EXPECT_EQ(reset["state"], "stopped");
  EXPECT_EQ(reset["position"], 0);
  EXPECT_EQ(call(http::verb::get, "/projections/users/state/alice").result_int(), 404u);
  // A stopped projection will not reach the position: 409 at once, no wait.
  EXPECT_EQ(
      call_json(http::verb::get, "/projections/users/state/alice?waitFor=" + std::to_string(last),
                409)["error"],
      "failed_precondition");
  EXPECT_EQ(call_json(http::verb::post, "/projections/users/start")["state"], "running");
  // Read-your-writes without blocking a thread: waitFor polls the checkpoint.
  HttpResponse waited =
      call(http::verb::get, "/projections/users/state/alice?waitFor=" + std::to_string(last));
  EXPECT_EQ(waited.result_int(), 200u);
  EXPECT_EQ(waited.body(), before);
  EXPECT_EQ(call_json(http::verb::post, "/projections/users/rebuild")["state"], "running");
  wait_caught_up("users", last);
  EXPECT_EQ(call(http::verb::get, "/projections/users/state/alice").body(), before);
  EXPECT_EQ(call_json(http::verb::post, "/projections/nope/start", 404)["error"],
            "projection_not_found");
  // Waiting for a position that never comes ends with 504 after waitMs.
  EXPECT_EQ(call_json(http::verb::get, "/projections/users/state/alice?waitFor=1000&waitMs=50",
                      504)["error"],
            "timeout");
  EXPECT_EQ(call_json(http::verb::get, "/projections/users/state/alice?waitMs=50", 400)["error"],
            "invalid_argument");
}

TEST_F(ProjectionRoutes, MetricsShowEveryProjection) {
  uint64_t last = append("user-1", "alice", R"({"name":"Alice"})");
  wait_caught_up("users", last);
  ASSERT_TRUE(projections_->stop("audit").has_value());
  HttpResponse response = call(http::verb::get, "/metrics");
  ASSERT_EQ(response.result_int(), 200u);
  const std::string& text = response.body();
  for (const char* line : {"vellum_projection_state{projection=\"users\"} 1",
                           "vellum_projection_state{projection=\"audit\"} 0",
                           "vellum_projection_position{projection=\"users\"} 1",
                           "vellum_projection_lag_events{projection=\"users\"} 0",
                           "vellum_projection_lag_seconds{projection=\"users\"} 0",
                           "# TYPE vellum_projection_events_processed_total counter",
                           "vellum_projection_events_processed_total{projection=\"users\"} 1"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

TEST_F(ProjectionRoutes, FailedProjectionShowsItsErrorAndPosition) {
  uint64_t first = append("user-1", "alice", R"({"name":"Alice"})");
  wait_caught_up("users", first);
  // A value the merge cannot read, written behind the projection's back.
  ASSERT_TRUE(projections_->stop("users").has_value());
  KvBatch batch;
  batch.put("alice", "not json");
  ASSERT_TRUE(db_->commit_kv("users", batch, first + 1).has_value());
  ASSERT_TRUE(projections_->start("users").has_value());
  uint64_t failing = append("user-1", "alice", R"({"email":"a@x"})");
  auto waited = projections_->wait_for("users", failing + 1, std::chrono::seconds(10));
  ASSERT_TRUE(waited.has_value());
  ASSERT_EQ(waited->state, ProjectionState::kFailed);
  auto status = call_json(http::verb::get, "/projections/users");
  EXPECT_EQ(status["state"], "failed");
  EXPECT_EQ(status["failedPosition"], failing);
  EXPECT_EQ(status["position"], failing);  // nothing skipped
  EXPECT_NE(status["error"].get<std::string>().find("does not hold JSON"), std::string::npos);
  EXPECT_EQ(
      call_json(http::verb::get,
                "/projections/users/state/alice?waitFor=" + std::to_string(failing), 409)["error"],
      "failed_precondition");
  EXPECT_NE(call(http::verb::get, "/metrics")
                .body()
                .find("vellum_projection_state{projection=\"users\"} 2"),
            std::string::npos);
}

TEST(ProjectionRoutesDisabled, NoEngineMeansNotFound) {
  // The Api without projections (embedded users of vellum_api, old callers).
  std::string pattern =
      (std::filesystem::temp_directory_path() / "vellum_api_test.XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  {
    StoreOptions options;
    options.durability = Durability::kNone;
    auto store = Store::open(pattern, options);
    ASSERT_TRUE(store.has_value());
    Metrics metrics;
    Hub hub(**store, metrics);
    Authenticator auth({});
    ServerConfig config;
    Api api(**store, hub, metrics, auth, config);
    std::optional<HttpResponse> answer;
    boost::asio::io_context io;
    api.handle(HttpRequest{http::verb::get, "/projections", 11}, io.get_executor(),
               [&](HttpResponse response) { answer = std::move(response); });
    ASSERT_TRUE(answer.has_value());
    EXPECT_EQ(answer->result_int(), 404u);
  }
  std::filesystem::remove_all(pattern);
}

}  // namespace
}  // namespace vellum::server
