// SPDX-License-Identifier: Apache-2.0
// CloudEvents JSON codec and HTTP body parsing (see codec.h).
#include "wire/codec.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <fmt/format.h>
#include <time.h>

#include "base/limits.h"

namespace vellum::wire {

namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;
// Seconds that fit in int64 nanoseconds (years 1677 to 2262).
constexpr int64_t kUnixSecondsMax = INT64_MAX / kNanosPerSecond - 1;
constexpr int64_t kUnixSecondsMin = INT64_MIN / kNanosPerSecond + 1;

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Parses a field of RFC 3339 text left to right; any mismatch latches `ok`
// to false so the caller checks once at the end.
struct TimeCursor {
  std::string_view text;
  size_t pos = 0;
  bool ok = true;

  int digits(size_t count) {
    int value = 0;
    if (pos + count > text.size()) ok = false;
    for (size_t i = 0; ok && i < count; i++) {
      char c = text[pos + i];
      if (c < '0' || c > '9') ok = false;
      value = value * 10 + (c - '0');
    }
    pos += count;
    return ok ? value : 0;
  }
  void literal(char expected) {
    if (pos >= text.size() || (text[pos] | 0x20) != (expected | 0x20)) ok = false;
    pos++;
  }
  bool peek(char c) const { return pos < text.size() && text[pos] == c; }
};

// The ".123" fraction as nanoseconds; 0 if absent. More than 9 digits would
// silently lose precision, so they are rejected.
int64_t parse_fraction(TimeCursor& cursor) {
  if (!cursor.peek('.')) return 0;
  cursor.pos++;
  int64_t nanos = 0;
  size_t count = 0;
  while (cursor.pos < cursor.text.size() && cursor.text[cursor.pos] >= '0' &&
         cursor.text[cursor.pos] <= '9') {
    nanos = nanos * 10 + (cursor.text[cursor.pos] - '0');
    cursor.pos++;
    count++;
  }
  if (count == 0 || count > 9) cursor.ok = false;
  for (; count < 9; count++) nanos *= 10;
  return nanos;
}

// The zone suffix as seconds east of UTC.
int64_t parse_offset(TimeCursor& cursor) {
  if (cursor.peek('Z') || cursor.peek('z')) {
    cursor.pos++;
    return 0;
  }
  int sign = cursor.peek('-') ? -1 : 1;
  if (!cursor.peek('+') && !cursor.peek('-')) cursor.ok = false;
  cursor.pos++;
  int hours = cursor.digits(2);
  cursor.literal(':');
  int minutes = cursor.digits(2);
  if (hours > 23 || minutes > 59) cursor.ok = false;
  return int64_t{sign} * (int64_t{hours} * 3600 + int64_t{minutes} * 60);
}

}  // namespace

bool is_json_content_type(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  std::string lower(media);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == "application/json" || lower.ends_with("+json");
}

namespace {

// Emits opaque bytes as JSON when they are JSON (the common case, and what
// lets `read` output be piped into jq), otherwise as base64 under
// `<key>_base64` so no byte is lost or mangled.
void put_bytes(OrderedJson& out, const std::string& key, const std::string& bytes, bool try_json) {
  if (try_json) {
    OrderedJson parsed = OrderedJson::parse(bytes, nullptr, false);
    if (!parsed.is_discarded()) {
      out[key] = std::move(parsed);
      return;
    }
  }
  out[key + "_base64"] = base64_encode(bytes);
}

}  // namespace

OrderedJson event_to_json(const RecordedEvent& event) {
  OrderedJson out;
  out["specversion"] = "1.0";
  out["id"] = event.id.to_string();
  out["type"] = event.type;
  out["source"] = "vellum";
  if (!event.subject.empty()) out["subject"] = event.subject;
  if (event.occurrence_time_unix_ns != 0)
    out["time"] = format_rfc3339(event.occurrence_time_unix_ns);
  out["datacontenttype"] = event.content_type;
  if (!event.data.empty())
    put_bytes(out, "data", event.data, is_json_content_type(event.content_type));
  out["stream"] = event.stream;
  out["streamrevision"] = event.revision;
  out["position"] = event.position;
  out["recordedtime"] = format_rfc3339(event.recorded_time_unix_ns);
  if (!event.correlation_id.empty()) out["correlationid"] = event.correlation_id;
  if (!event.causation_id.empty()) out["causationid"] = event.causation_id;
  out["schemaversion"] = event.schema_version;
  if (!event.metadata.empty()) put_bytes(out, "metadata", event.metadata, true);
  return out;
}

std::string format_rfc3339(int64_t unix_ns) {
  int64_t seconds = unix_ns / kNanosPerSecond;
  int64_t nanos = unix_ns % kNanosPerSecond;
  if (nanos < 0) {  // floor, so times before 1970 print the right second
    nanos += kNanosPerSecond;
    seconds--;
  }
  time_t time = static_cast<time_t>(seconds);
  struct tm parts {};
  gmtime_r(&time, &parts);
  std::string text =
      fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", parts.tm_year + 1900, parts.tm_mon + 1,
                  parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec);
  if (nanos != 0) text += fmt::format(".{:09}", nanos);
  text.push_back('Z');
  return text;
}

std::optional<int64_t> parse_rfc3339(std::string_view text) {
  TimeCursor cursor{text};
  struct tm parts {};
  parts.tm_year = cursor.digits(4) - 1900;
  cursor.literal('-');
  parts.tm_mon = cursor.digits(2) - 1;
  cursor.literal('-');
  parts.tm_mday = cursor.digits(2);
  cursor.literal('T');
  parts.tm_hour = cursor.digits(2);
  cursor.literal(':');
  parts.tm_min = cursor.digits(2);
  cursor.literal(':');
  parts.tm_sec = cursor.digits(2);
  int64_t nanos = parse_fraction(cursor);
  int64_t offset_seconds = parse_offset(cursor);
  if (!cursor.ok || cursor.pos != text.size()) return std::nullopt;
  struct tm wanted = parts;
  int64_t seconds = timegm(&parts);
  // timegm normalizes (Feb 30 -> Mar 2); a changed field means the input was
  // not a real date or time.
  if (parts.tm_year != wanted.tm_year || parts.tm_mon != wanted.tm_mon ||
      parts.tm_mday != wanted.tm_mday || parts.tm_hour != wanted.tm_hour ||
      parts.tm_min != wanted.tm_min || parts.tm_sec != wanted.tm_sec) {
    return std::nullopt;
  }
  seconds -= offset_seconds;
  if (seconds < kUnixSecondsMin || seconds > kUnixSecondsMax) return std::nullopt;
  return seconds * kNanosPerSecond + nanos;
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    size_t count = std::min<size_t>(3, bytes.size() - i);
    uint32_t group = 0;
    for (size_t j = 0; j < 3; j++) {
      uint8_t byte = j < count ? static_cast<uint8_t>(bytes[i + j]) : 0;
      group = (group << 8) | byte;
    }
    for (size_t j = 0; j < 4; j++) {
      out.push_back(j <= count ? kBase64Alphabet[(group >> (18 - 6 * j)) & 0x3f] : '=');
    }
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t group = 0;
    size_t padding = 0;
    for (size_t j = 0; j < 4; j++) {
      char c = text[i + j];
      uint32_t value = 0;
      if (c == '=') {
        // Padding only in the last two places of the last group.
        if (i + 4 != text.size() || j < 2) return std::nullopt;
        padding++;
      } else {
        size_t found = kBase64Alphabet.find(c);
        if (found == std::string_view::npos || padding > 0) return std::nullopt;
        value = static_cast<uint32_t>(found);
      }
      group = (group << 6) | value;
    }
    for (size_t j = 0; j < 3 - padding; j++) {
      out.push_back(static_cast<char>((group >> (16 - 8 * j)) & 0xff));
    }
  }
  return out;
}

std::string dump(const OrderedJson& value) {
  return value.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

std::string event_to_json_text(const RecordedEvent& event) { return dump(event_to_json(event)); }

// ---- Events in ----

namespace {

// Deeper JSON than this is refused before parsing: serializing it again is
// recursive, and no event needs it.
constexpr int kJsonDepthMax = 64;

Error invalid_error(std::string message) {
  return Error{ErrorCode::kInvalidArgument, std::move(message), std::nullopt};
}

tl::unexpected<Error> invalid(std::string message) {
  return tl::unexpected<Error>(invalid_error(std::move(message)));
}

// Counts bracket nesting outside strings; a linear scan that cannot overflow.
bool nesting_within(std::string_view text, int depth_max) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); i++) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        i++;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > depth_max) return false;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return true;
}

Result<Json> parse_json(std::string_view body, std::string_view what) {
  if (!nesting_within(body, kJsonDepthMax)) {
    return invalid(fmt::format("{} nests deeper than {} levels", what, kJsonDepthMax));
  }
  Json parsed = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return invalid(fmt::format("{} is not valid JSON", what));
  return parsed;
}

// Never `object[key]` on a const object for a key that may be absent: that
// is an assertion in nlohmann (undefined behaviour without assertions).
Result<std::string> string_field(const Json& object, const char* key, std::string_view where) {
  auto it = object.find(key);
  if (it == object.end()) return invalid(fmt::format("{}.{} is required", where, key));
  if (!it->is_string()) return invalid(fmt::format("{}.{} must be a string", where, key));
  return it->get<std::string>();
}

bool is_event_attribute(std::string_view key, const EventParseOptions& options) {
  static constexpr std::string_view kAccepted[] = {
      "type",          "data",        "data_base64",     "id",
      "subject",       "time",        "datacontenttype", "metadata",
      "correlationid", "causationid", "schemaversion",   "specversion",
      "source"};
  static constexpr std::string_view kRecorded[] = {"stream", "streamrevision", "position",
                                                   "recordedtime"};
  if (std::find(std::begin(kAccepted), std::end(kAccepted), key) != std::end(kAccepted)) {
    return true;
  }
  return options.ignore_recorded_attributes &&
         std::find(std::begin(kRecorded), std::end(kRecorded), key) != std::end(kRecorded);
}

Status check_attributes(const Json& object, std::string_view where,
                        const EventParseOptions& options) {
  for (const auto& [key, value] : object.items()) {
    if (!is_event_attribute(key, options)) {
      return invalid(fmt::format(
          "{}: unknown attribute \"{}\" (extension attributes are not stored; put them in "
          "\"metadata\")",
          where, key));
    }
  }
  return ok_status();
}

Status set_short_strings(EventData& event, const Json& object, std::string_view where) {
  struct Field {
    const char* key;
    std::string* target;
  };
  const Field fields[] = {{"type", &event.type},
                          {"datacontenttype", &event.content_type},
                          {"subject", &event.subject},
                          {"correlationid", &event.correlation_id},
                          {"causationid", &event.causation_id}};
  for (const Field& field : fields) {
    if (!object.contains(field.key)) continue;
    VL_TRY(text, string_field(object, field.key, where));
    *field.target = std::move(text);
  }
  return ok_status();
}

Status set_data(EventData& event, const Json& object, std::string_view where) {
  bool has_data = object.contains("data");
  if (object.contains("data_base64")) {
    if (has_data) return invalid(fmt::format("{}: give data or data_base64, not both", where));
    VL_TRY(text, string_field(object, "data_base64", where));
    std::optional<std::string> bytes = base64_decode(text);
    if (!bytes) return invalid(fmt::format("{}.data_base64 is not base64", where));
    event.data = std::move(*bytes);
    return ok_status();
  }
  if (!has_data) return ok_status();
  const Json& data = object["data"];
  // Non-JSON content given as a JSON string is stored as the string's bytes
  // ("text/plain" data "hello" is the five bytes hello).
  if (data.is_string() && !is_json_content_type(event.content_type)) {
    event.data = data.get<std::string>();
  } else {
    event.data = data.dump();
  }
  return ok_status();
}

Status set_scalars(EventData& event, const Json& object, std::string_view where) {
  if (object.contains("specversion")) {
    VL_TRY(version, string_field(object, "specversion", where));
    if (version != "1.0") {
      return invalid(fmt::format("{}.specversion must be \"1.0\", not \"{}\"", where, version));
    }
  }
  if (object.contains("source") && !object["source"].is_string()) {
    return invalid(fmt::format("{}.source must be a string", where));
  }
  if (object.contains("id")) {
    VL_TRY(text, string_field(object, "id", where));
    std::optional<Uuid> id = Uuid::parse(text);
    if (!id) return invalid(fmt::format("{}.id: \"{}\" is not a UUID", where, text));
    event.id = *id;
  }
  if (object.contains("time")) {
    VL_TRY(text, string_field(object, "time", where));
    std::optional<int64_t> time = parse_rfc3339(text);
    if (!time) return invalid(fmt::format("{}.time: \"{}\" is not an RFC 3339 time", where, text));
    event.occurrence_time_unix_ns = *time;
  }
  if (object.contains("schemaversion")) {
    const Json& version = object["schemaversion"];
    if (!version.is_number_unsigned() || version.get<uint64_t>() > UINT32_MAX) {
      return invalid(fmt::format("{}.schemaversion must be an unsigned 32-bit number", where));
    }
    event.schema_version = version.get<uint32_t>();
  }
  if (object.contains("metadata")) {
    const Json& metadata = object["metadata"];
    if (!metadata.is_object() && !metadata.is_null()) {
      return invalid(fmt::format("{}.metadata must be a JSON object", where));
    }
    if (metadata.is_object()) event.metadata = metadata.dump();
  }
  return ok_status();
}

Result<std::vector<EventData>> events_from_array(const Json& array, std::string_view where) {
  if (!array.is_array()) return invalid(fmt::format("{} must be an array of events", where));
  if (array.empty()) return invalid(fmt::format("{} is empty: an append needs events", where));
  if (array.size() > limits::kAppendEventsMax) {
    return invalid(fmt::format("{} holds {} events; at most {} per append", where, array.size(),
                               limits::kAppendEventsMax));
  }
  std::vector<EventData> events;
  events.reserve(array.size());
  for (size_t i = 0; i < array.size(); i++) {
    VL_TRY(event, event_from_json(array[i], fmt::format("{}[{}]", where, i)));
    events.push_back(std::move(event));
  }
  return events;
}

bool media_type_is(std::string_view content_type, std::string_view wanted) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  if (media.size() != wanted.size()) return false;
  for (size_t i = 0; i < media.size(); i++) {
    if (std::tolower(static_cast<unsigned char>(media[i])) != wanted[i]) return false;
  }
  return true;
}

Result<std::optional<uint64_t>> optional_count(const Json& object, const char* key) {
  if (!object.contains(key) || object[key].is_null()) return std::optional<uint64_t>();
  const Json& value = object[key];
  if (!value.is_number_unsigned()) {
    return invalid(fmt::format("metadata.{} must be a non-negative integer or null", key));
  }
  return std::optional<uint64_t>(value.get<uint64_t>());
}

}  // namespace

Result<ExpectedRevision> parse_expected_revision(std::string_view text, std::string_view where) {
  if (text == "any") return ExpectedRevision::any();
  if (text == "no_stream") return ExpectedRevision::no_stream();
  if (text == "stream_exists") return ExpectedRevision::stream_exists();
  uint64_t revision = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), revision);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return invalid(fmt::format(
        "{}: \"{}\" is not any, no_stream, stream_exists or a revision number", where, text));
  }
  return ExpectedRevision::exact(revision);
}

Result<ExpectedRevision> expected_revision_from_json(const Json& value, std::string_view where) {
  if (value.is_null()) return ExpectedRevision::any();
  if (value.is_number_unsigned()) return ExpectedRevision::exact(value.get<uint64_t>());
  if (value.is_string()) return parse_expected_revision(value.get<std::string>(), where);
  return invalid(fmt::format(
      "{} must be \"any\", \"no_stream\", \"stream_exists\" or a revision number", where));
}

Result<EventData> event_from_json(const Json& object, std::string_view where,
                                  const EventParseOptions& options) {
  if (!object.is_object()) return invalid(fmt::format("{} must be a JSON object", where));
  VL_RETURN_IF_ERROR(check_attributes(object, where, options));
  if (!object.contains("type")) return invalid(fmt::format("{}.type is required", where));
  EventData event;
  VL_RETURN_IF_ERROR(set_short_strings(event, object, where));
  VL_RETURN_IF_ERROR(set_scalars(event, object, where));
  VL_RETURN_IF_ERROR(set_data(event, object, where));
  return event;
}

Result<AppendBody> parse_append_body(std::string_view body, std::string_view content_type,
                                     std::string_view expected_header) {
  VL_TRY(parsed, parse_json(body, "the request body"));
  AppendBody result;
  bool wrapped = parsed.is_object() && parsed.contains("events");
  if (!expected_header.empty()) {
    if (wrapped && parsed.contains("expectedRevision")) {
      return invalid(
          "give the expected revision in the body or the Expected-Revision header, "
          "not both");
    }
    VL_TRY(expected, parse_expected_revision(expected_header, "the Expected-Revision header"));
    result.expected = expected;
  }
  if (wrapped) {
    for (const auto& [key, value] : parsed.items()) {
      if (key != "events" && key != "expectedRevision") {
        return invalid(fmt::format("the request body: unknown field \"{}\"", key));
      }
    }
    if (parsed.contains("expectedRevision")) {
      VL_TRY(expected, expected_revision_from_json(parsed["expectedRevision"], "expectedRevision"));
      result.expected = expected;
    }
    VL_TRY(events, events_from_array(parsed["events"], "events"));
    result.events = std::move(events);
    return result;
  }
  if (parsed.is_object() && media_type_is(content_type, "application/cloudevents+json")) {
    VL_TRY(event, event_from_json(parsed, "the event"));
    result.events.push_back(std::move(event));
    return result;
  }
  if (!parsed.is_array()) {
    return invalid(
        "the request body must be {\"expectedRevision\", \"events\": [...]} or an "
        "array of events");
  }
  VL_TRY(events, events_from_array(parsed, "events"));
  result.events = std::move(events);
  return result;
}

Result<std::vector<StreamAppend>> parse_transaction_body(std::string_view body) {
  VL_TRY(parsed, parse_json(body, "the request body"));
  if (!parsed.is_object() || !parsed.contains("appends") || !parsed["appends"].is_array()) {
    return invalid(
        "the request body must be {\"appends\": [{\"stream\", \"expectedRevision\", "
        "\"events\"}, ...]}");
  }
  const Json& appends = parsed["appends"];
  if (appends.empty()) return invalid("appends is empty");
  if (appends.size() > limits::kAppendStreamsMax) {
    return invalid(fmt::format("appends names {} streams; at most {} per transaction",
                               appends.size(), limits::kAppendStreamsMax));
  }
  std::vector<StreamAppend> result;
  size_t events_total = 0;
  for (size_t i = 0; i < appends.size(); i++) {
    std::string where = fmt::format("appends[{}]", i);
    const Json& part = appends[i];
    if (!part.is_object()) return invalid(where + " must be an object");
    for (const auto& [key, value] : part.items()) {
      if (key != "stream" && key != "expectedRevision" && key != "events") {
        return invalid(fmt::format("{}: unknown field \"{}\"", where, key));
      }
    }
    VL_TRY(stream, string_field(part, "stream", where));
    StreamAppend append;
    append.stream = std::move(stream);
    if (part.contains("expectedRevision")) {
      VL_TRY(expected,
             expected_revision_from_json(part["expectedRevision"], where + ".expectedRevision"));
      append.expected = expected;
    }
    auto events_field = part.find("events");
    if (events_field == part.end()) return invalid(where + ".events is required");
    VL_TRY(events, events_from_array(*events_field, where + ".events"));
    events_total += events.size();
    if (events_total > limits::kAppendEventsMax) {
      return invalid(
          fmt::format("the transaction holds more than {} events", limits::kAppendEventsMax));
    }
    append.events = std::move(events);
    result.push_back(std::move(append));
  }
  return result;
}

Result<StreamMetadata> parse_metadata_body(std::string_view body) {
  VL_TRY(parsed, parse_json(body, "the request body"));
  if (!parsed.is_object()) return invalid("metadata must be a JSON object");
  for (const auto& [key, value] : parsed.items()) {
    if (key != "maxAge" && key != "maxCount" && key != "truncateBefore" && key != "custom") {
      return invalid(fmt::format(
          "metadata: unknown field \"{}\" (maxAge, maxCount, truncateBefore, custom)", key));
    }
  }
  StreamMetadata metadata;
  VL_TRY(max_age, optional_count(parsed, "maxAge"));
  VL_TRY(max_count, optional_count(parsed, "maxCount"));
  VL_TRY(truncate_before, optional_count(parsed, "truncateBefore"));
  metadata.max_age_seconds = max_age;
  metadata.max_count = max_count;
  metadata.truncate_before = truncate_before;
  if (parsed.contains("custom") && !parsed["custom"].is_null()) {
    metadata.custom = parsed["custom"].dump();
  }
  return metadata;
}

OrderedJson metadata_to_json(const StreamMetadata& metadata) {
  OrderedJson out = OrderedJson::object();
  auto put = [&](const char* key, const std::optional<uint64_t>& value) {
    out[key] = value ? OrderedJson(*value) : OrderedJson(nullptr);
  };
  put("maxAge", metadata.max_age_seconds);
  put("maxCount", metadata.max_count);
  put("truncateBefore", metadata.truncate_before);
  if (metadata.custom.empty()) {
    out["custom"] = nullptr;
  } else {
    OrderedJson custom = OrderedJson::parse(metadata.custom, nullptr, false);
    out["custom"] = custom.is_discarded() ? OrderedJson(metadata.custom) : custom;
  }
  return out;
}

}  // namespace vellum::wire
