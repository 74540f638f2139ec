// SPDX-License-Identifier: Apache-2.0
// DemoFiles (demo_files.h). Traversal is refused twice: by the decoded path
// segments (no "..", ".", empty segments or separators inside a segment,
// which also catches percent-encoded ones since segments arrive decoded),
// and by the file's realpath, which must lie under the directory's realpath
// (a symbolic link pointing outside is not followed out).
#include "server/demo_files.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "io/file_system.h"
#include "server/api.h"

namespace vellum::server {

namespace fs = std::filesystem;
namespace http = boost::beast::http;

namespace {

constexpr std::string_view kIndexFile = "index.html";

struct ContentType {
  std::string_view extension;
  std::string_view type;
};
constexpr ContentType kContentTypes[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".ico", "image/x-icon"},
    {".webmanifest", "application/manifest+json"},
    {".txt", "text/plain; charset=utf-8"},
};

bool safe_segment(std::string_view segment) {
  if (segment.empty() || segment == "." || segment == "..") return false;
  return segment.find_first_of(std::string_view("/\\\0", 3)) == std::string_view::npos;
}

// Whether `path` is `root` or inside it (both canonical).
bool is_under(const fs::path& path, const fs::path& root) {
  auto [root_end, path_at] = std::mismatch(root.begin(), root.end(), path.begin(), path.end());
  return root_end == root.end();
}

Result<std::string> read_small_file(const std::string& path) {
  VL_TRY(file, io::default_file_system()->open(path, io::OpenMode::kRead));
  VL_TRY(size, file->size());
  if (size > kDemoFileBytesMax) {
    return make_error(ErrorCode::kResourceExhausted,
                      fmt::format("files over {} bytes are not served", kDemoFileBytesMax));
  }
  std::string data(size, '\0');
  VL_TRY(read, file->read_at(0, std::as_writable_bytes(std::span(data.data(), data.size()))));
  data.resize(read);
  return data;
}

}  // namespace

std::string_view demo_content_type(std::string_view file_name) {
  for (const ContentType& known : kContentTypes) {
    if (file_name.size() > known.extension.size() && file_name.ends_with(known.extension)) {
      return known.type;
    }
  }
  return "application/octet-stream";
}

Status check_demo_dir(const std::string& path) {
  std::error_code error;
  if (!fs::is_directory(path, error)) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("--demo-dir: {} is not a directory", path));
  }
  return ok_status();
}

DemoFiles::DemoFiles(const std::string& root) {
  if (root.empty()) return;
  std::error_code error;
  fs::path canonical = fs::canonical(root, error);
  if (!error && fs::is_directory(canonical, error)) root_ = canonical.string();
}

DemoFiles::Response DemoFiles::handle(const Request& request, const Target& target) const {
  const unsigned version = request.version();
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    return json_error(405, "method_not_allowed", "/demo/ serves GET and HEAD only", version);
  }
  if (root_.empty()) {
    return json_error(404, "not_found",
                      "no demo files: start the server with --demo-dir DIR to serve DIR at /demo/",
                      version);
  }
  std::string_view raw = request.target();
  raw = raw.substr(0, raw.find('?'));
  if (raw == "/demo") {
    // Relative URLs in /demo/index.html resolve against /demo/, not /.
    Response response{http::status::permanent_redirect, version};
    std::string location = "/demo/";
    const std::string_view full = request.target();
    if (size_t query = full.find('?'); query != std::string_view::npos) {
      location += full.substr(query);
    }
    response.set(http::field::location, location);
    response.prepare_payload();
    return response;
  }
  return serve_file(request, target);
}

DemoFiles::Response DemoFiles::serve_file(const Request& request, const Target& target) const {
  const unsigned version = request.version();
  fs::path relative;
  for (size_t i = 1; i < target.segments.size(); ++i) {
    if (!safe_segment(target.segments[i])) {
      return json_error(400, "invalid_argument",
                        "demo paths may not contain '.', '..', empty segments or separators",
                        version);
    }
    relative /= target.segments[i];
  }
  std::string_view raw = request.target();
  raw = raw.substr(0, raw.find('?'));
  if (raw.ends_with('/')) relative /= kIndexFile;  // a directory: its index page
  std::error_code error;
  const fs::path root(root_);
  const fs::path file = fs::canonical(root / relative, error);
  auto missing = [&] {
    return json_error(404, "not_found",
                      fmt::format("no demo file {}", std::string(request.target())), version);
  };
  if (error || !is_under(file, root) || !fs::is_regular_file(file, error)) return missing();
  Result<std::string> data = read_small_file(file.string());
  if (!data) {
    if (data.error().code == ErrorCode::kResourceExhausted) {
      return json_error(403, "forbidden", data.error().message, version);
    }
    return missing();
  }
  Response response{http::status::ok, version};
  response.set(http::field::content_type, demo_content_type(file.filename().string()));
  response.set(http::field::cache_control, "no-cache");
  const size_t size = data->size();
  if (request.method() == http::verb::get) response.body() = std::move(*data);
  response.content_length(size);
  return response;
}

}  // namespace vellum::server
