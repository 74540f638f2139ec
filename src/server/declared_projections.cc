// SPDX-License-Identifier: Apache-2.0
#include "server/declared_projections.h"

#include <charconv>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "base/assert.h"
#include "wire/codec.h"

namespace vellum::server {

namespace {

tl::unexpected<Error> invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

// The engine checks names too; checking here makes a bad config file fail
// at startup with the file's own words.
bool is_valid_projection_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// RFC 6901: "/a/b~1c" -> {"a", "b/c"}. nullopt if malformed (no leading
// '/', or '~' not followed by 0 or 1). Parsed once, at startup, so that
// applying an event walks the JSON without exceptions.
std::optional<std::vector<std::string>> parse_json_pointer(std::string_view pointer) {
  if (pointer.empty() || pointer.front() != '/') return std::nullopt;
  std::vector<std::string> tokens;
  for (char c : pointer.substr(1)) {
    if (tokens.empty()) tokens.emplace_back();
    if (c == '/') {
      tokens.emplace_back();
    } else {
      tokens.back().push_back(c);
    }
  }
  if (tokens.empty()) tokens.emplace_back();  // "/" selects the member named ""
  for (std::string& token : tokens) {
    std::string unescaped;
    for (size_t i = 0; i < token.size(); i++) {
      if (token[i] != '~') {
        unescaped.push_back(token[i]);
        continue;
      }
      if (i + 1 >= token.size() || (token[i + 1] != '0' && token[i + 1] != '1')) {
        return std::nullopt;
      }
      unescaped.push_back(token[i + 1] == '0' ? '~' : '/');
      i++;
    }
    token = std::move(unescaped);
  }
  return tokens;
}

// The value `tokens` select in `document`, or nullptr when absent.
const wire::OrderedJson* follow_pointer(const wire::OrderedJson& document,
                                        const std::vector<std::string>& tokens) {
  const wire::OrderedJson* node = &document;
  for (const std::string& token : tokens) {
    if (node->is_object()) {
      auto member = node->find(token);
      if (member == node->end()) return nullptr;
      node = &*member;
    } else if (node->is_array()) {
      // Array indexes are decimal without leading zeros (RFC 6901, 4).
      size_t index = 0;
      auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), index);
      bool canonical = !token.empty() && (token == "0" || token.front() != '0');
      if (ec != std::errc() || end != token.data() + token.size() || !canonical ||
          index >= node->size()) {
        return nullptr;
      }
      node = &(*node)[index];
    } else {
      return nullptr;
    }
  }
  return node;
}

// The key a JSON pointer selects: a string, or an integer as its digits.
std::optional<std::string> pointer_key(const DeclaredProjection& projection,
                                       const wire::OrderedJson& cloud_event) {
  const wire::OrderedJson* value = follow_pointer(cloud_event, projection.key_pointer_tokens);
  if (value == nullptr) return std::nullopt;
  if (value->is_string()) return value->get<std::string>();
  if (value->is_number_integer()) return value->dump();
  return std::nullopt;
}

// The event's key, or nullopt when the event has none (it is then skipped).
std::optional<std::string> event_key(const DeclaredProjection& projection, const EventRef& event,
                                     const wire::OrderedJson* cloud_event) {
  std::optional<std::string> key;
  switch (projection.key) {
    case ProjectionKey::kSubject:
      key = std::string(event.subject);
      break;
    case ProjectionKey::kStream:
      key = std::string(event.stream);
      break;
    case ProjectionKey::kJsonPointer:
      VL_ASSERT(cloud_event != nullptr);
      key = pointer_key(projection, *cloud_event);
      break;
  }
  if (!key || key->empty() || key->size() > kDeclaredKeyBytesMax) return std::nullopt;
  return key;
}

Status reduce_merge(const EventRef& event, const std::string& key, KvView& view) {
  if (event.data.empty() || !wire::is_json_content_type(event.content_type)) return ok_status();
  wire::OrderedJson patch = wire::OrderedJson::parse(event.data, nullptr, false);
  if (patch.is_discarded()) return ok_status();
  VL_TRY(current, view.get(key));
  wire::OrderedJson value;  // null: RFC 7386 merges into an absent target as into null
  if (current) {
    value = wire::OrderedJson::parse(*current, nullptr, false);
    if (value.is_discarded()) {
      return make_error(ErrorCode::kDataLoss,
                        fmt::format("key \"{}\" does not hold JSON; reset the projection", key));
    }
  }
  value.merge_patch(patch);
  // A null result is what merging a deletion leaves: the key goes, so that
  // a `"data": null` event erases what the read model knew.
  if (value.is_null()) {
    view.erase(key);
  } else {
    view.put(key, wire::dump(value));
  }
  return ok_status();
}

Status reduce_count(const std::string& key, KvView& view) {
  VL_TRY(current, view.get(key));
  uint64_t count = 0;
  if (current) {
    auto [end, ec] = std::from_chars(current->data(), current->data() + current->size(), count);
    if (ec != std::errc() || end != current->data() + current->size()) {
      return make_error(ErrorCode::kDataLoss,
                        fmt::format("key \"{}\" does not hold a count; reset the projection", key));
    }
  }
  view.put(key, std::to_string(count + 1));
  return ok_status();
}

}  // namespace

const char* projection_reduce_name(ProjectionReduce reduce) {
  switch (reduce) {
    case ProjectionReduce::kLatest:
      return "latest";
    case ProjectionReduce::kMerge:
      return "merge";
    case ProjectionReduce::kCount:
      return "count";
  }
  return "?";
}

Result<DeclaredProjection> parse_declared_projection(const DeclaredProjectionFields& fields,
                                                     std::string_view where) {
  DeclaredProjection projection;
  if (!is_valid_projection_name(fields.name)) {
    return invalid(fmt::format("{}: name \"{}\" must be 1-128 characters of A-Z a-z 0-9 _ . -",
                               where, fields.name));
  }
  projection.name = fields.name;
  if (!fields.stream.empty() && !fields.filter.empty()) {
    return invalid(fmt::format(
        "{}: stream selects one stream; it does not combine with category, types, subject or "
        "streamPrefix",
        where));
  }
  projection.source.stream = fields.stream;
  projection.source.filter = fields.filter;
  if (fields.key == "subject" || fields.key.empty()) {
    projection.key = ProjectionKey::kSubject;
  } else if (fields.key == "stream") {
    projection.key = ProjectionKey::kStream;
  } else {
    std::optional<std::vector<std::string>> tokens = parse_json_pointer(fields.key);
    if (!tokens) {
      return invalid(fmt::format(
          "{}: key \"{}\" must be \"subject\", \"stream\" or a JSON pointer into the "
          "CloudEvents JSON of the event such as \"/data/userId\" (RFC 6901: starts with /, "
          "~ only as ~0 or ~1)",
          where, fields.key));
    }
    projection.key = ProjectionKey::kJsonPointer;
    projection.key_pointer = fields.key;
    projection.key_pointer_tokens = std::move(*tokens);
  }
  if (fields.reduce == "latest" || fields.reduce.empty()) {
    projection.reduce = ProjectionReduce::kLatest;
  } else if (fields.reduce == "merge") {
    projection.reduce = ProjectionReduce::kMerge;
  } else if (fields.reduce == "count") {
    projection.reduce = ProjectionReduce::kCount;
  } else {
    return invalid(
        fmt::format("{}: reduce \"{}\" must be latest, merge or count", where, fields.reduce));
  }
  return projection;
}

Status apply_declared_projection(const DeclaredProjection& projection, const EventRef& event,
                                 KvView& view) {
  // The CloudEvents form is built only when something needs it: it copies
  // and parses the whole event.
  std::optional<wire::OrderedJson> cloud_event;
  if (projection.key == ProjectionKey::kJsonPointer ||
      projection.reduce == ProjectionReduce::kLatest) {
    cloud_event = wire::event_to_json(event.to_recorded());
  }
  std::optional<std::string> key =
      event_key(projection, event, cloud_event ? &*cloud_event : nullptr);
  if (!key) return ok_status();
  switch (projection.reduce) {
    case ProjectionReduce::kLatest:
      view.put(*key, wire::dump(*cloud_event));
      return ok_status();
    case ProjectionReduce::kMerge:
      return reduce_merge(event, *key, view);
    case ProjectionReduce::kCount:
      return reduce_count(*key, view);
  }
  VL_ASSERT(false);
  return ok_status();
}

ProjectionSpec make_declared_projection_spec(const DeclaredProjection& projection, ToolkitDb& db) {
  ProjectionSpec spec;
  spec.name = projection.name;
  spec.source = projection.source;
  spec.sink = make_kv_sink(db, projection.name, [projection](const EventRef& event, KvView& view) {
    return apply_declared_projection(projection, event, view);
  });
  spec.start = true;
  return spec;
}

}  // namespace vellum::server
