// SPDX-License-Identifier: Apache-2.0
// MemFileSystem keeps a map from normalized path to file node plus a set of
// directories created with create_dirs(). Directories are also implied by any
// path below them, which keeps create/rename cheap while list() still returns
// direct children only. One mutex guards everything: tests value simple,
// obviously correct locking over concurrency.
#include "io/mem_file_system.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace vellum::io {

namespace {

struct Node {
  std::string data;
};

}  // namespace

struct MemFileSystem::State {
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<Node>> files;  // normalized path -> node
  std::set<std::string> dirs;                          // created explicitly
  std::set<std::string> locks;                         // paths locked by lock()

  bool has_entries_inside(const std::string& dir) const {
    for (const auto& [path, node] : files) {
      if (path_is_inside(path, dir)) return true;
    }
    for (const auto& path : dirs) {
      if (path_is_inside(path, dir)) return true;
    }
    return false;
  }

  bool is_dir(const std::string& path) const {
    if (path == "." || path == "/") return true;
    return dirs.contains(path) || has_entries_inside(path);
  }
};

namespace {

// A handle on one node. Holds the shared state for its mutex, so it is valid
// even after the node was removed or renamed.
class MemFile : public File {
 public:
  MemFile(std::shared_ptr<MemFileSystem::State> state, std::shared_ptr<Node> node, bool writable)
      : state_(std::move(state)), node_(std::move(node)), writable_(writable) {}

  Status write_at(uint64_t offset_bytes, std::span<const std::byte> data) override {
    if (!writable_) return make_error(ErrorCode::kIoError, "write: file opened read-only");
    std::lock_guard guard(state_->mutex);
    std::string& bytes = node_->data;
    const uint64_t end = offset_bytes + data.size();
    if (end > bytes.size()) bytes.resize(end, '\0');
    if (!data.empty()) std::memcpy(bytes.data() + offset_bytes, data.data(), data.size());
    return ok_status();
  }

  Result<size_t> read_at(uint64_t offset_bytes, std::span<std::byte> target) override {
    std::lock_guard guard(state_->mutex);
    const std::string& bytes = node_->data;
    if (offset_bytes >= bytes.size()) return size_t{0};
    const size_t count = std::min<uint64_t>(target.size(), bytes.size() - offset_bytes);
    std::memcpy(target.data(), bytes.data() + offset_bytes, count);
    return count;
  }

  Status sync() override { return ok_status(); }

  Status truncate(uint64_t size_bytes) override {
    if (!writable_) return make_error(ErrorCode::kIoError, "truncate: file opened read-only");
    std::lock_guard guard(state_->mutex);
    node_->data.resize(size_bytes, '\0');
    return ok_status();
  }

  Result<uint64_t> size() override {
    std::lock_guard guard(state_->mutex);
    return uint64_t{node_->data.size()};
  }

 protected:
  std::shared_ptr<MemFileSystem::State> state_;

 private:
  std::shared_ptr<Node> node_;
  bool writable_;
};

// The object lock() returns: releases the lock when destroyed.
class MemLockFile : public MemFile {
 public:
  MemLockFile(std::shared_ptr<MemFileSystem::State> state, std::shared_ptr<Node> node,
              std::string path)
      : MemFile(std::move(state), std::move(node), true), path_(std::move(path)) {}
  ~MemLockFile() override {
    std::lock_guard guard(state_->mutex);
    state_->locks.erase(path_);
  }

 private:
  std::string path_;
};

// The first component of `path` below `dir`: the name list() reports.
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

std::string normalize_path(std::string_view path) {
  const bool absolute = !path.empty() && path.front() == '/';
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    const size_t slash = path.find('/');
    const std::string_view part = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == ".." && !parts.empty() && parts.back() != "..") {
      parts.pop_back();
    } else if (part != ".." || !absolute) {
      parts.push_back(part);  // ".." above "/" is "/", as on POSIX
    }
  }
  std::string result = absolute ? "/" : "";
  for (size_t i = 0; i < parts.size(); i++) {
    if (i > 0) result += '/';
    result += parts[i];
  }
  return result.empty() ? "." : result;
}

std::string parent_path(std::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

bool path_is_inside(std::string_view path, std::string_view dir) {
  if (path == dir) return false;
  if (dir == ".") return path.front() != '/';
  if (dir == "/") return path.front() == '/';
  return path.size() > dir.size() && path.starts_with(dir) && path[dir.size()] == '/';
}

MemFileSystem::MemFileSystem() : state_(std::make_shared<State>()) {}
MemFileSystem::~MemFileSystem() = default;

Result<std::unique_ptr<File>> MemFileSystem::open(const std::string& path, OpenMode mode) {
  const std::string name = normalize_path(path);
  std::lock_guard guard(state_->mutex);
  auto it = state_->files.find(name);
  if (mode == OpenMode::kCreate) {
    if (it != state_->files.end() || state_->is_dir(name)) {
      return make_error(ErrorCode::kAlreadyExists, "open: file exists: " + name);
    }
    if (!state_->is_dir(parent_path(name))) {
      return make_error(ErrorCode::kNotFound, "open: no such directory: " + parent_path(name));
    }
    auto node = std::make_shared<Node>();
    state_->files.emplace(name, node);
    return std::unique_ptr<File>(std::make_unique<MemFile>(state_, std::move(node), true));
  }
  if (it == state_->files.end()) {
    if (state_->is_dir(name)) {
      return make_error(ErrorCode::kIoError, "open: is a directory: " + name);
    }
    return make_error(ErrorCode::kNotFound, "open: no such file: " + name);
  }
  const bool writable = mode == OpenMode::kReadWrite;
  return std::unique_ptr<File>(std::make_unique<MemFile>(state_, it->second, writable));
}

Result<std::vector<std::string>> MemFileSystem::list(const std::string& path) {
  const std::string dir = normalize_path(path);
  std::lock_guard guard(state_->mutex);
  if (state_->files.contains(dir)) {
    return make_error(ErrorCode::kIoError, "list: not a directory: " + dir);
  }
  if (!state_->is_dir(dir)) {
    return make_error(ErrorCode::kNotFound, "list: no such directory: " + dir);
  }
  std::set<std::string> names;
  for (const auto& [name, node] : state_->files) {
    if (path_is_inside(name, dir)) names.insert(child_name(name, dir));
  }
  for (const auto& name : state_->dirs) {
    if (path_is_inside(name, dir)) names.insert(child_name(name, dir));
  }
  return std::vector<std::string>(names.begin(), names.end());
}

Result<bool> MemFileSystem::exists(const std::string& path) {
  const std::string name = normalize_path(path);
  std::lock_guard guard(state_->mutex);
  return state_->files.contains(name) || state_->is_dir(name);
}

Status MemFileSystem::create_dirs(const std::string& path) {
  std::string dir = normalize_path(path);
  std::lock_guard guard(state_->mutex);
  // Check every ancestor first so a failure leaves nothing half-created.
  for (std::string at = dir;; at = parent_path(at)) {
    if (state_->files.contains(at)) {
      return make_error(ErrorCode::kIoError, "create_dirs: a file is in the way: " + at);
    }
    if (at == "." || at == "/") break;
  }
  for (std::string at = dir; at != "." && at != "/"; at = parent_path(at)) {
    state_->dirs.insert(at);
  }
  return ok_status();
}

Status MemFileSystem::remove(const std::string& path) {
  const std::string name = normalize_path(path);
  std::lock_guard guard(state_->mutex);
  if (state_->files.erase(name) > 0) return ok_status();
  // Like unlink(2): directories are never removed, so code tested here does
  // not come to rely on something the posix implementation refuses.
  if (state_->is_dir(name)) {
    return make_error(ErrorCode::kIoError, "remove: is a directory: " + name);
  }
  return make_error(ErrorCode::kNotFound, "remove: no such file: " + name);
}

Status MemFileSystem::rename(const std::string& source, const std::string& target) {
  const std::string from = normalize_path(source);
  const std::string to = normalize_path(target);
  std::lock_guard guard(state_->mutex);
  auto it = state_->files.find(from);
  if (it != state_->files.end()) {
    if (from == to) return ok_status();
    if (state_->is_dir(to)) {
      return make_error(ErrorCode::kIoError, "rename: target is a directory: " + to);
    }
    if (!state_->is_dir(parent_path(to))) {
      return make_error(ErrorCode::kNotFound, "rename: no such directory: " + parent_path(to));
    }
    auto node = it->second;
    state_->files.erase(it);
    state_->files[to] = std::move(node);
    return ok_status();
  }
  if (!state_->is_dir(from) || from == "." || from == "/") {
    return make_error(ErrorCode::kNotFound, "rename: no such file: " + from);
  }
  if (from == to) return ok_status();
  if (state_->files.contains(to) || state_->has_entries_inside(to) || path_is_inside(to, from)) {
    return make_error(ErrorCode::kIoError,
                      "rename: cannot replace " + to + " with directory " + from);
  }
  // Move the directory and everything below it.
  const auto moved = [&](const std::string& name) { return to + name.substr(from.size()); };
  std::map<std::string, std::shared_ptr<Node>> files;
  for (auto& [name, node] : state_->files) {
    files[path_is_inside(name, from) ? moved(name) : name] = node;
  }
  std::set<std::string> dirs;
  for (const auto& name : state_->dirs) {
    dirs.insert(name == from || path_is_inside(name, from) ? moved(name) : name);
  }
  dirs.insert(to);
  state_->files = std::move(files);
  state_->dirs = std::move(dirs);
  return ok_status();
}

Status MemFileSystem::sync_dir(const std::string& path) {
  const std::string dir = normalize_path(path);
  std::lock_guard guard(state_->mutex);
  if (!state_->is_dir(dir)) {
    return make_error(ErrorCode::kNotFound, "sync_dir: no such directory: " + dir);
  }
  return ok_status();
}

Result<std::unique_ptr<File>> MemFileSystem::lock(const std::string& path) {
  const std::string name = normalize_path(path);
  std::lock_guard guard(state_->mutex);
  if (state_->locks.contains(name)) {
    return make_error(ErrorCode::kFailedPrecondition, "lock: already held: " + name);
  }
  auto it = state_->files.find(name);
  if (it == state_->files.end()) {
    if (state_->is_dir(name)) {
      return make_error(ErrorCode::kIoError, "lock: is a directory: " + name);
    }
    if (!state_->is_dir(parent_path(name))) {
      return make_error(ErrorCode::kNotFound, "lock: no such directory: " + parent_path(name));
    }
    it = state_->files.emplace(name, std::make_shared<Node>()).first;
  }
  state_->locks.insert(name);
  return std::unique_ptr<File>(std::make_unique<MemLockFile>(state_, it->second, name));
}

Result<std::string> MemFileSystem::contents(const std::string& path) {
  const std::string name = normalize_path(path);
  std::lock_guard guard(state_->mutex);
  auto it = state_->files.find(name);
  if (it == state_->files.end()) return make_error(ErrorCode::kNotFound, "no such file: " + name);
  return it->second->data;
}

void MemFileSystem::set_contents(const std::string& path, std::string data) {
  const std::string name = normalize_path(path);
  std::lock_guard guard(state_->mutex);
  auto& node = state_->files[name];
  if (!node) node = std::make_shared<Node>();
  node->data = std::move(data);
}

}  // namespace vellum::io
