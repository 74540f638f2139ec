// SPDX-License-Identifier: Apache-2.0
// Connections: the listener, HTTP sessions (plain or TLS), WebSocket
// subscription sessions, and the graceful shutdown sequence.
//
// Threading: one io_context run by `threads` threads. Every connection runs
// on its own strand, so its handlers never run concurrently. Store reads run
// on the connection's strand; appends are asynchronous (Store::append_async)
// and their responses are posted back to the strand. The hub thread queues
// frames for live subscribers under each session's mutex.
#include "server/server.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <list>
#include <mutex>
#include <set>
#include <thread>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "vellum/projection.h"
#include "vellum/toolkit_db.h"

#include "base/clock.h"
#include "rooms/room_service.h"
#include "server/api.h"
#include "server/auth.h"
#include "server/declared_projections.h"
#include "server/hub.h"
#include "server/metrics.h"
#include "server/rooms_api.h"
#include "wire/codec.h"

namespace vellum::server {

namespace beast = boost::beast;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace websocket = boost::beast::websocket;
using tcp = net::ip::tcp;
using beast::error_code;

namespace {

constexpr uint32_t kCatchUpPageEvents = 256;

// WebSocket close codes (docs/api/http.md, "Subscriptions").
constexpr uint16_t kCloseStreamDeleted = 4410;
constexpr uint16_t kCloseReadFailed = 4500;

bool is_loopback(const std::string& host) {
  error_code error;
  net::ip::address address = net::ip::make_address(host, error);
  if (error) return host == "localhost";
  return address.is_loopback();
}

template <class Stream>
constexpr bool kIsTls = !std::is_same_v<Stream, beast::tcp_stream>;

// The options every server WebSocket shares: idle timeout with keep-alive
// pings, the message size limit, text frames and the Server header.
template <class Stream>
void configure_websocket(websocket::stream<Stream>& ws, const ServerConfig& config) {
  websocket::stream_base::timeout timeout =
      websocket::stream_base::timeout::suggested(beast::role_type::server);
  timeout.idle_timeout = std::chrono::seconds(config.idle_timeout_seconds);
  timeout.keep_alive_pings = true;
  ws.set_option(timeout);
  ws.read_message_max(config.max_ws_message_bytes);
  ws.set_option(websocket::stream_base::decorator([](websocket::response_type& response) {
    response.set(beast::http::field::server, "vellum");
  }));
  ws.text(true);
  beast::get_lowest_layer(ws).expires_never();
}

}  // namespace

// What sessions share: the server's parts and its shutdown state.
struct Shared {
  Shared(const ServerConfig& config_in, Store& store_in, Metrics& metrics_in, Hub& hub_in,
         Api& api_in)
      : config(config_in), store(store_in), metrics(metrics_in), hub(hub_in), api(api_in) {}

  const ServerConfig& config;
  Store& store;
  Metrics& metrics;
  Hub& hub;
  Api& api;
  rooms::RoomService* rooms = nullptr;
  RoomsApi* rooms_api = nullptr;
  std::atomic<bool> shutting_down{false};

  // Live WebSocket sessions, to send them a close frame on shutdown.
  std::mutex sessions_mutex;
  std::list<std::function<void()>> closers;
};

// ---- WebSocket subscription sessions ----

template <class Stream>
class WsSession : public HubSubscriber, public std::enable_shared_from_this<WsSession<Stream>> {
 public:
  WsSession(Stream&& stream, Shared& shared, SubscriptionRequest request)
      : ws_(std::move(stream)), shared_(shared), request_(std::move(request)) {
    shared_.metrics.open_connections.fetch_add(1);
    shared_.metrics.open_subscriptions.fetch_add(1);
  }
  ~WsSession() override {
    shared_.metrics.open_connections.fetch_sub(1);
    shared_.metrics.open_subscriptions.fetch_sub(1);
  }

  void run(HttpRequest request) {
    configure_websocket(ws_, shared_.config);
    ws_.async_accept(request,
                     beast::bind_front_handler(&WsSession::on_accept, this->shared_from_this()));
  }

  // HubSubscriber: on the hub thread, under the hub's lock.
  bool offer(const std::vector<HubEvent>& batch, uint64_t next_position) override {
    std::lock_guard lock(mutex_);
    if (mode_ != Mode::kLive) return false;
    bool queued = false;
    for (const HubEvent& hub_event : batch) {
      const RecordedEvent& event = *hub_event.event;
      if (!wanted(event)) continue;
      if (queued_bytes_ + hub_event.frame->size() > shared_.config.subscriber_queue_bytes) {
        // Too slow for live delivery: from here on it reads from the store
        // at its own pace, starting at this event (nothing is skipped).
        mode_ = Mode::kCatchUp;
        shared_.metrics.subscribers_switched.fetch_add(1);
        kick_locked();
        return false;
      }
      push_locked(hub_event.frame);
      advance_locked(event);
      queued = true;
    }
    if (request_.stream.empty()) cursor_ = std::max(cursor_, next_position);
    if (queued) kick_locked();
    return true;
  }

  uint64_t backlog() const override {
    std::lock_guard lock(mutex_);
    return queue_.size();
  }

  // HubSubscriber: under the hub's lock, on the thread that tombstoned. A
  // live stream subscriber goes back to catch-up, whose read of the stream
  // fails with kStreamDeleted: an error frame, then close 4410.
  bool stream_tombstoned(std::string_view stream) override {
    std::lock_guard lock(mutex_);
    if (mode_ != Mode::kLive || request_.stream != stream) return true;
    mode_ = Mode::kCatchUp;
    kick_locked();
    return false;
  }

  // Shutdown: a close frame, then the connection ends.
  void close_going_away() {
    net::post(ws_.get_executor(), [self = this->shared_from_this()] {
      self->close_with(websocket::close_code::going_away, "server shutting down");
    });
  }

 private:
  enum class Mode { kCatchUp, kLive, kClosed };

  void on_accept(error_code error) {
    if (error) return;
    {
      std::lock_guard lock(shared_.sessions_mutex);
      std::weak_ptr<WsSession> weak = this->shared_from_this();
      shared_.closers.push_back([weak] {
        if (auto self = weak.lock()) self->close_going_away();
      });
      closer_ = std::prev(shared_.closers.end());
      registered_ = true;
    }
    if (shared_.shutting_down.load()) {
      close_with(websocket::close_code::going_away, "server shutting down");
      return;
    }
    do_read();
    if (request_.from) {
      cursor_ = *request_.from;
      catch_up();
    } else {
      join_live_only();
    }
  }

  // The client sends nothing we act on; reading keeps pings, pongs and the
  // close handshake flowing and notices a dead peer.
  void do_read() {
    ws_.async_read(read_buffer_,
                   beast::bind_front_handler(&WsSession::on_read, this->shared_from_this()));
  }

  void on_read(error_code error, size_t) {
    if (error) {
      finish();
      return;
    }
    read_buffer_.consume(read_buffer_.size());
    do_read();
  }

  bool wanted(const RecordedEvent& event) const {
    if (!request_.stream.empty())
      return event.stream == request_.stream && event.revision >= cursor_;
    if (event.position < cursor_) return false;
    const EventFilter& filter = request_.filter;
    if (!filter.types.empty() &&
        std::find(filter.types.begin(), filter.types.end(), event.type) == filter.types.end()) {
      return false;
    }
    if (!filter.category.empty()) {
      std::string_view category = std::string_view(event.stream).substr(0, event.stream.find('-'));
      if (category != filter.category) return false;
    }
    if (!filter.subject.empty() && event.subject != filter.subject) return false;
    if (!filter.stream_prefix.empty() && !event.stream.starts_with(filter.stream_prefix)) {
      return false;
    }
    return true;
  }

  void push_locked(std::shared_ptr<const std::string> frame) {
    queued_bytes_ += frame->size();
    queue_.push_back(std::move(frame));
  }

  void advance_locked(const RecordedEvent& event) {
    cursor_ = request_.stream.empty() ? event.position + 1 : event.revision + 1;
  }

  // Starts the write loop if it is idle (called with mutex_ held).
  void kick_locked() {
    if (writing_) return;
    writing_ = true;
    net::post(ws_.get_executor(), [self = this->shared_from_this()] { self->do_write(); });
  }

  void do_write() {
    std::shared_ptr<const std::string> frame;
    bool resume_catch_up = false;
    uint16_t close_code = 0;
    {
      std::lock_guard lock(mutex_);
      if (closing_) {
        writing_ = false;
        return;
      }
      if (queue_.empty()) {
        writing_ = false;
        close_code = close_code_;
        resume_catch_up = mode_ == Mode::kCatchUp;
      } else {
        frame = queue_.front();
      }
    }
    if (close_code != 0) return close_with(close_code, "subscription failed");
    if (!frame) {
      if (resume_catch_up) catch_up();
      return;
    }
    ws_.async_write(net::buffer(*frame), [self = this->shared_from_this(), frame](
                                             error_code error, size_t) { self->on_write(error); });
  }

  void on_write(error_code error) {
    if (error) {
      finish();
      return;
    }
    {
      std::lock_guard lock(mutex_);
      if (!queue_.empty()) {
        queued_bytes_ -= queue_.front()->size();
        queue_.pop_front();
      }
    }
    shared_.metrics.subscription_events_sent.fetch_add(1);
    do_write();
  }

  // Reads one page from the store at the cursor and queues it.
  // Returns whether the read reached the end, or an error.
  Result<bool> read_page_locked() {
    std::vector<RecordedEvent> events;
    bool at_end = false;
    if (!request_.stream.empty()) {
      ReadStreamOptions options;
      options.from_revision = cursor_;
      options.max_count = kCatchUpPageEvents;
      auto result = shared_.store.read_stream(request_.stream, options);
      if (!result) {
        // A stream that does not exist (yet) is waited for.
        if (result.error().code != ErrorCode::kNotFound) return make_error(result.error());
        return true;
      }
      events = std::move(result->events);
      at_end = !result->next_revision;
      if (!events.empty()) cursor_ = events.back().revision + 1;
    } else {
      uint64_t head = shared_.store.head_position();
      ReadAllOptions options;
      options.from_position = cursor_;
      options.max_count = kCatchUpPageEvents;
      options.filter = request_.filter;
      auto result = shared_.store.read_all(options);
      if (!result) return make_error(result.error());
      events = std::move(result->events);
      at_end = !result->next_position;
      cursor_ = at_end ? std::max(cursor_, head) : *result->next_position;
      if (!events.empty()) cursor_ = std::max(cursor_, events.back().position + 1);
    }
    for (const RecordedEvent& event : events) {
      push_locked(std::make_shared<const std::string>(
          "{\"event\":" + wire::event_to_json_text(event) + "}"));
    }
    return at_end;
  }

  // Catch-up: reads pages while the queue drains; at the end, joins the hub
  // with a final read under the hub's lock (hub.h explains why no event is
  // lost or repeated).
  void catch_up() {
    if (shared_.shutting_down.load()) return;
    std::unique_lock lock(mutex_);
    if (mode_ != Mode::kCatchUp) return;
    auto at_end = read_page_locked();
    if (!at_end) return fail_locked(std::move(lock), at_end.error());
    if (*at_end) {
      lock.unlock();
      Error join_error{ErrorCode::kInternal, "", std::nullopt};
      bool failed = false;
      bool joined = shared_.hub.try_join(this->shared_from_this(), [&](uint64_t hub_next) {
        std::lock_guard inner(mutex_);
        if (mode_ != Mode::kCatchUp) return false;
        auto final_page = read_page_locked();
        if (!final_page) {
          join_error = final_page.error();
          failed = true;
          return false;
        }
        if (!*final_page) return false;
        mode_ = Mode::kLive;
        // Announced once (docs/api/http.md): a slow subscriber sent back to
        // catch-up rejoins the hub silently.
        if (!caught_up_sent_) push_locked(caught_up_frame(hub_next));
        caught_up_sent_ = true;
        return true;
      });
      lock.lock();
      if (failed) return fail_locked(std::move(lock), join_error);
      (void)joined;
    }
    if (!queue_.empty()) {
      kick_locked();
    } else if (mode_ == Mode::kCatchUp) {
      // A filtered scan can end a page with no events and more to examine.
      net::post(ws_.get_executor(), [self = this->shared_from_this()] { self->catch_up(); });
    }
  }

  void join_live_only() {
    bool joined = shared_.hub.try_join(this->shared_from_this(), [&](uint64_t hub_next) {
      std::lock_guard lock(mutex_);
      if (request_.stream.empty()) {
        cursor_ = hub_next;
      } else {
        auto info = shared_.store.stream_info(request_.stream);
        cursor_ = info ? static_cast<uint64_t>(info->last_revision + 1) : 0;
      }
      mode_ = Mode::kLive;
      push_locked(caught_up_frame(hub_next));
      caught_up_sent_ = true;
      kick_locked();
      return true;
    });
    if (!joined) close_with(websocket::close_code::going_away, "server shutting down");
  }

  static std::shared_ptr<const std::string> caught_up_frame(uint64_t position) {
    return std::make_shared<const std::string>(
        fmt::format("{{\"caughtUp\":{{\"position\":{}}}}}", position));
  }

  // Sends an {"error": ...} frame after what is queued, then closes.
  void fail_locked(std::unique_lock<std::mutex> lock, const Error& error) {
    HttpResponse described = error_response(error, 11);
    push_locked(std::make_shared<const std::string>("{\"error\":" + described.body() + "}"));
    close_code_ = error.code == ErrorCode::kStreamDeleted ? kCloseStreamDeleted : kCloseReadFailed;
    mode_ = Mode::kClosed;
    kick_locked();
    lock.unlock();
    shared_.hub.leave(this);
  }

  void close_with(uint16_t code, const char* reason) {
    {
      std::lock_guard lock(mutex_);
      if (closing_) return;
      closing_ = true;
      mode_ = Mode::kClosed;
    }
    shared_.hub.leave(this);
    websocket::close_reason close_reason(static_cast<websocket::close_code>(code), reason);
    ws_.async_close(close_reason,
                    [self = this->shared_from_this()](error_code) { self->finish(); });
  }

  // The connection is over: leave the hub and the shutdown registry.
  void finish() {
    {
      std::lock_guard lock(mutex_);
      mode_ = Mode::kClosed;
    }
    shared_.hub.leave(this);
    std::lock_guard lock(shared_.sessions_mutex);
    if (registered_) {
      shared_.closers.erase(closer_);
      registered_ = false;
    }
  }

  websocket::stream<Stream> ws_;
  Shared& shared_;
  SubscriptionRequest request_;
  beast::flat_buffer read_buffer_;

  mutable std::mutex mutex_;  // guards everything below; taken after the hub's lock
  Mode mode_ = Mode::kCatchUp;
  uint64_t cursor_ = 0;  // next revision (stream) or position (log) to send
  std::deque<std::shared_ptr<const std::string>> queue_;
  uint64_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closing_ = false;
  uint16_t close_code_ = 0;      // close with this once the queue is sent
  bool caught_up_sent_ = false;  // the one {"caughtUp"} frame is queued

  std::list<std::function<void()>>::iterator closer_;  // under shared_.sessions_mutex
  bool registered_ = false;
};

// ---- WebSocket room sessions (docs/api/rooms.md, "Protocol") ----

// One participant's connection to a room: frames from the client go to the
// RoomService; frames from the room are queued here and written in order.
template <class Stream>
class RoomWsSession : public rooms::RoomPeer,
                      public std::enable_shared_from_this<RoomWsSession<Stream>> {
 public:
  RoomWsSession(Stream&& stream, Shared& shared, rooms::JoinRequest join)
      : ws_(std::move(stream)), shared_(shared), join_(std::move(join)) {
    shared_.metrics.open_connections.fetch_add(1);
  }
  ~RoomWsSession() override { shared_.metrics.open_connections.fetch_sub(1); }

  void run(HttpRequest request) {
    configure_websocket(ws_, shared_.config);
    ws_.async_accept(
        request, beast::bind_front_handler(&RoomWsSession::on_accept, this->shared_from_this()));
  }

  // RoomPeer: from a room strand.
  void send(std::shared_ptr<const std::string> frame) override {
    net::post(ws_.get_executor(), [self = this->shared_from_this(), frame = std::move(frame)] {
      if (self->closing_) return;
      if (self->join_.watch_only && self->queue_.size() >= 2) {
        // Pokes are content-free: one waiting behind the frame being written
        // is enough, with the newest cookie (a burst of commits, one poke).
        self->queue_.back() = frame;
        return;
      }
      if (self->queue_.size() >= shared_max_frames(self->shared_)) {
        return self->close_with(rooms::kCloseTooSlow, "too slow: the send queue is full");
      }
      self->queue_.push_back(frame);
      if (!self->writing_) self->do_write();
    });
  }
  void close(uint16_t code, std::string reason) override {
    net::post(ws_.get_executor(), [self = this->shared_from_this(), code,
                                   reason = std::move(reason)] { self->close_with(code, reason); });
  }

 private:
  static size_t shared_max_frames(const Shared& shared) {
    return shared.config.rooms.max_queued_frames;
  }

  void on_accept(error_code error) {
    if (error) return;
    {
      std::lock_guard lock(shared_.sessions_mutex);
      std::weak_ptr<RoomWsSession> weak = this->shared_from_this();
      shared_.closers.push_back([weak] {
        if (auto self = weak.lock()) {
          self->close(websocket::close_code::going_away, "server shutting down");
        }
      });
      closer_ = std::prev(shared_.closers.end());
      registered_ = true;
    }
    if (shared_.shutting_down.load()) {
      return close_with(websocket::close_code::going_away, "server shutting down");
    }
    auto session = join_.watch_only
                       ? shared_.rooms->watch(join_.app, join_.room, this->shared_from_this())
                       : shared_.rooms->join(join_, this->shared_from_this());
    if (!session) {
      queue_.push_back(std::make_shared<const std::string>(
          nlohmann::json{{"type", "error"},
                         {"error", {{"code", "join_failed"}, {"message", session.error().message}}}}
              .dump()));
      close_after_queue_ = true;
      return do_write();
    }
    session_ = *session;
    do_read();
  }

  void do_read() {
    ws_.async_read(read_buffer_,
                   beast::bind_front_handler(&RoomWsSession::on_read, this->shared_from_this()));
  }

  void on_read(error_code error, size_t) {
    if (error) return finish(/*clean=*/error == websocket::error::closed);
    shared_.rooms->on_message(session_, beast::buffers_to_string(read_buffer_.data()));
    read_buffer_.consume(read_buffer_.size());
    do_read();
  }

  void do_write() {
    if (closing_) return;
    if (queue_.empty()) {
      writing_ = false;
      if (close_after_queue_) close_with(websocket::close_code::policy_error, "join failed");
      return;
    }
    writing_ = true;
    std::shared_ptr<const std::string> frame = queue_.front();
    ws_.async_write(net::buffer(*frame), [self = this->shared_from_this(), frame](
                                             error_code error, size_t) { self->on_write(error); });
  }

  void on_write(error_code error) {
    writing_ = false;
    if (error) return finish(/*clean=*/false);
    queue_.pop_front();
    do_write();
  }

  void close_with(uint16_t code, const std::string& reason) {
    if (closing_) return;
    closing_ = true;
    websocket::close_reason close_reason(static_cast<websocket::close_code>(code), reason);
    ws_.async_close(close_reason, [self = this->shared_from_this()](error_code) {
      self->finish(/*clean=*/false);
    });
  }

  // The connection is over. A close the client started is a clean leave; a
  // dead connection may come back within the presence timeout.
  void finish(bool clean) {
    if (finished_) return;
    finished_ = true;
    if (session_) shared_.rooms->on_closed(session_, clean);
    session_.reset();  // the room keeps it (and this peer) while the participant is present
    std::lock_guard lock(shared_.sessions_mutex);
    if (registered_) {
      shared_.closers.erase(closer_);
      registered_ = false;
    }
  }

  websocket::stream<Stream> ws_;
  Shared& shared_;
  rooms::JoinRequest join_;
  beast::flat_buffer read_buffer_;
  std::shared_ptr<rooms::RoomSession> session_;
  // On the connection's executor only:
  std::deque<std::shared_ptr<const std::string>> queue_;
  bool writing_ = false;
  bool closing_ = false;
  bool finished_ = false;
  bool close_after_queue_ = false;
  std::list<std::function<void()>>::iterator closer_;  // under shared_.sessions_mutex
  bool registered_ = false;
};

// ---- HTTP sessions ----

template <class Stream>
class HttpSession : public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  HttpSession(Stream&& stream, Shared& shared, bool reject)
      : stream_(std::move(stream)), shared_(shared), reject_(reject) {
    shared_.metrics.open_connections.fetch_add(1);
  }
  ~HttpSession() { shared_.metrics.open_connections.fetch_sub(1); }

  void run() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->start(); });
  }

 private:
  void start() {
    beast::get_lowest_layer(stream_).expires_after(idle_timeout());
    if constexpr (kIsTls<Stream>) {
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](error_code error) {
                                if (!error) self->after_handshake();
                              });
    } else {
      after_handshake();
    }
  }

  void after_handshake() {
    if (reject_) {
      shared_.metrics.rejected_connections.fetch_add(1);
      HttpResponse response =
          json_error(503, "too_many_connections",
                     fmt::format("the server has {} connections open (max-connections)",
                                 shared_.config.max_connections),
                     11);
      write(std::move(response), false);
      return;
    }
    do_read();
  }

  std::chrono::seconds idle_timeout() const {
    return std::chrono::seconds(shared_.config.idle_timeout_seconds);
  }

  void do_read() {
    parser_.emplace();
    parser_->header_limit(shared_.config.max_header_bytes);
    parser_->body_limit(shared_.config.max_body_bytes);
    beast::get_lowest_layer(stream_).expires_after(idle_timeout());
    beast::http::async_read(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&HttpSession::on_read, this->shared_from_this()));
  }

  void on_read(error_code error, size_t) {
    if (error == beast::http::error::end_of_stream) return do_close();
    if (error == beast::http::error::body_limit) {
      return write(json_error(413, "body_too_large",
                              fmt::format("the request body exceeds {} bytes (max-body-bytes)",
                                          shared_.config.max_body_bytes),
                              11),
                   false);
    }
    if (error == beast::http::error::header_limit) {
      return write(json_error(431, "headers_too_large",
                              fmt::format("the request headers exceed {} bytes (max-header-bytes)",
                                          shared_.config.max_header_bytes),
                              11),
                   false);
    }
    if (error == beast::error::timeout) return do_close();
    if (error) {
      if (&error.category() ==
          &beast::http::make_error_code(beast::http::error::bad_target).category()) {
        return write(json_error(400, "bad_request", "malformed HTTP: " + error.message(), 11),
                     false);
      }
      return;  // the connection is gone
    }
    HttpRequest request = parser_->release();
    beast::get_lowest_layer(stream_).expires_never();
    if (websocket::is_upgrade(request)) return upgrade(std::move(request));
    bool keep_alive = request.keep_alive();
    auto self = this->shared_from_this();
    shared_.api.handle(std::move(request), stream_.get_executor(),
                       [self, keep_alive](HttpResponse response) {
                         net::post(self->stream_.get_executor(),
                                   [self, keep_alive, response = std::move(response)]() mutable {
                                     self->write(std::move(response), keep_alive);
                                   });
                       });
  }

  void upgrade(HttpRequest request) {
    auto target = parse_target(request.target());
    if (target && target->segments.size() == 3 && target->segments[0] == "rooms") {
      return upgrade_room(std::move(request), *target);
    }
    if (target && target->segments.size() == 4 && target->segments[0] == "replicache" &&
        target->segments[3] == "poke") {
      return upgrade_room(std::move(request), *target);
    }
    if (!target || target->segments.size() != 1 || target->segments[0] != "subscribe") {
      return write(json_error(404, "not_found", "WebSocket upgrades are served on /subscribe", 11),
                   false);
    }
    if (shared_.shutting_down.load()) {
      return write(json_error(503, "shutting_down", "the server is shutting down", 11), false);
    }
    if (shared_.metrics.open_subscriptions.load() >=
        static_cast<int64_t>(shared_.config.max_subscriptions)) {
      return write(
          json_error(429, "too_many_subscriptions",
                     fmt::format("the server has {} subscriptions open (max-subscriptions)",
                                 shared_.config.max_subscriptions),
                     11),
          false);
    }
    auto prepared = shared_.api.prepare_subscription(request);
    if (auto* response = std::get_if<HttpResponse>(&prepared)) {
      shared_.metrics.request_done("/subscribe", response->result_int(), 0);
      return write(std::move(*response), false);
    }
    shared_.metrics.request_done("/subscribe", 101, 0);
    std::make_shared<WsSession<Stream>>(std::move(stream_), shared_,
                                        std::move(std::get<SubscriptionRequest>(prepared)))
        ->run(std::move(request));
  }

  void upgrade_room(HttpRequest request, const Target& target) {
    if (shared_.rooms_api == nullptr) {
      return write(json_error(404, "not_found", "this server runs no rooms", 11), false);
    }
    if (shared_.shutting_down.load()) {
      return write(json_error(503, "shutting_down", "the server is shutting down", 11), false);
    }
    const bool poke = target.segments[0] == "replicache";
    const char* route = poke ? "/replicache/{app}/{room}/poke" : "/rooms/{app}/{room}";
    auto prepared = poke ? shared_.rooms_api->prepare_poke(request, target)
                         : shared_.rooms_api->prepare_join(request, target);
    if (auto* response = std::get_if<HttpResponse>(&prepared)) {
      shared_.metrics.request_done(route, response->result_int(), 0);
      return write(std::move(*response), false);
    }
    shared_.metrics.request_done(route, 101, 0);
    std::make_shared<RoomWsSession<Stream>>(std::move(stream_), shared_,
                                            std::move(std::get<rooms::JoinRequest>(prepared)))
        ->run(std::move(request));
  }

  void write(HttpResponse response, bool keep_alive) {
    keep_alive = keep_alive && !shared_.shutting_down.load();
    response.keep_alive(keep_alive);
    response.set(beast::http::field::server, "vellum");
    response_ = std::make_shared<HttpResponse>(std::move(response));
    beast::get_lowest_layer(stream_).expires_after(idle_timeout());
    beast::http::async_write(
        stream_, *response_,
        [self = this->shared_from_this(), keep_alive](error_code error, size_t) {
          self->response_.reset();
          if (error) return;
          if (!keep_alive) return self->do_close();
          self->do_read();
        });
  }

  void do_close() {
    if constexpr (kIsTls<Stream>) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
      stream_.async_shutdown([self = this->shared_from_this()](error_code) {});
    } else {
      error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
  }

  Stream stream_;
  Shared& shared_;
  bool reject_;
  beast::flat_buffer buffer_;
  std::optional<beast::http::request_parser<beast::http::string_body>> parser_;
  std::shared_ptr<HttpResponse> response_;
};

// ---- The server ----

class Server::Impl {
 public:
  explicit Impl(ServerConfig config)
      : config_(std::move(config)),
        threads_(config_.threads != 0 ? config_.threads
                                      : std::max(1u, std::thread::hardware_concurrency())),
        ioc_(static_cast<int>(threads_)),
        // The acceptor and the shutdown sequence share one strand: a
        // completing accept must not race the close in begin_shutdown.
        acceptor_(net::make_strand(ioc_)),
        signals_(ioc_, SIGINT, SIGTERM),
        auth_(config_.api_keys) {}

  Status start() {
    std::string host;
    uint16_t port = 0;
    VL_RETURN_IF_ERROR(split_host_port(config_.listen, host, port));
    if (!is_loopback(host) && !auth_.enabled() && !config_.insecure) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("refusing to listen on {} without API keys: configure "
                                    "api_keys in a --config file, or pass --insecure to allow "
                                    "anyone on the network to read and write",
                                    config_.listen));
    }
    VL_RETURN_IF_ERROR(setup_tls());
    StoreOptions options;
    options.durability = config_.durability == "batch"  ? Durability::kBatch
                         : config_.durability == "none" ? Durability::kNone
                                                        : Durability::kFsync;
    VL_TRY(store, Store::open(config_.data_dir, options));
    store_ = std::move(store);
    hub_ = std::make_unique<Hub>(*store_, metrics_);
    VL_RETURN_IF_ERROR(hub_->start());
    VL_RETURN_IF_ERROR(start_projections());
    VL_RETURN_IF_ERROR(start_rooms(host));
    api_ = std::make_unique<Api>(*store_, *hub_, metrics_, auth_, config_, projections_.get(),
                                 toolkit_db_.get(), rooms_api_.get());
    shared_ = std::make_unique<Shared>(config_, *store_, metrics_, *hub_, *api_);
    shared_->rooms = rooms_.get();
    shared_->rooms_api = rooms_api_.get();
    VL_RETURN_IF_ERROR(listen(host, port));
    api_->set_ready(true);
    return ok_status();
  }

  Status run() {
    signals_.async_wait([this](error_code error, int signal) {
      if (error) return;
      net::post(acceptor_.get_executor(), [this, signal] { begin_shutdown(signal); });
    });
    do_accept();
    std::vector<std::thread> threads;
    for (uint32_t i = 1; i < threads_; i++) threads.emplace_back([this] { ioc_.run(); });
    ioc_.run();
    for (auto& thread : threads) thread.join();
    // Nothing runs any more: close in dependency order. The store's
    // destructor waits for the writer and flushes the index; the callbacks of
    // appends still in flight use the API, so the store goes first. Sessions
    // still queued in the io_context are destroyed with it, after this: they
    // use shared_ and metrics_, which are declared before it to outlive it.
    hub_->stop();
    // Projections read the store and write the toolkit database: they stop
    // (each finishing its batch and checkpoint) before either closes, and
    // after the last start/stop/reset/rebuild requested over HTTP.
    api_->finish_projection_work();
    rooms_->stop();  // (already stopped at shutdown; after a failed start, not)
    rooms_api_.reset();
    rooms_.reset();
    projections_.reset();
    toolkit_db_.reset();
    store_.reset();
    api_.reset();
    hub_.reset();
    spdlog::info("vellum: stopped");
    return ok_status();
  }

 private:
  // The toolkit's database lives beside the log and the index
  // (<data>/toolkit: the store reads only its own log/ and index/), and holds
  // the read models and checkpoints of the projections declared in the
  // config file, which start here.
  Status start_projections() {
    VL_TRY(db, ToolkitDb::open(config_.data_dir + "/toolkit"));
    toolkit_db_ = std::move(db);
    projections_ = std::make_unique<Projections>(*store_);
    for (const DeclaredProjection& declared : config_.projections) {
      Status added = projections_->add(make_declared_projection_spec(declared, *toolkit_db_));
      if (!added) {
        return make_error(added.error().code,
                          fmt::format("projection {}: {}", declared.name, added.error().message));
      }
      spdlog::info("projection {}: key {}, reduce {}", declared.name,
                   declared.key == ProjectionKey::kSubject  ? "subject"
                   : declared.key == ProjectionKey::kStream ? "stream"
                                                            : declared.key_pointer,
                   projection_reduce_name(declared.reduce));
    }
    return ok_status();
  }

  // Rooms keep their snapshots in the toolkit database. Without API keys on
  // a loopback listener, rooms of apps without a secret are open: the
  // development mode of docs/api/rooms.md.
  Status start_rooms(const std::string& host) {
    rooms::RoomsConfig rooms;
    const RoomsOptions& options = config_.rooms;
    rooms.max_participants = options.max_participants;
    rooms.max_events_per_submit = options.max_events_per_submit;
    rooms.max_payload_bytes = options.max_payload_bytes;
    rooms.submits_per_second = options.submits_per_second;
    rooms.submit_burst = options.submit_burst;
    rooms.presence_timeout = std::chrono::milliseconds(options.presence_timeout_ms);
    rooms.snapshot_every_events = options.snapshot_every_events;
    rooms.snapshot_idle = std::chrono::milliseconds(options.snapshot_idle_ms);
    rooms.catch_up_events_max = options.catch_up_events_max;
    rooms.max_queued_frames = options.max_queued_frames;
    rooms.threads = options.threads;
    for (const RoomApp& app : config_.room_apps) {
      if (!app.signing_key.empty()) rooms.signing_keys[app.app] = app.signing_key;
    }
    rooms_ =
        std::make_unique<rooms::RoomService>(*store_, toolkit_db_.get(), *system_clock(), rooms);
    VL_RETURN_IF_ERROR(rooms_->start());
    const bool development_mode = !auth_.enabled() && is_loopback(host);
    rooms_api_ =
        std::make_unique<RoomsApi>(*rooms_, config_, auth_, development_mode, toolkit_db_.get());
    return ok_status();
  }

  Status setup_tls() {
    if (config_.tls_cert.empty()) return ok_status();
    tls_.emplace(ssl::context::tls_server);
    error_code error;
    tls_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    tls_->use_certificate_chain_file(config_.tls_cert, error);
    if (error) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("--tls-cert {}: {}", config_.tls_cert, error.message()));
    }
    tls_->use_private_key_file(config_.tls_key, ssl::context::pem, error);
    if (error) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("--tls-key {}: {}", config_.tls_key, error.message()));
    }
    return ok_status();
  }

  Status listen(const std::string& host, uint16_t port) {
    error_code error;
    net::ip::address address =
        net::ip::make_address(host == "localhost" ? "127.0.0.1" : host, error);
    if (error) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("--listen: \"{}\" is not an IP address", host));
    }
    tcp::endpoint endpoint(address, port);
    auto fail = [&](const char* what) {
      return make_error(ErrorCode::kIoError,
                        fmt::format("cannot {} {}: {}", what, config_.listen, error.message()));
    };
    if (acceptor_.open(endpoint.protocol(), error); error) return fail("open");
    if (acceptor_.set_option(net::socket_base::reuse_address(true), error); error) {
      return fail("configure");
    }
    if (acceptor_.bind(endpoint, error); error) return fail("bind");
    if (acceptor_.listen(net::socket_base::max_listen_connections, error); error) {
      return fail("listen on");
    }
    tcp::endpoint bound = acceptor_.local_endpoint();
    std::string shown = bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                                : bound.address().to_string();
    // Scripts wait for this exact line (README, docs/api/server.md).
    std::printf("listening on %s:%u\n", shown.c_str(), static_cast<unsigned>(bound.port()));
    std::fflush(stdout);
    return ok_status();
  }

  void do_accept() {
    acceptor_.async_accept(net::make_strand(ioc_), [this](error_code error, tcp::socket socket) {
      if (error) {
        if (error == net::error::operation_aborted || !acceptor_.is_open()) return;
        // Out of file descriptors and the like: keep accepting.
        spdlog::warn("accept failed: {}", error.message());
      } else {
        start_session(std::move(socket));
      }
      if (acceptor_.is_open()) do_accept();
    });
  }

  void start_session(tcp::socket socket) {
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    bool reject = metrics_.open_connections.load() >= static_cast<int64_t>(config_.max_connections);
    beast::tcp_stream stream(std::move(socket));
    if (tls_) {
      std::make_shared<HttpSession<beast::ssl_stream<beast::tcp_stream>>>(
          beast::ssl_stream<beast::tcp_stream>(std::move(stream), *tls_), *shared_, reject)
          ->run();
    } else {
      std::make_shared<HttpSession<beast::tcp_stream>>(std::move(stream), *shared_, reject)->run();
    }
  }

  // Stop accepting; let in-flight appends finish; close subscriptions with a
  // close frame; then let the io_context run dry.
  void begin_shutdown(int signal) {
    spdlog::info("vellum: signal {}: shutting down", signal);
    shared_->shutting_down.store(true);
    api_->set_ready(false);
    error_code ignored;
    acceptor_.close(ignored);
    shutdown_deadline_ =
        std::chrono::steady_clock::now() + std::chrono::seconds(config_.shutdown_grace_seconds);
    shutdown_timer_ = std::make_unique<net::steady_timer>(acceptor_.get_executor());
    wait_for_appends();
  }

  void wait_for_appends() {
    if (api_->appends_in_flight() > 0 && std::chrono::steady_clock::now() < shutdown_deadline_) {
      shutdown_timer_->expires_after(std::chrono::milliseconds(5));
      shutdown_timer_->async_wait([this](error_code) { wait_for_appends(); });
      return;
    }
    if (api_->appends_in_flight() > 0) {
      spdlog::warn("vellum: {} appends still in flight after the grace period",
                   api_->appends_in_flight());
    }
    std::list<std::function<void()>> closers;
    {
      std::lock_guard lock(shared_->sessions_mutex);
      closers = shared_->closers;
    }
    for (auto& close : closers) close();
    hub_->stop();
    // Rooms: close their sessions (1001), snapshot, wait for their appends.
    rooms_->stop();
    // Give close frames and last responses a moment to go out, then stop.
    shutdown_timer_->expires_after(std::chrono::milliseconds(200));
    shutdown_timer_->async_wait([this](error_code) { ioc_.stop(); });
  }

  ServerConfig config_;
  uint32_t threads_;
  Metrics metrics_;
  std::unique_ptr<Shared> shared_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  net::signal_set signals_;
  std::optional<ssl::context> tls_;
  Authenticator auth_;
  std::unique_ptr<Store> store_;
  // Declared after the store so that they are destroyed before it.
  std::unique_ptr<ToolkitDb> toolkit_db_;
  std::unique_ptr<Projections> projections_;
  std::unique_ptr<rooms::RoomService> rooms_;
  std::unique_ptr<RoomsApi> rooms_api_;
  std::unique_ptr<Hub> hub_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<net::steady_timer> shutdown_timer_;
  std::chrono::steady_clock::time_point shutdown_deadline_;
};

Server::Server(ServerConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Server::~Server() = default;
Status Server::start() { return impl_->start(); }
Status Server::run() { return impl_->run(); }

}  // namespace vellum::server
