// SPDX-License-Identifier: Apache-2.0
#include "order_views.h"

#include <map>

namespace orders {

using vellum::ErrorCode;
using vellum::EventRef;
using vellum::Json;
using vellum::KvView;

namespace {

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};

vellum::ProjectionSource order_events() {
  vellum::ProjectionSource source;
  source.filter.category = std::string(Order::kCategory);
  return source;
}

// The stored JSON document of `key`, or an empty object.
Result<Json> load_document(KvView& view, std::string_view key) {
  VL_TRY(value, view.get(key));
  if (!value) return Json::object();
  Json json = Json::parse(*value, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return vellum::make_error(ErrorCode::kDataLoss,
                              "read model value of '" + std::string(key) + "' is not JSON");
  }
  return json;
}

// Decodes with the aggregate's codec: the read models see the same (upcast)
// event shapes as the aggregate.
Result<Order::Event> decode(const EventRef& ref) {
  static const Order::Codec codec;
  Result<Order::Event> event = codec.decode(ref);
  if (!event)
    return tl::unexpected(vellum::detail::with_context(event.error(), ref.stream, ref.revision));
  return event;
}

vellum::Status apply_summary(const EventRef& ref, KvView& view) {
  VL_TRY(event, decode(ref));
  const std::string id = order_id_of(ref.stream);
  VL_TRY(summary, load_document(view, id));
  OrderState state;
  if (!summary.empty()) {
    state.status = summary.at("status").get<Status>();
    state.customer = summary.at("customer").get<std::string>();
    state.restaurant = summary.at("restaurant").get<std::string>();
    state.total_cents = summary.at("totalCents").get<int64_t>();
    state.paid_cents = summary.at("paidCents").get<int64_t>();
    state.refunded_cents = summary.at("refundedCents").get<int64_t>();
  }
  state = Order::evolve(std::move(state), event);
  summary = Json{{"status", state.status},         {"customer", state.customer},
                 {"restaurant", state.restaurant}, {"totalCents", state.total_cents},
                 {"paidCents", state.paid_cents},  {"refundedCents", state.refunded_cents},
                 {"lastPosition", ref.position}};
  view.put(id, summary.dump());
  return vellum::ok_status();
}

vellum::Status apply_dashboard(const EventRef& ref, KvView& view) {
  VL_TRY(event, decode(ref));
  const std::string order_key = "~order/" + order_id_of(ref.stream);
  VL_TRY(order, load_document(view, order_key));
  if (const auto* created = std::get_if<OrderCreated>(&event)) {
    order = Json{{"restaurant", created->restaurant}, {"totalCents", created->total_cents}};
    view.put(order_key, order.dump());
  }
  if (order.empty()) return vellum::ok_status();  // an order created before the read model's start
  const std::string restaurant = order.at("restaurant").get<std::string>();
  VL_TRY(board, load_document(view, restaurant));
  for (const char* field : {"active", "delivered", "cancelled", "revenueCents"}) {
    if (!board.contains(field)) board[field] = 0;
  }
  auto add = [&](const char* field, int64_t delta) {
    board[field] = board[field].get<int64_t>() + delta;
  };
  std::visit(Overloaded{
                 [&](const OrderCreated&) { add("active", 1); },
                 [&](const OrderDelivered&) {
                   add("active", -1);
                   add("delivered", 1);
                   add("revenueCents", order.at("totalCents").get<int64_t>());
                 },
                 [&](const OrderCancelled&) {
                   add("active", -1);
                   add("cancelled", 1);
                 },
                 [&](const auto&) {},
             },
             event);
  view.put(restaurant, board.dump());
  return vellum::ok_status();
}

class RefundSaga {
 public:
  explicit RefundSaga(OrderStore& orders) : orders_(orders) {}

  vellum::Status apply(const EventRef& ref, KvView& view) {
    VL_TRY(event, decode(ref));
    const std::string id = order_id_of(ref.stream);
    VL_TRY(saga, load_document(view, id));
    bool changed = std::visit(Overloaded{
                                  [&](const PaymentCaptured& e) {
                                    saga["paidCents"] = e.amount_cents;
                                    return true;
                                  },
                                  [&](const OrderCancelled&) {
                                    saga["cancelled"] = true;
                                    return true;
                                  },
                                  [&](const RefundIssued&) {
                                    saga["refunded"] = true;
                                    return true;
                                  },
                                  [&](const auto&) { return false; },
                              },
                              event);
    if (!changed) return vellum::ok_status();
    if (refund_due(saga)) VL_RETURN_IF_ERROR(request_refund(id, ref, saga));
    view.put(id, saga.dump());
    return vellum::ok_status();
  }

 private:
  static bool refund_due(const Json& saga) {
    return saga.value("paidCents", int64_t{0}) > 0 && saga.value("cancelled", false) &&
           !saga.value("refunded", false) && !saga.value("refundRequested", false);
  }

  // The command id makes the request idempotent: a saga replayed after a
  // crash or a rebuild finds the refund already applied.
  vellum::Status request_refund(const std::string& id, const EventRef& trigger, Json& saga) {
    vellum::CommandContext context;
    context.command_id = "refund-" + id;
    context.causation_id = trigger.id.to_string();
    context.correlation_id = std::string(trigger.correlation_id);
    Result<vellum::CommandResult<Order>> done = orders_.handle(id, RefundPayment{}, context);
    if (!done && done.error().code != ErrorCode::kFailedPrecondition) {
      return tl::unexpected(std::move(done).error());
    }
    // kFailedPrecondition: refunded already (say, by hand); nothing to do.
    saga["refundRequested"] = true;
    return vellum::ok_status();
  }

  OrderStore& orders_;
};

vellum::ProjectionSpec kv_projection(
    vellum::ToolkitDb& db, std::string name,
    std::function<vellum::Status(const EventRef&, KvView&)> handle) {
  vellum::ProjectionSpec spec;
  spec.name = name;
  spec.source = order_events();
  spec.sink = vellum::make_kv_sink(db, std::move(name), std::move(handle));
  return spec;
}

}  // namespace

std::string order_id_of(std::string_view stream) {
  const size_t dash = stream.find('-');
  return std::string(dash == std::string_view::npos ? stream : stream.substr(dash + 1));
}

vellum::ProjectionSpec order_summary_projection(vellum::ToolkitDb& db) {
  return kv_projection(db, "order-summary", apply_summary);
}

vellum::ProjectionSpec restaurant_dashboard_projection(vellum::ToolkitDb& db) {
  return kv_projection(db, "restaurant-dashboard", apply_dashboard);
}

vellum::ProjectionSpec refund_saga_projection(vellum::ToolkitDb& db, OrderStore& orders) {
  auto saga = std::make_shared<RefundSaga>(orders);
  return kv_projection(db, "refund-saga", [saga](const EventRef& ref, KvView& view) {
    return saga->apply(ref, view);
  });
}

Result<std::vector<MissingRefund>> find_missing_refunds(vellum::Store& store) {
  struct Seen {
    int64_t paid_cents = 0;
    std::optional<uint64_t> cancelled_at;
    bool refunded = false;
  };
  std::map<std::string, Seen> seen;
  vellum::ReadAllOptions options;
  options.filter.category = std::string(Order::kCategory);
  options.filter.types = {std::string(PaymentCaptured::kType), std::string(OrderCancelled::kType),
                          std::string(RefundIssued::kType)};
  options.max_count = 1000;
  vellum::Status failed = vellum::ok_status();
  auto visit = [&](const EventRef& ref) {
    Seen& order = seen[order_id_of(ref.stream)];
    if (ref.type == PaymentCaptured::kType) {
      Result<Order::Event> event = decode(ref);
      if (!event) {
        failed = tl::unexpected(std::move(event).error());
        return false;
      }
      order.paid_cents = std::get<PaymentCaptured>(*event).amount_cents;
    } else if (ref.type == OrderCancelled::kType) {
      order.cancelled_at = ref.position;
    } else {
      order.refunded = true;
    }
    return true;
  };
  for (std::optional<uint64_t> from = 0; from && failed;) {
    options.from_position = *from;
    VL_TRY(next, store.visit_all(options, visit));
    from = next;
  }
  VL_RETURN_IF_ERROR(failed);
  std::vector<MissingRefund> missing;
  for (const auto& [id, order] : seen) {
    if (order.paid_cents > 0 && order.cancelled_at && !order.refunded) {
      missing.push_back(MissingRefund{id, order.paid_cents, *order.cancelled_at});
    }
  }
  return missing;
}

}  // namespace orders
