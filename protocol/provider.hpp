#pragma once
// The payment provider as the invoice actors see it (Stripe, or the
// simulated provider). Implemented in net/.

#include "protocol/errors.hpp"
#include "protocol/ids.hpp"

#include <cstdint>
#include <string>

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
};

using intent_result = result<intent_info>;

} // namespace billing
