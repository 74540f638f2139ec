// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: room tokens (rooms/room_token.h), which arrive from anyone in a WebSocket
// URL. The bytes are tried three ways: as a token, checked with a fixed secret (the structure
// and signature checks; a random input almost never passes the signature); as the claims JSON
// of a correctly signed token (so the payload decoder and claim checks are reached, as from an
// app backend with a bug); and as a submitted event whose signature is checked. No input may
// crash, trip an assertion or throw; each is accepted or refused with a token problem code.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/assert.h"
#include "rooms/room_token.h"

namespace {

using vellum::rooms::TokenProblem;

// The secret of room_auth_test.cc, so the seed token and event of the corpus verify.
constexpr std::string_view kSecret = "vellum-test-secret-0123456789";
constexpr int64_t kNow = 1'767'222'000;

template <class T>
void check_refusal(const vellum::Result<T>& result) {
  if (!result) VL_ASSERT(vellum::rooms::token_problem(result.error()) != TokenProblem::kNone);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);

  check_refusal(vellum::rooms::verify_room_token(bytes, kSecret, "trips", "tokyo-2026", kNow));

  if (size <= vellum::rooms::kRoomTokenBytesMax) {
    std::string token = vellum::rooms::seal_room_token(bytes, kSecret);
    auto claims = vellum::rooms::verify_room_token(token, kSecret, "trips", "tokyo-2026", kNow);
    check_refusal(claims);
    if (claims) {
      // Accepted claims are valid claims, and signing them again gives a token that verifies.
      VL_ASSERT(vellum::rooms::check_room_claims(*claims).has_value());
      std::string again = vellum::rooms::sign_room_token(*claims, kSecret);
      VL_ASSERT(vellum::rooms::verify_room_token(again, kSecret, "trips", "tokyo-2026", kNow)
                    .has_value());
      (void)vellum::rooms::require_write(*claims);
    }
  }

  auto event = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (!event.is_discarded()) {
    check_refusal(vellum::rooms::verify_room_event_signature(event, "ann", kSecret));
    auto sig = vellum::rooms::sign_room_event(event, "ann", kSecret);
    if (sig && event.is_object()) {
      event["sig"] = *sig;
      VL_ASSERT(vellum::rooms::verify_room_event_signature(event, "ann", kSecret).has_value());
    }
  }

  auto decoded = vellum::rooms::base64url_decode(bytes);
  if (decoded) VL_ASSERT(vellum::rooms::base64url_encode(*decoded) == bytes);
  return 0;
}
