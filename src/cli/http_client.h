// SPDX-License-Identifier: Apache-2.0
// A small synchronous HTTP/1.1 client for `vellum --url`: one kept-alive
// connection to the server (plain TCP, or TLS for https://), requests with
// timeouts, and the server's JSON error bodies ({"error", "message"}) turned
// back into vellum Errors, so every subcommand reports them and exits with
// the same codes as in embedded mode (src/cli/README.md, "Exit codes").
//
// Synchronous on purpose: the CLI does one thing at a time. Internally every
// step is an asynchronous Boost.Asio operation driven to completion on a
// private io_context, because only asynchronous operations can time out and
// be interrupted by a signal (tail -f).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "vellum/result.h"

namespace vellum::cli {

inline constexpr std::chrono::milliseconds kHttpDefaultTimeout{60'000};

struct HttpReply {
  unsigned status = 0;
  std::string body;
};

enum class HttpMethod : uint8_t { kGet, kPost };

class HttpClient {
 public:
  // `url`: http://host[:port][/prefix] or https://..., where the optional
  // prefix (a reverse proxy's path) is put before every request target.
  // `token`, if not empty, goes out as "Authorization: Bearer <token>".
  // Nothing is connected yet. Errors: kInvalidArgument naming the bad URL.
  static Result<std::unique_ptr<HttpClient>> create(std::string_view url, std::string token);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request on the kept-alive connection (connecting first if
  // needed) and returns the reply whatever its status. `target` is the path
  // and query, percent-encoded, relative to the URL's prefix. `retry_safe`:
  // the request may be sent a second time if the kept-alive connection turns
  // out to have been closed by the server (GETs, appends with event ids).
  // Errors: kUnavailable (cannot connect, connection lost), kDeadlineExceeded
  // (no answer within `timeout`), kCancelled (stopped by a signal).
  Result<HttpReply> send(HttpMethod method, std::string_view target, std::string body,
                         bool retry_safe, std::chrono::milliseconds timeout = kHttpDefaultTimeout);

  // GET / POST (JSON body) that return the body of a 2xx reply; any other
  // status becomes error_from_reply().
  Result<std::string> get(std::string_view target,
                          std::chrono::milliseconds timeout = kHttpDefaultTimeout);
  Result<std::string> post_json(std::string_view target, std::string body, bool retry_safe);

  // From now on SIGINT and SIGTERM stop the client: the request or pause in
  // progress, and every later one, fails with kCancelled. For `tail -f`,
  // which must end with exit code 0 on those signals.
  void stop_on_signals();
  bool stopped() const;

  // Sleeps for `duration`, unless a watched signal comes first (kCancelled).
  Status pause(std::chrono::milliseconds duration);

  // The URL as given, for messages.
  const std::string& url() const;

 private:
  struct Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Percent-encodes everything but the unreserved characters (RFC 3986), for
// one path segment or one query value: "/" and "+" in a stream name survive.
std::string percent_encode(std::string_view text);

// The vellum Error for a reply that is not 2xx, chosen so that report_error()
// exits as the README promises: 400/413 usage, 404/410 not found, 409
// conflict (a wrong expected revision is rebuilt with its RevisionConflict,
// so it prints exactly as in embedded mode), 500 data_loss as data loss,
// anything else "other". The message is the server's.
Error error_from_reply(const HttpReply& reply);

}  // namespace vellum::cli
