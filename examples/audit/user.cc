// SPDX-License-Identifier: Apache-2.0
#include "user.h"

#include <algorithm>

namespace audit {

using vellum::ErrorCode;
using vellum::make_error;

bool known_role(std::string_view role) {
  return std::find(std::begin(kRoles), std::end(kRoles), role) != std::end(kRoles);
}

bool plausible_email(std::string_view email) {
  const size_t at = email.find('@');
  if (at == std::string_view::npos || at == 0 || email.find('@', at + 1) != email.npos) {
    return false;
  }
  const std::string_view domain = email.substr(at + 1);
  const size_t dot = domain.find('.');
  if (dot == domain.npos || dot == 0 || dot + 1 == domain.size()) return false;
  return email.size() <= 254 && email.find_first_of(" \t\r\n") == email.npos;
}

bool valid_user_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '@' || c == '-';
  });
}

namespace {

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};

using Events = std::vector<User::Event>;

Result<Events> invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

Result<Events> not_registered(std::string_view what) {
  return make_error(ErrorCode::kFailedPrecondition,
                    "cannot " + std::string(what) + ": the user is not registered");
}

Result<Events> register_user(const UserState& state, const RegisterUser& command) {
  if (state.registered) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "user '" + state.user_id + "' is already registered");
  }
  if (!valid_user_id(command.user_id)) {
    return invalid("user id '" + command.user_id + "' is not 1-64 of [A-Za-z0-9_.@-]");
  }
  if (!plausible_email(command.email)) return invalid("'" + command.email + "' is not an email");
  if (!known_role(command.role)) return invalid("unknown role '" + command.role + "'");
  return Events{UserRegistered{command.user_id, command.email, command.role, command.by}};
}

Result<Events> change_email(const UserState& state, const ChangeEmail& command) {
  if (!state.registered) return not_registered("change the email");
  if (!plausible_email(command.new_email)) {
    return invalid("'" + command.new_email + "' is not an email");
  }
  if (command.new_email == state.email) return Events{};  // no-op: see user.h
  return Events{UserEmailChanged{state.email, command.new_email, command.reason, command.by}};
}

Result<Events> change_role(const UserState& state, const ChangeRole& command) {
  if (!state.registered) return not_registered("change the role");
  if (!known_role(command.new_role)) return invalid("unknown role '" + command.new_role + "'");
  if (command.new_role == state.role) return Events{};  // no-op: see user.h
  return Events{UserRoleChanged{state.role, command.new_role, command.by}};
}

}  // namespace

UserState User::evolve(UserState state, const Event& event) {
  std::visit(Overloaded{
                 [&](const UserRegistered& e) {
                   state.registered = true;
                   state.user_id = e.user_id;
                   state.email = e.email;
                   state.role = e.role;
                 },
                 [&](const UserEmailChanged& e) { state.email = e.new_email; },
                 [&](const UserRoleChanged& e) { state.role = e.new_role; },
             },
             event);
  return state;
}

Result<std::vector<User::Event>> User::decide(const UserState& state, const Command& command) {
  return std::visit(Overloaded{
                        [&](const RegisterUser& c) { return register_user(state, c); },
                        [&](const ChangeEmail& c) { return change_email(state, c); },
                        [&](const ChangeRole& c) { return change_role(state, c); },
                    },
                    command);
}

}  // namespace audit
