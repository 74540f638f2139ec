// SPDX-License-Identifier: Apache-2.0
// The real-time layer of rooms (docs/api/rooms.md, "Protocol"): participants
// join a room, submit batches of actions, and receive every committed event in
// commit order, with presence, Lamport clocks and merge outcomes. Independent
// of sockets: the server adapts WebSocket sessions and HTTP requests to it, and
// tests drive it directly.
//
// A room is the stream "room-<app>.<room>"; its sequence numbers are the
// stream's revisions + 1 (the first event is seq 1; seq 0 = nothing seen).
// An app's schema (merge policies and actions, rooms/schema.h) is the newest
// event of the stream "roomschema-<app>".
//
// Threads: every room runs on its own strand of the service's io_context, so
// a room's state has one owner and its events go out in commit order. At most
// one append per room is in flight; submits that arrive meanwhile are queued
// and go out together in the next append (group commit at room level).
// Everything public may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "vellum/result.h"
#include "vellum/store.h"
#include "vellum/toolkit_db.h"

namespace vellum {
class Clock;
}

namespace vellum::rooms {

struct RoomsConfig {
  uint32_t max_participants = 100;  // connected to one room at once
  uint32_t max_events_per_submit = 100;
  uint32_t max_payload_bytes = 64 * 1024;  // of one event's payload, as JSON text
  // Token bucket per participant: submits per second and burst.
  double submits_per_second = 50;
  uint32_t submit_burst = 100;
  // A participant whose connection died without a close is marked left after this.
  std::chrono::milliseconds presence_timeout{15'000};
  uint32_t max_presence_bytes = 4 * 1024;  // ephemeral state of one participant
  // Snapshot the room state every N events (0 = never) and when idle this long.
  uint32_t snapshot_every_events = 100;
  std::chrono::milliseconds snapshot_idle{5'000};
  // A joining client behind by more than this gets a snapshot instead of events.
  uint32_t catch_up_events_max = 1'000;
  // Frames queued for one participant before it is disconnected (4008: too slow).
  uint32_t max_queued_frames = 10'000;
  uint32_t threads = 1;  // of the service's io_context
  // Apps whose events must carry a signature ("sig", room_token.h): app -> key.
  std::map<std::string, std::string> signing_keys;
};

// A participant's connection, implemented by the server's WebSocket session.
class RoomPeer {
 public:
  virtual ~RoomPeer() = default;
  // Queues one text frame. Called on a room strand: must not block.
  virtual void send(std::shared_ptr<const std::string> frame) = 0;
  // Closes the connection (WebSocket close code and reason). Must not block.
  virtual void close(uint16_t code, std::string reason) = 0;
};

// Close codes (docs/api/rooms.md).
inline constexpr uint16_t kCloseReplaced = 4001;     // the participant joined again elsewhere
inline constexpr uint16_t kCloseRoomFull = 4003;     // max_participants reached
inline constexpr uint16_t kCloseTooSlow = 4008;      // max_queued_frames exceeded
inline constexpr uint16_t kCloseBadMessage = 4400;   // unparseable frames, repeatedly
inline constexpr uint16_t kCloseRateLimited = 4429;  // far over the submit rate
inline constexpr uint16_t kCloseShutdown = 1001;

// Poke watchers of a room (watch()): at most this many per room.
inline constexpr uint32_t kWatchersPerRoomMax = 10'000;
// Most events in one submit_stamped() call.
inline constexpr size_t kStampedEventsMax = 1'000;

struct JoinRequest {
  std::string app;
  std::string room;
  std::string participant;
  std::string name;                  // display name, optional
  std::optional<uint64_t> last_seq;  // the last room seq the client has seen
  bool can_write = true;             // the token's rights
  bool watch_only = false;           // a poke watcher (watch()), not a participant
};

// One participant's connection to one room, returned by join().
class RoomSession;
class RoomState;

// An event submitted by the server on behalf of a participant (Replicache
// push, src/server/replicache_api.h), rather than by a client connection.
struct StampedEvent {
  std::string id;  // canonical UUID chosen by the caller: the idempotency key
  std::string action;
  nlohmann::json payload;
  // Stored with the event and handed back by RoomReader::visit_origins, e.g.
  // {"replicache": {...}}. A JSON object.
  nlohmann::json origin;
};

// A consistent view of one loaded room, valid only during the read_room()
// callback, which runs on the room's strand: nothing commits meanwhile.
class RoomReader {
 public:
  virtual ~RoomReader() = default;
  virtual uint64_t seq() const = 0;  // the last committed seq (0: none)
  virtual const RoomState& state() const = 0;
  // The state as of `seq` <= seq() (the newest snapshot at or before it plus
  // the events up to it). Errors: the store's.
  virtual Result<RoomState> state_at(uint64_t seq) = 0;
  // Calls visit(seq, participant, origin) for every event with seq in
  // (after, seq()] stored with an origin, in seq order. Errors: the store's.
  using OriginVisitor =
      std::function<void(uint64_t seq, const std::string& participant, const nlohmann::json&)>;
  virtual Status visit_origins(uint64_t after, const OriginVisitor& visit) = 0;
};

class RoomService {
 public:
  // `snapshots` may be null (no room snapshots). Store, db and clock must
  // outlive the service.
  RoomService(Store& store, ToolkitDb* snapshots, Clock& clock, RoomsConfig config);
  ~RoomService();
  RoomService(const RoomService&) = delete;
  RoomService& operator=(const RoomService&) = delete;

  Status start();
  // Closes every session (1001), stops the threads. Idempotent.
  void stop();

  // --- Schemas ---
  // Validates and stores `schema` as the app's new schema; loaded rooms of the
  // app rebuild their state under it and send their participants a reset.
  // Returns the schema version (1, 2, ...). Errors: kInvalidArgument (bad
  // app name or schema), the store's.
  Result<uint64_t> put_schema(std::string_view app, const nlohmann::json& schema);
  // {"version": n, "schema": {...}}. Errors: kNotFound.
  Result<nlohmann::json> get_schema(std::string_view app);

  // --- WebSocket sessions ---
  // Checks the request (names, capacity) and joins: the peer receives the
  // welcome, the catch-up (snapshot or events) and then live events, on the
  // room's strand. Errors: kInvalidArgument, kNotFound (no schema for the
  // app), kResourceExhausted (room full).
  Result<std::shared_ptr<RoomSession>> join(const JoinRequest& request,
                                            std::shared_ptr<RoomPeer> peer);
  // A text frame from the session's client.
  void on_message(const std::shared_ptr<RoomSession>& session, std::string text);
  // The connection ended: cleanly (the client left) or not (it may come back
  // within presence_timeout).
  void on_closed(const std::shared_ptr<RoomSession>& session, bool clean);
  // Watches a room without joining it (no presence, no events): `peer` gets a
  // content-free {"type":"poke","cookie":seq} now and after every commit
  // (Replicache's poke). End it with on_closed(). Errors: as join(), and
  // kResourceExhausted beyond kWatchersPerRoomMax.
  Result<std::shared_ptr<RoomSession>> watch(std::string_view app, std::string_view room,
                                             std::shared_ptr<RoomPeer> peer);

  // --- HTTP (polling clients) ---
  using JsonCallback = std::function<void(Result<nlohmann::json>)>;
  // POST /rooms/{app}/{room}/events: body {"participant", "events":[...],
  // "atomic"?}; answers once the events are committed (or rejected).
  void submit(std::string app, std::string room, nlohmann::json body, bool can_write,
              JsonCallback done);
  // GET /rooms/{app}/{room}/events?after=&limit=&waitMs=: committed events
  // after `after`, waiting up to `wait` for the first one.
  void read_events(std::string app, std::string room, uint64_t after, uint32_t limit,
                   std::chrono::milliseconds wait, JsonCallback done);
  // GET /rooms/{app}/{room}/state[?at=]: {"seq","hash","state"}; `at_seq` or
  // `at_time_unix_ns` for the state as it was then.
  void state(std::string app, std::string room, std::optional<uint64_t> at_seq,
             std::optional<int64_t> at_time_unix_ns, JsonCallback done);

  // --- Server-side submits and consistent reads (Replicache) ---
  // Commits `events` in order, as one append, for `participant`, each stamped
  // with the room clock as its lamport. A resent id is answered from the log
  // and not applied again. An event the room refuses (unknown action, a
  // payload the schema or reducer cannot take) is committed as the system
  // event "$refused" ({"action","error"}, same id and origin) so that it takes
  // a seq too. `done` runs on the room's strand: {"results": [{"id","seq",
  // "outcome"...} | {"id","seq","refused":{"code","message"}} | {"id","error"}],
  // "seq"}; an "error" result was not committed (retry). REQUIRES: at most
  // kStampedEventsMax events, ids canonical UUIDs, origins JSON objects.
  void submit_stamped(std::string app, std::string room, std::string participant,
                      std::vector<StampedEvent> events, JsonCallback done);
  // Runs `read` on the room's strand with the room loaded (or with its error).
  using ReadCallback = std::function<void(Result<RoomReader*>)>;
  void read_room(std::string app, std::string room, ReadCallback read);

  struct Stats {
    uint64_t rooms_loaded = 0;
    uint64_t sessions = 0;
    uint64_t events_committed = 0;
    uint64_t events_rejected = 0;
    uint64_t frames_sent = 0;
    uint64_t snapshots_written = 0;
    uint64_t events_refused = 0;  // committed as "$refused" (submit_stamped)
  };
  Stats stats() const;

  // "room-<app>.<room>".
  static std::string stream_name(std::string_view app, std::string_view room);
  // Names: app [a-z0-9_-]{1,64}; room [A-Za-z0-9_.-]{1,128}; participant
  // 1..256 bytes of printable ASCII. Errors: kInvalidArgument.
  static Status check_names(std::string_view app, std::string_view room);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vellum::rooms
