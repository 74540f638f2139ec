// SPDX-License-Identifier: Apache-2.0
// vellum-fanout-bench: WebSocket fan-out of a running `vellum serve`.
//
// Opens N live subscriptions on one stream, waits until each has said
// caughtUp, then one writer appends events over HTTP at a fixed rate, each
// carrying the writer's steady-clock time. Every subscriber records
// append-start -> delivery latency for every event it receives. Prints one
// JSON line: events delivered per second (and the expected number), latency
// percentiles, and how many deliveries were missing.
//
// Both ends run in this process, so the latency uses one clock.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace beast = boost::beast;
namespace net = boost::asio;
namespace websocket = beast::websocket;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Config {
  std::string host = "127.0.0.1";
  std::string port = "2113";
  int subscribers = 1000;
  int rate = 1000;
  double seconds = 10;
  int io_threads = 1;
  std::string stream = "fanout-1";
};

// Latencies in microseconds, shared by all subscribers.
struct Recorder {
  std::mutex mutex;
  std::vector<uint32_t> micros;
  std::atomic<uint64_t> delivered{0};

  void add(int64_t latency_ns) {
    delivered.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mutex);
    micros.push_back(static_cast<uint32_t>(std::clamp<int64_t>(latency_ns / 1000, 0, UINT32_MAX)));
  }
};

// The writer's timestamp from a frame: the number after "t": in data.
int64_t sent_ns(const std::string& frame) {
  size_t at = frame.find("\"t\":");
  if (at == std::string::npos) return -1;
  return std::strtoll(frame.c_str() + at + 4, nullptr, 10);
}

class Subscriber : public std::enable_shared_from_this<Subscriber> {
 public:
  Subscriber(net::io_context& ioc, const Config& config, Recorder& recorder,
             std::atomic<int>& ready)
      : ws_(net::make_strand(ioc)), config_(config), recorder_(recorder), ready_(ready) {}

  void start(const tcp::resolver::results_type& endpoints) {
    beast::get_lowest_layer(ws_).async_connect(
        endpoints, [self = shared_from_this()](beast::error_code error, const tcp::endpoint&) {
          if (error) return self->fail("connect", error);
          beast::get_lowest_layer(self->ws_).expires_never();
          self->ws_.async_handshake(self->config_.host + ":" + self->config_.port,
                                    "/subscribe?stream=" + self->config_.stream,
                                    [self](beast::error_code handshake_error) {
                                      if (handshake_error) {
                                        return self->fail("handshake", handshake_error);
                                      }
                                      self->read();
                                    });
        });
  }

  void close() {
    net::post(ws_.get_executor(), [self = shared_from_this()] {
      self->ws_.async_close(websocket::close_code::normal, [self](beast::error_code) {});
    });
  }

 private:
  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code error, size_t) {
      if (error) return;
      int64_t received = now_ns();
      std::string frame = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      if (frame.starts_with("{\"caughtUp\"")) {
        self->ready_.fetch_add(1);
      } else if (int64_t sent = sent_ns(frame); sent > 0) {
        self->recorder_.add(received - sent);
      }
      self->read();
    });
  }

  void fail(const char* what, beast::error_code error) {
    std::fprintf(stderr, "subscriber %s: %s\n", what, error.message().c_str());
  }

  websocket::stream<beast::tcp_stream> ws_;
  const Config& config_;
  Recorder& recorder_;
  std::atomic<int>& ready_;
  beast::flat_buffer buffer_;
};

// Appends one event per tick over one keep-alive connection; returns the
// number of events appended.
uint64_t run_writer(const Config& config, const tcp::resolver::results_type& endpoints) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(endpoints);
  auto interval = std::chrono::nanoseconds(static_cast<int64_t>(1e9 / config.rate));
  auto next = std::chrono::steady_clock::now();
  auto end = next + std::chrono::nanoseconds(static_cast<int64_t>(config.seconds * 1e9));
  uint64_t appended = 0;
  beast::flat_buffer buffer;
  while (std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_until(next);
    next += interval;
    http::request<http::string_body> request{http::verb::post, "/streams/" + config.stream, 11};
    request.set(http::field::host, config.host);
    request.set(http::field::content_type, "application/json");
    request.body() = "[{\"type\":\"Tick\",\"data\":{\"t\":" + std::to_string(now_ns()) + "}}]";
    request.prepare_payload();
    http::write(stream, request);
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    if (response.result_int() != 200) {
      std::fprintf(stderr, "append failed: %u %s\n", response.result_int(),
                   response.body().c_str());
      break;
    }
    appended++;
  }
  return appended;
}

uint32_t percentile(std::vector<uint32_t>& values, double p) {
  if (values.empty()) return 0;
  size_t index = std::min(values.size() - 1, static_cast<size_t>(p * values.size()));
  std::nth_element(values.begin(), values.begin() + static_cast<ptrdiff_t>(index), values.end());
  return values[index];
}

}  // namespace

int main(int argc, char** argv) {
  Config config;
  CLI::App app{"vellum-fanout-bench: WebSocket fan-out latency of a running vellum serve"};
  app.add_option("--host", config.host);
  app.add_option("--port", config.port)->required();
  app.add_option("--subscribers", config.subscribers);
  app.add_option("--rate", config.rate, "events per second appended");
  app.add_option("--seconds", config.seconds);
  app.add_option("--io-threads", config.io_threads, "client threads receiving frames");
  app.add_option("--stream", config.stream);
  CLI11_PARSE(app, argc, argv);

  net::io_context ioc;
  auto work = net::make_work_guard(ioc);
  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(config.host, config.port);
  Recorder recorder;
  std::atomic<int> ready{0};
  std::vector<std::shared_ptr<Subscriber>> subscribers;
  for (int i = 0; i < config.subscribers; i++) {
    subscribers.push_back(std::make_shared<Subscriber>(ioc, config, recorder, ready));
    subscribers.back()->start(endpoints);
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < config.io_threads; i++) threads.emplace_back([&] { ioc.run(); });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (ready.load() < config.subscribers && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (ready.load() < config.subscribers) {
    std::fprintf(stderr, "only %d of %d subscribers connected\n", ready.load(), config.subscribers);
    return 1;
  }
  int64_t start = now_ns();
  uint64_t appended = run_writer(config, endpoints);
  double write_seconds = static_cast<double>(now_ns() - start) / 1e9;
  // Let the last deliveries arrive (bounded).
  uint64_t expected = appended * static_cast<uint64_t>(config.subscribers);
  auto drain = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (recorder.delivered.load() < expected && std::chrono::steady_clock::now() < drain) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  double total_seconds = static_cast<double>(now_ns() - start) / 1e9;
  for (auto& subscriber : subscribers) subscriber->close();
  work.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ioc.stop();
  for (auto& thread : threads) thread.join();

  std::vector<uint32_t> micros;
  {
    std::lock_guard lock(recorder.mutex);
    micros = recorder.micros;
  }
  uint64_t delivered = recorder.delivered.load();
  std::printf(
      "{\"scenario\":\"ws-fanout\",\"subscribers\":%d,\"rate\":%d,\"appended\":%llu,"
      "\"append_rate\":%.1f,\"delivered\":%llu,\"expected\":%llu,\"delivered_per_s\":%.1f,"
      "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f}\n",
      config.subscribers, config.rate, static_cast<unsigned long long>(appended),
      static_cast<double>(appended) / write_seconds, static_cast<unsigned long long>(delivered),
      static_cast<unsigned long long>(expected), static_cast<double>(delivered) / total_seconds,
      percentile(micros, 0.50) / 1e3, percentile(micros, 0.99) / 1e3,
      percentile(micros, 0.999) / 1e3, percentile(micros, 1.0) / 1e3);
  return delivered == expected ? 0 : 2;
}
