// SPDX-License-Identifier: Apache-2.0
#include "store/stream_table.h"

#include "base/assert.h"

namespace vellum::store {

Result<index::StreamState*> StreamTable::get(std::string_view name) {
  auto it = entries_.find(std::string(name));
  if (it != entries_.end()) return &it->second.state;
  VL_TRY(stored, index_.get_stream(name));
  Entry entry;
  if (stored) entry.state = *stored;
  auto [inserted, ok] = entries_.emplace(std::string(name), std::move(entry));
  VL_ASSERT(ok);
  return &inserted->second.state;
}

void StreamTable::touch(std::string_view name, uint64_t position) {
  auto it = entries_.find(std::string(name));
  VL_ASSERT(it != entries_.end());
  it->second.touched_position = position;
  it->second.touched = true;
  it->second.ever_touched = true;
  touched_.emplace_back(name);
}

Result<index::StreamState*> StreamTable::apply_metadata(const log::EventView& event,
                                                        uint64_t position) {
  VL_ASSERT(event.stream.starts_with("$$"));
  VL_TRY(record, index::decode_metadata_record(event.data));
  VL_TRY(target, get(event.stream.substr(2)));
  target->metadata = record.metadata;
  target->tombstoned = record.tombstoned;
  target->soft_deleted = record.soft_deleted;
  if (target->stream_id == 0) target->stream_id = next_stream_id_++;
  touch(event.stream.substr(2), position);
  return target;
}

Result<std::vector<uint64_t>> StreamTable::apply(const log::CommitView& commit) {
  std::vector<uint64_t> stream_ids;
  stream_ids.reserve(commit.events.size());
  index::StreamState* state = nullptr;
  std::string_view state_name;
  for (size_t i = 0; i < commit.events.size(); i++) {
    const log::EventView& event = commit.events[i];
    if (state == nullptr || event.stream != state_name) {
      VL_TRY(found, get(event.stream));
      state = found;
      state_name = event.stream;
      if (state->stream_id == 0) state->stream_id = next_stream_id_++;
    }
    touch(event.stream, commit.header.first_position + i);
    VL_ASSERT(static_cast<int64_t>(event.revision) == state->last_revision + 1);
    state->last_revision = static_cast<int64_t>(event.revision);
    state->last_position = commit.header.first_position + i;
    state->soft_deleted = false;  // an append recreates a soft-deleted stream
    stream_ids.push_back(state->stream_id);
    if (event.type == index::kMetadataEventType && event.stream.starts_with("$$")) {
      VL_RETURN_IF_ERROR(apply_metadata(event, commit.header.first_position + i));
      // get() may have rehashed the map: look the current stream up again.
      state = nullptr;
    }
  }
  return stream_ids;
}

std::vector<std::pair<std::string, index::StreamState>> StreamTable::drain_touched() {
  std::vector<std::pair<std::string, index::StreamState>> drained;
  for (const auto& name : touched_) {
    auto it = entries_.find(name);
    VL_ASSERT(it != entries_.end());
    if (!it->second.touched) continue;  // already drained (a name may repeat)
    it->second.touched = false;
    drained.emplace_back(name, it->second.state);
  }
  touched_.clear();
  return drained;
}

void StreamTable::evict_indexed(uint64_t indexed_position) {
  if (entries_.size() <= entries_max_) return;
  VL_ASSERT(touched_.empty());
  for (auto it = entries_.begin(); it != entries_.end();) {
    // A state whose last event is indexed is also in the index: safe to drop.
    const Entry& entry = it->second;
    bool indexed = !entry.ever_touched ||  // looked up, never written: nothing to lose
                   (!entry.touched && entry.touched_position < indexed_position);
    it = indexed ? entries_.erase(it) : std::next(it);
  }
}

}  // namespace vellum::store
