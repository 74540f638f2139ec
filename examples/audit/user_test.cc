// SPDX-License-Identifier: Apache-2.0
// The audit example's domain logic: the User aggregate's rules, and the audit
// queries (GDPR access, state at a past time) on a real embedded store.
#include "user.h"

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <unistd.h>

#include "vellum/store.h"

#include "audit.h"

namespace audit {
namespace {

using vellum::ErrorCode;

UserState registered(std::string email, std::string role) {
  return User::evolve(User::initial(), UserRegistered{"alice", std::move(email), role, "admin"});
}

TEST(UserDecide, RegistersOnceWithAValidEmailAndRole) {
  auto events = User::decide(User::initial(), RegisterUser{"alice", "a@example.com", "member", ""});
  ASSERT_TRUE(events.has_value());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ(std::get<UserRegistered>((*events)[0]).email, "a@example.com");

  UserState state = registered("a@example.com", "member");
  EXPECT_TRUE(state.registered);
  EXPECT_EQ(User::decide(state, RegisterUser{"alice", "b@example.com", "member", ""}).error().code,
            ErrorCode::kFailedPrecondition);
  for (const char* email : {"", "no-at-sign", "@example.com", "a@nodot", "a b@example.com",
                            "a@@example.com", "a@example."}) {
    auto refused = User::decide(User::initial(), RegisterUser{"alice", email, "member", ""});
    ASSERT_FALSE(refused.has_value()) << email;
    EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument) << email;
  }
  EXPECT_EQ(User::decide(User::initial(), RegisterUser{"alice", "a@example.com", "root", ""})
                .error()
                .code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(User::decide(User::initial(), RegisterUser{"a/b", "a@example.com", "member", ""})
                .error()
                .code,
            ErrorCode::kInvalidArgument);
}

TEST(UserDecide, UnregisteredUsersCannotChange) {
  auto email = User::decide(User::initial(), ChangeEmail{"b@example.com", "", ""});
  ASSERT_FALSE(email.has_value());
  EXPECT_EQ(email.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(email.error().message.find("not registered"), std::string::npos);
  auto role = User::decide(User::initial(), ChangeRole{"admin", ""});
  ASSERT_FALSE(role.has_value());
  EXPECT_EQ(role.error().code, ErrorCode::kFailedPrecondition);
}

TEST(UserDecide, ChangesRecordOldAndNewValuesAndSameValueIsANoOp) {
  UserState state = registered("a@example.com", "member");
  auto email = User::decide(state, ChangeEmail{"b@example.com", "user request", "alice"});
  ASSERT_TRUE(email.has_value());
  ASSERT_EQ(email->size(), 1u);
  const auto& changed = std::get<UserEmailChanged>((*email)[0]);
  EXPECT_EQ(changed.old_email, "a@example.com");
  EXPECT_EQ(changed.new_email, "b@example.com");
  EXPECT_EQ(User::evolve(state, (*email)[0]).email, "b@example.com");

  EXPECT_TRUE(User::decide(state, ChangeEmail{"a@example.com", "", ""})->empty());
  EXPECT_TRUE(User::decide(state, ChangeRole{"member", ""})->empty());
  EXPECT_EQ(User::decide(state, ChangeEmail{"not-an-email", "", ""}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(User::decide(state, ChangeRole{"root", ""}).error().code, ErrorCode::kInvalidArgument);
  auto role = User::decide(state, ChangeRole{"admin", "owner-1"});
  ASSERT_EQ(role->size(), 1u);
  EXPECT_EQ(User::evolve(state, (*role)[0]).role, "admin");
}

TEST(ParseTime, DatesMeanTheEndOfTheDayInUtc) {
  auto end_of_day = parse_time("2026-11-23");
  auto next_day = parse_time("2026-11-24T00:00:00Z");
  ASSERT_TRUE(end_of_day.has_value());
  ASSERT_TRUE(next_day.has_value());
  EXPECT_EQ(*next_day - *end_of_day, 1);
  EXPECT_EQ(parse_time("2026-11-23T14:12:00+01:00"), parse_time("2026-11-23T13:12:00Z"));
  EXPECT_FALSE(parse_time("yesterday").has_value());
  EXPECT_FALSE(parse_time("2026-13-01").has_value());
}

class AuditStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("audit-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    vellum::StoreOptions options;
    options.durability = vellum::Durability::kNone;
    store_ = vellum::Store::open(dir_.string(), options).value();
    users_ = std::make_unique<UserStore>(*store_, nullptr);
  }
  void TearDown() override {
    users_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  vellum::CommandResult<User> run(const std::string& user, const User::Command& command,
                                  const std::string& request_id) {
    auto result =
        run_command(*users_, user, command, Request{"admin", request_id, "", "cmd-" + request_id});
    EXPECT_TRUE(result.has_value()) << result.error().message;
    return std::move(result).value();
  }

  std::filesystem::path dir_;
  std::unique_ptr<vellum::Store> store_;
  std::unique_ptr<UserStore> users_;
};

TEST_F(AuditStoreTest, EventsCarrySubjectCorrelationAndCausation) {
  run("alice", RegisterUser{"alice", "a@example.com", "member", "admin"}, "req-1");
  auto read = store_->read_stream("user-alice", {});
  ASSERT_TRUE(read.has_value());
  ASSERT_EQ(read->events.size(), 1u);
  const vellum::RecordedEvent& event = read->events[0];
  EXPECT_EQ(event.type, "UserRegistered");
  EXPECT_EQ(event.subject, "alice");
  EXPECT_EQ(event.correlation_id, "req-1");
  EXPECT_EQ(event.causation_id, "cmd-req-1");  // no causation given: the command
}

TEST_F(AuditStoreTest, ARetriedCommandAppendsOnce) {
  run("alice", RegisterUser{"alice", "a@example.com", "member", "admin"}, "req-1");
  run("alice", ChangeEmail{"b@example.com", "", "admin"}, "req-2");
  auto retried = run("alice", ChangeEmail{"b@example.com", "", "admin"}, "req-2");
  EXPECT_TRUE(retried.replayed);
  EXPECT_EQ(store_->stream_info("user-alice")->last_revision, 1);
}

TEST_F(AuditStoreTest, GdprAccessFindsEveryEventAboutTheUserInAnyStream) {
  run("alice", RegisterUser{"alice", "a@example.com", "member", "admin"}, "req-1");
  run("bob", RegisterUser{"bob", "b@example.com", "member", "admin"}, "req-2");
  run("alice", ChangeRole{"admin", "owner"}, "req-3");
  // An event about alice in another part of the system (say, a login log).
  vellum::EventData login;
  login.type = "LoginSucceeded";
  login.data = "{}";
  login.subject = "alice";
  ASSERT_TRUE(store_->append("login-2026", vellum::ExpectedRevision::any(), {&login, 1}));

  auto events = events_about(*store_, "alice");
  ASSERT_TRUE(events.has_value()) << events.error().message;
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].type, "UserRegistered");
  EXPECT_EQ((*events)[1].type, "UserRoleChanged");
  EXPECT_EQ((*events)[2].stream, "login-2026");
  EXPECT_TRUE(events_about(*store_, "carol")->empty());
}

TEST_F(AuditStoreTest, StateAtAPastTime) {
  auto registered = run("alice", RegisterUser{"alice", "a@example.com", "member", "admin"}, "r1");
  run("alice", ChangeEmail{"b@example.com", "", "alice"}, "r2");
  auto first = store_->read_stream("user-alice", {})->events;
  ASSERT_EQ(first.size(), 2u);
  const int64_t registered_at = first[0].recorded_time_unix_ns;
  const int64_t changed_at = first[1].recorded_time_unix_ns;
  ASSERT_LE(registered_at, changed_at);

  auto then = user_as_of(*users_, "alice", registered_at);
  ASSERT_TRUE(then.has_value()) << then.error().message;
  if (changed_at > registered_at) {
    EXPECT_EQ(then->state.email, "a@example.com");
    EXPECT_EQ(then->revision, 0);
  }
  auto now = user_as_of(*users_, "alice", std::nullopt);
  EXPECT_EQ(now->state.email, "b@example.com");
  auto before = user_as_of(*users_, "alice", registered_at - 1);
  ASSERT_FALSE(before.has_value());
  EXPECT_EQ(before.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(user_as_of(*users_, "nobody", std::nullopt).error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace audit
