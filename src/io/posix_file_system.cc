// SPDX-License-Identifier: Apache-2.0
// The OS implementation of io::FileSystem: the only code in Vellum that calls
// open/pread/pwrite/fdatasync. Errors carry the path and errno text.
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/assert.h"
#include "io/file_system.h"

namespace vellum::io {
namespace {

tl::unexpected<Error> os_error(const std::string& what, const std::string& path, int err) {
  return make_error(ErrorCode::kIoError, what + " " + path + ": " + std::strerror(err));
}

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override { ::close(fd_); }

  Status write_at(uint64_t offset_bytes, std::span<const std::byte> data) override {
    const std::byte* p = data.data();
    size_t left = data.size();
    auto offset = static_cast<off_t>(offset_bytes);
    while (left > 0) {
      ssize_t n = ::pwrite(fd_, p, left, offset);
      if (n < 0) {
        if (errno == EINTR) continue;
        return os_error("write", path_, errno);
      }
      p += n;
      left -= static_cast<size_t>(n);
      offset += n;
    }
    return ok_status();
  }

  Result<size_t> read_at(uint64_t offset_bytes, std::span<std::byte> target) override {
    size_t done = 0;
    while (done < target.size()) {
      ssize_t n = ::pread(fd_, target.data() + done, target.size() - done,
                          static_cast<off_t>(offset_bytes + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return os_error("read", path_, errno);
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    return done;
  }

  Status sync() override {
    if (::fdatasync(fd_) != 0) return os_error("fdatasync", path_, errno);
    return ok_status();
  }

  Status truncate(uint64_t size_bytes) override {
    if (::ftruncate(fd_, static_cast<off_t>(size_bytes)) != 0) {
      return os_error("truncate", path_, errno);
    }
    return ok_status();
  }

  Result<uint64_t> size() override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return os_error("stat", path_, errno);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  int fd_;
  std::string path_;
};

int open_flags(OpenMode mode) {
  switch (mode) {
    case OpenMode::kRead:
      return O_RDONLY | O_CLOEXEC;
    case OpenMode::kReadWrite:
      return O_RDWR | O_CLOEXEC;
    case OpenMode::kCreate:
      return O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC;
  }
  VL_ASSERT(false);
}

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override {
    int fd = ::open(path.c_str(), open_flags(mode), 0644);
    if (fd < 0) {
      if (errno == ENOENT) return make_error(ErrorCode::kNotFound, "no such file: " + path);
      if (errno == EEXIST) return make_error(ErrorCode::kAlreadyExists, "file exists: " + path);
      return os_error("open", path, errno);
    }
    return std::unique_ptr<File>(std::make_unique<PosixFile>(fd, path));
  }

  Result<std::vector<std::string>> list(const std::string& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return os_error("list", path, errno);
    std::vector<std::string> names;
    while (dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    ::closedir(dir);
    return names;
  }

  Result<bool> exists(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) return true;
    if (errno == ENOENT) return false;
    return os_error("stat", path, errno);
  }

  Status create_dirs(const std::string& path) override {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) return make_error(ErrorCode::kIoError, "mkdir " + path + ": " + ec.message());
    return ok_status();
  }

  Status remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return os_error("remove", path, errno);
    return ok_status();
  }

  Status rename(const std::string& source, const std::string& target) override {
    if (::rename(source.c_str(), target.c_str()) != 0) return os_error("rename", source, errno);
    return ok_status();
  }

  Status sync_dir(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return os_error("open dir", path, errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return os_error("fsync dir", path, err);
    return ok_status();
  }

  Result<std::unique_ptr<File>> lock(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return os_error("open lock", path, errno);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return make_error(ErrorCode::kFailedPrecondition,
                        "the store is in use by another process (lock held: " + path + ")");
    }
    return std::unique_ptr<File>(std::make_unique<PosixFile>(fd, path));
  }
};

}  // namespace

FileSystem* default_file_system() {
  static PosixFileSystem* fs = new PosixFileSystem();  // never destroyed
  return fs;
}

}  // namespace vellum::io
