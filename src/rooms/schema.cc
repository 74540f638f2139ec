// SPDX-License-Identifier: Apache-2.0
// Parsing and validation of room schemas, JSON Pointers and value templates, and the canonical
// JSON serialization (docs/api/rooms.md). Everything here answers bad input with
// kInvalidArgument; nothing throws out of this file.
#include "rooms/schema.h"

#include <algorithm>
#include <array>
#include <utility>

#include <fmt/format.h>

#include "base/assert.h"
#include "base/text.h"

namespace vellum::rooms {
namespace {

using Json = nlohmann::json;

tl::unexpected<Error> invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

struct OpFit {
  OpKind kind;
  const char* name;
  std::array<std::optional<Policy>, 2> policies;
};

// Which policies each op fits. kDelete fits two: an lww register and a list.
constexpr std::array<OpFit, 7> kOpFits = {{
    {OpKind::kSet, "set", {Policy::kLww, std::nullopt}},
    {OpKind::kAdd, "add", {Policy::kSet, std::nullopt}},
    {OpKind::kRemove, "remove", {Policy::kSet, std::nullopt}},
    {OpKind::kIncrement, "increment", {Policy::kCounter, std::nullopt}},
    {OpKind::kMax, "max", {Policy::kMax, std::nullopt}},
    {OpKind::kInsert, "insert", {Policy::kList, std::nullopt}},
    {OpKind::kDelete, "delete", {Policy::kLww, Policy::kList}},
}};

constexpr std::array<std::pair<Policy, const char*>, 5> kPolicyNames = {{
    {Policy::kLww, "lww"},
    {Policy::kSet, "set"},
    {Policy::kList, "list"},
    {Policy::kMax, "max"},
    {Policy::kCounter, "counter"},
}};

bool op_fits(OpKind kind, Policy policy) {
  for (const OpFit& fit : kOpFits) {
    if (fit.kind == kind) return fit.policies[0] == policy || fit.policies[1] == policy;
  }
  VL_ASSERT(false);
}

Result<OpKind> op_kind_from_name(std::string_view name) {
  for (const OpFit& fit : kOpFits) {
    if (name == fit.name) return fit.kind;
  }
  return invalid(
      fmt::format("unknown op '{}' (expected set, add, remove, increment, max, "
                  "insert or delete)",
                  name));
}

// Whether two policy patterns can match the same path or nested paths: then one path would be
// governed by two policies, or a policy's value would contain another policy's path.
bool patterns_overlap(const Path& a, const Path& b) {
  size_t common = std::min(a.size(), b.size());
  for (size_t i = 0; i < common; i++) {
    if (a[i] != b[i] && a[i] != "*" && b[i] != "*") return false;
  }
  return true;
}

bool is_reference(const std::string& text) { return text.starts_with('$') && text[1] != '$'; }

// Validates the "$" references of a value template (docs/api/rooms.md, "Values").
Status check_template(const Json& value, size_t depth, const std::string& where) {
  if (depth > kValueDepthMax) return invalid(where + ": value nested too deeply");
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (!text.starts_with('$') || text.starts_with("$$")) return ok_status();
    if (text == "$participant" || text == "$eventId" || text == "$payload") return ok_status();
    if (text.starts_with("$payload.") && text.size() > 9 && !text.ends_with('.') &&
        text.find("..") == std::string::npos) {
      return ok_status();
    }
    return invalid(
        fmt::format("{}: unknown reference '{}' (expected $payload, $payload.<field>, "
                    "$participant or $eventId; write $$ for a literal $)",
                    where, text));
  }
  if (!value.is_structured()) return ok_status();
  for (const auto& child : value) VL_RETURN_IF_ERROR(check_template(child, depth + 1, where));
  return ok_status();
}

bool template_has_references(const Json& value) {
  if (value.is_string()) return is_reference(value.get_ref<const std::string&>());
  if (!value.is_structured()) return false;
  return std::any_of(value.begin(), value.end(),
                     [](const Json& child) { return template_has_references(child); });
}

std::vector<std::string> split_fields(std::string_view dotted) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (true) {
    size_t dot = dotted.find('.', start);
    fields.emplace_back(dotted.substr(start, dot - start));
    if (dot == std::string_view::npos) return fields;
    start = dot + 1;
  }
}

// An op path segment: a literal, or a whole-segment placeholder "{participant}" /
// "{payload.a.b}".
Result<PathSegment> parse_op_segment(const std::string& segment, const std::string& where) {
  PathSegment parsed;
  if (segment == "*") {
    return invalid(where +
                   ": '*' belongs in policy paths; an op path names its segment with "
                   "a literal or a placeholder such as {participant}");
  }
  bool opens = segment.starts_with('{');
  bool closes = segment.ends_with('}');
  if (!opens && !closes && segment.find_first_of("{}") == std::string::npos) {
    parsed.literal = segment;
    return parsed;
  }
  std::string_view inner = std::string_view(segment).substr(1, segment.size() - 2);
  if (opens && closes && inner == "participant") {
    parsed.kind = PathSegment::Kind::kParticipant;
    return parsed;
  }
  if (opens && closes && inner.starts_with("payload.")) {
    parsed.kind = PathSegment::Kind::kPayloadField;
    parsed.fields = split_fields(inner.substr(8));
    bool empty_field = std::any_of(parsed.fields.begin(), parsed.fields.end(),
                                   [](const std::string& field) { return field.empty(); });
    if (!empty_field) return parsed;
  }
  return invalid(
      fmt::format("{}: bad placeholder '{}' (a placeholder is a whole segment: "
                  "{{participant}} or {{payload.<field>}})",
                  where, segment));
}

bool segment_matches(const PathSegment& segment, const std::string& pattern) {
  if (pattern == "*") return true;
  return segment.kind == PathSegment::Kind::kLiteral && segment.literal == pattern;
}

Result<std::vector<PolicyRule>> parse_rules(const Json& policies) {
  if (!policies.is_object()) return invalid("schema: \"policies\" must be an object");
  if (policies.size() > kSchemaPoliciesMax) {
    return invalid(fmt::format("schema: more than {} policies", kSchemaPoliciesMax));
  }
  std::vector<PolicyRule> rules;
  for (const auto& [pointer, name] : policies.items()) {
    std::string where = "schema: policy path '" + pointer + "'";
    auto pattern = parse_pointer(pointer);
    if (!pattern) return invalid(where + ": " + pattern.error().message);
    for (const std::string& segment : *pattern) {
      if (segment.find_first_of("{}") != std::string::npos) {
        return invalid(where + ": placeholders belong in op paths; use '*' here");
      }
    }
    if (!name.is_string()) return invalid(where + ": the policy must be a string");
    auto policy = policy_from_name(name.get_ref<const std::string&>());
    if (!policy) return invalid(where + ": " + policy.error().message);
    for (const PolicyRule& earlier : rules) {
      if (patterns_overlap(earlier.pattern, *pattern)) {
        return invalid(
            fmt::format("schema: policy paths '{}' and '{}' overlap: every document "
                        "path is governed by one policy, and policy paths may not nest",
                        earlier.pointer, pointer));
      }
    }
    rules.push_back(PolicyRule{pointer, std::move(*pattern), *policy});
  }
  return rules;
}

Status check_op_keys(const Json& op, const std::string& where) {
  if (!op.is_object()) return invalid(where + ": an op must be an object");
  for (const auto& [key, unused] : op.items()) {
    if (key != "op" && key != "path" && key != "value") {
      return invalid(fmt::format("{}: unknown key '{}' (expected op, path, value)", where, key));
    }
  }
  if (!op.contains("op") || !op["op"].is_string()) {
    return invalid(where + ": \"op\" must be a string");
  }
  if (!op.contains("path") || !op["path"].is_string()) {
    return invalid(where + ": \"path\" must be a string");
  }
  return ok_status();
}

// Binds an op path to the one policy rule that matches it (placeholders match only '*').
Result<size_t> bind_op_path(const std::vector<PolicyRule>& rules, const OpSpec& spec,
                            const std::string& where) {
  for (size_t index = 0; index < rules.size(); index++) {
    const Path& pattern = rules[index].pattern;
    if (pattern.size() != spec.path.size()) continue;
    bool matches = true;
    for (size_t i = 0; i < pattern.size() && matches; i++) {
      matches = segment_matches(spec.path[i], pattern[i]);
    }
    if (matches) return index;
  }
  return invalid(
      fmt::format("{}: path '{}' matches no policy path (a placeholder matches only "
                  "a '*' segment)",
                  where, spec.pointer));
}

// Which ops take a value, and whether it may be omitted.
Status check_op_value_presence(const OpSpec& spec, Policy policy, const std::string& where) {
  bool lww_delete = spec.kind == OpKind::kDelete && policy == Policy::kLww;
  if (lww_delete && spec.value) return invalid(where + ": delete on an lww path takes no value");
  if (!lww_delete && spec.kind != OpKind::kIncrement && !spec.value) {
    return invalid(fmt::format("{}: {} needs a \"value\"", where, op_kind_name(spec.kind)));
  }
  return ok_status();
}

Result<OpSpec> parse_op(const std::vector<PolicyRule>& rules, const Json& op,
                        const std::string& where) {
  VL_RETURN_IF_ERROR(check_op_keys(op, where));
  OpSpec spec;
  VL_TRY(kind, op_kind_from_name(op["op"].get_ref<const std::string&>()));
  spec.kind = kind;
  spec.pointer = op["path"].get<std::string>();
  auto segments = parse_pointer(spec.pointer);
  if (!segments) return invalid(where + ": " + segments.error().message);
  for (const std::string& segment : *segments) {
    VL_TRY(parsed, parse_op_segment(segment, where));
    spec.path.push_back(std::move(parsed));
  }
  VL_TRY(rule_index, bind_op_path(rules, spec, where));
  spec.rule_index = rule_index;
  Policy policy = rules[rule_index].policy;
  if (!op_fits(spec.kind, policy)) {
    return invalid(fmt::format("{}: op '{}' does not fit path '{}', whose policy is '{}'", where,
                               op_kind_name(spec.kind), spec.pointer, policy_name(policy)));
  }
  if (op.contains("value")) spec.value = op["value"];
  VL_RETURN_IF_ERROR(check_op_value_presence(spec, policy, where));
  if (spec.value) {
    VL_RETURN_IF_ERROR(check_template(*spec.value, 0, where + " value"));
    if (!template_has_references(*spec.value)) {
      // A literal value can be checked now rather than on every event.
      VL_TRY(literal, resolve_value(*spec.value, TemplateContext{}));
      Status fits = check_state_value(literal, "value");
      if (fits) fits = check_op_value(spec.kind, policy, literal);
      if (!fits) return invalid(where + ": " + fits.error().message);
    }
  }
  return spec;
}

Status check_action_name(const std::string& name) {
  if (name.empty() || name.size() > kActionNameBytesMax) {
    return invalid(fmt::format("schema: action names have 1 to {} bytes", kActionNameBytesMax));
  }
  if (name.starts_with('$')) {
    return invalid("schema: action '" + name + "': names starting with '$' are reserved");
  }
  return ok_status();
}

}  // namespace

const char* policy_name(Policy policy) {
  for (const auto& [known, name] : kPolicyNames) {
    if (known == policy) return name;
  }
  VL_ASSERT(false);
}

const char* op_kind_name(OpKind kind) {
  for (const OpFit& fit : kOpFits) {
    if (fit.kind == kind) return fit.name;
  }
  VL_ASSERT(false);
}

Result<Policy> policy_from_name(std::string_view name) {
  for (const auto& [policy, known] : kPolicyNames) {
    if (name == known) return policy;
  }
  return invalid(
      fmt::format("unknown policy '{}' (expected lww, set, list, max or counter)", name));
}

Result<RoomSchema> RoomSchema::parse(const Json& schema) {
  if (!schema.is_object()) return invalid("schema: must be a JSON object");
  for (const auto& [key, unused] : schema.items()) {
    if (key != "policies" && key != "actions") {
      return invalid("schema: unknown key '" + key + "' (expected policies, actions)");
    }
  }
  if (!schema.contains("policies")) return invalid("schema: \"policies\" is missing");
  if (!schema.contains("actions") || !schema["actions"].is_object()) {
    return invalid("schema: \"actions\" must be an object");
  }
  RoomSchema parsed;
  VL_TRY(rules, parse_rules(schema["policies"]));
  parsed.rules_ = std::move(rules);
  const Json& actions = schema["actions"];
  if (actions.size() > kSchemaActionsMax) {
    return invalid(fmt::format("schema: more than {} actions", kSchemaActionsMax));
  }
  for (const auto& [name, ops] : actions.items()) {
    VL_RETURN_IF_ERROR(check_action_name(name));
    std::string where = "schema: action '" + name + "'";
    if (!ops.is_array()) return invalid(where + ": must be an array of ops");
    if (ops.size() > kActionOpsMax) {
      return invalid(fmt::format("{}: more than {} ops", where, kActionOpsMax));
    }
    std::vector<OpSpec> specs;
    for (size_t index = 0; index < ops.size(); index++) {
      VL_TRY(spec, parse_op(parsed.rules_, ops[index], fmt::format("{} op {}", where, index)));
      specs.push_back(std::move(spec));
    }
    parsed.actions_.emplace(name, std::move(specs));
  }
  return parsed;
}

Result<RoomSchema> RoomSchema::parse_text(std::string_view text) {
  Json schema = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) return invalid("schema: not valid JSON");
  return parse(schema);
}

const std::vector<OpSpec>* RoomSchema::find_action(std::string_view action) const {
  auto found = actions_.find(action);
  return found == actions_.end() ? nullptr : &found->second;
}

std::optional<size_t> RoomSchema::match(const Path& path) const {
  for (size_t index = 0; index < rules_.size(); index++) {
    const Path& pattern = rules_[index].pattern;
    if (pattern.size() != path.size()) continue;
    bool matches = true;
    for (size_t i = 0; i < path.size() && matches; i++) {
      matches = pattern[i] == "*" || pattern[i] == path[i];
    }
    if (matches) return index;
  }
  return std::nullopt;
}

Result<Path> parse_pointer(std::string_view pointer) {
  if (!pointer.starts_with('/')) {
    return invalid(
        fmt::format("'{}' is not a JSON Pointer to a member (starts with '/')", pointer));
  }
  Path path;
  std::string segment;
  for (size_t i = 1; i <= pointer.size(); i++) {
    if (i == pointer.size() || pointer[i] == '/') {
      if (segment.empty()) return invalid(fmt::format("'{}' has an empty segment", pointer));
      if (segment.size() > kPathSegmentBytesMax) {
        return invalid(
            fmt::format("'{}' has a segment over {} bytes", pointer, kPathSegmentBytesMax));
      }
      path.push_back(std::move(segment));
      segment.clear();
    } else if (pointer[i] == '~') {
      char next = i + 1 < pointer.size() ? pointer[i + 1] : '\0';
      if (next != '0' && next != '1') {
        return invalid(fmt::format("'{}': '~' must be followed by 0 or 1", pointer));
      }
      segment.push_back(next == '0' ? '~' : '/');
      i++;
    } else {
      segment.push_back(pointer[i]);
    }
  }
  if (path.size() > kPathSegmentsMax) {
    return invalid(fmt::format("'{}' has more than {} segments", pointer, kPathSegmentsMax));
  }
  return path;
}

std::string format_pointer(const Path& path) {
  std::string pointer;
  for (const std::string& segment : path) {
    pointer.push_back('/');
    for (char c : segment) {
      if (c == '~') {
        pointer += "~0";
      } else if (c == '/') {
        pointer += "~1";
      } else {
        pointer.push_back(c);
      }
    }
  }
  return pointer;
}

namespace {

// The checks behind check_state_value() and canonical_json(), down to `depth_max` levels.
struct ValueChecker {
  std::string_view what;
  size_t depth_max;
  Status check(const Json& node, size_t depth) const {
    if (depth > depth_max) return invalid(fmt::format("{}: nested too deeply", what));
    if (node.is_number_float()) {
      return invalid(
          fmt::format("{}: numbers in room state are integers (use integer units "
                      "such as meters or cents)",
                      what));
    }
    if (node.is_number_unsigned() && node.get<uint64_t>() > uint64_t{kSafeIntegerMax}) {
      return invalid(fmt::format("{}: integer beyond ±(2^53 - 1)", what));
    }
    if (node.is_number_integer() && !node.is_number_unsigned()) {
      int64_t number = node.get<int64_t>();
      if (number > kSafeIntegerMax || number < -kSafeIntegerMax) {
        return invalid(fmt::format("{}: integer beyond ±(2^53 - 1)", what));
      }
    }
    if (node.is_string() && !is_valid_utf8(node.get_ref<const std::string&>())) {
      return invalid(fmt::format("{}: string is not UTF-8", what));
    }
    if (node.is_object()) {
      for (const auto& [key, child] : node.items()) {
        if (!is_valid_utf8(key)) return invalid(fmt::format("{}: key is not UTF-8", what));
        VL_RETURN_IF_ERROR(check(child, depth + 1));
      }
    } else if (node.is_array()) {
      for (const auto& child : node) VL_RETURN_IF_ERROR(check(child, depth + 1));
    }
    return ok_status();
  }
};

}  // namespace

Status check_state_value(const Json& value, std::string_view what) {
  return ValueChecker{what, kValueDepthMax}.check(value, 0);
}

Status check_op_value(OpKind kind, Policy policy, const Json& value) {
  switch (kind) {
    case OpKind::kSet:
      return ok_status();
    case OpKind::kAdd:
    case OpKind::kRemove:
      if (value.is_string() || value.is_number_integer() || value.is_boolean()) {
        return ok_status();
      }
      return invalid("set elements are strings, integers or booleans");
    case OpKind::kIncrement:
    case OpKind::kMax:
      if (value.is_number_integer()) return ok_status();
      return invalid(fmt::format("{} takes an integer", op_kind_name(kind)));
    case OpKind::kInsert: {
      if (!value.is_object()) return invalid("insert takes an object with a string \"id\"");
      auto id = value.find("id");
      if (id == value.end() || !id->is_string()) {
        return invalid("insert takes an object with a string \"id\"");
      }
      return check_op_value(OpKind::kDelete, Policy::kList, *id);
    }
    case OpKind::kDelete:
      if (policy == Policy::kLww) return ok_status();
      if (value.is_string() && !value.get_ref<const std::string&>().empty() &&
          value.get_ref<const std::string&>().size() <= kItemIdBytesMax) {
        return ok_status();
      }
      return invalid(fmt::format("list item ids are strings of 1 to {} bytes", kItemIdBytesMax));
  }
  VL_ASSERT(false);
}

Result<const Json*> payload_field(const Json& payload, const std::vector<std::string>& fields) {
  const Json* node = &payload;
  for (const std::string& field : fields) {
    auto found = node->is_object() ? node->find(field) : node->end();
    if (!node->is_object() || found == node->end()) {
      std::string dotted;
      for (const std::string& name : fields) dotted += (dotted.empty() ? "" : ".") + name;
      return invalid("payload has no field '" + dotted + "'");
    }
    node = &*found;
  }
  return node;
}

Result<Json> resolve_value(const Json& value, const TemplateContext& context) {
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (text.starts_with("$$")) return Json(text.substr(1));
    if (!text.starts_with('$')) return value;
    if (text == "$participant") return Json(std::string(context.participant));
    if (text == "$eventId") return Json(std::string(context.event_id));
    if (text == "$payload") return context.payload;
    VL_ASSERT(text.starts_with("$payload."));  // check_template() let nothing else through
    VL_TRY(field, payload_field(context.payload, split_fields(text.substr(9))));
    return *field;
  }
  if (!value.is_structured()) return value;
  Json resolved = value.is_object() ? Json::object() : Json::array();
  for (auto child = value.begin(); child != value.end(); ++child) {
    VL_TRY(resolved_child, resolve_value(*child, context));
    if (value.is_object()) {
      resolved[child.key()] = std::move(resolved_child);
    } else {
      resolved.push_back(std::move(resolved_child));
    }
  }
  return resolved;
}

Result<std::string> canonical_json(const Json& value) {
  // The checks that make the text identical in every language: integers only (C++ and
  // JavaScript print fractions and exponents differently) and UTF-8 (keys then sort the same).
  // A snapshot nests values under their paths and its own few levels.
  constexpr size_t kCanonicalDepthMax = kValueDepthMax + kPathSegmentsMax + 8;
  VL_RETURN_IF_ERROR((ValueChecker{"canonical JSON", kCanonicalDepthMax}.check(value, 0)));
  // nlohmann's objects are std::maps ordered by std::string, i.e. by unsigned bytes; dump()
  // with no indent writes no whitespace and ensure_ascii=false keeps UTF-8 as is.
  return value.dump(-1, ' ', false, Json::error_handler_t::strict);
}

}  // namespace vellum::rooms
