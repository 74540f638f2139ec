// SPDX-License-Identifier: Apache-2.0
// The order aggregate of seed 004 (a food-delivery order), written with the
// Vellum toolkit: typed events, a decide/evolve aggregate, two read models
// from the same events, a refund saga and an audit that replays the log.
//
// Lifecycle: Created -> Confirmed -> Preparing -> Ready -> OutForDelivery ->
// Delivered; Cancelled only from Created, Confirmed or Preparing. Payment is
// captured once, before the kitchen starts; a cancelled order whose payment
// was captured is refunded (by the saga, see order_saga.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "vellum/aggregate.h"

namespace orders {

using vellum::Result;

struct OrderItem {
  std::string sku;
  uint32_t quantity = 1;
  int64_t price_cents = 0;
  friend bool operator==(const OrderItem&, const OrderItem&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OrderItem, sku, quantity, price_cents)

// --- Events (the type names are the wire names) ---
struct OrderCreated {
  static constexpr std::string_view kType = "OrderCreated";
  static constexpr uint32_t kSchemaVersion = 1;
  std::string order_id;
  std::string customer;
  std::string restaurant;
  std::vector<OrderItem> items;
  int64_t total_cents = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OrderCreated, order_id, customer, restaurant, items, total_cents)

// The lifecycle steps carry nothing but the fact itself.
#define ORDERS_STEP_EVENT(Name)                                                             \
  struct Name {                                                                             \
    static constexpr std::string_view kType = #Name;                                        \
    static constexpr uint32_t kSchemaVersion = 1;                                           \
    friend void to_json(vellum::Json& json, const Name&) { json = vellum::Json::object(); } \
    friend void from_json(const vellum::Json&, Name&) {}                                    \
  };
ORDERS_STEP_EVENT(OrderConfirmed)
ORDERS_STEP_EVENT(OrderPreparing)
ORDERS_STEP_EVENT(OrderReady)
ORDERS_STEP_EVENT(OrderOutForDelivery)
ORDERS_STEP_EVENT(OrderDelivered)
#undef ORDERS_STEP_EVENT

struct OrderCancelled {
  static constexpr std::string_view kType = "OrderCancelled";
  static constexpr uint32_t kSchemaVersion = 1;
  std::string reason;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OrderCancelled, reason)

struct PaymentCaptured {
  static constexpr std::string_view kType = "PaymentCaptured";
  static constexpr uint32_t kSchemaVersion = 1;
  int64_t amount_cents = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PaymentCaptured, amount_cents)

struct RefundIssued {
  static constexpr std::string_view kType = "RefundIssued";
  static constexpr uint32_t kSchemaVersion = 1;
  int64_t amount_cents = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RefundIssued, amount_cents)

// --- State ---
enum class Status : uint8_t {
  kNone,  // not created yet
  kCreated,
  kConfirmed,
  kPreparing,
  kReady,
  kOutForDelivery,
  kDelivered,
  kCancelled,
};
NLOHMANN_JSON_SERIALIZE_ENUM(Status, {{Status::kNone, "none"},
                                      {Status::kCreated, "created"},
                                      {Status::kConfirmed, "confirmed"},
                                      {Status::kPreparing, "preparing"},
                                      {Status::kReady, "ready"},
                                      {Status::kOutForDelivery, "out_for_delivery"},
                                      {Status::kDelivered, "delivered"},
                                      {Status::kCancelled, "cancelled"}})
std::string_view status_name(Status status);

struct OrderState {
  Status status = Status::kNone;
  std::string customer;
  std::string restaurant;
  int64_t total_cents = 0;
  int64_t paid_cents = 0;
  int64_t refunded_cents = 0;
  friend bool operator==(const OrderState&, const OrderState&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OrderState, status, customer, restaurant, total_cents,
                                   paid_cents, refunded_cents)

// --- Commands ---
struct CreateOrder {
  std::string order_id;
  std::string customer;
  std::string restaurant;
  std::vector<OrderItem> items;
};
struct ConfirmOrder {};
struct StartPreparing {};
struct MarkReady {};
struct Dispatch {};
struct Deliver {};
struct CancelOrder {
  std::string reason;
};
struct CapturePayment {
  int64_t amount_cents = 0;
};
struct RefundPayment {};

struct Order {
  using Codec = vellum::EventCodec<OrderCreated, OrderConfirmed, OrderPreparing, OrderReady,
                                   OrderOutForDelivery, OrderDelivered, OrderCancelled,
                                   PaymentCaptured, RefundIssued>;
  using Event = Codec::Event;
  using State = OrderState;
  using Command = std::variant<CreateOrder, ConfirmOrder, StartPreparing, MarkReady, Dispatch,
                               Deliver, CancelOrder, CapturePayment, RefundPayment>;
  static constexpr std::string_view kCategory = "order";
  static constexpr uint32_t kLogicVersion = 1;

  static State initial() { return {}; }
  static State evolve(State state, const Event& event);
  // Business-rule violations are kFailedPrecondition errors naming the rule;
  // malformed commands are kInvalidArgument.
  static Result<std::vector<Event>> decide(const State& state, const Command& command);
};

using OrderStore = vellum::AggregateStore<Order>;

}  // namespace orders
