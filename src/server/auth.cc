// SPDX-License-Identifier: Apache-2.0
#include "server/auth.h"

#include <openssl/crypto.h>

namespace vellum::server {

namespace {

bool role_allows(Role role, Access access) {
  switch (access) {
    case Access::kRead:
      return true;
    case Access::kWrite:
      return role == Role::kWriter || role == Role::kAdmin;
    case Access::kAdmin:
      return role == Role::kAdmin;
  }
  return false;
}

}  // namespace

Authenticator::Authenticator(std::vector<ApiKey> keys) : keys_(std::move(keys)) {}

const ApiKey* Authenticator::authenticate(std::string_view authorization_header) const {
  constexpr std::string_view kScheme = "Bearer ";
  if (authorization_header.size() <= kScheme.size()) return nullptr;
  for (size_t i = 0; i < kScheme.size(); i++) {
    if (std::tolower(static_cast<unsigned char>(authorization_header[i])) !=
        std::tolower(static_cast<unsigned char>(kScheme[i]))) {
      return nullptr;
    }
  }
  Sha256 hash;
  hash.update(authorization_header.substr(kScheme.size()));
  Digest digest = hash.finish();
  const ApiKey* found = nullptr;
  // Every key is compared, in constant time, so timing does not tell which
  // prefix of which digest matched.
  for (const ApiKey& key : keys_) {
    if (CRYPTO_memcmp(key.token_sha256.data(), digest.data(), digest.size()) == 0) found = &key;
  }
  return found;
}

bool Authenticator::allows_stream(const ApiKey* key, Access access, std::string_view stream) const {
  if (!enabled()) return true;
  if (key == nullptr || !role_allows(key->role, access)) return false;
  for (const std::string& prefix : key->stream_prefixes) {
    if (prefix == "*" || stream.starts_with(prefix)) return true;
  }
  return false;
}

bool Authenticator::allows_prefix(const ApiKey* key, Access access, std::string_view prefix) const {
  if (!enabled()) return true;
  if (key == nullptr || !role_allows(key->role, access)) return false;
  for (const std::string& granted : key->stream_prefixes) {
    if (granted == "*") return true;
    // Every name starting with `prefix` also starts with `granted`.
    if (!prefix.empty() && prefix.starts_with(granted)) return true;
  }
  return false;
}

}  // namespace vellum::server
