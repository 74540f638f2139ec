// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the index value codecs (index/stream_state.h) on
// arbitrary bytes. Both decoders read bytes that come from RocksDB or from a
// `$metadata` event in the log, so they must never crash; and what they
// accept must survive an encode/decode round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "index/stream_state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto state = vellum::index::decode_stream_state(bytes);
  if (state) {
    auto again = vellum::index::decode_stream_state(vellum::index::encode_stream_state(*state));
    if (!again || again->stream_id != state->stream_id ||
        again->last_revision != state->last_revision ||
        again->last_position != state->last_position ||
        again->soft_deleted != state->soft_deleted || again->tombstoned != state->tombstoned ||
        !(again->metadata == state->metadata)) {
      __builtin_trap();
    }
  }
  auto record = vellum::index::decode_metadata_record(bytes);
  if (record) {
    auto again =
        vellum::index::decode_metadata_record(vellum::index::encode_metadata_record(*record));
    if (!again || !(again->metadata == record->metadata) ||
        again->soft_deleted != record->soft_deleted || again->tombstoned != record->tombstoned) {
      __builtin_trap();
    }
  }
  return 0;
}
