#pragma once
// The `simulated` payment provider: for demos and load tests without a
// Stripe account. Intents are derived from the idempotency key (the
// invoice id), so a retry gets the same intent back, as with Stripe, and
// the provider keeps no state. Payments happen through the simulator
// route (net/simulator), which delivers signed webhooks to /webhook.
// Retrieve answers requires_payment_method (it keeps no state). Checkout
// Sessions are derived the same way (always open when read); a refund
// computes the refunded total from what the request says was refunded
// before, and refunds are remembered by idempotency key in memory (bounded),
// so a repeat answers the same refund and the same key with another request
// is refused, as with Stripe; its event log is empty. Runs on CAF's
// scheduler: it never blocks.

#include "protocol/messages.hpp"

namespace billing {

provider_actor spawn_simulated_provider(caf::actor_system& sys);

} // namespace billing
