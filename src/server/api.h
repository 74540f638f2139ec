// SPDX-License-Identifier: Apache-2.0
// The HTTP API (docs/api/http.md): routes a parsed request to the store and
// produces the JSON response. Independent of sockets, so tests and the fuzz
// target drive it directly; http_server.cc owns connections and WebSockets.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http.hpp>

#include "vellum/projection.h"
#include "vellum/store.h"
#include "vellum/toolkit_db.h"

#include "server/auth.h"
#include "server/config.h"
#include "server/demo_files.h"
#include "server/hub.h"
#include "server/metrics.h"

namespace vellum::server {

class RoomsApi;

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;
// Called exactly once with the response, possibly on another thread.
using Respond = std::function<void(HttpResponse)>;

// A decoded request target: percent-decoded path segments and query.
struct Target {
  std::vector<std::string> segments;  // "/streams/a%2Fb" -> {"streams", "a/b"}
  std::unordered_map<std::string, std::string> query;
};
// Errors: kInvalidArgument for bad percent-encoding or a target not
// starting with '/'.
Result<Target> parse_target(std::string_view target);

// What a WebSocket subscription asks for, validated and authorized.
struct SubscriptionRequest {
  std::string stream;  // empty: the log, filtered
  EventFilter filter;
  std::optional<uint64_t> from;
};

// The JSON error body and status for an engine error (the table in
// docs/api/http.md, "Errors").
HttpResponse error_response(const Error& error, unsigned version);
HttpResponse json_error(unsigned status, std::string_view code, std::string_view message,
                        unsigned version);

// Most keys one GET /projections/{name}/state page returns, and the size at
// which a page stops early (values can be up to an event's size each).
inline constexpr uint32_t kStateKeysPerPageMax = 1000;
inline constexpr size_t kStatePageBytesMax = size_t{4} << 20;

class Api {
 public:
  // `projections` and `toolkit_db` may be null (no /projections endpoints);
  // when given they must outlive the Api's use: call finish_projection_work()
  // before destroying them.
  Api(Store& store, Hub& hub, Metrics& metrics, const Authenticator& auth,
      const ServerConfig& config, Projections* projections = nullptr,
      ToolkitDb* toolkit_db = nullptr, RoomsApi* rooms = nullptr);

  // Handles one request; `respond` gets the response (synchronously for
  // reads, later for appends and long polls). `executor` runs the timers of
  // long polls.
  void handle(HttpRequest&& request, const boost::asio::any_io_executor& executor, Respond respond);

  // For GET /subscribe before the upgrade: authenticates and validates.
  // On failure returns the response to send instead of upgrading.
  std::variant<SubscriptionRequest, HttpResponse> prepare_subscription(const HttpRequest& request);

  // Ready: the store is open and the server is not shutting down.
  void set_ready(bool ready) { ready_.store(ready); }
  // Appends accepted and not yet answered (graceful shutdown waits for 0).
  int64_t appends_in_flight() const { return appends_in_flight_.load(); }
  // Waits until every projection start/stop/reset/rebuild accepted so far
  // has finished (they run on a thread of their own: stopping a projection
  // waits for its batch, which an I/O thread must not). At shutdown, after
  // the io_context stopped and before the projections are destroyed.
  void finish_projection_work();

 private:
  struct Context;
  void route(Context& context);
  void append(Context& context, const std::string& stream);
  void transaction(Context& context);
  void read_stream(Context& context, const std::string& stream);
  void read_all(Context& context);
  void read_event(Context& context, const std::string& id);
  void read_subject(Context& context, const std::string& subject);
  void position_at(Context& context);
  void delete_stream(Context& context, const std::string& stream);
  void get_metadata(Context& context, const std::string& stream);
  void put_metadata(Context& context, const std::string& stream);
  void submit_append(Context& context, std::vector<StreamAppend> appends, bool single);
  void long_poll(Context& context, const std::string& stream, ReadStreamOptions options,
                 uint32_t wait_ms);
  void route_projections(Context& context);
  void control_projection(Context& context, const std::string& name, const std::string& action);
  void read_projection_state(Context& context, const std::string& name,
                             std::optional<std::string> key);
  struct ProjectionWait;
  void poll_projection(const std::shared_ptr<ProjectionWait>& wait);
  HttpResponse projection_state_response(const std::string& name,
                                         const std::optional<std::string>& key,
                                         const Target& target, unsigned version);

  Store& store_;
  Hub& hub_;
  Metrics& metrics_;
  const Authenticator& auth_;
  const ServerConfig& config_;
  std::atomic<bool> ready_{false};
  std::atomic<int64_t> appends_in_flight_{0};
  Projections* projections_;
  ToolkitDb* toolkit_db_;
  RoomsApi* rooms_;             // null: no rooms
  const DemoFiles demo_files_;  // /demo/ (--demo-dir)
  // Runs projection start/stop/reset/rebuild off the I/O threads; one
  // thread, so that operations on a projection apply in the order received.
  boost::asio::thread_pool projection_work_{1};
};

}  // namespace vellum::server
