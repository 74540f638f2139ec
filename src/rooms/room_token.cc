// SPDX-License-Identifier: Apache-2.0
// Room tokens and event signatures (room_token.h). The token format is written down byte by
// byte in docs/api/rooms.md, "Authorization"; a change here is a change there (and a new
// version prefix, since tokens signed by app backends are in flight).
#include "rooms/room_token.h"

#include <algorithm>
#include <array>
#include <utility>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/assert.h"
#include "rooms/reducer.h"
#include "rooms/schema.h"

namespace vellum::rooms {
namespace {

using Json = nlohmann::json;
using Mac = std::array<unsigned char, 32>;

constexpr size_t kMacBase64Chars = 43;  // 32 bytes of base64url without padding
constexpr size_t kAppBytesMax = 64;
constexpr size_t kRoomBytesMax = 128;
constexpr size_t kSecretBytesMin = 16;
constexpr size_t kSecretBytesMax = 1024;

constexpr std::string_view kBase64UrlAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// The codes that start the messages, indexed by TokenProblem.
constexpr std::array<std::string_view, 8> kProblemCodes = {
    "",
    "token_missing",
    "token_malformed",
    "token_forged",
    "token_expired",
    "token_out_of_scope",
    "signature_missing",
    "signature_invalid",
};

tl::unexpected<Error> problem(TokenProblem kind, std::string_view message) {
  return make_error(ErrorCode::kFailedPrecondition,
                    fmt::format("{}: {}", token_problem_code(kind), message));
}

Mac hmac_sha256(std::string_view key, std::string_view data) {
  // Callers check the key at configuration time (check_room_secret); an empty one here would
  // make every signature forgeable, so it is a bug, not input.
  VL_ASSERT(!key.empty());
  Mac mac{};
  unsigned int mac_size = 0;
  const unsigned char* out =
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(), &mac_size);
  VL_ASSERT(out != nullptr && mac_size == mac.size());
  return mac;
}

// Compares a received base64url MAC with the expected one in constant time: how much of a
// guess matched must not leak through timing.
bool mac_matches(std::string_view received_base64, const Mac& expected) {
  if (received_base64.size() != kMacBase64Chars) return false;
  Result<std::string> received = base64url_decode(received_base64);
  if (!received || received->size() != expected.size()) return false;
  return CRYPTO_memcmp(received->data(), expected.data(), expected.size()) == 0;
}

std::string mac_base64(const Mac& mac) {
  return base64url_encode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

bool is_app_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}
bool is_room_char(char c) { return is_app_char(c) || (c >= 'A' && c <= 'Z') || c == '.'; }

// The name rules of docs/api/rooms.md, "Protocol" (the room service checks the same ones).
bool is_app_name(std::string_view app) {
  return !app.empty() && app.size() <= kAppBytesMax &&
         std::all_of(app.begin(), app.end(), is_app_char);
}
bool is_room_name(std::string_view room) {
  return !room.empty() && room.size() <= kRoomBytesMax &&
         std::all_of(room.begin(), room.end(), is_room_char);
}
bool is_participant_name(std::string_view participant) {
  return !participant.empty() && participant.size() <= kParticipantBytesMax &&
         std::all_of(participant.begin(), participant.end(),
                     [](char c) { return c >= 0x21 && c <= 0x7e; });
}

// A claim that is an integer 0 .. 2^53 - 1 (what a JavaScript backend can write exactly).
// Parsed JSON holds non-negative integers as unsigned; JSON built in C++ may hold them signed.
std::optional<int64_t> safe_integer(const Json& value) {
  if (value.is_number_unsigned()) {
    uint64_t number = value.get<uint64_t>();
    if (number > static_cast<uint64_t>(kSafeIntegerMax)) return std::nullopt;
    return static_cast<int64_t>(number);
  }
  if (value.is_number_integer()) {
    int64_t number = value.get<int64_t>();
    if (number < 0 || number > kSafeIntegerMax) return std::nullopt;
    return number;
  }
  return std::nullopt;
}

Result<RoomRights> rights_from_json(const Json& rights) {
  auto invalid = [] {
    return make_error(ErrorCode::kInvalidArgument, R"("rights" is ["read"] or ["read","write"])");
  };
  if (!rights.is_array() || rights.empty() || rights.size() > 2) return invalid();
  bool read = false;
  bool write = false;
  for (const Json& right : rights) {
    if (right == "read" && !read) {
      read = true;
    } else if (right == "write" && !write) {
      write = true;
    } else {
      return invalid();  // unknown, repeated or not a string
    }
  }
  // Write without read would be a participant that cannot see the room it edits.
  if (!read) return invalid();
  return write ? RoomRights::kReadWrite : RoomRights::kRead;
}

Result<std::string> string_claim(const Json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end() || !it->is_string()) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("\"{}\" is not a string", name));
  }
  return it->get<std::string>();
}

// The claims of a payload whose signature held. Unknown members are ignored: an app may sign
// its own claims (a display name, say) into the token.
Result<RoomClaims> claims_from_json(const Json& json) {
  if (!json.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "the payload is not a JSON object");
  }
  RoomClaims claims;
  VL_TRY(app, string_claim(json, "app"));
  VL_TRY(room, string_claim(json, "room"));
  VL_TRY(participant, string_claim(json, "participant"));
  claims.app = std::move(app);
  claims.room = std::move(room);
  claims.participant = std::move(participant);
  auto rights = json.find("rights");
  if (rights == json.end()) return make_error(ErrorCode::kInvalidArgument, "no \"rights\"");
  VL_TRY(parsed_rights, rights_from_json(*rights));
  claims.rights = parsed_rights;
  auto exp = json.find("exp");
  std::optional<int64_t> expires = exp == json.end() ? std::nullopt : safe_integer(*exp);
  if (!expires) {
    return make_error(ErrorCode::kInvalidArgument,
                      "\"exp\" is not an integer from 0 to 2^53 - 1 (Unix seconds)");
  }
  claims.expires_unix_seconds = *expires;
  if (auto iat = json.find("iat"); iat != json.end()) {
    claims.issued_unix_seconds = safe_integer(*iat);
    if (!claims.issued_unix_seconds) {
      return make_error(ErrorCode::kInvalidArgument,
                        "\"iat\" is not an integer from 0 to 2^53 - 1 (Unix seconds)");
    }
  }
  VL_RETURN_IF_ERROR(check_room_claims(claims));
  return claims;
}

Json claims_to_json(const RoomClaims& claims) {
  Json json = Json::object();
  json["app"] = claims.app;
  json["room"] = claims.room;
  json["participant"] = claims.participant;
  json["rights"] = claims.rights == RoomRights::kReadWrite ? Json::array({"read", "write"})
                                                           : Json::array({"read"});
  json["exp"] = claims.expires_unix_seconds;
  if (claims.issued_unix_seconds) json["iat"] = *claims.issued_unix_seconds;
  return json;
}

// The bytes an event signature covers (room_token.h, sign_room_event).
Result<std::string> event_signing_text(const Json& event, std::string_view participant) {
  if (!event.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "the event is not a JSON object");
  }
  auto id = event.find("id");
  auto action = event.find("action");
  if (id == event.end() || !id->is_string()) {
    return make_error(ErrorCode::kInvalidArgument, "the event has no \"id\" string");
  }
  if (action == event.end() || !action->is_string()) {
    return make_error(ErrorCode::kInvalidArgument, "the event has no \"action\" string");
  }
  Json lamport = 0;
  if (auto it = event.find("lamport"); it != event.end()) {
    if (!safe_integer(*it)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "\"lamport\" is not an integer from 0 to 2^53 - 1");
    }
    lamport = *it;
  }
  auto payload = event.find("payload");
  Json signed_fields = {{"id", *id},
                        {"action", *action},
                        {"payload", payload == event.end() ? Json::object() : *payload},
                        {"lamport", lamport},
                        {"participant", participant}};
  Result<std::string> text = canonical_json(signed_fields);
  if (!text) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("the event cannot be signed: {}", text.error().message));
  }
  return text;
}

}  // namespace

std::string_view token_problem_code(TokenProblem problem) {
  return kProblemCodes[static_cast<size_t>(problem)];
}

TokenProblem token_problem(const Error& error) {
  if (error.code != ErrorCode::kFailedPrecondition) return TokenProblem::kNone;
  std::string_view message = error.message;
  for (size_t i = 1; i < kProblemCodes.size(); ++i) {
    std::string_view code = kProblemCodes[i];
    if (message.size() > code.size() && message.starts_with(code) && message[code.size()] == ':') {
      return static_cast<TokenProblem>(i);
    }
  }
  return TokenProblem::kNone;
}

Result<RoomClaims> verify_room_token(std::string_view token, std::string_view secret,
                                     std::string_view app, std::string_view room,
                                     int64_t now_unix_seconds, int64_t clock_skew_seconds) {
  VL_ASSERT(clock_skew_seconds >= 0 && clock_skew_seconds <= kSafeIntegerMax);
  if (token.empty()) return problem(TokenProblem::kMissing, "this room needs a token");
  if (token.size() > kRoomTokenBytesMax) {
    return problem(TokenProblem::kMalformed,
                   fmt::format("a token is at most {} bytes", kRoomTokenBytesMax));
  }
  size_t first_dot = token.find('.');
  size_t last_dot = token.rfind('.');
  if (first_dot == std::string_view::npos || first_dot == last_dot) {
    return problem(TokenProblem::kMalformed, "a token is v1.<payload>.<signature>");
  }
  std::string_view version = token.substr(0, first_dot);
  std::string_view payload = token.substr(first_dot + 1, last_dot - first_dot - 1);
  std::string_view signature = token.substr(last_dot + 1);
  if (version != kRoomTokenVersion) {
    return problem(TokenProblem::kMalformed, "unknown token version (this server reads v1)");
  }
  if (payload.empty() || payload.find('.') != std::string_view::npos) {
    return problem(TokenProblem::kMalformed, "a token is v1.<payload>.<signature>");
  }
  if (signature.size() != kMacBase64Chars) {
    return problem(TokenProblem::kMalformed,
                   fmt::format("the signature is {} base64url characters", kMacBase64Chars));
  }
  // The signature first: nothing an unauthenticated sender wrote reaches the JSON parser.
  if (!mac_matches(signature, hmac_sha256(secret, token.substr(0, last_dot)))) {
    return problem(TokenProblem::kForged, "the token's signature is not this app's");
  }
  Result<std::string> claims_text = base64url_decode(payload);
  if (!claims_text) {
    return problem(TokenProblem::kMalformed,
                   fmt::format("the payload is not base64url: {}", claims_text.error().message));
  }
  Json json = Json::parse(*claims_text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return problem(TokenProblem::kMalformed, "the payload is not JSON");
  Result<RoomClaims> claims = claims_from_json(json);
  if (!claims) return problem(TokenProblem::kMalformed, claims.error().message);

  if (now_unix_seconds > claims->expires_unix_seconds + clock_skew_seconds) {
    return problem(TokenProblem::kExpired,
                   fmt::format("the token expired at {} (now {}, clock skew allowed {} s)",
                               claims->expires_unix_seconds, now_unix_seconds, clock_skew_seconds));
  }
  // A token from the future means a clock (ours or the backend's) is far off: refusing it keeps
  // a token from living longer than its backend meant. (iat - skew cannot overflow: both are
  // at most 2^53 - 1.)
  if (claims->issued_unix_seconds &&
      *claims->issued_unix_seconds - clock_skew_seconds > now_unix_seconds) {
    return problem(TokenProblem::kExpired,
                   fmt::format("the token is issued at {}, in the future (now {}, clock skew "
                               "allowed {} s)",
                               *claims->issued_unix_seconds, now_unix_seconds, clock_skew_seconds));
  }
  if (claims->app != app) {
    return problem(TokenProblem::kOutOfScope,
                   fmt::format("the token is for app '{}', not '{}'", claims->app, app));
  }
  if (claims->room != kAnyRoom && claims->room != room) {
    return problem(TokenProblem::kOutOfScope,
                   fmt::format("the token is for room '{}', not '{}'", claims->room, room));
  }
  return claims;
}

Status require_write(const RoomClaims& claims) {
  if (claims.rights != RoomRights::kReadWrite) {
    return problem(TokenProblem::kOutOfScope,
                   fmt::format("the token of '{}' grants read only", claims.participant));
  }
  return ok_status();
}

Status check_token_participant(const RoomClaims& claims, std::string_view participant) {
  if (claims.participant != participant) {
    return problem(TokenProblem::kOutOfScope,
                   fmt::format("the token is for participant '{}', not '{}'", claims.participant,
                               participant));
  }
  return ok_status();
}

Status check_room_claims(const RoomClaims& claims) {
  if (!is_app_name(claims.app)) {
    return make_error(ErrorCode::kInvalidArgument, "\"app\" is [a-z0-9_-]{1,64}");
  }
  if (claims.room != kAnyRoom && !is_room_name(claims.room)) {
    return make_error(ErrorCode::kInvalidArgument, "\"room\" is [A-Za-z0-9_.-]{1,128} or \"*\"");
  }
  if (!is_participant_name(claims.participant)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "\"participant\" is 1-256 printable ASCII characters without spaces");
  }
  if (claims.expires_unix_seconds < 0 || claims.expires_unix_seconds > kSafeIntegerMax) {
    return make_error(ErrorCode::kInvalidArgument, "\"exp\" is from 0 to 2^53 - 1");
  }
  if (claims.issued_unix_seconds && (*claims.issued_unix_seconds < 0 ||
                                     *claims.issued_unix_seconds > claims.expires_unix_seconds)) {
    return make_error(ErrorCode::kInvalidArgument, "\"iat\" is from 0 to \"exp\"");
  }
  return ok_status();
}

Status check_room_secret(std::string_view secret) {
  if (secret.size() < kSecretBytesMin || secret.size() > kSecretBytesMax) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("a room secret or signing key is {} to {} bytes (32 random "
                                  "bytes recommended)",
                                  kSecretBytesMin, kSecretBytesMax));
  }
  return ok_status();
}

std::string sign_room_token(const RoomClaims& claims, std::string_view secret) {
  VL_ASSERT(check_room_claims(claims).has_value());
  // Valid claims are ASCII strings and safe integers: canonical_json cannot refuse them.
  Result<std::string> claims_json = canonical_json(claims_to_json(claims));
  VL_ASSERT(claims_json.has_value());
  return seal_room_token(*claims_json, secret);
}

std::string seal_room_token(std::string_view claims_json, std::string_view secret) {
  std::string token = fmt::format("{}.{}", kRoomTokenVersion, base64url_encode(claims_json));
  Mac mac = hmac_sha256(secret, token);
  token += '.';
  token += mac_base64(mac);
  return token;
}

Result<std::string> sign_room_event(const nlohmann::json& event, std::string_view participant,
                                    std::string_view key) {
  VL_TRY(text, event_signing_text(event, participant));
  return mac_base64(hmac_sha256(key, text));
}

Status verify_room_event_signature(const nlohmann::json& event, std::string_view participant,
                                   std::string_view key) {
  auto sig_member = event.is_object() ? event.find("sig") : event.end();
  if (sig_member == event.end()) {
    return problem(TokenProblem::kSignatureMissing,
                   "this app signs its events: every event needs \"sig\"");
  }
  const Json& sig = *sig_member;
  if (!sig.is_string() || sig.get_ref<const std::string&>().size() != kMacBase64Chars) {
    return problem(TokenProblem::kSignatureInvalid,
                   fmt::format("\"sig\" is a string of {} base64url characters", kMacBase64Chars));
  }
  Result<std::string> text = event_signing_text(event, participant);
  if (!text) return problem(TokenProblem::kSignatureInvalid, text.error().message);
  if (!mac_matches(sig.get_ref<const std::string&>(), hmac_sha256(key, *text))) {
    return problem(TokenProblem::kSignatureInvalid,
                   "\"sig\" is not this app's signature of the event");
  }
  return ok_status();
}

std::string base64url_encode(std::string_view bytes) {
  std::string text;
  text.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t group = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                     uint32_t(uint8_t(bytes[i + 2]));
    text += kBase64UrlAlphabet[(group >> 18) & 63];
    text += kBase64UrlAlphabet[(group >> 12) & 63];
    text += kBase64UrlAlphabet[(group >> 6) & 63];
    text += kBase64UrlAlphabet[group & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t group = uint32_t(uint8_t(bytes[i])) << 16;
    text += kBase64UrlAlphabet[(group >> 18) & 63];
    text += kBase64UrlAlphabet[(group >> 12) & 63];
  } else if (rest == 2) {
    uint32_t group = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8);
    text += kBase64UrlAlphabet[(group >> 18) & 63];
    text += kBase64UrlAlphabet[(group >> 12) & 63];
    text += kBase64UrlAlphabet[(group >> 6) & 63];
  }
  return text;
}

Result<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) {
    return make_error(ErrorCode::kInvalidArgument, "base64url text of length 4n + 1");
  }
  std::string bytes;
  bytes.reserve(text.size() * 3 / 4);
  uint32_t bits = 0;
  int bit_count = 0;
  for (char c : text) {
    size_t value = kBase64UrlAlphabet.find(c);
    if (value == std::string_view::npos) {
      return make_error(ErrorCode::kInvalidArgument,
                        "a character outside the base64url alphabet (A-Z a-z 0-9 - _, no '=')");
    }
    bits = (bits << 6) | static_cast<uint32_t>(value);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      bytes += static_cast<char>((bits >> bit_count) & 0xff);
      bits &= (uint32_t{1} << bit_count) - 1;
    }
  }
  // 2 or 4 bits are left over after a partial group; a canonical encoder writes them as zeros.
  if (bits != 0) {
    return make_error(ErrorCode::kInvalidArgument, "base64url text with non-zero padding bits");
  }
  return bytes;
}

}  // namespace vellum::rooms
