// SPDX-License-Identifier: Apache-2.0
#include "base/crc32c.h"

#include <isa-l/crc.h>

namespace vellum::crc32c {

// ISA-L's crc32_iscsi takes and returns the raw (non-inverted) register, so
// the standard pre/post inversion is applied here.
uint32_t extend(uint32_t crc, const void* data, size_t size) {
  auto* bytes = static_cast<unsigned char*>(const_cast<void*>(data));
  uint32_t result = ~crc;
  // crc32_iscsi takes an int length: feed large inputs in pieces.
  constexpr size_t kChunk = size_t{1} << 30;
  while (size > 0) {
    size_t n = size < kChunk ? size : kChunk;
    result = crc32_iscsi(bytes, static_cast<int>(n), result);
    bytes += n;
    size -= n;
  }
  return ~result;
}

}  // namespace vellum::crc32c
