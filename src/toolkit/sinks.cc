// SPDX-License-Identifier: Apache-2.0
// The two built-in projection sinks: an in-process callback (at-least-once)
// and a key-value read model in the ToolkitDb (exactly-once effect: a batch's
// changes and its checkpoint are one RocksDB write batch).
#include <utility>

#include "vellum/projection.h"

#include "base/assert.h"

namespace vellum {
namespace {

// Calls the user's handler for each event. Its checkpoint is written after
// the batch's handlers returned, so a crash between the two replays the batch:
// at-least-once.
class CallbackSink final : public ProjectionSink {
 public:
  CallbackSink(ToolkitDb* db, std::string name, std::function<Status(const EventRef&)> handle,
               std::function<Status()> reset)
      : db_(db), name_(std::move(name)), handle_(std::move(handle)), reset_(std::move(reset)) {
    VL_ASSERT(handle_ != nullptr);
  }

  std::string_view kind() const override { return "callback"; }
  bool exactly_once() const override { return false; }

  Result<uint64_t> load_checkpoint() override {
    if (db_ == nullptr) return memory_checkpoint_;
    VL_TRY(checkpoint, db_->checkpoint(name_));
    return checkpoint.value_or(0);
  }
  Status begin() override { return ok_status(); }
  Status apply(const EventRef& event) override { return handle_(event); }
  Status commit(uint64_t next) override {
    if (db_ == nullptr) {
      memory_checkpoint_ = next;
      return ok_status();
    }
    return db_->set_checkpoint(name_, next);
  }
  void abort() override {}  // the handlers' effects cannot be undone: at-least-once
  Status reset() override {
    // The checkpoint goes back first: a crash between the two then replays
    // everything onto the old model (duplicates, which at-least-once allows)
    // instead of leaving an emptied model behind a late checkpoint (a gap).
    memory_checkpoint_ = 0;
    if (db_ != nullptr) VL_RETURN_IF_ERROR(db_->set_checkpoint(name_, 0));
    if (reset_) VL_RETURN_IF_ERROR(reset_());
    return ok_status();
  }

 private:
  ToolkitDb* const db_;  // not owned; null = checkpoint in memory only
  const std::string name_;
  const std::function<Status(const EventRef&)> handle_;
  const std::function<Status()> reset_;
  // Used when db_ is null: survives stop/start of the projection, not the sink.
  uint64_t memory_checkpoint_ = 0;
};

// The handler's view of the read model during one batch: reads see the
// batch's own pending writes first, then what is committed.
class BatchKvView final : public KvView {
 public:
  BatchKvView(ToolkitDb& db, std::string_view name, KvBatch& batch)
      : db_(db), name_(name), batch_(batch) {}

  Result<std::optional<std::string>> get(std::string_view key) override {
    if (auto pending = batch_.pending(key)) return std::move(*pending);
    return db_.kv_get(name_, key);
  }
  void put(std::string_view key, std::string_view value) override { batch_.put(key, value); }
  void erase(std::string_view key) override { batch_.erase(key); }

 private:
  ToolkitDb& db_;
  std::string_view name_;
  KvBatch& batch_;
};

class KvSink final : public ProjectionSink {
 public:
  KvSink(ToolkitDb& db, std::string name, std::function<Status(const EventRef&, KvView&)> handle)
      : db_(db), name_(std::move(name)), handle_(std::move(handle)), view_(db_, name_, batch_) {
    VL_ASSERT(handle_ != nullptr);
  }

  std::string_view kind() const override { return "kv"; }
  bool exactly_once() const override { return true; }

  Result<uint64_t> load_checkpoint() override {
    VL_TRY(checkpoint, db_.checkpoint(name_));
    return checkpoint.value_or(0);
  }
  Status begin() override {
    // A batch left over means the engine skipped commit()/abort(): a bug.
    VL_ASSERT(batch_.empty());
    return ok_status();
  }
  Status apply(const EventRef& event) override { return handle_(event, view_); }
  Status commit(uint64_t next) override {
    Status status = db_.commit_kv(name_, batch_, next);
    batch_.clear();  // on failure too: the engine fails the projection, start() replays
    return status;
  }
  void abort() override { batch_.clear(); }
  Status reset() override {
    batch_.clear();
    return db_.kv_reset(name_);
  }

 private:
  ToolkitDb& db_;
  const std::string name_;
  const std::function<Status(const EventRef&, KvView&)> handle_;
  KvBatch batch_;  // the changes of the batch in hand
  BatchKvView view_;
};

}  // namespace

std::unique_ptr<ProjectionSink> make_callback_sink(ToolkitDb* db, std::string name,
                                                   std::function<Status(const EventRef&)> handle,
                                                   std::function<Status()> reset) {
  return std::make_unique<CallbackSink>(db, std::move(name), std::move(handle), std::move(reset));
}

std::unique_ptr<ProjectionSink> make_kv_sink(
    ToolkitDb& db, std::string name, std::function<Status(const EventRef&, KvView&)> handle) {
  return std::make_unique<KvSink>(db, std::move(name), std::move(handle));
}

}  // namespace vellum
