// SPDX-License-Identifier: Apache-2.0
// ReplicacheApi (replicache_api.h). The cached client records live in the
// toolkit database's kv under the model "$replicache/<room stream>" ('$':
// never a declared projection's name), with the room seq they cover as its
// checkpoint (docs/formats/toolkit-db.md, "Replicache clients"):
//   "c" 0x00 <clientID>                  -> {"clientGroupID","lastMutationID","seq"}
//   "g" 0x00 <clientGroupID> 0x00 <clientID> -> "" (the clients of a group)
//   "o" 0x00 <clientGroupID>             -> the participant that owns the group
#include "server/replicache_api.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "rooms/reducer.h"
#include "server/replicache.h"

namespace vellum::server {

namespace {

using Json = nlohmann::json;
namespace rc = replicache;

// Clients listed per client group in one pull (a group is one browser
// profile's tabs: a handful).
constexpr uint32_t kClientsPerGroupMax = 10'000;

std::string client_key(const std::string& client_id) { return std::string("c\0", 2) + client_id; }
std::string group_prefix(const std::string& group) {
  return std::string("g\0", 2) + group + std::string("\0", 1);
}
std::string owner_key(const std::string& group) { return std::string("o\0", 2) + group; }

HttpResponse reply(unsigned status, const Json& body, unsigned version) {
  HttpResponse response{static_cast<http::status>(status), version};
  response.set(http::field::content_type, "application/json");
  response.body() = body.dump();
  response.prepare_payload();
  return response;
}

std::string acting_participant(const ReplicacheCaller& caller, const std::string& group) {
  return caller.participant ? *caller.participant : "rc-" + group;
}

}  // namespace

struct ReplicacheApi::PushWork {
  std::string app, room, model, participant;
  bool any_participant = false;
  rc::PushRequest push;
  rc::PushPlan plan;
  unsigned version = 11;
  Respond respond;
};

ReplicacheApi::ReplicacheApi(rooms::RoomService& rooms, ToolkitDb& db) : rooms_(rooms), db_(db) {}

std::string ReplicacheApi::model_name(const std::string& app, const std::string& room) {
  return "$replicache/" + rooms::RoomService::stream_name(app, room);
}

Status ReplicacheApi::catch_up(const std::string& model, rooms::RoomReader& reader) {
  VL_TRY(checkpoint, db_.checkpoint(model));
  uint64_t from = checkpoint.value_or(0);
  if (from > reader.seq()) {
    // Derived state ahead of the log (its tail was lost: durability batch or
    // none, then a power loss) is never trusted: rebuild from the log.
    spdlog::warn("{}: cached Replicache clients cover seq {}, the room has {}: rebuilding", model,
                 from, reader.seq());
    VL_RETURN_IF_ERROR(db_.kv_reset(model));
    from = 0;
  }
  if (from == reader.seq()) return ok_status();
  KvBatch batch;
  Status failed = ok_status();
  auto get = [&](const std::string& key) -> Result<std::optional<std::string>> {
    if (auto pending = batch.pending(key)) return *pending;
    return db_.kv_get(model, key);
  };
  auto visit = [&](uint64_t seq, const std::string& participant, const Json& origin_json) {
    std::optional<rc::Origin> origin = rc::parse_origin(origin_json);
    if (!failed || !origin) return;
    Result<std::optional<std::string>> stored = get(client_key(origin->client_id));
    Result<std::optional<std::string>> owner = get(owner_key(origin->client_group_id));
    if (!stored || !owner) {
      failed = tl::unexpected(!stored ? stored.error() : owner.error());
      return;
    }
    rc::ClientRecord record{origin->client_group_id, 0, 0};
    if (*stored) {
      Result<rc::ClientRecord> parsed = rc::client_record_from_json(**stored);
      if (!parsed) {
        failed = tl::unexpected(std::move(parsed).error());
        return;
      }
      record = std::move(*parsed);
    }
    if (origin->mutation_id > record.last_mutation_id) {
      record.last_mutation_id = origin->mutation_id;
      record.changed_seq = seq;
    }
    batch.put(client_key(origin->client_id), rc::client_record_to_json(record).dump());
    batch.put(group_prefix(record.client_group_id) + origin->client_id, "");
    if (!*owner) batch.put(owner_key(origin->client_group_id), participant);
  };
  VL_RETURN_IF_ERROR(reader.visit_origins(from, visit));
  VL_RETURN_IF_ERROR(failed);
  return db_.commit_kv(model, batch, reader.seq());
}

// ---- Push ----

void ReplicacheApi::push(const std::string& app, const std::string& room,
                         const ReplicacheCaller& caller, const HttpRequest& request,
                         Respond respond) {
  const unsigned version = request.version();
  const Json body = Json::parse(request.body(), nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return respond(json_error(400, "invalid_json", "not JSON", version));
  if (std::optional<Json> unsupported = rc::unsupported_version(body, "push")) {
    return respond(reply(200, *unsupported, version));
  }
  Result<rc::PushRequest> parsed = rc::parse_push(body);
  if (!parsed) return respond(error_response(parsed.error(), version));
  auto work = std::make_shared<PushWork>();
  work->app = app;
  work->room = room;
  work->model = model_name(app, room);
  work->participant = acting_participant(caller, parsed->client_group_id);
  work->any_participant = caller.any_participant;
  work->push = std::move(*parsed);
  work->version = version;
  work->respond = std::move(respond);
  rooms_.read_room(app, room, [this, work](Result<rooms::RoomReader*> reader) {
    if (!reader) return work->respond(error_response(reader.error(), work->version));
    plan_and_submit(work, **reader);
  });
}

// On the room's strand: the records are caught up with the log, so the
// mutation-id rules see every mutation committed so far.
void ReplicacheApi::plan_and_submit(const std::shared_ptr<PushWork>& work,
                                    rooms::RoomReader& reader) {
  auto fail = [&](const Error& error) { work->respond(error_response(error, work->version)); };
  if (Status caught_up = catch_up(work->model, reader); !caught_up) return fail(caught_up.error());
  Result<std::optional<std::string>> owner =
      db_.kv_get(work->model, owner_key(work->push.client_group_id));
  if (!owner) return fail(owner.error());
  if (*owner && **owner != work->participant && !work->any_participant) {
    return work->respond(json_error(
        403, "forbidden", "this client group belongs to another participant", work->version));
  }
  Status lookup_failed = ok_status();
  auto lookup = [&](const std::string& client_id) -> std::optional<rc::ClientRecord> {
    Result<std::optional<std::string>> stored = db_.kv_get(work->model, client_key(client_id));
    Result<rc::ClientRecord> record =
        stored && *stored ? rc::client_record_from_json(**stored)
                          : Result<rc::ClientRecord>(make_error(ErrorCode::kNotFound, ""));
    if (!stored || (!record && record.error().code != ErrorCode::kNotFound)) {
      lookup_failed = tl::unexpected(!stored ? stored.error() : record.error());
    }
    return record ? std::optional<rc::ClientRecord>(*record) : std::nullopt;
  };
  Result<rc::PushPlan> plan = rc::plan_push(work->push, lookup, rooms::kStampedEventsMax);
  if (!lookup_failed) return fail(lookup_failed.error());
  if (!plan) {
    return work->respond(
        json_error(409, "client_group_mismatch", plan.error().message, work->version));
  }
  work->plan = std::move(*plan);
  if (work->plan.apply.empty()) return finish_push(work, Json::object());
  std::vector<rooms::StampedEvent> events;
  for (size_t index : work->plan.apply) {
    const rc::Mutation& mutation = work->push.mutations[index];
    events.push_back(rooms::StampedEvent{
        rc::mutation_event_id(work->app, work->room, mutation.client_id, mutation.id).to_string(),
        mutation.name, mutation.args.is_null() ? Json::object() : mutation.args,
        rc::mutation_origin(work->push.client_group_id, mutation)});
  }
  rooms_.submit_stamped(work->app, work->room, work->participant, std::move(events),
                        [this, work](Result<Json> submitted) { finish_push(work, submitted); });
}

void ReplicacheApi::finish_push(const std::shared_ptr<PushWork>& work, Result<Json> submitted) {
  if (!submitted) return work->respond(error_response(submitted.error(), work->version));
  for (const Json& result : submitted->value("results", Json::array())) {
    if (result.contains("error")) {
      // Not committed (the append failed, the server is stopping): the client
      // pushes again, and what did commit is answered from the log.
      const Json& error = result["error"];
      return work->respond(json_error(
          503, "unavailable", fmt::format("retry: {}", error.value("message", "")), work->version));
    }
    if (result.contains("refused")) {
      spdlog::info("replicache {}/{}: mutation event {} refused: {}", work->app, work->room,
                   result.value("id", ""), result["refused"].dump());
    }
  }
  if (work->plan.gap) {
    const rc::Mutation& mutation = work->push.mutations[*work->plan.gap];
    return work->respond(json_error(
        409, "mutation_gap",
        fmt::format("mutation {} of client {}: expected {} (mutations are applied in order; "
                    "push again from there)",
                    mutation.id, mutation.client_id, work->plan.gap_expected),
        work->version));
  }
  work->respond(reply(200, Json::object(), work->version));
}

// ---- Pull ----

void ReplicacheApi::pull(const std::string& app, const std::string& room,
                         const ReplicacheCaller& caller, const HttpRequest& request,
                         Respond respond) {
  const unsigned version = request.version();
  const Json body = Json::parse(request.body(), nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return respond(json_error(400, "invalid_json", "not JSON", version));
  if (std::optional<Json> unsupported = rc::unsupported_version(body, "pull")) {
    return respond(reply(200, *unsupported, version));
  }
  Result<rc::PullRequest> parsed = rc::parse_pull(body);
  if (!parsed) return respond(error_response(parsed.error(), version));
  const std::string participant = acting_participant(caller, parsed->client_group_id);
  rooms_.read_room(app, room,
                   [this, model = model_name(app, room), pull = std::move(*parsed), participant,
                    any = caller.any_participant, version,
                    respond = std::move(respond)](Result<rooms::RoomReader*> reader) {
                     if (!reader) return respond(error_response(reader.error(), version));
                     Result<Json> answer = pull_on_strand(model, pull, participant, any, **reader);
                     if (!answer) return respond(error_response(answer.error(), version));
                     if (answer->contains("status")) {  // an HTTP error of our own
                       return respond(json_error(answer->at("status").get<unsigned>(),
                                                 answer->value("error", ""),
                                                 answer->value("message", ""), version));
                     }
                     respond(reply(200, *answer, version));
                   });
}

// The patch from the state at the client's cookie to the current one, and
// the lastMutationIDs that changed after the cookie: one strand, one state.
Result<Json> ReplicacheApi::pull_on_strand(const std::string& model, const rc::PullRequest& pull,
                                           const std::string& participant, bool any_participant,
                                           rooms::RoomReader& reader) {
  VL_RETURN_IF_ERROR(catch_up(model, reader));
  if (pull.foreign_cookie || (pull.cookie && *pull.cookie > reader.seq())) {
    // A cookie this room never issued (another server, a deleted room): the
    // client discards its state and starts again from a full pull.
    return Json{{"error", "ClientStateNotFound"}};
  }
  VL_TRY(owner, db_.kv_get(model, owner_key(pull.client_group_id)));
  if (owner && *owner != participant && !any_participant) {
    return Json{{"status", 403},
                {"error", "forbidden"},
                {"message", "this client group belongs to another participant"}};
  }
  const std::map<std::string, Json> after = reader.state().slot_values();
  Json operations = Json::array();
  if (!pull.cookie) {
    operations = rc::patch(nullptr, after);
  } else if (*pull.cookie < reader.seq()) {
    VL_TRY(before, reader.state_at(*pull.cookie));
    const std::map<std::string, Json> before_values = before.slot_values();
    operations = rc::patch(&before_values, after);
  }
  Json changes = Json::object();
  Status failed = ok_status();
  VL_RETURN_IF_ERROR(db_.kv_scan(
      model, group_prefix(pull.client_group_id), "", kClientsPerGroupMax,
      [&](std::string_view key, std::string_view) {
        const std::string client_id(key.substr(group_prefix(pull.client_group_id).size()));
        Result<std::optional<std::string>> stored = db_.kv_get(model, client_key(client_id));
        Result<rc::ClientRecord> record =
            stored && *stored ? rc::client_record_from_json(**stored)
                              : Result<rc::ClientRecord>(make_error(
                                    ErrorCode::kDataLoss, "a client of the group has no record"));
        if (!record) {
          failed = tl::unexpected(!stored ? stored.error() : record.error());
          return false;
        }
        if (!pull.cookie || record->changed_seq > *pull.cookie) {
          changes[client_id] = record->last_mutation_id;
        }
        return true;
      }));
  VL_RETURN_IF_ERROR(failed);
  return Json{{"cookie", reader.seq()}, {"lastMutationIDChanges", changes}, {"patch", operations}};
}

}  // namespace vellum::server
