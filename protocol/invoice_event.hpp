#pragma once
// What can happen to an invoice, in the state machine's own terms. Stripe
// events are translated into this (stripe_event.hpp); internal commands
// (cancel by API, expiry) are built directly.

#include "protocol/ids.hpp"
#include "protocol/invoice.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace billing {

enum class event_kind : uint8_t {
  payment_succeeded, // payment_intent.succeeded, checkout.session.completed (paid), ...
  payment_failed,    // payment_intent.payment_failed, checkout async failure
  payment_canceled,  // payment_intent.canceled, checkout.session.expired
  refunded,          // charge.refunded (refunded_cents: the charge's total refunded so far)
  disputed,          // charge.dispute.created
  cancel_requested,  // POST /v1/invoices/{id}/cancel
  expired,           // the expiry sweeper found it past expires_at
  informational,     // known but moves nothing (processing, partial refund, ...)
};

std::string_view to_string(event_kind k) noexcept;

// Which of the provider's modes billingd is configured for (Stripe's test
// or live keys). An event from the other mode cannot be about our invoices.
enum class provider_mode : uint8_t { test, live };

struct invoice_event {
  event_kind kind = event_kind::informational;
  event_id id;                 // Stripe event id; empty for internal commands
  unix_seconds created = 0;    // when the provider says it happened
  // Amount and currency as the provider reports them; absent when the
  // event carries none (e.g. internal commands). Compared against the invoice.
  std::optional<int64_t> amount_cents;
  std::string currency;
  intent_id intent;            // the PaymentIntent the event is about, if it names one
  // The Checkout Session, when the event's object is one (checkout.session.*).
  session_id session;
  // metadata.invoice_id of the event's object (billingd sets it on every
  // intent and session it creates): how a checkout invoice recognises its
  // PaymentIntent before it has learned the intent's id.
  std::string metadata_invoice;
  bool livemode = false;       // the provider's mode when it sent the event
  std::string failure_code;
  std::string failure_message;
  // refunded: what has been refunded of the payment in total (absolute, so
  // repeats and reordering cannot add up twice); absent means all of it.
  std::optional<int64_t> refunded_cents;
  // Not a provider event but billingd's reading of the provider's current
  // state (reconciliation, or a cancel answered with the intent's status):
  // it says where the payment is, not that a new attempt happened.
  bool reconciled = false;
};

} // namespace billing
