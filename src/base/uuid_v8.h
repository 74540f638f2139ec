// SPDX-License-Identifier: Apache-2.0
// Name-based UUIDs (RFC 9562 version 8, "custom"): the first 16 bytes of a
// SHA-256 digest with the version and variant bits set. Deterministic ids for
// things that must be recognised when they come again: a retried command's
// events (toolkit), a replayed Replicache mutation (server). Each caller
// hashes its own domain string first, so their ids never collide.
#pragma once

#include <algorithm>

#include "vellum/uuid.h"

#include "base/sha256.h"

namespace vellum {

inline Uuid uuid_v8_from_digest(const Digest& digest) {
  Uuid id;
  std::copy_n(digest.begin(), id.bytes.size(), id.bytes.begin());
  id.bytes[6] = static_cast<uint8_t>((id.bytes[6] & 0x0F) | 0x80);  // version 8: custom
  id.bytes[8] = static_cast<uint8_t>((id.bytes[8] & 0x3F) | 0x80);  // RFC 9562 variant
  return id;
}

}  // namespace vellum
