// SPDX-License-Identifier: Apache-2.0
// Replicache push and pull over a room (docs/api/replicache.md): mutations
// become room events through rooms::RoomService (the room stream's only
// writer), pulls are patches between room states, and each client's
// lastMutationID is derived from the room's log -- every mutation event
// carries its (clientGroupID, clientID, mutationID) as its origin -- and
// cached per room in the toolkit database's kv ("$replicache/<stream>",
// docs/formats/toolkit-db.md), caught up from the log on the room's strand
// before each push and pull. So a lastMutationID is never visible without its
// effects, and one lost in a crash is found again in the log.
//
// The authorization (who acts as which participant) is RoomsApi's; this class
// sees only its result. Thread safety: any thread; the work runs on the
// room's strand.
#pragma once

#include <optional>
#include <string>

#include "vellum/toolkit_db.h"

#include "rooms/room_service.h"
#include "server/api.h"
#include "server/replicache.h"

namespace vellum::server {

// The caller, as RoomsApi authorized it.
struct ReplicacheCaller {
  // The room token's participant; nullopt for an API key or the development
  // mode, which act as "rc-<clientGroupID>".
  std::optional<std::string> participant;
  bool any_participant = false;  // an API key: may use any client group
};

class ReplicacheApi {
 public:
  // `rooms` and `db` must outlive it.
  ReplicacheApi(rooms::RoomService& rooms, ToolkitDb& db);

  // POST /replicache/{app}/{room}/push and /pull; `respond` is called once.
  void push(const std::string& app, const std::string& room, const ReplicacheCaller& caller,
            const HttpRequest& request, Respond respond);
  void pull(const std::string& app, const std::string& room, const ReplicacheCaller& caller,
            const HttpRequest& request, Respond respond);

  // The kv model (ToolkitDb projection name) of a room's Replicache clients.
  static std::string model_name(const std::string& app, const std::string& room);

 private:
  struct PushWork;
  void plan_and_submit(const std::shared_ptr<PushWork>& work, rooms::RoomReader& reader);
  void finish_push(const std::shared_ptr<PushWork>& work, Result<nlohmann::json> submitted);
  Result<nlohmann::json> pull_on_strand(const std::string& model,
                                        const replicache::PullRequest& pull,
                                        const std::string& participant, bool any_participant,
                                        rooms::RoomReader& reader);
  // Brings the cached client records up to the reader's seq.
  Status catch_up(const std::string& model, rooms::RoomReader& reader);

  rooms::RoomService& rooms_;
  ToolkitDb& db_;
};

}  // namespace vellum::server
