// SPDX-License-Identifier: Apache-2.0
// The HTTP side of rooms (docs/api/rooms.md, "Protocol"): schemas, the
// polling fallback, state reads, and the checks before a WebSocket join --
// including who may act as which participant (room tokens, API keys, or the
// loopback development mode). The room logic itself is rooms::RoomService.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "rooms/room_service.h"
#include "server/api.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/replicache_api.h"

namespace vellum::server {

class RoomsApi {
 public:
  // `development_mode`: no API keys and a loopback listener -- rooms of apps
  // without a secret accept anyone (documented as development-only).
  // `db` (may be null: no Replicache endpoints) keeps the Replicache clients.
  RoomsApi(rooms::RoomService& rooms, const ServerConfig& config, const Authenticator& auth,
           bool development_mode, ToolkitDb* db = nullptr);

  // /apps/{app}/schema, /rooms/{app}/{room}/(events|state) and
  // /replicache/{app}/{room}/(push|pull); `respond` is called exactly once,
  // maybe later on another thread.
  void handle(const HttpRequest& request, const Target& target, Respond respond);

  // GET /rooms/{app}/{room} before the upgrade: the join to make, or the
  // response to send instead.
  std::variant<rooms::JoinRequest, HttpResponse> prepare_join(const HttpRequest& request,
                                                              const Target& target);

  // GET /replicache/{app}/{room}/poke before the upgrade: the watch to make
  // (JoinRequest with watch_only), or the response to send instead.
  std::variant<rooms::JoinRequest, HttpResponse> prepare_poke(const HttpRequest& request,
                                                              const Target& target);

  // The rooms' Prometheus metrics (appended to /metrics).
  std::string metrics() const;

 private:
  struct Grant {
    bool can_write = false;
    bool any_participant = false;  // an API key: a backend acting for anyone
    std::string participant;       // the room token's, if one was given
  };
  // `participant`: who the request acts as; nullopt for reads, which any
  // participant of the room may make. Errors carry the HTTP status in `status`.
  struct Denied {
    unsigned status;
    std::string code;
    std::string message;
  };
  std::variant<Grant, Denied> authorize(const HttpRequest& request, const Target& target,
                                        std::string_view app, std::string_view room,
                                        std::optional<std::string_view> participant,
                                        bool need_write) const;
  const RoomApp* find_app(std::string_view app) const;
  void handle_replicache(const HttpRequest& request, const Target& target, Respond respond);

  rooms::RoomService& rooms_;
  const ServerConfig& config_;
  const Authenticator& auth_;
  bool development_mode_;
  std::unique_ptr<ReplicacheApi> replicache_;  // null without a toolkit database
};

}  // namespace vellum::server
