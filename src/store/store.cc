// SPDX-License-Identifier: Apache-2.0
// Opening and closing the store: the lock, log recovery, bringing the index up
// to date with the log, and the writer and indexer threads.
#include <cstdio>

#include "base/assert.h"
#include "base/limits.h"
#include "store/store_impl.h"

namespace vellum {

std::string ExpectedRevision::to_string() const {
  switch (kind_) {
    case Kind::kAny:
      return "any";
    case Kind::kNoStream:
      return "no_stream";
    case Kind::kStreamExists:
      return "stream_exists";
    case Kind::kExact:
      return std::to_string(revision_);
  }
  return "?";
}

Result<std::unique_ptr<Store>> Store::open(const std::string& path, const StoreOptions& options) {
  auto store = std::make_unique<store::StoreImpl>(path, options);
  VL_RETURN_IF_ERROR(store->open());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace vellum

namespace vellum::store {
namespace {

constexpr uint64_t kReplayRecordsPerBatch = 4096;

std::string log_dir(const std::string& path) { return path + "/log"; }
std::string index_dir(const std::string& path) { return path + "/index"; }

}  // namespace

StoreImpl::StoreImpl(std::string path, const StoreOptions& options)
    : path_(std::move(path)),
      options_(options),
      fs_(options.file_system ? options.file_system : io::default_file_system()),
      clock_(options.clock ? options.clock : system_clock()),
      uuids_(static_cast<uint64_t>(clock_->monotonic_ns()) ^ reinterpret_cast<uintptr_t>(this)) {}

StoreImpl::~StoreImpl() {
  closing_.store(true);
  wake_waiters();
  if (writer_.joinable()) {
    {
      std::lock_guard lock(queue_mutex_);
      stopping_ = true;
    }
    queue_cv_.notify_all();
    queue_space_cv_.notify_all();
    writer_.join();
  }
  if (syncer_.joinable()) syncer_.join();
  if (indexer_.joinable()) indexer_.join();
  if (log_ && !log_->failed() && options_.durability != Durability::kNone) {
    (void)log_->sync();  // kBatch: make the last acknowledged appends durable
  }
  if (index_ && !index_failed_.load()) {
    (void)index_->flush();  // so the next open replays nothing
  }
}

Status StoreImpl::open(const std::function<void(uint64_t, uint64_t)>& progress) {
  VL_TRY(exists, fs_->exists(path_));
  if (!exists) {
    if (!options_.create_if_missing) {
      return make_error(ErrorCode::kNotFound, "no store at " + path_);
    }
    VL_RETURN_IF_ERROR(fs_->create_dirs(path_));
  }
  VL_TRY(lock, fs_->lock(path_ + "/LOCK"));
  lock_ = std::move(lock);
  log::LogOptions log_options{options_.segment_size_bytes, true, options_.preallocate_bytes};
  VL_TRY(log, log::Log::open(*fs_, log_dir(path_), log_options, *clock_));
  log_ = std::move(log);
  VL_RETURN_IF_ERROR(open_index());
  VL_RETURN_IF_ERROR(catch_up_index(progress));
  VL_RETURN_IF_ERROR(load_restricted_streams());
  const auto& tail = log_->recovered_tail();
  last_recorded_unix_ns_ = tail.last_recorded_unix_ns;
  writer_checkpoint_ = index::Checkpoint{tail.next_position, tail.end, tail.last_hash,
                                         streams_->next_stream_id(), tail.last_recorded_unix_ns};
  indexed_position_.store(tail.next_position);
  writer_ = std::thread([this] { writer_loop(); });
  syncer_ = std::thread([this] { syncer_loop(); });
  indexer_ = std::thread([this] { indexer_loop(); });
  return ok_status();
}

Status StoreImpl::open_index() {
  // RocksDB writes through its own Env, not our FileSystem: with a test file
  // system, the index lives in memory and is rebuilt from the log on open.
  bool in_memory = options_.index_in_memory || fs_ != io::default_file_system();
  index::IndexOptions index_options{in_memory, options_.index_cache_bytes};
  VL_TRY(index, index::Index::open(index_dir(path_), index_options));
  index_ = std::move(index);
  return ok_status();
}

// Brings the index to the end of the recovered log. An index that is ahead of
// the log (possible after a power loss in the kBatch or kNone modes) or that
// disagrees with the log's hash chain is rebuilt from scratch.
Status StoreImpl::catch_up_index(const std::function<void(uint64_t, uint64_t)>& progress) {
  const log::LogTail& tail = log_->recovered_tail();
  for (int attempt = 0; attempt < 2; attempt++) {
    index::Checkpoint checkpoint = index_->checkpoint_at_open();
    bool stale = checkpoint.next_position > tail.next_position ||
                 (checkpoint.next_position == tail.next_position &&
                  checkpoint.last_hash != tail.last_hash) ||
                 checkpoint.end > tail.end;
    if (stale) {
      index_rebuilt_ = true;
      index_.reset();
      VL_RETURN_IF_ERROR(index::Index::destroy(index_dir(path_)));
      VL_RETURN_IF_ERROR(open_index());
      continue;
    }
    streams_ = std::make_unique<StreamTable>(*index_, checkpoint.next_stream_id,
                                             limits::kStreamCacheEntriesMax);
    log::RecordLocation from = checkpoint.next_position == 0 ? log_->begin() : checkpoint.end;
    auto replayed = replay_log(from, tail.next_position, progress);
    if (replayed) return ok_status();
    if (replayed.error().code != ErrorCode::kAborted) return replayed;
    // kAborted: the checkpoint does not chain onto the log; rebuild once.
    index_.reset();
    VL_RETURN_IF_ERROR(index::Index::destroy(index_dir(path_)));
    VL_RETURN_IF_ERROR(open_index());
  }
  return make_error(ErrorCode::kInternal, "could not bring the index up to date with the log");
}

Status StoreImpl::replay_log(log::RecordLocation from, uint64_t events_total,
                             const std::function<void(uint64_t, uint64_t)>& progress) {
  index::Checkpoint checkpoint = index_->checkpoint_at_open();
  index::IndexBatch batch;
  auto write_batch = [&]() -> Status {
    for (auto& [name, state] : streams_->drain_touched()) batch.put_stream(name, state);
    checkpoint.next_stream_id = streams_->next_stream_id();
    VL_RETURN_IF_ERROR(index_->write(batch, checkpoint));
    batch = index::IndexBatch();
    if (progress) progress(checkpoint.next_position, events_total);
    return ok_status();
  };
  auto visit = [&](log::RecordLocation location, std::string_view payload) -> Status {
    VL_TRY(commit, log::decode_commit(payload, "replay"));
    if (commit.header.first_position != checkpoint.next_position ||
        commit.header.prev_hash != checkpoint.last_hash) {
      return make_error(ErrorCode::kAborted, "index checkpoint does not chain onto the log");
    }
    VL_TRY(stream_ids, streams_->apply(commit));
    batch.add_commit(commit, location, stream_ids, log_->store_tag());
    checkpoint.next_position += commit.header.event_count;
    checkpoint.end = log::RecordLocation{location.segment_index,
                                         location.offset + log::frame_size(payload.size())};
    checkpoint.last_hash = log::chain_hash(payload);
    checkpoint.last_recorded_unix_ns = commit.header.recorded_time_unix_ns;
    if (batch.commits() >= kReplayRecordsPerBatch) return write_batch();
    return ok_status();
  };
  VL_RETURN_IF_ERROR(log_->scan(from, log_->recovered_tail().end, visit));
  if (!batch.empty()) VL_RETURN_IF_ERROR(write_batch());
  VL_ASSERT(checkpoint.next_position == log_->recovered_tail().next_position);
  return ok_status();
}

Status StoreImpl::load_restricted_streams() {
  VL_TRY(streams, index_->restricted_streams());
  std::unique_lock lock(restricted_mutex_);
  for (auto& [name, state] : streams) restricted_[name] = std::move(state);
  any_restricted_.store(!restricted_.empty());
  return ok_status();
}

StoreStats StoreImpl::stats() {
  StoreStats stats;
  stats.appends = stat_appends_.load();
  stats.events_written = stat_events_.load();
  stats.bytes_written = log_->bytes_written();
  stats.fsyncs = stat_fsyncs_.load();
  stats.commit_groups = stat_groups_.load();
  stats.indexed_position = indexed_position_.load();
  stats.head_position = std::max(written_position_.load(), stats.indexed_position);
  for (size_t i = 0; i < stats.commit_group_events_buckets.size(); i++) {
    stats.commit_group_events_buckets[i] = stat_group_sizes_[i].load();
  }
  stats.log_size_bytes = log_->size_bytes();
  stats.segments = log_->segment_count();
  stats.index_rebuilt_on_open = index_rebuilt_;
  stats.torn_bytes_cut_on_open = log_->recovered_tail().truncated_bytes;
  return stats;
}

Result<StreamInfo> StoreImpl::stream_info(std::string_view stream) {
  VL_RETURN_IF_ERROR(validate_stream_name(stream, true));
  VL_TRY(state, index_->get_stream(stream));
  if (!state)
    return make_error(ErrorCode::kNotFound, "stream " + std::string(stream) + " not found");
  StreamInfo info;
  info.name = stream;
  info.last_revision = state->last_revision;
  info.last_position = state->last_position;
  info.soft_deleted = state->soft_deleted;
  info.tombstoned = state->tombstoned;
  info.metadata = state->metadata;
  return info;
}

void StoreImpl::wake_waiters() {
  { std::lock_guard lock(head_mutex_); }
  head_cv_.notify_all();
}

uint64_t StoreImpl::wait_for_head_past(uint64_t position, int64_t deadline_ns,
                                       const std::atomic<bool>& cancelled) {
  std::unique_lock lock(head_mutex_);
  for (;;) {
    uint64_t head = indexed_position_.load();
    if (head > position || cancelled.load() || closing_.load()) return head;
    int64_t now = clock_->monotonic_ns();
    if (now >= deadline_ns) return head;
    head_cv_.wait_for(lock, std::chrono::nanoseconds(deadline_ns - now));
  }
}

}  // namespace vellum::store

namespace vellum {

Status Store::reindex(const std::string& path, const StoreOptions& options,
                      const std::function<void(uint64_t, uint64_t)>& progress) {
  StoreOptions reindex_options = options;
  reindex_options.create_if_missing = false;
  io::FileSystem* fs = options.file_system ? options.file_system : io::default_file_system();
  VL_TRY(exists, fs->exists(path + "/log"));
  if (!exists) return make_error(ErrorCode::kNotFound, "no store at " + path);
  {
    VL_TRY(lock, fs->lock(path + "/LOCK"));
    VL_RETURN_IF_ERROR(index::Index::destroy(path + "/index"));
  }
  store::StoreImpl store(path, reindex_options);
  return store.open(progress);
}

}  // namespace vellum
