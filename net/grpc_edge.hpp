#pragma once
// The gRPC edge: billing.v1.BillingService (protocol/billing/v1/billing.proto)
// on gRPC's callback API, beside grpc.health.v1.Health and server reflection
// (grpc.reflection.v1alpha, the version Debian's gRPC serves). Like the HTTP
// edge it holds no business rules: each call is authenticated and
// rate-limited (net/edge_auth: the same keys, scopes and limits as HTTP),
// validated (net/grpc_codec), handed to billing_api and finished from the
// callback billing_api runs on an actor thread. Nothing blocks a gRPC thread;
// there is no thread per call.
//
// Contract per call: Finish exactly once, also after the caller cancelled
// (billing_api always answers, bounded by request_timeout_ms); a call whose
// deadline has passed on arrival, or is closer than `min_deadline` (gRPC
// keeps deadlines in whole milliseconds, and no call completes that fast), is
// answered DEADLINE_EXCEEDED without reaching billing_api (nothing is created
// or cancelled for it). Every answer
// carries `x-request-id` in its initial metadata (the caller's when well
// formed) and every error message ends with it; billingd's own failures are
// answered with the fixed message of net/status_map and logged with detail.
// One access-log line per call (method, code, key name, request id, time).
//
// Health: "" and "billing.v1.BillingService" are SERVING exactly while
// billing_api::ready() (checked every health_interval) and NOT_SERVING from
// stop() on.
//
// Lifecycle: construct, start(), ..., stop(drain): health NOT_SERVING, open
// WatchInvoice streams end (UNAVAILABLE), new calls are refused, calls in
// flight are answered within `drain` (then cancelled), and stop() returns
// once every call has been finished. Not from a gRPC or actor thread.

#include "net/http_edge.hpp"
#include "net/key_limits.hpp"
#include "net/request_metrics.hpp"
#include "protocol/api.hpp"
#include "protocol/api_keys.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace billing::net {

struct grpc_edge_config {
  std::string address = "127.0.0.1";
  uint16_t port = 9091; // 0: any free port (see port())
  // TLS when both are set (PEM files); plaintext otherwise.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::shared_ptr<const api_key_store> keys = std::make_shared<api_key_store>();
  std::shared_ptr<key_limits> limits;      // may be null: no rate limits
  std::shared_ptr<edge_stats> stats = std::make_shared<edge_stats>();
  std::shared_ptr<request_metrics> metrics = std::make_shared<request_metrics>();
  size_t max_watches = 1000;               // open WatchInvoice streams
  std::chrono::milliseconds watch_interval{1000};
  std::chrono::milliseconds health_interval{500};
  std::chrono::milliseconds min_deadline{10}; // less time left on arrival: DEADLINE_EXCEEDED at once
  size_t max_message_bytes = 64 * 1024;    // largest request accepted
  std::chrono::milliseconds log_summary_interval{10'000};
};

class grpc_edge {
public:
  grpc_edge(billing_api& api, grpc_edge_config cfg);
  ~grpc_edge(); // stop()
  grpc_edge(const grpc_edge&) = delete;
  grpc_edge& operator=(const grpc_edge&) = delete;

  // Binds and serves. On failure false with a readable reason in `error`.
  bool start(std::string& error);
  // The bound port; 0 before start().
  uint16_t port() const noexcept;
  void stop(std::chrono::milliseconds drain = std::chrono::seconds(10));

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace billing::net
