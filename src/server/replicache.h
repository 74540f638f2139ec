// SPDX-License-Identifier: Apache-2.0
// The Replicache push/pull protocol (version 1), the parts that need no
// sockets, store or room: request parsing, the mutation-id rules (which
// mutations of a push to apply, skip, or stop at), the patch between two
// room states, deterministic event ids, and the per-client records kept in
// the toolkit database. The endpoints are ReplicacheApi (replicache_api.h);
// users' documentation: docs/api/replicache.md.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "vellum/result.h"
#include "vellum/uuid.h"

namespace vellum::server::replicache {

// Client and client group ids: 1..kIdBytesMax printable ASCII characters.
inline constexpr size_t kIdBytesMax = 256;

struct Mutation {
  std::string client_id;
  uint64_t id = 0;  // per client, dense from 1
  std::string name;
  nlohmann::json args;
};

struct PushRequest {
  std::string client_group_id;
  std::vector<Mutation> mutations;
};

struct PullRequest {
  std::string client_group_id;
  // The cookie the client holds: nullopt for null (first pull). A cookie this
  // server cannot have issued (not a non-negative integer) is `foreign`.
  std::optional<uint64_t> cookie;
  bool foreign_cookie = false;
};

// {"error":"VersionNotSupported","versionType":kind} when `body` is not of
// version 1 of `kind` ("push": pushVersion, "pull": pullVersion); nullopt
// when it is.
std::optional<nlohmann::json> unsupported_version(const nlohmann::json& body,
                                                  std::string_view kind);
// Errors: kInvalidArgument naming the first bad member.
Result<PushRequest> parse_push(const nlohmann::json& body);
Result<PullRequest> parse_pull(const nlohmann::json& body);

// What the server knows of one client: derived from the room's log (the
// origins of its mutation events), cached in the toolkit database.
struct ClientRecord {
  std::string client_group_id;
  uint64_t last_mutation_id = 0;
  uint64_t changed_seq = 0;  // the room seq of the event that set last_mutation_id
};
nlohmann::json client_record_to_json(const ClientRecord& record);
// Errors: kDataLoss for a value that is not a record.
Result<ClientRecord> client_record_from_json(std::string_view text);

// Which mutations of a push to submit, in order (indexes into mutations).
struct PushPlan {
  std::vector<size_t> apply;
  // The first mutation after a gap (id > last + 1), if any: nothing from it
  // on is applied, and the push is answered with an error so that the client
  // sends again, in order.
  std::optional<size_t> gap;
  uint64_t gap_expected = 0;  // the id the server expected there
};
// A client's record, if the server has one.
using ClientLookup = std::function<std::optional<ClientRecord>(const std::string& client_id)>;
// The rules: ids <= the client's lastMutationID are done (skipped); the
// next one is applied; a larger one is a gap. At most `max_apply` are
// planned (the rest wait for the next push). Errors: kFailedPrecondition
// when a client belongs to another client group.
Result<PushPlan> plan_push(const PushRequest& push, const ClientLookup& lookup, size_t max_apply);

// The Replicache patch that turns `before` into `after` (both: slot pointer
// -> value, RoomState::slot_values): "put" for new or changed keys, "del"
// for removed ones. With no `before` (a first pull): "clear", then a put of
// every key.
nlohmann::json patch(const std::map<std::string, nlohmann::json>* before,
                     const std::map<std::string, nlohmann::json>& after);

// The room event id of a mutation: a UUIDv8 from the SHA-256 of app, room,
// client id and mutation id, so a replayed push finds its events in the log.
Uuid mutation_event_id(std::string_view app, std::string_view room, std::string_view client_id,
                       uint64_t mutation_id);

// The origin stored with a mutation's room event (rooms::StampedEvent).
nlohmann::json mutation_origin(const std::string& client_group_id, const Mutation& mutation);
struct Origin {
  std::string client_group_id;
  std::string client_id;
  uint64_t mutation_id = 0;
};
// nullopt for origins of other kinds.
std::optional<Origin> parse_origin(const nlohmann::json& origin);

}  // namespace vellum::server::replicache
