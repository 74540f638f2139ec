// SPDX-License-Identifier: Apache-2.0
// The room-state reducer: folds a room's committed events into a JSON document under the merge
// policies an app's schema declares (schema.h). It is the pure core of real-time rooms (issue
// #5): no I/O, no clock, no randomness. The server and the TypeScript client (issue #6) must
// compute byte-identical state from the same events, so the rules are written down in
// docs/api/rooms.md and pinned by the shared vectors in spec/rooms/vectors/.
//
// Determinism: the state (document and merge metadata) is a function of the *set* of events
// applied, whatever their order; only the per-event Outcome depends on the order (it describes
// the event against the state it met, and is defined for commit order).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "vellum/result.h"

#include "rooms/schema.h"

namespace vellum::rooms {

inline constexpr size_t kParticipantBytesMax = 256;
inline constexpr size_t kEventIdBytesMax = 128;
// The version written in snapshots (RoomState::to_json); from_json refuses others.
inline constexpr int kSnapshotVersion = 1;

// A committed room event, as the server broadcasts it.
struct RoomEvent {
  uint64_t seq = 0;            // the room sequence (stream revision); <= kSafeIntegerMax
  std::string id;              // the event id (a UUID string), unique in the room
  std::string action;          // a name the schema declares
  nlohmann::json payload;      // action-specific data, read by "$payload..." references
  uint64_t lamport = 0;        // the Lamport clock; <= kSafeIntegerMax
  std::string participant;     // who sent it, 1..kParticipantBytesMax bytes
  int64_t server_time_ns = 0;  // stamped by the server at commit, ns since the Unix epoch
};

// JSON form: {"seq", "id", "action", "payload", "lamport", "participant", "serverTime"}.
// serverTime is written as a decimal string (nanoseconds exceed 2^53, which JavaScript numbers
// cannot hold); an integer is accepted too. Errors: kInvalidArgument.
Result<RoomEvent> room_event_from_json(const nlohmann::json& json);
nlohmann::json room_event_to_json(const RoomEvent& event);

enum class OutcomeKind {
  kApplied,     // took effect, and no concurrent event had touched its paths
  kMerged,      // took effect combined with a concurrent event on one of its paths
  kSuperseded,  // changed nothing visible: `winner_event_id` won (docs/api/rooms.md)
};

struct Outcome {
  OutcomeKind kind = OutcomeKind::kApplied;
  std::string winner_event_id;  // kSuperseded only
  bool operator==(const Outcome&) const = default;
};

// JSON form: {"outcome": "applied" | "merged"} or {"outcome": "superseded", "by": id}.
nlohmann::json outcome_to_json(const Outcome& outcome);
Result<Outcome> outcome_from_json(const nlohmann::json& json);

// The total order on events that every merge rule uses: lamport, then server time, then
// participant, then event id (bytes), so that no two distinct events tie.
struct Stamp {
  uint64_t lamport = 0;
  int64_t server_time_ns = 0;
  std::string participant;
  std::string event_id;
  auto operator<=>(const Stamp&) const = default;
};

// The merge metadata of one concrete path (a "slot"); docs/api/rooms.md, "Snapshots".
struct LwwSlot {
  Stamp winner;                         // the greatest stamp of every set/delete
  std::optional<nlohmann::json> value;  // nullopt: the winner was a delete
};
// Set elements order as booleans (false, true), then integers, then strings by bytes.
using SetElement = std::variant<bool, int64_t, std::string>;
struct ElementClock {
  std::optional<Stamp> add;     // the greatest stamp of the adds
  std::optional<Stamp> remove;  // the greatest stamp of the removes
};
struct SetSlot {
  std::map<SetElement, ElementClock> elements;
};
struct ListItem {
  Stamp stamp;  // the least stamp of the inserts of this id
  nlohmann::json item;
};
struct ListSlot {
  std::map<std::string, ListItem> items;    // by item id; never holds a tombstoned id
  std::map<std::string, Stamp> tombstones;  // item id -> the least stamp of its deletes
};
struct MaxSlot {
  int64_t value = 0;
  Stamp winner;  // the least stamp among the events that wrote the highest value
};
// GCC's and clang's 128-bit integer (__extension__: -Wpedantic knows it is not ISO C++).
__extension__ typedef __int128 Int128;
struct CounterSlot {
  // The exact sum: increments are <= 2^53 in magnitude, so 2^74 of them fit.
  Int128 sum = 0;
};
struct Slot {
  Policy policy = Policy::kLww;
  uint64_t lamport_max = 0;  // the highest lamport of any event that addressed this slot
  std::variant<LwwSlot, SetSlot, ListSlot, MaxSlot, CounterSlot> data;
};

// The state of one room: its document and the merge metadata that makes the document a
// function of the event set. Created empty or restored from a snapshot; mutated only by
// apply(). Not thread-safe: one owner (the room's thread on the server).
class RoomState {
 public:
  // REQUIRES: schema != nullptr.
  explicit RoomState(std::shared_ptr<const RoomSchema> schema);

  // Applies one committed event. REQUIRES (not checked): each event is applied at most once;
  // the caller tracks seq (events are applied in commit order: seq > seq_max()).
  // Errors: kInvalidArgument for an unknown action, a payload that lacks a referenced field or
  // holds a value the op cannot take, or a malformed event; the state is then unchanged. These
  // errors depend only on the schema and the event, never on the state, so an event fails the
  // same way on every replica and in every order.
  Result<Outcome> apply(const RoomEvent& event);

  // The room document. Paths never written are absent.
  const nlohmann::json& document() const { return document_; }
  // canonical_json(document()).
  std::string canonical_document() const;
  // The document value of every concrete slot, by the slot's JSON Pointer
  // ("/title", "/votes/act-1"); a slot without a value (an lww delete) is
  // left out. Replicache pulls use these as keys (docs/api/replicache.md).
  std::map<std::string, nlohmann::json> slot_values() const;
  uint64_t seq_max() const { return seq_max_; }          // highest seq applied; 0 if none
  uint64_t lamport_max() const { return lamport_max_; }  // highest lamport applied; 0 if none

  // The full state, as a snapshot (format: docs/api/rooms.md, "Snapshots").
  nlohmann::json to_json() const;
  // Restores a snapshot taken under a compatible schema (every slot's path still has the same
  // policy). Errors: kInvalidArgument for a malformed snapshot or one whose document does not
  // match its metadata; kFailedPrecondition when the schema no longer fits it.
  static Result<RoomState> from_json(std::shared_ptr<const RoomSchema> schema,
                                     const nlohmann::json& snapshot);
  // SHA-256 (lowercase hex) of canonical_json(to_json()): equal on every replica that applied
  // the same events.
  std::string state_hash() const;

 private:
  struct PlannedOp;
  Result<PlannedOp> plan_op(const OpSpec& spec, const RoomEvent& event) const;
  Outcome apply_op(const PlannedOp& op, const Stamp& stamp);
  void render_slot(const Path& path, const Slot& slot);

  std::shared_ptr<const RoomSchema> schema_;
  std::map<Path, Slot> slots_;
  nlohmann::json document_ = nlohmann::json::object();
  uint64_t seq_max_ = 0;
  uint64_t lamport_max_ = 0;
};

}  // namespace vellum::rooms
