// SPDX-License-Identifier: Apache-2.0
// RoomService (room_service.h). Layout of this file: the stored form of room
// events; the Room (one per loaded room, owned by its strand); loading;
// submits and the append cycle; joins, presence and leaving; HTTP reads; the
// service's plumbing.
#include "rooms/room_service.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <fmt/core.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/uuid_v7.h"
#include "rooms/reducer.h"
#include "rooms/room_token.h"
#include "rooms/schema.h"

namespace vellum::rooms {

namespace asio = boost::asio;
using Json = nlohmann::json;

namespace {

constexpr std::string_view kSchemaStreamPrefix = "roomschema-";
constexpr std::string_view kSchemaEventType = "RoomSchemaSet";
// Stored event types: "room.<action>" for actions, and the two presence facts.
constexpr std::string_view kActionTypePrefix = "room.";
constexpr std::string_view kJoinedType = "room:joined";
constexpr std::string_view kLeftType = "room:left";
// A stamped event the room refused, recorded so that it takes a seq (submit_stamped).
constexpr std::string_view kRefusedType = "room:refused";
// The actions clients see for the presence facts; schemas cannot declare '$' names.
constexpr std::string_view kJoinedAction = "$joined";
constexpr std::string_view kLeftAction = "$left";
constexpr std::string_view kRefusedAction = "$refused";
constexpr std::string_view kSnapshotAggregate = "room";
constexpr size_t kEventsPerFrameMax = 500;
constexpr uint32_t kBadMessagesMax = 20;
constexpr uint32_t kHttpReadEventsMax = 1'000;

bool is_app_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}
bool is_room_char(char c) { return is_app_char(c) || (c >= 'A' && c <= 'Z') || c == '.'; }

Status check_participant(std::string_view participant) {
  if (participant.empty() || participant.size() > kParticipantBytesMax ||
      !std::all_of(participant.begin(), participant.end(),
                   [](char c) { return c >= 0x21 && c <= 0x7e; })) {
    return make_error(ErrorCode::kInvalidArgument,
                      "participant ids are 1-256 printable ASCII characters without spaces");
  }
  return ok_status();
}

Json error_json(std::string_view code, std::string_view message) {
  return Json{{"code", code}, {"message", message}};
}

Json error_frame(std::string_view code, std::string_view message) {
  return Json{{"type", "error"}, {"error", error_json(code, message)}};
}

std::shared_ptr<const std::string> frame_of(const Json& json) {
  return std::make_shared<const std::string>(json.dump());
}

// A committed room event as the log stores it and clients receive it.
struct Committed {
  RoomEvent event;
  Json outcome;    // {"outcome": ...}; null for presence facts
  uint64_t clock;  // the room clock after this event
  bool system = false;
  Json client_time;  // as the client sent it, or null
  Json origin;       // submit_stamped's origin, or null

  Json to_json() const {
    Json json = room_event_to_json(event);
    if (system) json["system"] = true;
    if (!outcome.is_null()) json.update(outcome);
    if (!client_time.is_null()) json["clientTime"] = client_time;
    json["clock"] = clock;
    return json;
  }

  EventData to_event_data() const {
    EventData data;
    data.id = *Uuid::parse(event.id);
    data.type = !system                          ? std::string(kActionTypePrefix) + event.action
                : event.action == kJoinedAction  ? std::string(kJoinedType)
                : event.action == kRefusedAction ? std::string(kRefusedType)
                                                 : std::string(kLeftType);
    Json body{{"action", event.action},
              {"payload", event.payload},
              {"lamport", event.lamport},
              {"participant", event.participant},
              {"serverTime", std::to_string(event.server_time_ns)},
              {"clock", clock}};
    if (!outcome.is_null()) body["outcome"] = outcome;
    if (!client_time.is_null()) body["clientTime"] = client_time;
    if (!origin.is_null()) body["origin"] = origin;
    data.data = body.dump();
    data.subject = event.participant;  // the person the event concerns
    return data;
  }

  // Errors: kDataLoss for an event of the room stream that is not a room event.
  static Result<Committed> from_stored(const EventRef& stored) {
    Json body = Json::parse(stored.data, nullptr, /*allow_exceptions=*/false);
    auto bad = [&](std::string_view what) {
      return make_error(ErrorCode::kDataLoss, fmt::format("{} revision {} is not a room event: {}",
                                                          stored.stream, stored.revision, what));
    };
    if (!body.is_object()) return bad("data is not a JSON object");
    Json event_json{{"seq", stored.revision + 1},
                    {"id", stored.id.to_string()},
                    {"action", body.value("action", Json())},
                    {"payload", body.value("payload", Json::object())},
                    {"lamport", body.value("lamport", Json())},
                    {"participant", body.value("participant", Json())},
                    {"serverTime", body.value("serverTime", Json())}};
    Result<RoomEvent> event = room_event_from_json(event_json);
    if (!event) return bad(event.error().message);
    if (!body.contains("clock") || !body["clock"].is_number_unsigned()) return bad("no clock");
    Committed committed{std::move(*event), body.value("outcome", Json()),
                        body["clock"].get<uint64_t>(), false, body.value("clientTime", Json())};
    committed.system =
        stored.type == kJoinedType || stored.type == kLeftType || stored.type == kRefusedType;
    committed.origin = body.value("origin", Json());
    return committed;
  }
};

// One client event of a submit, checked; either to be committed or answered.
struct SubmitItem {
  std::string id;
  Json result;  // filled when answered: {"id","seq","outcome"...} or {"id","error"}
  // To commit (result empty until committed):
  std::string action;
  Json payload;
  uint64_t lamport = 0;
  Json client_time;
  bool duplicate_pending = false;  // the id is in an earlier, uncommitted submit
  Json origin;                     // submit_stamped only
  bool refusal = false;            // committed as "$refused" (submit_stamped only)
};

struct Submit {
  std::shared_ptr<RoomSession> session;  // WebSocket, or null
  RoomService::JsonCallback http_done;   // HTTP, or empty
  std::string participant;
  Json ref;  // echoed in the ack
  std::vector<SubmitItem> items;
  bool system = false;   // a presence fact, no answer
  bool stamped = false;  // submit_stamped: refused events are committed as "$refused"
};

// Makes `item` the "$refused" system event recording why the room refused
// `action`: Replicache's "error mode" (the mutation counts as processed).
void make_refusal(SubmitItem& item, const std::string& action, Json error) {
  item.result = Json();
  item.refusal = true;
  item.payload = Json{{"action", action}, {"error", std::move(error)}};
  item.action = std::string(kRefusedAction);
}

// Check errors that refuse a stamped event for good (the same answer on any
// retry), as opposed to "already_exists" or "internal".
bool is_refusal_code(const Json& error) {
  const std::string code = error.value("code", "");
  return code == "unknown_action" || code == "payload_too_large" || code == "invalid_argument";
}

std::shared_ptr<const std::string> poke_frame(uint64_t seq) {
  return std::make_shared<const std::string>(Json{{"type", "poke"}, {"cookie", seq}}.dump());
}

struct Waiter {
  uint64_t after;
  uint32_t limit;
  RoomService::JsonCallback done;
  std::shared_ptr<asio::steady_timer> timer;
};

}  // namespace

class RoomSession {
 public:
  RoomSession(std::shared_ptr<RoomPeer> peer, std::string participant, bool can_write)
      : peer_(std::move(peer)), participant_(std::move(participant)), can_write_(can_write) {}

  const std::string& participant() const { return participant_; }
  bool can_write() const { return can_write_; }

  void send(const std::shared_ptr<const std::string>& frame) {
    if (!closed_.load()) peer_->send(frame);
  }
  void close(uint16_t code, std::string reason) {
    if (!closed_.exchange(true)) peer_->close(code, std::move(reason));
  }
  bool closed() const { return closed_.load(); }

  // The Room it joined (type-erased: Room is file-local). Weak: the room
  // holds its participants' sessions, and a session may outlive the service.
  std::weak_ptr<void> room;
  bool watcher = false;       // watch(): pokes only, never a participant
  bool joining = false;       // its join waits for the committed state (Impl::when_settled)
  uint32_t bad_messages = 0;  // on the room strand
  double tokens = 0;          // rate limit bucket, on the room strand
  int64_t refilled_at_ns = 0;

 private:
  std::shared_ptr<RoomPeer> peer_;
  std::string participant_;
  bool can_write_;
  std::atomic<bool> closed_{false};
};

namespace {

struct Participant {
  std::string name;
  Json presence = Json::object();
  std::shared_ptr<RoomSession> session;  // null while disconnected
  std::shared_ptr<asio::steady_timer> leave_timer;
};

struct SchemaEntry {
  uint64_t version = 0;
  std::shared_ptr<const RoomSchema> schema;
  Json document;
};

}  // namespace

// One loaded room. Everything below `strand` is touched only on the strand.
struct Room : std::enable_shared_from_this<Room> {
  Room(asio::io_context& io, std::string app_name, std::string room_name)
      : strand(asio::make_strand(io)),
        app(std::move(app_name)),
        name(std::move(room_name)),
        stream(RoomService::stream_name(app, name)),
        idle_timer(strand) {}

  asio::strand<asio::io_context::executor_type> strand;
  const std::string app, name, stream;

  bool loaded = false;
  uint64_t schema_version = 0;
  std::shared_ptr<const RoomSchema> schema;
  std::optional<RoomState> state;
  // state->state_hash() of the current state: hashing serializes every slot's
  // merge metadata, too costly for every state read and join. Reset on change.
  std::optional<std::string> hash_cache;
  const std::string& hash() {
    if (!hash_cache) hash_cache = state->state_hash();
    return *hash_cache;
  }
  uint64_t committed_seq = 0;  // = number of events in the room stream
  uint64_t clock = 0;          // the room's Lamport clock
  int64_t last_server_time = 0;
  uint64_t events_since_snapshot = 0;
  std::map<std::string, Participant> participants;
  std::vector<Submit> queued;
  bool append_in_flight = false;
  std::set<std::string> pending_ids;                     // queued or in flight
  std::unordered_map<std::string, Json> recent_results;  // id -> committed answer
  std::vector<Waiter> waiters;
  std::vector<std::shared_ptr<RoomSession>> watchers;  // watch(): poked after each commit
  // Work that must see the committed state, waiting for the append in flight
  // (Impl::when_settled), in the order it arrived.
  std::deque<std::function<void()>> after_commit;
  asio::steady_timer idle_timer;
};

// A "snapshot" frame: the document for display and the reducer's full state
// ("reducerState", RoomState::to_json) so that a client can restore its
// reducer from it and verify the hash itself. `reason` is empty on a join.
static Json snapshot_frame(Room& room, std::string_view reason) {
  Json frame{{"type", "snapshot"}};
  if (!reason.empty()) frame["reason"] = reason;
  frame["seq"] = room.committed_seq;
  frame["clock"] = room.clock;
  frame["hash"] = room.hash();
  frame["state"] = room.state->document();
  frame["reducerState"] = room.state->to_json();
  frame["schemaVersion"] = room.schema_version;
  return frame;
}

struct RoomService::Impl {
  Impl(Store& s, ToolkitDb* db, Clock& c, RoomsConfig cfg)
      : store(s), snapshots(db), clock(c), config(cfg), ids(c.monotonic_ns() ^ 0x726f6f6d) {}

  Store& store;
  ToolkitDb* snapshots;
  Clock& clock;
  const RoomsConfig config;
  UuidV7Generator ids;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;

  std::mutex mutex;                                         // guards rooms, schemas, stopped
  std::map<std::string, std::shared_ptr<Room>> rooms;       // by stream name
  std::map<std::string, SchemaEntry, std::less<>> schemas;  // by app
  bool stopped = false;

  // Appends whose callback has not yet been posted: stop() waits for them,
  // since the callback posts to a room strand of this io_context.
  std::atomic<int64_t> appends_in_flight{0};
  // Set by stop(): no new appends or timers, so that the threads run dry.
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> sessions{0}, events_committed{0}, events_rejected{0}, frames_sent{0},
      snapshots_written{0}, events_refused{0};

  // ---- Schemas ----
  Result<SchemaEntry> schema_for(std::string_view app);
  // ---- Rooms ----
  Result<std::shared_ptr<Room>> room(std::string_view app, std::string_view name);
  Status ensure_loaded(Room& room);
  Status load(Room& room);
  void write_snapshot(Room& room);
  // ---- Submits ----
  void handle_submit(Room& room, Submit submit, const Json& events, bool atomic);
  void check_item(Room& room, SubmitItem& item, const Json& event, const std::string& participant);
  void flush(const std::shared_ptr<Room>& room);
  // Runs `task` on the room's strand when `state` is the committed state: at
  // once when no append is in flight, else right after that append completes
  // (before the next one starts). While an append is in flight, `state`
  // already holds its events (flush applies them to compute their outcomes),
  // which nothing labelled with committed_seq may show: a join's snapshot, a
  // verify's hash, a state read. FIFO, so a joining session's messages and
  // close, deferred behind its join, keep their order.
  void when_settled(Room& room, std::function<void()> task);
  void run_settled(Room& room);
  static void read_settled(Impl& impl, Room& room, const ReadCallback& read);
  void on_appended(const std::shared_ptr<Room>& room, std::vector<Submit> batch,
                   std::vector<Committed> events, Result<std::vector<AppendResult>> result);
  void answer(Submit& submit, Room& room);
  void broadcast(Room& room, const std::shared_ptr<const std::string>& frame);
  // ---- Presence ----
  void record_presence(Room& room, const std::string& participant, bool joined);
  void presence_notice(Room& room, std::string_view what, const std::string& participant);
  void leave(Room& room, const std::string& participant);
  // ---- Reads ----
  Result<std::vector<Committed>> read_committed(Room& room, uint64_t after, uint64_t until);
  Json events_json(const std::vector<Committed>& events);
  void wake_waiters(Room& room);
  Result<RoomState> state_at(Room& room, uint64_t seq);
  Status visit_origins(Room& room, uint64_t after, const RoomReader::OriginVisitor& visit);
  void stamp(Room& room, Submit& submit, std::vector<StampedEvent>& events);
};

// ----------------------------------------------------------------------------
// Schemas

Result<SchemaEntry> RoomService::Impl::schema_for(std::string_view app) {
  {
    std::lock_guard lock(mutex);
    auto found = schemas.find(app);
    if (found != schemas.end()) return found->second;
  }
  ReadStreamOptions newest;
  newest.direction = Direction::kBackward;
  newest.from_revision = kEnd;
  newest.max_count = 1;
  const std::string stream = std::string(kSchemaStreamPrefix) + std::string(app);
  Result<ReadStreamResult> read = store.read_stream(stream, newest);
  if (!read || read->events.empty()) {
    if (read || read.error().code == ErrorCode::kNotFound) {
      return make_error(
          ErrorCode::kNotFound,
          fmt::format("app '{}' has no room schema: PUT /apps/{}/schema first", app, app));
    }
    return tl::unexpected(std::move(read).error());
  }
  const RecordedEvent& event = read->events.front();
  Json document = Json::parse(event.data, nullptr, false);
  Result<RoomSchema> schema = RoomSchema::parse(document);
  if (!schema) {
    return make_error(ErrorCode::kDataLoss,
                      fmt::format("the stored schema of app '{}' no longer parses: {}", app,
                                  schema.error().message));
  }
  SchemaEntry entry{event.revision + 1, std::make_shared<const RoomSchema>(std::move(*schema)),
                    std::move(document)};
  std::lock_guard lock(mutex);
  return schemas.emplace(std::string(app), entry).first->second;
}

Result<uint64_t> RoomService::put_schema(std::string_view app, const Json& schema) {
  VL_RETURN_IF_ERROR(check_names(app, "x"));
  VL_TRY(parsed, RoomSchema::parse(schema));
  EventData event;
  event.type = std::string(kSchemaEventType);
  event.data = schema.dump();
  const std::string stream = std::string(kSchemaStreamPrefix) + std::string(app);
  VL_TRY(appended, impl_->store.append(stream, ExpectedRevision::any(), {&event, 1}));
  SchemaEntry entry{appended.last_revision + 1,
                    std::make_shared<const RoomSchema>(std::move(parsed)), schema};
  std::vector<std::shared_ptr<Room>> affected;
  {
    std::lock_guard lock(impl_->mutex);
    impl_->schemas[std::string(app)] = entry;
    for (const auto& [stream_name, room] : impl_->rooms) {
      if (room->app == app) affected.push_back(room);
    }
  }
  // Loaded rooms rebuild under the new schema and send everyone the new state.
  for (const std::shared_ptr<Room>& room : affected) {
    asio::post(room->strand, [impl = impl_.get(), room] {
      impl->when_settled(*room, [impl, room] {
        if (!room->loaded) return;
        room->loaded = false;
        if (Status loaded = impl->ensure_loaded(*room); !loaded) {
          impl->broadcast(*room, frame_of(error_frame("internal", loaded.error().message)));
          return;
        }
        impl->broadcast(*room, frame_of(snapshot_frame(*room, "schema")));
      });
    });
  }
  return entry.version;
}

Result<Json> RoomService::get_schema(std::string_view app) {
  VL_RETURN_IF_ERROR(check_names(app, "x"));
  VL_TRY(entry, impl_->schema_for(app));
  return Json{{"app", app}, {"version", entry.version}, {"schema", entry.document}};
}

// ----------------------------------------------------------------------------
// Rooms and loading

Result<std::shared_ptr<Room>> RoomService::Impl::room(std::string_view app, std::string_view name) {
  VL_RETURN_IF_ERROR(check_names(app, name));
  VL_RETURN_IF_ERROR(schema_for(app));  // no schema: nothing can happen in the room
  const std::string stream = stream_name(app, name);
  std::lock_guard lock(mutex);
  if (stopped) return make_error(ErrorCode::kUnavailable, "the server is shutting down");
  auto& slot = rooms[stream];
  if (!slot) slot = std::make_shared<Room>(io, std::string(app), std::string(name));
  return slot;
}

Status RoomService::Impl::ensure_loaded(Room& room) {
  if (room.loaded) return ok_status();
  Status loaded = load(room);
  if (loaded) room.loaded = true;
  return loaded;
}

// Rebuilds the room from its newest usable snapshot and the events after it.
Status RoomService::Impl::load(Room& room) {
  VL_TRY(schema, schema_for(room.app));
  room.schema_version = schema.version;
  room.schema = schema.schema;
  room.state.emplace(schema.schema);
  room.hash_cache.reset();
  room.committed_seq = 0;
  room.clock = 0;
  room.last_server_time = 0;
  room.recent_results.clear();
  uint64_t from_revision = 0;
  // Never a snapshot past the room stream's end (a log that lost its tail:
  // durability batch or none, then a power loss).
  Result<StreamInfo> info = store.stream_info(room.stream);
  const bool has_events = info && info->last_revision != kNoRevision;
  if (snapshots != nullptr && has_events) {
    Result<std::optional<Snapshot>> found = snapshots->find_snapshot(
        kSnapshotAggregate, room.stream, static_cast<uint64_t>(info->last_revision),
        static_cast<uint32_t>(room.schema_version), 0);
    if (found && *found) {
      Json saved = Json::parse((*found)->state, nullptr, false);
      if (saved.is_object() && saved.contains("state")) {
        Result<RoomState> restored = RoomState::from_json(schema.schema, saved["state"]);
        if (restored) {
          room.state.emplace(std::move(*restored));
          room.committed_seq = (*found)->revision + 1;
          room.clock = saved.value("clock", uint64_t{0});
          room.last_server_time = saved.value("lastServerTime", int64_t{0});
          from_revision = (*found)->revision + 1;
        }
      }
    }
  }
  ReadStreamOptions options;
  options.from_revision = from_revision;
  options.max_count = 1'000;
  Status failed = ok_status();
  auto apply = [&](const EventRef& stored) {
    Result<Committed> committed = Committed::from_stored(stored);
    if (!committed) {
      failed = tl::unexpected(std::move(committed).error());
      return false;
    }
    if (!committed->system) {
      // Events the current schema rejects (it changed since) change nothing.
      (void)room.state->apply(committed->event);
    }
    room.committed_seq = stored.revision + 1;
    room.clock = committed->clock;
    room.last_server_time = std::max(room.last_server_time, committed->event.server_time_ns);
    return true;
  };
  for (std::optional<uint64_t> from = from_revision; from && failed;) {
    options.from_revision = *from;
    Result<std::optional<uint64_t>> next = store.visit_stream(room.stream, options, apply);
    if (!next) {
      if (next.error().code == ErrorCode::kNotFound) break;  // a room without events yet
      return tl::unexpected(std::move(next).error());
    }
    from = *next;
  }
  VL_RETURN_IF_ERROR(failed);
  room.events_since_snapshot = 0;
  return ok_status();
}

void RoomService::Impl::write_snapshot(Room& room) {
  if (snapshots == nullptr || room.committed_seq == 0 || room.events_since_snapshot == 0) return;
  Json saved{{"state", room.state->to_json()},
             {"clock", room.clock},
             {"lastServerTime", room.last_server_time}};
  Snapshot snapshot{room.committed_seq - 1, 0, static_cast<uint32_t>(room.schema_version), 0,
                    saved.dump()};
  if (snapshots->put_snapshot(kSnapshotAggregate, room.stream, snapshot)) {
    room.events_since_snapshot = 0;
    snapshots_written.fetch_add(1);
  }
}

// ----------------------------------------------------------------------------
// Submits and the append cycle

void RoomService::Impl::check_item(Room& room, SubmitItem& item, const Json& event,
                                   const std::string& participant) {
  auto reject = [&](std::string_view code, std::string message) {
    item.result = Json{{"id", item.id}, {"error", error_json(code, message)}};
  };
  if (!event.is_object()) return reject("invalid_argument", "an event is a JSON object");
  if (!event.contains("id") || !event["id"].is_string()) {
    return reject("invalid_argument", "an event needs an \"id\" (a UUID string)");
  }
  item.id = event["id"].get<std::string>();
  std::optional<Uuid> uuid = Uuid::parse(item.id);
  if (!uuid || uuid->is_nil()) return reject("invalid_argument", "\"id\" is not a UUID");
  item.id = uuid->to_string();  // canonical: the same id in any case is the same event
  if (auto done = room.recent_results.find(item.id); done != room.recent_results.end()) {
    item.result = done->second;  // a resend: the original outcome, applied once
    return;
  }
  if (room.pending_ids.count(item.id) != 0) {
    item.duplicate_pending = true;  // answered when the first copy commits
    return;
  }
  Result<RecordedEvent> stored = store.read_event(*uuid);
  if (stored) {
    if (stored->stream != room.stream) {
      return reject("already_exists", "this event id is used by another event");
    }
    Result<Committed> committed = Committed::from_stored(
        EventRef{stored->id, stored->stream, stored->revision, stored->position, stored->type,
                 stored->content_type, stored->data, stored->metadata, stored->correlation_id,
                 stored->causation_id, stored->subject, stored->occurrence_time_unix_ns,
                 stored->recorded_time_unix_ns, stored->schema_version, stored->key_id});
    if (!committed) return reject("internal", committed.error().message);
    item.result = Json{{"id", item.id}, {"seq", committed->event.seq}};
    if (!committed->outcome.is_null()) item.result.update(committed->outcome);
    return;
  }
  if (auto key = config.signing_keys.find(room.app); key != config.signing_keys.end()) {
    // Seed 000: the app signs its clients' events; the sender is the
    // connection's participant, so a signature cannot be replayed as another.
    if (Status signed_ok = verify_room_event_signature(event, participant, key->second);
        !signed_ok) {
      std::string code(token_problem_code(token_problem(signed_ok.error())));
      return reject(code.empty() ? "signature_invalid" : code, signed_ok.error().message);
    }
  }
  if (!event.contains("action") || !event["action"].is_string()) {
    return reject("invalid_argument", "an event needs an \"action\" (a string)");
  }
  item.action = event["action"].get<std::string>();
  if (room.schema->find_action(item.action) == nullptr) {
    return reject("unknown_action",
                  fmt::format("app '{}' declares no action '{}'", room.app, item.action));
  }
  item.payload = event.value("payload", Json::object());
  if (item.payload.dump().size() > config.max_payload_bytes) {
    return reject("payload_too_large",
                  fmt::format("payloads are at most {} bytes of JSON", config.max_payload_bytes));
  }
  if (Status value = check_state_value(item.payload, "payload"); !value) {
    return reject("invalid_argument", value.error().message);
  }
  const Json lamport = event.value("lamport", Json(0));
  if (!lamport.is_number_unsigned() || lamport.get<uint64_t>() > uint64_t(kSafeIntegerMax)) {
    return reject("invalid_argument", "\"lamport\" is an integer from 0 to 2^53 - 1");
  }
  item.lamport = lamport.get<uint64_t>();
  item.client_time = event.value("clientTime", Json());
}

void RoomService::Impl::handle_submit(Room& room, Submit submit, const Json& events, bool atomic) {
  if (!events.is_array() || events.empty()) {
    submit.items.push_back(SubmitItem{
        "", Json{{"error", error_json("invalid_argument", "\"events\" is a non-empty array")}}});
    return answer(submit, room);
  }
  if (events.size() > config.max_events_per_submit) {
    submit.items.push_back(SubmitItem{
        "",
        Json{{"error", error_json("too_many_events", fmt::format("at most {} events per submit",
                                                                 config.max_events_per_submit))}}});
    return answer(submit, room);
  }
  bool any_error = false;
  for (const Json& event : events) {
    SubmitItem item;
    check_item(room, item, event, submit.participant);
    any_error = any_error || item.result.contains("error");
    submit.items.push_back(std::move(item));
  }
  if (atomic && any_error) {
    // All or nothing: the good events are rejected too, naming why.
    for (SubmitItem& item : submit.items) {
      if (item.result.is_null() || !item.result.contains("error")) {
        item.result = Json{
            {"id", item.id},
            {"error", error_json("batch_rejected", "another event of this atomic batch failed")}};
        item.duplicate_pending = false;
      }
    }
    events_rejected.fetch_add(submit.items.size());
    return answer(submit, room);
  }
  for (const SubmitItem& item : submit.items) {
    if (item.result.is_null() && !item.duplicate_pending) room.pending_ids.insert(item.id);
  }
  room.queued.push_back(std::move(submit));
  if (!room.append_in_flight) flush(room.shared_from_this());
}

// Takes every queued submit, computes outcomes against the room state (which
// only this strand changes, and only in commit order), and appends them as
// one atomic append expecting the room's current length.
void RoomService::Impl::flush(const std::shared_ptr<Room>& room) {
  if (room->queued.empty() || room->append_in_flight) return;
  if (stopping.load()) {
    for (Submit& submit : room->queued) {
      for (SubmitItem& item : submit.items) {
        if (item.result.is_null()) {
          item.result = Json{{"id", item.id},
                             {"error", error_json("unavailable", "the server is shutting down")}};
        }
      }
      answer(submit, *room);
    }
    room->queued.clear();
    return;
  }
  std::vector<Submit> batch = std::move(room->queued);
  room->queued.clear();
  std::vector<Committed> events;
  uint64_t seq = room->committed_seq;
  for (Submit& submit : batch) {
    for (SubmitItem& item : submit.items) {
      if (!item.result.is_null() || item.duplicate_pending) continue;
      const int64_t now = std::max(clock.now_unix_ns(), room->last_server_time);
      Committed committed{RoomEvent{seq + 1, item.id, item.action, item.payload, item.lamport,
                                    submit.participant, now},
                          Json(),
                          0,
                          submit.system || item.refusal,
                          item.client_time,
                          item.origin};
      if (!committed.system) {
        room->hash_cache.reset();
        Result<Outcome> outcome = room->state->apply(committed.event);
        if (!outcome && submit.stamped) {
          // The reducer refuses it (the state is unchanged): recorded instead.
          make_refusal(item, item.action, error_json("rejected", outcome.error().message));
          committed.event.action = item.action;
          committed.event.payload = item.payload;
          committed.system = true;
        } else if (!outcome) {
          room->pending_ids.erase(item.id);
          events_rejected.fetch_add(1);
          item.result =
              Json{{"id", item.id}, {"error", error_json("rejected", outcome.error().message)}};
          continue;
        } else {
          committed.outcome = outcome_to_json(*outcome);
        }
      }
      if (item.refusal) {
        committed.outcome = Json{{"refused", item.payload["error"]}};
        events_refused.fetch_add(1);
      }
      room->clock = std::max(room->clock, item.lamport) + 1;
      room->last_server_time = now;
      committed.clock = room->clock;
      events.push_back(std::move(committed));
      ++seq;
    }
  }
  if (events.empty()) {
    for (Submit& submit : batch) answer(submit, *room);
    return;
  }
  std::vector<StreamAppend> append(1);
  append[0].stream = room->stream;
  append[0].expected = room->committed_seq == 0 ? ExpectedRevision::no_stream()
                                                : ExpectedRevision::exact(room->committed_seq - 1);
  for (const Committed& committed : events) append[0].events.push_back(committed.to_event_data());
  room->append_in_flight = true;
  auto shared_batch = std::make_shared<std::vector<Submit>>(std::move(batch));
  auto shared_events = std::make_shared<std::vector<Committed>>(std::move(events));
  // The callback runs on a store thread: hand the result to the room's strand.
  appends_in_flight.fetch_add(1);
  store.append_async(
      append, [this, room, shared_batch, shared_events](Result<std::vector<AppendResult>> result) {
        asio::post(room->strand, [this, room, shared_batch, shared_events,
                                  result = std::move(result)]() mutable {
          on_appended(room, std::move(*shared_batch), std::move(*shared_events), std::move(result));
        });
        appends_in_flight.fetch_sub(1);
      });
}

void RoomService::Impl::on_appended(const std::shared_ptr<Room>& room, std::vector<Submit> batch,
                                    std::vector<Committed> events,
                                    Result<std::vector<AppendResult>> result) {
  room->append_in_flight = false;
  for (const Committed& committed : events) room->pending_ids.erase(committed.event.id);
  if (!result) {
    // Nothing was written. The speculative state is wrong now: rebuild it
    // from the log. The clients retry with the same ids (idempotent).
    const std::string message = "the append failed, retry: " + result.error().message;
    for (Submit& submit : batch) {
      for (SubmitItem& item : submit.items) {
        if (item.result.is_null()) {
          item.result = Json{{"id", item.id}, {"error", error_json("unavailable", message)}};
        }
      }
      answer(submit, *room);
    }
    room->loaded = false;
    if (Status reloaded = ensure_loaded(*room); !reloaded) {
      broadcast(*room, frame_of(error_frame("internal", reloaded.error().message)));
    }
    run_settled(*room);
    flush(room);
    return;
  }
  room->committed_seq += events.size();
  room->events_since_snapshot += events.size();
  events_committed.fetch_add(events.size());
  for (const Committed& committed : events) {
    Json answer_json{{"id", committed.event.id}, {"seq", committed.event.seq}};
    if (!committed.outcome.is_null()) answer_json.update(committed.outcome);
    room->recent_results[committed.event.id] = std::move(answer_json);
  }
  // Everyone, sender included, gets the events in commit order; then each
  // sender its acknowledgement.
  for (size_t i = 0; i < events.size(); i += kEventsPerFrameMax) {
    std::vector<Committed> chunk(events.begin() + i,
                                 events.begin() + std::min(events.size(), i + kEventsPerFrameMax));
    Json frame{{"type", "events"},
               {"events", events_json(chunk)},
               {"seq", room->committed_seq},
               {"clock", room->clock}};
    broadcast(*room, frame_of(frame));
  }
  if (!room->watchers.empty()) {
    const auto poke = poke_frame(room->committed_seq);
    for (const auto& watcher : room->watchers) watcher->send(poke);
  }
  for (Submit& submit : batch) {
    for (SubmitItem& item : submit.items) {
      if (item.result.is_null()) item.result = room->recent_results[item.id];
    }
    answer(submit, *room);
  }
  wake_waiters(*room);
  if (config.snapshot_every_events > 0 &&
      room->events_since_snapshot >= config.snapshot_every_events) {
    write_snapshot(*room);
  }
  if (config.snapshot_idle.count() > 0 && !stopping.load()) {
    room->idle_timer.expires_after(config.snapshot_idle);
    room->idle_timer.async_wait([this, weak = std::weak_ptr<Room>(room)](auto error) {
      auto locked = weak.lock();
      // In flight: the state runs ahead of the log; that append re-arms this.
      if (!error && locked && locked->loaded && !locked->append_in_flight) {
        write_snapshot(*locked);
      }
    });
  }
  run_settled(*room);
  flush(room);
}

void RoomService::Impl::when_settled(Room& room, std::function<void()> task) {
  room.after_commit.push_back(std::move(task));
  run_settled(room);
}

void RoomService::Impl::run_settled(Room& room) {
  // A piece of work may start an append (a deferred submit): the rest waits again.
  while (!room.after_commit.empty() && !room.append_in_flight) {
    std::function<void()> task = std::move(room.after_commit.front());
    room.after_commit.pop_front();
    task();
  }
}

void RoomService::Impl::answer(Submit& submit, Room& room) {
  if (submit.system) return;
  Json results = Json::array();
  for (SubmitItem& item : submit.items) {
    // A resend of an id that was still in flight: its first copy committed
    // in this or an earlier batch, so its answer is known now.
    if (item.result.is_null() && item.duplicate_pending) {
      auto done = room.recent_results.find(item.id);
      item.result =
          done != room.recent_results.end()
              ? done->second
              : Json{{"id", item.id},
                     {"error", error_json("unavailable", "retry: its first copy failed")}};
    }
    results.push_back(item.result);
  }
  Json body{{"results", results}, {"seq", room.committed_seq}, {"clock", room.clock}};
  if (submit.http_done) {
    submit.http_done(std::move(body));
    return;
  }
  if (submit.session) {
    body["type"] = "ack";
    if (!submit.ref.is_null()) body["ref"] = submit.ref;
    submit.session->send(frame_of(body));
  }
}

void RoomService::Impl::broadcast(Room& room, const std::shared_ptr<const std::string>& frame) {
  for (auto& [id, participant] : room.participants) {
    if (participant.session) {
      participant.session->send(frame);
      frames_sent.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

Json RoomService::Impl::events_json(const std::vector<Committed>& events) {
  Json list = Json::array();
  for (const Committed& committed : events) list.push_back(committed.to_json());
  return list;
}

// ----------------------------------------------------------------------------
// Joining, presence and leaving

void RoomService::Impl::record_presence(Room& room, const std::string& participant, bool joined) {
  Submit fact;
  fact.system = true;
  fact.participant = participant;
  SubmitItem item;
  item.id = ids.next(clock.now_unix_ns()).to_string();
  item.action = std::string(joined ? kJoinedAction : kLeftAction);
  auto found = room.participants.find(participant);
  item.payload = Json{{"name", found == room.participants.end() ? "" : found->second.name}};
  item.lamport = room.clock;
  fact.items.push_back(std::move(item));
  room.pending_ids.insert(fact.items.back().id);
  room.queued.push_back(std::move(fact));
  if (!room.append_in_flight) flush(room.shared_from_this());
}

void RoomService::Impl::presence_notice(Room& room, std::string_view what,
                                        const std::string& participant) {
  Json notice{{"type", "presence"}, {"event", what}, {"participant", participant}};
  if (auto found = room.participants.find(participant); found != room.participants.end()) {
    notice["name"] = found->second.name;
    notice["state"] = found->second.presence;
  }
  broadcast(room, frame_of(notice));
}

void RoomService::Impl::leave(Room& room, const std::string& participant) {
  auto found = room.participants.find(participant);
  if (found == room.participants.end()) return;
  presence_notice(room, "left", participant);
  record_presence(room, participant, /*joined=*/false);
  room.participants.erase(found);
}

Result<std::shared_ptr<RoomSession>> RoomService::join(const JoinRequest& request,
                                                       std::shared_ptr<RoomPeer> peer) {
  VL_RETURN_IF_ERROR(check_participant(request.participant));
  if (request.name.size() > 256) {
    return make_error(ErrorCode::kInvalidArgument, "names are at most 256 bytes");
  }
  VL_TRY(room, impl_->room(request.app, request.room));
  auto session =
      std::make_shared<RoomSession>(std::move(peer), request.participant, request.can_write);
  session->room = room;
  session->tokens = impl_->config.submit_burst;
  session->refilled_at_ns = impl_->clock.monotonic_ns();
  impl_->sessions.fetch_add(1);
  session->joining = true;
  asio::post(room->strand, [impl = impl_.get(), room, session, request] {
    impl->when_settled(*room, [impl, room, session, request] {
      session->joining = false;
      if (Status loaded = impl->ensure_loaded(*room); !loaded) {
        session->send(frame_of(error_frame("internal", loaded.error().message)));
        session->close(1011, "room unavailable");
        return;
      }
      auto existing = room->participants.find(request.participant);
      const bool present = existing != room->participants.end();
      if (!present) {
        size_t connected = 0;
        for (const auto& [id, p] : room->participants) connected += p.session ? 1 : 0;
        if (connected >= impl->config.max_participants) {
          session->send(frame_of(error_frame(
              "room_full", fmt::format("at most {} participants", impl->config.max_participants))));
          session->close(kCloseRoomFull, "room full");
          return;
        }
      }
      Participant& participant = room->participants[request.participant];
      if (participant.session && participant.session != session) {
        participant.session->close(kCloseReplaced, "replaced by a newer connection");
      }
      if (participant.leave_timer) participant.leave_timer->cancel();
      participant.leave_timer.reset();
      participant.session = session;
      if (!request.name.empty() || !present) participant.name = request.name;

      // Welcome, then the catch-up, then live: all on this strand, so nothing
      // committed in between can be missed or doubled.
      Json members = Json::array();
      for (const auto& [id, p] : room->participants) {
        members.push_back(Json{{"participant", id},
                               {"name", p.name},
                               {"state", p.presence},
                               {"connected", p.session != nullptr}});
      }
      session->send(frame_of(Json{{"type", "welcome"},
                                  {"app", room->app},
                                  {"room", room->name},
                                  {"participant", request.participant},
                                  {"seq", room->committed_seq},
                                  {"clock", room->clock},
                                  {"schemaVersion", room->schema_version},
                                  {"participants", members}}));
      const uint64_t have = request.last_seq.value_or(0);
      const bool events_cheaper = request.last_seq && have <= room->committed_seq &&
                                  room->committed_seq - have <= impl->config.catch_up_events_max;
      if (events_cheaper) {
        Result<std::vector<Committed>> missed =
            impl->read_committed(*room, have, room->committed_seq);
        if (!missed) {
          session->send(frame_of(error_frame("internal", missed.error().message)));
          session->close(1011, "read failed");
          return;
        }
        for (size_t i = 0; i < missed->size(); i += kEventsPerFrameMax) {
          std::vector<Committed> chunk(
              missed->begin() + i,
              missed->begin() + std::min(missed->size(), i + kEventsPerFrameMax));
          session->send(frame_of(Json{{"type", "events"},
                                      {"events", impl->events_json(chunk)},
                                      {"seq", room->committed_seq},
                                      {"clock", room->clock},
                                      {"catchUp", true}}));
        }
      } else {
        session->send(frame_of(snapshot_frame(*room, "")));
      }
      session->send(frame_of(Json{{"type", "live"}, {"seq", room->committed_seq}}));
      impl->presence_notice(*room, present ? "updated" : "joined", request.participant);
      if (!present) impl->record_presence(*room, request.participant, /*joined=*/true);
    });
  });
  return session;
}

void RoomService::on_closed(const std::shared_ptr<RoomSession>& session, bool clean) {
  impl_->sessions.fetch_sub(1);
  auto room = std::static_pointer_cast<Room>(session->room.lock());
  if (!room) return;  // the service stopped
  if (session->watcher) {
    asio::post(room->strand, [room, session] { std::erase(room->watchers, session); });
    return;
  }
  auto closed = [impl = impl_.get(), room, session, clean] {
    auto found = room->participants.find(session->participant());
    if (found == room->participants.end() || found->second.session != session) return;
    if (clean) return impl->leave(*room, session->participant());
    // The connection died: the participant may come back before the timeout.
    Participant& participant = found->second;
    participant.session.reset();
    if (impl->stopping.load()) return;  // no timers: the threads are running dry
    impl->presence_notice(*room, "disconnected", session->participant());
    participant.leave_timer = std::make_shared<asio::steady_timer>(room->strand);
    participant.leave_timer->expires_after(impl->config.presence_timeout);
    participant.leave_timer->async_wait(
        [impl, room, id = session->participant(), timer = participant.leave_timer](auto error) {
          if (error) return;
          auto again = room->participants.find(id);
          if (again != room->participants.end() && !again->second.session &&
              again->second.leave_timer == timer) {
            impl->leave(*room, id);
          }
        });
  };
  // Behind its join if that still waits for the committed state: in order.
  asio::post(room->strand, [impl = impl_.get(), room, session, closed = std::move(closed)] {
    if (session->joining) return impl->when_settled(*room, closed);
    closed();
  });
}

// The client's state hash at its seq (on the strand, at a settled state).
// Only comparable at the room's seq: a client behind has events on the way
// (it is told "unverified" and asks again later, not sent a whole snapshot);
// a mismatch at the same seq, or a client ahead of the room, is reset.
static void verify(Room& room, RoomSession& session, uint64_t seq, const std::string& hash) {
  if (session.closed()) return;
  if (seq < room.committed_seq) {
    return session.send(frame_of(Json{{"type", "unverified"}, {"seq", room.committed_seq}}));
  }
  if (seq == room.committed_seq && hash == room.hash()) {
    return session.send(frame_of(Json{{"type", "verified"}, {"seq", seq}}));
  }
  session.send(frame_of(snapshot_frame(room, "verify")));
}

void RoomService::on_message(const std::shared_ptr<RoomSession>& session, std::string text) {
  auto room = std::static_pointer_cast<Room>(session->room.lock());
  if (!room) return;  // the service stopped
  auto handle = [impl = impl_.get(), room, session, text = std::move(text)] {
    if (session->closed()) return;
    auto found = room->participants.find(session->participant());
    if (found == room->participants.end() || found->second.session != session) return;
    Json message = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    auto bad = [&](std::string_view why) {
      session->send(frame_of(error_frame("bad_message", why)));
      if (++session->bad_messages > kBadMessagesMax) {
        session->close(kCloseBadMessage, "too many bad messages");
      }
    };
    if (!message.is_object() || !message.contains("op") || !message["op"].is_string()) {
      return bad("a message is a JSON object with an \"op\"");
    }
    const std::string op = message["op"].get<std::string>();
    if (op == "submit") {
      if (!session->can_write()) {
        return session->send(frame_of(error_frame("forbidden", "the token allows reading only")));
      }
      // Token bucket: refill, then take one.
      const int64_t now = impl->clock.monotonic_ns();
      session->tokens = std::min<double>(
          impl->config.submit_burst,
          session->tokens + impl->config.submits_per_second *
                                static_cast<double>(now - session->refilled_at_ns) / 1e9);
      session->refilled_at_ns = now;
      if (session->tokens < 1) {
        session->send(frame_of(error_frame("rate_limited", "too many submits: slow down")));
        if (session->tokens < -double(impl->config.submit_burst)) {
          session->close(kCloseRateLimited, "far over the submit rate");
        }
        session->tokens -= 1;
        return;
      }
      session->tokens -= 1;
      Submit submit;
      submit.session = session;
      submit.participant = session->participant();
      submit.ref = message.value("ref", Json());
      const Json events = message.value("events", Json());
      impl->handle_submit(*room, std::move(submit), events, message.value("atomic", false));
    } else if (op == "presence") {
      Json state = message.value("state", Json::object());
      if (state.dump().size() > impl->config.max_presence_bytes) {
        return bad("presence state is too large");
      }
      found->second.presence = std::move(state);  // broadcast, never stored
      impl->presence_notice(*room, "updated", session->participant());
    } else if (op == "verify") {
      const uint64_t seq = message.value("seq", uint64_t{0});
      std::string hash = message.value("hash", std::string());
      impl->when_settled(*room, [room, session, seq, hash = std::move(hash)] {
        verify(*room, *session, seq, hash);
      });
    } else if (op == "ping") {
      session->send(frame_of(Json{{"type", "pong"}, {"seq", room->committed_seq}}));
    } else if (op == "leave") {
      impl->leave(*room, session->participant());
      session->close(1000, "left");
    } else {
      bad("unknown op '" + op + "'");
    }
  };
  // Behind its join if that still waits for the committed state: in order.
  asio::post(room->strand, [impl = impl_.get(), room, session, handle = std::move(handle)] {
    if (session->joining) return impl->when_settled(*room, handle);
    handle();
  });
}

// ----------------------------------------------------------------------------
// HTTP: submits, reads, state

void RoomService::submit(std::string app, std::string room_name, Json body, bool can_write,
                         JsonCallback done) {
  Result<std::shared_ptr<Room>> room = impl_->room(app, room_name);
  if (!room) return done(tl::unexpected(std::move(room).error()));
  if (!can_write) return done(make_error(ErrorCode::kFailedPrecondition, "read-only token"));
  if (!body.is_object() || !body.contains("participant") || !body["participant"].is_string()) {
    return done(make_error(ErrorCode::kInvalidArgument,
                           "the body is {\"participant\": ..., \"events\": [...]}"));
  }
  std::string participant = body["participant"].get<std::string>();
  if (Status checked = check_participant(participant); !checked) {
    return done(tl::unexpected(std::move(checked).error()));
  }
  asio::post((*room)->strand, [impl = impl_.get(), room = *room, body = std::move(body),
                               participant = std::move(participant), done = std::move(done)] {
    if (Status loaded = impl->ensure_loaded(*room); !loaded) {
      return done(tl::unexpected(std::move(loaded).error()));
    }
    Submit submit;
    submit.http_done = done;
    submit.participant = participant;
    impl->handle_submit(*room, std::move(submit), body.value("events", Json()),
                        body.value("atomic", false));
  });
}

Result<std::vector<Committed>> RoomService::Impl::read_committed(Room& room, uint64_t after,
                                                                 uint64_t until) {
  std::vector<Committed> events;
  if (after >= until) return events;
  ReadStreamOptions options;
  options.from_revision = after;  // seq after+1 is revision `after`
  options.max_count = static_cast<uint32_t>(std::min<uint64_t>(until - after, 10'000));
  Status failed = ok_status();
  while (options.from_revision < until && failed) {
    Result<std::optional<uint64_t>> next =
        store.visit_stream(room.stream, options, [&](const EventRef& stored) {
          if (stored.revision >= until) return false;
          Result<Committed> committed = Committed::from_stored(stored);
          if (!committed) {
            failed = tl::unexpected(std::move(committed).error());
            return false;
          }
          events.push_back(std::move(*committed));
          return true;
        });
    if (!next) return tl::unexpected(std::move(next).error());
    if (!*next) break;
    options.from_revision = **next;
  }
  VL_RETURN_IF_ERROR(failed);
  return events;
}

void RoomService::Impl::wake_waiters(Room& room) {
  std::vector<Waiter> waiting = std::move(room.waiters);
  room.waiters.clear();
  for (Waiter& waiter : waiting) {
    if (waiter.after >= room.committed_seq) {
      room.waiters.push_back(std::move(waiter));
      continue;
    }
    waiter.timer->cancel();
    auto events = read_committed(
        room, waiter.after, std::min<uint64_t>(room.committed_seq, waiter.after + waiter.limit));
    if (!events) {
      waiter.done(tl::unexpected(std::move(events).error()));
      continue;
    }
    waiter.done(Json{{"events", events_json(*events)}, {"seq", room.committed_seq}});
  }
}

void RoomService::read_events(std::string app, std::string room_name, uint64_t after,
                              uint32_t limit, std::chrono::milliseconds wait, JsonCallback done) {
  Result<std::shared_ptr<Room>> room = impl_->room(app, room_name);
  if (!room) return done(tl::unexpected(std::move(room).error()));
  limit = std::clamp<uint32_t>(limit, 1, kHttpReadEventsMax);
  asio::post((*room)->strand, [impl = impl_.get(), room = *room, after, limit, wait,
                               done = std::move(done)] {
    if (Status loaded = impl->ensure_loaded(*room); !loaded) {
      return done(tl::unexpected(std::move(loaded).error()));
    }
    if (after < room->committed_seq || wait.count() <= 0) {
      auto events = impl->read_committed(*room, after,
                                         std::min<uint64_t>(room->committed_seq, after + limit));
      if (!events) return done(tl::unexpected(std::move(events).error()));
      return done(Json{{"events", impl->events_json(*events)}, {"seq", room->committed_seq}});
    }
    auto timer = std::make_shared<asio::steady_timer>(room->strand);
    timer->expires_after(wait);
    room->waiters.push_back(Waiter{after, limit, done, timer});
    timer->async_wait([room, timer](auto error) {
      if (error) return;  // cancelled: woken by events
      auto found = std::find_if(room->waiters.begin(), room->waiters.end(),
                                [&](const Waiter& w) { return w.timer == timer; });
      if (found == room->waiters.end()) return;
      JsonCallback callback = std::move(found->done);
      room->waiters.erase(found);
      callback(Json{{"events", Json::array()}, {"seq", room->committed_seq}});
    });
  });
}

// The state as of `seq` (1-based; 0 = empty): the newest snapshot at or
// before it, and the events up to it.
Result<RoomState> RoomService::Impl::state_at(Room& room, uint64_t seq) {
  RoomState state(room.schema);
  uint64_t have = 0;
  if (snapshots != nullptr && seq > 0) {
    Result<std::optional<Snapshot>> found = snapshots->find_snapshot(
        kSnapshotAggregate, room.stream, seq - 1, static_cast<uint32_t>(room.schema_version), 0);
    if (found && *found) {
      Json saved = Json::parse((*found)->state, nullptr, false);
      if (saved.is_object() && saved.contains("state")) {
        Result<RoomState> restored = RoomState::from_json(room.schema, saved["state"]);
        if (restored) {
          state = std::move(*restored);
          have = (*found)->revision + 1;
        }
      }
    }
  }
  VL_TRY(events, read_committed(room, have, seq));
  for (const Committed& committed : events) {
    if (!committed.system) (void)state.apply(committed.event);
  }
  return state;
}

Status RoomService::Impl::visit_origins(Room& room, uint64_t after,
                                        const RoomReader::OriginVisitor& visit) {
  // Pages of events: a reader far behind (rebuilding) never holds the whole room.
  constexpr uint64_t kPageEvents = 1'000;
  for (uint64_t from = after; from < room.committed_seq;) {
    const uint64_t until = std::min(room.committed_seq, from + kPageEvents);
    VL_TRY(events, read_committed(room, from, until));
    for (const Committed& committed : events) {
      if (!committed.origin.is_null()) {
        visit(committed.event.seq, committed.event.participant, committed.origin);
      }
    }
    from = until;
  }
  return ok_status();
}

void RoomService::state(std::string app, std::string room_name, std::optional<uint64_t> at_seq,
                        std::optional<int64_t> at_time_unix_ns, JsonCallback done) {
  Result<std::shared_ptr<Room>> room = impl_->room(app, room_name);
  if (!room) return done(tl::unexpected(std::move(room).error()));
  asio::post((*room)->strand, [impl = impl_.get(), room = *room, at_seq, at_time_unix_ns,
                               done = std::move(done)] {
    if (Status loaded = impl->ensure_loaded(*room); !loaded) {
      return done(tl::unexpected(std::move(loaded).error()));
    }
    if (!at_seq && !at_time_unix_ns) {
      return impl->when_settled(*room, [room, done] {
        done(Json{{"seq", room->committed_seq},
                  {"clock", room->clock},
                  {"hash", room->hash()},
                  {"state", room->state->document()},
                  {"schemaVersion", room->schema_version}});
      });
    }
    uint64_t seq = at_seq.value_or(0);
    if (at_time_unix_ns) {
      ReadStreamOptions newest;
      newest.direction = Direction::kBackward;
      newest.from_revision = kEnd;
      newest.max_count = 1;
      newest.as_of_time_unix_ns = *at_time_unix_ns;
      Result<ReadStreamResult> read = impl->store.read_stream(room->stream, newest);
      seq = read && !read->events.empty() ? read->events.front().revision + 1 : 0;
    }
    if (seq > room->committed_seq) {
      return done(make_error(ErrorCode::kNotFound,
                             fmt::format("the room has {} events", room->committed_seq)));
    }
    Result<RoomState> state = impl->state_at(*room, seq);
    if (!state) return done(tl::unexpected(std::move(state).error()));
    done(Json{{"seq", seq}, {"hash", state->state_hash()}, {"state", state->document()}});
  });
}

// ----------------------------------------------------------------------------
// Server-side submits, consistent reads and watchers (Replicache)

// Checks each stamped event like a client's (check_item), stamped with the
// room clock; what the room refuses becomes a "$refused" event.
void RoomService::Impl::stamp(Room& room, Submit& submit, std::vector<StampedEvent>& events) {
  for (StampedEvent& stamped : events) {
    VL_ASSERT(stamped.origin.is_object());
    Json event{{"id", stamped.id},
               {"action", stamped.action},
               {"payload", std::move(stamped.payload)},
               {"lamport", room.clock}};
    SubmitItem item;
    check_item(room, item, event, submit.participant);
    VL_ASSERT(item.id == stamped.id);  // REQUIRES: canonical UUIDs
    item.origin = std::move(stamped.origin);
    if (item.result.contains("error") && is_refusal_code(item.result["error"])) {
      make_refusal(item, stamped.action, item.result["error"]);
      item.lamport = room.clock;
    }
    if (item.result.is_null() && !item.duplicate_pending) room.pending_ids.insert(item.id);
    submit.items.push_back(std::move(item));
  }
}

void RoomService::submit_stamped(std::string app, std::string room_name, std::string participant,
                                 std::vector<StampedEvent> events, JsonCallback done) {
  VL_ASSERT(events.size() <= kStampedEventsMax);
  Result<std::shared_ptr<Room>> room = impl_->room(app, room_name);
  if (!room) return done(tl::unexpected(std::move(room).error()));
  if (Status checked = check_participant(participant); !checked) {
    return done(tl::unexpected(std::move(checked).error()));
  }
  asio::post((*room)->strand,
             [impl = impl_.get(), room = *room, participant = std::move(participant),
              events = std::move(events), done = std::move(done)]() mutable {
               if (Status loaded = impl->ensure_loaded(*room); !loaded) {
                 return done(tl::unexpected(std::move(loaded).error()));
               }
               Submit submit;
               submit.http_done = std::move(done);
               submit.participant = std::move(participant);
               submit.stamped = true;
               impl->stamp(*room, submit, events);
               room->queued.push_back(std::move(submit));
               if (!room->append_in_flight) impl->flush(room);
             });
}

void RoomService::read_room(std::string app, std::string room_name, ReadCallback read) {
  Result<std::shared_ptr<Room>> room = impl_->room(app, room_name);
  if (!room) return read(tl::unexpected(std::move(room).error()));
  asio::post((*room)->strand, [impl = impl_.get(), room = *room, read = std::move(read)] {
    if (Status loaded = impl->ensure_loaded(*room); !loaded) {
      return read(tl::unexpected(std::move(loaded).error()));
    }
    impl->when_settled(*room, [impl, room, read] { Impl::read_settled(*impl, *room, read); });
  });
}

// Lives on the strand for the callback only (RoomReader's contract).
void RoomService::Impl::read_settled(Impl& impl, Room& room, const ReadCallback& read) {
  {
    struct Reader final : RoomReader {
      Reader(Impl& service, Room& loaded) : impl(service), room(loaded) {}
      uint64_t seq() const override { return room.committed_seq; }
      const RoomState& state() const override { return *room.state; }
      Result<RoomState> state_at(uint64_t seq) override {
        VL_ASSERT(seq <= room.committed_seq);
        return impl.state_at(room, seq);
      }
      Status visit_origins(uint64_t after, const OriginVisitor& visit) override {
        return impl.visit_origins(room, after, visit);
      }
      Impl& impl;
      Room& room;
    } reader(impl, room);
    read(&reader);
  }
}

Result<std::shared_ptr<RoomSession>> RoomService::watch(std::string_view app,
                                                        std::string_view room_name,
                                                        std::shared_ptr<RoomPeer> peer) {
  VL_TRY(room, impl_->room(app, room_name));
  auto session = std::make_shared<RoomSession>(std::move(peer), "", /*can_write=*/false);
  session->room = room;
  session->watcher = true;
  impl_->sessions.fetch_add(1);
  asio::post(room->strand, [impl = impl_.get(), room, session] {
    if (Status loaded = impl->ensure_loaded(*room); !loaded) {
      session->send(frame_of(error_frame("internal", loaded.error().message)));
      return session->close(1011, "room unavailable");
    }
    if (room->watchers.size() >= kWatchersPerRoomMax) {
      return session->close(kCloseRoomFull, "too many watchers");
    }
    room->watchers.push_back(session);
    session->send(poke_frame(room->committed_seq));  // the cookie to pull up to, now
  });
  return session;
}

// ----------------------------------------------------------------------------
// The service

RoomService::RoomService(Store& store, ToolkitDb* snapshots, Clock& clock, RoomsConfig config)
    : impl_(std::make_unique<Impl>(store, snapshots, clock, config)) {}

RoomService::~RoomService() { stop(); }

Status RoomService::start() {
  impl_->work.emplace(impl_->io.get_executor());
  for (uint32_t i = 0; i < std::max<uint32_t>(1, impl_->config.threads); ++i) {
    impl_->threads.emplace_back([this] { impl_->io.run(); });
  }
  return ok_status();
}

void RoomService::stop() {
  std::vector<std::shared_ptr<Room>> rooms;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopped) return;
    impl_->stopped = true;
    impl_->stopping.store(true);
    for (const auto& [stream, room] : impl_->rooms) rooms.push_back(room);
  }
  // Close every session and snapshot every room on its strand, then let the
  // appends in flight finish (the store answers them) before stopping.
  for (const std::shared_ptr<Room>& room : rooms) {
    asio::post(room->strand, [impl = impl_.get(), room] {
      for (auto& [id, participant] : room->participants) {
        if (participant.leave_timer) participant.leave_timer->cancel();
        if (participant.session) participant.session->close(kCloseShutdown, "server shutdown");
      }
      room->idle_timer.cancel();
      for (Waiter& waiter : room->waiters) waiter.timer->cancel();
      for (const auto& watcher : room->watchers) watcher->close(kCloseShutdown, "server shutdown");
      room->watchers.clear();
      if (room->loaded) impl->write_snapshot(*room);
      // A session points at its room and the room at its participants'
      // sessions: break the cycle, or neither is ever freed.
      room->participants.clear();
    });
  }
  // Acknowledged or not, every append handed to the store is answered by it;
  // its callback posts to a room strand, so the io_context must outlive it.
  while (impl_->appends_in_flight.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  impl_->work.reset();
  for (std::thread& thread : impl_->threads) thread.join();
  impl_->threads.clear();
}

RoomService::Stats RoomService::stats() const {
  Stats stats;
  {
    std::lock_guard lock(impl_->mutex);
    stats.rooms_loaded = impl_->rooms.size();
  }
  stats.sessions = impl_->sessions.load();
  stats.events_committed = impl_->events_committed.load();
  stats.events_rejected = impl_->events_rejected.load();
  stats.frames_sent = impl_->frames_sent.load();
  stats.snapshots_written = impl_->snapshots_written.load();
  stats.events_refused = impl_->events_refused.load();
  return stats;
}

std::string RoomService::stream_name(std::string_view app, std::string_view room) {
  return fmt::format("room-{}.{}", app, room);
}

Status RoomService::check_names(std::string_view app, std::string_view room) {
  if (app.empty() || app.size() > 64 || !std::all_of(app.begin(), app.end(), is_app_char)) {
    return make_error(ErrorCode::kInvalidArgument, "app names are 1-64 of [a-z0-9_-]");
  }
  if (room.empty() || room.size() > 128 || !std::all_of(room.begin(), room.end(), is_room_char)) {
    return make_error(ErrorCode::kInvalidArgument, "room names are 1-128 of [A-Za-z0-9_.-]");
  }
  return ok_status();
}

}  // namespace vellum::rooms
