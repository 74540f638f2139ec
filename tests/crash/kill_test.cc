// SPDX-License-Identifier: Apache-2.0
// Real-process crash test. Starts vellum_kill_child (4 threads appending to a
// store on the real disk with Durability::kFsync, printing one ACK line per
// acknowledged append), kills it with SIGKILL after a random 5-150 ms, and
// repeats. After every kill the parent opens the store itself and checks:
// every acknowledged append is present bit for bit (same revision, same
// position, same hash of its events), and no batch is partly visible (each
// event's data names its batch, its size and its index; every batch seen in
// the log must be complete). Some kills land while the child is still
// opening the store, so recovery itself gets interrupted too.
//
// VL_KILLS sets the number of kills (default 50); VL_SEED the random delays.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vellum/store.h"

#include "base/prng.h"

namespace vellum {
namespace {

using Clock = std::chrono::steady_clock;

struct Ack {
  std::string stream;
  uint64_t first_revision = 0;
  uint64_t first_position = 0;
  uint64_t count = 0;
  uint64_t hash = 0;
};

uint64_t fnv1a(uint64_t hash, std::string_view bytes) {
  for (char c : bytes) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

// Must match kill_child.cc's events_hash().
uint64_t events_hash(const std::vector<RecordedEvent>& events) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (const auto& e : events) {
    hash = fnv1a(hash, e.type);
    hash = fnv1a(hash, std::string_view("\0", 1));
    hash = fnv1a(hash, e.data);
    hash = fnv1a(hash, std::string_view("\0", 1));
    hash = fnv1a(hash, e.metadata);
    hash = fnv1a(hash, std::string_view("\0", 1));
  }
  return hash;
}

std::string child_path() {
#ifdef VL_KILL_CHILD_PATH
  return VL_KILL_CHILD_PATH;
#else
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "vellum_kill_child")
      .string();
#endif
}

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* text = std::getenv(name);
  return text != nullptr && *text != '\0' ? std::strtoull(text, nullptr, 10) : fallback;
}

// One run of the child: spawned with its stdout on a pipe we read.
class Child {
 public:
  Child(const std::string& dir, uint64_t run) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    const std::string path = child_path();
    const std::string run_text = std::to_string(run);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execl(path.c_str(), path.c_str(), dir.c_str(), run_text.c_str(),
              static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    ::close(fds[1]);
    fd_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) ::close(fd_);
  }

  bool started() const { return pid_ > 0 && fd_ >= 0; }

  // Reads what is available until `deadline` or until a line starting with
  // `until` arrives (empty: read until the deadline). Returns false at EOF.
  bool read_until(Clock::time_point deadline, std::string_view until) {
    while (true) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return true;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[65536];
      const ssize_t n = ::read(fd_, buffer, sizeof buffer);
      if (n <= 0) return false;
      text_.append(buffer, static_cast<size_t>(n));
      if (!until.empty() && has_line_starting_with(until)) return true;
    }
  }

  bool has_line_starting_with(std::string_view prefix) const {
    for (const auto& line : lines()) {
      if (line.starts_with(prefix)) return true;
    }
    return false;
  }

  // SIGKILLs the child, drains the pipe and returns the wait status.
  int kill_and_reap() {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    read_until(Clock::now() + std::chrono::seconds(5), "");
    return status;
  }

  // Complete lines only: the last one may have been cut by the kill.
  std::vector<std::string> lines() const {
    std::vector<std::string> result;
    size_t begin = 0;
    for (size_t end; (end = text_.find('\n', begin)) != std::string::npos; begin = end + 1) {
      result.push_back(text_.substr(begin, end - begin));
    }
    return result;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  bool reaped_ = false;
  std::string text_;
};

// Checks one acknowledged append; returns "" if it is intact.
std::string check_ack(Store& store, const Ack& ack) {
  ReadStreamOptions options;
  options.from_revision = ack.first_revision;
  options.max_count = static_cast<uint32_t>(ack.count);
  auto read = store.read_stream(ack.stream, options);
  std::ostringstream where;
  where << "ACK " << ack.stream << "@" << ack.first_revision << " position " << ack.first_position
        << " count " << ack.count << ": ";
  if (!read.has_value()) return where.str() + "read_stream failed: " + read.error().message;
  if (read->events.size() != ack.count) {
    return where.str() + "found " + std::to_string(read->events.size()) + " events";
  }
  for (uint64_t i = 0; i < ack.count; i++) {
    const RecordedEvent& e = read->events[i];
    if (e.revision != ack.first_revision + i || e.position != ack.first_position + i) {
      return where.str() + "event " + std::to_string(i) + " is at revision " +
             std::to_string(e.revision) + " position " + std::to_string(e.position);
    }
  }
  if (events_hash(read->events) != ack.hash) return where.str() + "content differs (hash)";
  return "";
}

// Reads the log from `from_position` and checks that every batch is whole.
// Returns "" if so.
std::string check_batches_whole(Store& store, uint64_t from_position, uint64_t* events_seen) {
  std::map<uint64_t, std::pair<uint64_t, std::set<uint64_t>>> batches;  // batch -> (size, indices)
  ReadAllOptions options;
  options.from_position = from_position;
  options.max_count = 1000;
  for (int page = 0; page < 100000; page++) {
    auto read = store.read_all(options);
    if (!read.has_value()) return "read_all failed: " + read.error().message;
    for (const auto& e : read->events) {
      unsigned long long batch = 0, size = 0, index = 0;
      if (std::sscanf(e.data.c_str(), "b=%llu n=%llu i=%llu", &batch, &size, &index) != 3) {
        return "event at position " + std::to_string(e.position) + " has foreign data";
      }
      auto& entry = batches[batch];
      entry.first = size;
      if (!entry.second.insert(index).second) {
        return "batch " + std::to_string(batch) + " has a duplicate event";
      }
      (*events_seen)++;
    }
    if (!read->next_position) break;
    options.from_position = *read->next_position;
  }
  for (const auto& [batch, entry] : batches) {
    if (entry.second.size() != entry.first || *entry.second.rbegin() != entry.first - 1) {
      return "batch " + std::to_string(batch) +
             " is partly visible: " + std::to_string(entry.second.size()) + " of " +
             std::to_string(entry.first) + " events";
    }
  }
  return "";
}

std::vector<Ack> parse_acks(const std::vector<std::string>& lines, std::string* failure) {
  std::vector<Ack> acks;
  for (const auto& line : lines) {
    if (line.starts_with("FAIL")) *failure = line;
    if (!line.starts_with("ACK ")) continue;
    std::istringstream in(line.substr(4));
    Ack ack;
    in >> ack.stream >> ack.first_revision >> ack.first_position >> ack.count >> ack.hash;
    if (!in) {
      *failure = "unparsable line: " + line;
      continue;
    }
    acks.push_back(ack);
  }
  return acks;
}

class KillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "vellum_kill_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern + "/store";
    ASSERT_TRUE(std::filesystem::exists(child_path())) << "missing child binary " << child_path();
  }
  void TearDown() override {
    std::error_code ignored;
    if (!dir_.empty()) {
      std::filesystem::remove_all(std::filesystem::path(dir_).parent_path(), ignored);
    }
  }

  // Opens the store in this process and checks `acks` plus batches from
  // `from_position` on. Returns the head position. `events_seen` (optional)
  // receives the number of events read_all returned, so the caller can tell
  // that the batch check did not pass vacuously.
  uint64_t verify(const std::vector<Ack>& acks, uint64_t from_position, const std::string& when,
                  uint64_t* events_seen_out = nullptr) {
    auto store = Store::open(dir_, StoreOptions{});
    if (!store.has_value()) {
      ADD_FAILURE() << when << ": Store::open failed: " << store.error().message;
      return from_position;
    }
    for (const auto& ack : acks) {
      const std::string problem = check_ack(**store, ack);
      if (!problem.empty()) {
        ADD_FAILURE() << when << ": acknowledged append lost or changed: " << problem;
        break;
      }
    }
    uint64_t events_seen = 0;
    const std::string problem = check_batches_whole(**store, from_position, &events_seen);
    EXPECT_EQ(problem, "") << when;
    if (events_seen_out != nullptr) *events_seen_out = events_seen;
    return (*store)->head_position();
  }

  std::string dir_;
};

TEST_F(KillTest, AcknowledgedAppendsSurviveSigkill) {
  const uint64_t kills = env_u64("VL_KILLS", 50);
  const uint64_t seed = env_u64("VL_SEED", 1);
  SCOPED_TRACE("seed=" + std::to_string(seed) + " (VL_SEED)");
  Prng prng(seed);
  std::vector<Ack> all_acks;
  uint64_t verified_head = 0;
  uint64_t kills_during_open = 0;
  const auto started = Clock::now();
  for (uint64_t run = 1; run <= kills && !HasFailure(); run++) {
    const std::string when = "after kill " + std::to_string(run);
    Child child(dir_, run);
    ASSERT_TRUE(child.started());
    // Most kills wait for READY so appends are in flight; some hit recovery.
    const bool during_open = prng.chance(15);
    if (!during_open) {
      ASSERT_TRUE(child.read_until(Clock::now() + std::chrono::seconds(30), "READY"))
          << when << ": the child exited before READY";
    }
    const auto delay = std::chrono::milliseconds(5 + prng.uniform(146));
    child.read_until(Clock::now() + delay, "");
    const int status = child.kill_and_reap();
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << when << ": the child exited by itself (status " << status << ")";
    std::string failure;
    const auto lines = child.lines();
    std::vector<Ack> acks = parse_acks(lines, &failure);
    ASSERT_EQ(failure, "") << when;
    if (during_open && (lines.empty() || !lines.front().starts_with("READY"))) kills_during_open++;
    // Re-check a sample of older acknowledgements too: nothing may move.
    std::vector<Ack> to_check = acks;
    for (int i = 0; i < 100 && !all_acks.empty(); i++) {
      to_check.push_back(all_acks[prng.uniform(all_acks.size())]);
    }
    verified_head = verify(to_check, verified_head, when);
    all_acks.insert(all_acks.end(), acks.begin(), acks.end());
  }
  uint64_t events_seen = 0;
  verify(all_acks, 0, "at the end", &events_seen);
  uint64_t events_acked = 0;
  for (const auto& ack : all_acks) events_acked += ack.count;
  EXPECT_GE(events_seen, events_acked) << "read_all returned fewer events than were acknowledged";
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  std::printf("kills=%llu acknowledged appends=%zu events=%llu kills during open=%llu in %.1f s\n",
              static_cast<unsigned long long>(kills), all_acks.size(),
              static_cast<unsigned long long>(verified_head),
              static_cast<unsigned long long>(kills_during_open), seconds);
  EXPECT_GT(all_acks.size(), kills) << "the child acknowledged too few appends to test anything";
}

}  // namespace
}  // namespace vellum
