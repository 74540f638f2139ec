// SPDX-License-Identifier: Apache-2.0
#include "base/sha256.h"

#include <openssl/evp.h>

#include "base/assert.h"

namespace vellum {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  VL_ASSERT(ctx_ != nullptr);
  int ok = EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
  VL_ASSERT(ok == 1);
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::update(const void* data, size_t size) {
  int ok = EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, size);
  VL_ASSERT(ok == 1);
}

Digest Sha256::finish() {
  Digest digest{};
  unsigned int size = 0;
  int ok = EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), digest.data(), &size);
  VL_ASSERT(ok == 1);
  VL_ASSERT(size == digest.size());
  return digest;
}

std::string digest_hex(const Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (uint8_t b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

}  // namespace vellum
