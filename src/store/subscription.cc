// SPDX-License-Identifier: Apache-2.0
// Subscriptions are pull-based cursors over the store's own reads. Catching up
// and going live are the same loop: read from the cursor; if nothing is there,
// wait for the published head to move. Because the cursor only ever advances
// past events it returned (or examined and filtered out), there is no gap and
// no duplicate at the switch, and a slow subscriber costs the writer nothing:
// it holds no queue, only its cursor.
#include "base/limits.h"
#include "store/store_impl.h"

namespace vellum::store {
namespace {

class SubscriptionImpl final : public Subscription {
 public:
  SubscriptionImpl(StoreImpl& store, SubscriptionOptions options, uint64_t cursor)
      : store_(store), options_(std::move(options)), cursor_(cursor) {}

  Result<SubscriptionBatch> next(uint32_t max_count, std::chrono::milliseconds timeout) override {
    if (max_count == 0 || max_count > limits::kReadEventsMax) {
      return make_error(ErrorCode::kInvalidArgument, "max_count must be 1..kReadEventsMax");
    }
    int64_t deadline = store_.clock().monotonic_ns() +
                       std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
    for (;;) {
      if (cancelled_.load() || store_.closing()) {
        return make_error(ErrorCode::kCancelled, "the subscription was cancelled");
      }
      uint64_t head = store_.head_position();
      VL_TRY(batch, options_.stream.empty() ? read_log(max_count) : read_stream(max_count));
      if (!batch.events.empty()) return batch;
      if (batch.caught_up) {
        uint64_t now = static_cast<uint64_t>(store_.clock().monotonic_ns());
        if (static_cast<int64_t>(now) >= deadline) return batch;
        store_.wait_for_head_past(head, deadline, cancelled_);
        if (store_.head_position() == head) {
          if (cancelled_.load() || store_.closing()) continue;
          return batch;  // timed out, caught up, nothing new
        }
      }
      // Not caught up and nothing matched yet (filtered scan): keep reading.
    }
  }

  void cancel() override {
    cancelled_.store(true);
    store_.wake_waiters();
  }

 private:
  Result<SubscriptionBatch> read_log(uint32_t max_count) {
    ReadAllOptions read;
    read.from_position = cursor_;
    read.max_count = max_count;
    read.filter = options_.filter;
    VL_TRY(scan, store_.scan_all(read));
    SubscriptionBatch batch;
    batch.events = std::move(scan.events);
    cursor_ = std::max(cursor_, scan.end_position);
    batch.caught_up = scan.reached_end;
    batch.next = cursor_;
    return batch;
  }

  Result<SubscriptionBatch> read_stream(uint32_t max_count) {
    ReadStreamOptions read;
    read.from_revision = cursor_;
    read.max_count = max_count;
    SubscriptionBatch batch;
    auto result = store_.read_stream(options_.stream, read);
    if (!result) {
      // A stream that does not exist (yet, or any more after a soft delete)
      // is waited for, not an error.
      if (result.error().code != ErrorCode::kNotFound) return make_error(result.error());
      batch.caught_up = true;
      batch.next = cursor_;
      return batch;
    }
    batch.events = std::move(result->events);
    if (!batch.events.empty()) cursor_ = batch.events.back().revision + 1;
    if (result->next_revision) cursor_ = std::max(cursor_, *result->next_revision);
    batch.caught_up = !result->next_revision.has_value();
    batch.next = cursor_;
    return batch;
  }

  StoreImpl& store_;
  const SubscriptionOptions options_;
  uint64_t cursor_;  // next revision (stream) or position (log)
  std::atomic<bool> cancelled_{false};
};

}  // namespace

Result<std::unique_ptr<Subscription>> StoreImpl::subscribe(const SubscriptionOptions& options) {
  uint64_t cursor = 0;
  if (!options.stream.empty()) {
    VL_RETURN_IF_ERROR(validate_stream_name(options.stream, true));
    if (!options.filter.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "a stream subscription takes no filter; subscribe to the log instead");
    }
    if (options.from) {
      cursor = *options.from;
    } else {
      auto info = stream_info(options.stream);
      if (info && info->last_revision != kNoRevision) {
        cursor = static_cast<uint64_t>(info->last_revision + 1);
      }
    }
  } else {
    cursor = options.from ? *options.from : head_position();
  }
  return std::unique_ptr<Subscription>(std::make_unique<SubscriptionImpl>(*this, options, cursor));
}

}  // namespace vellum::store
