#pragma once
// What billingd offers its callers, independent of transport. net/ edges
// (HTTP, gRPC) translate requests into these calls and results into
// statuses; actors/ implements billing_api.

#include "protocol/errors.hpp"
#include "protocol/invoice.hpp"
#include "protocol/invoice_event.hpp"
#include "protocol/records.hpp"
#include "protocol/state_machine.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace billing {

struct create_invoice_request {
  std::string shipment_id;
  std::string user_id;
  std::string workflow_id;
  int64_t amount_cents = 0;
  std::string currency;                   // lower case ISO 4217
  std::optional<int64_t> expires_in_seconds; // default from configuration
  // checkout: a Stripe Checkout Session (its URL in the answer) instead of a
  // PaymentIntent; the customer returns to success_url or cancel_url.
  invoice_mode mode = invoice_mode::payment_intent;
  std::string success_url;
  std::string cancel_url;
};

// An invoice as a caller sees it. `client_secret` is filled only in answers
// to create (new or repeated), never in reads or lists.
struct invoice_view {
  invoice inv;
  std::string client_secret;
  bool created = false; // true when this call created it (HTTP 201)
  std::string checkout_url; // checkout mode: the session's page, where client_secret would be
};

// POST /v1/invoices/{id}/refunds.
struct refund_invoice_request {
  std::optional<int64_t> amount_cents; // absent: all that is left
  std::string reason;                  // "", duplicate, fraudulent, requested_by_customer
  // The caller's Idempotency-Key header (empty: none): the same key
  // answers the same refund; with another body it is a conflict.
  std::string idempotency_key;
};

struct refund_view {
  invoice inv;               // after the refund was recorded
  std::string refund_id;     // re_...
  std::string refund_status; // the provider's: succeeded, pending, ...
  int64_t amount_cents = 0;  // of this refund
  bool created = true;       // false: a repeat answered with the same refund (HTTP 200)
};

// A provider event, routed and ready for the invoice actor.
struct incoming_event {
  invoice_event ev;
  std::string type; // the provider's event type, e.g. "payment_intent.succeeded"
  unix_seconds received_at = 0;
};

struct webhook_reply {
  outcome result = outcome::applied;
  invoice_id invoice; // empty when no invoice matched
  std::optional<invoice_status> status; // the invoice's status afterwards
};

using invoice_result = result<invoice_view>;
using webhook_result = result<webhook_reply>;
using refund_view_result = result<refund_view>;

template <class T>
using callback = std::function<void(T)>;

// Called by the edges on io threads: every call returns at once and answers
// through the callback, exactly once, on an actor thread (the edge posts it
// back to its connection). Implementations must never block.
class billing_api {
public:
  virtual ~billing_api() = default;
  virtual void create_invoice(create_invoice_request req, callback<invoice_result> done) = 0;
  virtual void get_invoice(invoice_id id, callback<invoice_result> done) = 0;
  virtual void list_invoices(invoice_filter filter, callback<list_result> done) = 0;
  virtual void cancel_invoice(invoice_id id, callback<invoice_result> done) = 0;
  // The invoice with its client secret (unsealed) in `client_secret`, for a
  // caller allowed to see it (the gRPC GetInvoice of an unpaid invoice, to a
  // key with invoices:write). The edge decides who may ask; the
  // implementation only reads. Until actors/ implements it, the default
  // answers internal, and the edge answers the invoice without the secret.
  virtual void get_invoice_secret(invoice_id id, callback<invoice_result> done) {
    (void)id;
    done(fail(billing_errc::internal, "get_invoice_secret is not implemented"));
  }
  // Refunds (part of) a PAID invoice's payment at the provider and records
  // it. Until an implementation has it, the default answers internal.
  virtual void refund_invoice(invoice_id id, refund_invoice_request req, callback<refund_view_result> done) {
    (void)id;
    (void)req;
    done(fail(billing_errc::internal, "refund_invoice is not implemented"));
  }
  // `invoice` from the event's metadata when present, else empty and the
  // implementation routes by `ev.ev.intent`.
  virtual void handle_event(invoice_id invoice, incoming_event ev, callback<webhook_result> done) = 0;
  // False while the database is unreachable.
  virtual bool ready() const = 0;
  // Whether a call made now would be refused for capacity: the edges ask
  // before parsing or verifying anything, so refusing costs next to nothing
  // when billingd is overloaded.
  virtual std::optional<failure> refuse_now() const { return std::nullopt; }
};

} // namespace billing
