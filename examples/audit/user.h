// SPDX-License-Identifier: Apache-2.0
// The user aggregate of seed 003 (an audit-first SaaS), written with the
// Vellum toolkit: every change to a user is an event in stream "user-<id>"
// whose `subject` is the user id, so that "everything about user X" (GDPR
// article 15) is one filtered read of the log, and "user X as of date D" is a
// temporal load of the aggregate.
//
// Rules (User::decide):
//   - a user registers once, with a well-formed email and a known role;
//   - only a registered user changes email or role;
//   - changing to the current email or role is a no-op: no event, no error,
//     so a retried or duplicated request leaves no noise in the audit trail.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "vellum/aggregate.h"

namespace audit {

using vellum::Result;

// --- Events (the type names are the wire names; `by` is the acting user) ---
struct UserRegistered {
  static constexpr std::string_view kType = "UserRegistered";
  static constexpr uint32_t kSchemaVersion = 1;
  std::string user_id;
  std::string email;
  std::string role;
  std::string by;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(UserRegistered, user_id, email, role, by)

struct UserEmailChanged {
  static constexpr std::string_view kType = "UserEmailChanged";
  static constexpr uint32_t kSchemaVersion = 1;
  std::string old_email;
  std::string new_email;
  std::string reason;
  std::string by;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(UserEmailChanged, old_email, new_email, reason, by)

struct UserRoleChanged {
  static constexpr std::string_view kType = "UserRoleChanged";
  static constexpr uint32_t kSchemaVersion = 1;
  std::string old_role;
  std::string new_role;
  std::string by;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(UserRoleChanged, old_role, new_role, by)

// --- State ---
struct UserState {
  bool registered = false;
  std::string user_id;
  std::string email;
  std::string role;
  friend bool operator==(const UserState&, const UserState&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(UserState, registered, user_id, email, role)

// --- Commands ---
struct RegisterUser {
  std::string user_id;
  std::string email;
  std::string role;
  std::string by;
};
struct ChangeEmail {
  std::string new_email;
  std::string reason;
  std::string by;
};
struct ChangeRole {
  std::string new_role;
  std::string by;
};

// The roles a user may have, least privileged first.
inline constexpr std::string_view kRoles[] = {"viewer", "member", "admin", "owner"};
bool known_role(std::string_view role);
// A deliberately modest check: one '@', something on both sides, a dot in
// the domain, no spaces. Deliverability is not the event store's business.
bool plausible_email(std::string_view email);
// User ids become stream names ("user-<id>"): 1-64 of [A-Za-z0-9_.@-].
bool valid_user_id(std::string_view id);

struct User {
  using Codec = vellum::EventCodec<UserRegistered, UserEmailChanged, UserRoleChanged>;
  using Event = Codec::Event;
  using State = UserState;
  using Command = std::variant<RegisterUser, ChangeEmail, ChangeRole>;
  static constexpr std::string_view kCategory = "user";
  static constexpr uint32_t kLogicVersion = 1;

  static State initial() { return {}; }
  static State evolve(State state, const Event& event);
  // Business-rule violations are kFailedPrecondition errors naming the rule;
  // malformed commands (bad email, unknown role) are kInvalidArgument.
  static Result<std::vector<Event>> decide(const State& state, const Command& command);
};

using UserStore = vellum::AggregateStore<User>;

}  // namespace audit
