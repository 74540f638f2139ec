// SPDX-License-Identifier: Apache-2.0
// Text checks for names that come from outside: UTF-8 validity.
#pragma once

#include <string_view>

namespace vellum {

// True if `text` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view text);

}  // namespace vellum
