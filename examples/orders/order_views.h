// SPDX-License-Identifier: Apache-2.0
// What the order system builds from the order events (seed 004, seed 003):
//
//  - "order-summary": key-value read model, one JSON document per order:
//      key "<order id>" -> {"status","customer","restaurant","totalCents",
//                           "paidCents","refundedCents","lastPosition"}
//  - "restaurant-dashboard": one JSON document per restaurant:
//      key "<restaurant>" -> {"active","delivered","cancelled","revenueCents"}
//    (plus private bookkeeping keys "~order/<id>", which the dashboard needs
//    to know an order's restaurant and total when later events arrive)
//  - "refund-saga": a process manager. When an order's PaymentCaptured and
//    OrderCancelled have both happened it issues RefundPayment, with the
//    command id "refund-<order id>" so a replayed saga never refunds twice.
//    Its own state (per order: paid, cancelled, refund requested) is a
//    key-value read model with its checkpoint in the same batch.
//
// find_missing_refunds() is the audit of seed 003's case study: it replays
// the whole log and lists cancelled, paid orders that were never refunded.
#pragma once

#include <string>
#include <vector>

#include "vellum/projection.h"

#include "order.h"

namespace orders {

vellum::ProjectionSpec order_summary_projection(vellum::ToolkitDb& db);
vellum::ProjectionSpec restaurant_dashboard_projection(vellum::ToolkitDb& db);
// `orders` must outlive the projection.
vellum::ProjectionSpec refund_saga_projection(vellum::ToolkitDb& db, OrderStore& orders);

struct MissingRefund {
  std::string order_id;
  int64_t paid_cents = 0;
  uint64_t cancelled_at_position = 0;
  friend bool operator==(const MissingRefund&, const MissingRefund&) = default;
};
Result<std::vector<MissingRefund>> find_missing_refunds(vellum::Store& store);

// "order-17" -> "17".
std::string order_id_of(std::string_view stream);

}  // namespace orders
