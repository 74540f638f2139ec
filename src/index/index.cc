// SPDX-License-Identifier: Apache-2.0
// RocksDB-backed index. Key layout (docs/formats/index.md): a one-byte key
// space tag, then big-endian numbers so that byte order is numeric order.
#include "index/index.h"

#include <cstring>

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "base/assert.h"
#include "base/coding.h"
#include "index/event_ids.h"

namespace vellum::index {
namespace {

constexpr char kStreamTag = 'S';
constexpr char kRestrictedTag = 'X';
constexpr char kChunkTag = 'R';
constexpr char kRecordTag = 'P';
constexpr char kTimeTag = 'M';
constexpr char kEventTag = 'E';
constexpr std::string_view kCheckpointKey = "#checkpoint";
constexpr uint8_t kCheckpointFormat = 1;

std::string stream_key(char tag, std::string_view name) {
  std::string key(1, tag);
  key.append(name);
  return key;
}

std::string chunk_key(uint64_t stream_id, uint64_t revision) {
  std::string key(1, kChunkTag);
  put_u64_be(key, stream_id);
  put_u64_be(key, revision);
  return key;
}

std::string record_key(uint64_t position) {
  std::string key(1, kRecordTag);
  put_u64_be(key, position);
  return key;
}

std::string run_prefix(RunKind kind, std::string_view value) {
  std::string key(1, static_cast<char>(kind));
  key.append(value);
  key.push_back('\0');  // names never contain NUL, so prefixes never overlap
  return key;
}

std::string run_key(RunKind kind, std::string_view value, uint64_t position) {
  std::string key = run_prefix(kind, value);
  put_u64_be(key, position);
  return key;
}

std::string event_key(const Uuid& id) {
  std::string key(1, kEventTag);
  key.append(reinterpret_cast<const char*>(id.bytes.data()), 16);
  return key;
}

std::string time_key(int64_t time_unix_ns, uint64_t position) {
  std::string key(1, kTimeTag);
  // Flip the sign bit so negative times sort before positive ones.
  put_u64_be(key, static_cast<uint64_t>(time_unix_ns) ^ (uint64_t{1} << 63));
  put_u64_be(key, position);
  return key;
}

std::string_view to_view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

tl::unexpected<Error> rocks_error(const rocksdb::Status& status, const char* what) {
  return make_error(ErrorCode::kIoError, std::string("index ") + what + ": " + status.ToString());
}

std::string encode_location(log::RecordLocation location) {
  std::string out;
  put_u64_le(out, location.segment_index);
  put_u64_le(out, location.offset);
  return out;
}

// A run being extended while walking the events of one commit.
struct OpenRun {
  std::string value;
  uint64_t first_position = 0;
  uint32_t count = 0;
};

void flush_run(rocksdb::WriteBatch& batch, RunKind kind, OpenRun& run) {
  if (run.count == 0) return;
  std::string value;
  put_u32_le(value, run.count);
  auto status = batch.Put(run_key(kind, run.value, run.first_position), value);
  VL_ASSERT(status.ok());
  run.count = 0;
}

void extend_run(rocksdb::WriteBatch& batch, RunKind kind, OpenRun& run, std::string_view value,
                uint64_t position) {
  if (run.count > 0 && run.value == value && run.first_position + run.count == position) {
    run.count++;
    return;
  }
  flush_run(batch, kind, run);
  run.value = value;
  run.first_position = position;
  run.count = 1;
}

void put_chunk(rocksdb::WriteBatch& batch, uint64_t stream_id, const StreamChunk& chunk) {
  std::string value;
  put_u64_le(value, chunk.first_position);
  put_u32_le(value, chunk.count);
  value.append(encode_location(chunk.location));
  put_u32_le(value, chunk.first_event_index);
  auto status = batch.Put(chunk_key(stream_id, chunk.first_revision), value);
  VL_ASSERT(status.ok());
}

}  // namespace

IndexBatch::IndexBatch() : batch_(std::make_unique<rocksdb::WriteBatch>()) {}
IndexBatch::~IndexBatch() = default;
IndexBatch::IndexBatch(IndexBatch&&) noexcept = default;
IndexBatch& IndexBatch::operator=(IndexBatch&&) noexcept = default;

void IndexBatch::add_commit(const log::CommitView& commit, log::RecordLocation location,
                            const std::vector<uint64_t>& stream_ids, uint32_t store_tag) {
  VL_ASSERT(stream_ids.size() == commit.events.size());
  const auto& header = commit.header;
  std::string record_value;
  put_u32_le(record_value, header.event_count);
  record_value.append(encode_location(location));
  put_u64_le(record_value, static_cast<uint64_t>(header.recorded_time_unix_ns));
  VL_ASSERT(batch_->Put(record_key(header.first_position), record_value).ok());
  VL_ASSERT(batch_->Put(time_key(header.recorded_time_unix_ns, header.first_position), "").ok());
  OpenRun type_run, category_run, subject_run;
  StreamChunk chunk;
  uint64_t chunk_stream = 0;
  for (uint32_t i = 0; i < commit.events.size(); i++) {
    const log::EventView& event = commit.events[i];
    uint64_t position = header.first_position + i;
    if (positional_id_position(store_tag, event.id) != position) {
      std::string position_value;
      put_u64_le(position_value, position);
      VL_ASSERT(batch_->Put(event_key(event.id), position_value).ok());
    }
    if (chunk.count > 0 && chunk_stream == stream_ids[i] &&
        chunk.first_revision + chunk.count == event.revision) {
      chunk.count++;
    } else {
      if (chunk.count > 0) put_chunk(*batch_, chunk_stream, chunk);
      chunk = StreamChunk{event.revision, position, 1, location, i};
      chunk_stream = stream_ids[i];
    }
    if (event.stream.starts_with('$')) continue;  // system events: not in read_all indexes
    extend_run(*batch_, RunKind::kType, type_run, event.type, position);
    extend_run(*batch_, RunKind::kCategory, category_run, category_of(event.stream), position);
    if (!event.subject.empty()) {
      extend_run(*batch_, RunKind::kSubject, subject_run, event.subject, position);
    }
  }
  put_chunk(*batch_, chunk_stream, chunk);
  flush_run(*batch_, RunKind::kType, type_run);
  flush_run(*batch_, RunKind::kCategory, category_run);
  flush_run(*batch_, RunKind::kSubject, subject_run);
  commits_++;
}

void IndexBatch::put_stream(std::string_view name, const StreamState& state) {
  VL_ASSERT(batch_->Put(stream_key(kStreamTag, name), encode_stream_state(state)).ok());
  if (state.restricts_reads()) {
    VL_ASSERT(batch_->Put(stream_key(kRestrictedTag, name), "").ok());
  } else {
    VL_ASSERT(batch_->Delete(stream_key(kRestrictedTag, name)).ok());
  }
}

Result<std::unique_ptr<Index>> Index::open(const std::string& dir, const IndexOptions& options) {
  std::unique_ptr<Index> index(new Index());
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.max_open_files = 512;
  db_options.write_buffer_size = 64u << 20;
  db_options.max_background_jobs = 2;
  db_options.compression = rocksdb::kNoCompression;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.block_cache = rocksdb::NewLRUCache(options.cache_bytes);
  db_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  if (options.in_memory) {
    index->mem_env_.reset(rocksdb::NewMemEnv(rocksdb::Env::Default()));
    db_options.env = index->mem_env_.get();
  }
  rocksdb::DB* db = nullptr;
  auto status = rocksdb::DB::Open(db_options, dir, &db);
  if (!status.ok()) return rocks_error(status, "open");
  index->db_.reset(db);
  VL_TRY(checkpoint, index->read_checkpoint());
  index->checkpoint_at_open_ = checkpoint;
  return index;
}

Status Index::destroy(const std::string& dir) {
  auto status = rocksdb::DestroyDB(dir, rocksdb::Options());
  if (!status.ok()) return rocks_error(status, "destroy");
  return ok_status();
}

Index::~Index() {
  if (db_) {
    auto status = db_->Close();
    (void)status;  // best effort: the log is the truth, the index is rebuilt
  }
}

Result<Checkpoint> Index::read_checkpoint() {
  std::string value;
  auto status = db_->Get(rocksdb::ReadOptions(), kCheckpointKey, &value);
  Checkpoint checkpoint;
  if (status.IsNotFound()) return checkpoint;
  if (!status.ok()) return rocks_error(status, "read checkpoint");
  ByteReader reader(value);
  uint8_t format = 0;
  uint64_t recorded = 0;
  std::string_view hash;
  if (!reader.u8(format) || format != kCheckpointFormat || !reader.u64(checkpoint.next_position) ||
      !reader.u64(checkpoint.end.segment_index) || !reader.u64(checkpoint.end.offset) ||
      !reader.bytes(32, hash) || !reader.u64(checkpoint.next_stream_id) || !reader.u64(recorded)) {
    return make_error(ErrorCode::kDataLoss, "malformed index checkpoint");
  }
  std::memcpy(checkpoint.last_hash.data(), hash.data(), 32);
  checkpoint.last_recorded_unix_ns = static_cast<int64_t>(recorded);
  return checkpoint;
}

Status Index::write(IndexBatch& batch, const Checkpoint& checkpoint) {
  std::string value;
  value.push_back(static_cast<char>(kCheckpointFormat));
  put_u64_le(value, checkpoint.next_position);
  put_u64_le(value, checkpoint.end.segment_index);
  put_u64_le(value, checkpoint.end.offset);
  value.append(reinterpret_cast<const char*>(checkpoint.last_hash.data()), 32);
  put_u64_le(value, checkpoint.next_stream_id);
  put_u64_le(value, static_cast<uint64_t>(checkpoint.last_recorded_unix_ns));
  VL_ASSERT(batch.batch().Put(kCheckpointKey, value).ok());
  rocksdb::WriteOptions options;
  options.disableWAL = true;  // the log is the WAL: the index is replayed from it
  auto status = db_->Write(options, &batch.batch());
  if (!status.ok()) return rocks_error(status, "write");
  return ok_status();
}

Status Index::flush() {
  auto status = db_->Flush(rocksdb::FlushOptions());
  if (!status.ok()) return rocks_error(status, "flush");
  return ok_status();
}

Result<std::optional<StreamState>> Index::get_stream(std::string_view name) {
  std::string value;
  auto status = db_->Get(rocksdb::ReadOptions(), stream_key(kStreamTag, name), &value);
  if (status.IsNotFound()) return std::optional<StreamState>();
  if (!status.ok()) return rocks_error(status, "get stream");
  VL_TRY(state, decode_stream_state(value));
  return std::optional<StreamState>(std::move(state));
}

Result<std::vector<std::pair<std::string, StreamState>>> Index::restricted_streams() {
  std::vector<std::pair<std::string, StreamState>> result;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  std::string prefix(1, kRestrictedTag);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::string name(to_view(it->key()).substr(1));
    VL_TRY(state, get_stream(name));
    if (state) result.emplace_back(std::move(name), std::move(*state));
  }
  if (!it->status().ok()) return rocks_error(it->status(), "scan");
  return result;
}

namespace {

// Positions an iterator on the entry at or before `key` (within `prefix`),
// so that a run or chunk that starts before `key` but covers it is found.
void seek_covering(rocksdb::Iterator& it, const std::string& key, std::string_view prefix) {
  it.SeekForPrev(key);
  if (!it.Valid() || !it.key().starts_with(rocksdb::Slice(prefix.data(), prefix.size()))) {
    it.Seek(key);
  }
}

void step(rocksdb::Iterator& it, Direction direction) {
  if (direction == Direction::kForward) {
    it.Next();
  } else {
    it.Prev();
  }
}

StreamChunk decode_chunk(const rocksdb::Slice& key, const rocksdb::Slice& value) {
  VL_ASSERT(key.size() == 17);
  VL_ASSERT(value.size() == 8 + 4 + 16 + 4);
  StreamChunk chunk;
  chunk.first_revision = load_u64_be(key.data() + 9);
  chunk.first_position = load_u64_le(value.data());
  chunk.count = load_u32_le(value.data() + 8);
  chunk.location.segment_index = load_u64_le(value.data() + 12);
  chunk.location.offset = load_u64_le(value.data() + 20);
  chunk.first_event_index = load_u32_le(value.data() + 28);
  return chunk;
}

RecordRef decode_record(const rocksdb::Slice& key, const rocksdb::Slice& value) {
  VL_ASSERT(key.size() == 9);
  VL_ASSERT(value.size() == 4 + 16 + 8);
  RecordRef record;
  record.first_position = load_u64_be(key.data() + 1);
  record.event_count = load_u32_le(value.data());
  record.location.segment_index = load_u64_le(value.data() + 4);
  record.location.offset = load_u64_le(value.data() + 12);
  record.recorded_unix_ns = static_cast<int64_t>(load_u64_le(value.data() + 20));
  return record;
}

// Walks entries of one key space from the one covering `start`, calling
// `take(key, value)` until it returns false.
template <class Take>
Status walk(rocksdb::DB& db, std::string_view prefix, const std::string& start, Direction direction,
            Take take) {
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions()));
  seek_covering(*it, start, prefix);
  rocksdb::Slice prefix_slice(prefix.data(), prefix.size());
  for (; it->Valid() && it->key().starts_with(prefix_slice); step(*it, direction)) {
    if (!take(it->key(), it->value())) break;
  }
  if (!it->status().ok()) return rocks_error(it->status(), "scan");
  return ok_status();
}

// Whether an entry [first, first + count) lies entirely on the wrong side of
// `from` for the direction (the covering seek may land on one).
bool before_start(uint64_t first, uint64_t count, uint64_t from, Direction direction) {
  if (direction == Direction::kForward) return first + count <= from;
  return first > from;
}

}  // namespace

Result<std::vector<StreamChunk>> Index::stream_chunks(uint64_t stream_id, uint64_t from_revision,
                                                      Direction direction, uint64_t events_max) {
  std::vector<StreamChunk> chunks;
  std::string prefix(1, kChunkTag);
  put_u64_be(prefix, stream_id);
  uint64_t events = 0;
  VL_RETURN_IF_ERROR(
      walk(*db_, prefix, chunk_key(stream_id, from_revision), direction,
           [&](const rocksdb::Slice& key, const rocksdb::Slice& value) {
             StreamChunk chunk = decode_chunk(key, value);
             if (before_start(chunk.first_revision, chunk.count, from_revision, direction)) {
               return true;
             }
             chunks.push_back(chunk);
             events += chunk.count;
             return events < events_max;
           }));
  return chunks;
}

Result<std::vector<RecordRef>> Index::records(uint64_t from_position, Direction direction,
                                              uint64_t events_max) {
  std::vector<RecordRef> records;
  uint64_t events = 0;
  VL_RETURN_IF_ERROR(walk(*db_, std::string(1, kRecordTag), record_key(from_position), direction,
                          [&](const rocksdb::Slice& key, const rocksdb::Slice& value) {
                            RecordRef record = decode_record(key, value);
                            if (before_start(record.first_position, record.event_count,
                                             from_position, direction)) {
                              return true;
                            }
                            records.push_back(record);
                            events += record.event_count;
                            return events < events_max;
                          }));
  return records;
}

Result<std::optional<RecordRef>> Index::record_at(uint64_t position) {
  VL_TRY(found, records(position, Direction::kForward, 1));
  if (found.empty() || found[0].first_position > position) return std::optional<RecordRef>();
  return std::optional<RecordRef>(found[0]);
}

Result<std::vector<PositionRun>> Index::runs(RunKind kind, std::string_view key,
                                             uint64_t from_position, Direction direction,
                                             uint64_t events_max) {
  std::vector<PositionRun> runs;
  std::string prefix = run_prefix(kind, key);
  uint64_t events = 0;
  VL_RETURN_IF_ERROR(
      walk(*db_, prefix, run_key(kind, key, from_position), direction,
           [&](const rocksdb::Slice& k, const rocksdb::Slice& value) {
             VL_ASSERT(k.size() == prefix.size() + 8 && value.size() == 4);
             PositionRun run{load_u64_be(k.data() + prefix.size()), load_u32_le(value.data())};
             if (before_start(run.first_position, run.count, from_position, direction)) {
               return true;
             }
             runs.push_back(run);
             events += run.count;
             return events < events_max;
           }));
  return runs;
}

Result<std::optional<uint64_t>> Index::event_position(const Uuid& id) {
  std::string value;
  auto status = db_->Get(rocksdb::ReadOptions(), event_key(id), &value);
  if (status.IsNotFound()) return std::optional<uint64_t>();
  if (!status.ok()) return rocks_error(status, "get event");
  if (value.size() != 8) return make_error(ErrorCode::kDataLoss, "malformed event id entry");
  return std::optional<uint64_t>(load_u64_le(value.data()));
}

Result<std::optional<uint64_t>> Index::first_position_after(int64_t time_unix_ns) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  // The first key with a time strictly greater than time_unix_ns.
  if (time_unix_ns == INT64_MAX) return std::optional<uint64_t>();
  it->Seek(time_key(time_unix_ns + 1, 0));
  if (!it->status().ok()) return rocks_error(it->status(), "seek time");
  if (!it->Valid() || it->key()[0] != kTimeTag) return std::optional<uint64_t>();
  VL_ASSERT(it->key().size() == 17);
  return std::optional<uint64_t>(load_u64_be(it->key().data() + 9));
}

}  // namespace vellum::index
