// SPDX-License-Identifier: Apache-2.0
// Static files at /demo/ (`vellum serve --demo-dir DIR`, docs/api/http.md
// "Demo files"): lets a browser demo or test page load from the server's own
// origin, so its WebSocket and fetch calls need no CORS. Read-only, no
// listings, no authentication (the operator chose to publish the directory).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/beast/http.hpp>

#include "vellum/result.h"

namespace vellum::server {

struct Target;

// The largest file served; larger ones are answered 403 (a demo directory
// holds pages and bundles, not data).
inline constexpr uint64_t kDemoFileBytesMax = uint64_t{16} << 20;

// The Content-Type for a file name, by its extension; application/octet-stream
// for unknown ones.
std::string_view demo_content_type(std::string_view file_name);

// Serves one directory. Thread safety: const after construction, so any
// thread may call handle() concurrently.
// Errors: kInvalidArgument when `path` is not an existing directory.
Status check_demo_dir(const std::string& path);

class DemoFiles {
 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  using Response = boost::beast::http::response<boost::beast::http::string_body>;

  // `root` empty: no demo directory (every /demo request is a 404 saying so).
  // A root that is not a directory is treated the same way (the
  // configuration checked it with check_demo_dir first).
  explicit DemoFiles(const std::string& root);

  // REQUIRES: target.segments[0] == "demo". GET and HEAD only (405 otherwise).
  Response handle(const Request& request, const Target& target) const;

 private:
  // The file for the request's path below /demo/, or an error response.
  Response serve_file(const Request& request, const Target& target) const;

  std::string root_;  // canonical (realpath) of the directory, or empty
};

}  // namespace vellum::server
