// SPDX-License-Identifier: Apache-2.0
// Uuid: the 16-byte identifier of every event. Clients may choose ids (that
// is what makes retries idempotent); when they don't, the store generates a
// UUIDv7 (RFC 9562): time-ordered, so ids of one store sort by creation time.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vellum {

// A value type; safe to copy and share between threads.
struct Uuid {
  std::array<uint8_t, 16> bytes{};

  // True for the all-zero id, which means "none: generate one".
  bool is_nil() const;

  // Canonical lower-case text form: 8-4-4-4-12 hex digits.
  std::string to_string() const;

  // Parses the canonical form (either case). std::nullopt if malformed.
  static std::optional<Uuid> parse(std::string_view text);

  friend bool operator==(const Uuid&, const Uuid&) = default;
  friend auto operator<=>(const Uuid&, const Uuid&) = default;
};

}  // namespace vellum
