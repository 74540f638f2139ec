// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: Log::open (recovery) on a newest segment whose header is
// valid and whose body is arbitrary. Recovery must return OK (possibly after
// cutting a torn tail) or an error; it must never crash, assert or hang, and
// a log it accepts must be readable and writable.
//
// Input: byte 0 selects the mode. Even: the rest is the raw segment body.
// Odd: the rest is a list of chunks `kind u8 | length u16 | bytes`, each
// appended as a valid frame (kind 0 commit, 1 seal, 2 skippable 0x81,
// 3 unknown type 5) or, for other kinds, as raw bytes. Valid CRCs get the
// fuzzer past decode_frame into the commit, chain and seal checks.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "io/mem_file_system.h"
#include "log/log.h"
#include "log/record_format.h"

namespace {

std::string framed_body(std::string_view input) {
  using vellum::log::FrameType;
  std::string body;
  size_t i = 0;
  while (i + 3 <= input.size()) {
    auto kind = static_cast<uint8_t>(input[i]);
    size_t length = static_cast<uint8_t>(input[i + 1]) |
                    (static_cast<size_t>(static_cast<uint8_t>(input[i + 2])) << 8);
    i += 3;
    std::string_view piece = input.substr(i, length);
    i += piece.size();
    switch (kind % 8) {
      case 0:
        vellum::log::append_frame(body, FrameType::kCommit, piece);
        break;
      case 1:
        vellum::log::append_frame(body, FrameType::kSeal, piece);
        break;
      case 2:
        vellum::log::append_frame(body, static_cast<FrameType>(0x81), piece);
        break;
      case 3:
        vellum::log::append_frame(body, static_cast<FrameType>(5), piece);
        break;
      default:
        body.append(piece);
        break;
    }
  }
  return body;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  vellum::io::MemFileSystem fs;
  vellum::SimClock clock;
  if (!fs.create_dirs("/log")) return 0;
  std::string segment = vellum::log::encode_segment_header(vellum::log::SegmentHeader{});
  segment.append((data[0] & 1) != 0 ? framed_body(input) : std::string(input));
  fs.set_contents("/log/segment-00000000.vlm", segment);
  auto log = vellum::log::Log::open(fs, "/log", vellum::log::LogOptions{4096, false}, clock);
  if (!log) return 0;
  auto& opened = **log;
  (void)opened.scan(opened.begin(), opened.written_end(),
                    [&](vellum::log::RecordLocation location, std::string_view) {
                      return opened.read_commit(location).has_value()
                                 ? vellum::ok_status()
                                 : vellum::make_error(vellum::ErrorCode::kInternal, "unreadable");
                    });
  return 0;
}
