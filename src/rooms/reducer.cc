// SPDX-License-Identifier: Apache-2.0
// The room-state reducer (reducer.h). Each policy keeps, per concrete path, metadata that is a
// function of the set of events addressed to that path (a greatest or least stamp, a sum, a
// maximum), and the document is rendered from that metadata alone: that is what makes the
// state independent of the order of application. The rules are docs/api/rooms.md.
#include "rooms/reducer.h"

#include <algorithm>
#include <charconv>
#include <tuple>
#include <utility>

#include <fmt/format.h>

#include "base/assert.h"
#include "base/sha256.h"
#include "base/text.h"

namespace vellum::rooms {
namespace {

using Json = nlohmann::json;

tl::unexpected<Error> invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

// What one op did: took effect, or lost to `winner_event_id`.
struct OpEffect {
  bool took_effect = true;
  std::string winner_event_id;
};

OpEffect lost_to(const Stamp& winner) { return OpEffect{false, winner.event_id}; }

// Sets compare an add with a remove without the event id, so that an add and a remove with
// equal (lamport, server time, participant) tie, and ties go to the add.
auto set_key(const Stamp& stamp) {
  return std::tie(stamp.lamport, stamp.server_time_ns, stamp.participant);
}

bool element_present(const ElementClock& clock) {
  return clock.add && (!clock.remove || set_key(*clock.add) >= set_key(*clock.remove));
}

Status check_text(const std::string& text, size_t bytes_max, std::string_view what) {
  if (text.empty() || text.size() > bytes_max || !is_valid_utf8(text)) {
    return invalid(fmt::format("event {} must be 1 to {} bytes of UTF-8", what, bytes_max));
  }
  return ok_status();
}

Status check_event(const RoomEvent& event) {
  VL_RETURN_IF_ERROR(check_text(event.id, kEventIdBytesMax, "id"));
  VL_RETURN_IF_ERROR(check_text(event.participant, kParticipantBytesMax, "participant"));
  VL_RETURN_IF_ERROR(check_text(event.action, kActionNameBytesMax, "action"));
  if (event.lamport > uint64_t{kSafeIntegerMax} || event.seq > uint64_t{kSafeIntegerMax}) {
    return invalid("event lamport and seq must be at most 2^53 - 1");
  }
  return ok_status();
}

// The segment a placeholder resolves to: a non-empty string or an integer (in decimal).
Result<std::string> resolve_segment(const PathSegment& segment, const RoomEvent& event) {
  switch (segment.kind) {
    case PathSegment::Kind::kLiteral:
      return segment.literal;
    case PathSegment::Kind::kParticipant:
      return event.participant;
    case PathSegment::Kind::kPayloadField:
      break;
  }
  VL_TRY(field, payload_field(event.payload, segment.fields));
  if (field->is_number_integer()) return field->dump();
  if (field->is_string()) {
    const auto& text = field->get_ref<const std::string&>();
    if (!text.empty() && text.size() <= kPathSegmentBytesMax) return text;
  }
  return invalid(
      fmt::format("the payload field behind a path placeholder must be an integer or "
                  "a string of 1 to {} bytes",
                  kPathSegmentBytesMax));
}

Int128 clamp_sum(Int128 sum) {
  return std::clamp<Int128>(sum, -Int128{kSafeIntegerMax}, Int128{kSafeIntegerMax});
}

Json element_to_json(const SetElement& element) {
  return std::visit([](const auto& value) { return Json(value); }, element);
}

SetElement element_from_json(const Json& value) {
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_number_integer()) return value.get<int64_t>();
  VL_ASSERT(value.is_string());
  return value.get<std::string>();
}

// The document value of a slot; nullopt when it has none (a deleted lww register).
std::optional<Json> render_value(const Slot& slot) {
  switch (slot.policy) {
    case Policy::kLww:
      return std::get<LwwSlot>(slot.data).value;
    case Policy::kSet: {
      Json elements = Json::array();
      for (const auto& [element, clock] : std::get<SetSlot>(slot.data).elements) {
        if (element_present(clock)) elements.push_back(element_to_json(element));
      }
      return elements;
    }
    case Policy::kList: {
      std::vector<const std::pair<const std::string, ListItem>*> order;
      for (const auto& entry : std::get<ListSlot>(slot.data).items) order.push_back(&entry);
      std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
        return std::tie(a->second.stamp.lamport, a->second.stamp.participant, a->first) <
               std::tie(b->second.stamp.lamport, b->second.stamp.participant, b->first);
      });
      Json items = Json::array();
      for (const auto* entry : order) items.push_back(entry->second.item);
      return items;
    }
    case Policy::kMax:
      return std::get<MaxSlot>(slot.data).value;
    case Policy::kCounter:
      return static_cast<int64_t>(clamp_sum(std::get<CounterSlot>(slot.data).sum));
  }
  VL_ASSERT(false);
}

// Writes (or, for nullopt, erases) the value at `path`, creating the objects on the way. Those
// objects stay when the value is erased, so the document is the same whether it was rendered
// op by op (apply) or slot by slot from a snapshot (from_json).
void put_value(Json& document, const Path& path, std::optional<Json> value) {
  VL_ASSERT(!path.empty());
  Json* node = &document;
  for (size_t i = 0; i + 1 < path.size(); i++) {
    Json& child = (*node)[path[i]];
    if (child.is_null()) child = Json::object();
    // Policy paths never nest (RoomSchema::parse), so nothing else lives on the way.
    VL_ASSERT(child.is_object());
    node = &child;
  }
  if (value) {
    (*node)[path.back()] = std::move(*value);
  } else {
    node->erase(path.back());
  }
}

OpEffect apply_lww(LwwSlot& slot, bool created, const Stamp& stamp, std::optional<Json> value) {
  if (!created && slot.winner > stamp) return lost_to(slot.winner);
  slot.winner = stamp;
  slot.value = std::move(value);
  return {};
}

OpEffect apply_max(MaxSlot& slot, bool created, const Stamp& stamp, int64_t value) {
  if (!created && (slot.value > value || (slot.value == value && slot.winner < stamp))) {
    return lost_to(slot.winner);
  }
  slot.value = value;
  slot.winner = stamp;
  return {};
}

// Both clocks always advance to the greatest stamp, whether or not the op wins: the clocks
// must not depend on the order in which adds and removes arrive.
OpEffect apply_set(SetSlot& slot, OpKind kind, const Stamp& stamp, const Json& value) {
  ElementClock& clock = slot.elements[element_from_json(value)];
  if (kind == OpKind::kAdd) {
    bool lost = clock.remove && set_key(*clock.remove) > set_key(stamp);
    if (!clock.add || *clock.add < stamp) clock.add = stamp;
    return lost ? lost_to(*clock.remove) : OpEffect{};
  }
  VL_ASSERT(kind == OpKind::kRemove);
  bool lost = clock.add && set_key(*clock.add) >= set_key(stamp);
  if (!clock.remove || *clock.remove < stamp) clock.remove = stamp;
  return lost ? lost_to(*clock.add) : OpEffect{};
}

OpEffect apply_list(ListSlot& slot, OpKind kind, const Stamp& stamp, const Json& value) {
  if (kind == OpKind::kInsert) {
    const auto& id = value["id"].get_ref<const std::string&>();
    auto tombstone = slot.tombstones.find(id);
    if (tombstone != slot.tombstones.end()) return lost_to(tombstone->second);
    auto existing = slot.items.find(id);
    if (existing != slot.items.end() && existing->second.stamp < stamp) {
      return lost_to(existing->second.stamp);  // the first insert of an id keeps it
    }
    slot.items[id] = ListItem{stamp, value};
    return {};
  }
  VL_ASSERT(kind == OpKind::kDelete);
  const auto& id = value.get_ref<const std::string&>();
  auto tombstone = slot.tombstones.find(id);
  if (tombstone != slot.tombstones.end() && tombstone->second < stamp) {
    return lost_to(tombstone->second);
  }
  slot.tombstones[id] = stamp;
  slot.items.erase(id);  // tombstones win over every insert, earlier or later
  return {};
}

decltype(Slot::data) empty_slot_data(Policy policy) {
  switch (policy) {
    case Policy::kLww:
      return LwwSlot{};
    case Policy::kSet:
      return SetSlot{};
    case Policy::kList:
      return ListSlot{};
    case Policy::kMax:
      return MaxSlot{};
    case Policy::kCounter:
      return CounterSlot{};
  }
  VL_ASSERT(false);
}

// An event's outcome from its ops': superseded when every op lost, merged when some op merged
// or lost while another took effect, applied otherwise (an action without ops is applied).
Outcome combine_outcomes(const std::vector<Outcome>& outcomes) {
  bool all_lost = !outcomes.empty();
  bool any_merged_or_lost = false;
  for (const Outcome& outcome : outcomes) {
    all_lost = all_lost && outcome.kind == OutcomeKind::kSuperseded;
    any_merged_or_lost = any_merged_or_lost || outcome.kind != OutcomeKind::kApplied;
  }
  if (all_lost) return outcomes.front();
  return Outcome{any_merged_or_lost ? OutcomeKind::kMerged : OutcomeKind::kApplied, ""};
}

}  // namespace

// One op of an event, resolved against the event before any op is applied, so that an event
// that fails changes nothing.
struct RoomState::PlannedOp {
  const OpSpec* spec = nullptr;
  Policy policy = Policy::kLww;
  Path path;
  std::optional<Json> value;
  // Whether an event the sender had not seen (lamport >= this event's) had already addressed
  // this path when the event arrived.
  bool concurrent = false;
};

RoomState::RoomState(std::shared_ptr<const RoomSchema> schema) : schema_(std::move(schema)) {
  VL_ASSERT(schema_ != nullptr);
}

Result<RoomState::PlannedOp> RoomState::plan_op(const OpSpec& spec, const RoomEvent& event) const {
  PlannedOp op;
  op.spec = &spec;
  op.policy = schema_->rules()[spec.rule_index].policy;
  for (const PathSegment& segment : spec.path) {
    VL_TRY(resolved, resolve_segment(segment, event));
    op.path.push_back(std::move(resolved));
  }
  if (spec.kind == OpKind::kIncrement && !spec.value) op.value = Json(1);
  if (spec.value) {
    VL_TRY(value,
           resolve_value(*spec.value, TemplateContext{event.participant, event.id, event.payload}));
    std::string what = fmt::format("action '{}': {} {}", event.action, op_kind_name(spec.kind),
                                   format_pointer(op.path));
    Status fits = check_state_value(value, what);
    if (fits) fits = check_op_value(spec.kind, op.policy, value);
    if (!fits) return invalid(fmt::format("{}: {}", what, fits.error().message));
    op.value = std::move(value);
  }
  return op;
}

Result<Outcome> RoomState::apply(const RoomEvent& event) {
  VL_RETURN_IF_ERROR(check_event(event));
  const std::vector<OpSpec>* specs = schema_->find_action(event.action);
  if (specs == nullptr) return invalid("unknown action '" + event.action + "'");
  std::vector<PlannedOp> plan;
  for (const OpSpec& spec : *specs) {
    VL_TRY(op, plan_op(spec, event));
    plan.push_back(std::move(op));
  }
  // Concurrency is judged against the state the event met, before any of its own ops.
  for (PlannedOp& op : plan) {
    auto slot = slots_.find(op.path);
    op.concurrent = slot != slots_.end() && slot->second.lamport_max >= event.lamport;
  }
  Stamp stamp{event.lamport, event.server_time_ns, event.participant, event.id};
  std::vector<Outcome> outcomes;
  for (const PlannedOp& op : plan) outcomes.push_back(apply_op(op, stamp));
  seq_max_ = std::max(seq_max_, event.seq);
  lamport_max_ = std::max(lamport_max_, event.lamport);
  return combine_outcomes(outcomes);
}

Outcome RoomState::apply_op(const PlannedOp& op, const Stamp& stamp) {
  auto [entry, created] = slots_.try_emplace(op.path);
  Slot& slot = entry->second;
  if (created) {
    slot.policy = op.policy;
    slot.data = empty_slot_data(op.policy);
  }
  VL_ASSERT(slot.policy == op.policy);
  slot.lamport_max = std::max(slot.lamport_max, stamp.lamport);
  OpEffect effect;
  switch (op.policy) {
    case Policy::kLww:
      effect = apply_lww(std::get<LwwSlot>(slot.data), created, stamp,
                         op.spec->kind == OpKind::kSet ? op.value : std::nullopt);
      break;
    case Policy::kSet:
      effect = apply_set(std::get<SetSlot>(slot.data), op.spec->kind, stamp, *op.value);
      break;
    case Policy::kList:
      effect = apply_list(std::get<ListSlot>(slot.data), op.spec->kind, stamp, *op.value);
      break;
    case Policy::kMax:
      effect = apply_max(std::get<MaxSlot>(slot.data), created, stamp, op.value->get<int64_t>());
      break;
    case Policy::kCounter:
      std::get<CounterSlot>(slot.data).sum += op.value->get<int64_t>();
      break;
  }
  render_slot(op.path, slot);
  if (!effect.took_effect) return Outcome{OutcomeKind::kSuperseded, effect.winner_event_id};
  // A register is replaced, never combined: a winning lww write is simply applied.
  bool merged = op.concurrent && op.policy != Policy::kLww;
  return Outcome{merged ? OutcomeKind::kMerged : OutcomeKind::kApplied, ""};
}

std::map<std::string, Json> RoomState::slot_values() const {
  std::map<std::string, Json> values;
  for (const auto& [path, slot] : slots_) {
    std::optional<Json> value = render_value(slot);
    if (value) values.emplace(format_pointer(path), std::move(*value));
  }
  return values;
}

void RoomState::render_slot(const Path& path, const Slot& slot) {
  put_value(document_, path, render_value(slot));
}

std::string RoomState::canonical_document() const {
  auto text = canonical_json(document_);
  // Only checked values enter the document (plan_op).
  VL_ASSERT(text.has_value());
  return *text;
}

std::string RoomState::state_hash() const {
  auto text = canonical_json(to_json());
  VL_ASSERT(text.has_value());
  Sha256 sha;
  sha.update(*text);
  return digest_hex(sha.finish());
}

}  // namespace vellum::rooms
