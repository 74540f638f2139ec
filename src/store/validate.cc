// SPDX-License-Identifier: Apache-2.0
// Checks of caller input against the limits in base/limits.h. Everything
// here returns kInvalidArgument with a message that names the rule broken.
#include <functional>

#include "base/limits.h"
#include "base/text.h"
#include "store/store_impl.h"

namespace vellum::store {
namespace {

tl::unexpected<Error> invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

Status validate_name(std::string_view what, std::string_view name, uint32_t bytes_max) {
  if (name.empty()) return invalid(std::string(what) + " must not be empty");
  if (name.size() > bytes_max) {
    return invalid(std::string(what) + " is longer than " + std::to_string(bytes_max) + " bytes");
  }
  if (name.find('\0') != std::string_view::npos) {
    return invalid(std::string(what) + " must not contain NUL");
  }
  if (!is_valid_utf8(name)) return invalid(std::string(what) + " is not valid UTF-8");
  return ok_status();
}

Status validate_short(std::string_view what, std::string_view value, uint32_t bytes_max) {
  if (value.size() > bytes_max) {
    return invalid(std::string(what) + " is longer than " + std::to_string(bytes_max) + " bytes");
  }
  if (value.find('\0') != std::string_view::npos || !is_valid_utf8(value)) {
    return invalid(std::string(what) + " must be valid UTF-8 without NUL");
  }
  return ok_status();
}

uint64_t mix(uint64_t h, std::string_view s) {
  uint64_t x = std::hash<std::string_view>()(s);
  return (h ^ x) * 0x100000001b3ull + (h >> 29);
}

}  // namespace

Status validate_stream_name(std::string_view stream, bool allow_reserved) {
  VL_RETURN_IF_ERROR(validate_name("stream name", stream, limits::kStreamNameBytesMax));
  if (!allow_reserved && stream.front() == '$') {
    return invalid("stream names starting with '$' are reserved: " + std::string(stream));
  }
  return ok_status();
}

Status validate_event(const EventData& event) {
  VL_RETURN_IF_ERROR(validate_name("event type", event.type, limits::kEventTypeBytesMax));
  if (event.type.front() == '$') return invalid("event types starting with '$' are reserved");
  VL_RETURN_IF_ERROR(
      validate_short("content type", event.content_type, limits::kContentTypeBytesMax));
  VL_RETURN_IF_ERROR(
      validate_short("correlation id", event.correlation_id, limits::kShortFieldBytesMax));
  VL_RETURN_IF_ERROR(
      validate_short("causation id", event.causation_id, limits::kShortFieldBytesMax));
  VL_RETURN_IF_ERROR(validate_short("subject", event.subject, limits::kShortFieldBytesMax));
  if (event.data.size() + event.metadata.size() > limits::kEventBytesMax) {
    return invalid("event data + metadata exceed " + std::to_string(limits::kEventBytesMax) +
                   " bytes (kEventBytesMax)");
  }
  return ok_status();
}

uint64_t event_fingerprint(std::string_view stream, const EventData& event) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (std::string_view part : {stream, std::string_view(event.type), std::string_view(event.data),
                                std::string_view(event.metadata)}) {
    h = mix(h, part);
  }
  return h;
}

uint64_t event_fingerprint(const log::EventView& event) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (std::string_view part : {event.stream, event.type, event.data, event.metadata}) {
    h = mix(h, part);
  }
  return h;
}

}  // namespace vellum::store
