// SPDX-License-Identifier: Apache-2.0
// StoreImpl: the engine behind vellum::Store.
//
// The path of an append (ARCHITECTURE.md, "Bird's eye view"):
//   caller thread   validate, encode events, enqueue, wait
//   writer thread   take every queued append; check expectations and ids
//                   against the StreamTable; build commit records; write
//                   them with one pwrite; hand the group on, never waiting
//                   for the disk
//   syncer thread   take every written group; one fdatasync covering all of
//                   them (group commit); hand them on. Runs fsyncs back to back.
//   indexer thread  write the groups' index entries to RocksDB; publish the
//                   new visible head, wake subscribers, and only then
//                   acknowledge the appends (overlapping the next fsync).
// Readers see only indexed events: everything they see is durable (per the
// durability mode) and complete, and positions appear without gaps.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "vellum/store.h"

#include "base/clock.h"
#include "base/uuid_v7.h"
#include "index/event_ids.h"
#include "index/index.h"
#include "io/file_system.h"
#include "log/log.h"
#include "store/stage_queue.h"
#include "store/stream_table.h"

namespace vellum::store {

// Hash of a Uuid for unordered containers (ids are random or time+random).
struct UuidHash {
  size_t operator()(const Uuid& id) const {
    uint64_t a = 0, b = 0;
    for (int i = 0; i < 8; i++) a = (a << 8) | id.bytes[static_cast<size_t>(i)];
    for (int i = 8; i < 16; i++) b = (b << 8) | id.bytes[static_cast<size_t>(i)];
    return static_cast<size_t>(a ^ (b * 0x9e3779b97f4a7c15ull));
  }
};

// One stream's part of an append request, encoded in the caller's thread.
struct EncodedPart {
  std::string stream;
  ExpectedRevision expected = ExpectedRevision::any();
  std::string encoded;                  // events, revisions patched by the writer
  std::vector<uint32_t> event_offsets;  // start of each event in `encoded`
  std::vector<Uuid> ids;                // nil where the writer assigns a positional id
  std::vector<uint64_t> fingerprints;   // of (stream, type, data, metadata); client ids only
  bool client_ids = false;              // some ids were chosen by the client
  // A `$metadata` write by the store itself (stream "$$x"); the writer
  // encodes its event from x's state at commit time.
  enum class SystemOp : uint8_t { kNone, kSetMetadata, kSoftDelete, kTombstone };
  SystemOp system = SystemOp::kNone;
  StreamMetadata metadata;  // kSetMetadata
};

// An append waiting for the writer, and then for its acknowledgement.
struct AppendRequest {
  std::vector<EncodedPart> parts;
  int64_t enqueued_ns = 0;
  // Filled by the writer/indexer; `done` is set last, under `mutex`.
  Result<std::vector<AppendResult>> result = std::vector<AppendResult>();
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  // Set for append_async: called by complete() instead of waking wait().
  Store::AppendCallback on_done;

  void complete(Result<std::vector<AppendResult>> outcome);
  Result<std::vector<AppendResult>> wait();
};

// A commit group handed from the writer to the indexer.
struct CommitGroup {
  struct Record {
    log::RecordLocation location;
    std::string payload;
    std::vector<uint64_t> stream_ids;
  };
  std::vector<Record> records;
  std::vector<std::shared_ptr<AppendRequest>> requests;  // acked after indexing
  index::IndexBatch batch;                               // stream states (filled by writer)
  std::vector<std::pair<std::string, index::StreamState>> touched;  // new states
  index::Checkpoint checkpoint;                                     // after this group
  uint64_t events = 0;
};

// What the writer remembers of a recently written, client-chosen event id.
struct RecentId {
  uint64_t position = 0;
  uint64_t revision = 0;
  uint64_t fingerprint = 0;
};

class StoreImpl final : public Store {
 public:
  StoreImpl(std::string path, const StoreOptions& options);
  ~StoreImpl() override;

  Status open(const std::function<void(uint64_t, uint64_t)>& progress = {});

  Result<AppendResult> append(std::string_view stream, ExpectedRevision expected,
                              std::span<const EventData> events) override;
  Result<std::vector<AppendResult>> append_multi(std::span<const StreamAppend> appends) override;
  void append_async(std::span<const StreamAppend> appends, AppendCallback done) override;
  Result<ReadStreamResult> read_stream(std::string_view stream,
                                       const ReadStreamOptions& options) override;
  Result<ReadAllResult> read_all(const ReadAllOptions& options) override;
  Result<std::optional<uint64_t>> visit_stream(std::string_view stream,
                                               const ReadStreamOptions& options,
                                               const EventVisitor& visitor) override;
  Result<std::optional<uint64_t>> visit_all(const ReadAllOptions& options,
                                            const EventVisitor& visitor) override;
  Result<RecordedEvent> read_event(const Uuid& id) override;
  Result<uint64_t> position_at(int64_t time_unix_ns) override;
  Result<StreamInfo> stream_info(std::string_view stream) override;
  Status set_stream_metadata(std::string_view stream, const StreamMetadata& metadata) override;
  Status delete_stream(std::string_view stream, ExpectedRevision expected, bool tombstone) override;
  Result<std::unique_ptr<Subscription>> subscribe(const SubscriptionOptions& options) override;
  uint64_t head_position() override { return indexed_position_.load(); }
  StoreStats stats() override;

  // ---- Used by subscriptions ----
  // Waits until the visible head passes `position`, `deadline_ns` (monotonic)
  // passes, or `cancelled` is set. Returns the head.
  uint64_t wait_for_head_past(uint64_t position, int64_t deadline_ns,
                              const std::atomic<bool>& cancelled);
  void wake_waiters();
  bool closing() const { return closing_.load(); }
  Clock& clock() { return *clock_; }

  // Events of the log from `from` (internal: also reports how far it got).
  struct ScanResult {
    std::vector<RecordedEvent> events;
    uint64_t end_position = 0;  // the first position not examined (forward)
    bool reached_end = false;
  };
  Result<ScanResult> scan_all(const ReadAllOptions& options);

 private:
  friend class StoreReindexer;

  // open
  Status open_index();
  Status catch_up_index(const std::function<void(uint64_t, uint64_t)>& progress);
  Status replay_log(log::RecordLocation from, uint64_t events_total,
                    const std::function<void(uint64_t, uint64_t)>& progress);
  Status load_restricted_streams();

  // append path (writer.cc)
  Result<std::vector<AppendResult>> submit(std::vector<EncodedPart> parts);
  Result<std::vector<EncodedPart>> encode_appends(std::span<const StreamAppend> appends);
  void writer_loop();
  void syncer_loop();
  void indexer_loop();
  void process_request(const std::shared_ptr<AppendRequest>& request, CommitGroup& group);
  Result<std::vector<AppendResult>> check_and_build(AppendRequest& request, CommitGroup& group);
  Status build_commit(AppendRequest& request, const std::vector<bool>& replayed,
                      std::vector<AppendResult>& results, CommitGroup& group);
  Status index_group(CommitGroup& group);
  void update_restricted(const std::vector<std::pair<std::string, index::StreamState>>& touched);
  Result<std::optional<AppendResult>> idempotent_replay(const EncodedPart& part);
  Result<std::optional<RecentId>> find_written_id(const Uuid& id);
  Status check_expected(const EncodedPart& part, const index::StreamState& state);
  Status encode_system_part(EncodedPart& part, const index::StreamState& target);
  Status submit_system(std::string_view stream, EncodedPart::SystemOp op, ExpectedRevision expected,
                       StreamMetadata metadata);
  Status write_group(CommitGroup& group);
  void fail_group(CommitGroup& group, const Error& error);
  Uuid generate_id(int64_t recorded_unix_ns, uint64_t position);
  void remember_ids(const EncodedPart& part, uint64_t first_position, uint64_t first_revision);
  void publish(CommitGroup& group);
  Status sync_for(const std::vector<CommitGroup>& groups);
  void commit_group(CommitGroup& group, const Status& synced);

  // reads (reader.cc). Emit receives each visible event; false stops the read.
  using Emit = std::function<bool(const log::EventView&, uint64_t position, int64_t recorded)>;
  Result<std::optional<uint64_t>> stream_pass(std::string_view stream,
                                              const ReadStreamOptions& options, const Emit& emit);
  Result<ScanResult> scan_pass(const ReadAllOptions& options, const Emit& emit);
  Result<std::optional<index::StreamState>> visible_state(std::string_view stream);
  bool event_visible(std::string_view stream, uint64_t revision, int64_t recorded_unix_ns);
  Result<uint64_t> resolve_as_of(std::optional<uint64_t> position, std::optional<int64_t> time);
  Result<std::optional<RecordedEvent>> event_at(uint64_t position);

  const std::string path_;
  const StoreOptions options_;
  io::FileSystem* fs_;
  Clock* clock_;
  std::unique_ptr<io::File> lock_;
  std::unique_ptr<log::Log> log_;
  std::unique_ptr<index::Index> index_;
  std::unique_ptr<StreamTable> streams_;  // writer thread only (after open)
  UuidV7Generator uuids_;

  // Writer queue.
  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;        // writer waits for work
  std::condition_variable queue_space_cv_;  // callers wait for space
  std::deque<std::shared_ptr<AppendRequest>> queue_;
  bool stopping_ = false;  // under queue_mutex_

  // Writer -> syncer -> indexer. Each stage takes everything queued at once.
  static constexpr size_t kStageQueueGroupsMax = 64;
  StageQueue<CommitGroup> sync_queue_{kStageQueueGroupsMax};
  // A synced group and the outcome of its fsync.
  struct SyncedGroup {
    CommitGroup group;
    Status synced = ok_status();
  };
  StageQueue<SyncedGroup> index_queue_{kStageQueueGroupsMax};

  // Writer-owned state.
  int64_t last_recorded_unix_ns_ = 0;
  // Syncer-owned state.
  int64_t last_sync_ns_ = 0;
  bool unsynced_ = false;
  log::RecordLocation synced_through_;
  std::unordered_map<Uuid, RecentId, UuidHash> recent_ids_;
  std::deque<std::pair<Uuid, uint64_t>> recent_order_;  // (id, position), oldest first
  index::Checkpoint writer_checkpoint_;

  // Published state.
  std::atomic<uint64_t> indexed_position_{0};
  std::mutex head_mutex_;
  std::condition_variable head_cv_;
  std::atomic<bool> closing_{false};
  std::atomic<bool> index_failed_{false};
  bool index_rebuilt_ = false;  // set during open only
  std::shared_mutex restricted_mutex_;
  std::unordered_map<std::string, index::StreamState> restricted_;
  std::atomic<bool> any_restricted_{false};

  // Counters.
  std::atomic<uint64_t> stat_appends_{0}, stat_events_{0}, stat_fsyncs_{0}, stat_groups_{0};
  std::array<std::atomic<uint64_t>, StoreStats::kGroupSizeBuckets> stat_group_sizes_{};
  // Next position after everything the writer has written (durable or not).
  std::atomic<uint64_t> written_position_{0};

  std::thread writer_;
  std::thread syncer_;
  std::thread indexer_;
};

EventRef to_event_ref(const log::EventView& event, uint64_t position, int64_t recorded);

// Validation of caller input (validate.cc).
Status validate_stream_name(std::string_view stream, bool allow_reserved);
Status validate_event(const EventData& event);
uint64_t event_fingerprint(std::string_view stream, const EventData& event);
uint64_t event_fingerprint(const log::EventView& event);

}  // namespace vellum::store
