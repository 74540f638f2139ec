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

namespace vellum::server {

class RoomsApi {
 public:
  // `development_mode`: no API keys and a loopback listener -- rooms of apps
  // without a secret accept anyone (documented as development-only).
  RoomsApi(rooms::RoomService& rooms, const ServerConfig& config, const Authenticator& auth,
           bool development_mode);

  // /apps/{app}/schema and /rooms/{app}/{room}/(events|state); `respond` is
  // called exactly once, maybe later on another thread.
  void handle(const HttpRequest& request, const Target& target, Respond respond);

  // GET /rooms/{app}/{room} before the upgrade: the join to make, or the
  // response to send instead.
  std::variant<rooms::JoinRequest, HttpResponse> prepare_join(const HttpRequest& request,
                                                              const Target& target);

  // The rooms' Prometheus metrics (appended to /metrics).
  std::string metrics() const;

 private:
  struct Grant {
    bool can_write = false;
    bool any_participant = false;  // an API key: a backend acting for anyone
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

  rooms::RoomService& rooms_;
  const ServerConfig& config_;
  const Authenticator& auth_;
  bool development_mode_;
};

}  // namespace vellum::server
