// SPDX-License-Identifier: Apache-2.0
// Typed events: mapping C++ event structs to (type name, schema version, JSON
// data) and back, with upcasting of data written by older schema versions.
//
// An event type is a struct with two static members and nlohmann::json
// conversions, which nlohmann's macro writes for you (no per-field code):
//
//   struct OrderCreated {
//     static constexpr std::string_view kType = "OrderCreated";
//     static constexpr uint32_t kSchemaVersion = 2;
//     std::string order_id;
//     std::string restaurant;
//     int64_t total_cents = 0;
//   };
//   NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OrderCreated, order_id, restaurant, total_cents)
//
//   Upcasters up;
//   up.add("OrderCreated", 1, [](Json v1) -> Result<Json> {   // v1 had "total" in units
//     v1["total_cents"] = v1["total"].get<int64_t>() * 100;
//     v1.erase("total");
//     return v1;
//   });
//   EventCodec<OrderCreated, OrderConfirmed> codec(std::move(up));
//   EventData data = codec.encode(OrderCreated{...});       // type, version 2, JSON
//   Result<EventCodec<...>::Event> e = codec.decode(recorded);  // v1 data comes back as v2
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

#include "vellum/event.h"
#include "vellum/result.h"

namespace vellum {

// Sorted keys, so that encoding the same value always gives the same bytes.
using Json = nlohmann::json;

template <class T>
concept TypedEvent = requires(const T& value, const Json& json) {
  { T::kType } -> std::convertible_to<std::string_view>;
  { T::kSchemaVersion } -> std::convertible_to<uint32_t>;
  {Json(value)};
  { json.get<T>() } -> std::same_as<T>;
};

// Converters of event data from one schema version to the next. Reading goes
// through every step from the stored version to the version the code knows:
// 1 -> 2 -> 3. A converter is a pure function of the data.
class Upcasters {
 public:
  using Convert = std::function<Result<Json>(Json data)>;

  // Registers the step from `from_version` to `from_version + 1` of `type`.
  // Registering the same step twice is a bug (asserted).
  void add(std::string type, uint32_t from_version, Convert convert);

  // Brings `data` of `type`, written at schema `version`, up to `target`.
  // Errors: kFailedPrecondition when a step is missing or `version` > `target`
  // (written by newer code than this reader); a converter's own error.
  Result<Json> upcast(std::string_view type, uint32_t version, Json data, uint32_t target) const;

  bool empty() const { return steps_.empty(); }

 private:
  std::map<std::pair<std::string, uint32_t>, Convert, std::less<>> steps_;
};

namespace detail {
// Parses event data as JSON. Errors: kInvalidArgument naming the type.
Result<Json> parse_event_data(std::string_view type, std::string_view data);
Error decode_error(std::string_view type, std::string_view what);
}  // namespace detail

// Encodes and decodes the event types Ts (each a TypedEvent with a distinct
// kType) as the alternatives of Event = std::variant<Ts...>.
template <TypedEvent... Ts>
class EventCodec {
 public:
  using Event = std::variant<Ts...>;

  EventCodec() = default;
  explicit EventCodec(Upcasters upcasters) : upcasters_(std::move(upcasters)) {}

  // The EventData to append: type, current schema version and JSON data.
  // Ids, correlation and subject are for the caller to fill in.
  static EventData encode(const Event& event) {
    return std::visit(
        [](const auto& typed) {
          using T = std::decay_t<decltype(typed)>;
          EventData data;
          data.type = std::string(T::kType);
          data.schema_version = T::kSchemaVersion;
          data.data = Json(typed).dump();
          return data;
        },
        event);
  }

  // True if `type` is one of Ts.
  static bool knows(std::string_view type) { return ((Ts::kType == type) || ...); }

  // Decodes stored data of `type` at schema `version`, upcasting it first.
  // Errors: kNotFound for a type that is none of Ts; kInvalidArgument for
  // data that is not valid JSON or does not fit the struct;
  // kFailedPrecondition from upcasting (a version newer than the code).
  Result<Event> decode(std::string_view type, uint32_t version, std::string_view data) const {
    Result<Event> result = make_error(ErrorCode::kNotFound, "unknown event type");
    bool matched =
        ((Ts::kType == type ? (result = decode_as<Ts>(version, data), true) : false) || ...);
    if (!matched) {
      return make_error(ErrorCode::kNotFound, "unknown event type '" + std::string(type) + "'");
    }
    return result;
  }

  Result<Event> decode(const RecordedEvent& event) const {
    return decode(event.type, event.schema_version, event.data);
  }
  Result<Event> decode(const EventRef& event) const {
    return decode(event.type, event.schema_version, event.data);
  }

  const Upcasters& upcasters() const { return upcasters_; }

 private:
  template <class T>
  Result<Event> decode_as(uint32_t version, std::string_view data) const {
    VL_TRY(json, detail::parse_event_data(T::kType, data));
    if (version != T::kSchemaVersion) {
      VL_TRY(upcast, upcasters_.upcast(T::kType, version, std::move(json), T::kSchemaVersion));
      json = std::move(upcast);
    }
    try {
      return Event(std::in_place_type<T>, json.template get<T>());
    } catch (const Json::exception& e) {
      return tl::unexpected(detail::decode_error(T::kType, e.what()));
    }
  }

  Upcasters upcasters_;
};

}  // namespace vellum
