// SPDX-License-Identifier: Apache-2.0
#include "order.h"

namespace orders {

using vellum::ErrorCode;
using vellum::make_error;

std::string_view status_name(Status status) {
  switch (status) {
    case Status::kNone:
      return "none";
    case Status::kCreated:
      return "created";
    case Status::kConfirmed:
      return "confirmed";
    case Status::kPreparing:
      return "preparing";
    case Status::kReady:
      return "ready";
    case Status::kOutForDelivery:
      return "out_for_delivery";
    case Status::kDelivered:
      return "delivered";
    case Status::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

namespace {

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};

using Events = std::vector<Order::Event>;

Result<Events> rule_broken(const OrderState& state, std::string_view what) {
  return make_error(
      ErrorCode::kFailedPrecondition,
      std::string(what) + " (order is " + std::string(status_name(state.status)) + ")");
}

// One step of the lifecycle: allowed only from `from`.
Result<Events> step(const OrderState& state, Status from, Order::Event event,
                    std::string_view what) {
  if (state.status != from) return rule_broken(state, what);
  return Events{std::move(event)};
}

Result<Events> create(const OrderState& state, const CreateOrder& command) {
  if (state.status != Status::kNone) return rule_broken(state, "order already exists");
  if (command.customer.empty() || command.restaurant.empty() || command.items.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "an order needs a customer, a restaurant and at least one item");
  }
  int64_t total = 0;
  for (const OrderItem& item : command.items) {
    if (item.quantity == 0 || item.price_cents < 0) {
      return make_error(ErrorCode::kInvalidArgument, "bad quantity or price for " + item.sku);
    }
    total += item.price_cents * item.quantity;
  }
  return Events{
      OrderCreated{command.order_id, command.customer, command.restaurant, command.items, total}};
}

Result<Events> cancel(const OrderState& state, const CancelOrder& command) {
  const bool early = state.status == Status::kCreated || state.status == Status::kConfirmed ||
                     state.status == Status::kPreparing;
  if (!early) return rule_broken(state, "only created, confirmed or preparing orders cancel");
  return Events{OrderCancelled{command.reason}};
}

Result<Events> capture(const OrderState& state, const CapturePayment& command) {
  if (state.paid_cents > 0) return rule_broken(state, "payment already captured");
  if (state.status != Status::kCreated && state.status != Status::kConfirmed) {
    return rule_broken(state, "payment is captured before preparation");
  }
  if (command.amount_cents != state.total_cents) {
    return make_error(ErrorCode::kInvalidArgument, "payment must equal the order total");
  }
  return Events{PaymentCaptured{command.amount_cents}};
}

Result<Events> refund(const OrderState& state) {
  if (state.status != Status::kCancelled) return rule_broken(state, "only cancelled orders refund");
  if (state.paid_cents == 0) return rule_broken(state, "nothing was paid");
  if (state.refunded_cents > 0) return rule_broken(state, "already refunded");
  return Events{RefundIssued{state.paid_cents}};
}

}  // namespace

OrderState Order::evolve(OrderState state, const Event& event) {
  std::visit(Overloaded{
                 [&](const OrderCreated& e) {
                   state.status = Status::kCreated;
                   state.customer = e.customer;
                   state.restaurant = e.restaurant;
                   state.total_cents = e.total_cents;
                 },
                 [&](const OrderConfirmed&) { state.status = Status::kConfirmed; },
                 [&](const OrderPreparing&) { state.status = Status::kPreparing; },
                 [&](const OrderReady&) { state.status = Status::kReady; },
                 [&](const OrderOutForDelivery&) { state.status = Status::kOutForDelivery; },
                 [&](const OrderDelivered&) { state.status = Status::kDelivered; },
                 [&](const OrderCancelled&) { state.status = Status::kCancelled; },
                 [&](const PaymentCaptured& e) { state.paid_cents = e.amount_cents; },
                 [&](const RefundIssued& e) { state.refunded_cents = e.amount_cents; },
             },
             event);
  return state;
}

Result<Events> Order::decide(const OrderState& state, const Command& command) {
  return std::visit(
      Overloaded{
          [&](const CreateOrder& c) { return create(state, c); },
          [&](const ConfirmOrder&) {
            return step(state, Status::kCreated, OrderConfirmed{}, "only created orders confirm");
          },
          [&](const StartPreparing&) {
            return step(state, Status::kConfirmed, OrderPreparing{},
                        "only confirmed orders go to the kitchen");
          },
          [&](const MarkReady&) {
            return step(state, Status::kPreparing, OrderReady{}, "only preparing orders get ready");
          },
          [&](const Dispatch&) {
            return step(state, Status::kReady, OrderOutForDelivery{},
                        "only ready orders go out for delivery");
          },
          [&](const Deliver&) {
            return step(state, Status::kOutForDelivery, OrderDelivered{},
                        "only orders out for delivery are delivered");
          },
          [&](const CancelOrder& c) { return cancel(state, c); },
          [&](const CapturePayment& c) { return capture(state, c); },
          [&](const RefundPayment&) { return refund(state); },
      },
      command);
}

}  // namespace orders
