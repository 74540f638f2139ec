// SPDX-License-Identifier: Apache-2.0
#include "server/api.h"

#include <charconv>
#include <chrono>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "base/limits.h"
#include "server/rooms_api.h"
#include "wire/codec.h"

namespace vellum::server {

namespace net = boost::asio;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); i++) {
    char c = text[i];
    if (c == '%') {
      int high = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
      int low = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
      if (high < 0 || low < 0) {
        return make_error(ErrorCode::kInvalidArgument, "bad percent-encoding in the URL");
      }
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

HttpResponse json_response(unsigned status, std::string body, unsigned version) {
  HttpResponse response{static_cast<http::status>(status), version};
  response.set(http::field::content_type, "application/json");
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

HttpResponse json_ok(const wire::OrderedJson& value, unsigned version) {
  return json_response(200, wire::dump(value), version);
}

// A query parameter as an unsigned number.
Result<std::optional<uint64_t>> query_number(const Target& target, const char* name) {
  auto it = target.query.find(name);
  if (it == target.query.end()) return std::optional<uint64_t>();
  const std::string& text = it->second;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("query parameter {}: \"{}\" is not a non-negative integer", name, text));
  }
  return std::optional<uint64_t>(value);
}

std::string query_text(const Target& target, const char* name) {
  auto it = target.query.find(name);
  return it == target.query.end() ? std::string() : it->second;
}

Result<Direction> query_direction(const Target& target) {
  std::string text = query_text(target, "direction");
  if (text.empty() || text == "forward") return Direction::kForward;
  if (text == "backward") return Direction::kBackward;
  return make_error(ErrorCode::kInvalidArgument,
                    "query parameter direction must be forward or backward");
}

Result<uint32_t> query_limit(const Target& target) {
  VL_TRY(limit, query_number(target, "limit"));
  if (!limit) return 100u;
  if (*limit == 0 || *limit > limits::kReadEventsMax) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("query parameter limit must be 1..{}", limits::kReadEventsMax));
  }
  return static_cast<uint32_t>(*limit);
}

Result<std::optional<int64_t>> query_time(const Target& target, const char* name) {
  std::string text = query_text(target, name);
  if (text.empty()) return std::optional<int64_t>();
  std::optional<int64_t> time = wire::parse_rfc3339(text);
  if (!time) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("query parameter {}: \"{}\" is not an RFC 3339 time", name, text));
  }
  return time;
}

Result<EventFilter> query_filter(const Target& target) {
  EventFilter filter;
  std::string types = query_text(target, "type");
  size_t start = 0;
  while (!types.empty() && start <= types.size()) {
    size_t comma = types.find(',', start);
    if (comma == std::string::npos) comma = types.size();
    if (comma > start) filter.types.push_back(types.substr(start, comma - start));
    start = comma + 1;
  }
  filter.category = query_text(target, "category");
  filter.subject = query_text(target, "subject");
  filter.stream_prefix = query_text(target, "streamPrefix");
  return filter;
}

// The narrowest stream-name prefix a filter implies, for authorization: a
// category c only selects streams named c or c-..., so "c" bounds them.
std::string filter_prefix(const EventFilter& filter) {
  if (!filter.stream_prefix.empty()) return filter.stream_prefix;
  return filter.category;
}

std::string events_json(const std::vector<RecordedEvent>& events) {
  std::string out = "[";
  for (size_t i = 0; i < events.size(); i++) {
    if (i > 0) out.push_back(',');
    out += wire::event_to_json_text(events[i]);
  }
  out.push_back(']');
  return out;
}

std::string page_json(const std::vector<RecordedEvent>& events, std::optional<uint64_t> next) {
  return "{\"events\":" + events_json(events) +
         ",\"next\":" + (next ? std::to_string(*next) : std::string("null")) + "}";
}

wire::OrderedJson append_result_json(const AppendResult& result) {
  wire::OrderedJson out;
  out["stream"] = result.stream;
  out["firstRevision"] = result.first_revision;
  out["lastRevision"] = result.last_revision;
  out["position"] = result.first_position;
  out["lastPosition"] = result.last_position;
  if (result.idempotent_replay) out["idempotentReplay"] = true;
  return out;
}

const char* error_name(ErrorCode code, bool has_conflict) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kStreamDeleted:
      return "stream_deleted";
    case ErrorCode::kFailedPrecondition:
      return has_conflict ? "wrong_expected_revision" : "failed_precondition";
    case ErrorCode::kAlreadyExists:
      return "duplicate_event_id";
    case ErrorCode::kResourceExhausted:
      return "overloaded";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kCancelled:
      return "shutting_down";
    case ErrorCode::kDeadlineExceeded:
      return "timeout";
    case ErrorCode::kDataLoss:
      return "data_loss";
    case ErrorCode::kAborted:
      return "aborted";
    case ErrorCode::kIoError:
      return "io_error";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "internal";
}

unsigned error_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kStreamDeleted:
      return 410;
    case ErrorCode::kFailedPrecondition:
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kAborted:
      return 409;
    case ErrorCode::kResourceExhausted:
      return 429;
    case ErrorCode::kUnavailable:
    case ErrorCode::kCancelled:
      return 503;
    case ErrorCode::kDeadlineExceeded:
      return 504;
    case ErrorCode::kDataLoss:
    case ErrorCode::kIoError:
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

// How often a state read with waitFor looks at the projection's checkpoint.
// Polling a timer keeps the I/O thread free (Projections::wait_for blocks).
constexpr std::chrono::milliseconds kProjectionWaitPollInterval{5};
// waitMs when a state read gives waitFor alone (capped by max-wait-ms).
constexpr uint64_t kProjectionWaitMsDefault = 10'000;

wire::OrderedJson projection_status_json(const ProjectionStatus& status) {
  wire::OrderedJson out;
  out["name"] = status.name;
  out["kind"] = status.kind;
  out["state"] = projection_state_name(status.state);
  out["position"] = status.position;
  out["eventsProcessed"] = status.events_processed;
  out["lagEvents"] = status.lag_events;
  out["lagMs"] = status.lag_ms;
  out["error"] = status.error.empty() ? wire::OrderedJson() : wire::OrderedJson(status.error);
  out["failedPosition"] =
      status.failed_position ? wire::OrderedJson(*status.failed_position) : wire::OrderedJson();
  return out;
}

// The engine's kNotFound means "no such projection" on these routes.
HttpResponse projection_error(const Error& error, unsigned version) {
  if (error.code == ErrorCode::kNotFound) {
    return json_error(404, "projection_not_found", error.message, version);
  }
  return error_response(error, version);
}

}  // namespace

Result<Target> parse_target(std::string_view target) {
  if (target.empty() || target.front() != '/') {
    return make_error(ErrorCode::kInvalidArgument, "the request target must start with /");
  }
  Target parsed;
  size_t question = target.find('?');
  std::string_view path = target.substr(0, question);
  size_t start = 1;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    VL_TRY(segment, percent_decode(path.substr(start, slash - start), false));
    parsed.segments.push_back(std::move(segment));
    start = slash + 1;
  }
  // "/streams/x/" has an empty last segment; "/" has none.
  if (!parsed.segments.empty() && parsed.segments.back().empty()) parsed.segments.pop_back();
  if (question == std::string_view::npos) return parsed;
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t equals = pair.find('=');
    VL_TRY(key, percent_decode(pair.substr(0, equals), true));
    std::string value;
    if (equals != std::string_view::npos) {
      VL_TRY(decoded, percent_decode(pair.substr(equals + 1), true));
      value = std::move(decoded);
    }
    if (!key.empty()) parsed.query[std::move(key)] = std::move(value);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return parsed;
}

HttpResponse json_error(unsigned status, std::string_view code, std::string_view message,
                        unsigned version) {
  wire::OrderedJson body;
  body["error"] = code;
  body["message"] = message;
  return json_response(status, wire::dump(body), version);
}

HttpResponse error_response(const Error& error, unsigned version) {
  wire::OrderedJson body;
  body["error"] = error_name(error.code, error.conflict.has_value());
  body["message"] = error.message;
  if (error.conflict) {
    body["stream"] = error.conflict->stream;
    body["expected"] = error.conflict->expected;
    body["actual"] = error.conflict->actual_revision;
  }
  return json_response(error_status(error.code), wire::dump(body), version);
}

// Everything one request carries through its handler.
struct Api::Context {
  HttpRequest request;
  Target target;
  const ApiKey* key = nullptr;
  net::any_io_executor executor;
  Respond respond;
  // What the metrics label the request with; shared with `respond`.
  struct Label {
    std::string route = "unknown";
    Clock::time_point start = Clock::now();
  };
  std::shared_ptr<Label> label = std::make_shared<Label>();

  unsigned version() const { return request.version(); }
  void reply(HttpResponse response) { respond(std::move(response)); }
  void fail(const Error& error) { respond(error_response(error, version())); }
  void fail(unsigned status, std::string_view code, std::string_view message) {
    respond(json_error(status, code, message, version()));
  }
};

Api::Api(Store& store, Hub& hub, Metrics& metrics, const Authenticator& auth,
         const ServerConfig& config, Projections* projections, ToolkitDb* toolkit_db,
         RoomsApi* rooms)
    : store_(store),
      hub_(hub),
      metrics_(metrics),
      auth_(auth),
      config_(config),
      projections_(projections),
      toolkit_db_(toolkit_db),
      rooms_(rooms),
      demo_files_(config.demo_dir) {}

void Api::finish_projection_work() { projection_work_.join(); }

void Api::handle(HttpRequest&& request, const net::any_io_executor& executor, Respond respond) {
  auto context = std::make_shared<Context>();
  context->request = std::move(request);
  context->executor = executor;
  // Count every response by route and status, whoever sends it and however
  // late (an append answers after `context` is gone).
  auto label = context->label;
  context->respond = [this, label, respond = std::move(respond)](HttpResponse response) {
    metrics_.request_done(label->route, response.result_int(), seconds_since(label->start));
    respond(std::move(response));
  };
  auto target = parse_target(context->request.target());
  if (!target) {
    context->fail(target.error());
    return;
  }
  context->target = std::move(*target);
  route(*context);
}

void Api::route(Context& context) {
  const auto& segments = context.target.segments;
  http::verb method = context.request.method();
  std::string first = segments.empty() ? "" : segments[0];
  if (first == "health" && segments.size() == 2 && method == http::verb::get) {
    context.label->route = "/health";
    if (segments[1] == "live") {
      context.reply(json_response(200, R"({"status":"live"})", context.version()));
    } else if (segments[1] == "ready" && ready_.load()) {
      context.reply(json_response(200, R"({"status":"ready"})", context.version()));
    } else if (segments[1] == "ready") {
      context.fail(503, "not_ready", "the server is starting or shutting down");
    } else {
      context.fail(404, "not_found", "no such endpoint");
    }
    return;
  }
  // Rooms authorize with room tokens (or API keys) themselves: a browser
  // holds a token for its participant, never an API key.
  if ((first == "rooms" && segments.size() >= 3) || first == "apps" || first == "replicache") {
    context.label->route = first == "apps"         ? "/apps/{app}/schema"
                           : first == "replicache" ? "/replicache/{app}/{room}/..."
                                                   : "/rooms/{app}/{room}/...";
    if (rooms_ == nullptr) return context.fail(404, "not_found", "this server runs no rooms");
    return rooms_->handle(context.request, context.target, context.respond);
  }
  // Demo files are public, like any web page's assets: a browser loading
  // them cannot send an API key.
  if (first == "demo") {
    context.label->route = "/demo/";
    return context.reply(demo_files_.handle(context.request, context.target));
  }
  if (auth_.enabled()) {
    context.key = auth_.authenticate(context.request[http::field::authorization]);
    if (context.key == nullptr) {
      context.label->route = "unauthenticated";
      context.fail(401, "unauthenticated",
                   "this server requires an API key: Authorization: Bearer <token>");
      return;
    }
  }
  auto method_not_allowed = [&] {
    context.fail(
        405, "method_not_allowed",
        fmt::format("{} is not allowed on this endpoint", context.request.method_string()));
  };
  if (first == "streams" && segments.size() == 2) {
    context.label->route = "/streams/{stream}";
    if (method == http::verb::post) return append(context, segments[1]);
    if (method == http::verb::get) return read_stream(context, segments[1]);
    if (method == http::verb::delete_) return delete_stream(context, segments[1]);
    return method_not_allowed();
  }
  if (first == "streams" && segments.size() == 3 && segments[2] == "metadata") {
    context.label->route = "/streams/{stream}/metadata";
    if (method == http::verb::get) return get_metadata(context, segments[1]);
    if (method == http::verb::put) return put_metadata(context, segments[1]);
    return method_not_allowed();
  }
  if (first == "transactions" && segments.size() == 1) {
    context.label->route = "/transactions";
    if (method == http::verb::post) return transaction(context);
    return method_not_allowed();
  }
  if (first == "all" && segments.size() == 1) {
    context.label->route = "/all";
    if (method == http::verb::get) return read_all(context);
    return method_not_allowed();
  }
  if (first == "events" && segments.size() == 2) {
    context.label->route = "/events/{id}";
    if (method == http::verb::get) return read_event(context, segments[1]);
    return method_not_allowed();
  }
  if (first == "subjects" && segments.size() == 3 && segments[2] == "events") {
    context.label->route = "/subjects/{subject}/events";
    if (method == http::verb::get) return read_subject(context, segments[1]);
    return method_not_allowed();
  }
  if (first == "positions" && segments.size() == 1) {
    context.label->route = "/positions";
    if (method == http::verb::get) return position_at(context);
    return method_not_allowed();
  }
  if (first == "metrics" && segments.size() == 1) {
    context.label->route = "/metrics";
    if (method != http::verb::get) return method_not_allowed();
    if (!auth_.allows_prefix(context.key, Access::kAdmin, "")) {
      return context.fail(403, "forbidden", "/metrics needs an admin key");
    }
    HttpResponse response{http::status::ok, context.version()};
    response.set(http::field::content_type, "text/plain; version=0.0.4");
    response.body() =
        metrics_.render(store_.stats(), projections_ != nullptr ? projections_->list()
                                                                : std::vector<ProjectionStatus>());
    if (rooms_ != nullptr) response.body() += rooms_->metrics();
    response.prepare_payload();
    return context.reply(std::move(response));
  }
  if (first == "projections") return route_projections(context);
  if (first == "subscribe" && segments.size() == 1) {
    context.label->route = "/subscribe";
    return context.fail(426, "upgrade_required",
                        "GET /subscribe is a WebSocket endpoint (Upgrade: websocket)");
  }
  context.fail(404, "not_found",
               fmt::format("no endpoint {}", std::string(context.request.target())));
}

// ---- Appends ----

void Api::append(Context& context, const std::string& stream) {
  if (!auth_.allows_stream(context.key, Access::kWrite, stream)) {
    return context.fail(403, "forbidden", "this API key may not write to " + stream);
  }
  auto body =
      wire::parse_append_body(context.request.body(), context.request[http::field::content_type],
                              context.request["Expected-Revision"]);
  if (!body) return context.fail(body.error());
  if (body->events.size() > config_.max_events_per_append) {
    return context.fail(413, "too_many_events",
                        fmt::format("{} events in one append; this server takes at most {}",
                                    body->events.size(), config_.max_events_per_append));
  }
  std::vector<StreamAppend> appends(1);
  appends[0].stream = stream;
  appends[0].expected = body->expected;
  appends[0].events = std::move(body->events);
  submit_append(context, std::move(appends), true);
}

void Api::transaction(Context& context) {
  auto appends = wire::parse_transaction_body(context.request.body());
  if (!appends) return context.fail(appends.error());
  size_t events = 0;
  for (const StreamAppend& append : *appends) {
    if (!auth_.allows_stream(context.key, Access::kWrite, append.stream)) {
      return context.fail(403, "forbidden", "this API key may not write to " + append.stream);
    }
    events += append.events.size();
  }
  if (events > config_.max_events_per_append) {
    return context.fail(413, "too_many_events",
                        fmt::format("{} events in one transaction; this server takes at most {}",
                                    events, config_.max_events_per_append));
  }
  submit_append(context, std::move(*appends), false);
}

void Api::submit_append(Context& context, std::vector<StreamAppend> appends, bool single) {
  uint64_t events = 0;
  for (const StreamAppend& append : appends) events += append.events.size();
  appends_in_flight_.fetch_add(1);
  Respond respond = context.respond;
  unsigned version = context.version();
  Clock::time_point start = context.label->start;
  // The callback runs on the store's indexer thread: build the response
  // there (cheap) and hand it to the connection, which posts to its strand.
  store_.append_async(appends, [this, respond, version, start, events,
                                single](Result<std::vector<AppendResult>> outcome) {
    if (!outcome) {
      respond(error_response(outcome.error(), version));
    } else if (single) {
      metrics_.append_done(seconds_since(start), events);
      respond(json_ok(append_result_json((*outcome)[0]), version));
    } else {
      metrics_.append_done(seconds_since(start), events);
      wire::OrderedJson body;
      body["results"] = wire::OrderedJson::array();
      for (const AppendResult& result : *outcome)
        body["results"].push_back(append_result_json(result));
      respond(json_ok(body, version));
    }
    appends_in_flight_.fetch_sub(1);
  });
}

// ---- Reads ----

void Api::read_stream(Context& context, const std::string& stream) {
  if (!auth_.allows_stream(context.key, Access::kRead, stream)) {
    return context.fail(403, "forbidden", "this API key may not read " + stream);
  }
  const Target& target = context.target;
  ReadStreamOptions options;
  auto direction = query_direction(target);
  auto from = query_number(target, "from");
  auto limit = query_limit(target);
  auto as_of_position = query_number(target, "asOfPosition");
  auto as_of = query_time(target, "asOf");
  auto wait_ms = query_number(target, "waitMs");
  if (!direction) return context.fail(direction.error());
  if (!from) return context.fail(from.error());
  if (!limit) return context.fail(limit.error());
  if (!as_of_position) return context.fail(as_of_position.error());
  if (!as_of) return context.fail(as_of.error());
  if (!wait_ms) return context.fail(wait_ms.error());
  options.direction = *direction;
  options.from_revision = from->value_or(options.direction == Direction::kForward ? 0 : kEnd);
  options.max_count = *limit;
  options.as_of_position = *as_of_position;
  options.as_of_time_unix_ns = *as_of;
  if (*wait_ms && **wait_ms > 0) {
    if (options.direction != Direction::kForward || options.as_of_position ||
        options.as_of_time_unix_ns) {
      return context.fail(400, "invalid_argument",
                          "waitMs (long poll) works with forward reads of the present only");
    }
    if (**wait_ms > config_.max_wait_ms) {
      return context.fail(400, "invalid_argument",
                          fmt::format("waitMs may be at most {}", config_.max_wait_ms));
    }
    return long_poll(context, stream, options, static_cast<uint32_t>(**wait_ms));
  }
  Clock::time_point start = Clock::now();
  auto result = store_.read_stream(stream, options);
  metrics_.read_done(seconds_since(start));
  if (!result) {
    if (result.error().code == ErrorCode::kNotFound) {
      return context.fail(404, "stream_not_found", result.error().message);
    }
    return context.fail(result.error());
  }
  context.reply(
      json_response(200, page_json(result->events, result->next_revision), context.version()));
}

// Long poll: register with the hub first, then read, so that an event
// committed between the read and the registration still wakes us.
void Api::long_poll(Context& context, const std::string& stream, ReadStreamOptions options,
                    uint32_t wait_ms) {
  struct Poll {
    std::atomic<bool> done{false};
    uint64_t waiter = 0;
    std::unique_ptr<net::steady_timer> timer;
  };
  auto poll = std::make_shared<Poll>();
  auto respond = context.respond;
  unsigned version = context.version();
  // Reads once more and answers: events, or an empty page if none came.
  auto finish = [this, poll, respond, version, stream, options](bool timed_out) {
    if (poll->done.exchange(true)) return;
    hub_.remove_waiter(poll->waiter);
    poll->timer->cancel();
    metrics_.long_polls_waiting.fetch_sub(1);
    auto result = store_.read_stream(stream, options);
    if (!result && result.error().code == ErrorCode::kNotFound && timed_out) {
      respond(json_response(200, page_json({}, options.from_revision), version));
      return;
    }
    if (!result) {
      respond(result.error().code == ErrorCode::kNotFound
                  ? json_error(404, "stream_not_found", result.error().message, version)
                  : error_response(result.error(), version));
      return;
    }
    std::optional<uint64_t> next = result->next_revision;
    // An empty page still says where to poll from next.
    if (result->events.empty() && !next) next = options.from_revision;
    respond(json_response(200, page_json(result->events, next), version));
  };
  metrics_.long_polls_waiting.fetch_add(1);
  poll->timer = std::make_unique<net::steady_timer>(context.executor);
  poll->waiter = hub_.add_waiter(stream, [finish, executor = context.executor] {
    net::post(executor, [finish] { finish(false); });
  });
  auto first = store_.read_stream(stream, options);
  if ((first && !first->events.empty()) || (!first && first.error().code != ErrorCode::kNotFound)) {
    finish(false);
    return;
  }
  poll->timer->expires_after(std::chrono::milliseconds(wait_ms));
  poll->timer->async_wait([finish](const boost::system::error_code& error) {
    if (!error) finish(true);
  });
}

void Api::read_all(Context& context) {
  const Target& target = context.target;
  auto filter = query_filter(target);
  if (!filter) return context.fail(filter.error());
  if (!auth_.allows_prefix(context.key, Access::kRead, filter_prefix(*filter))) {
    return context.fail(403, "forbidden",
                        "this API key may read /all only with a category or streamPrefix "
                        "inside its grants");
  }
  auto direction = query_direction(target);
  if (!direction) return context.fail(direction.error());
  auto from = query_number(target, "from");
  if (!from) return context.fail(from.error());
  auto limit = query_limit(target);
  if (!limit) return context.fail(limit.error());
  auto as_of_position = query_number(target, "asOfPosition");
  if (!as_of_position) return context.fail(as_of_position.error());
  auto as_of = query_time(target, "asOf");
  if (!as_of) return context.fail(as_of.error());
  ReadAllOptions options;
  options.direction = *direction;
  options.from_position = from->value_or(options.direction == Direction::kForward ? 0 : kEnd);
  options.max_count = *limit;
  options.filter = std::move(*filter);
  options.as_of_position = *as_of_position;
  options.as_of_time_unix_ns = *as_of;
  Clock::time_point start = Clock::now();
  auto result = store_.read_all(options);
  metrics_.read_done(seconds_since(start));
  if (!result) return context.fail(result.error());
  context.reply(
      json_response(200, page_json(result->events, result->next_position), context.version()));
}

void Api::read_event(Context& context, const std::string& id_text) {
  std::optional<Uuid> id = Uuid::parse(id_text);
  if (!id) return context.fail(400, "invalid_argument", "\"" + id_text + "\" is not a UUID");
  auto event = store_.read_event(*id);
  if (!event) {
    if (event.error().code == ErrorCode::kNotFound) {
      return context.fail(404, "event_not_found", "no event " + id_text);
    }
    return context.fail(event.error());
  }
  if (!auth_.allows_stream(context.key, Access::kRead, event->stream)) {
    // Same answer as "no such event": a key must not learn what exists
    // outside its grants.
    return context.fail(404, "event_not_found", "no event " + id_text);
  }
  context.reply(json_response(200, wire::event_to_json_text(*event), context.version()));
}

void Api::read_subject(Context& context, const std::string& subject) {
  if (!auth_.allows_prefix(context.key, Access::kRead, "")) {
    return context.fail(403, "forbidden", "subject reads cross streams: they need a key granted *");
  }
  auto from = query_number(context.target, "from");
  if (!from) return context.fail(from.error());
  auto limit = query_limit(context.target);
  if (!limit) return context.fail(limit.error());
  ReadAllOptions options;
  options.from_position = from->value_or(0);
  options.max_count = *limit;
  options.filter.subject = subject;
  auto result = store_.read_all(options);
  if (!result) return context.fail(result.error());
  context.reply(
      json_response(200, page_json(result->events, result->next_position), context.version()));
}

void Api::position_at(Context& context) {
  // Counts events of every stream: a cross-stream read (auth.h).
  if (!auth_.allows_prefix(context.key, Access::kRead, "")) {
    return context.fail(403, "forbidden",
                        "/positions covers every stream: it needs a key "
                        "granted *");
  }
  auto at = query_time(context.target, "at");
  if (!at) return context.fail(at.error());
  if (!*at)
    return context.fail(400, "invalid_argument", "query parameter at (RFC 3339) is required");
  auto position = store_.position_at(**at);
  if (!position) return context.fail(position.error());
  wire::OrderedJson body;
  body["at"] = wire::format_rfc3339(**at);
  body["position"] = *position;
  context.reply(json_ok(body, context.version()));
}

// ---- Stream administration ----

void Api::delete_stream(Context& context, const std::string& stream) {
  std::string tombstone_text = query_text(context.target, "tombstone");
  if (!tombstone_text.empty() && tombstone_text != "true" && tombstone_text != "false") {
    return context.fail(400, "invalid_argument", "tombstone must be true or false");
  }
  bool tombstone = tombstone_text == "true";
  Access access = tombstone ? Access::kAdmin : Access::kWrite;
  if (!auth_.allows_stream(context.key, access, stream)) {
    return context.fail(403, "forbidden",
                        tombstone ? "tombstoning needs an admin key granted this stream"
                                  : "this API key may not delete " + stream);
  }
  ExpectedRevision expected = ExpectedRevision::any();
  std::string header(context.request["Expected-Revision"]);
  std::string query = query_text(context.target, "expectedRevision");
  if (!header.empty() || !query.empty()) {
    auto parsed =
        wire::parse_expected_revision(header.empty() ? query : header, "the expected revision");
    if (!parsed) return context.fail(parsed.error());
    expected = *parsed;
  }
  Status status = store_.delete_stream(stream, expected, tombstone);
  if (!status) {
    if (status.error().code == ErrorCode::kNotFound) {
      return context.fail(404, "stream_not_found", status.error().message);
    }
    return context.fail(status.error());
  }
  // Live subscribers of the stream learn it from the hub (close 4410).
  if (tombstone) hub_.stream_tombstoned(stream);
  wire::OrderedJson body;
  body["stream"] = stream;
  body["deleted"] = tombstone ? "tombstone" : "soft";
  context.reply(json_ok(body, context.version()));
}

void Api::get_metadata(Context& context, const std::string& stream) {
  if (!auth_.allows_stream(context.key, Access::kRead, stream)) {
    return context.fail(403, "forbidden", "this API key may not read " + stream);
  }
  auto info = store_.stream_info(stream);
  if (!info) {
    if (info.error().code == ErrorCode::kNotFound) {
      return context.fail(404, "stream_not_found", info.error().message);
    }
    return context.fail(info.error());
  }
  wire::OrderedJson body = wire::metadata_to_json(info->metadata);
  body["stream"] = stream;
  body["lastRevision"] = info->last_revision;
  body["deleted"] = info->tombstoned ? "tombstone" : info->soft_deleted ? "soft" : "no";
  context.reply(json_ok(body, context.version()));
}

void Api::put_metadata(Context& context, const std::string& stream) {
  if (!auth_.allows_stream(context.key, Access::kWrite, stream)) {
    return context.fail(403, "forbidden", "this API key may not write " + stream);
  }
  auto metadata = wire::parse_metadata_body(context.request.body());
  if (!metadata) return context.fail(metadata.error());
  Status status = store_.set_stream_metadata(stream, *metadata);
  if (!status) return context.fail(status.error());
  wire::OrderedJson body = wire::metadata_to_json(*metadata);
  body["stream"] = stream;
  context.reply(json_ok(body, context.version()));
}

// ---- Projections ----

void Api::route_projections(Context& context) {
  const auto& segments = context.target.segments;
  http::verb method = context.request.method();
  const bool get = method == http::verb::get;
  auto method_not_allowed = [&] {
    context.fail(
        405, "method_not_allowed",
        fmt::format("{} is not allowed on this endpoint", context.request.method_string()));
  };
  context.label->route = "/projections";
  if (projections_ == nullptr) {
    return context.fail(404, "not_found", "this server runs no projections");
  }
  bool is_state = segments.size() >= 3 && segments[2] == "state";
  if (segments.size() == 3 && !is_state) {
    context.label->route = "/projections/{name}/{action}";
    const std::string& action = segments[2];
    if (action != "start" && action != "stop" && action != "reset" && action != "rebuild") {
      return context.fail(404, "not_found",
                          "no projection action \"" + action + "\" (start, stop, reset, rebuild)");
    }
    if (method != http::verb::post) return method_not_allowed();
    return control_projection(context, segments[1], action);
  }
  if (segments.size() > 4) return context.fail(404, "not_found", "no such endpoint");
  if (segments.size() == 2) context.label->route = "/projections/{name}";
  if (segments.size() == 3) context.label->route = "/projections/{name}/state";
  if (segments.size() == 4) context.label->route = "/projections/{name}/state/{key}";
  if (!get) return method_not_allowed();
  // A read model is built from many streams: reading it is a cross-stream
  // read (auth.h), allowed to keys granted every stream.
  if (!auth_.allows_prefix(context.key, Access::kRead, "")) {
    return context.fail(403, "forbidden", "reading projections needs a key granted *");
  }
  if (segments.size() == 1) {
    wire::OrderedJson body;
    body["projections"] = wire::OrderedJson::array();
    for (const ProjectionStatus& status : projections_->list()) {
      body["projections"].push_back(projection_status_json(status));
    }
    return context.reply(json_ok(body, context.version()));
  }
  if (segments.size() == 2) {
    auto status = projections_->status(segments[1]);
    if (!status) return context.reply(projection_error(status.error(), context.version()));
    return context.reply(json_ok(projection_status_json(*status), context.version()));
  }
  std::optional<std::string> key;
  if (segments.size() == 4) key = segments[3];
  read_projection_state(context, segments[1], std::move(key));
}

void Api::control_projection(Context& context, const std::string& name, const std::string& action) {
  if (!auth_.allows_prefix(context.key, Access::kAdmin, "")) {
    return context.fail(403, "forbidden",
                        "starting, stopping, resetting and rebuilding projections needs an admin "
                        "key granted *");
  }
  // Stopping waits for the batch in hand and resetting deletes a read model:
  // neither may hold an I/O thread. The response is sent from the work thread.
  boost::asio::post(projection_work_,
                    [this, respond = context.respond, version = context.version(), name, action] {
                      Status done = action == "start"   ? projections_->start(name)
                                    : action == "stop"  ? projections_->stop(name)
                                    : action == "reset" ? projections_->reset(name)
                                                        : projections_->rebuild(name);
                      if (!done) return respond(projection_error(done.error(), version));
                      auto status = projections_->status(name);
                      if (!status) return respond(projection_error(status.error(), version));
                      respond(json_ok(projection_status_json(*status), version));
                    });
}

// A state read waiting for the projection to pass a position (read-your-
// writes): a timer polls the checkpoint, so no thread waits.
struct Api::ProjectionWait {
  std::string name;
  std::optional<std::string> key;
  Target target;
  unsigned version = 11;
  uint64_t position = 0;  // answer once the event at this position is processed
  Clock::time_point deadline;
  Respond respond;
  std::unique_ptr<net::steady_timer> timer;
};

void Api::read_projection_state(Context& context, const std::string& name,
                                std::optional<std::string> key) {
  auto wait_for = query_number(context.target, "waitFor");
  if (!wait_for) return context.fail(wait_for.error());
  auto wait_ms = query_number(context.target, "waitMs");
  if (!wait_ms) return context.fail(wait_ms.error());
  if (!*wait_for) {
    if (*wait_ms) return context.fail(400, "invalid_argument", "waitMs goes with waitFor");
    return context.reply(projection_state_response(name, key, context.target, context.version()));
  }
  uint64_t wait_ms_value =
      wait_ms->value_or(std::min<uint64_t>(kProjectionWaitMsDefault, config_.max_wait_ms));
  if (wait_ms_value > config_.max_wait_ms) {
    return context.fail(400, "invalid_argument",
                        fmt::format("waitMs may be at most {}", config_.max_wait_ms));
  }
  auto wait = std::make_shared<ProjectionWait>();
  wait->name = name;
  wait->key = std::move(key);
  wait->target = context.target;
  wait->version = context.version();
  wait->position = **wait_for;
  wait->deadline = Clock::now() + std::chrono::milliseconds(wait_ms_value);
  wait->respond = context.respond;
  wait->timer = std::make_unique<net::steady_timer>(context.executor);
  poll_projection(wait);
}

void Api::poll_projection(const std::shared_ptr<ProjectionWait>& wait) {
  auto status = projections_->status(wait->name);
  if (!status) return wait->respond(projection_error(status.error(), wait->version));
  // The checkpoint is the next position to examine: past the awaited event.
  if (status->position > wait->position) {
    return wait->respond(
        projection_state_response(wait->name, wait->key, wait->target, wait->version));
  }
  if (status->state != ProjectionState::kRunning) {
    return wait->respond(
        json_error(409, "failed_precondition",
                   fmt::format("projection {} is {} at position {}{}{}: it will not reach {}",
                               wait->name, projection_state_name(status->state), status->position,
                               status->error.empty() ? "" : ": ", status->error, wait->position),
                   wait->version));
  }
  if (Clock::now() >= wait->deadline) {
    return wait->respond(
        json_error(504, "timeout",
                   fmt::format("projection {} is at position {}, not past {}, after waitMs",
                               wait->name, status->position, wait->position),
                   wait->version));
  }
  wait->timer->expires_after(kProjectionWaitPollInterval);
  wait->timer->async_wait([this, wait](const boost::system::error_code& error) {
    if (!error) poll_projection(wait);
  });
}

HttpResponse Api::projection_state_response(const std::string& name,
                                            const std::optional<std::string>& key,
                                            const Target& target, unsigned version) {
  auto kind = projections_->kind(name);
  if (!kind) return projection_error(kind.error(), version);
  if (*kind != "kv" || toolkit_db_ == nullptr) {
    return json_error(400, "invalid_argument",
                      fmt::format("projection {} has a {} sink: only kv projections keep state "
                                  "the server can read",
                                  name, *kind),
                      version);
  }
  if (key) {
    auto value = toolkit_db_->kv_get(name, *key);
    if (!value) return error_response(value.error(), version);
    if (!*value) {
      return json_error(404, "key_not_found",
                        fmt::format("projection {} has no key \"{}\"", name, *key), version);
    }
    // Values are JSON by convention; a C++ sink may have stored other bytes.
    bool is_json = wire::OrderedJson::accept(**value);
    HttpResponse response = json_response(200, std::move(**value), version);
    if (!is_json) response.set(http::field::content_type, "application/octet-stream");
    return response;
  }
  std::string prefix = query_text(target, "prefix");
  std::string after = query_text(target, "after");
  auto limit = query_number(target, "limit");
  if (!limit) return error_response(limit.error(), version);
  uint64_t count_max = limit->value_or(100);
  if (count_max == 0 || count_max > kStateKeysPerPageMax) {
    return json_error(400, "invalid_argument",
                      fmt::format("query parameter limit must be 1..{}", kStateKeysPerPageMax),
                      version);
  }
  // The smallest key after `after` is `after` followed by a zero byte.
  std::string start = after.empty() ? prefix : std::max(prefix, after + std::string(1, '\0'));
  wire::OrderedJson items = wire::OrderedJson::array();
  size_t page_bytes = 0;
  bool more = false;
  std::string last_key;
  Status scanned = toolkit_db_->kv_scan(
      name, prefix, start, static_cast<uint32_t>(count_max + 1),
      [&](std::string_view item_key, std::string_view value) {
        if (items.size() == count_max || page_bytes >= kStatePageBytesMax) {
          more = true;
          return false;
        }
        wire::OrderedJson item;
        item["key"] = item_key;
        wire::OrderedJson parsed = wire::OrderedJson::parse(value, nullptr, false);
        if (parsed.is_discarded()) {
          item["valueBase64"] = wire::base64_encode(value);
        } else {
          item["value"] = std::move(parsed);
        }
        items.push_back(std::move(item));
        page_bytes += item_key.size() + value.size();
        last_key = item_key;
        return true;
      });
  if (!scanned) return error_response(scanned.error(), version);
  wire::OrderedJson body;
  body["items"] = std::move(items);
  body["next"] = more ? wire::OrderedJson(last_key) : wire::OrderedJson();
  return json_ok(body, version);
}

// ---- Subscriptions ----

std::variant<SubscriptionRequest, HttpResponse> Api::prepare_subscription(
    const HttpRequest& request) {
  unsigned version = request.version();
  const ApiKey* key = nullptr;
  if (auth_.enabled()) {
    key = auth_.authenticate(request[http::field::authorization]);
    if (key == nullptr) {
      return json_error(401, "unauthenticated",
                        "this server requires an API key: Authorization: Bearer <token>", version);
    }
  }
  auto target = parse_target(request.target());
  if (!target) return error_response(target.error(), version);
  SubscriptionRequest subscription;
  subscription.stream = query_text(*target, "stream");
  bool all = query_text(*target, "all") == "true";
  auto filter = query_filter(*target);
  if (!filter) return error_response(filter.error(), version);
  subscription.filter = std::move(*filter);
  int chosen = (subscription.stream.empty() ? 0 : 1) + (all ? 1 : 0) +
               (subscription.filter.category.empty() ? 0 : 1);
  if (chosen != 1) {
    return json_error(400, "invalid_argument",
                      "give exactly one of stream=<name>, category=<name> or all=true", version);
  }
  if (!subscription.stream.empty() && !subscription.filter.empty()) {
    return json_error(400, "invalid_argument", "filters apply to category and all subscriptions",
                      version);
  }
  auto from = query_number(*target, "from");
  if (!from) return error_response(from.error(), version);
  subscription.from = *from;
  bool allowed = subscription.stream.empty()
                     ? auth_.allows_prefix(key, Access::kRead, filter_prefix(subscription.filter))
                     : auth_.allows_stream(key, Access::kRead, subscription.stream);
  if (!allowed) {
    return json_error(403, "forbidden", "this API key may not read what the subscription selects",
                      version);
  }
  return subscription;
}

}  // namespace vellum::server
