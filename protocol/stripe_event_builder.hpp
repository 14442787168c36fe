#pragma once
// Builds Stripe-format webhook bodies: what Stripe itself would send for a
// PaymentIntent, 2-5 KB like the real thing. Used by the simulated provider
// (which delivers them to billingd's own /webhook, the path real Stripe
// deliveries take) and by billing-bench to generate load.

#include "protocol/invoice.hpp"

#include <cstdint>
#include <string>

namespace billing {

enum class simulated_outcome : uint8_t { succeeded, failed, canceled };

// "succeeded" | "failed" | "canceled"
std::optional<simulated_outcome> parse_simulated_outcome(std::string_view s) noexcept;

struct intent_event_spec {
  std::string event_id;   // "evt_..."
  simulated_outcome outcome = simulated_outcome::succeeded;
  unix_seconds created = 0;
  std::string intent_id;  // "pi_..."
  int64_t amount_cents = 0;
  std::string currency;
  std::string invoice_id; // metadata, as billingd sets it on the intent
  std::string workflow_id;
  std::string shipment_id;
  std::string decline_code = "insufficient_funds"; // failures only
};

// A payment_intent.succeeded / .payment_failed / .canceled event.
std::string build_payment_intent_event(const intent_event_spec& spec);

// The Stripe event type for an outcome, e.g. "payment_intent.payment_failed".
std::string_view event_type_for(simulated_outcome o) noexcept;

// "evt_" + 24 random alphanumerics from a thread-local generator.
std::string random_stripe_id(std::string_view prefix);

} // namespace billing
