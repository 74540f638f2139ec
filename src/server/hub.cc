// SPDX-License-Identifier: Apache-2.0
#include "server/hub.h"

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "wire/codec.h"

namespace vellum::server {

namespace {
constexpr uint32_t kBatchEventsMax = 1024;
constexpr auto kPollTimeout = std::chrono::milliseconds(200);
}  // namespace

Hub::Hub(Store& store, Metrics& metrics) : store_(store), metrics_(metrics) {}

Hub::~Hub() { stop(); }

Status Hub::start() {
  SubscriptionOptions options;  // the whole log, live only
  VL_TRY(subscription, store_.subscribe(options));
  subscription_ = std::move(subscription);
  {
    std::lock_guard lock(mutex_);
    // Events below the head are covered by joiners' final reads (see hub.h).
    next_position_ = store_.head_position();
  }
  thread_ = std::thread([this] { run(); });
  return ok_status();
}

void Hub::stop() {
  if (stopping_.exchange(true)) return;
  if (subscription_) subscription_->cancel();
  if (thread_.joinable()) thread_.join();
  subscription_.reset();
  std::lock_guard lock(mutex_);
  live_.clear();
  waiters_.clear();
}

void Hub::run() {
  while (!stopping_.load()) {
    auto batch = subscription_->next(kBatchEventsMax, kPollTimeout);
    if (!batch) {
      if (batch.error().code == ErrorCode::kCancelled) return;
      // The log could not be read: keep serving (reads report the damage)
      // but say so loudly; retrying a damaged record would spin.
      spdlog::error("hub: the live subscription failed: {}", batch.error().message);
      return;
    }
    if (!batch->events.empty()) dispatch(std::move(batch->events), batch->next);
  }
}

void Hub::dispatch(std::vector<RecordedEvent>&& events, uint64_t next) {
  std::vector<std::function<void()>> wakes;
  bool skipped = false;
  // Waiters of a stream that has an event in the batch; under mutex_.
  auto take_waiters = [&](const auto& touches) {
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (touches(it->second.stream)) {
        wakes.push_back(std::move(it->second.wake));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
  };
  {
    // Nobody live: skip serializing frames no one would read (rooms and
    // plain appends keep the log busy without any subscriber). A subscriber
    // that joins later does so under this lock, after next_position_ moved.
    std::lock_guard lock(mutex_);
    if (live_.empty()) {
      next_position_ = next;
      take_waiters([&](const std::string& stream) {
        return std::any_of(events.begin(), events.end(),
                           [&](const RecordedEvent& event) { return event.stream == stream; });
      });
      skipped = true;
    }
  }
  if (skipped) {
    metrics_.subscriber_lag_events.store(0);
    for (auto& wake : wakes) wake();
    return;
  }
  std::vector<HubEvent> batch;
  batch.reserve(events.size());
  for (RecordedEvent& event : events) {
    auto shared = std::make_shared<const RecordedEvent>(std::move(event));
    auto frame = std::make_shared<const std::string>(
        "{\"event\":" + wire::event_to_json_text(*shared) + "}");
    batch.push_back(HubEvent{std::move(shared), std::move(frame)});
  }
  uint64_t worst_backlog = 0;
  {
    std::lock_guard lock(mutex_);
    std::erase_if(live_, [&](const std::shared_ptr<HubSubscriber>& subscriber) {
      bool keep = subscriber->offer(batch, next);
      if (keep) worst_backlog = std::max(worst_backlog, subscriber->backlog());
      return !keep;
    });
    next_position_ = next;
    take_waiters([&](const std::string& stream) {
      return std::any_of(batch.begin(), batch.end(), [&](const HubEvent& hub_event) {
        return hub_event.event->stream == stream;
      });
    });
  }
  metrics_.subscriber_lag_events.store(worst_backlog);
  for (auto& wake : wakes) wake();
}

bool Hub::try_join(const std::shared_ptr<HubSubscriber>& subscriber,
                   const std::function<bool(uint64_t next_position)>& final_read) {
  std::lock_guard lock(mutex_);
  if (stopping_.load()) return false;
  if (!final_read(next_position_)) return false;
  live_.push_back(subscriber);
  return true;
}

void Hub::leave(const HubSubscriber* subscriber) {
  std::lock_guard lock(mutex_);
  std::erase_if(live_, [&](const auto& live) { return live.get() == subscriber; });
}

void Hub::stream_tombstoned(std::string_view stream) {
  std::lock_guard lock(mutex_);
  std::erase_if(live_, [&](const std::shared_ptr<HubSubscriber>& subscriber) {
    return !subscriber->stream_tombstoned(stream);
  });
}

uint64_t Hub::add_waiter(std::string stream, std::function<void()> wake) {
  std::lock_guard lock(mutex_);
  uint64_t id = next_waiter_id_++;
  waiters_.emplace(id, Waiter{std::move(stream), std::move(wake)});
  return id;
}

void Hub::remove_waiter(uint64_t id) {
  std::lock_guard lock(mutex_);
  waiters_.erase(id);
}

}  // namespace vellum::server
