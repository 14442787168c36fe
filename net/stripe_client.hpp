#pragma once
// The Stripe provider (BILLING_PROVIDER=stripe): implements provider_actor
// against Stripe's API on an http_client of its own.
//
// Every request carries `Authorization: Bearer <secret key>`, the pinned
// `Stripe-Version`, `Accept: application/json`; every POST an
// `Idempotency-Key` derived from the invoice and the operation
// (protocol/stripe_api.hpp), the same on every retry of one operation and on
// a repeat after any crash, and a form-encoded body written as the official
// SDK writes it. Retries follow the SDKs' rule (Stripe-Should-Retry first;
// else connection errors, timeouts, 409, 429, 5xx) with jittered exponential
// backoff, bounded in count and in total time (retry_policy.budget, shorter
// than the invoice actor's request timeout, so the answer always arrives).
// Errors become billingd failures by protocol/stripe_objects.hpp's table.
//
//   create: POST /v1/payment_intents
//   get:    GET  /v1/payment_intents/{id}
//   cancel: POST /v1/payment_intents/{id}/cancel (cancellation_reason=abandoned);
//           when Stripe answers payment_intent_unexpected_state (the intent
//           already succeeded, is processing, or was canceled), the answer is
//           the intent with its real status, not a failure; when that answer
//           was an idempotent replay (a stored, possibly stale, error), the
//           intent is retrieved and its current status answered.
//   create (checkout): POST /v1/checkout/sessions
//   get (session):     GET  /v1/checkout/sessions/{id}
//   expire:  POST /v1/checkout/sessions/{id}/expire; a 400 or an unexpected
//           state (Stripe expires only open sessions, and says so without an
//           error code) is answered with the session retrieved afresh.
//   refund:  POST /v1/refunds (expand[0]=charge: the refunded total comes
//           back); Stripe's idempotency_error is the caller's conflict (409:
//           its Idempotency-Key reused with another request).
//   list:    GET  /v1/events (reconciliation).
//
// Logs: one line per attempt with the method, the path, Stripe's Request-Id,
// the status, the attempt and its duration. Never the secret key, a request
// or response body, or a client secret. A refused key (401/403) is logged
// loudly once (then at most once per auth_log_interval, with a count) and
// never retried.
//
// Threads: the actor runs on CAF's scheduler and never blocks; the
// http_client's io thread hands each answer back as a message. Bounds: at
// most max_concurrency requests in flight to Stripe, max_waiting more queued
// (beyond: overloaded at once). Stop: an exit message stops the client and
// answers what is pending `unavailable`.

#include "protocol/errors.hpp"
#include "protocol/messages.hpp"
#include "protocol/stripe_api.hpp"

#include <caf/actor_system.hpp>

#include <chrono>
#include <functional>
#include <string>

namespace billing::net {

struct stripe_client_config {
  std::string secret_key; // sk_test_/sk_live_/rk_test_/rk_live_
  std::string api_base{stripe::default_api_base};
  std::string api_version{stripe::default_api_version};
  size_t max_concurrency = 32;
  size_t max_waiting = 10'000;
  std::chrono::milliseconds connect_timeout{3'000}; // TCP connect + TLS handshake
  stripe::retry_policy retry;                        // attempt timeout, retries, budget
  std::string ca_file;                               // extra CA certificates (PEM), e.g. a test CA
  std::function<double()> random;                    // jitter in [0, 1); empty: a seeded PRNG
  std::chrono::seconds auth_log_interval{60};
};

// failure{invalid_argument} naming the setting when the key has no known
// prefix, the API base is unacceptable (stripe::api_base_problem) or the CA
// file cannot be read.
result<provider_actor> spawn_stripe_client(caf::actor_system& sys, stripe_client_config cfg);

} // namespace billing::net
