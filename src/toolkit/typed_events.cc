// SPDX-License-Identifier: Apache-2.0
#include "vellum/typed_events.h"

#include "base/assert.h"

namespace vellum {

void Upcasters::add(std::string type, uint32_t from_version, Convert convert) {
  VL_ASSERT(convert != nullptr);
  auto [it, inserted] =
      steps_.emplace(std::make_pair(std::move(type), from_version), std::move(convert));
  VL_ASSERT(inserted && "an upcasting step is registered twice");
}

Result<Json> Upcasters::upcast(std::string_view type, uint32_t version, Json data,
                               uint32_t target) const {
  if (version > target) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "event type '" + std::string(type) + "' has schema version " +
                          std::to_string(version) + ", newer than this code's " +
                          std::to_string(target) + ": upgrade the reader");
  }
  for (uint32_t at = version; at < target; ++at) {
    auto step = steps_.find(std::make_pair(std::string(type), at));
    if (step == steps_.end()) {
      return make_error(ErrorCode::kFailedPrecondition,
                        "no upcaster for event type '" + std::string(type) + "' from schema " +
                            "version " + std::to_string(at) + " to " + std::to_string(at + 1));
    }
    VL_TRY(next, step->second(std::move(data)));
    data = std::move(next);
  }
  return data;
}

namespace detail {

Result<Json> parse_event_data(std::string_view type, std::string_view data) {
  Json json = Json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the data of an event of type '" + std::string(type) + "' is not JSON");
  }
  return json;
}

Error decode_error(std::string_view type, std::string_view what) {
  return Error{ErrorCode::kInvalidArgument,
               "the data of an event of type '" + std::string(type) +
                   "' does not fit its C++ type: " + std::string(what),
               std::nullopt};
}

}  // namespace detail
}  // namespace vellum
