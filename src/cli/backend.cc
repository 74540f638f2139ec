// SPDX-License-Identifier: Apache-2.0
// The two backends of the `vellum` tool (see backend.h): the embedded store,
// and a server reached through its HTTP API. The remote one builds request
// targets and bodies the way src/server/api.cc reads them, and turns the
// answers back into the values the embedded one returns.
#include "cli/backend.h"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

namespace vellum::cli {

namespace {

using OrderedJson = nlohmann::ordered_json;

// ---- Embedded ----

std::vector<OrderedJson> to_json(const std::vector<RecordedEvent>& events) {
  std::vector<OrderedJson> out;
  out.reserve(events.size());
  for (const RecordedEvent& event : events) out.push_back(event_to_json(event));
  return out;
}

class EmbeddedBackend final : public Backend {
 public:
  explicit EmbeddedBackend(std::unique_ptr<Store> store) : store_(std::move(store)) {}

  Result<AppendResult> append(const std::string& stream, ExpectedRevision expected,
                              std::span<const EventData> events) override {
    return store_->append(stream, expected, events);
  }
  Result<std::vector<AppendResult>> append_multi(std::span<const StreamAppend> appends) override {
    return store_->append_multi(appends);
  }
  Result<Page> read_stream(const std::string& stream, const ReadStreamOptions& options) override {
    VL_TRY(page, store_->read_stream(stream, options));
    return Page{to_json(page.events), page.next_revision};
  }
  Result<Page> read_all(const ReadAllOptions& options) override {
    VL_TRY(page, store_->read_all(options));
    return Page{to_json(page.events), page.next_position};
  }
  Result<StreamInfo> stream_info(const std::string& stream) override {
    return store_->stream_info(stream);
  }
  Result<uint64_t> head_position(const EventFilter&) override { return store_->head_position(); }
  Store* store() override { return store_.get(); }

 private:
  std::unique_ptr<Store> store_;
};

// ---- Remote: request targets ----

// Builds "path?k=v&..." with every value percent-encoded.
class Target {
 public:
  explicit Target(std::string path) : text_(std::move(path)) {}
  Target& add(std::string_view key, std::string_view value) {
    text_ += separator_;
    separator_ = '&';
    text_ += key;
    text_ += '=';
    text_ += percent_encode(value);
    return *this;
  }
  Target& add(std::string_view key, uint64_t value) { return add(key, std::to_string(value)); }
  const std::string& str() const { return text_; }

 private:
  std::string text_;
  char separator_ = '?';
};

std::string stream_path(const std::string& stream) { return "/streams/" + percent_encode(stream); }

// The query parameters both reads share.
void add_read_options(Target& target, Direction direction, uint64_t from, uint32_t max_count,
                      const std::optional<uint64_t>& as_of_position,
                      const std::optional<int64_t>& as_of_time) {
  if (direction == Direction::kBackward) target.add("direction", "backward");
  // kEnd is the server's default for backward reads: leave it out.
  if (from != kEnd) target.add("from", from);
  target.add("limit", max_count);
  if (as_of_position) target.add("asOfPosition", *as_of_position);
  if (as_of_time) target.add("asOf", format_rfc3339(*as_of_time));
}

std::string join_types(const std::vector<std::string>& types) {
  std::string out;
  for (const std::string& type : types) {
    if (!out.empty()) out += ',';
    out += type;
  }
  return out;
}

// ---- Remote: answers ----

tl::unexpected<Error> bad_answer(std::string_view what) {
  return make_error(ErrorCode::kInternal,
                    fmt::format("the server's answer to {} is not what vellum expects", what));
}

Result<OrderedJson> parse_object(const std::string& body, std::string_view what) {
  OrderedJson parsed = OrderedJson::parse(body, nullptr, false);
  if (!parsed.is_object()) return bad_answer(what);
  return parsed;
}

// {"events": [...], "next": n | null}
Result<Page> parse_page(const std::string& body, std::string_view what) {
  VL_TRY(parsed, parse_object(body, what));
  if (!parsed.contains("events") || !parsed["events"].is_array()) return bad_answer(what);
  Page page;
  page.events.reserve(parsed["events"].size());
  for (OrderedJson& event : parsed["events"]) {
    if (!event.is_object()) return bad_answer(what);
    page.events.push_back(std::move(event));
  }
  if (parsed.contains("next") && parsed["next"].is_number_unsigned()) {
    page.next = parsed["next"].get<uint64_t>();
  }
  return page;
}

uint64_t unsigned_field(const OrderedJson& object, const char* key) {
  if (!object.contains(key) || !object[key].is_number_unsigned()) return 0;
  return object[key].get<uint64_t>();
}

// The metrics text (Prometheus 0.0.4): "name value" lines; labelled samples
// and comments are skipped.
std::map<std::string, double> parse_metrics(const std::string& text) {
  std::map<std::string, double> samples;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    size_t space = line.find(' ');
    if (line.empty() || line[0] == '#' || space == std::string::npos) continue;
    std::string name = line.substr(0, space);
    if (name.find('{') != std::string::npos) continue;
    char* parsed_end = nullptr;
    double value = std::strtod(line.c_str() + space + 1, &parsed_end);
    if (parsed_end != line.c_str() + space + 1) samples[name] = value;
  }
  return samples;
}

// {"expectedRevision": ..., "events": [...]}: one append's body.
OrderedJson append_json(ExpectedRevision expected, std::span<const EventData> events) {
  OrderedJson body;
  body["expectedRevision"] = expected.to_string();
  body["events"] = OrderedJson::array();
  for (const EventData& event : events) body["events"].push_back(event_data_to_json(event));
  return body;
}

// With every id given, the server's idempotency makes a resend harmless.
bool all_ids(std::span<const EventData> events) {
  return std::all_of(events.begin(), events.end(),
                     [](const EventData& event) { return !event.id.is_nil(); });
}

AppendResult append_result(const OrderedJson& parsed, const std::string& stream) {
  AppendResult result;
  result.stream = parsed.contains("stream") && parsed["stream"].is_string()
                      ? parsed["stream"].get<std::string>()
                      : stream;
  result.first_revision = unsigned_field(parsed, "firstRevision");
  result.last_revision = unsigned_field(parsed, "lastRevision");
  result.first_position = unsigned_field(parsed, "position");
  result.last_position = unsigned_field(parsed, "lastPosition");
  result.idempotent_replay = parsed.contains("idempotentReplay") &&
                             parsed["idempotentReplay"].is_boolean() &&
                             parsed["idempotentReplay"].get<bool>();
  return result;
}

}  // namespace

OrderedJson event_data_to_json(const EventData& event) {
  OrderedJson out;
  if (!event.id.is_nil()) out["id"] = event.id.to_string();
  out["type"] = event.type;
  out["datacontenttype"] = event.content_type;
  if (!event.data.empty()) out["data_base64"] = base64_encode(event.data);
  if (!event.subject.empty()) out["subject"] = event.subject;
  if (event.occurrence_time_unix_ns != 0) {
    out["time"] = format_rfc3339(event.occurrence_time_unix_ns);
  }
  if (!event.correlation_id.empty()) out["correlationid"] = event.correlation_id;
  if (!event.causation_id.empty()) out["causationid"] = event.causation_id;
  out["schemaversion"] = event.schema_version;
  if (!event.metadata.empty()) {
    // The API takes metadata as a JSON object only; anything else is sent
    // as a string so the server refuses it with a clear message.
    OrderedJson metadata = OrderedJson::parse(event.metadata, nullptr, false);
    out["metadata"] = metadata.is_discarded() ? OrderedJson(event.metadata) : metadata;
  }
  return out;
}

Result<AppendResult> RemoteBackend::append(const std::string& stream, ExpectedRevision expected,
                                           std::span<const EventData> events) {
  OrderedJson body = append_json(expected, events);
  VL_TRY(reply, http_->post_json(stream_path(stream), wire::dump(body), all_ids(events)));
  VL_TRY(parsed, parse_object(reply, "an append"));
  return append_result(parsed, stream);
}

Result<std::vector<AppendResult>> RemoteBackend::append_multi(
    std::span<const StreamAppend> appends) {
  OrderedJson body;
  body["appends"] = OrderedJson::array();
  bool retry_safe = true;
  for (const StreamAppend& append : appends) {
    OrderedJson part = append_json(append.expected, append.events);
    part["stream"] = append.stream;
    body["appends"].push_back(std::move(part));
    retry_safe = retry_safe && all_ids(append.events);
  }
  VL_TRY(reply, http_->post_json("/transactions", wire::dump(body), retry_safe));
  VL_TRY(parsed, parse_object(reply, "a transaction"));
  if (!parsed.contains("results") || !parsed["results"].is_array() ||
      parsed["results"].size() != appends.size()) {
    return bad_answer("a transaction");
  }
  std::vector<AppendResult> results;
  for (size_t i = 0; i < appends.size(); i++) {
    results.push_back(append_result(parsed["results"][i], appends[i].stream));
  }
  return results;
}

Result<Page> RemoteBackend::read_stream(const std::string& stream,
                                        const ReadStreamOptions& options) {
  Target target(stream_path(stream));
  add_read_options(target, options.direction, options.from_revision, options.max_count,
                   options.as_of_position, options.as_of_time_unix_ns);
  VL_TRY(reply, http_->get(target.str()));
  return parse_page(reply, "a stream read");
}

Result<Page> RemoteBackend::read_all(const ReadAllOptions& options) {
  Target target("/all");
  add_read_options(target, options.direction, options.from_position, options.max_count,
                   options.as_of_position, options.as_of_time_unix_ns);
  const EventFilter& filter = options.filter;
  if (!filter.types.empty()) target.add("type", join_types(filter.types));
  if (!filter.category.empty()) target.add("category", filter.category);
  if (!filter.subject.empty()) target.add("subject", filter.subject);
  if (!filter.stream_prefix.empty()) target.add("streamPrefix", filter.stream_prefix);
  VL_TRY(reply, http_->get(target.str()));
  return parse_page(reply, "a read of /all");
}

Result<StreamInfo> RemoteBackend::stream_info(const std::string& stream) {
  VL_TRY(reply, http_->get(stream_path(stream) + "/metadata"));
  VL_TRY(parsed, parse_object(reply, "a metadata read"));
  if (!parsed.contains("lastRevision") || !parsed["lastRevision"].is_number_integer()) {
    return bad_answer("a metadata read");
  }
  StreamInfo info;
  info.name = stream;
  info.last_revision = parsed["lastRevision"].get<int64_t>();
  std::string deleted = parsed.contains("deleted") && parsed["deleted"].is_string()
                            ? parsed["deleted"].get<std::string>()
                            : "no";
  info.soft_deleted = deleted == "soft";
  info.tombstoned = deleted == "tombstone";
  return info;
}

Result<uint64_t> RemoteBackend::head_position(const EventFilter& filter) {
  // The API has no head call for every role (/metrics is admin only), and a
  // key may be allowed /all only with a filter: the newest event the filter
  // selects tells where the log ends for this reader.
  ReadAllOptions newest;
  newest.direction = Direction::kBackward;
  newest.from_position = kEnd;
  newest.max_count = 1;
  newest.filter = filter;
  for (;;) {
    VL_TRY(page, read_all(newest));
    if (!page.events.empty()) return unsigned_field(page.events.front(), "position") + 1;
    // A filtered read examines a bounded number of events per call.
    if (!page.next || *page.next == newest.from_position) return uint64_t{0};
    newest.from_position = *page.next;
  }
}

Result<Page> RemoteBackend::poll_stream(const std::string& stream, uint64_t from,
                                        uint32_t max_count, uint32_t wait_ms) {
  Target target(stream_path(stream));
  target.add("from", from).add("limit", max_count).add("waitMs", wait_ms);
  // The server holds the request up to wait_ms: allow for that.
  auto timeout = kHttpDefaultTimeout + std::chrono::milliseconds(wait_ms);
  VL_TRY(reply, http_->get(target.str(), timeout));
  VL_TRY(page, parse_page(reply, "a long poll"));
  if (!page.next) {
    page.next =
        page.events.empty() ? from : unsigned_field(page.events.back(), "streamrevision") + 1;
  }
  return page;
}

Result<std::map<std::string, double>> RemoteBackend::metrics() {
  VL_TRY(reply, http_->get("/metrics"));
  return parse_metrics(reply);
}

Result<std::unique_ptr<Backend>> open_backend(const GlobalOptions& global, bool create_if_missing) {
  if (!global.url.empty()) {
    VL_TRY(http, HttpClient::create(global.url, global.token));
    return std::unique_ptr<Backend>(std::make_unique<RemoteBackend>(std::move(http)));
  }
  VL_TRY(store, open_store(global, create_if_missing));
  return std::unique_ptr<Backend>(std::make_unique<EmbeddedBackend>(std::move(store)));
}

}  // namespace vellum::cli
