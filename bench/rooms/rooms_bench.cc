// SPDX-License-Identifier: Apache-2.0
// vellum-rooms-bench: latency and capacity of the rooms of a running
// `vellum serve` (docs/api/rooms.md, "Protocol"; issue #5's benchmark).
//
// --mode load: puts a schema, opens R rooms x P participants (one WebSocket
// each), waits until every participant is live, then every participant submits
// one event at a fixed rate, each carrying the sender's steady-clock time as
// clientTime. Every receiver (the sender included: the server broadcasts to the
// whole room) records receive time - clientTime for each event it gets. The
// server broadcasts only after the durable append, so the figure includes the
// fsync. Both ends run in this process, so one clock measures both.
// Completeness is checked, not assumed: every participant must receive every
// committed event of its room exactly once, in seq order, and every receiver
// and every acknowledgement must agree on which event holds which seq.
//
// --mode idle: opens empty rooms (join, then leave), then N idle participants,
// and reads the server's VmRSS (/proc/<pid>/status) after each step: memory per
// empty room, per room with a participant and per further connection. Then
// checks that every connection is still held by pinging each one.
//
// Prints one JSON line; exits 2 when the run is incomplete or had errors.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/resource.h>
#include <unistd.h>

namespace beast = boost::beast;
namespace net = boost::asio;
namespace websocket = beast::websocket;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Json = nlohmann::json;

namespace {

// The app every run uses; its schema is put at the start of each run.
constexpr const char* kApp = "bench";
// An lww register keyed per participant and a shared counter: each bench event
// touches both, so the reducer does the work of a typical small edit.
constexpr const char* kSchema = R"({
  "policies": {"/last/*": "lww", "/count": "counter"},
  "actions": {"bump": [
    {"op": "set", "path": "/last/{participant}", "value": "$payload.n"},
    {"op": "increment", "path": "/count"}
  ]}
})";
// Connections being set up at once: bounds the connect and join burst.
constexpr int kPendingJoinsMax = 256;
constexpr auto kJoinTimeout = std::chrono::seconds(120);
constexpr auto kDrainTimeout = std::chrono::seconds(15);
// Memory is read after the server has had this long to settle.
constexpr auto kSettle = std::chrono::seconds(2);

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Config {
  std::string host = "127.0.0.1";
  std::string port;
  std::string mode = "load";
  std::string label;
  std::string room_prefix = "r";
  int rooms = 100;
  int participants = 10;  // per room (load); in total (idle)
  double rate = 10;       // events per second per participant
  double seconds = 10;
  int io_threads = 2;
  int empty_rooms = 100;  // idle mode: rooms joined once and left
  double hold_seconds = 10;
  int server_pid = 0;  // for VmRSS and CPU time; 0 = not measured
};

// Errors seen anywhere, by kind ("ack:rate_limited", "close:4008", ...).
class ErrorTally {
 public:
  void add(const std::string& kind) {
    std::lock_guard lock(mutex_);
    counts_[kind]++;
  }
  Json to_json() {
    std::lock_guard lock(mutex_);
    return Json(counts_);
  }
  uint64_t total() {
    std::lock_guard lock(mutex_);
    uint64_t sum = 0;
    for (const auto& [kind, count] : counts_) sum += count;
    return sum;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, uint64_t> counts_;
};

// What the participants of one room agree on (they run on different strands):
// which event id holds each seq, and what was acknowledged.
class RoomLedger {
 public:
  // Returns false when another receiver or an ack saw a different id at `seq`.
  bool record(uint64_t seq, uint64_t id_hash) {
    std::lock_guard lock(mutex_);
    if (id_by_seq_.size() <= seq) id_by_seq_.resize(seq + 1, 0);
    if (id_by_seq_[seq] == 0) {
      id_by_seq_[seq] = id_hash;
      return true;
    }
    return id_by_seq_[seq] == id_hash;
  }
  bool acknowledge(uint64_t seq, uint64_t id_hash) {
    {
      std::lock_guard lock(mutex_);
      acked_events_++;
      acked_seq_max_ = std::max(acked_seq_max_, seq);
    }
    return record(seq, id_hash);
  }
  uint64_t acked_events() {
    std::lock_guard lock(mutex_);
    return acked_events_;
  }
  uint64_t acked_seq_max() {
    std::lock_guard lock(mutex_);
    return acked_seq_max_;
  }

 private:
  std::mutex mutex_;
  std::vector<uint64_t> id_by_seq_;  // 0 = not seen yet
  uint64_t acked_events_ = 0;
  uint64_t acked_seq_max_ = 0;
};

// Progress of all participants, polled by the main thread.
struct Progress {
  std::atomic<int> live{0};
  std::atomic<int> failed{0};  // never got live: refused, closed or unreachable
  std::atomic<int> closed{0};  // read loop ended, for whatever reason
  std::atomic<int> closed_unexpectedly{0};
  std::atomic<int> pongs{0};
  std::atomic<uint64_t> submitted{0};
  std::atomic<uint64_t> acked{0};  // events answered, with a seq or an error
};

uint64_t hash_id(const std::string& id) { return std::hash<std::string>{}(id) | 1; }

// One participant: one WebSocket on its own strand, so its handlers never run
// concurrently and its members need no lock (except what the main thread polls).
class Participant : public std::enable_shared_from_this<Participant> {
 public:
  Participant(net::io_context& ioc, const Config& config, std::string room, std::string name,
              RoomLedger& ledger, Progress& progress, ErrorTally& errors)
      : ws_(net::make_strand(ioc)),
        timer_(ws_.get_executor()),
        config_(config),
        room_(std::move(room)),
        name_(std::move(name)),
        ledger_(ledger),
        progress_(progress),
        errors_(errors),
        random_(std::random_device{}()) {}

  void start(const tcp::resolver::results_type& endpoints) {
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(30));
    beast::get_lowest_layer(ws_).async_connect(
        endpoints, [self = shared_from_this()](beast::error_code error, const tcp::endpoint&) {
          if (error) return self->fail_join("connect:" + error.message());
          beast::get_lowest_layer(self->ws_).expires_never();
          beast::get_lowest_layer(self->ws_).socket().set_option(tcp::no_delay(true));
          self->ws_.set_option(websocket::stream_base::timeout{
              std::chrono::seconds(30), websocket::stream_base::none(), false});
          std::string target = fmt::format("/rooms/{}/{}?participant={}&name={}", kApp, self->room_,
                                           self->name_, self->name_);
          self->ws_.async_handshake(
              self->config_.host + ":" + self->config_.port, target,
              [self](beast::error_code handshake_error) {
                if (handshake_error)
                  return self->fail_join("handshake:" + handshake_error.message());
                self->read();
              });
        });
  }

  // Submits one event every `interval` from `first` until `end` (steady ns).
  void start_submitting(int64_t first, int64_t end, int64_t interval) {
    net::post(ws_.get_executor(), [self = shared_from_this(), first, end, interval] {
      self->next_submit_ns_ = first;
      self->end_ns_ = end;
      self->interval_ns_ = interval;
      self->schedule_submit();
    });
  }

  void send_ping() {
    net::post(ws_.get_executor(), [self = shared_from_this()] { self->send(R"({"op":"ping"})"); });
  }

  void close() {
    net::post(ws_.get_executor(), [self = shared_from_this()] {
      self->closing_ = true;
      self->timer_.cancel();
      if (!self->ws_.is_open()) return;
      self->ws_.async_close(websocket::close_code::normal, [self](beast::error_code) {});
    });
  }

  const std::string& room() const { return room_; }
  uint64_t last_seq() const { return last_seq_.load(); }
  // Read after the io threads have stopped.
  uint64_t bench_events_received() const { return bench_events_received_; }
  uint64_t order_violations() const { return order_violations_; }
  std::vector<uint32_t>& latencies_us() { return latencies_us_; }

 private:
  void fail_join(const std::string& why) {
    errors_.add(why);
    progress_.failed++;
    progress_.closed++;
  }

  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code error, size_t) {
      if (error) return self->on_read_end(error);
      int64_t received_ns = now_ns();
      Json frame =
          Json::parse(static_cast<const char*>(self->buffer_.data().data()),
                      static_cast<const char*>(self->buffer_.data().data()) + self->buffer_.size(),
                      nullptr, /*allow_exceptions=*/false);
      self->buffer_.consume(self->buffer_.size());
      self->on_frame(frame, received_ns);
      self->read();
    });
  }

  void on_read_end(beast::error_code error) {
    progress_.closed++;
    if (!live_) progress_.failed++;
    if (closing_) return;
    progress_.closed_unexpectedly++;
    if (error == websocket::error::closed) {
      errors_.add(fmt::format("close:{}", ws_.reason().code));
    } else {
      errors_.add("read:" + error.message());
    }
  }

  void on_frame(const Json& frame, int64_t received_ns) {
    if (!frame.is_object()) return errors_.add("frame:unparseable");
    const std::string type = frame.value("type", "");
    if (frame.contains("clock") && frame["clock"].is_number_unsigned()) {
      room_clock_ = std::max(room_clock_, frame["clock"].get<uint64_t>());
    }
    if (type == "events") {
      for (const Json& event : frame["events"]) on_event(event, received_ns);
    } else if (type == "snapshot") {
      // The state as of `seq` (on join, or a reset): events continue after it.
      last_seq_ = frame.value("seq", uint64_t{0});
      if (live_) errors_.add("snapshot:" + frame.value("reason", std::string("while live")));
    } else if (type == "live") {
      if (frame.value("seq", uint64_t{0}) != last_seq_) errors_.add("live:seq differs");
      live_ = true;
      progress_.live++;
    } else if (type == "ack") {
      on_ack(frame);
    } else if (type == "error") {
      errors_.add("frame:" + frame["error"].value("code", std::string("?")));
    } else if (type == "pong") {
      progress_.pongs++;
    }
  }

  void on_event(const Json& event, int64_t received_ns) {
    uint64_t seq = event.value("seq", uint64_t{0});
    if (seq != last_seq_ + 1) {
      order_violations_++;
      errors_.add(seq <= last_seq_ ? "order:duplicate or backwards" : "order:gap");
    }
    if (seq > last_seq_) last_seq_ = seq;
    if (!ledger_.record(seq, hash_id(event.value("id", "")))) errors_.add("order:seq conflict");
    if (event.value("system", false)) return;
    bench_events_received_++;
    const Json& sent = event["clientTime"];
    if (!sent.is_number_integer()) return errors_.add("event:no clientTime");
    int64_t latency_ns = received_ns - sent.get<int64_t>();
    latencies_us_.push_back(
        static_cast<uint32_t>(std::clamp<int64_t>(latency_ns / 1000, 0, UINT32_MAX)));
  }

  void on_ack(const Json& frame) {
    for (const Json& result : frame["results"]) {
      progress_.acked++;
      if (result.contains("error")) {
        errors_.add("ack:" + result["error"].value("code", std::string("?")));
      } else if (!ledger_.acknowledge(result.value("seq", uint64_t{0}),
                                      hash_id(result.value("id", "")))) {
        errors_.add("order:ack seq conflict");
      }
    }
  }

  void schedule_submit() {
    if (closing_ || next_submit_ns_ >= end_ns_) return;
    timer_.expires_at(
        std::chrono::steady_clock::time_point(std::chrono::nanoseconds(next_submit_ns_)));
    timer_.async_wait([self = shared_from_this()](beast::error_code error) {
      if (error) return;
      self->submit_one();
      self->next_submit_ns_ += self->interval_ns_;
      self->schedule_submit();
    });
  }

  void submit_one() {
    // A client stamps max(its clock, last room clock seen) + 1 (docs/api/rooms.md).
    lamport_ = std::max(lamport_, room_clock_) + 1;
    submits_++;
    progress_.submitted++;
    send(fmt::format(R"({{"op":"submit","ref":{},"events":[{{"id":"{}","action":"bump",)"
                     R"("payload":{{"n":{}}},"lamport":{},"clientTime":{}}}]}})",
                     submits_, random_uuid(), submits_, lamport_, now_ns()));
  }

  // A random (version 4) UUID: ids only need to be unique.
  std::string random_uuid() {
    uint64_t high = (random_() & ~uint64_t{0xF000}) | 0x4000;
    uint64_t low = (random_() & ~(uint64_t{0xC} << 60)) | (uint64_t{0x8} << 60);
    return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", high >> 32, (high >> 16) & 0xFFFF,
                       high & 0xFFFF, low >> 48, low & 0xFFFFFFFFFFFF);
  }

  // Beast allows one write in flight: later frames wait in the outbox.
  void send(std::string text) {
    outbox_.push_back(std::move(text));
    if (outbox_.size() == 1) write_front();
  }
  void write_front() {
    ws_.text(true);
    ws_.async_write(net::buffer(outbox_.front()),
                    [self = shared_from_this()](beast::error_code error, size_t) {
                      if (error) return;  // the read loop reports the connection's end
                      self->outbox_.pop_front();
                      if (!self->outbox_.empty()) self->write_front();
                    });
  }

  websocket::stream<beast::tcp_stream> ws_;
  net::steady_timer timer_;
  const Config& config_;
  std::string room_;
  std::string name_;
  RoomLedger& ledger_;
  Progress& progress_;
  ErrorTally& errors_;
  std::mt19937_64 random_;
  beast::flat_buffer buffer_;
  std::deque<std::string> outbox_;
  bool live_ = false;
  bool closing_ = false;
  std::atomic<uint64_t> last_seq_{0};  // polled by the main thread while draining
  uint64_t room_clock_ = 0;
  uint64_t lamport_ = 0;
  uint64_t submits_ = 0;
  int64_t next_submit_ns_ = 0;
  int64_t end_ns_ = 0;
  int64_t interval_ns_ = 0;
  uint64_t bench_events_received_ = 0;
  uint64_t order_violations_ = 0;
  std::vector<uint32_t> latencies_us_;
};

// Raises the soft limit on open files to the hard limit: each connection is one.
void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) std::perror("setrlimit");
}

// The server's resident memory in KiB, or -1 when unknown.
int64_t server_rss_kib(int pid) {
  if (pid <= 0) return -1;
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::stoll(line.substr(6));
  }
  return -1;
}

// The server's user + system CPU seconds, or -1 when unknown.
double server_cpu_seconds(int pid) {
  if (pid <= 0) return -1;
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t after_name = text.rfind(')');  // the command name may hold spaces
  if (after_name == std::string::npos) return -1;
  std::istringstream fields(text.substr(after_name + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  // Fields 3.. of proc(5): utime and stime are the 14th and 15th.
  for (int index = 3; index <= 15 && fields >> field; index++) {
    if (index == 14) utime = std::stoull(field);
    if (index == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double own_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// PUT /apps/bench/schema; exits on failure (nothing can be measured without it).
void put_schema(const Config& config) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(tcp::resolver(ioc).resolve(config.host, config.port));
  http::request<http::string_body> request{http::verb::put, fmt::format("/apps/{}/schema", kApp),
                                           11};
  request.set(http::field::host, config.host);
  request.set(http::field::content_type, "application/json");
  request.body() = kSchema;
  request.prepare_payload();
  http::write(stream, request);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response);
  if (response.result_int() != 200) {
    fmt::print(stderr, "PUT /apps/{}/schema: {} {}\n", kApp, response.result_int(),
               response.body());
    std::exit(1);
  }
}

uint32_t percentile(std::vector<uint32_t>& values, double p) {
  if (values.empty()) return 0;
  size_t index = std::min(values.size() - 1, static_cast<size_t>(p * values.size()));
  std::nth_element(values.begin(), values.begin() + static_cast<ptrdiff_t>(index), values.end());
  return values[index];
}

template <typename Predicate>
bool wait_until(Predicate done, std::chrono::steady_clock::duration timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// The client side: io threads, participants and their shared bookkeeping.
struct Bench {
  explicit Bench(const Config& bench_config)
      : config(bench_config),
        work(net::make_work_guard(ioc)),
        endpoints(tcp::resolver(ioc).resolve(bench_config.host, bench_config.port)) {
    for (int i = 0; i < bench_config.io_threads; i++) threads.emplace_back([this] { ioc.run(); });
  }
  ~Bench() { stop(); }

  // Opens one participant per name in `room`, at most kPendingJoinsMax joining at
  // once; returns when all are live or failed (false on failures or timeout).
  bool open(const std::vector<std::pair<std::string, std::string>>& room_and_names) {
    int target = progress.live + progress.failed + static_cast<int>(room_and_names.size());
    for (const auto& [room, name] : room_and_names) {
      wait_until([&] { return pending_joins() < kPendingJoinsMax; }, kJoinTimeout);
      auto participant =
          std::make_shared<Participant>(ioc, config, room, name, ledger(room), progress, errors);
      participants.push_back(participant);
      started++;
      participant->start(endpoints);
    }
    bool settled =
        wait_until([&] { return progress.live + progress.failed >= target; }, kJoinTimeout);
    return settled && progress.failed == 0;
  }

  // Closes every participant opened so far and waits for their read loops to end.
  void close_all() {
    for (auto& participant : participants) participant->close();
    wait_until([&] { return progress.closed >= started; }, std::chrono::seconds(30));
  }

  void stop() {
    if (threads.empty()) return;
    work.reset();
    ioc.stop();
    for (auto& thread : threads) thread.join();
    threads.clear();
  }

  RoomLedger& ledger(const std::string& room) {
    auto& slot = ledgers[room];
    if (!slot) slot = std::make_unique<RoomLedger>();
    return *slot;
  }

  int pending_joins() const { return started - progress.live - progress.failed; }

  const Config& config;
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work;
  tcp::resolver::results_type endpoints;
  std::vector<std::thread> threads;
  std::map<std::string, std::unique_ptr<RoomLedger>> ledgers;
  std::vector<std::shared_ptr<Participant>> participants;
  Progress progress;
  ErrorTally errors;
  int started = 0;
};

std::string room_name(const Config& config, int index) {
  return fmt::format("{}{}", config.room_prefix, index);
}

// Completeness of a finished load run: every participant saw its room's
// events without a gap or repeat, up to the room's last seq, including every
// acknowledged bench event. Returns the number of participants that did not.
int count_incomplete(Bench& bench, uint64_t& expected_deliveries) {
  std::map<std::string, uint64_t> room_last_seq;
  for (auto& participant : bench.participants) {
    uint64_t& last = room_last_seq[participant->room()];
    last = std::max(last, participant->last_seq());
  }
  int incomplete = 0;
  expected_deliveries = 0;
  for (auto& participant : bench.participants) {
    RoomLedger& ledger = bench.ledger(participant->room());
    uint64_t committed = ledger.acked_events();
    expected_deliveries += committed;
    bool complete = participant->order_violations() == 0 &&
                    participant->last_seq() == room_last_seq[participant->room()] &&
                    participant->last_seq() >= ledger.acked_seq_max() &&
                    participant->bench_events_received() == committed;
    if (!complete) incomplete++;
  }
  return incomplete;
}

int report_load(const Config& config, Bench& bench, double elapsed, double client_cpu,
                double server_cpu) {
  uint64_t expected_deliveries = 0;
  int incomplete = count_incomplete(bench, expected_deliveries);
  std::vector<uint32_t> latencies;
  uint64_t delivered = 0;
  for (auto& participant : bench.participants) {
    delivered += participant->bench_events_received();
    auto& own = participant->latencies_us();
    latencies.insert(latencies.end(), own.begin(), own.end());
    own = {};
  }
  uint64_t acked_ok = 0;
  for (auto& [room, ledger] : bench.ledgers) acked_ok += ledger->acked_events();
  uint64_t submitted = bench.progress.submitted;
  Json errors = bench.errors.to_json();
  uint64_t error_count = bench.errors.total();
  bool ok = incomplete == 0 && error_count == 0 && acked_ok == submitted;
  Json row{{"scenario", "rooms-load"},
           {"label", config.label},
           {"rooms", config.rooms},
           {"participants", config.participants},
           {"rate_per_participant", config.rate},
           {"target_events_per_s", config.rate * config.rooms * config.participants},
           {"seconds", config.seconds},
           {"submitted", submitted},
           {"acked", acked_ok},
           {"acked_per_s", static_cast<double>(acked_ok) / config.seconds},
           {"delivered", delivered},
           {"expected_deliveries", expected_deliveries},
           {"delivered_per_s", static_cast<double>(delivered) / elapsed},
           {"incomplete_participants", incomplete},
           {"complete", incomplete == 0 && acked_ok == submitted},
           {"p50_ms", percentile(latencies, 0.50) / 1e3},
           {"p99_ms", percentile(latencies, 0.99) / 1e3},
           {"p999_ms", percentile(latencies, 0.999) / 1e3},
           {"max_ms", percentile(latencies, 1.0) / 1e3},
           {"client_cpu_s", client_cpu},
           {"server_cpu_s", server_cpu},
           {"errors", errors},
           {"ok", ok}};
  fmt::print("{}\n", row.dump());
  return ok ? 0 : 2;
}

int run_load(const Config& config) {
  put_schema(config);
  Bench bench(config);
  std::vector<std::pair<std::string, std::string>> names;
  for (int room = 0; room < config.rooms; room++) {
    for (int p = 0; p < config.participants; p++) {
      names.emplace_back(room_name(config, room), fmt::format("p{}", p));
    }
  }
  if (!bench.open(names)) {
    fmt::print(stderr, "only {} of {} participants live; errors: {}\n", bench.progress.live.load(),
               names.size(), bench.errors.to_json().dump());
    return 1;
  }
  // Every participant is live: from here, every committed event must reach all.
  auto interval = static_cast<int64_t>(1e9 / config.rate);
  int64_t start = now_ns() + 100'000'000;
  int64_t end = start + static_cast<int64_t>(config.seconds * 1e9);
  std::mt19937_64 spread(std::random_device{}());
  for (auto& participant : bench.participants) {
    int64_t offset = static_cast<int64_t>(spread() % static_cast<uint64_t>(interval));
    participant->start_submitting(start + offset, end, interval);
  }
  double cpu_start = own_cpu_seconds();
  double server_cpu_start = server_cpu_seconds(config.server_pid);
  std::this_thread::sleep_for(std::chrono::nanoseconds(end - now_ns()));
  // Let the last acks and deliveries arrive (bounded).
  auto drained = [&] {
    if (bench.progress.acked < bench.progress.submitted) return false;
    for (auto& participant : bench.participants) {
      if (participant->last_seq() < bench.ledger(participant->room()).acked_seq_max()) {
        return false;
      }
    }
    return true;
  };
  bool drained_in_time = wait_until(drained, kDrainTimeout);
  double elapsed = static_cast<double>(now_ns() - start) / 1e9;
  double client_cpu = own_cpu_seconds() - cpu_start;
  double server_cpu = server_cpu_seconds(config.server_pid) - server_cpu_start;
  if (!drained_in_time) bench.errors.add("drain:timeout");
  bench.close_all();
  bench.stop();
  return report_load(config, bench, elapsed, client_cpu, config.server_pid > 0 ? server_cpu : -1);
}

int64_t settled_rss_kib(const Config& config) {
  std::this_thread::sleep_for(kSettle);
  return server_rss_kib(config.server_pid);
}

// Memory per idle room and per idle connection, and whether all are held.
int run_idle(const Config& config) {
  put_schema(config);
  Bench bench(config);
  int64_t rss_start = settled_rss_kib(config);
  // Rooms with 0 participants: loaded by a join, then left.
  std::vector<std::pair<std::string, std::string>> names;
  for (int room = 0; room < config.empty_rooms; room++) {
    names.emplace_back(fmt::format("{}empty{}", config.room_prefix, room), "visitor");
  }
  bool opened = bench.open(names);
  bench.close_all();
  int64_t rss_empty_rooms = settled_rss_kib(config);
  // One participant in each room, then the rest spread over the same rooms.
  int per_room = std::max(1, config.participants / config.rooms);
  names.clear();
  for (int room = 0; room < config.rooms; room++) {
    names.emplace_back(room_name(config, room), "p0");
  }
  int live_before = bench.progress.live;
  opened = bench.open(names) && opened;
  int64_t rss_rooms = settled_rss_kib(config);
  names.clear();
  for (int p = 1; p < per_room; p++) {
    for (int room = 0; room < config.rooms; room++) {
      names.emplace_back(room_name(config, room), fmt::format("p{}", p));
    }
  }
  opened = bench.open(names) && opened;
  int64_t rss_all = settled_rss_kib(config);
  int connections = bench.progress.live - live_before;
  // Hold them, then check that each connection still answers.
  std::this_thread::sleep_for(std::chrono::duration<double>(config.hold_seconds));
  int pongs_before = bench.progress.pongs;
  for (size_t i = static_cast<size_t>(config.empty_rooms); i < bench.participants.size(); i++) {
    bench.participants[i]->send_ping();
  }
  wait_until([&] { return bench.progress.pongs - pongs_before >= connections; },
             std::chrono::seconds(30));
  int held = bench.progress.pongs - pongs_before;
  int64_t rss_held = server_rss_kib(config.server_pid);
  int closed_unexpectedly = bench.progress.closed_unexpectedly;
  bench.close_all();
  bench.stop();

  auto per = [](int64_t after, int64_t before, int count) -> Json {
    if (after < 0 || before < 0 || count <= 0) return nullptr;
    return static_cast<double>(after - before) / count;
  };
  int further = connections - config.rooms;
  int target = per_room * config.rooms;
  bool ok = opened && held == target && closed_unexpectedly == 0;
  Json row{{"scenario", "rooms-idle"},
           {"label", config.label},
           {"rooms", config.rooms},
           {"target_connections", target},
           {"connections", connections},
           {"held", held},
           {"closed_unexpectedly", closed_unexpectedly},
           {"empty_rooms", config.empty_rooms},
           {"hold_seconds", config.hold_seconds},
           {"rss_kib", {rss_start, rss_empty_rooms, rss_rooms, rss_all, rss_held}},
           {"kib_per_empty_room", per(rss_empty_rooms, rss_start, config.empty_rooms)},
           {"kib_per_room_with_one", per(rss_rooms, rss_empty_rooms, config.rooms)},
           {"kib_per_further_connection", per(rss_all, rss_rooms, further)},
           {"kib_per_connection_all_in", per(rss_all, rss_empty_rooms, connections)},
           {"errors", bench.errors.to_json()},
           {"ok", ok}};
  fmt::print("{}\n", row.dump());
  return ok ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  Config config;
  CLI::App app{"vellum-rooms-bench: rooms latency and idle capacity of a running vellum serve"};
  app.add_option("--host", config.host);
  app.add_option("--port", config.port)->required();
  app.add_option("--mode", config.mode, "load (latency under submits) or idle (capacity)")
      ->check(CLI::IsMember({"load", "idle"}));
  app.add_option("--label", config.label, "copied to the output, names the scenario");
  app.add_option("--room-prefix", config.room_prefix, "room names are <prefix><index>");
  app.add_option("--rooms", config.rooms);
  app.add_option("--participants", config.participants,
                 "per room (load) or in total over the rooms (idle)");
  app.add_option("--rate", config.rate, "events per second submitted by each participant");
  app.add_option("--seconds", config.seconds, "of submitting (load)");
  app.add_option("--io-threads", config.io_threads);
  app.add_option("--empty-rooms", config.empty_rooms, "rooms joined and left (idle)");
  app.add_option("--hold-seconds", config.hold_seconds, "idle connections held before checking");
  app.add_option("--server-pid", config.server_pid, "for the server's VmRSS and CPU time");
  CLI11_PARSE(app, argc, argv);
  if (config.rooms <= 0 || config.participants <= 0 || config.rate <= 0) {
    fmt::print(stderr, "--rooms, --participants and --rate must be positive\n");
    return 1;
  }
  raise_fd_limit();
  return config.mode == "load" ? run_load(config) : run_idle(config);
}
