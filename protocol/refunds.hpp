#pragma once
// The rules of a refund, around the provider call the invoice actor makes:
// which invoices may be refunded and for how much (plan_refund), what the
// provider's answer means for the invoice (refund_reading), and how a
// provider's refusal is answered (refund_refusal). Pure.
//
// A PAID invoice is refundable; a REFUNDED or DISPUTED one too when the
// caller sent an Idempotency-Key, since that request may repeat an earlier
// one, which the provider answers with the same refund (or refuses).

#include "protocol/api.hpp"
#include "protocol/errors.hpp"
#include "protocol/invoice.hpp"
#include "protocol/invoice_event.hpp"
#include "protocol/provider.hpp"

namespace billing {

// The provider request for `req` on `inv`, or why not: invalid_state (not
// refundable, or no payment to refund), invalid_argument field amount_cents
// (more than is left). Its idempotency discriminator is the caller's key
// ("k:<key>") or, without one, the invoice's version ("v<n>"): a retry of
// this very request after a crash sends the same key, the next refund another.
result<refund_request> plan_refund(const invoice& inv, const refund_invoice_request& req);

struct refund_reading {
  invoice_event ev; // a `refunded` reading of the charge's total, for apply()
  // New to the caller: the charge's refunded total grew past what `inv`
  // records. Stripe's Idempotent-Replayed cannot say it alone: the client's
  // own retry after an answer lost on the way is replayed too. Without a
  // charge total (a provider that did not say), not replayed.
  bool fresh = true;
};

// What the provider's answer to a refund says of `inv`. The amount, currency
// and mode are the charge's when the answer carries it, else the invoice's
// (`mode` is billingd's configured one).
refund_reading read_refund(const invoice& inv, const refund_info& info, provider_mode mode, unix_seconds now);

// The provider refused: past PAID only a repeat can succeed, so a refusal of
// anything else (a new key on a REFUNDED invoice: "nothing left") is the
// invoice's state, whatever words the provider used. Everything else is
// answered as the provider said (conflict, unavailable, internal, ...).
failure refund_refusal(const invoice& inv, failure f);

} // namespace billing
