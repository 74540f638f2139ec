// SPDX-License-Identifier: Apache-2.0
// StreamTable: the writer's view of every stream it may touch: last revision,
// deletion flags and metadata. The writer checks expected revisions against
// it and updates it as it builds each commit; the same apply() replays the
// log when the index is rebuilt, so live writes and recovery share one rule.
//
// Entries are loaded from the index on first use and cached. An entry is
// evicted only once everything it describes has been indexed, so a miss can
// always be answered from the index.
//
// Thread safety: none. Owned by the writer thread (or by reindex).
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "index/index.h"
#include "log/commit_record.h"

namespace vellum::store {

class StreamTable {
 public:
  StreamTable(index::Index& index, uint64_t next_stream_id, uint64_t entries_max)
      : index_(index), next_stream_id_(next_stream_id), entries_max_(entries_max) {}

  // The state of `name` (a new, empty state if the stream was never written).
  // Errors: kIoError/kDataLoss from the index.
  Result<index::StreamState*> get(std::string_view name);

  // Applies a commit's events: advances revisions and positions, assigns ids
  // to new streams, applies `$metadata` events to their target streams, and
  // clears soft deletion of streams that get new events. Returns each event's
  // stream id, in event order.
  Result<std::vector<uint64_t>> apply(const log::CommitView& commit);

  // The state of every stream touched since the last call.
  std::vector<std::pair<std::string, index::StreamState>> drain_touched();

  // Drops entries whose state is fully indexed, if the table is over its size.
  void evict_indexed(uint64_t indexed_position);

  uint64_t next_stream_id() const { return next_stream_id_; }
  size_t size() const { return entries_.size(); }

 private:
  Result<index::StreamState*> apply_metadata(const log::EventView& event, uint64_t position);
  void touch(std::string_view name, uint64_t position);

  index::Index& index_;
  uint64_t next_stream_id_;
  uint64_t entries_max_;
  struct Entry {
    index::StreamState state;
    uint64_t touched_position = 0;  // position of the newest event that changed it
    bool touched = false;           // changed since the last drain_touched()
    bool ever_touched = false;      // changed since it was loaded
  };
  std::unordered_map<std::string, Entry> entries_;
  std::vector<std::string> touched_;
};

}  // namespace vellum::store
