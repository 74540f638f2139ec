// SPDX-License-Identifier: Apache-2.0
// The Replicache protocol's pure parts (replicache.h).
#include "server/replicache.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/sha256.h"
#include "base/uuid_v8.h"

namespace vellum::server::replicache {

namespace {

using Json = nlohmann::json;

tl::unexpected<Error> invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

// A non-negative integer, whichever way nlohmann stores it (parsed text
// gives unsigned, literals in code give signed).
std::optional<uint64_t> as_count(const Json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(value.get<int64_t>());
  }
  return std::nullopt;
}

bool valid_id(const Json& value) {
  if (!value.is_string()) return false;
  const auto& text = value.get_ref<const std::string&>();
  return !text.empty() && text.size() <= kIdBytesMax &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
}

Result<Mutation> parse_mutation(const Json& json, size_t index) {
  const std::string where = fmt::format("mutations[{}]", index);
  if (!json.is_object()) return invalid(where + " is not an object");
  Mutation mutation;
  if (!valid_id(json.value("clientID", Json()))) {
    return invalid(fmt::format("{}.clientID: 1-{} printable ASCII characters", where, kIdBytesMax));
  }
  mutation.client_id = json["clientID"].get<std::string>();
  const std::optional<uint64_t> id = as_count(json.value("id", Json()));
  if (!id || *id == 0) return invalid(where + ".id: a positive integer");
  mutation.id = *id;
  const Json name = json.value("name", Json());
  if (!name.is_string() || name.get_ref<const std::string&>().empty()) {
    return invalid(where + ".name: a non-empty string");
  }
  mutation.name = name.get<std::string>();
  mutation.args = json.value("args", Json());
  return mutation;
}

}  // namespace

std::optional<Json> unsupported_version(const Json& body, std::string_view kind) {
  const std::string member = std::string(kind) + "Version";
  const Json version = body.is_object() ? body.value(member, Json()) : Json();
  if (as_count(version) == uint64_t{1}) return std::nullopt;
  return Json{{"error", "VersionNotSupported"}, {"versionType", kind}};
}

Result<PushRequest> parse_push(const Json& body) {
  if (!body.is_object()) return invalid("the body is a JSON object");
  PushRequest push;
  if (!valid_id(body.value("clientGroupID", Json()))) {
    return invalid(fmt::format("clientGroupID: 1-{} printable ASCII characters", kIdBytesMax));
  }
  push.client_group_id = body["clientGroupID"].get<std::string>();
  const Json mutations = body.value("mutations", Json());
  if (!mutations.is_array()) return invalid("mutations: an array");
  for (size_t i = 0; i < mutations.size(); ++i) {
    VL_TRY(mutation, parse_mutation(mutations[i], i));
    push.mutations.push_back(std::move(mutation));
  }
  return push;
}

Result<PullRequest> parse_pull(const Json& body) {
  if (!body.is_object()) return invalid("the body is a JSON object");
  PullRequest pull;
  if (!valid_id(body.value("clientGroupID", Json()))) {
    return invalid(fmt::format("clientGroupID: 1-{} printable ASCII characters", kIdBytesMax));
  }
  pull.client_group_id = body["clientGroupID"].get<std::string>();
  const Json cookie = body.value("cookie", Json());
  if (std::optional<uint64_t> number = as_count(cookie)) {
    pull.cookie = *number;
  } else if (!cookie.is_null()) {
    pull.foreign_cookie = true;  // not ours: a string, an object, a negative number
  }
  return pull;
}

Json client_record_to_json(const ClientRecord& record) {
  return Json{{"clientGroupID", record.client_group_id},
              {"lastMutationID", record.last_mutation_id},
              {"seq", record.changed_seq}};
}

Result<ClientRecord> client_record_from_json(std::string_view text) {
  const Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.value("clientGroupID", Json()).is_string() ||
      !json.value("lastMutationID", Json()).is_number_unsigned() ||
      !json.value("seq", Json()).is_number_unsigned()) {
    return make_error(ErrorCode::kDataLoss, "a Replicache client record is malformed");
  }
  return ClientRecord{json["clientGroupID"].get<std::string>(),
                      json["lastMutationID"].get<uint64_t>(), json["seq"].get<uint64_t>()};
}

Result<PushPlan> plan_push(const PushRequest& push, const ClientLookup& lookup, size_t max_apply) {
  PushPlan plan;
  std::map<std::string, uint64_t> last;  // client -> its lastMutationID as planned so far
  for (size_t i = 0; i < push.mutations.size(); ++i) {
    const Mutation& mutation = push.mutations[i];
    auto known = last.find(mutation.client_id);
    if (known == last.end()) {
      std::optional<ClientRecord> record = lookup(mutation.client_id);
      if (record && record->client_group_id != push.client_group_id) {
        return make_error(
            ErrorCode::kFailedPrecondition,
            fmt::format("client {} belongs to another client group", mutation.client_id));
      }
      known = last.emplace(mutation.client_id, record ? record->last_mutation_id : 0).first;
    }
    if (mutation.id <= known->second) continue;  // already processed
    if (mutation.id > known->second + 1 || plan.apply.size() >= max_apply) {
      if (plan.apply.size() < max_apply) {
        plan.gap = i;
        plan.gap_expected = known->second + 1;
      }
      break;  // in order or not at all: everything after waits
    }
    known->second = mutation.id;
    plan.apply.push_back(i);
  }
  return plan;
}

Json patch(const std::map<std::string, Json>* before, const std::map<std::string, Json>& after) {
  Json operations = Json::array();
  if (before == nullptr) {
    operations.push_back(Json{{"op", "clear"}});
    for (const auto& [key, value] : after) {
      operations.push_back(Json{{"op", "put"}, {"key", key}, {"value", value}});
    }
    return operations;
  }
  // Both maps are sorted by key: one merge pass.
  auto old_it = before->begin();
  auto new_it = after.begin();
  while (old_it != before->end() || new_it != after.end()) {
    if (new_it == after.end() || (old_it != before->end() && old_it->first < new_it->first)) {
      operations.push_back(Json{{"op", "del"}, {"key", old_it->first}});
      ++old_it;
    } else if (old_it == before->end() || new_it->first < old_it->first) {
      operations.push_back(Json{{"op", "put"}, {"key", new_it->first}, {"value", new_it->second}});
      ++new_it;
    } else {
      if (old_it->second != new_it->second) {
        operations.push_back(
            Json{{"op", "put"}, {"key", new_it->first}, {"value", new_it->second}});
      }
      ++old_it;
      ++new_it;
    }
  }
  return operations;
}

Uuid mutation_event_id(std::string_view app, std::string_view room, std::string_view client_id,
                       uint64_t mutation_id) {
  Sha256 hash;
  hash.update("vellum.replicache-mutation-id");
  const uint32_t sizes[3] = {static_cast<uint32_t>(app.size()), static_cast<uint32_t>(room.size()),
                             static_cast<uint32_t>(client_id.size())};
  hash.update(sizes, sizeof(sizes));  // lengths first: no ambiguity between fields
  hash.update(app);
  hash.update(room);
  hash.update(client_id);
  hash.update(&mutation_id, sizeof(mutation_id));
  return uuid_v8_from_digest(hash.finish());
}

Json mutation_origin(const std::string& client_group_id, const Mutation& mutation) {
  return Json{{"replicache",
               {{"clientGroupID", client_group_id},
                {"clientID", mutation.client_id},
                {"mutationID", mutation.id}}}};
}

std::optional<Origin> parse_origin(const Json& origin) {
  if (!origin.is_object() || !origin.contains("replicache")) return std::nullopt;
  const Json& fields = origin["replicache"];
  if (!fields.is_object() || !fields.value("clientGroupID", Json()).is_string() ||
      !fields.value("clientID", Json()).is_string() ||
      !fields.value("mutationID", Json()).is_number_unsigned()) {
    return std::nullopt;
  }
  return Origin{fields["clientGroupID"].get<std::string>(), fields["clientID"].get<std::string>(),
                fields["mutationID"].get<uint64_t>()};
}

}  // namespace vellum::server::replicache
