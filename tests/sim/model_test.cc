// SPDX-License-Identifier: Apache-2.0
// Randomized model-based test of the whole store through its public API.
// For each seed, thousands of random operations (appends with every kind of
// expected revision, multi-stream appends, idempotent retries, stream and
// log reads with filters, reads by id, metadata, soft deletes, tombstones)
// run against Store on a FaultyFileSystem and against a simple in-memory
// model; every answer is compared. Now and then the machine "crashes"
// (FaultyFileSystem::crash, torn writes included) and the store is reopened:
// with Durability::kFsync every acknowledged operation must still be there,
// bit for bit, at the same revision and position. Some rounds arm a failing
// fsync: the store must then refuse writes (kUnavailable) but keep serving
// reads, and after the crash the one write in flight is either wholly there
// or wholly absent.
//
// Reads go through read_stream/read_all and, on a coin flip, through the
// zero-copy visit_stream/visit_all, which must answer exactly the same.
//
// Replay a failure with VL_SEED=<seed> (printed as "seed=N"); VL_SEEDS sets
// how many seeds (1..N) a run covers and VL_STEPS the operations per seed.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "vellum/store.h"

#include "base/prng.h"
#include "testing/faulty_file_system.h"

namespace vellum {
namespace {

using testing::FaultOp;
using testing::FaultyFileSystem;

constexpr const char* kDir = "/db";
constexpr uint64_t kDefaultSeeds = 8;
constexpr uint64_t kDefaultSteps = 2500;
constexpr size_t kPagesMax = 5000;  // bound on every pagination loop
constexpr const char* kTypes[] = {"Created", "Updated", "Shipped", "Cancelled"};
constexpr const char* kSubjects[] = {"", "", "alice", "bob"};
constexpr const char* kStreams[] = {"order-1", "order-2", "order-10", "order-11",
                                    "user-1",  "user-2",  "user-3",   "cart-1",
                                    "cart-2",  "cart-3",  "audit-1"};

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  return std::strtoull(text, nullptr, 10);
}

std::string category_of(const std::string& stream) { return stream.substr(0, stream.find('-')); }

// One event as the model knows it. `id` is nullopt while a store-generated id
// has not been seen yet; `position` is nullopt for events whose append result
// was lost (a failed fsync) and that have not been read since.
struct ModelEvent {
  EventData data;
  std::optional<Uuid> id;
  std::string stream;
  uint64_t revision = 0;
  std::optional<uint64_t> position;
};

struct ModelStream {
  std::vector<ModelEvent> events;  // events[r].revision == r
  bool soft_deleted = false;       // until the next append recreates it
  bool ever_soft_deleted = false;
  bool tombstoned = false;
  uint64_t deleted_before = 0;  // revisions below this were soft-deleted
  bool has_metadata = false;
  StreamMetadata metadata;
  uint64_t delete_epoch = 0;  // bumped by every delete: invalidates retries

  int64_t last_revision() const { return static_cast<int64_t>(events.size()) - 1; }

  bool visible(uint64_t revision) const {
    if (tombstoned || soft_deleted || revision < deleted_before) return false;
    if (metadata.truncate_before && revision < *metadata.truncate_before) return false;
    if (metadata.max_count && revision + *metadata.max_count < events.size()) return false;
    return true;
  }

  bool any_visible() const {
    for (uint64_t r = 0; r < events.size(); r++) {
      if (visible(r)) return true;
    }
    return false;
  }
};

// An acknowledged single-stream append, kept so it can be retried.
struct AckedAppend {
  std::string stream;
  ExpectedRevision expected = ExpectedRevision::any();
  std::vector<EventData> events;
  AppendResult result;
  uint64_t delete_epoch = 0;
};

// Whether an expected revision must pass, must fail, or may do either
// (cases the API leaves open, such as exact(last) on a soft-deleted stream).
enum class Verdict { kPass, kConflict, kEither };

Verdict judge(const ModelStream& s, ExpectedRevision expected) {
  const bool has_events = !s.events.empty() && !s.soft_deleted;
  const bool all_hidden = has_events && !s.any_visible();
  switch (expected.kind()) {
    case ExpectedRevision::Kind::kAny:
      return Verdict::kPass;
    case ExpectedRevision::Kind::kNoStream:
      if (!has_events) return Verdict::kPass;
      return all_hidden ? Verdict::kEither : Verdict::kConflict;
    case ExpectedRevision::Kind::kStreamExists:
      if (!has_events) return Verdict::kConflict;
      return all_hidden ? Verdict::kEither : Verdict::kPass;
    case ExpectedRevision::Kind::kExact:
      if (static_cast<int64_t>(expected.revision()) != s.last_revision()) return Verdict::kConflict;
      return s.soft_deleted ? Verdict::kEither : Verdict::kPass;
  }
  return Verdict::kEither;
}

bool is_write_failure(ErrorCode code) {
  return code == ErrorCode::kUnavailable || code == ErrorCode::kIoError;
}

std::string describe(const Error& error) {
  return std::string(error_code_name(error.code)) + ": " + error.message;
}

// Field-by-field comparison; returns "" when equal.
std::string diff_event(const RecordedEvent& got, const ModelEvent& want) {
  std::ostringstream out;
  const EventData& d = want.data;
  if (want.id && got.id != *want.id) {
    out << " id " << got.id.to_string() << "!=" << want.id->to_string();
  }
  if (got.stream != want.stream) out << " stream " << got.stream << "!=" << want.stream;
  if (got.revision != want.revision) out << " revision " << got.revision << "!=" << want.revision;
  if (want.position && got.position != *want.position) {
    out << " position " << got.position << "!=" << *want.position;
  }
  if (got.type != d.type) out << " type " << got.type << "!=" << d.type;
  if (got.content_type != d.content_type) out << " content_type";
  if (got.data != d.data) {
    out << " data (" << got.data.size() << " vs " << d.data.size() << " bytes)";
  }
  if (got.metadata != d.metadata) out << " metadata";
  if (got.correlation_id != d.correlation_id) out << " correlation_id";
  if (got.causation_id != d.causation_id) out << " causation_id";
  if (got.subject != d.subject) out << " subject";
  if (got.occurrence_time_unix_ns != d.occurrence_time_unix_ns) out << " occurrence_time";
  if (got.schema_version != d.schema_version) out << " schema_version";
  if (got.key_id != 0) out << " key_id " << got.key_id;
  if (!want.id && got.id.is_nil()) out << " nil id";
  return out.str();
}

bool matches(const EventFilter& filter, const ModelEvent& event) {
  const EventData& d = event.data;
  if (!filter.types.empty() &&
      std::find(filter.types.begin(), filter.types.end(), d.type) == filter.types.end()) {
    return false;
  }
  if (!filter.category.empty() && category_of(event.stream) != filter.category) return false;
  if (!filter.subject.empty() && d.subject != filter.subject) return false;
  return event.stream.starts_with(filter.stream_prefix);
}

class Simulation {
 public:
  explicit Simulation(uint64_t seed) : seed_(seed), prng_(seed), fs_(seed * 7919 + 1) {}

  void run(uint64_t steps);

 private:
  // --- plumbing ---
  void fail(const std::string& what);
  bool open_store();
  void crash_and_reopen();
  ModelStream& stream(const std::string& name) { return streams_[name]; }
  std::string pick_stream() { return kStreams[prng_.uniform(std::size(kStreams))]; }
  Uuid random_uuid();
  EventData random_event(bool allow_nil_id);
  std::vector<EventData> random_events();
  ExpectedRevision random_expected(const ModelStream& s);
  void note(std::string text);

  // --- operations ---
  void step();
  void op_append();
  void op_append_multi();
  void op_retry();
  void op_invalid_append();
  void op_set_metadata();
  void op_delete(bool tombstone);
  void op_arm_sync_fault();
  void op_probe_failed_writer();

  // --- checks ---
  void check_append_result(const std::string& name, const std::vector<EventData>& events,
                           const AppendResult& result);
  void record_append(const std::string& name, std::vector<EventData> events,
                     const std::optional<AppendResult>& result);
  void check_positions_dense(const std::vector<AppendResult>& results, uint64_t total);
  void check_event(const RecordedEvent& got, ModelEvent& want, const std::string& where);
  void check_read_stream(const std::string& name, Direction direction, uint64_t from,
                         uint32_t max_count);
  void check_read_stream_random();
  void check_read_all(const ReadAllOptions& options);
  void check_read_all_random();
  // One page through read_stream/read_all or, on a coin flip, through the
  // zero-copy visit_stream/visit_all, which must give the same answers.
  Result<ReadStreamResult> stream_page(const std::string& name, const ReadStreamOptions& options);
  Result<ReadAllResult> all_page(const ReadAllOptions& options);
  void check_read_event_random();
  void check_stream_info(const std::string& name);
  void verify_everything();
  void reconcile_uncertain();
  void learn_positions(const std::string& name);

  uint64_t seed_;
  Prng prng_;
  FaultyFileSystem fs_;
  StoreOptions options_;
  std::unique_ptr<Store> store_;
  std::map<std::string, ModelStream> streams_;
  std::map<uint64_t, std::pair<std::string, uint64_t>> by_position_;  // known positions
  std::optional<uint64_t> next_position_;  // exact, when no unknown records intervened
  std::optional<uint64_t> max_position_;
  std::vector<AckedAppend> acked_;
  std::map<Uuid, std::pair<std::string, uint64_t>> by_id_;
  bool fault_armed_ = false;
  bool writer_failed_ = false;
  uint64_t ops_since_failure_ = 0;
  // The write that failed first after a fault: it may or may not be on disk.
  std::optional<std::vector<StreamAppend>> uncertain_;
  uint64_t probe_count_ = 0;
  std::vector<std::string> probes_;  // streams of appends refused by a failed writer
  std::deque<std::string> recent_ops_;
  uint64_t step_ = 0;
  bool ok_ = true;
  std::map<std::string, uint64_t> counts_;  // what the run exercised, printed at the end
};

void Simulation::note(std::string text) {
  recent_ops_.push_back("step " + std::to_string(step_) + ": " + std::move(text));
  if (recent_ops_.size() > 12) recent_ops_.pop_front();
}

void Simulation::fail(const std::string& what) {
  if (!ok_) return;
  ok_ = false;
  std::ostringstream out;
  out << "seed=" << seed_ << " step=" << step_ << ": " << what << "\nrecent operations:\n";
  for (const auto& op : recent_ops_) out << "  " << op << "\n";
  out << "replay with VL_SEED=" << seed_;
  ADD_FAILURE() << out.str();
}

Uuid Simulation::random_uuid() {
  Uuid id;
  for (auto& byte : id.bytes) byte = static_cast<uint8_t>(prng_.next());
  id.bytes[6] = static_cast<uint8_t>((id.bytes[6] & 0x0f) | 0x40);  // version 4
  id.bytes[8] = static_cast<uint8_t>((id.bytes[8] & 0x3f) | 0x80);  // RFC 9562 variant
  return id;
}

EventData Simulation::random_event(bool allow_nil_id) {
  EventData e;
  if (!allow_nil_id || !prng_.chance(5)) e.id = random_uuid();
  e.type = kTypes[prng_.uniform(std::size(kTypes))];
  const uint64_t size = prng_.chance(5) ? prng_.uniform(20000) : prng_.uniform(600);
  if (prng_.chance(80)) {
    e.data = "{\"n\":" + std::to_string(prng_.next() % 1000000) + ",\"pad\":\"";
    for (uint64_t i = 0; i < size; i++) e.data += static_cast<char>('a' + prng_.uniform(26));
    e.data += "\"}";
  } else {
    e.content_type = "application/octet-stream";
    for (uint64_t i = 0; i < size; i++) e.data += static_cast<char>(prng_.next());
  }
  if (prng_.chance(30)) e.metadata = "{\"m\":" + std::to_string(prng_.uniform(100)) + "}";
  if (prng_.chance(20)) e.correlation_id = "corr-" + std::to_string(prng_.uniform(1000));
  if (prng_.chance(20)) e.causation_id = "cause-" + std::to_string(prng_.uniform(1000));
  e.subject = kSubjects[prng_.uniform(std::size(kSubjects))];
  if (prng_.chance(50)) {
    e.occurrence_time_unix_ns =
        1'700'000'000'000'000'000 + static_cast<int64_t>(prng_.uniform(1u << 30));
  }
  e.schema_version = 1 + static_cast<uint32_t>(prng_.uniform(3));
  return e;
}

std::vector<EventData> Simulation::random_events() {
  const uint64_t count = prng_.chance(10) ? 6 + prng_.uniform(35) : 1 + prng_.uniform(5);
  std::vector<EventData> events;
  for (uint64_t i = 0; i < count; i++) events.push_back(random_event(!fault_armed_));
  return events;
}

ExpectedRevision Simulation::random_expected(const ModelStream& s) {
  const int64_t last = s.last_revision();
  const uint64_t roll = prng_.uniform(100);
  if (roll < 25) return ExpectedRevision::any();
  if (roll < 40) return ExpectedRevision::no_stream();
  if (roll < 55) return ExpectedRevision::stream_exists();
  if (roll < 90 && last >= 0) return ExpectedRevision::exact(static_cast<uint64_t>(last));
  // A wrong exact revision: above the last one, or below it.
  if (last >= 1 && prng_.chance(50)) return ExpectedRevision::exact(prng_.uniform(last));
  return ExpectedRevision::exact(static_cast<uint64_t>(last + 1) + prng_.uniform(3));
}

bool Simulation::open_store() {
  auto opened = Store::open(kDir, options_);
  if (!opened.has_value()) {
    fail("Store::open failed: " + describe(opened.error()));
    return false;
  }
  store_ = std::move(*opened);
  const uint64_t head = store_->head_position();
  if (max_position_ && head <= *max_position_) {
    fail("head_position " + std::to_string(head) + " <= a known position " +
         std::to_string(*max_position_));
  }
  next_position_ = head;  // internal records written by open() are not events we know
  return ok_;
}

void Simulation::run(uint64_t steps) {
  options_.durability = Durability::kFsync;
  options_.file_system = &fs_;
  options_.index_in_memory = true;
  options_.segment_size_bytes = uint64_t{1} << 20;  // several segments per run
  auto opened = Store::open(kDir, options_);
  if (!opened.has_value() && opened.error().code == ErrorCode::kInvalidArgument) {
    options_.segment_size_bytes = StoreOptions{}.segment_size_bytes;
    opened = Store::open(kDir, options_);
  }
  if (!opened.has_value()) return fail("first Store::open failed: " + describe(opened.error()));
  store_ = std::move(*opened);
  next_position_ = store_->head_position();
  for (step_ = 0; step_ < steps && ok_; step_++) step();
  if (ok_) crash_and_reopen();
  if (ok_) verify_everything();
  store_.reset();
  std::string summary;
  for (const auto& [what, count] : counts_) summary += " " + what + "=" + std::to_string(count);
  std::printf("seed=%llu events=%llu%s\n", static_cast<unsigned long long>(seed_),
              static_cast<unsigned long long>(by_position_.size()), summary.c_str());
}

void Simulation::step() {
  if (writer_failed_ && ++ops_since_failure_ > 3 + prng_.uniform(8)) return crash_and_reopen();
  if (fault_armed_ && !writer_failed_ && ++ops_since_failure_ > 40) return crash_and_reopen();
  const uint64_t roll = prng_.uniform(1000);
  if (roll < 330) return op_append();
  if (roll < 430) return op_append_multi();
  if (roll < 500) return op_retry();
  if (roll < 520) return op_invalid_append();
  if (roll < 630) return check_read_stream_random();
  if (roll < 720) return check_read_all_random();
  if (roll < 800) return check_read_event_random();
  if (roll < 840) return check_stream_info(pick_stream());
  if (roll < 990 && writer_failed_) return op_probe_failed_writer();
  // Only appends while a fault may fire: see reconcile_uncertain().
  if (fault_armed_) return;
  if (roll < 900) return op_set_metadata();
  if (roll < 930) return op_delete(false);
  if (roll < 945) return op_delete(true);
  if (roll < 985) return crash_and_reopen();
  return op_arm_sync_fault();
}

// --- appends ---------------------------------------------------------------

void Simulation::check_append_result(const std::string& name, const std::vector<EventData>& events,
                                     const AppendResult& result) {
  const ModelStream& s = streams_[name];
  const uint64_t first = static_cast<uint64_t>(s.last_revision() + 1);
  std::ostringstream out;
  if (result.stream != name) out << " stream=" << result.stream;
  if (result.first_revision != first) {
    out << " first_revision=" << result.first_revision << " want " << first;
  }
  if (result.last_revision != first + events.size() - 1) {
    out << " last_revision=" << result.last_revision;
  }
  if (result.last_position - result.first_position != events.size() - 1) out << " position range";
  if (result.idempotent_replay) out << " idempotent_replay=true";
  if (max_position_ && result.first_position <= *max_position_) {
    out << " first_position=" << result.first_position << " not above " << *max_position_;
  }
  if (!out.str().empty()) fail("append to " + name + " returned a wrong result:" + out.str());
}

// Adds acknowledged (result set) or found-on-disk (no result) events to the model.
void Simulation::record_append(const std::string& name, std::vector<EventData> events,
                               const std::optional<AppendResult>& result) {
  ModelStream& s = streams_[name];
  for (size_t i = 0; i < events.size(); i++) {
    ModelEvent event;
    event.id = events[i].id.is_nil() ? std::nullopt : std::optional<Uuid>(events[i].id);
    event.data = std::move(events[i]);
    event.stream = name;
    event.revision = s.events.size();
    if (result) event.position = result->first_position + i;
    if (event.id) by_id_[*event.id] = {name, event.revision};
    if (event.position) {
      by_position_[*event.position] = {name, event.revision};
      max_position_ = std::max(max_position_.value_or(0), *event.position);
    }
    s.events.push_back(std::move(event));
  }
  s.soft_deleted = false;
}

void Simulation::check_positions_dense(const std::vector<AppendResult>& results, uint64_t total) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  ranges.reserve(results.size());
  for (const auto& r : results) ranges.emplace_back(r.first_position, r.last_position);
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); i++) {
    if (ranges[i].first != ranges[i - 1].second + 1) {
      return fail("positions of one commit have a gap");
    }
  }
  if (next_position_ && ranges.front().first != *next_position_) {
    fail("first position " + std::to_string(ranges.front().first) + ", expected " +
         std::to_string(*next_position_) + " (positions must be dense)");
  }
  next_position_ = ranges.front().first + total;
}

void Simulation::op_append() {
  const std::string name = pick_stream();
  ModelStream& s = streams_[name];
  std::vector<EventData> events = random_events();
  const ExpectedRevision expected = random_expected(s);
  note("append " + name + " expected=" + expected.to_string() +
       " events=" + std::to_string(events.size()));
  auto result = store_->append(name, expected, events);
  if (writer_failed_) {
    if (result.has_value()) fail("append succeeded after the writer failed");
    return;
  }
  const Verdict verdict = judge(s, expected);
  if (!result.has_value()) {
    const Error& error = result.error();
    if (s.tombstoned && error.code == ErrorCode::kStreamDeleted) return;
    if (verdict != Verdict::kPass && error.code == ErrorCode::kFailedPrecondition) {
      counts_["conflicts"]++;
      if (!error.conflict || error.conflict->stream != name) {
        fail("conflict without RevisionConflict for " + name);
      }
      const int64_t actual = error.conflict ? error.conflict->actual_revision : -2;
      if (!s.soft_deleted && actual != s.last_revision()) {
        fail("conflict reports actual_revision " + std::to_string(actual) + ", model has " +
             std::to_string(s.last_revision()));
      }
      return;
    }
    if (fault_armed_ && is_write_failure(error.code)) {
      counts_["sync_faults_hit"]++;
      writer_failed_ = true;
      ops_since_failure_ = 0;
      uncertain_ = std::vector<StreamAppend>{StreamAppend{name, expected, std::move(events)}};
      return;
    }
    return fail("append to " + name + " expected=" + expected.to_string() +
                " failed: " + describe(error) + (s.tombstoned ? " (stream tombstoned)" : ""));
  }
  if (s.tombstoned) return fail("append to tombstoned stream " + name + " succeeded");
  if (verdict == Verdict::kConflict) {
    return fail("append to " + name + " with wrong expected " + expected.to_string() +
                " succeeded; model last revision " + std::to_string(s.last_revision()));
  }
  counts_[verdict == Verdict::kPass ? "appends" : "appends_either_ok"]++;
  check_append_result(name, events, *result);
  check_positions_dense({*result}, events.size());
  const bool retryable =
      std::none_of(events.begin(), events.end(), [](const EventData& e) { return e.id.is_nil(); });
  if (retryable) acked_.push_back(AckedAppend{name, expected, events, *result, s.delete_epoch});
  record_append(name, std::move(events), *result);
}

void Simulation::op_append_multi() {
  const uint64_t parts = 2 + prng_.uniform(2);
  std::vector<StreamAppend> appends;
  std::set<std::string> used;
  bool any_conflict = false, any_either = false, any_tombstoned = false;
  std::string text = "append_multi";
  while (appends.size() < parts) {
    const std::string name = pick_stream();
    if (!used.insert(name).second) continue;
    const ModelStream& s = streams_[name];
    StreamAppend part{name, random_expected(s), random_events()};
    if (prng_.chance(60)) part.expected = ExpectedRevision::any();
    const Verdict verdict = judge(s, part.expected);
    any_conflict |= verdict == Verdict::kConflict;
    any_either |= verdict == Verdict::kEither;
    any_tombstoned |= s.tombstoned;
    text += " " + name + "@" + part.expected.to_string() + "x" + std::to_string(part.events.size());
    appends.push_back(std::move(part));
  }
  note(text);
  auto result = store_->append_multi(appends);
  if (writer_failed_) {
    if (result.has_value()) fail("append_multi succeeded after the writer failed");
    return;
  }
  if (!result.has_value()) {
    const ErrorCode code = result.error().code;
    if (any_tombstoned && code == ErrorCode::kStreamDeleted) return;
    if ((any_conflict || any_either) && code == ErrorCode::kFailedPrecondition) {
      if (!result.error().conflict || !used.contains(result.error().conflict->stream)) {
        fail("append_multi conflict does not name one of its streams");
      }
      return;
    }
    if (fault_armed_ && is_write_failure(code)) {
      writer_failed_ = true;
      ops_since_failure_ = 0;
      uncertain_ = std::move(appends);
      return;
    }
    return fail("append_multi failed: " + describe(result.error()));
  }
  if (any_conflict || any_tombstoned) {
    return fail("append_multi succeeded despite a conflict/tombstone");
  }
  if (result->size() != appends.size()) {
    return fail("append_multi returned the wrong number of results");
  }
  counts_["multi_appends"]++;
  uint64_t total = 0;
  for (size_t i = 0; i < appends.size(); i++) {
    check_append_result(appends[i].stream, appends[i].events, (*result)[i]);
    total += appends[i].events.size();
  }
  check_positions_dense(*result, total);
  for (size_t i = 0; i < appends.size(); i++) {
    record_append(appends[i].stream, std::move(appends[i].events), (*result)[i]);
  }
}

// Retrying an acknowledged append with the same ids must return the original
// result, flagged as a replay, and write nothing.
void Simulation::op_retry() {
  if (acked_.empty()) return op_append();
  const AckedAppend& original = acked_[prng_.uniform(acked_.size())];
  const ModelStream& s = streams_[original.stream];
  if (s.delete_epoch != original.delete_epoch || s.tombstoned) return;
  note("retry append to " + original.stream + " at revision " +
       std::to_string(original.result.first_revision));
  const uint64_t head_before = store_->head_position();
  auto result = store_->append(original.stream, original.expected, original.events);
  if (!result.has_value()) {
    if (writer_failed_) return;
    if (fault_armed_ && is_write_failure(result.error().code)) {
      writer_failed_ = true;  // nothing was to be written, so nothing is uncertain
      ops_since_failure_ = 0;
      return;
    }
    return fail("retry of an acknowledged append failed: " + describe(result.error()));
  }
  AppendResult want = original.result;
  want.idempotent_replay = true;
  if (!(*result == want)) {
    std::ostringstream out;
    out << "retry returned first_revision=" << result->first_revision
        << " first_position=" << result->first_position << " replay=" << result->idempotent_replay
        << "; original first_revision=" << want.first_revision
        << " first_position=" << want.first_position;
    return fail(out.str());
  }
  if (store_->head_position() != head_before) fail("an idempotent replay wrote events");
  counts_["replays"]++;
}

void Simulation::op_invalid_append() {
  const uint64_t kind = prng_.uniform(3);
  std::vector<EventData> events{random_event(true)};
  std::string name = pick_stream();
  if (kind == 0) events.clear();
  if (kind == 1) name = "$reserved-1";
  if (kind == 2) events[0].type.clear();
  note("invalid append kind " + std::to_string(kind));
  auto result = store_->append(name, ExpectedRevision::any(), events);
  if (result.has_value()) {
    return fail("invalid append (kind " + std::to_string(kind) + ") succeeded");
  }
  if (result.error().code != ErrorCode::kInvalidArgument && !writer_failed_) {
    fail("invalid append (kind " + std::to_string(kind) + ") failed with " +
         describe(result.error()));
  }
}

void Simulation::op_probe_failed_writer() {
  const std::string name = "probe-" + std::to_string(probe_count_++);
  note("append to " + name + " on a failed writer");
  std::vector<EventData> events{random_event(false)};
  auto result = store_->append(name, ExpectedRevision::any(), events);
  if (result.has_value()) {
    return fail("append succeeded after a failed fsync (must be kUnavailable)");
  }
  if (result.error().code != ErrorCode::kUnavailable) {
    fail("append after a failed fsync returned " + describe(result.error()) +
         ", want kUnavailable");
  }
  probes_.push_back(name);
  counts_["refused_after_failure"]++;
}

// --- metadata and deletion -------------------------------------------------

// Metadata never reveals hidden events again (truncate_before only grows,
// max_count only shrinks) and is never mixed with soft deletes, whose
// interaction the API leaves open.
void Simulation::op_set_metadata() {
  const std::string name = pick_stream();
  ModelStream& s = streams_[name];
  // user-* and audit-* streams get metadata; order-* and cart-* get deleted.
  if (s.ever_soft_deleted || !(name.starts_with("user-") || name.starts_with("audit-"))) return;
  StreamMetadata metadata = s.metadata;
  const uint64_t size = s.events.size();
  if (prng_.chance(60)) {
    const uint64_t low = metadata.truncate_before.value_or(0);
    metadata.truncate_before = low + prng_.uniform(size + 3 > low ? size + 3 - low : 1);
  }
  if (prng_.chance(50)) {
    metadata.max_count = 1 + prng_.uniform(std::min<uint64_t>(metadata.max_count.value_or(12), 12));
  }
  metadata.custom =
      prng_.chance(50) ? "{\"owner\":\"" + std::to_string(prng_.uniform(9)) + "\"}" : "";
  note("set_stream_metadata " + name);
  auto status = store_->set_stream_metadata(name, metadata);
  if (s.tombstoned) {
    if (status.has_value() || status.error().code != ErrorCode::kStreamDeleted) {
      fail("set_stream_metadata on a tombstoned stream: want kStreamDeleted");
    }
    return;
  }
  if (!status.has_value()) return fail("set_stream_metadata failed: " + describe(status.error()));
  s.metadata = metadata;
  s.has_metadata = true;
  counts_["metadata_sets"]++;
  next_position_ = store_->head_position();  // metadata may be stored as a reserved record
}

void Simulation::op_delete(bool tombstone) {
  const std::string name = pick_stream();
  ModelStream& s = streams_[name];
  if (s.events.empty() || s.soft_deleted || s.tombstoned || s.has_metadata) return;
  if (tombstone && prng_.chance(50)) return;  // keep most streams alive
  ExpectedRevision expected = ExpectedRevision::any();
  const bool wrong = prng_.chance(15);
  if (wrong) {
    expected = ExpectedRevision::exact(static_cast<uint64_t>(s.last_revision()) + 1);
  } else if (prng_.chance(40)) {
    expected = ExpectedRevision::exact(static_cast<uint64_t>(s.last_revision()));
  }
  note(std::string(tombstone ? "tombstone " : "soft delete ") + name +
       " expected=" + expected.to_string());
  auto status = store_->delete_stream(name, expected, tombstone);
  if (wrong) {
    if (status.has_value() || status.error().code != ErrorCode::kFailedPrecondition) {
      fail("delete_stream with a wrong expected revision: want kFailedPrecondition");
    }
    return;
  }
  if (!status.has_value()) return fail("delete_stream failed: " + describe(status.error()));
  s.delete_epoch++;
  counts_[tombstone ? "tombstones" : "soft_deletes"]++;
  if (tombstone) {
    s.tombstoned = true;
  } else {
    s.soft_deleted = true;
    s.ever_soft_deleted = true;
    s.deleted_before = s.events.size();
  }
  next_position_ = store_->head_position();  // deletion may be stored as a reserved record
}

void Simulation::op_arm_sync_fault() {
  const uint64_t n = prng_.uniform(4);
  note("arm fail_after(" + std::to_string(n) + ", kSync)");
  fs_.fail_after(n, FaultOp::kSync);
  fault_armed_ = true;
  ops_since_failure_ = 0;
}

// --- checks ----------------------------------------------------------------

// Compares one read event with the model, learning a store-generated id or a
// position the model did not know yet.
void Simulation::check_event(const RecordedEvent& got, ModelEvent& want, const std::string& where) {
  const std::string diff = diff_event(got, want);
  if (!diff.empty()) {
    return fail(where + ": event " + want.stream + "@" + std::to_string(want.revision) +
                " differs:" + diff);
  }
  if (!want.id) {
    want.id = got.id;
    by_id_[got.id] = {want.stream, want.revision};
  }
  if (!want.position) {
    auto [it, inserted] =
        by_position_.emplace(got.position, std::make_pair(want.stream, want.revision));
    if (!inserted && it->second != std::make_pair(want.stream, want.revision)) {
      return fail(where + ": position " + std::to_string(got.position) + " is used twice");
    }
    want.position = got.position;
    max_position_ = std::max(max_position_.value_or(0), got.position);
  }
}

void Simulation::check_read_stream(const std::string& name, Direction direction, uint64_t from,
                                   uint32_t max_count) {
  ModelStream& s = streams_[name];
  const bool forward = direction == Direction::kForward;
  const std::string where = "read_stream(" + name + (forward ? ", forward" : ", backward") +
                            ", from " + (from == kEnd ? "end" : std::to_string(from)) + ", max " +
                            std::to_string(max_count) + ")";
  std::vector<ModelEvent*> want;
  for (uint64_t i = 0; i < s.events.size(); i++) {
    const uint64_t r = forward ? i : s.events.size() - 1 - i;
    if (s.visible(r) && (forward ? r >= from : r <= from)) want.push_back(&s.events[r]);
  }
  ReadStreamOptions options;
  options.direction = direction;
  options.from_revision = from;
  options.max_count = max_count;
  std::vector<RecordedEvent> got;
  for (size_t page = 0; page < kPagesMax; page++) {
    auto result = stream_page(name, options);
    if (!result.has_value()) {
      const ErrorCode code = result.error().code;
      const bool expected_error =
          page == 0 && ((s.tombstoned && code == ErrorCode::kStreamDeleted) ||
                        (!s.tombstoned && code == ErrorCode::kNotFound &&
                         (s.events.empty() || s.soft_deleted || !s.any_visible())));
      if (!expected_error) fail(where + " failed: " + describe(result.error()));
      return;
    }
    if (page == 0 && s.tombstoned) return fail(where + " succeeded on a tombstoned stream");
    if (page == 0 && s.soft_deleted) return fail(where + " succeeded on a soft-deleted stream");
    if (page == 0 && s.events.empty() && !s.has_metadata) {
      return fail(where + " succeeded on a missing stream");
    }
    if (result->events.size() > max_count) return fail(where + " returned more than max_count");
    if (page == 0 && result->events.size() != std::min<size_t>(max_count, want.size())) {
      return fail(where + " first page has " + std::to_string(result->events.size()) +
                  " events, want " + std::to_string(std::min<size_t>(max_count, want.size())));
    }
    for (auto& event : result->events) got.push_back(std::move(event));
    if (!result->next_revision) break;
    if (forward ? *result->next_revision <= options.from_revision
                : *result->next_revision >= options.from_revision) {
      return fail(where + ": next_revision does not advance");
    }
    options.from_revision = *result->next_revision;
  }
  if (got.size() != want.size()) {
    return fail(where + " returned " + std::to_string(got.size()) + " events in all, want " +
                std::to_string(want.size()));
  }
  for (size_t i = 0; i < got.size() && ok_; i++) check_event(got[i], *want[i], where);
}

Result<ReadStreamResult> Simulation::stream_page(const std::string& name,
                                                 const ReadStreamOptions& options) {
  if (prng_.chance(75)) return store_->read_stream(name, options);
  ReadStreamResult page;
  VL_TRY(next, store_->visit_stream(name, options, [&page](const EventRef& event) {
    page.events.push_back(event.to_recorded());
    return true;
  }));
  page.next_revision = next;
  return page;
}

Result<ReadAllResult> Simulation::all_page(const ReadAllOptions& options) {
  if (prng_.chance(75)) return store_->read_all(options);
  ReadAllResult page;
  VL_TRY(next, store_->visit_all(options, [&page](const EventRef& event) {
    page.events.push_back(event.to_recorded());
    return true;
  }));
  page.next_position = next;
  return page;
}

void Simulation::check_read_stream_random() {
  const std::string name = pick_stream();
  if (writer_failed_ && uncertain_) {
    for (const auto& part : *uncertain_) {
      if (part.stream == name) return;
    }
  }
  const ModelStream& s = streams_[name];
  const Direction direction = prng_.chance(50) ? Direction::kForward : Direction::kBackward;
  uint64_t from = prng_.chance(50) ? 0 : prng_.uniform(s.events.size() + 3);
  if (direction == Direction::kBackward && prng_.chance(50)) from = kEnd;
  const uint32_t counts[] = {1, 3, 10, 100};
  note("read_stream " + name);
  check_read_stream(name, direction, from, counts[prng_.uniform(4)]);
}

void Simulation::check_read_all(const ReadAllOptions& options) {
  const bool forward = options.direction == Direction::kForward;
  std::ostringstream describe_options;
  std::string types;
  for (const auto& type : options.filter.types) types += (types.empty() ? "" : "|") + type;
  describe_options << "read_all(" << (forward ? "forward" : "backward") << ", from "
                   << options.from_position << ", max " << options.max_count << ", types '" << types
                   << "', category '" << options.filter.category << "', subject '"
                   << options.filter.subject << "', prefix '" << options.filter.stream_prefix
                   << "')";
  const std::string where = describe_options.str();
  std::vector<ModelEvent*> want;
  for (const auto& [position, key] : by_position_) {
    ModelStream& s = streams_[key.first];
    ModelEvent& event = s.events[key.second];
    if (!s.visible(key.second) || !matches(options.filter, event)) continue;
    if (forward ? position >= options.from_position : position <= options.from_position) {
      want.push_back(&event);
    }
  }
  if (!forward) std::reverse(want.begin(), want.end());
  ReadAllOptions page_options = options;
  std::vector<RecordedEvent> got;
  for (size_t page = 0; page < kPagesMax; page++) {
    auto result = all_page(page_options);
    if (!result.has_value()) return fail(where + " failed: " + describe(result.error()));
    if (result->events.size() > options.max_count) {
      return fail(where + " returned more than max_count");
    }
    for (auto& event : result->events) got.push_back(std::move(event));
    if (!result->next_position) break;
    if (forward ? *result->next_position <= page_options.from_position
                : *result->next_position >= page_options.from_position) {
      return fail(where + ": next_position does not advance");
    }
    page_options.from_position = *result->next_position;
  }
  if (got.size() != want.size()) {
    return fail(where + " returned " + std::to_string(got.size()) + " events in all, want " +
                std::to_string(want.size()));
  }
  for (size_t i = 0; i < got.size() && ok_; i++) {
    check_event(got[i], *want[i], where);
    if (i > 0 && (got[i].position > got[i - 1].position) != forward) fail(where + ": out of order");
    if (i > 0 && forward && got[i].recorded_time_unix_ns < got[i - 1].recorded_time_unix_ns) {
      fail(where + ": recorded_time_unix_ns decreases along the log");
    }
  }
}

void Simulation::check_read_all_random() {
  if (writer_failed_) return;  // the write in flight may or may not be visible
  ReadAllOptions options;
  options.direction = prng_.chance(50) ? Direction::kForward : Direction::kBackward;
  const uint64_t span = max_position_.value_or(0) + 3;
  options.from_position = prng_.chance(50) ? 0 : prng_.uniform(span);
  if (options.direction == Direction::kBackward && prng_.chance(50)) options.from_position = kEnd;
  const uint32_t counts[] = {7, 50, 100, 1000};
  options.max_count = counts[prng_.uniform(4)];
  const uint64_t roll = prng_.uniform(10);
  if (roll >= 4) {
    if (prng_.chance(40)) options.filter.types.push_back(kTypes[prng_.uniform(std::size(kTypes))]);
    if (prng_.chance(20)) {
      // A second, different type (a repeated one has its own test below).
      const std::string second = kTypes[prng_.uniform(std::size(kTypes))];
      if (options.filter.types.empty() || options.filter.types[0] != second) {
        options.filter.types.push_back(second);
      }
    }
    if (prng_.chance(30)) options.filter.category = category_of(pick_stream());
    if (prng_.chance(30)) options.filter.subject = prng_.chance(50) ? "alice" : "bob";
    if (prng_.chance(25)) {
      options.filter.stream_prefix = prng_.chance(50) ? "order-1" : pick_stream();
    }
  }
  note("read_all");
  check_read_all(options);
}

void Simulation::check_read_event_random() {
  Uuid id = random_uuid();
  if (!by_id_.empty() && prng_.chance(80)) {
    auto it = by_id_.begin();
    std::advance(it, prng_.uniform(by_id_.size()));
    id = it->first;
  }
  auto known = by_id_.find(id);
  note("read_event " + id.to_string());
  auto result = store_->read_event(id);
  if (known == by_id_.end()) {
    if (result.has_value() || result.error().code != ErrorCode::kNotFound) {
      fail("read_event of an unknown id: want kNotFound");
    }
    return;
  }
  const auto& [name, revision] = known->second;
  ModelStream& s = streams_[name];
  if (writer_failed_) return;
  if (!s.visible(revision)) {
    if (result.has_value() || result.error().code != ErrorCode::kNotFound) {
      fail("read_event of hidden event " + name + "@" + std::to_string(revision) +
           ": want kNotFound");
    }
    return;
  }
  if (!result.has_value()) return fail("read_event failed: " + describe(result.error()));
  check_event(*result, s.events[revision], "read_event");
}

void Simulation::check_stream_info(const std::string& name) {
  if (writer_failed_) return;
  ModelStream& s = streams_[name];
  note("stream_info " + name);
  auto info = store_->stream_info(name);
  if (s.events.empty()) {
    const bool not_found = !info.has_value() && info.error().code == ErrorCode::kNotFound;
    const bool empty = info.has_value() && info->last_revision == kNoRevision;
    if (!(not_found || (s.has_metadata && empty))) {
      fail("stream_info of unwritten " + name + ": want kNotFound");
    }
    return;
  }
  if (!info.has_value()) return fail("stream_info(" + name + ") failed: " + describe(info.error()));
  std::ostringstream out;
  if (info->name != name) out << " name=" << info->name;
  if (info->last_revision != s.last_revision()) {
    out << " last_revision=" << info->last_revision << " want " << s.last_revision();
  }
  if (info->soft_deleted != s.soft_deleted) out << " soft_deleted=" << info->soft_deleted;
  if (info->tombstoned != s.tombstoned) out << " tombstoned=" << info->tombstoned;
  const auto& last = s.events.back().position;
  if (last && info->last_position != *last) {
    out << " last_position=" << info->last_position << " want " << *last;
  }
  if (s.has_metadata && !s.ever_soft_deleted && !(info->metadata == s.metadata)) {
    out << " metadata differs";
  }
  if (!out.str().empty()) fail("stream_info(" + name + "):" + out.str());
}

void Simulation::verify_everything() {
  note("verify everything");
  for (const char* name : kStreams) {
    check_stream_info(name);
    check_read_stream(name, Direction::kForward, 0, 100);
    check_read_stream(name, Direction::kBackward, kEnd, 37);
  }
  ReadAllOptions everything;
  everything.max_count = 1000;
  check_read_all(everything);
  for (const auto& name : probes_) {
    auto info = store_->stream_info(name);
    if (info.has_value()) fail("an append refused with kUnavailable was persisted: " + name);
  }
  for (int i = 0; i < 50 && ok_; i++) check_read_event_random();
  if (store_->head_position() < max_position_.value_or(0) + (max_position_ ? 1 : 0)) {
    fail("head_position below a known position");
  }
}

// The one write that failed with a failed fsync: after the crash it must be
// either wholly present (in every stream it touched) or wholly absent.
void Simulation::reconcile_uncertain() {
  if (!uncertain_) return;
  std::vector<StreamAppend> parts = std::move(*uncertain_);
  uncertain_.reset();
  std::vector<bool> landed;
  std::string text;
  for (const auto& part : parts) {
    auto info = store_->stream_info(part.stream);
    int64_t actual = kNoRevision;
    if (info.has_value()) {
      actual = info->last_revision;
    } else if (info.error().code != ErrorCode::kNotFound) {
      return fail("stream_info after crash: " + describe(info.error()));
    }
    const int64_t model_last = streams_[part.stream].last_revision();
    const int64_t count = static_cast<int64_t>(part.events.size());
    text += " " + part.stream + ": last_revision " + std::to_string(actual) + " (model " +
            std::to_string(model_last) + ", +" + std::to_string(count) + ")";
    if (actual != model_last && actual != model_last + count) {
      return fail("an append whose fsync failed is partly present:" + text);
    }
    landed.push_back(actual == model_last + count);
  }
  const bool all = std::all_of(landed.begin(), landed.end(), [](bool b) { return b; });
  const bool none = std::none_of(landed.begin(), landed.end(), [](bool b) { return b; });
  if (!all && !none) {
    return fail("a multi-stream append whose fsync failed is present in some streams only:" + text);
  }
  note("uncertain append " + std::string(landed[0] ? "survived" : "was lost") + ":" + text);
  counts_[landed[0] ? "failed_sync_write_survived" : "failed_sync_write_lost"]++;
  if (!landed[0]) return;
  for (auto& part : parts) {
    const std::string name = part.stream;
    record_append(name, std::move(part.events), std::nullopt);
    check_read_stream(name, Direction::kForward, 0, 100);  // learns the positions
  }
}

void Simulation::crash_and_reopen() {
  const bool tear = prng_.chance(75);
  note(std::string("crash (tear=") + (tear ? "yes" : "no") + ") and reopen");
  counts_["crashes"]++;
  store_.reset();  // before the crash, so the store's threads have stopped
  fs_.clear_faults();
  fs_.crash(tear);
  fault_armed_ = false;
  writer_failed_ = false;
  ops_since_failure_ = 0;
  if (!open_store()) return;
  reconcile_uncertain();
  if (ok_) verify_everything();
  probes_.clear();
}

std::vector<uint64_t> seeds_to_run() {
  if (const char* seed = std::getenv("VL_SEED"); seed != nullptr && *seed != '\0') {
    return {std::strtoull(seed, nullptr, 10)};
  }
  std::vector<uint64_t> seeds;
  for (uint64_t seed = 1; seed <= env_u64("VL_SEEDS", kDefaultSeeds); seed++) seeds.push_back(seed);
  return seeds;
}

class ModelTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ModelTest, RandomOperationsMatchTheModel) {
  const uint64_t seed = GetParam();
  SCOPED_TRACE("seed=" + std::to_string(seed) + " (replay: VL_SEED=" + std::to_string(seed) + ")");
  Simulation simulation(seed);
  simulation.run(env_u64("VL_STEPS", kDefaultSteps));
}

// A filter listing the same type twice still selects each event once.
TEST(ModelTestDirect, RepeatedFilterTypeReturnsEachEventOnce) {
  FaultyFileSystem fs(1);
  StoreOptions options;
  options.file_system = &fs;
  options.index_in_memory = true;
  auto store = Store::open(kDir, options);
  ASSERT_TRUE(store.has_value()) << store.error().message;
  std::vector<EventData> events(3);
  for (auto& e : events) e.type = "Created";
  ASSERT_TRUE((*store)->append("order-1", ExpectedRevision::any(), events).has_value());
  ReadAllOptions read;
  read.filter.types = {"Created", "Created"};
  auto result = (*store)->read_all(read);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->events.size(), 3u);
}

INSTANTIATE_TEST_SUITE_P(Seeds, ModelTest, ::testing::ValuesIn(seeds_to_run()),
                         [](const auto& param_info) {
                           return "seed" + std::to_string(param_info.param);
                         });

}  // namespace
}  // namespace vellum
