// SPDX-License-Identifier: Apache-2.0
#include "base/text.h"

#include <cstdint>

namespace vellum {
namespace {

// Length of the sequence starting with `lead`, or 0 if `lead` cannot start one.
int sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

bool is_continuation(uint8_t b) { return (b & 0xc0) == 0x80; }

// The second byte's narrower ranges exclude overlongs, surrogates and > U+10FFFF.
bool second_byte_ok(uint8_t lead, uint8_t second) {
  if (lead == 0xe0) return second >= 0xa0 && second <= 0xbf;
  if (lead == 0xed) return second >= 0x80 && second <= 0x9f;
  if (lead == 0xf0) return second >= 0x90 && second <= 0xbf;
  if (lead == 0xf4) return second >= 0x80 && second <= 0x8f;
  return is_continuation(second);
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    auto lead = static_cast<uint8_t>(text[i]);
    int length = sequence_length(lead);
    if (length == 0 || i + static_cast<size_t>(length) > text.size()) return false;
    if (length >= 2 && !second_byte_ok(lead, static_cast<uint8_t>(text[i + 1]))) return false;
    for (int k = 2; k < length; k++) {
      if (!is_continuation(static_cast<uint8_t>(text[i + static_cast<size_t>(k)]))) return false;
    }
    i += static_cast<size_t>(length);
  }
  return true;
}

}  // namespace vellum
