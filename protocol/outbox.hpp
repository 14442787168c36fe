#pragma once
// The outbox as the workflow bridge sees it, and its pure rules.
//
// Values: a claimed row (outbox_item), what a sink is asked to deliver
// (signal_delivery) and answers (delivery_result), what the bridge then tells
// the store (outbox_outcome). Rules: the deterministic request id of a row,
// jittered exponential backoff bounded by a horizon, which sink answers are
// permanent, and the HTTP callback's body, URL and Billing-Signature.
// No clocks and no randomness here: both are parameters.

#include "protocol/errors.hpp"
#include "protocol/ids.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace billing {

// One outbox row claimed for delivery (leased: nobody else claims it until
// its lease runs out or the bridge settles it).
struct outbox_item {
  int64_t id = 0;
  invoice_id invoice;
  std::string workflow_id; // from the invoice
  std::string signal;      // canonical name as stored, e.g. "PaymentConfirmed"
  std::string payload;     // JSON object
  int32_t attempts = 0;    // including the attempt this claim starts
  int64_t age_ms = 0;      // since it was (re)enqueued, by the database's clock, at claim
  int64_t created_at = 0;  // unix seconds: when the transition happened
};
using claim_result = result<std::vector<outbox_item>>;

// What a sink is asked to deliver.
struct signal_delivery {
  int64_t outbox_id = 0;
  std::string request_id; // outbox_request_id(): the same on every attempt
  invoice_id invoice;
  std::string workflow_id;
  std::string signal;  // the configured name the receiver listens for
  std::string payload; // JSON object
  int32_t attempt = 0;
  int64_t created_at = 0;
};

enum class delivery_verdict : uint8_t {
  delivered, // the receiver confirmed it
  retry,     // failed or unknown: try again later
  permanent, // the receiver will never take it (e.g. the workflow is gone)
};
std::string_view to_string(delivery_verdict v) noexcept;

struct delivery_result {
  delivery_verdict verdict = delivery_verdict::retry;
  std::string detail; // one line for logs and outbox.last_error; never secrets
};

// What becomes of a row after an attempt.
enum class settle_kind : uint8_t { delivered, retry, dead };

struct outbox_outcome {
  int64_t id = 0;
  settle_kind kind = settle_kind::retry;
  int64_t delay_ms = 0; // retry: next attempt after this
  std::string error;    // retry, dead: stored in last_error
};

struct settle_summary {
  // Per row marked delivered: enqueued -> delivered_at, database clock.
  std::vector<int64_t> latency_ms;
  // Rows marked dead because an earlier signal of their invoice is dead.
  int64_t held_back = 0;
};
using settle_result = result<settle_summary>;

// One round trip to the store: settle the outcomes, then claim up to the
// free capacity, in one transaction.
struct exchange_reply {
  settle_summary settled;
  std::vector<outbox_item> claimed;
};
using exchange_result = result<exchange_reply>;

struct outbox_stats {
  int64_t backlog = 0;    // undelivered, not dead
  int64_t dead = 0;       // undelivered, dead
  int64_t oldest_ms = -1; // age of the oldest backlog row; -1 when none
  int64_t held_back = 0;  // rows the sweep just marked dead behind a dead one
};
using outbox_stats_result = result<outbox_stats>;

// `billingd outbox retry --id N ... | --all-dead`.
struct redrive_request {
  std::vector<int64_t> ids; // each with the later dead rows of its invoice
  bool all_dead = false;
};
using redrive_result = result<int64_t>; // rows made live again

struct retry_policy {
  std::chrono::milliseconds min{500};    // first backoff
  std::chrono::milliseconds max{60'000}; // backoff cap
  std::chrono::seconds horizon{86'400};  // since (re)enqueue; past it the row is dead
};

// The configured names for the canonical signal names.
struct signal_names {
  std::string confirmed = "PaymentConfirmed";
  std::string failed = "PaymentFailed";
  std::string cancelled = "PaymentCancelled";
  std::string refunded = "PaymentRefunded";
  std::string disputed = "PaymentDisputed";
  // `canonical` unchanged when it is not one of the five.
  std::string_view map(std::string_view canonical) const noexcept;
};

// A UUID (version 8, from SHA-256) of the row id and its invoice: the same on
// every attempt, on every replica, after any restart, so Temporal drops a
// repeat; different for every row.
std::string outbox_request_id(int64_t outbox_id, const invoice_id& invoice);

// Backoff before attempt `attempt + 1` after `attempt` (>= 1) failed:
// d = min * 2^(attempt-1) capped at max, then "equal jitter": d/2 + u*d/2
// with u in [0, 1) from the caller.
std::chrono::milliseconds retry_delay(const retry_policy& p, int32_t attempt, double u);

// What to store after an attempt on `item` answered `r`: delivered; dead
// when permanent, or when the next attempt would start past the horizon;
// otherwise retry after retry_delay(). `elapsed_ms`: since the claim.
outbox_outcome decide(const retry_policy& p, const outbox_item& item, const delivery_result& r,
                      int64_t elapsed_ms, double u);

// Temporal's answer (a gRPC status code as a number, its message, and its
// binary details) as a verdict: OK delivered; NOT_FOUND for the workflow and
// INVALID_ARGUMENT permanent; everything else (a namespace that is not
// found, UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNAUTHENTICATED,
// ...) retried, since fixing the deployment makes it succeed.
delivery_verdict classify_grpc_status(int code, std::string_view message,
                                      std::string_view details) noexcept;

// An HTTP callback's answer: 2xx delivered; 408, 429 and 5xx retried; any
// other 4xx permanent; anything else retried.
delivery_verdict classify_http_status(unsigned status) noexcept;

// The callback URL for a signal: every "{signal}" in `url_template` is
// replaced by the signal name.
std::string callback_url(std::string_view url_template, std::string_view signal);

// The callback body: {"id": request_id, "type": signal, "workflow_id",
// "invoice_id", "outbox_id", "attempt", "created" (unix seconds), "data":
// the signal payload}. Deterministic for a delivery.
std::string callback_body(const signal_delivery& d);

// "Billing-Signature" header value: "t=<t>,v1=<hex HMAC-SHA256(secret,
// "<t>.<body>")>", Stripe's scheme, so a receiver verifies it with the same
// code it uses for Stripe webhooks.
std::string billing_signature(std::string_view body, std::string_view secret, int64_t t);

} // namespace billing
