// SPDX-License-Identifier: Apache-2.0
// `vellum tail <stream> | --all`: prints the newest events (oldest of them
// first, like tail(1)) and, with -f, keeps printing new ones through a
// Store::subscribe subscription that starts exactly where the printed part
// ended, so no event is missed or repeated in between. With --url, -f long
// polls the stream (GET /streams/{s}?from=&waitMs=) or reads /all every
// 200 ms, from the same place. SIGINT and SIGTERM end the command with exit
// code 0.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include "base/limits.h"
#include "cli/backend.h"
#include "cli/cli_common.h"

namespace vellum::cli {
namespace {

constexpr uint32_t kFollowBatchEventsMax = 1000;
constexpr std::chrono::milliseconds kFollowWaitTimeout{1000};
// --url: how long one long poll of a stream may wait (well under the
// server's default max-wait-ms of 60 s), and the pause between reads of /all.
constexpr uint32_t kLongPollWaitMs = 20'000;
constexpr std::chrono::milliseconds kLogPollInterval{200};

struct TailOptions {
  std::string stream;
  bool all = false;
  std::vector<std::string> types;
  uint64_t count = 10;
  bool follow = false;
};

// Turns SIGINT/SIGTERM into Subscription::cancel(). The signals are blocked
// in every thread and taken by one sigwait() thread, which may call ordinary
// functions (a signal handler could not safely call cancel()).
class SignalWatcher {
 public:
  // REQUIRES: no other thread runs yet (the store's threads must inherit the
  // blocked mask, or the kernel could deliver the signal to one of them).
  static std::shared_ptr<SignalWatcher> start() {
    auto watcher = std::shared_ptr<SignalWatcher>(new SignalWatcher());
    sigemptyset(&watcher->signals_);
    sigaddset(&watcher->signals_, SIGINT);
    sigaddset(&watcher->signals_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &watcher->signals_, nullptr);
    // Detached and owning a reference: it may sit in sigwait() until exit.
    std::thread([watcher] { watcher->wait(); }).detach();
    return watcher;
  }

  // Cancels `subscription` on a signal (at once if one already came).
  // `subscription` must stay alive until unwatch().
  void watch(Subscription* subscription) {
    std::lock_guard lock(mutex_);
    target_ = subscription;
    if (stopped_) target_->cancel();
  }
  void unwatch() {
    std::lock_guard lock(mutex_);
    target_ = nullptr;
  }
  bool stopped() {
    std::lock_guard lock(mutex_);
    return stopped_;
  }

 private:
  SignalWatcher() = default;

  void wait() {
    int signal_number = 0;
    sigwait(&signals_, &signal_number);
    std::lock_guard lock(mutex_);
    stopped_ = true;
    if (target_) target_->cancel();
  }

  sigset_t signals_{};
  std::mutex mutex_;
  Subscription* target_ = nullptr;
  bool stopped_ = false;
};

using OrderedJson = nlohmann::ordered_json;

bool type_matches(const std::vector<std::string>& types, const std::string& type) {
  return types.empty() || std::find(types.begin(), types.end(), type) != types.end();
}

bool type_matches(const std::vector<std::string>& types, const OrderedJson& event) {
  auto type = event.find("type");
  return type != event.end() && type->is_string() &&
         type_matches(types, type->get_ref<const std::string&>());
}

uint64_t number_field(const OrderedJson& event, const char* key) {
  auto value = event.find(key);
  return value != event.end() && value->is_number_unsigned() ? value->get<uint64_t>() : 0;
}

// The newest `count` events of the log that match the filter, oldest first.
Result<std::vector<OrderedJson>> last_of_log(Backend& backend, const TailOptions& options,
                                             uint64_t head) {
  std::vector<OrderedJson> events;
  ReadAllOptions request;
  request.direction = Direction::kBackward;
  request.from_position = head - 1;
  request.filter.types = options.types;
  while (head > 0 && events.size() < options.count) {
    request.max_count = static_cast<uint32_t>(
        std::min<uint64_t>(options.count - events.size(), limits::kReadEventsMax));
    VL_TRY(page, backend.read_all(request));
    events.insert(events.end(), page.events.begin(), page.events.end());
    if (!page.next || *page.next == request.from_position) break;
    request.from_position = *page.next;
  }
  std::reverse(events.begin(), events.end());
  return events;
}

// The newest `count` events of the stream that match --type, oldest first.
// The type filter is applied here because stream reads take no filter.
Result<std::vector<OrderedJson>> last_of_stream(Backend& backend, const TailOptions& options,
                                                uint64_t last_revision) {
  std::vector<OrderedJson> events;
  ReadStreamOptions request;
  request.direction = Direction::kBackward;
  request.from_revision = last_revision;
  request.max_count = limits::kReadEventsMax;
  while (events.size() < options.count) {
    VL_TRY(page, backend.read_stream(options.stream, request));
    for (OrderedJson& event : page.events) {
      if (events.size() < options.count && type_matches(options.types, event)) {
        events.push_back(std::move(event));
      }
    }
    if (!page.next || *page.next == request.from_revision) break;
    request.from_revision = *page.next;
  }
  std::reverse(events.begin(), events.end());
  return events;
}

// Prints the newest events; returns where following must start to continue
// without a gap: the next revision (stream) or position (log).
Result<uint64_t> print_last(Backend& backend, const TailOptions& options) {
  std::vector<OrderedJson> events;
  uint64_t next = 0;
  if (options.all) {
    EventFilter filter;
    filter.types = options.types;
    VL_TRY(head, backend.head_position(filter));
    next = head;
    VL_TRY(found, last_of_log(backend, options, next));
    events = std::move(found);
  } else {
    Result<StreamInfo> info = backend.stream_info(options.stream);
    // With -f a stream that does not exist yet is simply waited for.
    if (!info && !(info.error().code == ErrorCode::kNotFound && options.follow)) {
      return make_error(info.error());
    }
    if (info && info->last_revision >= 0) {
      next = static_cast<uint64_t>(info->last_revision) + 1;
      Result<std::vector<OrderedJson>> found = last_of_stream(backend, options, next - 1);
      // A soft-deleted stream reads as not found; -f waits for it to return.
      if (!found && !(found.error().code == ErrorCode::kNotFound && options.follow)) {
        return make_error(found.error());
      }
      if (found) events = std::move(*found);
    }
  }
  for (const OrderedJson& event : events) print_json_line(event);
  std::fflush(stdout);
  return next;
}

int follow(Store& store, const TailOptions& options, uint64_t from, SignalWatcher& watcher) {
  SubscriptionOptions request;
  request.from = from;
  if (options.all) {
    request.filter.types = options.types;
  } else {
    request.stream = options.stream;
  }
  Result<std::unique_ptr<Subscription>> subscription = store.subscribe(request);
  if (!subscription) return report_error(subscription.error());
  watcher.watch(subscription->get());
  int code = kExitOk;
  for (;;) {
    Result<SubscriptionBatch> batch =
        (*subscription)->next(kFollowBatchEventsMax, kFollowWaitTimeout);
    if (!batch) {
      bool by_signal = batch.error().code == ErrorCode::kCancelled && watcher.stopped();
      if (!by_signal) code = report_error(batch.error());
      break;
    }
    for (const RecordedEvent& event : batch->events) {
      if (type_matches(options.types, event.type)) print_json_line(event_to_json(event));
    }
    std::fflush(stdout);
  }
  // The subscription is destroyed right after: the watcher must not hold it.
  watcher.unwatch();
  return code;
}

// One long poll of the stream; returns where the next one starts. A stream
// that does not exist (yet, or soft-deleted) is waited for, as by a
// subscription.
Result<uint64_t> poll_stream_once(RemoteBackend& remote, const TailOptions& options,
                                  uint64_t from) {
  Result<Page> page =
      remote.poll_stream(options.stream, from, kFollowBatchEventsMax, kLongPollWaitMs);
  if (!page && page.error().code == ErrorCode::kNotFound) {
    VL_RETURN_IF_ERROR(remote.http().pause(kLogPollInterval));
    return from;
  }
  if (!page) return make_error(page.error());
  for (const OrderedJson& event : page->events) {
    if (type_matches(options.types, event)) print_json_line(event);
  }
  std::fflush(stdout);
  return *page->next;
}

// One read of the log from `from`; the API has no long poll for /all, so a
// read that reached the end waits kLogPollInterval before the next.
Result<uint64_t> poll_all_once(RemoteBackend& remote, const TailOptions& options, uint64_t from) {
  ReadAllOptions request;
  request.from_position = from;
  request.max_count = kFollowBatchEventsMax;
  request.filter.types = options.types;
  VL_TRY(page, remote.read_all(request));
  for (const OrderedJson& event : page.events) print_json_line(event);
  std::fflush(stdout);
  if (page.next) return *page.next;
  uint64_t next = page.events.empty() ? from : number_field(page.events.back(), "position") + 1;
  VL_RETURN_IF_ERROR(remote.http().pause(kLogPollInterval));
  return next;
}

bool stopped_by_signal(RemoteBackend* remote, const Error& error) {
  return remote != nullptr && error.code == ErrorCode::kCancelled && remote->http().stopped();
}

int follow_remote(RemoteBackend& remote, const TailOptions& options, uint64_t from) {
  for (;;) {
    Result<uint64_t> next = options.all ? poll_all_once(remote, options, from)
                                        : poll_stream_once(remote, options, from);
    if (!next)
      return stopped_by_signal(&remote, next.error()) ? kExitOk : report_error(next.error());
    from = *next;
  }
}

int run_tail(const GlobalOptions& global, const TailOptions& options) {
  if (options.all == !options.stream.empty()) {
    return report_usage_error("tail needs either a stream or --all");
  }
  bool remote = !global.url.empty();
  // Before opening the store: its threads must inherit the blocked signals.
  // A server connection takes the signals through its own event loop.
  std::shared_ptr<SignalWatcher> watcher;
  if (options.follow && !remote) watcher = SignalWatcher::start();
  Result<std::unique_ptr<Backend>> backend = open_backend(global, false);
  if (!backend) return report_error(backend.error());
  RemoteBackend* server = (*backend)->remote();
  if (options.follow && server != nullptr) server->http().stop_on_signals();
  Result<uint64_t> next = print_last(**backend, options);
  if (!next) return stopped_by_signal(server, next.error()) ? kExitOk : report_error(next.error());
  if (!options.follow) return kExitOk;
  if (server != nullptr) return follow_remote(*server, options, *next);
  return follow(*(*backend)->store(), options, *next, *watcher);
}

}  // namespace

Command register_tail(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<TailOptions>();
  CLI::App* sub = app.add_subcommand("tail", "Print the newest events; -f follows new ones");
  sub->add_option("stream", options->stream, "Stream name (or use --all)");
  sub->add_flag("--all", options->all, "The whole log instead of one stream");
  sub->add_option("--type", options->types, "Only events of this type (repeatable)")
      ->allow_extra_args(false)
      ->delimiter(',');
  sub->add_option("-n,--count", options->count, "How many of the newest events to print")
      ->capture_default_str();
  sub->add_flag("-f,--follow", options->follow, "Keep printing new events until SIGINT/SIGTERM");
  return Command{sub, [&global, options] { return run_tail(global, *options); }};
}

}  // namespace vellum::cli
