// SPDX-License-Identifier: Apache-2.0
// The full read-only verification of a log (see verify.h). It mirrors the
// recovery rules of log.cc but never writes: where Log::open would truncate a
// torn tail, verify_log reports it; where Log::open trusts a sealed segment's
// seal frame, verify_log reads every frame and recomputes the seal's fields.
#include "log/verify.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <optional>

#include "base/assert.h"
#include "base/crc32c.h"
#include "log/commit_record.h"
#include "log/log.h"
#include "log/record_format.h"

namespace vellum::log {
namespace {

constexpr std::string_view kSegmentPrefix = "segment-";
constexpr std::string_view kSegmentSuffix = ".vlm";
constexpr uint32_t kSegmentIndexDigits = 8;
// Progress is reported at most once per this many bytes, so a log of many
// small frames does not turn the callback into the bottleneck.
constexpr uint64_t kProgressStepBytes = uint64_t{1} << 20;

// The index in a segment file name ("segment-00000012.vlm" -> 12), or nullopt
// for any other name. Kept in step with Log::segment_path().
std::optional<uint64_t> segment_index_of(std::string_view name) {
  if (name.size() != kSegmentPrefix.size() + kSegmentIndexDigits + kSegmentSuffix.size() ||
      !name.starts_with(kSegmentPrefix) || !name.ends_with(kSegmentSuffix)) {
    return std::nullopt;
  }
  uint64_t index = 0;
  for (char c : name.substr(kSegmentPrefix.size(), kSegmentIndexDigits)) {
    if (c < '0' || c > '9') return std::nullopt;
    index = index * 10 + static_cast<uint64_t>(c - '0');
  }
  return index;
}

std::string segment_path(const std::string& dir, uint64_t index) {
  char name[32];
  std::snprintf(name, sizeof(name), "segment-%08" PRIu64 ".vlm", index);
  return dir + "/" + name;
}

Result<std::string> read_range(io::File& file, uint64_t offset, uint64_t size) {
  std::string bytes(size, '\0');
  VL_TRY(n, file.read_at(offset, std::as_writable_bytes(std::span(bytes))));
  bytes.resize(n);
  return bytes;
}

// The state of the hash chain and positions as verification walks the log.
// Unknown at the start of a log whose oldest segment does not start at
// position 0, and after damage: then the next record is taken as it is.
struct Chain {
  bool known = false;
  uint64_t next_position = 0;
  Digest last_hash{};
};

// Verifies one log directory; one instance per verify_log() call.
class Verifier {
 public:
  Verifier(io::FileSystem& fs, std::string dir,
           const std::function<void(uint64_t, uint64_t)>& progress)
      : fs_(fs), dir_(std::move(dir)), progress_(progress) {}

  Result<VerifyReport> run();

 private:
  // Per-segment scan state.
  struct Scan {
    uint64_t index = 0;
    std::string path;
    io::File* file = nullptr;
    uint64_t size = 0;
    bool newest = false;
    uint64_t first_position = 0;
    uint64_t records = 0;
    uint32_t crc = 0;  // crc32c of the bytes verified so far
    bool sealed = false;
  };
  enum class Next : uint8_t { kContinue, kStop };

  Status verify_segment(uint64_t index, bool newest);
  Result<bool> verify_header(Scan& scan);
  Result<Next> verify_frame(Scan& scan, uint64_t offset, const DecodedFrame& frame);
  Next verify_commit(Scan& scan, uint64_t offset, std::string_view payload);
  Next verify_seal(Scan& scan, uint64_t offset, uint64_t frame_bytes, std::string_view payload);
  Status report_bad_frame(Scan& scan, uint64_t offset, const char* what);
  void problem(const std::string& path, uint64_t offset, const std::string& what) {
    report_.problems.push_back(path + " at offset " + std::to_string(offset) + ": " + what);
  }
  void advance_progress(uint64_t bytes, bool force);

  io::FileSystem& fs_;
  const std::string dir_;
  const std::function<void(uint64_t, uint64_t)>& progress_;
  VerifyReport report_;
  Chain chain_;
  uint64_t bytes_done_ = 0;
  uint64_t bytes_reported_ = 0;
};

Result<VerifyReport> Verifier::run() {
  VL_TRY(exists, fs_.exists(dir_));
  if (!exists) return make_error(ErrorCode::kNotFound, "no log at " + dir_);
  VL_TRY(names, fs_.list(dir_));
  std::vector<uint64_t> indexes;
  for (const auto& name : names) {
    if (auto index = segment_index_of(name)) indexes.push_back(*index);
  }
  std::sort(indexes.begin(), indexes.end());
  for (uint64_t index : indexes) {
    VL_TRY(file, fs_.open(segment_path(dir_, index), io::OpenMode::kRead));
    VL_TRY(size, file->size());
    report_.bytes += size;
  }
  report_.segments = indexes.size();
  for (size_t i = 0; i < indexes.size(); i++) {
    if (i > 0 && indexes[i] != indexes[i - 1] + 1) {
      // Log::open refuses a gap; the chain cannot be followed across it.
      report_.problems.push_back("segment " + segment_path(dir_, indexes[i - 1] + 1) +
                                 " is missing");
      chain_.known = false;
    }
    VL_RETURN_IF_ERROR(verify_segment(indexes[i], i + 1 == indexes.size()));
  }
  advance_progress(0, true);
  report_.last_hash = chain_.last_hash;
  return std::move(report_);
}

void Verifier::advance_progress(uint64_t bytes, bool force) {
  bytes_done_ += bytes;
  if (!progress_) return;
  if (force || bytes_done_ - bytes_reported_ >= kProgressStepBytes) {
    bytes_reported_ = bytes_done_;
    progress_(bytes_done_, report_.bytes);
  }
}

Status Verifier::verify_segment(uint64_t index, bool newest) {
  VL_TRY(file, fs_.open(segment_path(dir_, index), io::OpenMode::kRead));
  Scan scan;
  scan.index = index;
  scan.path = segment_path(dir_, index);
  scan.file = file.get();
  scan.newest = newest;
  VL_TRY(size, file->size());
  scan.size = size;
  VL_TRY(header_ok, verify_header(scan));
  uint64_t offset = kSegmentHeaderSize;
  if (!header_ok) {
    chain_.known = false;
    advance_progress(size, false);
    return ok_status();
  }
  Next next = Next::kContinue;
  while (offset < scan.size && next == Next::kContinue) {
    uint64_t want = std::min<uint64_t>(kFrameHeaderSize, scan.size - offset);
    VL_TRY(head, read_range(*scan.file, offset, want));
    auto length = peek_frame_length(head);
    uint64_t frame_bytes = length ? frame_size(*length) : kFrameHeaderSize;
    VL_TRY(bytes, read_range(*scan.file, offset, std::min(frame_bytes, scan.size - offset)));
    VL_TRY(step, verify_frame(scan, offset, decode_frame(bytes)));
    next = step;
    if (next == Next::kContinue) {
      scan.crc = crc32c::extend(scan.crc, bytes.data(), bytes.size());
      offset += bytes.size();
    }
  }
  if (next == Next::kContinue && !scan.sealed && !newest) {
    problem(scan.path, scan.size, "sealed segment is missing its seal frame");
  }
  advance_progress(size, false);
  return ok_status();
}

// Returns false if the header is unusable (reported), true if frames follow.
Result<bool> Verifier::verify_header(Scan& scan) {
  VL_TRY(bytes, read_range(*scan.file, 0, kSegmentHeaderSize));
  if (bytes.size() < kSegmentHeaderSize) {
    problem(scan.path, 0,
            scan.newest ? "segment header is truncated, the segment would be recreated on open"
                        : "segment header is truncated");
    return false;
  }
  auto header = decode_segment_header(bytes);
  if (!header) {
    problem(scan.path, 0, header.error().message);
    return false;
  }
  if (header->segment_index != scan.index) {
    problem(scan.path, 16, "segment header names segment " + std::to_string(header->segment_index));
  }
  if (chain_.known && header->first_position != chain_.next_position) {
    problem(scan.path, 24,
            "segment does not continue the previous one: first_position " +
                std::to_string(header->first_position) + ", expected " +
                std::to_string(chain_.next_position));
  }
  if (!chain_.known && header->first_position == 0) {
    chain_.known = true;  // the very start of the log: no previous commit
    chain_.last_hash = Digest{};
  }
  chain_.next_position = header->first_position;
  scan.first_position = header->first_position;
  scan.crc = crc32c::value(bytes);
  return true;
}

// Damage at `offset`. In the newest segment this may be a torn tail, which
// Log::open truncates only if no valid frame follows it (as log.cc decides).
Status Verifier::report_bad_frame(Scan& scan, uint64_t offset, const char* what) {
  chain_.known = false;
  if (!scan.newest) {
    problem(scan.path, offset, what);
    return ok_status();
  }
  VL_TRY(clean_end, all_zero(*scan.file, offset, scan.size));
  if (clean_end) return ok_status();  // zero-filled space after the data: not damage
  for (uint64_t at = offset + kFrameAlignment; at + kFrameHeaderSize <= scan.size;
       at += kFrameAlignment) {
    VL_TRY(head, read_range(*scan.file, at, kFrameHeaderSize));
    auto length = peek_frame_length(head);
    if (!length || *length == 0 || at + frame_size(*length) > scan.size) continue;
    VL_TRY(bytes, read_range(*scan.file, at, frame_size(*length)));
    if (decode_frame(bytes).status == FrameStatus::kOk) {
      problem(scan.path, offset,
              std::string(what) + ", followed by a valid frame at offset " + std::to_string(at) +
                  " (Log::open refuses it)");
      return ok_status();
    }
  }
  report_.problems.push_back(scan.path + ": torn tail at offset " + std::to_string(offset) +
                             ", would be truncated on open (" + what + ")");
  return ok_status();
}

Result<Verifier::Next> Verifier::verify_frame(Scan& scan, uint64_t offset,
                                              const DecodedFrame& frame) {
  if (frame.status == FrameStatus::kIncomplete) {
    VL_RETURN_IF_ERROR(report_bad_frame(scan, offset, "frame is incomplete"));
    return Next::kStop;
  }
  if (frame.status == FrameStatus::kCorrupt) {
    VL_RETURN_IF_ERROR(report_bad_frame(scan, offset, "frame checksum or length mismatch"));
    return Next::kStop;
  }
  if (scan.sealed) {
    problem(scan.path, offset, "frame after the seal frame");
    return Next::kStop;
  }
  if (frame.type == FrameType::kCommit) return verify_commit(scan, offset, frame.payload);
  if (frame.type == FrameType::kSeal) {
    return verify_seal(scan, offset, frame.size_bytes, frame.payload);
  }
  if ((static_cast<uint8_t>(frame.type) & kFrameTypeSkippableBit) != 0) return Next::kContinue;
  problem(scan.path, offset,
          "unknown frame type " + std::to_string(static_cast<unsigned>(frame.type)));
  chain_.known = false;
  return Next::kStop;
}

// A record that breaks the chain is reported, then taken as the new start of
// the chain, so one bad link is reported once rather than for every record.
Verifier::Next Verifier::verify_commit(Scan& scan, uint64_t offset, std::string_view payload) {
  auto commit = decode_commit(payload, scan.path + " at offset " + std::to_string(offset));
  if (!commit) {
    report_.problems.push_back(commit.error().message);
    chain_.known = false;
    return Next::kStop;
  }
  const CommitHeader& header = commit->header;
  if (header.first_position != chain_.next_position) {
    problem(scan.path, offset,
            "commit does not continue the log's positions: first_position " +
                std::to_string(header.first_position) + ", expected " +
                std::to_string(chain_.next_position));
  }
  if (chain_.known && header.prev_hash != chain_.last_hash) {
    problem(scan.path, offset,
            "hash chain broken: prev_hash " + digest_hex(header.prev_hash) + ", expected " +
                digest_hex(chain_.last_hash));
  }
  chain_.known = true;
  chain_.last_hash = chain_hash(payload);
  chain_.next_position = header.first_position + header.event_count;
  scan.records++;
  report_.records++;
  report_.events += header.event_count;
  return Next::kContinue;
}

Verifier::Next Verifier::verify_seal(Scan& scan, uint64_t offset, uint64_t frame_bytes,
                                     std::string_view payload) {
  auto seal = decode_seal(payload);
  if (!seal) {
    problem(scan.path, offset, seal.error().message);
    chain_.known = false;
    return Next::kStop;
  }
  auto mismatch = [&](const char* field, const std::string& found, const std::string& want) {
    problem(scan.path, offset,
            std::string("seal frame ") + field + " is " + found + ", expected " + want);
  };
  if (seal->segment_index != scan.index) {
    mismatch("segment_index", std::to_string(seal->segment_index), std::to_string(scan.index));
  }
  if (seal->first_position != scan.first_position) {
    mismatch("first_position", std::to_string(seal->first_position),
             std::to_string(scan.first_position));
  }
  if (seal->next_position != chain_.next_position) {
    mismatch("next_position", std::to_string(seal->next_position),
             std::to_string(chain_.next_position));
  }
  if (seal->record_count != scan.records) {
    mismatch("record_count", std::to_string(seal->record_count), std::to_string(scan.records));
  }
  Digest hash{};
  std::memcpy(hash.data(), seal->last_hash.data(), hash.size());
  if (chain_.known && hash != chain_.last_hash) {
    mismatch("last_hash", digest_hex(hash), digest_hex(chain_.last_hash));
  }
  if (seal->segment_crc != scan.crc) {
    mismatch("segment_crc", std::to_string(seal->segment_crc), std::to_string(scan.crc));
  }
  scan.sealed = true;
  if (offset + frame_bytes != scan.size) {
    problem(scan.path, offset + frame_bytes, "bytes after the seal frame");
    return Next::kStop;
  }
  return Next::kContinue;
}

}  // namespace

Result<VerifyReport> verify_log(
    io::FileSystem& fs, const std::string& dir,
    const std::function<void(uint64_t bytes_done, uint64_t bytes_total)>& progress) {
  Verifier verifier(fs, dir, progress);
  return verifier.run();
}

}  // namespace vellum::log
