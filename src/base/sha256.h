// SPDX-License-Identifier: Apache-2.0
// SHA-256 (OpenSSL; SHA-NI accelerated where the CPU has it), used for the
// log's hash chain: tamper evidence that does not rely on CRCs.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace vellum {

using Digest = std::array<uint8_t, 32>;

// Incremental SHA-256. Not thread-safe; cheap to create.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  Digest finish();

 private:
  void* ctx_;  // EVP_MD_CTX*, kept opaque so OpenSSL headers stay out of ours
};

std::string digest_hex(const Digest& digest);

}  // namespace vellum
