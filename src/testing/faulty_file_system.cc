// SPDX-License-Identifier: Apache-2.0
// FaultyFileSystem keeps two namespaces (path -> node): the current one that
// operations see and the durable one as of the last sync_dir() of each
// directory. A node holds its current and its durable bytes. Renames and
// removals only move node pointers in the current namespace, so a crash that
// restores the durable namespace resurrects exactly the right files. Every
// File carries the crash generation it was opened in; a crash bumps the
// generation, which turns all older handles into "crashed" errors.
#include "testing/faulty_file_system.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "io/mem_file_system.h"

namespace vellum::testing {

namespace {

constexpr uint64_t kSectorSize = 512;

struct Node {
  std::string current;
  std::string durable;  // as of the last successful File::sync()
};

struct ArmedFault {
  FaultOp op;
  uint64_t remaining;  // matching operations to let through before failing
};

// splitmix64 (Steele, Lea, Flood 2014): tiny, fast and good enough to pick
// tear points; deterministic for a seed on every platform.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform enough in [0, bound) for bound > 0 (bias is below 2^-40 here).
  uint64_t below(uint64_t bound) { return next() % bound; }

 private:
  uint64_t state_;
};

}  // namespace

struct FaultyFileSystem::State {
  explicit State(uint64_t seed) : prng(seed) {}

  mutable std::mutex mutex;
  std::map<std::string, std::shared_ptr<Node>> files;          // current entries
  std::map<std::string, std::shared_ptr<Node>> durable_files;  // durable entries
  std::set<std::string> dirs;                                  // always durable
  std::map<std::string, uint64_t> locks;                       // path -> lock token
  uint64_t generation = 0;                                     // bumped by crash()
  uint64_t next_lock_token = 1;
  SplitMix64 prng;
  std::vector<ArmedFault> faults;
  bool disk_full = false;
  bool torn_garbage = true;
  uint64_t syncs = 0;
  uint64_t writes = 0;

  bool is_dir(const std::string& path) const {
    if (path == "." || path == "/" || dirs.contains(path)) return true;
    for (const auto& [name, node] : files) {
      if (io::path_is_inside(name, path)) return true;
    }
    for (const auto& name : dirs) {
      if (io::path_is_inside(name, path)) return true;
    }
    return false;
  }

  // Counts one operation of kind `op` against the armed faults. Returns an
  // error if one of them fires; a fired fault is disarmed.
  Status count_op(FaultOp op, const std::string& what) {
    bool fire = false;
    for (auto it = faults.begin(); it != faults.end();) {
      if (it->op != op && it->op != FaultOp::kAny) {
        ++it;
      } else if (it->remaining == 0) {
        fire = true;
        it = faults.erase(it);
      } else {
        --it->remaining;
        ++it;
      }
    }
    if (fire) return make_error(ErrorCode::kIoError, "injected fault: " + what);
    return ok_status();
  }

  std::string torn_content(const Node& node);
};

// What a file holds after power loss while `node.current` was not synced:
// durable bytes plus a random sector-aligned prefix of the unsynced ones.
// Sectors are assumed atomic, so durable bytes are never damaged; garbage
// (or zeros: the file grew but its data never reached the disk) only ever
// appears past the old end of the file, in the sector after the cut.
std::string FaultyFileSystem::State::torn_content(const Node& node) {
  const std::string& durable = node.durable;
  const std::string& current = node.current;
  const uint64_t common = std::min(durable.size(), current.size());
  uint64_t diff = 0;
  while (diff < common && durable[diff] == current[diff]) diff++;
  const uint64_t low = diff / kSectorSize * kSectorSize;
  const uint64_t high = current.size();
  // Choices: each sector boundary in [low, high], or everything written.
  const uint64_t boundaries = high >= low ? (high - low) / kSectorSize + 1 : 1;
  const uint64_t choice = prng.below(boundaries + 1);
  if (choice == boundaries) return current;
  const uint64_t cut = low + choice * kSectorSize;
  std::string result = current.substr(0, std::min<uint64_t>(cut, high));
  if (durable.size() > result.size()) result += durable.substr(result.size());
  if (!torn_garbage || prng.below(2) == 0) return result;
  const uint64_t garbage_begin = std::max<uint64_t>(cut, durable.size());
  const uint64_t garbage_end = std::min(high, (garbage_begin / kSectorSize + 1) * kSectorSize);
  if (garbage_begin >= garbage_end || garbage_begin > result.size()) return result;
  const bool zeros = prng.below(2) == 0;
  result.resize(garbage_end, '\0');
  for (uint64_t i = garbage_begin; i < garbage_end && !zeros; i++) {
    result[i] = static_cast<char>(prng.next());
  }
  return result;
}

namespace {

using State = FaultyFileSystem::State;

tl::unexpected<Error> crashed_error(const std::string& path) {
  return make_error(ErrorCode::kIoError, "crashed: file handle from before a crash: " + path);
}

// A handle on one node, valid until the next crash.
class FaultyFile : public io::File {
 public:
  FaultyFile(std::shared_ptr<State> state, std::shared_ptr<Node> node, std::string path,
             bool writable)
      : state_(std::move(state)),
        node_(std::move(node)),
        path_(std::move(path)),
        generation_(state_->generation),
        writable_(writable) {}

  Status write_at(uint64_t offset_bytes, std::span<const std::byte> data) override {
    std::lock_guard guard(state_->mutex);
    if (generation_ != state_->generation) return crashed_error(path_);
    VL_RETURN_IF_ERROR(state_->count_op(FaultOp::kWrite, "write " + path_));
    if (state_->disk_full) return make_error(ErrorCode::kIoError, "no space left on device");
    if (!writable_) return make_error(ErrorCode::kIoError, "write: file opened read-only");
    std::string& bytes = node_->current;
    const uint64_t end = offset_bytes + data.size();
    if (end > bytes.size()) bytes.resize(end, '\0');
    if (!data.empty()) std::memcpy(bytes.data() + offset_bytes, data.data(), data.size());
    state_->writes++;
    return ok_status();
  }

  Result<size_t> read_at(uint64_t offset_bytes, std::span<std::byte> target) override {
    std::lock_guard guard(state_->mutex);
    if (generation_ != state_->generation) return crashed_error(path_);
    const std::string& bytes = node_->current;
    if (offset_bytes >= bytes.size()) return size_t{0};
    const size_t count = std::min<uint64_t>(target.size(), bytes.size() - offset_bytes);
    std::memcpy(target.data(), bytes.data() + offset_bytes, count);
    return count;
  }

  Status sync() override {
    std::lock_guard guard(state_->mutex);
    if (generation_ != state_->generation) return crashed_error(path_);
    VL_RETURN_IF_ERROR(state_->count_op(FaultOp::kSync, "sync " + path_));
    node_->durable = node_->current;
    state_->syncs++;
    return ok_status();
  }

  Status truncate(uint64_t size_bytes) override {
    std::lock_guard guard(state_->mutex);
    if (generation_ != state_->generation) return crashed_error(path_);
    if (!writable_) return make_error(ErrorCode::kIoError, "truncate: file opened read-only");
    if (state_->disk_full && size_bytes > node_->current.size()) {
      return make_error(ErrorCode::kIoError, "no space left on device");
    }
    node_->current.resize(size_bytes, '\0');
    return ok_status();
  }

  Result<uint64_t> size() override {
    std::lock_guard guard(state_->mutex);
    if (generation_ != state_->generation) return crashed_error(path_);
    return uint64_t{node_->current.size()};
  }

 protected:
  std::shared_ptr<State> state_;
  std::shared_ptr<Node> node_;
  std::string path_;
  uint64_t generation_;

 private:
  bool writable_;
};

// The object lock() returns. A crash releases every lock (the process that
// held it is gone), so the destructor only releases its own token.
class FaultyLockFile : public FaultyFile {
 public:
  FaultyLockFile(std::shared_ptr<State> state, std::shared_ptr<Node> node, std::string path,
                 uint64_t token)
      : FaultyFile(std::move(state), std::move(node), std::move(path), true), token_(token) {}
  ~FaultyLockFile() override {
    std::lock_guard guard(state_->mutex);
    auto it = state_->locks.find(path_);
    if (it != state_->locks.end() && it->second == token_) state_->locks.erase(it);
  }

 private:
  uint64_t token_;
};

std::string child_name(const std::string& path, const std::string& dir) {
  std::string_view rest = path;
  if (dir == "/") {
    rest.remove_prefix(1);
  } else if (dir != ".") {
    rest.remove_prefix(dir.size() + 1);
  }
  return std::string(rest.substr(0, rest.find('/')));
}

}  // namespace

FaultyFileSystem::FaultyFileSystem(uint64_t seed) : state_(std::make_shared<State>(seed)) {}
FaultyFileSystem::~FaultyFileSystem() = default;

Result<std::unique_ptr<io::File>> FaultyFileSystem::open(const std::string& path,
                                                         io::OpenMode mode) {
  const std::string name = io::normalize_path(path);
  std::lock_guard guard(state_->mutex);
  VL_RETURN_IF_ERROR(state_->count_op(FaultOp::kOpen, "open " + name));
  auto it = state_->files.find(name);
  if (mode == io::OpenMode::kCreate) {
    if (it != state_->files.end() || state_->is_dir(name)) {
      return make_error(ErrorCode::kAlreadyExists, "open: file exists: " + name);
    }
    if (!state_->is_dir(io::parent_path(name))) {
      return make_error(ErrorCode::kNotFound, "open: no such directory: " + io::parent_path(name));
    }
    auto node = std::make_shared<Node>();
    state_->files.emplace(name, node);
    return std::unique_ptr<io::File>(std::make_unique<FaultyFile>(state_, node, name, true));
  }
  if (it == state_->files.end()) {
    if (state_->is_dir(name)) {
      return make_error(ErrorCode::kIoError, "open: is a directory: " + name);
    }
    return make_error(ErrorCode::kNotFound, "open: no such file: " + name);
  }
  const bool writable = mode == io::OpenMode::kReadWrite;
  return std::unique_ptr<io::File>(
      std::make_unique<FaultyFile>(state_, it->second, name, writable));
}

Result<std::vector<std::string>> FaultyFileSystem::list(const std::string& path) {
  const std::string dir = io::normalize_path(path);
  std::lock_guard guard(state_->mutex);
  if (state_->files.contains(dir)) {
    return make_error(ErrorCode::kIoError, "list: not a directory: " + dir);
  }
  if (!state_->is_dir(dir)) {
    return make_error(ErrorCode::kNotFound, "list: no such directory: " + dir);
  }
  std::set<std::string> names;
  for (const auto& [name, node] : state_->files) {
    if (io::path_is_inside(name, dir)) names.insert(child_name(name, dir));
  }
  for (const auto& name : state_->dirs) {
    if (io::path_is_inside(name, dir)) names.insert(child_name(name, dir));
  }
  return std::vector<std::string>(names.begin(), names.end());
}

Result<bool> FaultyFileSystem::exists(const std::string& path) {
  const std::string name = io::normalize_path(path);
  std::lock_guard guard(state_->mutex);
  return state_->files.contains(name) || state_->is_dir(name);
}

Status FaultyFileSystem::create_dirs(const std::string& path) {
  const std::string dir = io::normalize_path(path);
  std::lock_guard guard(state_->mutex);
  for (std::string at = dir;; at = io::parent_path(at)) {
    if (state_->files.contains(at)) {
      return make_error(ErrorCode::kIoError, "create_dirs: a file is in the way: " + at);
    }
    if (at == "." || at == "/") break;
  }
  for (std::string at = dir; at != "." && at != "/"; at = io::parent_path(at)) {
    state_->dirs.insert(at);
  }
  return ok_status();
}

Status FaultyFileSystem::remove(const std::string& path) {
  const std::string name = io::normalize_path(path);
  std::lock_guard guard(state_->mutex);
  if (state_->files.erase(name) > 0) return ok_status();  // durable at sync_dir()
  // Like unlink(2) and the posix implementation: files only.
  if (state_->is_dir(name)) {
    return make_error(ErrorCode::kIoError, "remove: is a directory: " + name);
  }
  return make_error(ErrorCode::kNotFound, "remove: no such file: " + name);
}

Status FaultyFileSystem::rename(const std::string& source, const std::string& target) {
  const std::string from = io::normalize_path(source);
  const std::string to = io::normalize_path(target);
  std::lock_guard guard(state_->mutex);
  VL_RETURN_IF_ERROR(state_->count_op(FaultOp::kRename, "rename " + from + " " + to));
  auto it = state_->files.find(from);
  if (it == state_->files.end()) {
    if (state_->is_dir(from)) {
      return make_error(ErrorCode::kIoError, "rename: directories are not supported: " + from);
    }
    return make_error(ErrorCode::kNotFound, "rename: no such file: " + from);
  }
  if (from == to) return ok_status();
  if (state_->is_dir(to)) {
    return make_error(ErrorCode::kIoError, "rename: target is a directory: " + to);
  }
  if (!state_->is_dir(io::parent_path(to))) {
    return make_error(ErrorCode::kNotFound, "rename: no such directory: " + io::parent_path(to));
  }
  auto node = it->second;
  state_->files.erase(it);
  state_->files[to] = std::move(node);
  return ok_status();
}

Status FaultyFileSystem::sync_dir(const std::string& path) {
  const std::string dir = io::normalize_path(path);
  std::lock_guard guard(state_->mutex);
  VL_RETURN_IF_ERROR(state_->count_op(FaultOp::kSync, "sync_dir " + dir));
  if (!state_->is_dir(dir)) {
    return make_error(ErrorCode::kNotFound, "sync_dir: no such directory: " + dir);
  }
  // The durable entries of `dir` become exactly its current entries.
  std::erase_if(state_->durable_files,
                [&](const auto& entry) { return io::parent_path(entry.first) == dir; });
  for (const auto& [name, node] : state_->files) {
    if (io::parent_path(name) == dir) state_->durable_files[name] = node;
  }
  state_->syncs++;
  return ok_status();
}

Result<std::unique_ptr<io::File>> FaultyFileSystem::lock(const std::string& path) {
  const std::string name = io::normalize_path(path);
  std::lock_guard guard(state_->mutex);
  VL_RETURN_IF_ERROR(state_->count_op(FaultOp::kOpen, "lock " + name));
  if (state_->locks.contains(name)) {
    return make_error(ErrorCode::kFailedPrecondition, "lock: already held: " + name);
  }
  auto it = state_->files.find(name);
  if (it == state_->files.end()) {
    if (state_->is_dir(name)) {
      return make_error(ErrorCode::kIoError, "lock: is a directory: " + name);
    }
    if (!state_->is_dir(io::parent_path(name))) {
      return make_error(ErrorCode::kNotFound, "lock: no such directory: " + io::parent_path(name));
    }
    it = state_->files.emplace(name, std::make_shared<Node>()).first;
  }
  const uint64_t token = state_->next_lock_token++;
  state_->locks[name] = token;
  return std::unique_ptr<io::File>(
      std::make_unique<FaultyLockFile>(state_, it->second, name, token));
}

void FaultyFileSystem::crash(bool tear_last_write) {
  std::lock_guard guard(state_->mutex);
  state_->generation++;
  state_->locks.clear();
  state_->files = state_->durable_files;
  // A node may be reachable under two durable names (renamed across
  // directories with only one synced); give it one fate.
  std::set<Node*> done;
  for (const auto& [name, node] : state_->files) {
    if (!done.insert(node.get()).second) continue;
    if (tear_last_write && node->current != node->durable) {
      node->current = state_->torn_content(*node);
    } else {
      node->current = node->durable;
    }
    node->durable = node->current;  // whatever survived is on the disk now
  }
}

void FaultyFileSystem::drop_unsynced() { crash(false); }

void FaultyFileSystem::fail_after(uint64_t n, FaultOp op) {
  std::lock_guard guard(state_->mutex);
  state_->faults.push_back(ArmedFault{op, n});
}

void FaultyFileSystem::set_disk_full(bool full) {
  std::lock_guard guard(state_->mutex);
  state_->disk_full = full;
}

void FaultyFileSystem::clear_faults() {
  std::lock_guard guard(state_->mutex);
  state_->faults.clear();
  state_->disk_full = false;
}

void FaultyFileSystem::set_torn_garbage(bool enabled) {
  std::lock_guard guard(state_->mutex);
  state_->torn_garbage = enabled;
}

uint64_t FaultyFileSystem::sync_count() const {
  std::lock_guard guard(state_->mutex);
  return state_->syncs;
}

uint64_t FaultyFileSystem::write_count() const {
  std::lock_guard guard(state_->mutex);
  return state_->writes;
}

Result<std::string> FaultyFileSystem::contents(const std::string& path) {
  const std::string name = io::normalize_path(path);
  std::lock_guard guard(state_->mutex);
  auto it = state_->files.find(name);
  if (it == state_->files.end()) return make_error(ErrorCode::kNotFound, "no such file: " + name);
  return it->second->current;
}

Result<std::string> FaultyFileSystem::durable_contents(const std::string& path) {
  const std::string name = io::normalize_path(path);
  std::lock_guard guard(state_->mutex);
  auto it = state_->durable_files.find(name);
  if (it == state_->durable_files.end()) {
    return make_error(ErrorCode::kNotFound, "no durable entry: " + name);
  }
  return it->second->durable;
}

}  // namespace vellum::testing
