// SPDX-License-Identifier: Apache-2.0
// Segment set, recovery and group writes. The recovery rules implemented here
// are written down in docs/formats/segment.md ("Recovery"): a torn frame at
// the tail of the newest segment is truncated only if no valid frame follows
// it; any other damage is refused with kDataLoss naming file and offset.
#include "log/log.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "base/assert.h"
#include "base/coding.h"
#include "base/crc32c.h"
#include "log/commit_record.h"

namespace vellum::log {
namespace {

constexpr const char* kSegmentPrefix = "segment-";
constexpr const char* kSegmentSuffix = ".vlm";
constexpr uint64_t kScanBufferBytes = 1u << 20;
constexpr uint64_t kSealFrameSize = frame_size(kSealPayloadSize);
constexpr uint32_t kPrevHashOffset = 16;  // in the commit header
constexpr uint32_t kReadAheadBytes = 4096;

std::optional<uint64_t> parse_segment_name(const std::string& name) {
  size_t prefix = std::strlen(kSegmentPrefix);
  size_t suffix = std::strlen(kSegmentSuffix);
  if (name.size() != prefix + 8 + suffix || name.compare(0, prefix, kSegmentPrefix) != 0 ||
      name.compare(name.size() - suffix, suffix, kSegmentSuffix) != 0) {
    return std::nullopt;
  }
  uint64_t index = 0;
  for (size_t i = prefix; i < prefix + 8; i++) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    index = index * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return index;
}

std::span<const std::byte> as_bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

tl::unexpected<Error> data_loss(const std::string& path, uint64_t offset, const std::string& what) {
  return make_error(ErrorCode::kDataLoss,
                    path + " at offset " + std::to_string(offset) + ": " + what);
}

// An error from decoding a segment header, with file and offset added. The
// code is kept: kFailedPrecondition (a newer format) must not become kDataLoss.
tl::unexpected<Error> header_error(const std::string& path, Error error) {
  error.message = path + " at offset 0: " + error.message;
  return make_error(std::move(error));
}

// Reads a file's frames in order through a buffer.
class FrameScanner {
 public:
  FrameScanner(io::File& file, uint64_t offset, uint64_t end)
      : file_(file), offset_(offset), end_(end) {}

  // Returns the frame at offset(); its payload is valid until the next call.
  Result<DecodedFrame> next() {
    VL_TRY(frame, try_decode());
    if (frame.status == FrameStatus::kIncomplete && buffered() < end_ - offset_) {
      VL_RETURN_IF_ERROR(refill(frame_need()));
      return try_decode();
    }
    return frame;
  }
  void advance(uint64_t size) {
    offset_ += size;
    buffer_start_ += size;
  }
  uint64_t offset() const { return offset_; }
  bool at_end() const { return offset_ >= end_; }

 private:
  uint64_t buffered() const { return buffer_.size() - buffer_start_; }
  uint64_t frame_need() const {
    auto length = peek_frame_length(std::string_view(buffer_).substr(buffer_start_));
    return length ? std::max<uint64_t>(frame_size(*length), kScanBufferBytes) : kScanBufferBytes;
  }
  Result<DecodedFrame> try_decode() {
    if (buffered() < kFrameHeaderSize && buffered() < end_ - offset_) {
      VL_RETURN_IF_ERROR(refill(kScanBufferBytes));
    }
    uint64_t available = std::min(buffered(), end_ - offset_);
    return decode_frame(std::string_view(buffer_).substr(buffer_start_, available));
  }
  Status refill(uint64_t want) {
    buffer_.erase(0, buffer_start_);
    buffer_start_ = 0;
    uint64_t have = buffer_.size();
    uint64_t target = std::min(std::max(want, have), end_ - offset_);
    if (target <= have) return ok_status();
    buffer_.resize(target);
    auto span = std::as_writable_bytes(std::span(buffer_.data() + have, target - have));
    VL_TRY(n, file_.read_at(offset_ + have, span));
    buffer_.resize(have + n);
    return ok_status();
  }

  io::File& file_;
  uint64_t offset_;
  uint64_t end_;
  std::string buffer_;
  uint64_t buffer_start_ = 0;
};

}  // namespace

struct Log::Segment {
  uint64_t index = 0;
  uint64_t first_position = 0;
  std::string path;
  std::unique_ptr<io::File> file;
  std::atomic<bool> sealed{false};
  std::atomic<uint64_t> size_bytes{0};  // for sealed segments
};

Log::Log(io::FileSystem& fs, std::string dir, LogOptions options, Clock& clock)
    : fs_(fs), dir_(std::move(dir)), options_(options), clock_(clock) {}

Log::~Log() = default;

std::string Log::segment_path(uint64_t index) const {
  char name[32];
  std::snprintf(name, sizeof(name), "%s%08" PRIu64 "%s", kSegmentPrefix, index, kSegmentSuffix);
  return dir_ + "/" + name;
}

Result<std::unique_ptr<Log>> Log::open(io::FileSystem& fs, const std::string& dir,
                                       const LogOptions& options, Clock& clock) {
  if (options.segment_size_bytes < 4096) {
    return make_error(ErrorCode::kInvalidArgument, "segment_size_bytes must be at least 4096");
  }
  VL_TRY(dir_exists, fs.exists(dir));
  if (!dir_exists) {
    if (!options.create_if_missing) return make_error(ErrorCode::kNotFound, "no log at " + dir);
    VL_RETURN_IF_ERROR(fs.create_dirs(dir));
  }
  std::unique_ptr<Log> log(new Log(fs, dir, options, clock));
  VL_RETURN_IF_ERROR(log->recover());
  return log;
}

Status Log::recover() {
  VL_TRY(names, fs_.list(dir_));
  std::vector<uint64_t> indexes;
  for (const auto& name : names) {
    if (auto index = parse_segment_name(name)) indexes.push_back(*index);
  }
  std::sort(indexes.begin(), indexes.end());
  if (indexes.empty()) {
    // A new store: choose its tag. Any well-mixed varying bits will do; it
    // needs to differ between stores, not to be secret.
    uint64_t seed = static_cast<uint64_t>(clock_.now_unix_ns()) ^
                    static_cast<uint64_t>(clock_.monotonic_ns()) * 0x9e3779b97f4a7c15ull ^
                    reinterpret_cast<uintptr_t>(this);
    seed ^= seed >> 31;
    store_tag_ = static_cast<uint32_t>(seed * 0xbf58476d1ce4e5b9ull >> 32);
    VL_RETURN_IF_ERROR(create_segment(0, 0));
    recovered_ = LogTail{0, Digest{}, {0, kSegmentHeaderSize}, 0, 0};
    return ok_status();
  }
  for (size_t i = 0; i < indexes.size(); i++) {
    if (indexes[i] != indexes[0] + i) {
      return make_error(ErrorCode::kDataLoss,
                        "segment " + segment_path(indexes[0] + i) + " is missing");
    }
  }
  uint64_t expected_first = UINT64_MAX;  // unknown for the oldest segment
  for (size_t i = 0; i < indexes.size(); i++) {
    auto segment = std::make_shared<Segment>();
    segment->index = indexes[i];
    segment->path = segment_path(indexes[i]);
    bool last = i + 1 == indexes.size();
    VL_TRY(file, fs_.open(segment->path, last ? io::OpenMode::kReadWrite : io::OpenMode::kRead));
    segment->file = std::move(file);
    segments_[segment->index] = segment;
    if (!last) {
      VL_RETURN_IF_ERROR(recover_sealed(*segment, expected_first));
      expected_first = next_position_;
    } else {
      VL_RETURN_IF_ERROR(recover_active(*segment));
    }
  }
  return ok_status();
}

// A sealed segment is checked cheaply on open (header and seal frame); its
// frames are verified when read, and in full by `vellum verify`.
Status Log::recover_sealed(Segment& segment, uint64_t expected_first_position) {
  std::string header_bytes(kSegmentHeaderSize, '\0');
  VL_TRY(n, segment.file->read_at(0, std::as_writable_bytes(std::span(header_bytes))));
  if (n < kSegmentHeaderSize) return data_loss(segment.path, 0, "segment header is truncated");
  auto header = decode_segment_header(header_bytes);
  if (!header) return header_error(segment.path, header.error());
  VL_TRY(size, segment.file->size());
  if (size < kSegmentHeaderSize + kSealFrameSize) {
    return data_loss(segment.path, size, "sealed segment is missing its seal frame");
  }
  std::string seal_bytes(kSealFrameSize, '\0');
  uint64_t seal_offset = size - kSealFrameSize;
  VL_RETURN_IF_ERROR(
      segment.file->read_at(seal_offset, std::as_writable_bytes(std::span(seal_bytes))));
  DecodedFrame frame = decode_frame(seal_bytes);
  if (frame.status != FrameStatus::kOk || frame.type != FrameType::kSeal) {
    return data_loss(segment.path, seal_offset, "bad seal frame in a sealed segment");
  }
  auto seal = decode_seal(frame.payload);
  if (!seal) return data_loss(segment.path, seal_offset, seal.error().message);
  bool continuous =
      expected_first_position == UINT64_MAX || header->first_position == expected_first_position;
  if (!continuous || seal->first_position != header->first_position ||
      seal->segment_index != segment.index || header->segment_index != segment.index) {
    return data_loss(segment.path, 0, "segment does not continue the previous one");
  }
  segment.first_position = header->first_position;
  store_tag_ = header->store_tag;
  segment.sealed = true;
  segment.size_bytes = size;
  next_position_ = seal->next_position;
  std::memcpy(last_hash_.data(), seal->last_hash.data(), 32);
  return ok_status();
}

namespace {}  // namespace

Result<bool> all_zero(io::File& file, uint64_t from, uint64_t end) {
  std::string chunk;
  for (uint64_t offset = from; offset < end; offset += kScanBufferBytes) {
    chunk.resize(std::min<uint64_t>(kScanBufferBytes, end - offset));
    VL_TRY(n, file.read_at(offset, std::as_writable_bytes(std::span(chunk))));
    if (n < chunk.size()) return false;
    if (chunk.find_first_not_of('\0') != std::string::npos) return false;
  }
  return true;
}

namespace {

// True if a valid frame starts at any aligned offset in (from, end): then the
// damage at `from` is not a torn tail but corruption in the middle. Reads the
// region in large chunks: after a crash it may be megabytes of zeros.
Result<bool> valid_frame_follows(io::File& file, uint64_t from, uint64_t end) {
  std::string chunk;
  for (uint64_t base = from + kFrameAlignment; base + kFrameHeaderSize <= end;
       base += kScanBufferBytes) {
    chunk.resize(std::min<uint64_t>(kScanBufferBytes + kFrameHeaderSize, end - base));
    VL_TRY(n, file.read_at(base, std::as_writable_bytes(std::span(chunk))));
    chunk.resize(n);
    for (uint64_t at = 0; at < kScanBufferBytes && at + kFrameHeaderSize <= chunk.size();
         at += kFrameAlignment) {
      auto length = peek_frame_length(std::string_view(chunk).substr(at, kFrameHeaderSize));
      if (!length || *length == 0 || base + at + frame_size(*length) > end) continue;
      std::string frame_bytes(frame_size(*length), '\0');
      auto target = std::as_writable_bytes(std::span(frame_bytes));
      VL_RETURN_IF_ERROR(file.read_at(base + at, target));
      if (decode_frame(frame_bytes).status == FrameStatus::kOk) return true;
    }
  }
  return false;
}

// The running CRC of a segment is needed only to seal it: the CRC of its
// first `size` bytes.
Result<uint32_t> file_crc(io::File& file, uint64_t size) {
  uint32_t crc = 0;
  std::string chunk(kScanBufferBytes, '\0');
  for (uint64_t offset = 0; offset < size; offset += kScanBufferBytes) {
    uint64_t length = std::min<uint64_t>(kScanBufferBytes, size - offset);
    auto target = std::as_writable_bytes(std::span(chunk.data(), length));
    VL_RETURN_IF_ERROR(file.read_at(offset, target));
    crc = crc32c::extend(crc, chunk.data(), length);
  }
  return crc;
}

// A bad frame at `offset` of the newest segment: a torn tail, cut off, if no
// valid frame follows it; otherwise damage in the middle, kDataLoss.
Result<std::string> read_bytes(io::File& file, uint64_t offset, uint64_t size) {
  std::string bytes(size, '\0');
  VL_TRY(n, file.read_at(offset, std::as_writable_bytes(std::span(bytes))));
  bytes.resize(n);
  return bytes;
}

// The payload length of a frame at `offset` that is whole in the file: its
// header length if the trailer agrees, else a length that makes the frame end
// exactly at `end` with an agreeing trailer (the header length itself may be
// the damaged field). nullopt if no whole frame is there.
Result<std::optional<uint32_t>> whole_frame_length(io::File& file, uint64_t offset, uint64_t end) {
  std::vector<uint32_t> candidates;
  VL_TRY(header, read_bytes(file, offset, kFrameHeaderSize));
  if (auto length = peek_frame_length(header)) candidates.push_back(*length);
  uint64_t span = end - offset;
  for (uint64_t pad = 0; pad < kFrameAlignment; pad++) {
    uint64_t raw = span - pad;
    if (raw < kFrameHeaderSize + kFrameTrailerSize) continue;
    uint64_t length = raw - kFrameHeaderSize - kFrameTrailerSize;
    if (length <= kFramePayloadBytesMax && frame_size(length) == span) {
      candidates.push_back(static_cast<uint32_t>(length));
    }
  }
  for (uint32_t length : candidates) {
    if (offset + frame_size(length) > end) continue;
    VL_TRY(trailer, read_bytes(file, offset + kFrameHeaderSize + length, kFrameTrailerSize));
    if (trailer.size() == kFrameTrailerSize && load_u32_le(trailer.data()) == length) {
      return std::optional<uint32_t>(length);
    }
  }
  return std::optional<uint32_t>();
}

// Whether a damaged frame at the tail bears the marks of a torn write (an
// interrupted write, never acknowledged): the frame is not whole in the file,
// its header is all zeros, or one of its 512-byte disk sectors is all zeros (a
// sector that never reached the disk). A whole frame without such marks had
// its bits changed after it was written: that may be acknowledged data, so it
// is refused (kDataLoss), never truncated.
Result<bool> looks_torn(io::File& file, uint64_t offset, uint64_t end) {
  constexpr uint64_t kSectorBytes = 512;
  if (end - offset < kFrameHeaderSize) return true;
  VL_TRY(length, whole_frame_length(file, offset, end));
  if (!length) return true;
  VL_TRY(frame, read_bytes(file, offset, frame_size(*length)));
  auto all_zero = [](std::string_view bytes) {
    return bytes.find_first_not_of('\0') == std::string_view::npos;
  };
  if (all_zero(std::string_view(frame).substr(0, kFrameHeaderSize))) return true;
  uint64_t first_sector = (offset + kSectorBytes - 1) / kSectorBytes * kSectorBytes;
  for (uint64_t sector = first_sector; sector + kSectorBytes <= offset + frame.size();
       sector += kSectorBytes) {
    if (all_zero(std::string_view(frame).substr(sector - offset, kSectorBytes))) return true;
  }
  return false;
}

// A damaged frame at `offset` of the newest segment: a torn tail is cut (its
// bytes kept beside the segment as `<segment>.torn-<offset>`, so nothing is
// destroyed), but only if no valid frame follows and it looks torn; anything
// else is damage to written data, kDataLoss.
Status cut_torn_tail(io::FileSystem& fs, io::File& file, const std::string& path, uint64_t offset,
                     uint64_t size) {
  VL_TRY(follows, valid_frame_follows(file, offset, size));
  if (follows) return data_loss(path, offset, "damaged record followed by valid records");
  VL_TRY(torn, looks_torn(file, offset, size));
  if (!torn) {
    return data_loss(path, offset,
                     "the last record is whole but its checksum does not match: it was "
                     "changed after it was written (not a torn write); refusing to truncate "
                     "possibly acknowledged data. Inspect with `vellum verify`");
  }
  VL_TRY(cut, read_bytes(file, offset, size - offset));
  VL_RETURN_IF_ERROR(io::write_file_atomic(fs, path + ".torn-" + std::to_string(offset), cut));
  VL_RETURN_IF_ERROR(file.truncate(offset));
  return file.sync();
}

// The end of the hash chain as recovery follows it.
struct ChainLink {
  uint64_t next_position = 0;
  Digest last_hash{};
  int64_t recorded_unix_ns = 0;
};

// Checks that the commit `payload` (a valid frame at `offset` of `path`)
// continues the chain ending at `link`; returns the chain's new end.
Result<ChainLink> follow_commit(const ChainLink& link, std::string_view payload,
                                const std::string& path, uint64_t offset) {
  auto commit = decode_commit(payload, path + " at offset " + std::to_string(offset));
  if (!commit) return make_error(commit.error());
  if (commit->header.first_position != link.next_position) {
    return data_loss(path, offset, "commit does not continue the log's positions");
  }
  if (commit->header.prev_hash != link.last_hash) {
    return data_loss(path, offset, "hash chain broken: prev_hash mismatch");
  }
  return ChainLink{link.next_position + commit->header.event_count, chain_hash(payload),
                   commit->header.recorded_time_unix_ns};
}

}  // namespace

// The newest segment: verify every frame, follow the hash chain, and cut a
// torn tail. Ends with the writer positioned after the last good frame.
Status Log::recover_active(Segment& segment) {
  std::string header_bytes(kSegmentHeaderSize, '\0');
  VL_TRY(size, segment.file->size());
  VL_TRY(n, segment.file->read_at(0, std::as_writable_bytes(std::span(header_bytes))));
  if (n < kSegmentHeaderSize) {
    // Created but its header never reached the disk: only possible for a
    // segment that holds nothing yet (the header is synced before any frame
    // is written). Recreate it.
    segments_.erase(segment.index);
    VL_RETURN_IF_ERROR(fs_.remove(segment.path));
    VL_RETURN_IF_ERROR(create_segment(segment.index, next_position_));
    // The tail is where the sealed segments before it ended.
    recovered_ = LogTail{next_position_, last_hash_, {segment.index, kSegmentHeaderSize}, 0, 0};
    return ok_status();
  }
  auto header = decode_segment_header(header_bytes);
  if (!header) return header_error(segment.path, header.error());
  if (header->segment_index != segment.index) {
    return data_loss(segment.path, 0, "segment header names another segment");
  }
  if (segments_.size() > 1 && header->first_position != next_position_) {
    return data_loss(segment.path, 0, "segment does not continue the previous one");
  }
  segment.first_position = header->first_position;
  store_tag_ = header->store_tag;
  next_position_ = header->first_position;
  FrameScanner scanner(*segment.file, kSegmentHeaderSize, size);
  uint64_t records = 0;
  bool sealed = false;
  while (!scanner.at_end()) {
    uint64_t offset = scanner.offset();
    VL_TRY(frame, scanner.next());
    if (frame.status != FrameStatus::kOk) {
      // Zeros to the end are the clean end of the data (preallocated space).
      VL_TRY(clean_end, all_zero(*segment.file, offset, size));
      if (!clean_end) {
        VL_RETURN_IF_ERROR(cut_torn_tail(fs_, *segment.file, segment.path, offset, size));
        recovered_.truncated_bytes = size - offset;
      }
      preallocated_end_ = clean_end ? size : offset;
      size = offset;
      break;
    }
    if (sealed) return data_loss(segment.path, offset, "frame after the seal frame");
    if (frame.type == FrameType::kSeal) {
      sealed = true;
    } else if (frame.type == FrameType::kCommit) {
      ChainLink link{next_position_, last_hash_, recovered_.last_recorded_unix_ns};
      VL_TRY(next, follow_commit(link, frame.payload, segment.path, offset));
      next_position_ = next.next_position;
      last_hash_ = next.last_hash;
      recovered_.last_recorded_unix_ns = next.recorded_unix_ns;
      records++;
    } else if ((static_cast<uint8_t>(frame.type) & kFrameTypeSkippableBit) == 0) {
      return data_loss(segment.path, offset, "unknown frame type");
    }
    scanner.advance(frame.size_bytes);
  }
  VL_TRY(crc, file_crc(*segment.file, size));
  active_ = segments_[segment.index];
  active_records_ = records;
  active_crc_ = crc;
  pending_offset_ = size;
  written_offset_.store(size);
  active_index_.store(segment.index);
  if (sealed) {
    active_->sealed = true;
    active_->size_bytes = size;
    VL_RETURN_IF_ERROR(create_segment(segment.index + 1, next_position_));
  }
  recovered_.next_position = next_position_;
  recovered_.last_hash = last_hash_;
  recovered_.end = RecordLocation{active_index_.load(), written_offset_.load()};
  return ok_status();
}

Status Log::create_segment(uint64_t index, uint64_t first_position) {
  auto segment = std::make_shared<Segment>();
  segment->index = index;
  segment->first_position = first_position;
  segment->path = segment_path(index);
  VL_TRY(file, fs_.open(segment->path, io::OpenMode::kCreate));
  segment->file = std::move(file);
  SegmentHeader header;
  header.segment_index = index;
  header.first_position = first_position;
  header.created_unix_ns = clock_.now_unix_ns();
  header.store_tag = store_tag_;
  std::string bytes = encode_segment_header(header);
  VL_RETURN_IF_ERROR(segment->file->write_at(0, as_bytes(bytes)));
  VL_RETURN_IF_ERROR(segment->file->sync());
  VL_RETURN_IF_ERROR(fs_.sync_dir(dir_));
  {
    std::unique_lock lock(segments_mutex_);
    segments_[index] = segment;
  }
  active_ = segment;
  preallocated_end_ = kSegmentHeaderSize;
  active_records_ = 0;
  active_crc_ = crc32c::value(bytes);
  pending_offset_ = kSegmentHeaderSize;
  written_offset_.store(kSegmentHeaderSize);
  active_index_.store(index);
  return ok_status();
}

Status Log::fail(Error error) {
  failed_.store(true);
  return make_error(std::move(error));
}

Result<RecordLocation> Log::add_commit(std::string& payload) {
  if (failed_.load()) {
    return make_error(ErrorCode::kUnavailable, "the log writer failed earlier; reopen the store");
  }
  VL_ASSERT(payload.size() >= kCommitHeaderSize);
  VL_ASSERT(load_u64_le(payload.data()) == next_position_);
  uint64_t size = frame_size(payload.size());
  uint64_t active_end = pending_offset_ + pending_.size();
  if (active_records_ > 0 && active_end + size + kSealFrameSize > options_.segment_size_bytes) {
    VL_RETURN_IF_ERROR(roll_segment());
  }
  std::memcpy(payload.data() + kPrevHashOffset, last_hash_.data(), last_hash_.size());
  last_hash_ = chain_hash(payload);
  next_position_ += load_u32_le(payload.data() + 48);
  RecordLocation location{active_->index, pending_offset_ + pending_.size()};
  append_frame(pending_, FrameType::kCommit, payload);
  active_records_++;
  return location;
}

// Extends the active segment with zeros ahead of the writes. An fdatasync
// after overwriting allocated blocks flushes only data; one after appending
// must also commit the file's new size and extents to the journal. So the
// writer zero-fills kPreallocateBytes ahead (recovery treats an all-zero tail
// as the clean end of the data).
Status Log::preallocate(uint64_t end) {
  if (options_.preallocate_bytes == 0 || end <= preallocated_end_) return ok_status();
  uint64_t target = std::max(end, preallocated_end_) + options_.preallocate_bytes;
  target = std::min(target, std::max(end, options_.segment_size_bytes));
  if (target <= preallocated_end_) return ok_status();
  uint64_t from = std::max(preallocated_end_, end);
  if (target > from) {
    std::string zeros(target - from, '\0');
    auto status = active_->file->write_at(from, as_bytes(zeros));
    if (!status) return fail(status.error());
  }
  preallocated_end_ = target;
  return ok_status();
}

Status Log::write_pending() {
  if (pending_.empty()) return ok_status();
  VL_RETURN_IF_ERROR(preallocate(pending_offset_ + pending_.size()));
  auto status = active_->file->write_at(pending_offset_, as_bytes(pending_));
  if (!status) return fail(status.error());
  active_crc_ = crc32c::extend(active_crc_, pending_.data(), pending_.size());
  pending_offset_ += pending_.size();
  bytes_written_.fetch_add(pending_.size());
  written_offset_.store(pending_offset_);
  pending_.clear();
  return ok_status();
}

Status Log::write_group(bool sync_now) {
  if (failed_.load()) {
    return make_error(ErrorCode::kUnavailable, "the log writer failed earlier; reopen the store");
  }
  VL_RETURN_IF_ERROR(write_pending());
  if (sync_now) return sync();
  return ok_status();
}

Status Log::sync() {
  if (failed_.load()) {
    return make_error(ErrorCode::kUnavailable, "the log writer failed earlier; reopen the store");
  }
  // After a failed fdatasync the page cache can no longer be trusted (the
  // kernel may have dropped the dirty pages): never retry, fail the writer.
  auto status = active_->file->sync();
  if (!status) return fail(status.error());
  return ok_status();
}

Status Log::sync_through(RecordLocation end) {
  if (failed_.load()) {
    return make_error(ErrorCode::kUnavailable, "the log writer failed earlier; reopen the store");
  }
  auto segment = find_segment(end.segment_index);
  VL_ASSERT(segment != nullptr);
  auto status = segment->file->sync();
  if (!status) return fail(status.error());
  return ok_status();
}

// Writes what is buffered, appends the seal frame, syncs, and starts the next
// segment. Called by the writer only between commits.
Status Log::roll_segment() {
  VL_RETURN_IF_ERROR(write_pending());
  SealInfo seal;
  seal.segment_index = active_->index;
  seal.first_position = active_->first_position;
  seal.next_position = next_position_;
  seal.record_count = active_records_;
  seal.last_hash.assign(reinterpret_cast<const char*>(last_hash_.data()), last_hash_.size());
  seal.segment_crc = active_crc_;
  append_frame(pending_, FrameType::kSeal, encode_seal(seal));
  VL_RETURN_IF_ERROR(write_pending());
  // A sealed segment ends with its seal frame: drop the zeros beyond it.
  auto truncated = active_->file->truncate(pending_offset_);
  if (!truncated) return fail(truncated.error());
  auto synced = active_->file->sync();
  if (!synced) return fail(synced.error());
  active_->sealed = true;
  active_->size_bytes = pending_offset_;
  auto created = create_segment(active_->index + 1, next_position_);
  if (!created) return fail(created.error());
  return ok_status();
}

std::shared_ptr<Log::Segment> Log::find_segment(uint64_t index) {
  std::shared_lock lock(segments_mutex_);
  auto it = segments_.find(index);
  return it == segments_.end() ? nullptr : it->second;
}

Result<std::string> Log::read_commit(RecordLocation location) {
  auto segment = find_segment(location.segment_index);
  if (!segment) {
    return make_error(ErrorCode::kDataLoss,
                      "no segment " + std::to_string(location.segment_index) + " in " + dir_);
  }
  std::string bytes(kReadAheadBytes, '\0');
  VL_TRY(n, segment->file->read_at(location.offset, std::as_writable_bytes(std::span(bytes))));
  bytes.resize(n);
  auto length = peek_frame_length(bytes);
  if (!length) return data_loss(segment->path, location.offset, "bad frame length");
  uint64_t size = frame_size(*length);
  if (size > bytes.size()) {
    uint64_t have = bytes.size();
    bytes.resize(size);
    auto rest = std::as_writable_bytes(std::span(bytes.data() + have, size - have));
    VL_TRY(m, segment->file->read_at(location.offset + have, rest));
    bytes.resize(have + m);
  }
  DecodedFrame frame = decode_frame(bytes);
  if (frame.status != FrameStatus::kOk || frame.type != FrameType::kCommit) {
    return data_loss(segment->path, location.offset, "damaged record (checksum mismatch)");
  }
  return std::string(frame.payload);
}

Status Log::scan(RecordLocation from, RecordLocation until, const CommitVisitor& visitor) {
  for (uint64_t index = from.segment_index; index <= until.segment_index; index++) {
    auto segment = find_segment(index);
    if (!segment) return make_error(ErrorCode::kDataLoss, "missing segment " + segment_path(index));
    uint64_t start = index == from.segment_index ? from.offset : kSegmentHeaderSize;
    uint64_t end = index == until.segment_index ? until.offset : segment->size_bytes.load();
    FrameScanner scanner(*segment->file, start, end);
    while (!scanner.at_end()) {
      uint64_t offset = scanner.offset();
      VL_TRY(frame, scanner.next());
      if (frame.status != FrameStatus::kOk) {
        return data_loss(segment->path, offset, "damaged record (checksum mismatch)");
      }
      if (frame.type == FrameType::kCommit) {
        VL_RETURN_IF_ERROR(visitor(RecordLocation{index, offset}, frame.payload));
      }
      scanner.advance(frame.size_bytes);
    }
  }
  return ok_status();
}

RecordLocation Log::written_end() {
  return RecordLocation{active_index_.load(), written_offset_.load()};
}

RecordLocation Log::begin() {
  std::shared_lock lock(segments_mutex_);
  VL_ASSERT(!segments_.empty());
  return RecordLocation{segments_.begin()->first, kSegmentHeaderSize};
}

uint64_t Log::size_bytes() {
  std::shared_lock lock(segments_mutex_);
  uint64_t total = 0;
  for (const auto& [index, segment] : segments_) {
    total += segment->sealed.load() ? segment->size_bytes.load() : written_offset_.load();
  }
  return total;
}

uint64_t Log::segment_count() {
  std::shared_lock lock(segments_mutex_);
  return segments_.size();
}

}  // namespace vellum::log
