// SPDX-License-Identifier: Apache-2.0
// API keys: bearer tokens checked against the SHA-256 digests of the config
// file, and the grants of each key (role + stream name prefixes).
//
// Roles: reader may read; writer may also append, soft-delete and set
// metadata; admin may also tombstone streams and read /metrics. A key touches
// only streams whose names start with one of its prefixes ("*" = all);
// reads that cross streams (/all, /subjects, /positions, /subscribe?all)
// need a key granted "*", or a category / streamPrefix filter inside a grant.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "server/config.h"

namespace vellum::server {

enum class Access : uint8_t { kRead, kWrite, kAdmin };

class Authenticator {
 public:
  explicit Authenticator(std::vector<ApiKey> keys);

  // False when no keys are configured: every request is allowed.
  bool enabled() const { return !keys_.empty(); }

  // The key presented as "Authorization: Bearer <token>", or nullptr if none
  // matches. Compares digests in constant time.
  const ApiKey* authenticate(std::string_view authorization_header) const;

  // Whether `key` (nullptr when auth is disabled) may act on `stream`.
  bool allows_stream(const ApiKey* key, Access access, std::string_view stream) const;
  // Whether `key` may read every stream whose name starts with `prefix`
  // ("" = the whole log).
  bool allows_prefix(const ApiKey* key, Access access, std::string_view prefix) const;

 private:
  std::vector<ApiKey> keys_;
};

}  // namespace vellum::server
