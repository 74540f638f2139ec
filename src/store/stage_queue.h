// SPDX-License-Identifier: Apache-2.0
// StageQueue: the bounded hand-off between two threads of the append
// pipeline (writer -> syncer -> indexer). The producer blocks when the queue
// holds `capacity` items (back-pressure); the consumer takes everything queued
// at once, which is what turns a stream of groups into one fsync or one index
// write.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

#include "base/assert.h"

namespace vellum::store {

template <class T>
class StageQueue {
 public:
  explicit StageQueue(size_t capacity) : capacity_(capacity) { VL_ASSERT(capacity > 0); }

  void push(T item) {
    {
      std::unique_lock lock(mutex_);
      space_.wait(lock, [&] { return items_.size() < capacity_; });
      items_.push_back(std::move(item));
    }
    ready_.notify_one();
  }

  // Waits until items are queued or the queue is closed; with a timeout,
  // returns early (possibly empty). Returns nullopt once closed and drained.
  std::optional<std::vector<T>> take_all(std::optional<std::chrono::milliseconds> timeout) {
    std::vector<T> taken;
    {
      std::unique_lock lock(mutex_);
      auto wake = [&] { return closed_ || !items_.empty(); };
      if (timeout) {
        ready_.wait_for(lock, *timeout, wake);
      } else {
        ready_.wait(lock, wake);
      }
      if (items_.empty() && closed_) return std::nullopt;
      while (!items_.empty()) {
        taken.push_back(std::move(items_.front()));
        items_.pop_front();
      }
    }
    space_.notify_all();
    return taken;
  }

  // No more pushes will come; the consumer drains what is left, then stops.
  void close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    ready_.notify_all();
  }

 private:
  const size_t capacity_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::condition_variable space_;
  std::deque<T> items_;
  bool closed_ = false;
};

}  // namespace vellum::store
