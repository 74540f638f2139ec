// SPDX-License-Identifier: Apache-2.0
// RoomService against a real Store and ToolkitDb, with in-process peers that
// record the frames they are sent (the WebSocket layer is tested over real
// sockets in tests/integration/rooms_test.py).
#include "rooms/room_service.h"

#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include <fmt/core.h>
#include <gtest/gtest.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/prng.h"
#include "base/sha256.h"
#include "io/mem_file_system.h"
#include "rooms/reducer.h"
#include "rooms/schema.h"

namespace vellum::rooms {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

const Json kSchema = Json::parse(R"({
  "policies": {"/title": "lww", "/members": "set", "/activities": "list",
               "/best": "max", "/steps": "counter"},
  "actions": {
    "rename": [{"op": "set", "path": "/title", "value": "$payload.title"}],
    "join_trip": [{"op": "add", "path": "/members", "value": "$participant"}],
    "add_activity": [{"op": "insert", "path": "/activities",
                      "value": {"id": "$payload.id", "name": "$payload.name"}}],
    "remove_activity": [{"op": "delete", "path": "/activities", "value": "$payload.id"}],
    "score": [{"op": "max", "path": "/best", "value": "$payload.points"}],
    "step": [{"op": "increment", "path": "/steps", "value": "$payload.n"}]
  }
})");

// A connection that keeps what it was sent.
class TestPeer : public RoomPeer {
 public:
  void send(std::shared_ptr<const std::string> frame) override {
    std::lock_guard lock(mutex_);
    frames_.push_back(Json::parse(*frame));
    changed_.notify_all();
  }
  void close(uint16_t code, std::string reason) override {
    std::lock_guard lock(mutex_);
    close_code_ = code;
    close_reason_ = std::move(reason);
    changed_.notify_all();
  }
  // Waits until a frame satisfies `match`; returns it (null on timeout).
  Json wait_for(const std::function<bool(const Json&)>& match,
                std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    Json found;
    changed_.wait_for(lock, timeout, [&] {
      for (const Json& frame : frames_) {
        if (match(frame)) {
          found = frame;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  Json wait_type(std::string_view type) {
    return wait_for([&](const Json& f) { return f["type"] == type; });
  }
  std::optional<uint16_t> wait_close(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return close_code_.has_value(); });
    return close_code_;
  }
  std::vector<Json> frames() {
    std::lock_guard lock(mutex_);
    return frames_;
  }
  // Every event this peer received (catch-up and live), in order.
  std::vector<Json> events() {
    std::vector<Json> events;
    for (const Json& frame : frames()) {
      if (frame["type"] == "events") {
        for (const Json& event : frame["events"]) events.push_back(event);
      }
    }
    return events;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Json> frames_;
  std::optional<uint16_t> close_code_;
  std::string close_reason_;
};

std::string uuid(uint64_t n) { return fmt::format("0194f3a0-0000-7000-8000-{:012x}", n); }

Json event(uint64_t n, std::string action, Json payload, uint64_t lamport = 0) {
  return Json{{"id", uuid(n)}, {"action", action}, {"payload", payload}, {"lamport", lamport}};
}

class RoomServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions options;
    options.file_system = &fs_;
    options.clock = &clock_;
    auto store = Store::open("/db", options);
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    dir_ = std::filesystem::temp_directory_path() /
           ("vellum-rooms-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    auto db = ToolkitDb::open(dir_.string());
    ASSERT_TRUE(db) << db.error().message;
    db_ = std::move(*db);
    config_.presence_timeout = 200ms;
    config_.snapshot_idle = 0ms;
  }
  void TearDown() override {
    service_.reset();
    db_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void start(bool with_schema = true) {
    service_ = std::make_unique<RoomService>(*store_, db_.get(), clock_, config_);
    ASSERT_TRUE(service_->start());
    if (with_schema) {
      ASSERT_TRUE(service_->put_schema("trips", kSchema));
    }
  }
  std::pair<std::shared_ptr<TestPeer>, std::shared_ptr<RoomSession>> join(
      const std::string& participant, std::optional<uint64_t> last_seq = std::nullopt,
      const std::string& room = "r1") {
    auto peer = std::make_shared<TestPeer>();
    auto session = service_->join(
        JoinRequest{"trips", room, participant, participant + "-name", last_seq, true}, peer);
    EXPECT_TRUE(session) << session.error().message;
    EXPECT_FALSE(peer->wait_type("live").is_null());
    return {peer, session ? *session : nullptr};
  }
  Json submit(const std::shared_ptr<TestPeer>& peer, const std::shared_ptr<RoomSession>& session,
              Json events, Json ref, bool atomic = false) {
    service_->on_message(
        session,
        Json{{"op", "submit"}, {"events", events}, {"ref", ref}, {"atomic", atomic}}.dump());
    return peer->wait_for([&](const Json& f) { return f["type"] == "ack" && f["ref"] == ref; });
  }
  Result<Json> call(const std::function<void(RoomService::JsonCallback)>& start_call) {
    std::promise<Result<Json>> promise;
    start_call([&](Result<Json> result) { promise.set_value(std::move(result)); });
    return promise.get_future().get();
  }
  Json room_state() {
    auto state = call([&](auto done) {
      service_->state("trips", "r1", std::nullopt, std::nullopt, std::move(done));
    });
    EXPECT_TRUE(state) << state.error().message;
    return state ? *state : Json();
  }

  io::MemFileSystem fs_;
  SimClock clock_;
  std::unique_ptr<Store> store_;
  std::filesystem::path dir_;
  std::unique_ptr<ToolkitDb> db_;
  RoomsConfig config_;
  std::unique_ptr<RoomService> service_;
};

TEST_F(RoomServiceTest, SchemasAreValidatedStoredAndVersioned) {
  start(/*with_schema=*/false);
  auto missing = service_->join(JoinRequest{"trips", "r1", "ann", "", std::nullopt, true},
                                std::make_shared<TestPeer>());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  auto bad = service_->put_schema("trips", Json{{"policies", {{"/x", "nope"}}}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  auto bad_app = service_->put_schema("Trips!", kSchema);
  ASSERT_FALSE(bad_app);
  auto v1 = service_->put_schema("trips", kSchema);
  ASSERT_TRUE(v1) << v1.error().message;
  EXPECT_EQ(*v1, 1u);
  auto v2 = service_->put_schema("trips", kSchema);
  ASSERT_TRUE(v2);
  EXPECT_EQ(*v2, 2u);
  auto got = service_->get_schema("trips");
  ASSERT_TRUE(got);
  EXPECT_EQ((*got)["version"], 2);
  EXPECT_EQ((*got)["schema"], kSchema);
}

// A snapshot frame's "reducerState" is the reducer's full state: its hash is
// the frame's "hash" and it restores a reducer with the frame's document.
void expect_reducer_state_matches(const Json& frame, const RoomSchema& schema) {
  ASSERT_TRUE(frame.contains("reducerState")) << frame.dump();
  Result<std::string> canonical = canonical_json(frame["reducerState"]);
  ASSERT_TRUE(canonical) << canonical.error().message;
  Sha256 sha;
  sha.update(*canonical);
  EXPECT_EQ(digest_hex(sha.finish()), frame["hash"]);
  Result<RoomState> restored =
      RoomState::from_json(std::make_shared<const RoomSchema>(schema), frame["reducerState"]);
  ASSERT_TRUE(restored) << restored.error().message;
  EXPECT_EQ(restored->state_hash(), frame["hash"]);
  EXPECT_EQ(restored->document(), frame["state"]);
}

RoomSchema test_schema(const Json& document) {
  Result<RoomSchema> schema = RoomSchema::parse(document);
  VL_ASSERT(schema.has_value());
  return std::move(*schema);
}

TEST_F(RoomServiceTest, JoinSendsWelcomeSnapshotLiveAndRecordsTheJoin) {
  start();
  auto [ann, ann_session] = join("ann");
  Json welcome = ann->wait_type("welcome");
  EXPECT_EQ(welcome["participant"], "ann");
  EXPECT_EQ(welcome["seq"], 0);
  Json snapshot = ann->wait_type("snapshot");
  EXPECT_EQ(snapshot["state"], Json::object());
  expect_reducer_state_matches(snapshot, test_schema(kSchema));
  // The join is a recorded event, broadcast like any other.
  Json joined = ann->wait_for(
      [](const Json& f) { return f["type"] == "events" && f["events"][0]["action"] == "$joined"; });
  ASSERT_FALSE(joined.is_null());
  EXPECT_EQ(joined["events"][0]["seq"], 1);
  EXPECT_EQ(joined["events"][0]["system"], true);
  auto [bob, bob_session] = join("bob");
  Json presence = ann->wait_for([](const Json& f) {
    return f["type"] == "presence" && f["participant"] == "bob" && f["event"] == "joined";
  });
  EXPECT_EQ(presence["name"], "bob-name");
}

TEST_F(RoomServiceTest, SubmitsAreCommittedThenBroadcastToEveryoneInOrder) {
  start();
  auto [ann, ann_session] = join("ann");
  auto [bob, bob_session] = join("bob");
  Json ack = submit(ann, ann_session,
                    Json::array({event(1, "rename", {{"title", "Tokyo"}}, 1),
                                 event(2, "add_activity", {{"id", "a1"}, {"name", "Sushi"}}, 2)}),
                    "s1");
  ASSERT_FALSE(ack.is_null());
  ASSERT_EQ(ack["results"].size(), 2u);
  EXPECT_EQ(ack["results"][0]["id"], uuid(1));
  EXPECT_EQ(ack["results"][0]["outcome"], "applied");
  const uint64_t seq = ack["results"][0]["seq"];
  EXPECT_EQ(ack["results"][1]["seq"], seq + 1);
  // Each event moves the clock to max(room, event) + 1; the two joins made it 2.
  EXPECT_EQ(ack["clock"], 4);
  // Bob sees the same events, with ids, outcomes and the server's stamps.
  auto has = [](const Json& frame, const std::string& id) {
    if (frame["type"] != "events") return false;
    for (const Json& e : frame["events"]) {
      if (e["id"] == id) return true;
    }
    return false;
  };
  ASSERT_FALSE(bob->wait_for([&](const Json& f) { return has(f, uuid(2)); }).is_null());
  std::vector<Json> seen;
  for (const Json& e : bob->events()) {
    if (!e.value("system", false)) seen.push_back(e);
  }
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0]["id"], uuid(1));
  EXPECT_EQ(seen[1]["seq"], seq + 1);
  EXPECT_EQ(seen[1]["participant"], "ann");
  EXPECT_TRUE(seen[0]["serverTime"].is_string());
  Json state = room_state();
  EXPECT_EQ(state["state"]["title"], "Tokyo");
  EXPECT_EQ(state["state"]["activities"][0]["name"], "Sushi");
}

TEST_F(RoomServiceTest, AResentIdIsAppliedOnceWithItsOriginalOutcome) {
  start();
  auto [ann, session] = join("ann");
  Json first = submit(ann, session, Json::array({event(7, "step", {{"n", 5}})}), "a");
  Json again = submit(ann, session, Json::array({event(7, "step", {{"n", 5}})}), "b");
  EXPECT_EQ(again["results"][0], first["results"][0]);
  EXPECT_EQ(room_state()["state"]["steps"], 5);
  // Also across a restart of the service (the id is found in the log).
  service_.reset();
  start(/*with_schema=*/false);
  auto [ann2, session2] = join("ann", 0);
  Json after_restart = submit(ann2, session2, Json::array({event(7, "step", {{"n", 5}})}), "c");
  EXPECT_EQ(after_restart["results"][0]["seq"], first["results"][0]["seq"]);
  EXPECT_EQ(room_state()["state"]["steps"], 5);
}

TEST_F(RoomServiceTest, BadEventsFailAloneUnlessTheBatchIsAtomic) {
  start();
  auto [ann, session] = join("ann");
  Json mixed = submit(ann, session,
                      Json::array({event(1, "step", {{"n", 1}}), event(2, "fly", Json::object()),
                                   Json{{"id", "not-a-uuid"}, {"action", "step"}},
                                   event(3, "score", {{"points", "lots"}})}),
                      "m");
  EXPECT_EQ(mixed["results"][0]["outcome"], "applied");
  EXPECT_EQ(mixed["results"][1]["error"]["code"], "unknown_action");
  EXPECT_EQ(mixed["results"][2]["error"]["code"], "invalid_argument");
  EXPECT_EQ(mixed["results"][3]["error"]["code"], "rejected");
  Json atomic = submit(ann, session,
                       Json::array({event(4, "step", {{"n", 1}}), event(5, "fly", Json::object())}),
                       "a", /*atomic=*/true);
  EXPECT_EQ(atomic["results"][0]["error"]["code"], "batch_rejected");
  EXPECT_EQ(room_state()["state"]["steps"], 1);
}

TEST_F(RoomServiceTest, ConcurrentEditorsConvergeOnTheServersState) {
  start();
  constexpr int kEditors = 4;
  constexpr int kSubmits = 30;
  std::vector<std::pair<std::shared_ptr<TestPeer>, std::shared_ptr<RoomSession>>> editors;
  for (int i = 0; i < kEditors; ++i) editors.push_back(join("p" + std::to_string(i)));
  std::vector<std::thread> threads;
  for (int i = 0; i < kEditors; ++i) {
    threads.emplace_back([&, i] {
      Prng prng(1000 + i);
      for (int s = 0; s < kSubmits; ++s) {
        const uint64_t n = uint64_t(i) * 1000 + s + 1;
        Json e;
        switch (prng.uniform(4)) {
          case 0:
            e = event(n, "rename", {{"title", "t" + std::to_string(n)}}, prng.uniform(5));
            break;
          case 1:
            e = event(n, "step", {{"n", 1}}, prng.uniform(5));
            break;
          case 2:
            e = event(n, "score", {{"points", prng.uniform(100)}}, prng.uniform(5));
            break;
          default:
            e = event(n, "add_activity", {{"id", "a" + std::to_string(n % 7)}, {"name", "x"}},
                      prng.uniform(5));
        }
        service_->on_message(editors[i].second,
                             Json{{"op", "submit"}, {"events", {e}}, {"ref", s}}.dump());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (auto& [peer, session] : editors) {
    ASSERT_FALSE(
        peer->wait_for([](const Json& f) { return f["type"] == "ack" && f["ref"] == kSubmits - 1; })
            .is_null());
  }
  const Json server = room_state();
  const uint64_t final_seq = server["seq"];
  // Every editor saw every event exactly once, in seq order, and folding them
  // with the reducer gives the server's state hash.
  auto schema = std::make_shared<const RoomSchema>(*RoomSchema::parse(kSchema));
  for (auto& [peer, session] : editors) {
    ASSERT_FALSE(peer->wait_for([&](const Json& f) {
                       return f["type"] == "events" && f["seq"] == final_seq;
                     })
                     .is_null());
    RoomState replica(schema);
    uint64_t expected_seq = 0;
    bool first = true;
    for (const Json& e : peer->events()) {
      if (first) expected_seq = e["seq"].get<uint64_t>() - 1;  // joined after earlier joins
      first = false;
      EXPECT_EQ(e["seq"], ++expected_seq);
      if (e.value("system", false)) continue;
      auto parsed = room_event_from_json(e);
      ASSERT_TRUE(parsed) << parsed.error().message;
      ASSERT_TRUE(replica.apply(*parsed));
    }
    EXPECT_EQ(expected_seq, final_seq);
  }
  // The last editor joined last, so it saw every action: its replica equals the server's.
  RoomState last(schema);
  for (const Json& e : editors.back().first->events()) {
    if (!e.value("system", false)) {
      ASSERT_TRUE(last.apply(*room_event_from_json(e)));
    }
  }
  EXPECT_EQ(last.state_hash(), server["hash"]);
}

TEST_F(RoomServiceTest, AReconnectingParticipantGetsExactlyWhatItMissed) {
  config_.catch_up_events_max = 2'000;
  config_.presence_timeout = 2s;  // longer than the 1,000 submits take, even under TSan
  start();
  auto [ann, ann_session] = join("ann");
  auto [bob, bob_session] = join("bob");
  Json last_seen = bob->wait_for([](const Json& f) {
    return f["type"] == "events" && f["events"][0]["action"] == "$joined" &&
           f["events"][0]["participant"] == "bob";
  });
  const uint64_t bob_seq = last_seen["seq"];
  service_->on_closed(bob_session, /*clean=*/false);  // the connection died
  for (int batch = 0; batch < 10; ++batch) {
    Json events = Json::array();
    for (int i = 0; i < 100; ++i) events.push_back(event(batch * 100 + i + 1, "step", {{"n", 1}}));
    ASSERT_FALSE(submit(ann, ann_session, events, batch).is_null());
  }
  auto [bob2, bob2_session] = join("bob", bob_seq);
  // Exactly the 1,000 missed events, then live; no snapshot, no duplicate.
  std::vector<Json> missed = bob2->events();
  ASSERT_FALSE(missed.empty());
  EXPECT_EQ(missed.front()["seq"], bob_seq + 1) << missed.front().dump();
  ASSERT_EQ(missed.size(), 1000u) << missed.front().dump() << missed.back().dump();
  for (size_t i = 0; i < missed.size(); ++i) EXPECT_EQ(missed[i]["seq"], bob_seq + 1 + i);
  EXPECT_TRUE(bob2->wait_for([](const Json& f) { return f["type"] == "snapshot"; }, 0ms).is_null());
  // Bob was back within the timeout: no leave, and he is not a duplicate.
  Json again = ann->wait_for([](const Json& f) {
    return f["type"] == "presence" && f["participant"] == "bob" && f["event"] == "updated";
  });
  EXPECT_FALSE(again.is_null());
  std::this_thread::sleep_for(config_.presence_timeout + 100ms);
  EXPECT_TRUE(
      ann->wait_for([](const Json& f) { return f["type"] == "presence" && f["event"] == "left"; },
                    0ms)
          .is_null());
}

TEST_F(RoomServiceTest, ADeadConnectionIsMarkedLeftAfterTheTimeout) {
  start();
  auto [ann, ann_session] = join("ann");
  auto [bob, bob_session] = join("bob");
  service_->on_closed(bob_session, /*clean=*/false);
  EXPECT_FALSE(ann->wait_for([](const Json& f) {
                    return f["type"] == "presence" && f["event"] == "disconnected";
                  })
                   .is_null());
  Json left = ann->wait_for([](const Json& f) {
    return f["type"] == "presence" && f["event"] == "left" && f["participant"] == "bob";
  });
  ASSERT_FALSE(left.is_null());
  Json recorded = ann->wait_for(
      [](const Json& f) { return f["type"] == "events" && f["events"][0]["action"] == "$left"; });
  EXPECT_FALSE(recorded.is_null());
}

TEST_F(RoomServiceTest, AReconnectReplacesTheOldConnection) {
  start();
  auto [first, first_session] = join("ann");
  auto [second, second_session] = join("ann");
  EXPECT_EQ(first->wait_close(), kCloseReplaced);
  Json welcome = second->wait_type("welcome");
  int anns = 0;
  for (const Json& p : welcome["participants"]) anns += p["participant"] == "ann" ? 1 : 0;
  EXPECT_EQ(anns, 1);
}

TEST_F(RoomServiceTest, LimitsRoomSizeAndSubmitRate) {
  config_.max_participants = 2;
  config_.submit_burst = 3;
  config_.submits_per_second = 0.001;
  start();
  auto [ann, ann_session] = join("ann");
  auto [bob, bob_session] = join("bob");
  auto carl = std::make_shared<TestPeer>();
  ASSERT_TRUE(service_->join(JoinRequest{"trips", "r1", "carl", "", std::nullopt, true}, carl));
  EXPECT_EQ(carl->wait_close(), kCloseRoomFull);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(
        submit(ann, ann_session, Json::array({event(i + 1, "step", {{"n", 1}})}), i).is_null());
  }
  service_->on_message(ann_session,
                       Json{{"op", "submit"}, {"events", {event(9, "step", {{"n", 1}})}}}.dump());
  EXPECT_FALSE(ann->wait_for([](const Json& f) {
                    return f["type"] == "error" && f["error"]["code"] == "rate_limited";
                  })
                   .is_null());
}

TEST_F(RoomServiceTest, PollingClientsSubmitAndLongPoll) {
  start();
  auto waiting = std::async(std::launch::async, [&] {
    return call(
        [&](auto done) { service_->read_events("trips", "r1", 0, 100, 5s, std::move(done)); });
  });
  std::this_thread::sleep_for(50ms);
  auto submitted = call([&](auto done) {
    service_->submit("trips", "r1",
                     Json{{"participant", "poller"},
                          {"events", {event(1, "rename", {{"title", "By HTTP"}}, 4)}}},
                     true, std::move(done));
  });
  ASSERT_TRUE(submitted) << submitted.error().message;
  EXPECT_EQ((*submitted)["results"][0]["outcome"], "applied");
  EXPECT_EQ((*submitted)["clock"], 5);
  auto woken = waiting.get();
  ASSERT_TRUE(woken) << woken.error().message;
  ASSERT_EQ((*woken)["events"].size(), 1u);
  EXPECT_EQ((*woken)["events"][0]["payload"]["title"], "By HTTP");
  auto read_only = call([&](auto done) {
    service_->submit("trips", "r1", Json{{"participant", "p"}, {"events", Json::array()}}, false,
                     std::move(done));
  });
  ASSERT_FALSE(read_only);
}

TEST_F(RoomServiceTest, StateAtAPastSeqAndTimeAndAfterARestartFromSnapshots) {
  config_.snapshot_every_events = 10;
  start();
  auto [ann, session] = join("ann");
  std::vector<Json> hashes;  // after each submit
  std::vector<int64_t> times;
  for (int i = 1; i <= 35; ++i) {
    clock_.advance_ns(1'000'000'000);
    Json ack = submit(ann, session, Json::array({event(i, "step", {{"n", i}})}), i);
    ASSERT_FALSE(ack.is_null());
    times.push_back(clock_.now_unix_ns());
  }
  const Json now = room_state();
  EXPECT_EQ(now["state"]["steps"], 35 * 36 / 2);
  auto at_seq =
      call([&](auto done) { service_->state("trips", "r1", 11, std::nullopt, std::move(done)); });
  ASSERT_TRUE(at_seq) << at_seq.error().message;
  EXPECT_EQ((*at_seq)["state"]["steps"], 10 * 11 / 2);  // seq 1 is the join
  auto at_time = call([&](auto done) {
    service_->state("trips", "r1", std::nullopt, times[19] + 1, std::move(done));
  });
  ASSERT_TRUE(at_time);
  EXPECT_EQ((*at_time)["state"]["steps"], 20 * 21 / 2);
  // A restarted service loads from the newest snapshot and agrees.
  service_.reset();
  start(/*with_schema=*/false);
  EXPECT_EQ(room_state()["hash"], now["hash"]);
}

// While an append is in flight the room's state already holds its events
// (their outcomes are computed before the append). Joins, verifies and state
// reads wait for it: what they show is labelled with the committed seq and
// must be exactly the committed events -- a client restoring such a snapshot
// and then receiving the in-flight events would apply them twice.
TEST_F(RoomServiceTest, SnapshotsAndStateReadsShowOnlyCommittedEvents) {
  start();
  constexpr int kWriters = 4;
  constexpr int kSubmitsEach = 60;  // under the per-connection burst of 100
  std::vector<std::pair<std::shared_ptr<TestPeer>, std::shared_ptr<RoomSession>>> writers;
  for (int w = 0; w < kWriters; ++w) writers.push_back(join(fmt::format("writer-{}", w)));
  std::thread writing([&] {
    for (int i = 0; i < kSubmitsEach; ++i) {
      for (int w = 0; w < kWriters; ++w) {
        const uint64_t n = 1000 + static_cast<uint64_t>(i * kWriters + w);
        service_->on_message(writers[static_cast<size_t>(w)].second,
                             Json{{"op", "submit"},
                                  {"events", Json::array({event(n, "step", {{"n", 1}})})},
                                  {"ref", n}}
                                 .dump());
      }
    }
  });
  // The steps committed up to a seq: every event of a writer is one step;
  // $joined events occupy seqs without reaching the reducer.
  auto check_state = [&](const Json& frame) {
    const Json& reducer = frame["reducerState"];
    EXPECT_LE(reducer["seqMax"].get<uint64_t>(), frame["seq"].get<uint64_t>()) << frame.dump();
  };
  int snapshots = 0;
  for (int j = 0; j < 30; ++j) {
    auto [peer, session] = join(fmt::format("reader-{}", j));
    Json snapshot = peer->wait_type("snapshot");
    ASSERT_FALSE(snapshot.is_null());
    check_state(snapshot);
    ++snapshots;
    Json state = room_state();
    auto read = call(
        [&](auto done) { service_->read_events("trips", "r1", 0, 1000, 0ms, std::move(done)); });
    ASSERT_TRUE(read) << read.error().message;
    uint64_t steps_at_state_seq = 0;
    for (const Json& e : (*read)["events"]) {
      if (e["action"] == "step" && e["seq"].get<uint64_t>() <= state["seq"].get<uint64_t>()) {
        ++steps_at_state_seq;
      }
    }
    EXPECT_EQ(state["state"].value("steps", uint64_t{0}), steps_at_state_seq) << state.dump();
  }
  writing.join();
  EXPECT_EQ(snapshots, 30);
  for (int w = 0; w < kWriters; ++w) {
    const uint64_t last = 1000 + static_cast<uint64_t>((kSubmitsEach - 1) * kWriters + w);
    const auto& peer = writers[static_cast<size_t>(w)].first;
    EXPECT_FALSE(
        peer->wait_for([&](const Json& f) { return f["type"] == "ack" && f["ref"] == last; })
            .is_null());
  }
  EXPECT_EQ(room_state()["state"]["steps"], kWriters * kSubmitsEach);
}

// A verify from a client behind the room is not answered with a snapshot:
// the events it lacks are on their way.
TEST_F(RoomServiceTest, AVerifyFromBehindTheRoomIsUnverifiedNotReset) {
  start();
  auto [ann, session] = join("ann");
  submit(ann, session, Json::array({event(1, "step", {{"n", 3}})}), "s");
  const Json state = room_state();
  service_->on_message(
      session,
      Json{{"op", "verify"}, {"seq", state["seq"].get<uint64_t>() - 1}, {"hash", "whatever"}}
          .dump());
  Json answer = ann->wait_type("unverified");
  ASSERT_FALSE(answer.is_null());
  EXPECT_EQ(answer["seq"], state["seq"]);
  EXPECT_TRUE(ann->wait_for(
                     [](const Json& f) {
                       return f["type"] == "snapshot" && f.value("reason", "") == "verify";
                     },
                     100ms)
                  .is_null());
}

TEST_F(RoomServiceTest, AStateHashMismatchResetsTheClientFromTheLog) {
  start();
  auto [ann, session] = join("ann");
  Json ack = submit(ann, session, Json::array({event(1, "step", {{"n", 3}})}), "s");
  const Json state = room_state();
  service_->on_message(
      session, Json{{"op", "verify"}, {"seq", state["seq"]}, {"hash", state["hash"]}}.dump());
  EXPECT_FALSE(ann->wait_type("verified").is_null());
  service_->on_message(session,
                       Json{{"op", "verify"}, {"seq", state["seq"]}, {"hash", "bad"}}.dump());
  Json reset = ann->wait_for(
      [](const Json& f) { return f["type"] == "snapshot" && f.value("reason", "") == "verify"; });
  ASSERT_FALSE(reset.is_null());
  EXPECT_EQ(reset["hash"], state["hash"]);
  EXPECT_EQ(reset["state"]["steps"], 3);
  expect_reducer_state_matches(reset, test_schema(kSchema));
}

TEST_F(RoomServiceTest, ASchemaChangeRebuildsLoadedRoomsAndResetsTheirClients) {
  start();
  auto [ann, session] = join("ann");
  ASSERT_FALSE(
      submit(ann, session, Json::array({event(1, "rename", {{"title", "A"}})}), "s").is_null());
  Json changed = kSchema;
  changed["actions"]["rename"] =
      Json::parse(R"([{"op": "set", "path": "/title", "value": "$participant"}])");
  auto version = service_->put_schema("trips", changed);
  ASSERT_TRUE(version) << version.error().message;
  Json reset = ann->wait_for(
      [](const Json& f) { return f["type"] == "snapshot" && f.value("reason", "") == "schema"; });
  ASSERT_FALSE(reset.is_null());
  EXPECT_EQ(reset["schemaVersion"], 2);
  EXPECT_EQ(reset["state"]["title"], "ann");  // the old event, reduced by the new schema
  expect_reducer_state_matches(reset, test_schema(changed));
}

}  // namespace
}  // namespace vellum::rooms
