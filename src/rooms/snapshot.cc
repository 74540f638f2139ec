// SPDX-License-Identifier: Apache-2.0
// The JSON forms of the reducer's types (reducer.h): room events, outcomes, and snapshots of
// RoomState (format: docs/api/rooms.md, "Snapshots"). A snapshot is read back with every field
// checked, because it comes from storage or from the network: bad input is an error, never an
// assertion.
#include <charconv>
#include <utility>

#include <fmt/format.h>

#include "base/assert.h"
#include "rooms/reducer.h"

namespace vellum::rooms {
namespace {

using Json = nlohmann::json;

tl::unexpected<Error> invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

// Reads the members of one JSON object, naming it in every error.
class Fields {
 public:
  Fields(const Json& object, std::string where) : object_(object), where_(std::move(where)) {}

  Status check_object() const {
    if (!object_.is_object()) return invalid(where_ + ": must be an object");
    return ok_status();
  }
  Result<const Json*> member(const char* name) const {
    auto found = object_.find(name);
    if (found == object_.end()) return invalid(fmt::format("{}: \"{}\" is missing", where_, name));
    return &*found;
  }
  Result<uint64_t> safe_unsigned(const char* name) const {
    VL_TRY(value, member(name));
    if (!value->is_number_unsigned() || value->get<uint64_t>() > uint64_t{kSafeIntegerMax}) {
      return invalid(fmt::format("{}: \"{}\" must be an integer from 0 to 2^53 - 1", where_, name));
    }
    return value->get<uint64_t>();
  }
  Result<std::string> string(const char* name) const {
    VL_TRY(value, member(name));
    if (!value->is_string())
      return invalid(fmt::format("{}: \"{}\" must be a string", where_, name));
    return value->get<std::string>();
  }
  const std::string& where() const { return where_; }

 private:
  const Json& object_;
  std::string where_;
};

// A decimal integer written as a JSON string (or, for int64 fields, a JSON integer).
template <class Int>
Result<Int> parse_decimal(const Json& value, const std::string& where) {
  if constexpr (sizeof(Int) <= sizeof(int64_t)) {
    if (value.is_number_integer()) {
      if (value.is_number_unsigned() && value.get<uint64_t>() > uint64_t{INT64_MAX}) {
        return invalid(where + ": beyond the 64-bit range");
      }
      return static_cast<Int>(value.get<int64_t>());
    }
  }
  if (!value.is_string()) return invalid(where + ": must be a decimal integer string");
  const auto& text = value.get_ref<const std::string&>();
  // 30 digits stay far inside 128 bits; a counter sum never needs more.
  if (text.empty() || text.size() > 30) return invalid(where + ": not a decimal integer");
  bool negative = text[0] == '-';
  if (negative && text.size() == 1) return invalid(where + ": not a decimal integer");
  Int result = 0;
  for (size_t i = negative ? 1 : 0; i < text.size(); i++) {
    if (text[i] < '0' || text[i] > '9') {
      return invalid(where + ": not a decimal integer");
    }
    Int digit = text[i] - '0';
    if constexpr (sizeof(Int) <= sizeof(int64_t)) {
      Int limit = negative ? INT64_MIN : INT64_MAX;
      if (negative ? result < (limit + digit) / 10 : result > (limit - digit) / 10) {
        return invalid(where + ": beyond the 64-bit range");
      }
    }
    result = result * 10 + (negative ? -digit : digit);
  }
  return result;
}

std::string int128_to_string(Int128 value) {
  bool negative = value < 0;
  std::string digits;
  do {
    int digit = static_cast<int>(value % 10);
    digits.push_back(static_cast<char>('0' + (negative ? -digit : digit)));
    value /= 10;
  } while (value != 0);
  if (negative) digits.push_back('-');
  return std::string(digits.rbegin(), digits.rend());
}

Json stamp_to_json(const Stamp& stamp) {
  return Json::array(
      {stamp.lamport, std::to_string(stamp.server_time_ns), stamp.participant, stamp.event_id});
}

Result<Stamp> stamp_from_json(const Json& json, const std::string& where) {
  std::string message = where + ": a stamp is [lamport, \"serverTime\", participant, eventId]";
  if (!json.is_array() || json.size() != 4 || !json[0].is_number_unsigned() ||
      json[0].get<uint64_t>() > uint64_t{kSafeIntegerMax} || !json[2].is_string() ||
      !json[3].is_string() || json[2].get_ref<const std::string&>().empty() ||
      json[3].get_ref<const std::string&>().empty()) {
    return invalid(message);
  }
  VL_TRY(server_time, parse_decimal<int64_t>(json[1], message));
  return Stamp{json[0].get<uint64_t>(), server_time, json[2].get<std::string>(),
               json[3].get<std::string>()};
}

Result<std::optional<Stamp>> optional_stamp(const Json& json, const std::string& where) {
  if (json.is_null()) return std::optional<Stamp>();
  VL_TRY(stamp, stamp_from_json(json, where));
  return std::optional<Stamp>(std::move(stamp));
}

Json slot_to_json(const Slot& slot) {
  Json json = {{"policy", policy_name(slot.policy)}, {"lamportMax", slot.lamport_max}};
  if (const auto* lww = std::get_if<LwwSlot>(&slot.data)) {
    json["winner"] = stamp_to_json(lww->winner);
    if (lww->value) json["value"] = *lww->value;
  } else if (const auto* set = std::get_if<SetSlot>(&slot.data)) {
    Json elements = Json::array();
    for (const auto& [element, clock] : set->elements) {
      elements.push_back(
          Json::array({std::visit([](const auto& value) { return Json(value); }, element),
                       clock.add ? stamp_to_json(*clock.add) : Json(),
                       clock.remove ? stamp_to_json(*clock.remove) : Json()}));
    }
    json["elements"] = std::move(elements);
  } else if (const auto* list = std::get_if<ListSlot>(&slot.data)) {
    json["items"] = Json::object();
    json["tombstones"] = Json::object();
    for (const auto& [id, item] : list->items) {
      json["items"][id] = {{"stamp", stamp_to_json(item.stamp)}, {"item", item.item}};
    }
    for (const auto& [id, stamp] : list->tombstones) json["tombstones"][id] = stamp_to_json(stamp);
  } else if (const auto* max = std::get_if<MaxSlot>(&slot.data)) {
    json["value"] = max->value;
    json["winner"] = stamp_to_json(max->winner);
  } else {
    json["sum"] = int128_to_string(std::get<CounterSlot>(slot.data).sum);
  }
  return json;
}

Result<LwwSlot> lww_from_json(const Fields& fields, const Json& json) {
  LwwSlot slot;
  VL_TRY(winner, fields.member("winner"));
  VL_TRY(stamp, stamp_from_json(*winner, fields.where() + " winner"));
  slot.winner = std::move(stamp);
  if (json.contains("value")) {
    VL_RETURN_IF_ERROR(check_state_value(json["value"], fields.where() + " value"));
    slot.value = json["value"];
  }
  return slot;
}

Result<SetSlot> set_from_json(const Fields& fields) {
  SetSlot slot;
  VL_TRY(elements, fields.member("elements"));
  if (!elements->is_array()) return invalid(fields.where() + ": \"elements\" must be an array");
  for (const Json& entry : *elements) {
    std::string where = fields.where() + " element";
    if (!entry.is_array() || entry.size() != 3) {
      return invalid(where + ": must be [element, addStamp|null, removeStamp|null]");
    }
    VL_RETURN_IF_ERROR(check_state_value(entry[0], where));
    VL_RETURN_IF_ERROR(check_op_value(OpKind::kAdd, Policy::kSet, entry[0]));
    VL_TRY(add, optional_stamp(entry[1], where));
    VL_TRY(remove, optional_stamp(entry[2], where));
    if (!add && !remove) return invalid(where + ": has neither an add nor a remove");
    SetElement element;
    if (entry[0].is_boolean()) {
      element = entry[0].get<bool>();
    } else if (entry[0].is_number_integer()) {
      element = entry[0].get<int64_t>();
    } else {
      element = entry[0].get<std::string>();
    }
    if (!slot.elements.emplace(std::move(element), ElementClock{add, remove}).second) {
      return invalid(where + ": listed twice");
    }
  }
  return slot;
}

Result<ListSlot> list_from_json(const Fields& fields) {
  ListSlot slot;
  VL_TRY(items, fields.member("items"));
  VL_TRY(tombstones, fields.member("tombstones"));
  if (!items->is_object() || !tombstones->is_object()) {
    return invalid(fields.where() + ": \"items\" and \"tombstones\" must be objects");
  }
  for (const auto& [id, entry] : items->items()) {
    Fields item_fields(entry, fields.where() + " item '" + id + "'");
    VL_RETURN_IF_ERROR(item_fields.check_object());
    VL_TRY(stamp_json, item_fields.member("stamp"));
    VL_TRY(stamp, stamp_from_json(*stamp_json, item_fields.where()));
    VL_TRY(item, item_fields.member("item"));
    VL_RETURN_IF_ERROR(check_state_value(*item, item_fields.where()));
    VL_RETURN_IF_ERROR(check_op_value(OpKind::kInsert, Policy::kList, *item));
    if ((*item)["id"] != id) return invalid(item_fields.where() + ": its \"id\" differs");
    slot.items.emplace(id, ListItem{std::move(stamp), *item});
  }
  for (const auto& [id, stamp_json] : tombstones->items()) {
    VL_TRY(stamp, stamp_from_json(stamp_json, fields.where() + " tombstone"));
    if (slot.items.contains(id)) {
      return invalid(fields.where() + ": item '" + id + "' is both present and deleted");
    }
    slot.tombstones.emplace(id, std::move(stamp));
  }
  return slot;
}

Result<MaxSlot> max_from_json(const Fields& fields) {
  VL_TRY(value, fields.member("value"));
  if (!value->is_number_integer() || !check_state_value(*value, "max")) {
    return invalid(fields.where() + ": \"value\" must be an integer within ±(2^53 - 1)");
  }
  VL_TRY(winner, fields.member("winner"));
  VL_TRY(stamp, stamp_from_json(*winner, fields.where() + " winner"));
  return MaxSlot{value->get<int64_t>(), std::move(stamp)};
}

Result<CounterSlot> counter_from_json(const Fields& fields) {
  VL_TRY(sum, fields.member("sum"));
  if (!sum->is_string()) return invalid(fields.where() + ": \"sum\" must be a decimal string");
  VL_TRY(value, parse_decimal<Int128>(*sum, fields.where() + " sum"));
  return CounterSlot{value};
}

Result<Slot> slot_from_json(const Json& json, const std::string& where, Policy expected) {
  Fields fields(json, where);
  VL_RETURN_IF_ERROR(fields.check_object());
  VL_TRY(policy_text, fields.string("policy"));
  VL_TRY(policy, policy_from_name(policy_text));
  if (policy != expected) {
    return make_error(ErrorCode::kFailedPrecondition,
                      fmt::format("{}: the snapshot has policy '{}', the schema '{}'", where,
                                  policy_text, policy_name(expected)));
  }
  Slot slot;
  slot.policy = policy;
  VL_TRY(lamport_max, fields.safe_unsigned("lamportMax"));
  slot.lamport_max = lamport_max;
  switch (policy) {
    case Policy::kLww: {
      VL_TRY(data, lww_from_json(fields, json));
      slot.data = std::move(data);
      break;
    }
    case Policy::kSet: {
      VL_TRY(data, set_from_json(fields));
      slot.data = std::move(data);
      break;
    }
    case Policy::kList: {
      VL_TRY(data, list_from_json(fields));
      slot.data = std::move(data);
      break;
    }
    case Policy::kMax: {
      VL_TRY(data, max_from_json(fields));
      slot.data = std::move(data);
      break;
    }
    case Policy::kCounter: {
      VL_TRY(data, counter_from_json(fields));
      slot.data = std::move(data);
      break;
    }
  }
  return slot;
}

}  // namespace

Result<RoomEvent> room_event_from_json(const Json& json) {
  Fields fields(json, "room event");
  VL_RETURN_IF_ERROR(fields.check_object());
  RoomEvent event;
  VL_TRY(seq, fields.safe_unsigned("seq"));
  VL_TRY(lamport, fields.safe_unsigned("lamport"));
  VL_TRY(id, fields.string("id"));
  VL_TRY(action, fields.string("action"));
  VL_TRY(participant, fields.string("participant"));
  VL_TRY(server_time_json, fields.member("serverTime"));
  VL_TRY(server_time, parse_decimal<int64_t>(*server_time_json, "room event: \"serverTime\""));
  event.seq = seq;
  event.lamport = lamport;
  event.id = std::move(id);
  event.action = std::move(action);
  event.participant = std::move(participant);
  event.server_time_ns = server_time;
  // A missing payload is an empty object: actions whose ops reference nothing need none.
  event.payload = json.contains("payload") ? json["payload"] : Json::object();
  return event;
}

Json room_event_to_json(const RoomEvent& event) {
  return {{"seq", event.seq},
          {"id", event.id},
          {"action", event.action},
          {"payload", event.payload},
          {"lamport", event.lamport},
          {"participant", event.participant},
          {"serverTime", std::to_string(event.server_time_ns)}};
}

Json outcome_to_json(const Outcome& outcome) {
  switch (outcome.kind) {
    case OutcomeKind::kApplied:
      return {{"outcome", "applied"}};
    case OutcomeKind::kMerged:
      return {{"outcome", "merged"}};
    case OutcomeKind::kSuperseded:
      return {{"outcome", "superseded"}, {"by", outcome.winner_event_id}};
  }
  VL_ASSERT(false);
}

Result<Outcome> outcome_from_json(const Json& json) {
  Fields fields(json, "outcome");
  VL_RETURN_IF_ERROR(fields.check_object());
  VL_TRY(kind, fields.string("outcome"));
  if (kind == "applied") return Outcome{OutcomeKind::kApplied, ""};
  if (kind == "merged") return Outcome{OutcomeKind::kMerged, ""};
  if (kind != "superseded") return invalid("outcome: unknown outcome '" + kind + "'");
  VL_TRY(winner, fields.string("by"));
  return Outcome{OutcomeKind::kSuperseded, std::move(winner)};
}

Json RoomState::to_json() const {
  Json slots = Json::object();
  for (const auto& [path, slot] : slots_) slots[format_pointer(path)] = slot_to_json(slot);
  return {{"version", kSnapshotVersion},
          {"seqMax", seq_max_},
          {"lamportMax", lamport_max_},
          {"document", document_},
          {"slots", std::move(slots)}};
}

Result<RoomState> RoomState::from_json(std::shared_ptr<const RoomSchema> schema,
                                       const Json& snapshot) {
  Fields fields(snapshot, "snapshot");
  VL_RETURN_IF_ERROR(fields.check_object());
  VL_TRY(version, fields.safe_unsigned("version"));
  if (version != kSnapshotVersion) {
    return invalid(
        fmt::format("snapshot: version {} (this reader knows {})", version, kSnapshotVersion));
  }
  RoomState state(std::move(schema));
  VL_TRY(seq_max, fields.safe_unsigned("seqMax"));
  VL_TRY(lamport_max, fields.safe_unsigned("lamportMax"));
  VL_TRY(document, fields.member("document"));
  VL_TRY(slots, fields.member("slots"));
  if (!slots->is_object()) return invalid("snapshot: \"slots\" must be an object");
  state.seq_max_ = seq_max;
  state.lamport_max_ = lamport_max;
  for (const auto& [pointer, slot_json] : slots->items()) {
    std::string where = "snapshot: slot '" + pointer + "'";
    auto path = parse_pointer(pointer);
    if (!path) return invalid(where + ": " + path.error().message);
    std::optional<size_t> rule = state.schema_->match(*path);
    if (!rule) {
      return make_error(ErrorCode::kFailedPrecondition,
                        where + ": the schema declares no policy for this path");
    }
    VL_TRY(slot, slot_from_json(slot_json, where, state.schema_->rules()[*rule].policy));
    state.render_slot(*path, slot);
    state.slots_.emplace(std::move(*path), std::move(slot));
  }
  // The document is derived from the slots; a snapshot whose two halves disagree is damaged.
  if (*document != state.document_) {
    return invalid("snapshot: the document does not match the merge metadata");
  }
  return state;
}

}  // namespace vellum::rooms
