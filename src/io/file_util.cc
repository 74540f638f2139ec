// SPDX-License-Identifier: Apache-2.0
// Helpers shared by every FileSystem implementation.
#include <cstddef>

#include "io/file_system.h"

namespace vellum::io {
namespace {

std::string parent_dir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Status write_file_atomic(FileSystem& fs, const std::string& path, std::string_view data) {
  std::string temp = path + ".tmp";
  VL_TRY(exists, fs.exists(temp));
  if (exists) VL_RETURN_IF_ERROR(fs.remove(temp));
  VL_TRY(file, fs.open(temp, OpenMode::kCreate));
  auto bytes = std::as_bytes(std::span(data.data(), data.size()));
  VL_RETURN_IF_ERROR(file->write_at(0, bytes));
  VL_RETURN_IF_ERROR(file->sync());
  file.reset();
  VL_RETURN_IF_ERROR(fs.rename(temp, path));
  return fs.sync_dir(parent_dir(path));
}

Result<std::string> read_file(FileSystem& fs, const std::string& path) {
  VL_TRY(file, fs.open(path, OpenMode::kRead));
  VL_TRY(size, file->size());
  std::string data(size, '\0');
  VL_TRY(n, file->read_at(0, std::as_writable_bytes(std::span(data.data(), data.size()))));
  data.resize(n);
  return data;
}

}  // namespace vellum::io
