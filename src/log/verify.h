// SPDX-License-Identifier: Apache-2.0
// verify_log(): the full, read-only check of a log directory behind
// `vellum verify`. Log::open checks sealed segments only lazily (header and
// seal frame) and may truncate a torn tail; verify_log opens every segment
// read-only, reads every byte, and reports what it finds instead of changing
// anything. Rules checked: docs/formats/segment.md ("Recovery", "Seal").
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "vellum/result.h"

#include "base/sha256.h"
#include "io/file_system.h"

namespace vellum::log {

// What verify_log() found. Counts cover what could be read and verified.
struct VerifyReport {
  uint64_t segments = 0;  // segment files found
  uint64_t records = 0;   // commit frames whose CRC and structure are valid
  uint64_t events = 0;    // events in those commit frames
  uint64_t bytes = 0;     // total size of the segment files
  Digest last_hash{};     // chain hash of the last valid commit (zeros: none)
  // One human-readable line per problem, naming the file and byte offset,
  // e.g. "log/segment-00000001.vlm at offset 4160: frame checksum mismatch".
  // Empty means the log is intact.
  std::vector<std::string> problems;
};

// Verifies every segment in `dir`: segment headers, every frame's CRC, commit
// record structure, positions continuous across records and segments, the
// hash chain, and every seal frame (record count, next position, last hash,
// CRC of the segment's bytes). Damage is reported in `problems`; scanning of
// a damaged segment stops at its first bad frame and moves to the next one.
// A torn tail of the newest segment is reported as a problem too ("would be
// truncated on open"). `progress` (may be empty) is called with bytes
// verified so far and the total, now and then and at the end.
// Errors (no report): kNotFound (no such directory), kIoError.
Result<VerifyReport> verify_log(
    io::FileSystem& fs, const std::string& dir,
    const std::function<void(uint64_t bytes_done, uint64_t bytes_total)>& progress);

}  // namespace vellum::log
