// SPDX-License-Identifier: Apache-2.0
// The audit questions of seed 003, answered from the log:
//   - who asked for a change and why: every command carries a correlation id
//     (the request), a causation id (what caused it) and the acting user;
//   - "all events for user X" (GDPR article 15): one read of the whole log
//     filtered by subject, so it finds events about X in any stream;
//   - "state of user X on date D": the aggregate loaded as of that time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vellum/store.h"

#include "user.h"

namespace audit {

// Who is asking and why; becomes the events' correlation and causation ids.
struct Request {
  std::string by;              // the acting user, recorded in the event data
  std::string correlation_id;  // the end-to-end request; empty: the command id
  std::string causation_id;    // the message that caused this one; empty: the command id
  std::string command_id;      // idempotency key: a retry appends nothing new
};

// The CommandContext for a command about `user_id`: the user is the events'
// subject, so GDPR reads find them.
vellum::CommandContext context_for(std::string_view user_id, const Request& request);

// Runs `command` on user `user_id`. Errors: User::decide's (kFailedPrecondition,
// kInvalidArgument), the store's.
Result<vellum::CommandResult<User>> run_command(UserStore& users, std::string_view user_id,
                                                const User::Command& command,
                                                const Request& request);

// Every event whose subject is `user_id`, in log order, at most
// `max_events` (kResourceExhausted beyond: page with the CLI instead).
Result<std::vector<vellum::RecordedEvent>> events_about(vellum::Store& store,
                                                        std::string_view user_id,
                                                        size_t max_events = 100'000);

// The user as of `at_unix_ns` (every event recorded at or before it), or now
// when nullopt. Errors: kNotFound when the user did not exist yet then (or
// never registered).
Result<vellum::Loaded<UserState>> user_as_of(UserStore& users, std::string_view user_id,
                                             std::optional<int64_t> at_unix_ns);

// Parses a --at argument: RFC 3339 ("2026-11-23T14:12:00Z", offsets allowed)
// or a date ("2026-11-23"), which means the end of that day in UTC: "the state
// on date D" includes everything that happened on D.
std::optional<int64_t> parse_time(std::string_view text);
std::string format_time(int64_t unix_ns);

}  // namespace audit
