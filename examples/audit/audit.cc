// SPDX-License-Identifier: Apache-2.0
#include "audit.h"

#include <utility>

#include "wire/codec.h"  // RFC 3339, as the CLI and the HTTP API print times

namespace audit {

using vellum::ErrorCode;
using vellum::make_error;

vellum::CommandContext context_for(std::string_view user_id, const Request& request) {
  vellum::CommandContext context;
  context.command_id = request.command_id;
  context.correlation_id =
      request.correlation_id.empty() ? request.command_id : request.correlation_id;
  context.causation_id = request.causation_id.empty() ? request.command_id : request.causation_id;
  context.subject = std::string(user_id);
  return context;
}

Result<vellum::CommandResult<User>> run_command(UserStore& users, std::string_view user_id,
                                                const User::Command& command,
                                                const Request& request) {
  if (!valid_user_id(user_id)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "user id '" + std::string(user_id) + "' is not 1-64 of [A-Za-z0-9_.@-]");
  }
  return users.handle(user_id, command, context_for(user_id, request));
}

Result<std::vector<vellum::RecordedEvent>> events_about(vellum::Store& store,
                                                        std::string_view user_id,
                                                        size_t max_events) {
  std::vector<vellum::RecordedEvent> events;
  vellum::ReadAllOptions options;
  options.filter.subject = std::string(user_id);
  options.max_count = 1000;
  for (;;) {
    VL_TRY(page, store.read_all(options));
    for (vellum::RecordedEvent& event : page.events) events.push_back(std::move(event));
    if (events.size() > max_events) {
      return make_error(ErrorCode::kResourceExhausted, "more than " + std::to_string(max_events) +
                                                           " events about '" +
                                                           std::string(user_id) + "'");
    }
    // A filtered read examines a bounded stretch of the log per call, so an
    // empty page with a `next` is normal: keep going until there is none.
    if (!page.next_position) return events;
    options.from_position = *page.next_position;
  }
}

Result<vellum::Loaded<UserState>> user_as_of(UserStore& users, std::string_view user_id,
                                             std::optional<int64_t> at_unix_ns) {
  vellum::Loaded<UserState> loaded;
  if (at_unix_ns) {
    VL_TRY(then, users.load_at_time(user_id, *at_unix_ns));
    loaded = std::move(then);
  } else {
    VL_TRY(now, users.load(user_id));
    loaded = std::move(now);
  }
  if (!loaded.state.registered) {
    return make_error(ErrorCode::kNotFound,
                      "user '" + std::string(user_id) + "' is not registered");
  }
  return loaded;
}

std::optional<int64_t> parse_time(std::string_view text) {
  // "YYYY-MM-DD": the last nanosecond of that day, UTC.
  if (text.size() == 10 && text[4] == '-' && text[7] == '-') {
    return vellum::wire::parse_rfc3339(std::string(text) + "T23:59:59.999999999Z");
  }
  return vellum::wire::parse_rfc3339(text);
}

std::string format_time(int64_t unix_ns) { return vellum::wire::format_rfc3339(unix_ns); }

}  // namespace audit
