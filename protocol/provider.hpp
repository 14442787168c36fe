#pragma once
// The payment provider as the invoice actors see it (Stripe, or the
// simulated provider). Implemented in net/.

#include "protocol/errors.hpp"
#include "protocol/ids.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace billing {

struct intent_request {
  invoice_id invoice;          // also the idempotency key: a retry after a crash
                               // gets the same intent back
  int64_t amount_cents = 0;
  std::string currency;
  std::string workflow_id;     // copied into the intent's metadata, with the
  std::string shipment_id;     // invoice id, so webhooks route without a lookup
};

struct intent_info {
  intent_id id;
  std::string client_secret;
  std::string status; // the provider's status: "requires_payment_method", "succeeded", "canceled", ...
  // As the provider holds them (its answer, not our request): a caller that
  // follows the provider's status (cancel raced a payment) checks them
  // against the invoice. 0 / empty when the provider did not say (the
  // simulated provider's retrieve).
  int64_t amount_cents = 0;
  std::string currency;
  bool livemode = false;
  // The last failed attempt (Stripe's last_payment_error), for a FAILED
  // reconciliation; empty when none.
  std::string failure_code;
  std::string failure_message;
};

using intent_result = result<intent_info>;

// A Checkout Session (mode=payment) for an invoice in checkout mode. Every
// field is a function of the stored invoice (and the caller's URLs), so a
// retry with the same idempotency key sends the same parameters.
struct checkout_request {
  invoice_id invoice;
  int64_t amount_cents = 0;
  std::string currency;
  std::string workflow_id;
  std::string shipment_id;
  std::string success_url;
  std::string cancel_url;
  int64_t expires_at = 0; // the invoice's expires_at (30 min to 24 h after creation)
};

struct session_info {
  session_id id;
  std::string url;            // the hosted page; empty once complete or expired
  std::string status;         // open | complete | expired
  std::string payment_status; // unpaid | paid | no_payment_required
  intent_id intent;           // empty until the customer confirms
  int64_t amount_cents = 0;   // amount_total; 0 when the provider did not say
  std::string currency;
  bool livemode = false;
  int64_t expires_at = 0;
};

using session_result = result<session_info>;

// A refund of (part of) a paid invoice's payment.
struct refund_request {
  invoice_id invoice;
  intent_id intent;
  std::optional<int64_t> amount_cents; // absent: all that is left
  std::string reason;                  // "", duplicate, fraudulent, requested_by_customer
  // Part of the provider's idempotency key: the caller's Idempotency-Key
  // ("k:<key>"), or the invoice's version ("v<n>") when it gave none, so a
  // retry after a crash sends the same key.
  std::string discriminator;
  // What billingd knows of the invoice, for a provider that keeps no state
  // (the simulated one).
  int64_t invoice_amount_cents = 0;
  int64_t refunded_before = 0;
};

struct refund_info {
  std::string id;     // re_...
  std::string status; // pending, requires_action, succeeded, failed, canceled
  int64_t amount_cents = 0;
  std::string currency;
  // The payment it belongs to, as the provider holds it after the refund:
  // the charge's amount and its total refunded (absolute), or nullopt when
  // the provider did not say.
  std::optional<int64_t> charge_amount_cents;
  std::optional<int64_t> charge_refunded_cents;
  bool livemode = false;
  std::string reason;
  bool replayed = false; // the provider answered a repeat of an earlier request
};

using refund_result = result<refund_info>;

// A page of the provider's event log (Stripe's GET /v1/events): newest
// first; `raw` is each event's JSON as a webhook would carry it.
struct event_listing {
  std::vector<std::string> types;
  int64_t created_gte = 0;
  int64_t created_lte = 0; // 0: no upper bound
  std::string starting_after;
  int limit = 100;
};

struct listed_provider_event {
  std::string id;
  std::string type;
  int64_t created = 0;
  std::string raw;
};

struct event_listing_page {
  std::vector<listed_provider_event> events;
  bool has_more = false;
};

using event_page_result = result<event_listing_page>;

} // namespace billing
