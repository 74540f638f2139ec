// SPDX-License-Identifier: Apache-2.0
// The library version and the newest on-disk format it reads and writes.
#pragma once

namespace vellum {

inline constexpr const char* kVersionString = "0.1.0";
inline constexpr int kVersionMajor = 0;
inline constexpr int kVersionMinor = 1;
inline constexpr int kVersionPatch = 0;

// Segment file format version written by this build (docs/formats/segment.md).
inline constexpr int kLogFormatVersion = 1;

}  // namespace vellum
