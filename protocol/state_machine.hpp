#pragma once
// The invoice lifecycle as one pure function. No clocks, no I/O: the caller
// passes `now`. Every rule of shared/DESIGN.md "Invoice lifecycle" is here
// and nowhere else; the invoice actor only calls apply() and persists the
// result.
//
//   PENDING --succeeded--> PAID --refunded (all)--> REFUNDED
//                          PAID --refunded (part)--> PAID, refunded_cents recorded
//   PENDING --failed-----> FAILED --succeeded--> PAID  (the customer retried)
//   PENDING|FAILED --canceled/expired/cancel--> CANCELLED
//   CANCELLED --succeeded--> PAID (money taken in a race with expiry)
//   any but DISPUTED --dispute--> DISPUTED
//
// Out-of-order delivery is normal, so the rules are chosen to make the final
// status independent of the order in which one payment's events arrive:
// facts that imply a later stage (a refund implies a payment) jump forward,
// and late events of an earlier stage are ignored as stale.

#include "protocol/invoice.hpp"
#include "protocol/invoice_event.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace billing {

// Stored in webhook_events.outcome, hence the stable names.
enum class outcome : uint8_t {
  applied,                 // the invoice moved; one outbox signal
  ignored_duplicate,       // the same event id was seen before (decided by the store)
  ignored_stale,           // a late event of an earlier stage
  ignored_no_effect,       // consistent with the current state, nothing to do
  ignored_unknown_invoice, // no invoice matches the event (decided by routing)
  rejected_mismatch,       // not about this invoice: other intent, amount, currency or mode
  rejected_invalid_state,  // an internal command not allowed now (cancel a PAID invoice)
};

std::string_view to_string(outcome o) noexcept; // "applied", "ignored-stale", ...
std::optional<outcome> parse_outcome(std::string_view s) noexcept;

// The signal a workflow receives when an invoice reaches a status.
enum class signal_kind : uint8_t {
  payment_confirmed,
  payment_failed,
  payment_cancelled,
  payment_refunded,
  payment_disputed,
};

std::string_view default_signal_name(signal_kind s) noexcept; // "PaymentConfirmed", ...
// The signal sent when an invoice enters `s`; PENDING has none.
std::optional<signal_kind> signal_for(invoice_status s) noexcept;

struct decision {
  outcome result = outcome::ignored_no_effect;
  invoice next;                      // == the input unless result == applied
  std::optional<signal_kind> signal; // set iff result == applied
  std::string reason;                // one line for the log; never secrets
};

// Why a provider event cannot be about `inv`, or nullopt when it can. A
// signed event is authentic, not necessarily ours: it must come from the
// configured mode, name the invoice's own PaymentIntent (a Checkout
// Session's event: its own session, and no other intent than the one it
// knows; a Checkout invoice that has not learned its intent yet accepts an
// intent whose metadata names it), and (when it says money moved) carry the
// invoice's amount and currency, and refund no more than the amount.
std::optional<std::string> event_mismatch(const invoice& inv, const invoice_event& ev,
                                          provider_mode mode);

// Applies `ev` to `inv` at time `now`, billingd being configured for `mode`.
// Total: defined for every status and every event kind. A provider event
// that fails event_mismatch() is rejected_mismatch and changes nothing. On
// `applied`, next.version is NOT bumped (the store does that on write);
// updated_at = now and last_event_at = max(old, ev.created).
//
// Refunds: ev.refunded_cents is the total refunded so far (absent: all of
// it); a total not above the recorded one changes nothing, a partial one
// keeps the invoice PAID (or makes it PAID: a refund implies the payment),
// the whole amount makes it REFUNDED; each applied refund signals
// PaymentRefunded. A failure on FAILED applies only when strictly newer
// than the last applied event, and never when ev.reconciled.
decision apply(const invoice& inv, const invoice_event& ev, unix_seconds now, provider_mode mode);

// Expiry found a payment in flight (the provider says processing): the
// invoice must not be cancelled while money may be taken, so its expiry
// moves to now + min(max_delay, first_delay * 2^expiry_retries) and
// expiry_retries counts one more. Status and version are untouched (the
// store bumps the version on write).
invoice postpone_expiry(const invoice& inv, unix_seconds now, int64_t first_delay, int64_t max_delay);

} // namespace billing
