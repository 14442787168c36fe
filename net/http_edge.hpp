#pragma once
// The HTTP edge: translates HTTP requests into billing_api calls and their
// results into responses. It holds no business rules: validation of bodies
// is protocol's json_codec, the lifecycle is the actors'. Webhooks are
// verified and parsed here, once, on the io thread (a few microseconds),
// before anything reaches an actor. Runs on io threads; never blocks.

#include "net/http_server.hpp"
#include "protocol/api.hpp"
#include "protocol/stripe_signature.hpp"

#include <functional>
#include <string>
#include <vector>

namespace billing::net {

class payment_simulator;

struct edge_config {
  std::vector<std::string> webhook_secrets; // all active endpoint secrets
  signature_check signature;
  std::function<unix_seconds()> clock;
  std::function<std::string()> metrics; // Prometheus text for GET /metrics
};

class http_edge {
public:
  // `simulator` may be null: the simulator route exists only with the
  // simulated provider.
  http_edge(billing_api& api, edge_config cfg, payment_simulator* simulator);

  void handle(request&& req, responder reply);

private:
  void create_invoice(const request& req, responder reply);
  void get_invoice(const request& req, std::string_view id, responder reply);
  void list_invoices(const request& req, std::string_view query, responder reply);
  void cancel_invoice(const request& req, std::string_view id, responder reply);
  void webhook(const request& req, responder reply);
  void simulate(const request& req, std::string_view id, responder reply);

  billing_api& api_;
  edge_config cfg_;
  payment_simulator* simulator_;
};

// Helpers shared with the simulator and tests.
response json_response(const request& req, unsigned status, std::string body);
response error_response(const request& req, const failure& f);

} // namespace billing::net
