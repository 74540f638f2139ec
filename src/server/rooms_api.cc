// SPDX-License-Identifier: Apache-2.0
#include "server/rooms_api.h"

#include <charconv>

#include <fmt/format.h>

#include "base/clock.h"
#include "rooms/room_token.h"
#include "wire/codec.h"

namespace vellum::server {

namespace {

using Json = nlohmann::json;

HttpResponse json_reply(unsigned status, const Json& body, unsigned version) {
  HttpResponse response{static_cast<http::status>(status), version};
  response.set(http::field::content_type, "application/json");
  response.body() = body.dump();
  response.prepare_payload();
  return response;
}

std::optional<uint64_t> parse_number(const std::string& text) {
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

std::string query(const Target& target, const char* name) {
  auto found = target.query.find(name);
  return found == target.query.end() ? std::string() : found->second;
}

// A non-negative integer query parameter, `absent` when not given; nullopt
// when malformed.
std::optional<uint64_t> query_number(const Target& target, const char* name, uint64_t absent) {
  std::string text = query(target, name);
  return text.empty() ? std::optional<uint64_t>(absent) : parse_number(text);
}

// A room token from ?token= (browsers cannot set WebSocket headers) or the
// X-Room-Token header; on /replicache/ also "Authorization: Bearer v1...",
// since a Replicache client sends its `auth` option as that header.
std::string room_token(const HttpRequest& request, const Target& target) {
  std::string token = query(target, "token");
  if (token.empty()) token = std::string(request["X-Room-Token"]);
  constexpr std::string_view kBearer = "Bearer ";
  const std::string_view authorization = request[http::field::authorization];
  if (token.empty() && target.segments[0] == "replicache" && authorization.starts_with(kBearer) &&
      authorization.substr(kBearer.size()).starts_with("v1.")) {
    token = std::string(authorization.substr(kBearer.size()));
  }
  return token;
}

}  // namespace

RoomsApi::RoomsApi(rooms::RoomService& rooms, const ServerConfig& config, const Authenticator& auth,
                   bool development_mode, ToolkitDb* db)
    : rooms_(rooms), config_(config), auth_(auth), development_mode_(development_mode) {
  if (db != nullptr) replicache_ = std::make_unique<ReplicacheApi>(rooms, *db);
}

const RoomApp* RoomsApi::find_app(std::string_view app) const {
  for (const RoomApp& configured : config_.room_apps) {
    if (configured.app == app) return &configured;
  }
  return nullptr;
}

// In order: a room token (apps with a secret), an API key (a backend acting
// for any participant), the development mode; otherwise refused.
std::variant<RoomsApi::Grant, RoomsApi::Denied> RoomsApi::authorize(
    const HttpRequest& request, const Target& target, std::string_view app, std::string_view room,
    std::optional<std::string_view> participant, bool need_write) const {
  const RoomApp* configured = find_app(app);
  const std::string token = room_token(request, target);
  if (!token.empty()) {
    if (configured == nullptr) {
      return Denied{401, "token_unexpected",
                    fmt::format("app '{}' has no secret configured ([[room_apps]]): its rooms "
                                "take no tokens",
                                app)};
    }
    const int64_t now = system_clock()->now_unix_ns() / 1'000'000'000;
    Result<rooms::RoomClaims> claims =
        rooms::verify_room_token(token, configured->secret, app, room, now);
    Status allowed =
        claims && participant ? rooms::check_token_participant(*claims, *participant) : Status();
    if (claims && allowed && need_write) allowed = rooms::require_write(*claims);
    const Error* error = !claims ? &claims.error() : !allowed ? &allowed.error() : nullptr;
    if (error != nullptr) {
      rooms::TokenProblem problem = rooms::token_problem(*error);
      const bool scope = problem == rooms::TokenProblem::kOutOfScope;
      std::string code(rooms::token_problem_code(problem));
      return Denied{scope ? 403u : 401u, code.empty() ? "unauthenticated" : code, error->message};
    }
    return Grant{claims->rights == rooms::RoomRights::kReadWrite, false, claims->participant};
  }
  if (auth_.enabled()) {
    const ApiKey* key = auth_.authenticate(request[http::field::authorization]);
    const std::string prefix = rooms::RoomService::stream_name(app, "");
    const Access access = need_write ? Access::kWrite : Access::kRead;
    if (key != nullptr && auth_.allows_prefix(key, access, prefix)) {
      return Grant{auth_.allows_prefix(key, Access::kWrite, prefix), true};
    }
  }
  if (configured != nullptr) {
    return Denied{
        401, "token_missing",
        fmt::format("rooms of app '{}' need a room token (?token= or X-Room-Token)", app)};
  }
  if (development_mode_) return Grant{true, false};
  return Denied{401, "unauthenticated",
                fmt::format("rooms of app '{}' need a room token: configure [[room_apps]] with "
                            "a secret, or use an API key",
                            app)};
}

void RoomsApi::handle(const HttpRequest& request, const Target& target, Respond respond) {
  const auto& segments = target.segments;
  const unsigned version = request.version();
  const http::verb method = request.method();
  auto deny = [&](const Denied& denied) {
    respond(json_error(denied.status, denied.code, denied.message, version));
  };
  auto answer = [respond, version](Result<Json> result) {
    if (!result) return respond(error_response(result.error(), version));
    respond(json_reply(200, *result, version));
  };
  if (segments[0] == "replicache") return handle_replicache(request, target, std::move(respond));
  if (segments[0] == "apps") {
    if (segments.size() != 3 || segments[2] != "schema") {
      return respond(json_error(404, "not_found", "no such endpoint", version));
    }
    const std::string& app = segments[1];
    if (method == http::verb::get) return answer(rooms_.get_schema(app));
    if (method != http::verb::put) {
      return respond(json_error(405, "method_not_allowed", "GET or PUT", version));
    }
    if (auth_.enabled()) {
      const ApiKey* key = auth_.authenticate(request[http::field::authorization]);
      if (key == nullptr || !auth_.allows_prefix(key, Access::kAdmin, "")) {
        return respond(
            json_error(403, "forbidden", "setting a schema needs an admin key", version));
      }
    }
    Json schema = Json::parse(request.body(), nullptr, /*allow_exceptions=*/false);
    if (schema.is_discarded()) {
      return respond(json_error(400, "invalid_json", "the body is not JSON", version));
    }
    Result<uint64_t> stored = rooms_.put_schema(app, schema);
    if (!stored) return respond(error_response(stored.error(), version));
    return respond(json_reply(200, Json{{"app", app}, {"version", *stored}}, version));
  }
  // /rooms/{app}/{room}/(events|state)
  if (segments.size() != 4 || (segments[3] != "events" && segments[3] != "state")) {
    return respond(json_error(404, "not_found",
                              "room endpoints: /rooms/{app}/{room} (WebSocket), "
                              "/rooms/{app}/{room}/events, /rooms/{app}/{room}/state",
                              version));
  }
  const std::string& app = segments[1];
  const std::string& room = segments[2];
  if (Status names = rooms::RoomService::check_names(app, room); !names) {
    return respond(error_response(names.error(), version));
  }
  if (segments[3] == "events" && method == http::verb::post) {
    Json body = Json::parse(request.body(), nullptr, /*allow_exceptions=*/false);
    if (!body.is_object() || !body.contains("participant") || !body["participant"].is_string()) {
      return respond(json_error(400, "invalid_argument",
                                "the body is {\"participant\": ..., \"events\": [...]}", version));
    }
    auto grant = authorize(request, target, app, room, body["participant"].get<std::string>(),
                           /*need_write=*/true);
    if (auto* denied = std::get_if<Denied>(&grant)) return deny(*denied);
    return rooms_.submit(app, room, std::move(body), std::get<Grant>(grant).can_write, answer);
  }
  if (method != http::verb::get) {
    return respond(json_error(405, "method_not_allowed", "see docs/api/rooms.md", version));
  }
  // Reads: a token for any participant of the room will do.
  auto grant = authorize(request, target, app, room, std::nullopt, /*need_write=*/false);
  if (auto* denied = std::get_if<Denied>(&grant)) return deny(*denied);
  if (segments[3] == "events") {
    std::optional<uint64_t> after = query_number(target, "after", 0);
    std::optional<uint64_t> limit = query_number(target, "limit", 100);
    std::optional<uint64_t> wait = query_number(target, "waitMs", 0);
    if (!after || !limit || !wait || *wait > config_.max_wait_ms) {
      return respond(
          json_error(400, "invalid_argument",
                     fmt::format("after, limit and waitMs (<= {}) are non-negative integers",
                                 config_.max_wait_ms),
                     version));
    }
    return rooms_.read_events(app, room, *after, static_cast<uint32_t>(*limit),
                              std::chrono::milliseconds(*wait), answer);
  }
  std::optional<uint64_t> at_seq;
  std::optional<int64_t> at_time;
  if (std::string at = query(target, "at"); !at.empty()) {
    at_seq = parse_number(at);
    if (!at_seq) at_time = wire::parse_rfc3339(at);
    if (!at_seq && !at_time) {
      return respond(json_error(400, "invalid_argument",
                                "at is a sequence number or an RFC 3339 time", version));
    }
  }
  rooms_.state(app, room, at_seq, at_time, answer);
}

std::variant<rooms::JoinRequest, HttpResponse> RoomsApi::prepare_join(const HttpRequest& request,
                                                                      const Target& target) {
  const unsigned version = request.version();
  rooms::JoinRequest join;
  join.app = target.segments[1];
  join.room = target.segments[2];
  join.participant = query(target, "participant");
  join.name = query(target, "name");
  if (Status names = rooms::RoomService::check_names(join.app, join.room); !names) {
    return error_response(names.error(), version);
  }
  if (Result<Json> schema = rooms_.get_schema(join.app); !schema) {
    return error_response(schema.error(), version);  // 404: the app has no schema
  }
  if (join.participant.empty()) {
    return json_error(400, "invalid_argument", "?participant= is required", version);
  }
  if (std::string last = query(target, "lastSeq"); !last.empty()) {
    join.last_seq = parse_number(last);
    if (!join.last_seq) {
      return json_error(400, "invalid_argument", "lastSeq is a non-negative integer", version);
    }
  }
  auto grant = authorize(request, target, join.app, join.room, join.participant, false);
  if (auto* denied = std::get_if<Denied>(&grant)) {
    return json_error(denied->status, denied->code, denied->message, version);
  }
  join.can_write = std::get<Grant>(grant).can_write;
  return join;
}

// POST /replicache/{app}/{room}/(push|pull) (docs/api/replicache.md).
void RoomsApi::handle_replicache(const HttpRequest& request, const Target& target,
                                 Respond respond) {
  const auto& segments = target.segments;
  const unsigned version = request.version();
  if (segments.size() != 4 || (segments[3] != "push" && segments[3] != "pull")) {
    return respond(json_error(404, "not_found",
                              "Replicache endpoints: POST /replicache/{app}/{room}/push and "
                              "/pull, WebSocket /replicache/{app}/{room}/poke",
                              version));
  }
  if (replicache_ == nullptr) {
    return respond(
        json_error(404, "not_found", "this server has no Replicache endpoints", version));
  }
  if (request.method() != http::verb::post) {
    return respond(json_error(405, "method_not_allowed", "POST", version));
  }
  const std::string& app = segments[1];
  const std::string& room = segments[2];
  if (Status names = rooms::RoomService::check_names(app, room); !names) {
    return respond(error_response(names.error(), version));
  }
  const RoomApp* configured = find_app(app);
  if (configured != nullptr && !configured->signing_key.empty()) {
    return respond(json_error(403, "forbidden",
                              fmt::format("app '{}' requires signed events, which Replicache "
                                          "mutations cannot carry",
                                          app),
                              version));
  }
  const bool push = segments[3] == "push";
  // The participant is the token's: a push acts as it, so it needs write rights.
  auto grant = authorize(request, target, app, room, std::nullopt, /*need_write=*/push);
  if (auto* denied = std::get_if<Denied>(&grant)) {
    return respond(json_error(denied->status, denied->code, denied->message, version));
  }
  const Grant& granted = std::get<Grant>(grant);
  if (push && !granted.can_write) {
    return respond(json_error(403, "forbidden", "the token allows reading only", version));
  }
  ReplicacheCaller caller;
  if (!granted.participant.empty()) caller.participant = granted.participant;
  caller.any_participant = granted.any_participant;
  if (push) return replicache_->push(app, room, caller, request, std::move(respond));
  replicache_->pull(app, room, caller, request, std::move(respond));
}

std::variant<rooms::JoinRequest, HttpResponse> RoomsApi::prepare_poke(const HttpRequest& request,
                                                                      const Target& target) {
  const unsigned version = request.version();
  rooms::JoinRequest watch;
  watch.app = target.segments[1];
  watch.room = target.segments[2];
  watch.watch_only = true;
  watch.can_write = false;
  if (Status names = rooms::RoomService::check_names(watch.app, watch.room); !names) {
    return error_response(names.error(), version);
  }
  if (Result<Json> schema = rooms_.get_schema(watch.app); !schema) {
    return error_response(schema.error(), version);  // 404: the app has no schema
  }
  auto grant = authorize(request, target, watch.app, watch.room, std::nullopt, false);
  if (auto* denied = std::get_if<Denied>(&grant)) {
    return json_error(denied->status, denied->code, denied->message, version);
  }
  return watch;
}

std::string RoomsApi::metrics() const {
  const rooms::RoomService::Stats stats = rooms_.stats();
  std::string text;
  auto metric = [&](const char* name, const char* type, const char* help, uint64_t value) {
    text += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
  };
  metric("vellum_rooms_loaded", "gauge", "Rooms held in memory.", stats.rooms_loaded);
  metric("vellum_room_sessions", "gauge", "Open room connections.", stats.sessions);
  metric("vellum_room_events_committed_total", "counter", "Room events committed.",
         stats.events_committed);
  metric("vellum_room_events_rejected_total", "counter", "Submitted room events rejected.",
         stats.events_rejected);
  metric("vellum_room_frames_sent_total", "counter", "Frames broadcast to room participants.",
         stats.frames_sent);
  metric("vellum_room_snapshots_written_total", "counter", "Room state snapshots written.",
         stats.snapshots_written);
  metric("vellum_room_events_refused_total", "counter",
         "Server-submitted room events (Replicache mutations) the room refused, recorded as "
         "$refused.",
         stats.events_refused);
  return text;
}

}  // namespace vellum::server
