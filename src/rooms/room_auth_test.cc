// SPDX-License-Identifier: Apache-2.0
// Room tokens and event signatures (room_token.h): the round trip, every way a token or a
// signature is refused, and known answers computed outside this code.
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "rooms/room_token.h"

namespace vellum::rooms {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kSecret = "vellum-test-secret-0123456789";
constexpr int64_t kNow = 1'767'222'000;  // 2025-12-31T23:00:00Z

RoomClaims ann_claims() {
  RoomClaims claims;
  claims.app = "trips";
  claims.room = "tokyo-2026";
  claims.participant = "ann";
  claims.rights = RoomRights::kReadWrite;
  claims.expires_unix_seconds = kNow + 3600;
  claims.issued_unix_seconds = kNow;
  return claims;
}

Result<RoomClaims> verify(std::string_view token, int64_t now = kNow,
                          std::string_view app = "trips", std::string_view room = "tokyo-2026") {
  return verify_room_token(token, kSecret, app, room, now);
}

// The problem of a failed result (kNone for a success, which the tests never expect).
template <class T>
TokenProblem problem_of(const Result<T>& result) {
  return result ? TokenProblem::kNone : token_problem(result.error());
}

// A token with the given claims JSON, signed correctly: reaches the claim checks.
std::string sealed(const Json& claims) { return seal_room_token(claims.dump(), kSecret); }

// "v1.<payload_text>.<signature>" with the payload text as given (not base64url-encoded) and a
// signature computed here with OpenSSL directly: a backend that signs garbage correctly.
std::string sealed_raw(std::string_view payload_text) {
  std::string signed_text = "v1." + std::string(payload_text);
  unsigned char mac[32];
  unsigned int mac_size = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(), mac,
       &mac_size);
  return signed_text + "." +
         base64url_encode(std::string_view(reinterpret_cast<const char*>(mac), mac_size));
}

Json ann_claims_json() {
  return Json{{"app", "trips"},
              {"room", "tokyo-2026"},
              {"participant", "ann"},
              {"rights", {"read", "write"}},
              {"exp", kNow + 3600}};
}

TEST(RoomTokenTest, RoundTrip) {
  std::string token = sign_room_token(ann_claims(), kSecret);
  ASSERT_TRUE(token.starts_with("v1."));
  Result<RoomClaims> claims = verify(token);
  ASSERT_TRUE(claims) << claims.error().message;
  EXPECT_EQ(claims->app, "trips");
  EXPECT_EQ(claims->room, "tokyo-2026");
  EXPECT_EQ(claims->participant, "ann");
  EXPECT_EQ(claims->rights, RoomRights::kReadWrite);
  EXPECT_EQ(claims->expires_unix_seconds, kNow + 3600);
  EXPECT_EQ(claims->issued_unix_seconds, kNow);
  EXPECT_TRUE(require_write(*claims));
  EXPECT_TRUE(check_token_participant(*claims, "ann"));
}

TEST(RoomTokenTest, KnownAnswer) {
  // Computed independently with coreutils and the openssl command (Debian 12):
  //   secret='vellum-test-secret-0123456789'
  //   json='{"app":"trips","exp":1767225600,"iat":1767222000,"participant":"ann",
  //          "rights":["read","write"],"room":"tokyo-2026"}'   (on one line)
  //   payload=$(printf '%s' "$json" | basenc --base64url -w0 | tr -d '=')
  //   sig=$(printf 'v1.%s' "$payload" | openssl dgst -sha256 -hmac "$secret" -binary |
  //         basenc --base64url -w0 | tr -d '=')
  //   echo "v1.$payload.$sig"
  constexpr std::string_view kExpected =
      "v1.eyJhcHAiOiJ0cmlwcyIsImV4cCI6MTc2NzIyNTYwMCwiaWF0IjoxNzY3MjIyMDAwLCJwYXJ0aWNpcGFudCI6Im"
      "FubiIsInJpZ2h0cyI6WyJyZWFkIiwid3JpdGUiXSwicm9vbSI6InRva3lvLTIwMjYifQ."
      "0ZcufOrO9GZ0RY8DnsY80jm8UiaYnn_sDxPUdsGyOLU";
  EXPECT_EQ(sign_room_token(ann_claims(), kSecret), kExpected);
  Result<RoomClaims> claims = verify(kExpected);
  ASSERT_TRUE(claims) << claims.error().message;
  EXPECT_EQ(claims->participant, "ann");
}

TEST(RoomTokenTest, ReadOnlyRightsAreReported) {
  RoomClaims read_only = ann_claims();
  read_only.rights = RoomRights::kRead;
  read_only.issued_unix_seconds.reset();
  Result<RoomClaims> claims = verify(sign_room_token(read_only, kSecret));
  ASSERT_TRUE(claims) << claims.error().message;
  EXPECT_EQ(claims->rights, RoomRights::kRead);
  EXPECT_FALSE(claims->issued_unix_seconds);
  Status write = require_write(*claims);
  ASSERT_FALSE(write);
  EXPECT_EQ(token_problem(write.error()), TokenProblem::kOutOfScope);
  EXPECT_EQ(write.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(write.error().message.starts_with("token_out_of_scope: "));
}

TEST(RoomTokenTest, Missing) {
  Result<RoomClaims> claims = verify("");
  EXPECT_EQ(problem_of(claims), TokenProblem::kMissing);
  EXPECT_TRUE(claims.error().message.starts_with("token_missing: ")) << claims.error().message;
}

TEST(RoomTokenTest, MalformedStructure) {
  std::string good = sign_room_token(ann_claims(), kSecret);
  size_t last_dot = good.rfind('.');
  for (const std::string& token : {
           std::string("v1"),
           std::string("v1."),
           std::string(".."),
           std::string("v1..") + good.substr(last_dot + 1),  // empty payload
           "v2" + good.substr(2),                            // unknown version
           "V1" + good.substr(2),
           good.substr(0, last_dot),                                 // no signature
           good + "A",                                               // 44-character signature
           good.substr(0, good.size() - 1),                          // 42-character signature
           good.substr(0, last_dot) + ".x" + good.substr(last_dot),  // four parts
           std::string(kRoomTokenBytesMax + 1, 'a'),
       }) {
    Result<RoomClaims> claims = verify(token);
    EXPECT_EQ(problem_of(claims), TokenProblem::kMalformed) << token;
  }
}

TEST(RoomTokenTest, MalformedPayloadBehindAValidSignature) {
  // Well signed, so these reach the payload checks (an app backend with a bug).
  std::vector<std::string> tokens = {
      seal_room_token("not json", kSecret),
      seal_room_token("[1,2]", kSecret),
      seal_room_token("{\"app\":\"trips\"", kSecret),
      seal_room_token(std::string("{\"app\":\"tr\xff\"}"), kSecret),  // bad UTF-8
      // Not base64url (the signature covers the text as sent, so it holds).
      sealed_raw("e30="),
      sealed_raw("e3*"),
      sealed_raw("e31"),  // "{}" with non-zero padding bits
      sealed_raw("e"),
  };
  Json claims = ann_claims_json();
  for (const char* member : {"app", "room", "participant", "rights", "exp"}) {
    Json without = claims;
    without.erase(member);
    tokens.push_back(sealed(without));
  }
  auto with = [&](const char* member, const Json& value) {
    Json changed = claims;
    changed[member] = value;
    tokens.push_back(sealed(changed));
  };
  with("app", "Trips");
  with("app", "");
  with("app", 7);
  with("app", std::string(65, 'a'));
  with("room", "tokyo 2026");
  with("room", std::string(129, 'r'));
  with("participant", "ann smith");
  with("participant", "");
  with("participant", std::string(257, 'p'));
  with("participant", "ann\x01");
  with("rights", Json::array());
  with("rights", "read");
  with("rights", {"write"});
  with("rights", {"read", "read"});
  with("rights", {"read", "admin"});
  with("rights", {"read", "write", "write"});
  with("exp", -1);
  with("exp", 1.5e9);
  with("exp", "1767225600");
  with("exp", int64_t{1} << 53);
  with("iat", kNow + 7200);  // after exp
  with("iat", -5);
  with("iat", nullptr);
  for (const std::string& token : tokens) {
    Result<RoomClaims> result = verify(token);
    EXPECT_EQ(problem_of(result), TokenProblem::kMalformed) << token;
    if (!result) {
      EXPECT_TRUE(result.error().message.starts_with("token_malformed: "));
    }
  }
}

TEST(RoomTokenTest, UnknownClaimsAreIgnored) {
  Json claims = ann_claims_json();
  claims["name"] = "Ann";
  claims["rights"] = {"write", "read"};  // any order
  Result<RoomClaims> result = verify(sealed(claims));
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(result->rights, RoomRights::kReadWrite);
}

TEST(RoomTokenTest, WrongSecretIsForged) {
  std::string token = sign_room_token(ann_claims(), "another-secret-0123456789");
  Result<RoomClaims> claims = verify(token);
  EXPECT_EQ(problem_of(claims), TokenProblem::kForged);
  EXPECT_TRUE(claims.error().message.starts_with("token_forged: "));
}

TEST(RoomTokenTest, TamperedTokensAreForged) {
  std::string token = sign_room_token(ann_claims(), kSecret);
  // Another participant's claims under ann's signature.
  RoomClaims bob = ann_claims();
  bob.participant = "bob";
  std::string bob_token = sign_room_token(bob, kSecret);
  std::string swapped = bob_token.substr(0, bob_token.rfind('.')) + token.substr(token.rfind('.'));
  EXPECT_EQ(problem_of(verify(swapped)), TokenProblem::kForged);
  // Every single character of the payload and the signature flipped.
  for (size_t i = 3; i < token.size(); ++i) {
    if (token[i] == '.') continue;
    std::string tampered = token;
    tampered[i] = tampered[i] == 'A' ? 'B' : 'A';
    TokenProblem kind = problem_of(verify(tampered));
    // The last signature character carries 2 padding bits: a flip there may make it
    // non-canonical base64url, still refused as forged (never accepted).
    EXPECT_EQ(kind, TokenProblem::kForged) << "position " << i;
  }
  // A non-base64url signature of the right length.
  std::string bad_signature = token.substr(0, token.rfind('.') + 1) + std::string(43, '*');
  EXPECT_EQ(problem_of(verify(bad_signature)), TokenProblem::kForged);
}

TEST(RoomTokenTest, ExpiryWithClockSkew) {
  RoomClaims claims = ann_claims();
  std::string token = sign_room_token(claims, kSecret);
  int64_t exp = claims.expires_unix_seconds;
  EXPECT_TRUE(verify(token, exp));
  EXPECT_TRUE(verify(token, exp + kRoomTokenClockSkewSeconds));  // the last second of skew
  Result<RoomClaims> late = verify(token, exp + kRoomTokenClockSkewSeconds + 1);
  EXPECT_EQ(problem_of(late), TokenProblem::kExpired);
  EXPECT_TRUE(late.error().message.starts_with("token_expired: "));
  // No skew: expired one second after exp.
  EXPECT_TRUE(verify_room_token(token, kSecret, "trips", "tokyo-2026", exp, 0));
  EXPECT_EQ(problem_of(verify_room_token(token, kSecret, "trips", "tokyo-2026", exp + 1, 0)),
            TokenProblem::kExpired);
  // Issued in the future: fine within the skew, refused beyond it.
  int64_t iat = *claims.issued_unix_seconds;
  EXPECT_TRUE(verify(token, iat - kRoomTokenClockSkewSeconds));
  EXPECT_EQ(problem_of(verify(token, iat - kRoomTokenClockSkewSeconds - 1)),
            TokenProblem::kExpired);
  // Extreme clocks cannot overflow anything.
  EXPECT_EQ(problem_of(verify(token, INT64_MAX)), TokenProblem::kExpired);
  EXPECT_EQ(problem_of(verify(token, INT64_MIN)), TokenProblem::kExpired);
}

TEST(RoomTokenTest, OutOfScope) {
  std::string token = sign_room_token(ann_claims(), kSecret);
  Result<RoomClaims> other_app = verify(token, kNow, "fitness");
  EXPECT_EQ(problem_of(other_app), TokenProblem::kOutOfScope);
  EXPECT_TRUE(other_app.error().message.starts_with("token_out_of_scope: "));
  EXPECT_EQ(problem_of(verify(token, kNow, "trips", "paris-2026")), TokenProblem::kOutOfScope);
  EXPECT_EQ(problem_of(verify(token, kNow, "trips", "tokyo-2026x")), TokenProblem::kOutOfScope);

  Result<RoomClaims> claims = verify(token);
  ASSERT_TRUE(claims);
  Status other_participant = check_token_participant(*claims, "bob");
  ASSERT_FALSE(other_participant);
  EXPECT_EQ(token_problem(other_participant.error()), TokenProblem::kOutOfScope);
}

TEST(RoomTokenTest, WildcardRoom) {
  RoomClaims any_room = ann_claims();
  any_room.room = std::string(kAnyRoom);
  std::string token = sign_room_token(any_room, kSecret);
  EXPECT_TRUE(verify(token, kNow, "trips", "tokyo-2026"));
  EXPECT_TRUE(verify(token, kNow, "trips", "paris-2026"));
  EXPECT_EQ(problem_of(verify(token, kNow, "fitness", "paris-2026")), TokenProblem::kOutOfScope);
}

TEST(RoomTokenTest, TokenProblemOfOtherErrors) {
  EXPECT_EQ(token_problem(Error{ErrorCode::kInvalidArgument, "token_forged: x", std::nullopt}),
            TokenProblem::kNone);
  EXPECT_EQ(token_problem(Error{ErrorCode::kFailedPrecondition, "token_forged", std::nullopt}),
            TokenProblem::kNone);
  EXPECT_EQ(token_problem(Error{ErrorCode::kFailedPrecondition, "wrong revision", std::nullopt}),
            TokenProblem::kNone);
  EXPECT_EQ(token_problem_code(TokenProblem::kExpired), "token_expired");
  EXPECT_EQ(token_problem_code(TokenProblem::kNone), "");
}

TEST(RoomTokenTest, ClaimAndSecretChecks) {
  EXPECT_TRUE(check_room_claims(ann_claims()));
  RoomClaims bad = ann_claims();
  bad.participant = "has space";
  EXPECT_FALSE(check_room_claims(bad));
  bad = ann_claims();
  bad.issued_unix_seconds = bad.expires_unix_seconds + 1;
  EXPECT_FALSE(check_room_claims(bad));
  EXPECT_FALSE(check_room_secret(""));
  EXPECT_FALSE(check_room_secret("short"));
  EXPECT_TRUE(check_room_secret(kSecret));
  EXPECT_FALSE(check_room_secret(std::string(1025, 's')));
}

TEST(Base64UrlTest, RoundTripAndCanonicalForm) {
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes += static_cast<char>(i);
  for (size_t size = 0; size <= all_bytes.size(); size += 1) {
    std::string bytes = all_bytes.substr(256 - size);
    std::string text = base64url_encode(bytes);
    EXPECT_EQ(text.find_first_of("+/="), std::string::npos);
    Result<std::string> decoded = base64url_decode(text);
    ASSERT_TRUE(decoded) << text;
    EXPECT_EQ(*decoded, bytes);
  }
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_FALSE(base64url_decode("-_9"));    // non-zero padding bits
  EXPECT_FALSE(base64url_decode("AAAAA"));  // 4n + 1
  EXPECT_FALSE(base64url_decode("AA=="));
  EXPECT_FALSE(base64url_decode("A+/A"));
}

// ---- Event signatures (seed 000) ----

Json vote_event() {
  return Json{{"id", "e1"},
              {"action", "vote_cast"},
              {"payload", {{"activityId", "act-1"}}},
              {"lamport", 5}};
}

TEST(RoomEventSignatureTest, KnownAnswer) {
  // canonical_json of the signed fields (keys sorted, no spaces), then, in a shell:
  //   ev='{"action":"vote_cast","id":"e1","lamport":5,"participant":"ann",
  //        "payload":{"activityId":"act-1"}}'   (on one line)
  //   printf '%s' "$ev" | openssl dgst -sha256 -hmac 'vellum-test-secret-0123456789' -binary |
  //     basenc --base64url -w0 | tr -d '='
  Result<std::string> sig = sign_room_event(vote_event(), "ann", kSecret);
  ASSERT_TRUE(sig) << sig.error().message;
  EXPECT_EQ(*sig, "M2MWBcS1K450d3gdmknVUBtqJQJY_S-_-JJ9F7kjogM");
}

TEST(RoomEventSignatureTest, SignedEventVerifies) {
  Json event = vote_event();
  event["clientTime"] = "whenever";  // not signed: the client's own clock
  Result<std::string> sig = sign_room_event(event, "ann", kSecret);
  ASSERT_TRUE(sig);
  event["sig"] = *sig;
  EXPECT_TRUE(verify_room_event_signature(event, "ann", kSecret));
  // Missing payload and lamport are signed as {} and 0, as the server reads them.
  Json bare = Json{{"id", "e2"}, {"action", "ping"}};
  Json explicit_defaults = bare;
  explicit_defaults["payload"] = Json::object();
  explicit_defaults["lamport"] = 0;
  EXPECT_EQ(*sign_room_event(bare, "ann", kSecret),
            *sign_room_event(explicit_defaults, "ann", kSecret));
}

TEST(RoomEventSignatureTest, Missing) {
  Status status = verify_room_event_signature(vote_event(), "ann", kSecret);
  ASSERT_FALSE(status);
  EXPECT_EQ(token_problem(status.error()), TokenProblem::kSignatureMissing);
  EXPECT_TRUE(status.error().message.starts_with("signature_missing: "));
  EXPECT_EQ(token_problem(verify_room_event_signature(Json(3), "ann", kSecret).error()),
            TokenProblem::kSignatureMissing);
}

TEST(RoomEventSignatureTest, Invalid) {
  Json event = vote_event();
  event["sig"] = *sign_room_event(event, "ann", kSecret);
  auto problem_with = [&](const Json& changed, std::string_view participant = "ann",
                          std::string_view key = kSecret) {
    Status status = verify_room_event_signature(changed, participant, key);
    return status ? TokenProblem::kNone : token_problem(status.error());
  };
  // Another sender, another key.
  EXPECT_EQ(problem_with(event, "bob"), TokenProblem::kSignatureInvalid);
  EXPECT_EQ(problem_with(event, "ann", "another-secret-0123456789"),
            TokenProblem::kSignatureInvalid);
  // Each signed field tampered with.
  Json tampered = event;
  tampered["payload"]["activityId"] = "act-2";
  EXPECT_EQ(problem_with(tampered), TokenProblem::kSignatureInvalid);
  tampered = event;
  tampered["lamport"] = 6;
  EXPECT_EQ(problem_with(tampered), TokenProblem::kSignatureInvalid);
  tampered = event;
  tampered["action"] = "vote_retracted";
  EXPECT_EQ(problem_with(tampered), TokenProblem::kSignatureInvalid);
  tampered = event;
  tampered["id"] = "e9";
  EXPECT_EQ(problem_with(tampered), TokenProblem::kSignatureInvalid);
  tampered = event;
  tampered.erase("payload");
  EXPECT_EQ(problem_with(tampered), TokenProblem::kSignatureInvalid);
  // Signatures that are not one.
  for (const Json& sig : {Json(7), Json(""), Json(std::string(43, '*')),
                          Json(event["sig"].get<std::string>() + "A")}) {
    tampered = event;
    tampered["sig"] = sig;
    EXPECT_EQ(problem_with(tampered), TokenProblem::kSignatureInvalid) << sig.dump();
  }
  // Events that cannot be signed at all.
  for (const char* member : {"id", "action"}) {
    tampered = event;
    tampered.erase(member);
    EXPECT_EQ(problem_with(tampered), TokenProblem::kSignatureInvalid) << member;
  }
  tampered = event;
  tampered["lamport"] = -1;
  EXPECT_EQ(problem_with(tampered), TokenProblem::kSignatureInvalid);
  tampered = event;
  tampered["payload"] = Json{{"x", 1.5}};
  EXPECT_EQ(problem_with(tampered), TokenProblem::kSignatureInvalid);
  EXPECT_FALSE(sign_room_event(tampered, "ann", kSecret));
}

}  // namespace
}  // namespace vellum::rooms
