// SPDX-License-Identifier: Apache-2.0
// Log: the set of segment files of one store, its recovery on open, group
// writes by the single writer, and verified reads by any thread.
//
// The log knows frames and commit records; it knows nothing of streams or
// indexes. Format: docs/formats/segment.md (constants in record_format.h).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "vellum/result.h"

#include "base/clock.h"
#include "base/sha256.h"
#include "io/file_system.h"
#include "log/record_format.h"

namespace vellum::log {

// Where a frame starts: segment file and byte offset in it.
struct RecordLocation {
  uint64_t segment_index = 0;
  uint64_t offset = 0;
  friend bool operator==(const RecordLocation&, const RecordLocation&) = default;
  friend auto operator<=>(const RecordLocation&, const RecordLocation&) = default;
};

struct LogOptions {
  uint64_t segment_size_bytes = uint64_t{256} << 20;
  bool create_if_missing = true;
  // Zero-fill this far ahead of the writes (see Log::preallocate). 0 = off.
  uint64_t preallocate_bytes = uint64_t{1} << 20;
};

// What recovery found at the end of the log.
struct LogTail {
  uint64_t next_position = 0;  // position of the next event to be written
  Digest last_hash{};          // chain hash of the last commit (zeros: none yet)
  RecordLocation end;          // where the next frame will be written
  int64_t last_recorded_unix_ns = 0;
  uint64_t truncated_bytes = 0;  // torn tail removed by recovery
};

// True if the bytes of `file` in [from, end) are all zero (or the file is
// shorter): the clean end of a zero-filled segment.
Result<bool> all_zero(io::File& file, uint64_t from, uint64_t end);

// True if the bytes of `file` in [from, end) are all zero (or the file is
// shorter): the clean end of a zero-filled segment.
Result<bool> all_zero(io::File& file, uint64_t from, uint64_t end);

// Called by scan() for each commit frame, with its location and payload.
using CommitVisitor = std::function<Status(RecordLocation, std::string_view payload)>;

// Thread safety: writer methods (add_commit, write_group) from one thread at
// a time; reader methods (read_commit, scan, end) from any thread.
class Log {
 public:
  // Opens the log in directory `dir`, recovering it (see segment.md,
  // "Recovery"). Errors: kDataLoss naming file and offset, kNotFound,
  // kFailedPrecondition (newer format), kIoError.
  static Result<std::unique_ptr<Log>> open(io::FileSystem& fs, const std::string& dir,
                                           const LogOptions& options, Clock& clock);
  ~Log();

  const LogTail& recovered_tail() const { return recovered_; }

  // ---- Writer ----
  // Buffers one commit frame. Fills in the payload's prev_hash (the chain link
  // to the previous commit) and advances the chain. May first write the
  // buffered group and roll to a new segment. Returns where the frame will be.
  // REQUIRES: the payload's first_position is next_position().
  // Errors: kUnavailable after an earlier failure, kIoError (fails the log).
  Result<RecordLocation> add_commit(std::string& payload);
  uint64_t next_position() const { return next_position_; }
  const Digest& last_hash() const { return last_hash_; }
  // Writes the buffered frames and, if `sync`, fdatasyncs them. Any error
  // puts the log in the failed state: every later write returns kUnavailable.
  Status write_group(bool sync);
  // fdatasyncs what was written (writer thread).
  Status sync();
  // fdatasyncs the segment holding `end` (segments before it were synced
  // when sealed). Safe to call from one other thread while the writer
  // writes. A failure fails the log, like sync().
  Status sync_through(RecordLocation end);
  bool failed() const { return failed_.load(); }
  uint64_t bytes_written() const { return bytes_written_.load(); }
  // The store tag of the log's segments (see SegmentHeader::store_tag).
  uint32_t store_tag() const { return store_tag_; }

  // ---- Readers ----
  // The verified payload of the commit frame at `location`.
  // Errors: kDataLoss (bad frame), kIoError.
  Result<std::string> read_commit(RecordLocation location);
  // Visits every commit frame from `from` up to (not including) `until`, in
  // log order. Stops at the first error (returned) or visitor error.
  Status scan(RecordLocation from, RecordLocation until, const CommitVisitor& visitor);
  // The end of what has been written (not necessarily synced).
  RecordLocation written_end();
  uint64_t size_bytes();
  uint64_t segment_count();
  // The location of the first frame of the log.
  RecordLocation begin();

 private:
  struct Segment;
  Log(io::FileSystem& fs, std::string dir, LogOptions options, Clock& clock);
  Status recover();
  Status recover_sealed(Segment& segment, uint64_t expected_first_position);
  Status recover_active(Segment& segment);
  Status create_segment(uint64_t index, uint64_t first_position);
  Status roll_segment();
  Status write_pending();
  Status preallocate(uint64_t end);
  Status fail(Error error);
  std::shared_ptr<Segment> find_segment(uint64_t index);
  std::string segment_path(uint64_t index) const;

  io::FileSystem& fs_;
  const std::string dir_;
  const LogOptions options_;
  Clock& clock_;
  LogTail recovered_;

  std::shared_mutex segments_mutex_;  // guards segments_ (the map, not the files)
  std::map<uint64_t, std::shared_ptr<Segment>> segments_;

  // Writer state: owned by the writer thread.
  std::shared_ptr<Segment> active_;
  std::string pending_;            // frames buffered for the next write
  uint64_t pending_offset_ = 0;    // file offset where pending_ starts
  uint64_t preallocated_end_ = 0;  // the active segment is zero-filled up to here
  uint64_t active_records_ = 0;    // commit frames in the active segment
  uint32_t active_crc_ = 0;        // crc32c of the active segment's bytes so far
  uint64_t next_position_ = 0;
  Digest last_hash_{};
  uint32_t store_tag_ = 0;
  std::atomic<uint64_t> written_offset_{0};  // end of written data in active
  std::atomic<uint64_t> active_index_{0};
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> bytes_written_{0};
};

}  // namespace vellum::log
