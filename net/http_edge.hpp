#pragma once
// The HTTP edges: translate HTTP requests into billing_api calls and their
// results into responses. They hold no business rules: validation of bodies
// is protocol's json_codec, the lifecycle is the actors', who may call what
// is protocol's api_keys. Run on io threads; never block.
//
// The API listener (http_edge):
//   POST /v1/invoices                invoices:write
//   GET  /v1/invoices/{id}           invoices:read
//   GET  /v1/invoices?…              invoices:read
//   POST /v1/invoices/{id}/cancel    invoices:write
//   POST /v1/simulator/payments/{id} simulator (mounted only with the simulated provider)
//   POST /webhook                    the Stripe signature alone (verified and parsed
//                                    here, once, before anything reaches an actor)
//   GET  /healthz, /readyz           open
// The admin listener (admin_edge), on its own address: /metrics (the admin
// scope when admin_require_key), /healthz, /readyz.
//
// Every answer carries X-Request-Id (the caller's when well formed); error
// bodies name it; server-side failures answer a fixed message and log the
// detail under the same id. API calls write one log line each with the
// caller's key name (never the key). A key with a rate limit (api_keys
// rate=R/s burst=B) past it is answered 429 with Retry-After; webhooks are
// never limited by key. Each answer is observed in the latency histograms of
// request_metrics (route, method, status class).

#include "net/http_server.hpp"
#include "net/log_summary.hpp"
#include "net/request_metrics.hpp"
#include "protocol/api.hpp"
#include "protocol/api_keys.hpp"
#include "protocol/stripe_signature.hpp"

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace billing::net {

class payment_simulator;
class key_limits;

// Counters for /metrics, written by the edges.
struct edge_stats {
  std::array<std::atomic<uint64_t>, 7> webhook_outcomes{}; // by billing::outcome
  std::atomic<uint64_t> webhook_bad_signature{0};
  std::atomic<uint64_t> webhook_bad_body{0};
  std::atomic<uint64_t> unauthenticated{0}; // 401s
  std::atomic<uint64_t> forbidden{0};       // 403s
  std::atomic<uint64_t> internal_errors{0}; // 500s
};

struct edge_config {
  std::vector<std::string> webhook_secrets; // all active endpoint secrets
  signature_check signature;
  std::function<unix_seconds()> clock;
  std::shared_ptr<const api_key_store> keys = std::make_shared<api_key_store>();
  std::chrono::milliseconds log_summary_interval{10'000};
  std::shared_ptr<edge_stats> stats = std::make_shared<edge_stats>();
  std::shared_ptr<key_limits> limits; // per-key rate limits (null: none); shared with the gRPC edge
  std::shared_ptr<request_metrics> metrics = std::make_shared<request_metrics>();
};

class http_edge {
public:
  // `simulator` may be null: the simulator route exists only with the
  // simulated provider.
  http_edge(billing_api& api, edge_config cfg, payment_simulator* simulator);

  void handle(request&& req, responder reply);

  struct exchange; // one request on its way through the edge

private:
  using exchange_ptr = std::shared_ptr<exchange>;
  void create_invoice(const exchange_ptr& x, const request& req);
  void get_invoice(const exchange_ptr& x, std::string_view id);
  void list_invoices(const exchange_ptr& x, std::string_view query);
  void cancel_invoice(const exchange_ptr& x, std::string_view id);
  void refund_invoice(const exchange_ptr& x, std::string_view id, const request& req);
  void webhook_request(const exchange_ptr& x, const request& req);
  void simulate(const exchange_ptr& x, std::string_view id, std::string_view body);

  billing_api& api_;
  edge_config cfg_;
  payment_simulator* simulator_;
  log_summary bad_signatures_;
  log_summary server_errors_;
};

struct admin_config {
  std::shared_ptr<const api_key_store> keys = std::make_shared<api_key_store>();
  bool require_key = false;              // /metrics needs the admin scope
  std::function<std::string()> metrics;  // Prometheus text
  std::shared_ptr<edge_stats> stats = std::make_shared<edge_stats>();
  std::shared_ptr<request_metrics> latency = std::make_shared<request_metrics>();
};

class admin_edge {
public:
  admin_edge(billing_api& api, admin_config cfg);
  void handle(request&& req, responder reply);

private:
  billing_api& api_;
  admin_config cfg_;
};

// A JSON response shaped for `req` (version, keep-alive).
response json_response(const request& req, unsigned status, std::string body);

} // namespace billing::net
