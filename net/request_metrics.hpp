#pragma once
// What the edges measure for /metrics, as operators read it: request latency
// histograms (Prometheus base units: seconds) by route and method and status
// class (HTTP) or by method and code (gRPC), webhook deliveries by event type
// and verdict, calls refused by a key's rate limit. Label sets are fixed
// tables (routes, methods, event types billingd knows, "other" for the rest),
// so a caller cannot grow the series count. Every webhook series and the
// success series of every route and method exist from the start (a rate()
// over a fresh counter works); other latency series appear with their first
// observation.
//
// Hot path: an observation is two relaxed atomic adds into pre-allocated
// cells, no lock and no allocation, from io, gRPC and actor threads alike.
// (Why our own and not prometheus-cpp: README.md "Metrics".)

#include "net/status_map.hpp"
#include "protocol/state_machine.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <ostream>
#include <string_view>

namespace billing::net {

// Upper bounds of the latency buckets, in seconds (+Inf is implicit).
inline constexpr std::array<double, 14> latency_bounds = {
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

class latency_histogram {
public:
  void observe(std::chrono::nanoseconds d) noexcept;
  // Writes the _bucket, _sum and _count lines of one series; `labels` is
  // `a="x",b="y"` (no braces).
  void write(std::ostream& out, std::string_view name, std::string_view labels) const;
  uint64_t count() const noexcept;

private:
  std::array<std::atomic<uint64_t>, latency_bounds.size() + 1> buckets_{}; // not cumulative; last: +Inf
  std::atomic<uint64_t> sum_ns_{0};
};

// HTTP routes as billingd knows them (method and path template).
enum class http_route : uint8_t {
  create_invoice, // POST /v1/invoices
  list_invoices,  // GET /v1/invoices
  get_invoice,    // GET /v1/invoices/{id}
  cancel_invoice, // POST /v1/invoices/{id}/cancel
  refund_invoice, // POST /v1/invoices/{id}/refunds
  webhook,        // POST /webhook
  simulator,      // POST /v1/simulator/payments/{id}
  healthz,        // GET /healthz
  readyz,         // GET /readyz
  metrics,        // GET /metrics (admin listener)
  other,          // anything else: unknown paths, wrong methods
};
inline constexpr size_t http_route_count = 11;

// gRPC methods of billing.v1.BillingService.
enum class grpc_method : uint8_t {
  create_invoice, get_invoice, list_invoices, cancel_invoice, watch_invoice, refund_invoice };
inline constexpr size_t grpc_method_count = 6;
std::string_view to_string(grpc_method m) noexcept; // "CreateInvoice", ...

// What became of one webhook delivery.
enum class webhook_verdict : uint8_t {
  applied,
  duplicate,
  stale,
  no_effect,
  unknown_invoice,
  mismatch,
  invalid_state,
  bad_signature, // Stripe-Signature check failed (the type is not trusted: "unverified")
  bad_body,      // signed, but billingd cannot read it
  failed,        // not answered 200: unavailable, overloaded, internal
};
inline constexpr size_t webhook_verdict_count = 10;
webhook_verdict verdict_of(outcome o) noexcept;

// Event types with a series of their own; any other type counts as "other".
inline constexpr std::array<std::string_view, 12> webhook_types = {
  "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled",
  "payment_intent.processing", "charge.refunded", "charge.dispute.created",
  "checkout.session.completed", "checkout.session.async_payment_succeeded",
  "checkout.session.async_payment_failed", "checkout.session.expired",
  "other", "unverified"};
size_t webhook_type_index(std::string_view type) noexcept; // "other" for unknown types
inline constexpr size_t webhook_unverified = webhook_types.size() - 1;

struct request_metrics {
  // [route][status class 1xx..5xx]
  std::array<std::array<latency_histogram, 5>, http_route_count> http;
  // [method][gRPC code 0..16]
  std::array<std::array<latency_histogram, 17>, grpc_method_count> grpc;
  std::array<std::array<std::atomic<uint64_t>, webhook_verdict_count>, webhook_types.size()> webhooks{};
  std::atomic<int64_t> grpc_watches{0}; // WatchInvoice streams open now

  void observe_http(http_route r, unsigned status, std::chrono::nanoseconds d) noexcept;
  void observe_grpc(grpc_method m, grpc_code c, std::chrono::nanoseconds d) noexcept;
  void count_webhook(size_t type_index, webhook_verdict v) noexcept;

  // Prometheus text of everything above (HELP and TYPE lines included).
  void write(std::ostream& out) const;
};

} // namespace billing::net
