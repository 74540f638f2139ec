// SPDX-License-Identifier: Apache-2.0
// Runs every shared test vector (spec/rooms/vectors/*.json, format in spec/rooms/README.md)
// through the C++ reducer, so the files the TypeScript client (issue #6) tests against can
// never drift from this implementation. Each vector is also replayed in reverse order and from a
// snapshot taken half way, which must end at the same state hash.
//
// To regenerate the expected values after a deliberate rule change (then review the diff):
//   VL_UPDATE_VECTORS=1 build/<dir>/src/rooms_test --gtest_filter='RoomVectors.*'
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "rooms/reducer.h"

namespace vellum::rooms {
namespace {

using Json = nlohmann::json;

std::filesystem::path vectors_dir() {
  return std::filesystem::path(VL_SOURCE_DIR) / "spec" / "rooms" / "vectors";
}

bool updating() {
  const char* update = std::getenv("VL_UPDATE_VECTORS");
  return update != nullptr && std::string(update) == "1";
}

// What applying one event gave: {"outcome": ...} or {"error": "<error code name>"}.
Json result_json(const Result<Outcome>& outcome) {
  if (outcome.has_value()) return outcome_to_json(*outcome);
  return Json{{"error", error_code_name(outcome.error().code)}};
}

Json expected_json(const RoomState& state) {
  return Json{{"document", state.document()},
              {"canonicalDocument", state.canonical_document()},
              {"stateHash", state.state_hash()},
              {"state", state.to_json()}};
}

void run_vector(const std::filesystem::path& path) {
  SCOPED_TRACE(path.filename().string());
  std::ifstream file(path);
  ASSERT_TRUE(file.good());
  std::stringstream text;
  text << file.rdbuf();
  Json vector = Json::parse(text.str());
  ASSERT_TRUE(vector.contains("description"));
  auto parsed = RoomSchema::parse(vector["schema"]);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  auto schema = std::make_shared<const RoomSchema>(std::move(parsed).value());

  RoomState state(schema);
  std::vector<RoomEvent> committed;  // the events that applied, for the replays below
  for (Json& entry : vector["events"]) {
    auto event = room_event_from_json(entry["event"]);
    ASSERT_TRUE(event.has_value()) << event.error().message;
    Json result = result_json(state.apply(*event));
    if (!result.contains("error")) committed.push_back(*event);
    if (updating()) {
      entry["expect"] = result;
    } else {
      EXPECT_EQ(result, entry["expect"]) << "event " << entry["event"]["id"];
    }
  }
  if (updating()) {
    vector["expected"] = expected_json(state);
    std::ofstream out(path);
    out << vector.dump(2) << '\n';
    return;
  }
  const Json& expected = vector["expected"];
  EXPECT_EQ(state.document(), expected["document"]);
  EXPECT_EQ(state.canonical_document(), expected["canonicalDocument"]);
  EXPECT_EQ(state.to_json(), expected["state"]);
  EXPECT_EQ(state.state_hash(), expected["stateHash"]);

  // The state is a function of the event set: the reverse order, and a snapshot half way.
  RoomState reversed(schema);
  for (auto event = committed.rbegin(); event != committed.rend(); ++event) {
    ASSERT_TRUE(reversed.apply(*event).has_value());
  }
  EXPECT_EQ(reversed.state_hash(), expected["stateHash"]);
  RoomState first_half(schema);
  size_t half = committed.size() / 2;
  for (size_t i = 0; i < half; i++) ASSERT_TRUE(first_half.apply(committed[i]).has_value());
  auto restored = RoomState::from_json(schema, Json::parse(first_half.to_json().dump()));
  ASSERT_TRUE(restored.has_value()) << restored.error().message;
  for (size_t i = half; i < committed.size(); i++) {
    ASSERT_TRUE(restored->apply(committed[i]).has_value());
  }
  EXPECT_EQ(restored->state_hash(), expected["stateHash"]);
}

TEST(RoomVectors, EveryVectorMatchesTheReducer) {
  std::vector<std::filesystem::path> paths;
  for (const auto& entry : std::filesystem::directory_iterator(vectors_dir())) {
    if (entry.path().extension() == ".json") paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  // One per policy, the trip planner (seed 000), the fitness challenge, a live session (seed
  // 002) and per-event errors.
  EXPECT_GE(paths.size(), 9u);
  for (const auto& path : paths) run_vector(path);
}

}  // namespace
}  // namespace vellum::rooms
