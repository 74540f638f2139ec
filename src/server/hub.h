// SPDX-License-Identifier: Apache-2.0
// The hub: one live subscription on the whole log, fanned out to every live
// WebSocket subscriber and long-poll waiter. Each event is serialized once
// and the same bytes are queued for every subscriber that wants it.
//
// Gap-free switch from catch-up to live (ARCHITECTURE.md, "Subscriptions"):
// a subscriber catches up by reading the store on its own; to go live it
// calls try_join(), which runs its final read *under the hub's lock*. While
// the lock is held the hub dispatches nothing, so every event is either in
// that read or in a later dispatch. Subscribers drop dispatched events below
// their own cursor, which removes the overlap.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "vellum/store.h"

#include "server/metrics.h"

namespace vellum::server {

// An event as the hub hands it out: the event and its WebSocket frame text
// ({"event": {...}}), shared by all subscribers.
struct HubEvent {
  std::shared_ptr<const RecordedEvent> event;
  std::shared_ptr<const std::string> frame;
};

class HubSubscriber {
 public:
  virtual ~HubSubscriber() = default;
  // Called on the hub thread, under the hub's lock, with each dispatched
  // batch in log order. Keep it short: filter and queue. Returns false when
  // the subscriber leaves the live set (its queue is full); the hub then
  // drops it and it catches up from the store again.
  virtual bool offer(const std::vector<HubEvent>& batch, uint64_t next_position) = 0;
  // How many dispatched events the subscriber has queued but not yet sent.
  virtual uint64_t backlog() const = 0;
  // Called under the hub's lock after `stream` was tombstoned (a tombstone is
  // not an event, so offer() never tells). Returns false when the subscriber
  // leaves the live set, as for offer().
  virtual bool stream_tombstoned(std::string_view stream) {
    (void)stream;
    return true;
  }
};

class Hub {
 public:
  Hub(Store& store, Metrics& metrics);
  ~Hub();

  // Subscribes to the log (live) and starts the dispatch thread.
  Status start();
  // Stops dispatching and drops every subscriber and waiter (without calling them).
  void stop();

  // Runs `final_read` under the hub's lock with the hub's next position; if
  // it returns true the subscriber is live from then on. Returns its result.
  bool try_join(const std::shared_ptr<HubSubscriber>& subscriber,
                const std::function<bool(uint64_t next_position)>& final_read);
  void leave(const HubSubscriber* subscriber);
  // Tells every live subscriber that `stream` was tombstoned.
  void stream_tombstoned(std::string_view stream);

  // Long-poll: `wake` runs once (on the hub thread, without the lock) when
  // an event of `stream` is dispatched. Returns an id for remove_waiter().
  uint64_t add_waiter(std::string stream, std::function<void()> wake);
  void remove_waiter(uint64_t id);

 private:
  void run();
  void dispatch(std::vector<RecordedEvent>&& events, uint64_t next);

  struct Waiter {
    std::string stream;
    std::function<void()> wake;
  };

  Store& store_;
  Metrics& metrics_;
  std::unique_ptr<Subscription> subscription_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};

  std::mutex mutex_;
  uint64_t next_position_ = 0;  // every event below this has been dispatched
  std::vector<std::shared_ptr<HubSubscriber>> live_;
  std::unordered_map<uint64_t, Waiter> waiters_;
  uint64_t next_waiter_id_ = 1;
};

}  // namespace vellum::server
