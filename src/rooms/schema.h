// SPDX-License-Identifier: Apache-2.0
// An app's room schema: which merge policy governs each path of the room document, and which
// operations each action performs there. It is data (configured at run time through
// `PUT /apps/{app}/schema`), so it is parsed from JSON and every mistake is an error Result
// naming the place. The format and the rules are specified in docs/api/rooms.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "vellum/result.h"

namespace vellum::rooms {

// Every number that enters room state is an integer JavaScript represents exactly, so that the
// TypeScript client (issue #6) computes the same state bytes: |n| <= 2^53 - 1.
inline constexpr int64_t kSafeIntegerMax = (int64_t{1} << 53) - 1;
// Limits on a schema (checked by RoomSchema::parse).
inline constexpr size_t kSchemaPoliciesMax = 256;
inline constexpr size_t kSchemaActionsMax = 256;
inline constexpr size_t kActionOpsMax = 32;
inline constexpr size_t kActionNameBytesMax = 128;
inline constexpr size_t kPathSegmentsMax = 16;
// Also bounds the value of a `{participant}` or `{payload.x}` placeholder.
inline constexpr size_t kPathSegmentBytesMax = 256;
// A list item's "id".
inline constexpr size_t kItemIdBytesMax = 256;
// Nesting of values that enter state (and of value templates): recursion stays shallow.
inline constexpr size_t kValueDepthMax = 64;

// How concurrent changes to one path combine (docs/api/rooms.md, "Policies").
enum class Policy { kLww, kSet, kList, kMax, kCounter };
// What an action does to a path. Each fits one policy (two for kDelete: lww and list).
enum class OpKind { kSet, kAdd, kRemove, kIncrement, kMax, kInsert, kDelete };

// "lww", "set", "list", "max", "counter".
const char* policy_name(Policy policy);
// "set", "add", "remove", "increment", "max", "insert", "delete".
const char* op_kind_name(OpKind kind);
Result<Policy> policy_from_name(std::string_view name);

// A path to a member of the document: unescaped JSON Pointer segments. Paths address object
// members only, never array elements.
using Path = std::vector<std::string>;

// One segment of an operation's path: a literal, or a placeholder resolved from the event.
struct PathSegment {
  enum class Kind { kLiteral, kParticipant, kPayloadField };
  Kind kind = Kind::kLiteral;
  std::string literal;              // kLiteral: the unescaped segment
  std::vector<std::string> fields;  // kPayloadField: "{payload.a.b}" -> {"a", "b"}
};

// "/scores/*" -> policy kCounter. A `*` segment matches any one segment.
struct PolicyRule {
  std::string pointer;  // as written in the schema
  Path pattern;
  Policy policy = Policy::kLww;
};

// One operation of an action, validated against the policy of the rule it addresses.
struct OpSpec {
  OpKind kind = OpKind::kSet;
  std::string pointer;  // as written, for messages
  std::vector<PathSegment> path;
  size_t rule_index = 0;  // into RoomSchema::rules()
  // The value template (literal JSON in which "$..." strings are references to the event);
  // nullopt where the op takes none (lww delete; increment defaults to 1).
  std::optional<nlohmann::json> value;
};

// An immutable, validated schema. Cheap to share between rooms (RoomState holds a shared_ptr).
// Thread-safe for concurrent readers.
class RoomSchema {
 public:
  // Parses and validates a schema document (format: docs/api/rooms.md, "Schema").
  // Errors: kInvalidArgument naming the first mistake: unknown keys, bad pointers, overlapping
  // policy paths, unknown policies or ops, an op that does not fit its path's policy, a path
  // that matches no policy, an unknown "$" reference, a literal value the op cannot take, or
  // an exceeded limit.
  static Result<RoomSchema> parse(const nlohmann::json& schema);
  // The same from JSON text; malformed JSON is kInvalidArgument.
  static Result<RoomSchema> parse_text(std::string_view text);

  const std::vector<PolicyRule>& rules() const { return rules_; }
  // The operations of `action`, or nullptr when the schema does not declare it.
  const std::vector<OpSpec>* find_action(std::string_view action) const;
  // The index of the rule whose pattern matches the concrete `path`, if any. At most one can:
  // parse() refuses patterns that overlap.
  std::optional<size_t> match(const Path& path) const;

 private:
  std::vector<PolicyRule> rules_;
  std::map<std::string, std::vector<OpSpec>, std::less<>> actions_;
};

// What a value template's references resolve to (docs/api/rooms.md, "Values").
struct TemplateContext {
  std::string_view participant;                // "$participant"
  std::string_view event_id;                   // "$eventId"
  const nlohmann::json& payload = kNoPayload;  // "$payload", "$payload.a.b"

  static inline const nlohmann::json kNoPayload = nlohmann::json::object();
};

// Replaces the references in `value` (a template RoomSchema::parse accepted): "$payload",
// "$payload.a.b", "$participant", "$eventId"; "$$x" is the literal string "$x".
// Errors: kInvalidArgument when the payload lacks a referenced field.
Result<nlohmann::json> resolve_value(const nlohmann::json& value, const TemplateContext& context);
// The member of `payload` at `fields` ({"a", "b"}: payload.a.b). Errors: kInvalidArgument when
// it is missing.
Result<const nlohmann::json*> payload_field(const nlohmann::json& payload,
                                            const std::vector<std::string>& fields);

// Parses a JSON Pointer ("/a/b~1c" -> {"a", "b/c"}). Errors: kInvalidArgument for a pointer
// that does not start with '/', has an empty segment or a bad '~' escape, or exceeds
// kPathSegmentsMax / kPathSegmentBytesMax.
Result<Path> parse_pointer(std::string_view pointer);
// The inverse of parse_pointer: escapes '~' and '/'.
std::string format_pointer(const Path& path);

// The canonical serialization every replica hashes: object keys sorted by their UTF-8 bytes,
// no whitespace, integers written as integers. Errors: kInvalidArgument for a non-integer
// number (their text differs between C++ and JavaScript) or a string that is not UTF-8.
Result<std::string> canonical_json(const nlohmann::json& value);

// Checks that `value` may enter room state: integers within ±kSafeIntegerMax and no other
// numbers, UTF-8 strings, nesting <= kValueDepthMax. `what` names the value in the error.
Status check_state_value(const nlohmann::json& value, std::string_view what);

// Checks that `value` is what an op of `kind` takes (after the state check above):
// set: any value; add/remove: a string, integer or boolean; increment/max: an integer;
// insert: an object whose "id" is a non-empty string; list delete: a non-empty string id.
Status check_op_value(OpKind kind, Policy policy, const nlohmann::json& value);

}  // namespace vellum::rooms
