// SPDX-License-Identifier: Apache-2.0
// Errors as values: Result<T> holds either a T or an Error. Every call of the
// public API that the outside world can make fail returns one of these; bugs
// are assertions, never Results (see ARCHITECTURE.md, "Error model").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace vellum {

// Canonical error codes. The numbering mirrors the gRPC status codes so a
// gRPC layer maps them 1:1; the HTTP mapping is one table in docs/api/.
//
// Retry rules (abseil's): kUnavailable = retry the same call; kAborted =
// retry at a higher level; kFailedPrecondition = do not retry until the state
// changes (for example a wrong expected stream revision).
enum class ErrorCode : int {
  kCancelled = 1,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  // Project-specific codes start at 100.
  kIoError = 100,
  kStreamDeleted = 101,  // the stream is tombstoned: permanently deleted
};

// Returns the code's name, e.g. "kDataLoss" -> "data_loss".
const char* error_code_name(ErrorCode code);

// Carried by kFailedPrecondition errors caused by a wrong expected revision.
struct RevisionConflict {
  std::string stream;
  std::string expected;     // "any", "no_stream", "stream_exists" or a number
  int64_t actual_revision;  // -1: the stream does not exist (or is deleted)
};

// An error is a value: a code that callers branch on, and a message that
// humans read.
struct Error {
  ErrorCode code;
  std::string message;
  std::optional<RevisionConflict> conflict;
};

// Result<T> holds either a T or an Error. [[nodiscard]]: ignoring one is a
// warning, and CI builds with -Werror.
template <class T>
class [[nodiscard]] Result : public tl::expected<T, Error> {
 public:
  using tl::expected<T, Error>::expected;
  Result(tl::expected<T, Error> other)  // NOLINT(google-explicit-constructor)
      : tl::expected<T, Error>(std::move(other)) {}
};

using Status = Result<void>;

inline tl::unexpected<Error> make_error(ErrorCode code, std::string message) {
  return tl::unexpected<Error>(Error{code, std::move(message), std::nullopt});
}

inline tl::unexpected<Error> make_error(Error error) {
  return tl::unexpected<Error>(std::move(error));
}

inline Status ok_status() { return {}; }

}  // namespace vellum

// VL_TRY(v, expr): evaluates expr (a Result); returns its error from the
// enclosing function, or binds its value to a new variable v.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define VL_CONCAT_INNER_(a, b) a##b
#define VL_CONCAT_(a, b) VL_CONCAT_INNER_(a, b)
#define VL_TRY(var, expr) VL_TRY_IMPL_(var, expr, VL_CONCAT_(vl_try_, __LINE__))
#define VL_TRY_IMPL_(var, expr, tmp)                                     \
  auto tmp = (expr);                                                     \
  if (!tmp.has_value()) return ::tl::unexpected(std::move(tmp).error()); \
  auto var = std::move(*tmp)
// VL_RETURN_IF_ERROR(expr): for Status and any Result whose value is unused.
#define VL_RETURN_IF_ERROR(expr)                              \
  do {                                                        \
    auto vl_status_ = (expr);                                 \
    if (!vl_status_.has_value()) {                            \
      return ::tl::unexpected(std::move(vl_status_).error()); \
    }                                                         \
  } while (false)
// NOLINTEND(bugprone-macro-parentheses)
