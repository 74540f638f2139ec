// SPDX-License-Identifier: Apache-2.0
// vellum_kill_child <dir> <run>: the process that kill_test SIGKILLs. It opens
// the store in <dir> on the real disk (Durability::kFsync), prints
// "READY <head_position>", then runs 4 appender threads until it is killed.
// Each appends batches of 1-5 events (some with append_multi across two
// streams) and, once an append is acknowledged, prints one line per stream:
//   ACK <stream> <first_revision> <first_position> <count> <hash>
// where <hash> is FNV-1a over the events' type, data and metadata. Every
// event's data names its batch ("b=<batch> n=<events in batch> i=<index>")
// so the parent can check that no batch is ever partly visible. Lines are
// written with one write(2) each (shorter than PIPE_BUF, so never torn);
// anything unexpected is reported as "FAIL ..." and exits with status 3.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "vellum/store.h"

#include "base/prng.h"

namespace {

constexpr int kThreads = 4;
std::mutex output_mutex;

uint64_t fnv1a(uint64_t hash, std::string_view bytes) {
  for (char c : bytes) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

// Must match kill_test.cc's event_hash().
uint64_t events_hash(const std::vector<vellum::EventData>& events) {
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

void emit(const std::string& line) {
  std::lock_guard guard(output_mutex);
  const char* data = line.data();
  size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(STDOUT_FILENO, data, left);
    if (n <= 0) std::_Exit(4);  // the parent is gone
    data += n;
    left -= static_cast<size_t>(n);
  }
}

[[noreturn]] void die(const std::string& what) {
  emit("FAIL " + what + "\n");
  std::_Exit(3);
}

std::vector<vellum::EventData> make_events(vellum::Prng& prng, uint64_t batch, uint64_t first_index,
                                           uint64_t count, uint64_t batch_size) {
  std::vector<vellum::EventData> events;
  for (uint64_t i = 0; i < count; i++) {
    vellum::EventData e;
    e.type = prng.chance(50) ? "Deposited" : "Withdrawn";
    e.data = "b=" + std::to_string(batch) + " n=" + std::to_string(batch_size) +
             " i=" + std::to_string(first_index + i) + " pad=";
    const uint64_t pad = prng.chance(5) ? 2000 + prng.uniform(6000) : prng.uniform(300);
    for (uint64_t k = 0; k < pad; k++) e.data += static_cast<char>('a' + prng.uniform(26));
    if (prng.chance(30)) e.metadata = "{\"seq\":" + std::to_string(prng.next() % 100000) + "}";
    events.push_back(std::move(e));
  }
  return events;
}

std::string ack_line(const vellum::AppendResult& r, const std::vector<vellum::EventData>& events) {
  return "ACK " + r.stream + " " + std::to_string(r.first_revision) + " " +
         std::to_string(r.first_position) + " " + std::to_string(events.size()) + " " +
         std::to_string(events_hash(events)) + "\n";
}

// One appender: alternates single-stream appends to its own stream and a
// shared one with two-stream append_multi calls. Batch ids are unique across
// runs: run * 10^9 + thread * 10^8 + sequence.
void appender(vellum::Store* store, uint64_t run, int thread) {
  vellum::Prng prng(run * 1000 + static_cast<uint64_t>(thread) + 1);
  const std::string own = "kill-" + std::to_string(thread);
  const std::string shared = "shared-" + std::to_string(thread % 2);
  for (uint64_t seq = 0;; seq++) {
    const uint64_t batch =
        run * 1'000'000'000ULL + static_cast<uint64_t>(thread) * 100'000'000ULL + seq;
    const uint64_t size = 1 + prng.uniform(5);
    if (size >= 2 && prng.chance(30)) {
      const uint64_t split = 1 + prng.uniform(size - 1);
      std::vector<vellum::StreamAppend> parts(2);
      parts[0] = {own, vellum::ExpectedRevision::any(), make_events(prng, batch, 0, split, size)};
      parts[1] = {shared, vellum::ExpectedRevision::any(),
                  make_events(prng, batch, split, size - split, size)};
      auto result = store->append_multi(parts);
      if (!result.has_value()) die("append_multi: " + result.error().message);
      emit(ack_line((*result)[0], parts[0].events) + ack_line((*result)[1], parts[1].events));
    } else {
      const std::string& stream = prng.chance(70) ? own : shared;
      auto events = make_events(prng, batch, 0, size, size);
      auto result = store->append(stream, vellum::ExpectedRevision::any(), events);
      if (!result.has_value()) die("append: " + result.error().message);
      emit(ack_line(*result, events));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <dir> <run>\n", argv[0]);
    return 2;
  }
  vellum::StoreOptions options;
  options.durability = vellum::Durability::kFsync;
  options.segment_size_bytes = uint64_t{4} << 20;  // segments roll during the test
  auto store = vellum::Store::open(argv[1], options);
  if (!store.has_value()) {
    if (store.error().code == vellum::ErrorCode::kInvalidArgument) {
      options.segment_size_bytes = vellum::StoreOptions{}.segment_size_bytes;
      store = vellum::Store::open(argv[1], options);
    }
    if (!store.has_value()) die("open: " + store.error().message);
  }
  emit("READY " + std::to_string((*store)->head_position()) + "\n");
  const uint64_t run = std::strtoull(argv[2], nullptr, 10);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; t++) threads.emplace_back(appender, store->get(), run, t);
  for (auto& thread : threads) thread.join();  // never: the parent kills us
  return 0;
}
