// SPDX-License-Identifier: Apache-2.0
// Room authorization (docs/api/rooms.md, "Authorization"): signed room tokens and signed room
// events. An app's backend, which knows its users, signs a short-lived token naming the app, the
// room, the participant and the rights; Vellum, which shares the app's secret, checks it when a
// participant joins. An app may also give its clients a signing key: every event they submit
// then carries an HMAC of its meaningful fields (seed 000), which Vellum checks before commit.
//
// Pure functions: no I/O, no clock (the caller passes the time), no state. Every byte of a token
// or an event comes from outside, so every problem is an error Result, never an assertion or an
// exception. HMAC-SHA256 and the constant-time compare are OpenSSL's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "vellum/result.h"

namespace vellum::rooms {

// The tokens this code writes and reads: "v1.<payload>.<signature>".
inline constexpr std::string_view kRoomTokenVersion = "v1";
// Tokens travel in a URL query parameter: longer ones are refused before any work.
inline constexpr size_t kRoomTokenBytesMax = 4 * 1024;
// How far the server's clock may be behind or ahead of the backend that signed a token.
inline constexpr int64_t kRoomTokenClockSkewSeconds = 60;
// A token's room claim that grants every room of the app.
inline constexpr std::string_view kAnyRoom = "*";

// What a token lets its participant do in the room.
enum class RoomRights {
  kRead,       // ["read"]: join, receive events and presence, send presence
  kReadWrite,  // ["read","write"]: also submit events
};

// The claims of a room token, the JSON object its payload encodes.
struct RoomClaims {
  std::string app;          // "app": [a-z0-9_-]{1,64}
  std::string room;         // "room": [A-Za-z0-9_.-]{1,128}, or "*" for any room of the app
  std::string participant;  // "participant": 1-256 printable ASCII characters, no spaces
  RoomRights rights = RoomRights::kRead;       // "rights"
  int64_t expires_unix_seconds = 0;            // "exp": 0 .. 2^53 - 1
  std::optional<int64_t> issued_unix_seconds;  // "iat": optional, 0 .. exp
};

// Why a token (or an event signature) was refused: the stable machine code that starts the
// error's message, e.g. "token_expired: the token expired at 1700000000 (now 1700000100)".
enum class TokenProblem {
  kNone,              // not a token error (or no error at all)
  kMissing,           // "token_missing": no token, and the app requires one
  kMalformed,         // "token_malformed": not v1.<payload>.<signature>, bad base64url,
                      // bad JSON, or a claim missing or invalid (after the signature held)
  kForged,            // "token_forged": the signature is not the app secret's
  kExpired,           // "token_expired": past exp + skew, or iat later than now + skew
  kOutOfScope,        // "token_out_of_scope": another app or room, or a missing right
  kSignatureMissing,  // "signature_missing": an event without "sig" (signing key set)
  kSignatureInvalid,  // "signature_invalid": an event whose "sig" is not the key's
};

// The code that starts messages of `problem` ("token_expired"); "" for kNone.
std::string_view token_problem_code(TokenProblem problem);
// The problem an error of this file reports, read from its message's code; kNone for any other
// error. Every such error has ErrorCode kFailedPrecondition: do not retry with the same token
// or event, get a new token (or sign again) first.
TokenProblem token_problem(const Error& error);

// Checks a room token for `app` and `room` (a concrete room name) at `now_unix_seconds`, with
// `secret` the app's secret (non-empty: check_room_secret at configuration time). The checks run
// in this order, and the first that fails is reported:
//   kMissing     `token` is empty;
//   kMalformed   longer than kRoomTokenBytesMax, not three dot-separated parts, a version other
//                than "v1", a signature that is not 43 base64url characters;
//   kForged      the signature is not HMAC-SHA256(secret, "v1." + payload) — nothing of the
//                payload is decoded before this holds;
//   kMalformed   the payload is not base64url of a JSON object whose claims are valid;
//   kExpired     now > exp + clock_skew_seconds, or iat > now + clock_skew_seconds;
//   kOutOfScope  the token's app is not `app`, or its room is neither `room` nor "*".
// Rights are not checked here: the claims say what the participant may do (require_write).
// The participant is the token's: the caller uses claims.participant as the identity (or
// refuses a request naming another one, check_token_participant).
Result<RoomClaims> verify_room_token(std::string_view token, std::string_view secret,
                                     std::string_view app, std::string_view room,
                                     int64_t now_unix_seconds,
                                     int64_t clock_skew_seconds = kRoomTokenClockSkewSeconds);

// kOutOfScope ("token_out_of_scope: ... read only") unless the claims grant write.
Status require_write(const RoomClaims& claims);
// kOutOfScope unless the claims name `participant`: one participant never acts as another.
Status check_token_participant(const RoomClaims& claims, std::string_view participant);

// Checks every claim as verify_room_token does (names, exp and iat ranges; not the time).
// Errors: kInvalidArgument naming the claim.
Status check_room_claims(const RoomClaims& claims);
// An app secret or event signing key: 16 to 1,024 bytes (32 random bytes recommended).
// Errors: kInvalidArgument.
Status check_room_secret(std::string_view secret);

// The token for `claims` (which must pass check_room_claims) signed with `secret` (non-empty):
// the payload is the claims' canonical JSON (keys sorted, no whitespace), so the same claims
// and secret always give the same token. For app backends, tests and `vellum room-token`.
std::string sign_room_token(const RoomClaims& claims, std::string_view secret);
// "v1.<base64url(claims_json)>.<signature>" for any bytes: tokens whose payload sign_room_token
// would never write (bad JSON, missing claims), for tests and the fuzz target.
std::string seal_room_token(std::string_view claims_json, std::string_view secret);

// The signature of a submitted room event (seed 000): base64url without padding of
// HMAC-SHA256(key, canonical_json({"id","action","payload","lamport","participant"})), where
// `participant` is the sender (the token's participant, never a field of the event), a missing
// payload is {} and a missing lamport 0, as the server reads a submit. Errors:
// kInvalidArgument when the event has no string "id" or "action", a lamport that is not an
// integer 0 .. 2^53 - 1, or a payload canonical_json refuses (a non-integer number).
Result<std::string> sign_room_event(const nlohmann::json& event, std::string_view participant,
                                    std::string_view key);
// Checks the "sig" member of a submitted event against sign_room_event's signature.
// Errors (kFailedPrecondition): kSignatureMissing when "sig" is absent; kSignatureInvalid when
// it is not a string of 43 base64url characters, does not match, or the event cannot be signed
// (the reason sign_room_event gives).
Status verify_room_event_signature(const nlohmann::json& event, std::string_view participant,
                                   std::string_view key);

// base64url (RFC 4648 section 5) without padding; exposed for tests and the CLI.
std::string base64url_encode(std::string_view bytes);
// Errors: kInvalidArgument for padding, a character outside the alphabet, a length of 4n + 1,
// or leftover bits that are not zero (only the canonical form of each byte string is accepted).
Result<std::string> base64url_decode(std::string_view text);

}  // namespace vellum::rooms
