// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the segment codecs on arbitrary bytes. decode_frame,
// decode_commit, decode_seal and decode_segment_header read bytes from disk,
// so no input may crash them, trip an assertion or read out of bounds; each
// either decodes or reports an error.
//
// Random bytes almost never carry a valid CRC, which would leave everything
// behind decode_frame unexplored. So an input whose first byte is odd is
// wrapped in a valid frame first (append_frame), and the decoders run on the
// payload that decode_frame hands back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "log/commit_record.h"
#include "log/record_format.h"

namespace {

void decode_everything(std::string_view bytes) {
  (void)vellum::log::decode_segment_header(bytes);
  (void)vellum::log::decode_seal(bytes);
  auto commit = vellum::log::decode_commit(bytes, "fuzz");
  if (commit) {
    for (const auto& event : commit->events) {
      (void)vellum::log::to_recorded_event(event, commit->header.first_position, 0);
    }
    (void)vellum::log::chain_hash(bytes);
  }
}

// Walks frames the way recovery does, decoding each valid one.
void walk_frames(std::string_view bytes) {
  size_t offset = 0;
  while (offset < bytes.size()) {
    vellum::log::DecodedFrame frame = vellum::log::decode_frame(bytes.substr(offset));
    if (frame.status != vellum::log::FrameStatus::kOk) return;
    decode_everything(frame.payload);
    offset += frame.size_bytes;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  decode_everything(bytes);
  (void)vellum::log::peek_frame_length(bytes);
  walk_frames(bytes);
  if (size > 1 && (data[0] & 1) != 0) {
    std::string framed;
    auto type = static_cast<vellum::log::FrameType>(data[0] >> 1);
    vellum::log::append_frame(framed, type, bytes.substr(1));
    walk_frames(framed);
  }
  return 0;
}
