// SPDX-License-Identifier: Apache-2.0
// ToolkitDb: aggregate snapshots, projection checkpoints and key-value read
// models in one RocksDB with three column families. The byte layout of every
// key and value is docs/formats/toolkit-db.md; change the two together.
//
// Everything here is derived from the log, so writes use RocksDB's WAL without
// fsync (a process crash loses nothing; a power loss may lose the newest
// writes, which projections then replay and aggregates snapshot again).
#include "vellum/toolkit_db.h"

#include <string>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "base/assert.h"
#include "base/coding.h"

namespace vellum {
namespace {

constexpr const char* kSnapshotsFamily = "snapshots";
constexpr const char* kCheckpointsFamily = "checkpoints";
constexpr const char* kKvFamily = "kv";

// First byte of a snapshot value; bump when the layout changes.
constexpr uint8_t kSnapshotFormat = 1;
// format u8 | base_revision u64 | logic_version u32 | recorded_time i64, then the state.
constexpr size_t kSnapshotHeaderBytes = 1 + 8 + 4 + 8;
constexpr size_t kCheckpointValueBytes = 8;
constexpr size_t kRevisionKeyBytes = 8;

// Aggregate names, stream names and projection names end at a NUL inside
// keys, so none of them may contain one (stream names never do).
Status check_name(std::string_view what, std::string_view name) {
  if (name.empty() || name.find('\0') != std::string_view::npos) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string(what) + " must be non-empty and contain no NUL byte");
  }
  return ok_status();
}

std::string snapshot_prefix(std::string_view aggregate, std::string_view stream) {
  std::string key;
  key.reserve(aggregate.size() + stream.size() + 2 + kRevisionKeyBytes);
  key.append(aggregate);
  key.push_back('\0');
  key.append(stream);
  key.push_back('\0');
  return key;
}

std::string snapshot_key(std::string_view aggregate, std::string_view stream, uint64_t revision) {
  std::string key = snapshot_prefix(aggregate, stream);
  put_u64_be(key, revision);  // big-endian: byte order is revision order
  return key;
}

std::string kv_prefix(std::string_view projection) {
  std::string key(projection);
  key.push_back('\0');
  return key;
}

// The first key after every key starting with `prefix`, where `prefix` ends
// with the NUL separator: replacing that NUL with 0x01 bounds the range.
std::string prefix_end(std::string prefix) {
  VL_ASSERT(!prefix.empty());
  VL_ASSERT(prefix.back() == '\0');
  prefix.back() = '\x01';
  return prefix;
}

std::string encode_snapshot(const Snapshot& snapshot) {
  std::string value;
  value.reserve(kSnapshotHeaderBytes + snapshot.state.size());
  value.push_back(static_cast<char>(kSnapshotFormat));
  put_u64_le(value, snapshot.base_revision);
  put_u32_le(value, snapshot.logic_version);
  put_u64_le(value, static_cast<uint64_t>(snapshot.recorded_time_unix_ns));
  value.append(snapshot.state);
  return value;
}

Result<Snapshot> decode_snapshot(std::string_view value, uint64_t revision) {
  if (value.size() < kSnapshotHeaderBytes || static_cast<uint8_t>(value[0]) != kSnapshotFormat) {
    return make_error(ErrorCode::kDataLoss, "malformed snapshot value in the toolkit db");
  }
  Snapshot snapshot;
  snapshot.revision = revision;
  snapshot.base_revision = load_u64_le(value.data() + 1);
  snapshot.logic_version = load_u32_le(value.data() + 9);
  snapshot.recorded_time_unix_ns = static_cast<int64_t>(load_u64_le(value.data() + 13));
  snapshot.state.assign(value.substr(kSnapshotHeaderBytes));
  return snapshot;
}

std::string encode_checkpoint(uint64_t next) {
  std::string value;
  put_u64_le(value, next);
  return value;
}

Result<uint64_t> decode_checkpoint(std::string_view value) {
  if (value.size() != kCheckpointValueBytes) {
    return make_error(ErrorCode::kDataLoss, "malformed projection checkpoint in the toolkit db");
  }
  return load_u64_le(value.data());
}

std::string_view to_view(const rocksdb::Slice& slice) { return {slice.data(), slice.size()}; }

bool starts_with(const rocksdb::Slice& key, std::string_view prefix) {
  return to_view(key).substr(0, prefix.size()) == prefix;
}

tl::unexpected<Error> rocks_error(const rocksdb::Status& status, const char* what) {
  // RocksDB reports a LOCK file held by another process as an I/O error.
  bool locked = status.IsIOError() && status.ToString().find("lock") != std::string::npos;
  return make_error(locked ? ErrorCode::kFailedPrecondition : ErrorCode::kIoError,
                    std::string("toolkit db ") + what + ": " + status.ToString());
}

}  // namespace

// ---------------------------------------------------------------------------
// KvBatch

void KvBatch::put(std::string_view key, std::string_view value) {
  auto it = changes_.find(key);
  if (it == changes_.end()) {
    changes_.emplace(std::string(key), std::string(value));
  } else {
    it->second = std::string(value);
  }
}

void KvBatch::erase(std::string_view key) {
  auto it = changes_.find(key);
  if (it == changes_.end()) {
    changes_.emplace(std::string(key), std::nullopt);
  } else {
    it->second.reset();
  }
}

std::optional<std::optional<std::string>> KvBatch::pending(std::string_view key) const {
  auto it = changes_.find(key);
  if (it == changes_.end()) return std::nullopt;
  return it->second;
}

// ---------------------------------------------------------------------------
// ToolkitDb

struct ToolkitDb::Impl {
  std::unique_ptr<rocksdb::DB> db;
  // Owned by `db`; destroyed (DestroyColumnFamilyHandle) before it closes.
  rocksdb::ColumnFamilyHandle* snapshots = nullptr;
  rocksdb::ColumnFamilyHandle* checkpoints = nullptr;
  rocksdb::ColumnFamilyHandle* kv = nullptr;
  rocksdb::ColumnFamilyHandle* default_family = nullptr;

  // sync = false: the WAL is written to the OS on every batch, never fsynced.
  rocksdb::WriteOptions write_options;

  ~Impl() {
    if (!db) return;
    for (auto* handle : {snapshots, checkpoints, kv, default_family}) {
      if (handle != nullptr) (void)db->DestroyColumnFamilyHandle(handle);
    }
    (void)db->Close();  // best effort: the WAL already holds every write
  }

  Status write(rocksdb::WriteBatch& batch, const char* what) {
    auto status = db->Write(write_options, &batch);
    if (!status.ok()) return rocks_error(status, what);
    return ok_status();
  }
};

ToolkitDb::ToolkitDb(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ToolkitDb::~ToolkitDb() = default;

Result<std::unique_ptr<ToolkitDb>> ToolkitDb::open(const std::string& path) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  rocksdb::ColumnFamilyOptions family_options;
  family_options.compression = rocksdb::kNoCompression;
  family_options.write_buffer_size = 16u << 20;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, family_options},
      {kSnapshotsFamily, family_options},
      {kCheckpointsFamily, family_options},
      {kKvFamily, family_options},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  auto status = rocksdb::DB::Open(db_options, path, families, &handles, &db);
  if (!status.ok()) return rocks_error(status, "open");
  VL_ASSERT(handles.size() == families.size());
  auto impl = std::make_unique<Impl>();
  impl->db.reset(db);
  impl->default_family = handles[0];
  impl->snapshots = handles[1];
  impl->checkpoints = handles[2];
  impl->kv = handles[3];
  return std::unique_ptr<ToolkitDb>(new ToolkitDb(std::move(impl)));
}

Status ToolkitDb::put_snapshot(std::string_view aggregate, std::string_view stream,
                               const Snapshot& snapshot) {
  VL_RETURN_IF_ERROR(check_name("aggregate name", aggregate));
  VL_RETURN_IF_ERROR(check_name("stream name", stream));
  if (snapshot.base_revision > snapshot.revision) {
    return make_error(ErrorCode::kInvalidArgument, "snapshot base_revision after its revision");
  }
  auto status =
      impl_->db->Put(impl_->write_options, impl_->snapshots,
                     snapshot_key(aggregate, stream, snapshot.revision), encode_snapshot(snapshot));
  if (!status.ok()) return rocks_error(status, "put snapshot");
  return ok_status();
}

Result<std::optional<Snapshot>> ToolkitDb::find_snapshot(std::string_view aggregate,
                                                         std::string_view stream,
                                                         uint64_t max_revision,
                                                         uint32_t logic_version,
                                                         uint64_t base_revision) {
  VL_RETURN_IF_ERROR(check_name("aggregate name", aggregate));
  VL_RETURN_IF_ERROR(check_name("stream name", stream));
  const std::string prefix = snapshot_prefix(aggregate, stream);
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->snapshots));
  // Newest first from max_revision down; snapshots of another logic version or
  // base (a soft-deleted and recreated stream) are skipped, never returned.
  for (it->SeekForPrev(snapshot_key(aggregate, stream, max_revision));
       it->Valid() && starts_with(it->key(), prefix); it->Prev()) {
    if (it->key().size() != prefix.size() + kRevisionKeyBytes) {
      return make_error(ErrorCode::kDataLoss, "malformed snapshot key in the toolkit db");
    }
    uint64_t revision = load_u64_be(it->key().data() + prefix.size());
    VL_ASSERT(revision <= max_revision);
    VL_TRY(snapshot, decode_snapshot(to_view(it->value()), revision));
    if (snapshot.logic_version == logic_version && snapshot.base_revision == base_revision) {
      return std::optional<Snapshot>(std::move(snapshot));
    }
  }
  if (!it->status().ok()) return rocks_error(it->status(), "find snapshot");
  return std::optional<Snapshot>();
}

Result<uint64_t> ToolkitDb::delete_snapshots(std::string_view aggregate) {
  VL_RETURN_IF_ERROR(check_name("aggregate name", aggregate));
  const std::string prefix = kv_prefix(aggregate);  // <aggregate> 0x00
  rocksdb::WriteBatch batch;
  uint64_t deleted = 0;
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->snapshots));
  for (it->Seek(prefix); it->Valid() && starts_with(it->key(), prefix); it->Next()) {
    VL_ASSERT(batch.Delete(impl_->snapshots, it->key()).ok());
    deleted++;
  }
  if (!it->status().ok()) return rocks_error(it->status(), "scan snapshots");
  if (deleted > 0) VL_RETURN_IF_ERROR(impl_->write(batch, "delete snapshots"));
  return deleted;
}

Result<std::optional<uint64_t>> ToolkitDb::checkpoint(std::string_view projection) {
  VL_RETURN_IF_ERROR(check_name("projection name", projection));
  std::string value;
  auto status = impl_->db->Get(rocksdb::ReadOptions(), impl_->checkpoints, projection, &value);
  if (status.IsNotFound()) return std::optional<uint64_t>();
  if (!status.ok()) return rocks_error(status, "read checkpoint");
  VL_TRY(next, decode_checkpoint(value));
  return std::optional<uint64_t>(next);
}

Status ToolkitDb::set_checkpoint(std::string_view projection, uint64_t next) {
  VL_RETURN_IF_ERROR(check_name("projection name", projection));
  auto status =
      impl_->db->Put(impl_->write_options, impl_->checkpoints, projection, encode_checkpoint(next));
  if (!status.ok()) return rocks_error(status, "write checkpoint");
  return ok_status();
}

Status ToolkitDb::commit_kv(std::string_view projection, const KvBatch& batch, uint64_t next) {
  VL_RETURN_IF_ERROR(check_name("projection name", projection));
  // One WriteBatch: RocksDB applies it atomically, also across column
  // families, so the read model never runs ahead of or behind its checkpoint.
  rocksdb::WriteBatch write;
  std::string key = kv_prefix(projection);
  const size_t prefix_size = key.size();
  for (const auto& [user_key, value] : batch.changes()) {
    key.resize(prefix_size);
    key.append(user_key);
    if (value.has_value()) {
      VL_ASSERT(write.Put(impl_->kv, key, *value).ok());
    } else {
      VL_ASSERT(write.Delete(impl_->kv, key).ok());
    }
  }
  VL_ASSERT(write.Put(impl_->checkpoints, projection, encode_checkpoint(next)).ok());
  return impl_->write(write, "commit kv batch");
}

Result<std::optional<std::string>> ToolkitDb::kv_get(std::string_view projection,
                                                     std::string_view key) {
  VL_RETURN_IF_ERROR(check_name("projection name", projection));
  std::string full_key = kv_prefix(projection);
  full_key.append(key);
  std::string value;
  auto status = impl_->db->Get(rocksdb::ReadOptions(), impl_->kv, full_key, &value);
  if (status.IsNotFound()) return std::optional<std::string>();
  if (!status.ok()) return rocks_error(status, "kv get");
  return std::optional<std::string>(std::move(value));
}

Status ToolkitDb::kv_scan(
    std::string_view projection, std::string_view prefix, std::string_view start, uint32_t limit,
    const std::function<bool(std::string_view key, std::string_view value)>& visit) {
  VL_RETURN_IF_ERROR(check_name("projection name", projection));
  const std::string model_prefix = kv_prefix(projection);
  std::string scan_prefix = model_prefix;
  scan_prefix.append(prefix);
  std::string first = model_prefix;
  first.append(std::max(prefix, start));  // keys >= start that begin with prefix
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->kv));
  uint32_t visited = 0;
  for (it->Seek(first); it->Valid() && visited < limit && starts_with(it->key(), scan_prefix);
       it->Next()) {
    visited++;
    if (!visit(to_view(it->key()).substr(model_prefix.size()), to_view(it->value()))) break;
  }
  if (!it->status().ok()) return rocks_error(it->status(), "kv scan");
  return ok_status();
}

Status ToolkitDb::kv_reset(std::string_view projection) {
  VL_RETURN_IF_ERROR(check_name("projection name", projection));
  // One batch: a crash leaves either the old model with its checkpoint or an
  // empty model without one, never a checkpoint over missing keys.
  rocksdb::WriteBatch batch;
  std::string begin = kv_prefix(projection);
  VL_ASSERT(batch.DeleteRange(impl_->kv, begin, prefix_end(begin)).ok());
  VL_ASSERT(batch.Delete(impl_->checkpoints, projection).ok());
  return impl_->write(batch, "kv reset");
}

}  // namespace vellum
