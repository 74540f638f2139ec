// SPDX-License-Identifier: Apache-2.0
// `vellum append <stream>`: appends one event given by flags, or a batch of
// NDJSON lines from stdin, atomically in one Store::append call, and prints
// where the events landed. Batching stdin into one append (rather than one
// per line) is what makes a partial import impossible: all lines or none.
#include <charconv>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/limits.h"
#include "cli/backend.h"
#include "cli/cli_common.h"

namespace vellum::cli {
namespace {

using Json = nlohmann::ordered_json;

struct AppendOptions {
  std::string stream;
  std::string expected = "any";
  std::string type;
  std::optional<std::string> data;  // unset or "-": NDJSON from stdin
  std::string id;
  std::string subject;
  std::optional<std::string> metadata;
  std::string correlation_id;
  std::string causation_id;
  std::string time;  // occurrence time, RFC 3339
  std::string content_type = "application/json";
  uint32_t schema_version = 1;
};

tl::unexpected<Error> invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

Result<ExpectedRevision> parse_expected(const std::string& text) {
  if (text == "any") return ExpectedRevision::any();
  if (text == "no_stream") return ExpectedRevision::no_stream();
  if (text == "stream_exists") return ExpectedRevision::stream_exists();
  uint64_t revision = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), revision);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return invalid(fmt::format(
        "--expected: '{}' is not any, no_stream, stream_exists or a revision number", text));
  }
  return ExpectedRevision::exact(revision);
}

Result<Uuid> parse_id(const std::string& text, std::string_view what) {
  std::optional<Uuid> id = Uuid::parse(text);
  if (!id) return invalid(fmt::format("{}: '{}' is not a UUID", what, text));
  return *id;
}

Result<int64_t> parse_time(const std::string& text, std::string_view what) {
  std::optional<int64_t> time = parse_rfc3339(text);
  if (!time) return invalid(fmt::format("{}: '{}' is not an RFC 3339 time", what, text));
  return *time;
}

// The event fields given as flags; with stdin they are defaults that each
// line's envelope may override.
Result<EventData> event_from_flags(const AppendOptions& options) {
  EventData event;
  event.type = options.type;
  event.content_type = options.content_type;
  event.subject = options.subject;
  event.correlation_id = options.correlation_id;
  event.causation_id = options.causation_id;
  event.schema_version = options.schema_version;
  if (options.metadata) {
    if (Json::parse(*options.metadata, nullptr, false).is_discarded()) {
      return invalid("--metadata is not valid JSON");
    }
    event.metadata = *options.metadata;
  }
  if (!options.id.empty()) {
    VL_TRY(id, parse_id(options.id, "--id"));
    event.id = id;
  }
  if (!options.time.empty()) {
    VL_TRY(time, parse_time(options.time, "--time"));
    event.occurrence_time_unix_ns = time;
  }
  return event;
}

// Data given as text: JSON content is checked here so a typo fails before
// anything is written, and stored exactly as given.
Status set_data_text(EventData& event, std::string_view text, std::string_view where) {
  if (is_json_content_type(event.content_type) &&
      Json::parse(text, nullptr, false).is_discarded()) {
    return invalid(fmt::format("{}: data is not valid JSON", where));
  }
  event.data = std::string(text);
  return ok_status();
}

Result<std::string> string_field(const Json& envelope, const char* key, std::string_view where) {
  const Json& value = envelope[key];
  if (!value.is_string()) return invalid(fmt::format("{}: \"{}\" must be a string", where, key));
  return value.get<std::string>();
}

// Opaque bytes of an envelope: `<key>_base64` wins; otherwise a JSON value,
// kept as text when it is a string and the content is not JSON.
Result<std::optional<std::string>> bytes_field(const Json& envelope, const std::string& key,
                                               bool json_content, std::string_view where) {
  if (envelope.contains(key + "_base64")) {
    VL_TRY(text, string_field(envelope, (key + "_base64").c_str(), where));
    std::optional<std::string> bytes = base64_decode(text);
    if (!bytes) return invalid(fmt::format("{}: \"{}_base64\" is not base64", where, key));
    return bytes;
  }
  if (!envelope.contains(key)) return std::optional<std::string>();
  const Json& value = envelope[key];
  if (value.is_string() && !json_content)
    return std::optional<std::string>(value.get<std::string>());
  return std::optional<std::string>(value.dump());
}

// The envelope's short text fields, each overriding the flag default.
Status apply_envelope_strings(EventData& event, const Json& envelope, std::string_view where) {
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
    if (!envelope.contains(field.key)) continue;
    VL_TRY(text, string_field(envelope, field.key, where));
    *field.target = std::move(text);
  }
  return ok_status();
}

Result<EventData> event_from_envelope(const Json& envelope, EventData event,
                                      std::string_view where) {
  VL_RETURN_IF_ERROR(apply_envelope_strings(event, envelope, where));
  if (envelope.contains("id")) {
    VL_TRY(text, string_field(envelope, "id", where));
    VL_TRY(id, parse_id(text, where));
    event.id = id;
  }
  if (envelope.contains("time")) {
    VL_TRY(text, string_field(envelope, "time", where));
    VL_TRY(time, parse_time(text, where));
    event.occurrence_time_unix_ns = time;
  }
  if (envelope.contains("schemaversion")) {
    const Json& version = envelope["schemaversion"];
    if (!version.is_number_unsigned() || version.get<uint64_t>() > UINT32_MAX) {
      return invalid(fmt::format("{}: \"schemaversion\" must be a small unsigned number", where));
    }
    event.schema_version = version.get<uint32_t>();
  }
  VL_TRY(data, bytes_field(envelope, "data", is_json_content_type(event.content_type), where));
  if (data) event.data = std::move(*data);
  VL_TRY(metadata, bytes_field(envelope, "metadata", true, where));
  if (metadata) event.metadata = std::move(*metadata);
  return event;
}

// One NDJSON line. With --type every line is raw data; without it every line
// must be an envelope object carrying its own "type". Deciding by the flag
// rather than by sniffing keeps data that happens to have a "type" field safe.
Result<EventData> event_from_line(const AppendOptions& options, const EventData& defaults,
                                  std::string_view line, size_t line_number) {
  std::string where = fmt::format("stdin line {}", line_number);
  EventData event = defaults;
  if (!options.type.empty()) {
    VL_RETURN_IF_ERROR(set_data_text(event, line, where));
    return event;
  }
  Json envelope = Json::parse(line, nullptr, false);
  if (envelope.is_discarded()) return invalid(where + ": not valid JSON");
  if (!envelope.is_object() || !envelope.contains("type")) {
    return invalid(where + ": without --type each line must be an object with a \"type\"");
  }
  return event_from_envelope(envelope, std::move(event), where);
}

Result<std::vector<EventData>> events_from_stdin(const AppendOptions& options,
                                                 const EventData& defaults) {
  std::vector<EventData> events;
  std::string line;
  size_t line_number = 0;
  uint64_t bytes_total = 0;
  while (std::getline(std::cin, line)) {
    line_number++;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    // Stop early instead of buffering input the engine would refuse anyway.
    bytes_total += line.size();
    if (events.size() >= limits::kAppendEventsMax || bytes_total > limits::kAppendBytesMax) {
      return invalid(fmt::format("stdin holds more than one append allows ({} events, {} bytes)",
                                 limits::kAppendEventsMax, limits::kAppendBytesMax));
    }
    VL_TRY(event, event_from_line(options, defaults, line, line_number));
    events.push_back(std::move(event));
  }
  if (events.empty()) return invalid("no events on stdin");
  if (!defaults.id.is_nil() && events.size() > 1) {
    return invalid("--id names one event, but stdin holds several");
  }
  return events;
}

Result<std::vector<EventData>> collect_events(const AppendOptions& options) {
  VL_TRY(defaults, event_from_flags(options));
  if (!options.data || *options.data == "-") return events_from_stdin(options, defaults);
  if (options.type.empty()) return invalid("--type is required with --data");
  VL_RETURN_IF_ERROR(set_data_text(defaults, *options.data, "--data"));
  return std::vector<EventData>{std::move(defaults)};
}

int run_append(const GlobalOptions& global, const AppendOptions& options) {
  Result<ExpectedRevision> expected = parse_expected(options.expected);
  if (!expected) return report_error(expected.error());
  Result<std::vector<EventData>> events = collect_events(options);
  if (!events) return report_error(events.error());
  Result<std::unique_ptr<Backend>> backend = open_backend(global, true);
  if (!backend) return report_error(backend.error());
  Result<AppendResult> result = (*backend)->append(options.stream, *expected, *events);
  if (!result) return report_error(result.error());
  Json out;
  out["stream"] = result->stream;
  out["firstRevision"] = result->first_revision;
  out["lastRevision"] = result->last_revision;
  out["position"] = result->last_position;
  out["idempotent"] = result->idempotent_replay;
  print_json_line(out);
  return kExitOk;
}

}  // namespace

Command register_append(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<AppendOptions>();
  CLI::App* sub = app.add_subcommand(
      "append", "Append one event (--data) or NDJSON lines from stdin, atomically");
  sub->add_option("stream", options->stream, "Stream name")->required();
  sub->add_option("--expected", options->expected,
                  "any | no_stream | stream_exists | <last revision>")
      ->capture_default_str();
  sub->add_option("--type", options->type, "Event type; with stdin, every line is then raw data");
  sub->add_option("--data", options->data, "Event data, or - to read NDJSON from stdin");
  sub->add_option("--id", options->id, "Event id (UUID), for idempotent retries");
  sub->add_option("--subject", options->subject, "The person the event concerns");
  sub->add_option("--metadata", options->metadata, "Metadata (JSON)");
  sub->add_option("--correlation-id", options->correlation_id, "Correlation id");
  sub->add_option("--causation-id", options->causation_id, "Causation id");
  sub->add_option("--time", options->time, "Occurrence time (RFC 3339)");
  sub->add_option("--content-type", options->content_type, "Content type of the data")
      ->capture_default_str();
  sub->add_option("--schema-version", options->schema_version, "Schema version of the data")
      ->capture_default_str();
  return Command{sub, [&global, options] { return run_append(global, *options); }};
}

}  // namespace vellum::cli
