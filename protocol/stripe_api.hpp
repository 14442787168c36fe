#pragma once
// Stripe's API as billingd calls it, without the I/O: the requests (method,
// path, form body, idempotency key), the mode of a secret key, and the retry
// rule of the official SDKs. net/stripe_client sends what these build; the
// answers are parsed by stripe_objects.hpp. Pure: no clock, no randomness
// (both are parameters), no logging.
//
// Idempotency keys are derived from the invoice id and the operation
// ("billingd:<invoice_id>:create_intent"), so every retry of one operation,
// by this process or by another replica after a crash, sends the same key and
// gets the same object back (Stripe keeps keys at least 24 h). Parameters are
// functions of the invoice alone for the same reason: the same key with other
// parameters is Stripe's idempotency_error.

#include "protocol/ids.hpp"
#include "protocol/invoice_event.hpp"
#include "protocol/provider.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace billing::stripe {

// The API version billingd is written against (what stripe-node 23.1 pins).
inline constexpr std::string_view default_api_version = "2026-10-28.endive";
inline constexpr std::string_view default_api_base = "https://api.stripe.com";
inline constexpr size_t max_idempotency_key_length = 255;

// The events billingd acts on: what a webhook endpoint must enable (README),
// and what reconciliation reads from the event log.
inline constexpr std::string_view webhook_event_types[] = {
  "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled",
  "payment_intent.processing", "charge.refunded", "refund.updated", "charge.dispute.created",
  "charge.dispute.closed", "checkout.session.completed", "checkout.session.expired",
  "checkout.session.async_payment_succeeded", "checkout.session.async_payment_failed",
};

// sk_test_/rk_test_ -> test, sk_live_/rk_live_ -> live, anything else nullopt.
std::optional<provider_mode> mode_of_key(std::string_view secret_key) noexcept;

// Why `base` cannot be the API base URL, or "" when it can: https://host[:port]
// with at most a trailing '/' (no path, query, fragment or user info). The
// secret key travels in every request, so http:// is accepted only to a
// loopback host (127.0.0.0/8, [::1], localhost): a fake Stripe in tests.
std::string api_base_problem(std::string_view base);

enum class operation : uint8_t {
  create_intent,
  retrieve_intent,
  cancel_intent,
  create_checkout_session,
  retrieve_checkout_session,
  expire_checkout_session,
  create_refund,
  list_events,
};
std::string_view to_string(operation op) noexcept; // "create_intent", ...

// "billingd:<invoice_id>:<operation>" or, with a discriminator (a refund's:
// the caller's Idempotency-Key), "billingd:<invoice_id>:<operation>:<d>". At
// most 255 characters: a discriminator that would not fit is replaced by its
// SHA-256 in hex (the key stays a function of it).
std::string idempotency_key(const invoice_id& invoice, operation op, std::string_view discriminator = {});

enum class method : uint8_t { get, post };

struct request {
  method verb = method::get;
  std::string path;            // "/v1/payment_intents/pi_123/cancel", with "?query" for GET
  std::string body;            // form-encoded (POST), else empty
  std::string idempotency_key; // every POST has one; GET none
  operation op = operation::retrieve_intent;
};

// -- PaymentIntents ------------------------------------------------------------

// POST /v1/payment_intents: amount, currency, automatic_payment_methods[enabled]
// = true, description, metadata[invoice_id|workflow_id|shipment_id].
request create_intent(const intent_request& req);
// The description Stripe's dashboard shows: "Shipment <shipment_id>
// (invoice <invoice_id>)".
std::string intent_description(const intent_request& req);
// GET /v1/payment_intents/{id}
request retrieve_intent(const intent_id& id);
// POST /v1/payment_intents/{id}/cancel with cancellation_reason=abandoned.
request cancel_intent(const intent_id& id, const invoice_id& invoice);

// -- Checkout Sessions ---------------------------------------------------------

// Stripe's window for a session's expires_at: 30 minutes to 24 hours after
// its creation.
inline constexpr int64_t checkout_min_expiry_seconds = 30 * 60;
inline constexpr int64_t checkout_max_expiry_seconds = 24 * 3600;

struct checkout_params {
  invoice_id invoice; // also client_reference_id
  int64_t amount_cents = 0;
  std::string currency;
  std::string workflow_id, shipment_id;
  std::string success_url, cancel_url;
  // Unix seconds, inside [created + 30 min, created + 24 h]. It is a request
  // parameter, so it must be the same on every retry: derive it from the
  // invoice (its stored expires_at), never from the time of the call.
  int64_t expires_at = 0;
};
// Whether `expires_at` is inside Stripe's window for a session created at
// `now`. `slack` seconds are kept from both ends (clock skew, the time the
// request takes).
bool checkout_expiry_ok(int64_t now, int64_t expires_at, int64_t slack = 60) noexcept;
// POST /v1/checkout/sessions: mode=payment, one line item with price_data
// (currency, unit_amount, product_data[name]) and quantity 1, success_url,
// cancel_url, client_reference_id, expires_at, metadata[...] and
// payment_intent_data[description|metadata[...]] (the intent appears only
// when the customer confirms; its events route by that metadata).
request create_checkout_session(const checkout_params& p);
request retrieve_checkout_session(std::string_view session_id);
// POST /v1/checkout/sessions/{id}/expire (only while the session is open).
request expire_checkout_session(std::string_view session_id, const invoice_id& invoice);

// -- Refunds -------------------------------------------------------------------

struct refund_params {
  invoice_id invoice;
  intent_id intent;
  std::optional<int64_t> amount_cents; // absent: the whole remaining amount
  std::string reason;                  // "", duplicate, fraudulent, requested_by_customer
  // Distinguishes the refunds of one invoice (several partial refunds): the
  // caller's Idempotency-Key, or a sequence number. Part of the key.
  std::string discriminator;
};
// POST /v1/refunds: payment_intent, amount?, reason?, metadata[invoice_id],
// expand[0]=charge (the charge's refunded total comes back with the refund).
request create_refund(const refund_params& p);

// -- Events ----------------------------------------------------------------------

struct event_query {
  std::vector<std::string> types;   // one -> type=..., several -> types[0]=...
  std::optional<int64_t> created_gte;
  std::optional<int64_t> created_lte;
  std::string starting_after;       // the last event id of the previous page
  int limit = 100;                  // clamped to 1..100
};
// GET /v1/events?...
request list_events(const event_query& q);

// -- Retries -----------------------------------------------------------------------

// The official SDKs' rule: Stripe-Should-Retry "true"/"false" decides when
// present; otherwise retry connection errors and timeouts (status 0), 409,
// 429 and 5xx, never another status.
bool should_retry(unsigned status, std::string_view should_retry_header) noexcept;

struct retry_policy {
  int max_retries = 2;                          // attempts = 1 + retries
  std::chrono::milliseconds initial_delay{500}; // before the first retry (jittered)
  std::chrono::milliseconds max_delay{5'000};
  std::chrono::milliseconds attempt_timeout{4'000}; // one attempt, connect to last byte
  // All attempts and waits of one call: billingd's callers wait for the
  // answer (the invoice actor's request_timeout), so it must be shorter.
  std::chrono::milliseconds budget{9'000};
  std::chrono::milliseconds min_attempt{250};   // never start an attempt with less time
};

std::chrono::milliseconds first_attempt_timeout(const retry_policy& p) noexcept;

struct planned_retry {
  std::chrono::milliseconds delay;   // wait this long, then
  std::chrono::milliseconds timeout; // send with this timeout
};
// After `retries_done` retries and `elapsed` since the first attempt
// started: the next retry, or nullopt when the count or the budget is spent.
// The delay of retry n (1-based) is uniform in [d/2, d] with d =
// min(initial_delay * 2^(n-1), max_delay); `random01` in [0, 1) picks it.
std::optional<planned_retry> plan_retry(const retry_policy& p, int retries_done,
                                        std::chrono::milliseconds elapsed, double random01) noexcept;

} // namespace billing::stripe
