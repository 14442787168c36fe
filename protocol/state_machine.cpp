#include "protocol/state_machine.hpp"

#include <algorithm>
#include <array>

namespace billing {

namespace {

constexpr std::array outcome_names{
  std::string_view{"applied"},
  std::string_view{"ignored-duplicate"},
  std::string_view{"ignored-stale"},
  std::string_view{"ignored-no-effect"},
  std::string_view{"ignored-unknown-invoice"},
  std::string_view{"rejected-mismatch"},
  std::string_view{"rejected-invalid-state"},
};

using S = invoice_status;
using K = event_kind;

bool is_provider_event(K k) {
  return k != K::cancel_requested && k != K::expired;
}

// Where `ev` takes an invoice in `from`, or nullopt when it moves nothing.
// This table is the lifecycle; see the header for why it is shaped so.
std::optional<S> target(S from, K kind) {
  switch (kind) {
    case K::payment_succeeded:
      // CANCELLED -> PAID: money was captured after all (a race with expiry);
      // recording it beats losing it, and the workflow is told.
      if (from == S::pending || from == S::failed || from == S::cancelled)
        return S::paid;
      return std::nullopt;
    case K::payment_failed:
      if (from == S::pending || from == S::failed)
        return S::failed; // FAILED -> FAILED records the latest attempt
      return std::nullopt;
    case K::payment_canceled:
    case K::cancel_requested:
    case K::expired:
      if (from == S::pending || from == S::failed)
        return S::cancelled;
      return std::nullopt;
    case K::refunded:
      // A refund implies a payment, so it may overtake the succeeded event.
      if (from == S::pending || from == S::failed || from == S::cancelled || from == S::paid)
        return S::refunded;
      return std::nullopt;
    case K::disputed:
      if (from != S::disputed)
        return S::disputed;
      return std::nullopt;
    case K::informational:
      return std::nullopt;
  }
  return std::nullopt;
}

// A non-move is "stale" when the event belongs to a stage the invoice has
// already left, "no effect" when it merely agrees with where it is.
outcome classify_non_move(S from, K kind) {
  switch (kind) {
    case K::payment_succeeded:
      return from == S::paid ? outcome::ignored_no_effect : outcome::ignored_stale;
    case K::payment_failed:
      return outcome::ignored_stale;
    case K::payment_canceled:
    case K::expired:
      return from == S::cancelled ? outcome::ignored_no_effect : outcome::ignored_stale;
    case K::cancel_requested:
      return from == S::cancelled ? outcome::ignored_no_effect
                                  : outcome::rejected_invalid_state;
    case K::refunded:
      return from == S::refunded ? outcome::ignored_no_effect : outcome::ignored_stale;
    case K::disputed:
    case K::informational:
      return outcome::ignored_no_effect;
  }
  return outcome::ignored_no_effect;
}

std::string describe(const invoice& inv, const invoice_event& ev) {
  std::string s{to_string(ev.kind)};
  s += " on ";
  s += to_string(inv.status);
  return s;
}

} // namespace

std::string_view to_string(outcome o) noexcept {
  return outcome_names[static_cast<size_t>(o)];
}

std::optional<outcome> parse_outcome(std::string_view s) noexcept {
  for (size_t i = 0; i < outcome_names.size(); ++i)
    if (outcome_names[i] == s)
      return static_cast<outcome>(i);
  return std::nullopt;
}

std::string_view default_signal_name(signal_kind s) noexcept {
  switch (s) {
    case signal_kind::payment_confirmed: return "PaymentConfirmed";
    case signal_kind::payment_failed: return "PaymentFailed";
    case signal_kind::payment_cancelled: return "PaymentCancelled";
    case signal_kind::payment_refunded: return "PaymentRefunded";
    case signal_kind::payment_disputed: return "PaymentDisputed";
  }
  return "Unknown";
}

std::optional<signal_kind> signal_for(invoice_status s) noexcept {
  switch (s) {
    case S::pending: return std::nullopt;
    case S::paid: return signal_kind::payment_confirmed;
    case S::failed: return signal_kind::payment_failed;
    case S::cancelled: return signal_kind::payment_cancelled;
    case S::refunded: return signal_kind::payment_refunded;
    case S::disputed: return signal_kind::payment_disputed;
  }
  return std::nullopt;
}

std::optional<std::string> event_mismatch(const invoice& inv, const invoice_event& ev,
                                          provider_mode mode) {
  const bool live = mode == provider_mode::live;
  if (ev.livemode != live)
    return std::string{"livemode "} + (ev.livemode ? "true" : "false") + " on a "
           + (live ? "live" : "test") + "-mode billingd";
  if (!ev.session.empty()) {
    // A Checkout Session event: it must name the invoice's own session; the
    // intent it names (once the customer confirmed) must not contradict the
    // one the invoice already knows.
    if (inv.provider_session_id.empty())
      return "the invoice has no Checkout Session (event names " + ev.session.str() + ")";
    if (ev.session != inv.provider_session_id)
      return "Checkout Session " + ev.session.str() + " is not the invoice's " + inv.provider_session_id.str();
    if (!ev.intent.empty() && !inv.provider_intent_id.empty() && ev.intent != inv.provider_intent_id)
      return "PaymentIntent " + ev.intent.str() + " is not the invoice's " + inv.provider_intent_id.str();
  } else {
    // Every other object billingd acts on (PaymentIntent, Charge, Dispute)
    // names its PaymentIntent; an event naming none cannot be matched.
    if (ev.intent.empty())
      return std::string{"the event names no PaymentIntent"};
    if (inv.provider_intent_id.empty()) {
      // A Checkout invoice learns its intent when the customer confirms:
      // until then an intent whose metadata names this invoice is its own
      // (billingd put that metadata there, and the event is signed).
      if (inv.mode != invoice_mode::checkout || ev.metadata_invoice != inv.id.str())
        return "the invoice has no PaymentIntent yet (event names " + ev.intent.str() + ")";
    } else if (ev.intent != inv.provider_intent_id) {
      return "PaymentIntent " + ev.intent.str() + " is not the invoice's " + inv.provider_intent_id.str();
    }
  }
  // A payment must say what was paid; other events may omit it (a dispute
  // may be partial, so the parser leaves its amount empty).
  if (ev.kind == K::payment_succeeded && !ev.amount_cents)
    return std::string{"a payment without an amount"};
  if (ev.kind == K::payment_succeeded && ev.currency.empty())
    return std::string{"a payment without a currency"};
  if (ev.amount_cents && *ev.amount_cents != inv.amount_cents)
    return "amount " + std::to_string(*ev.amount_cents) + " != invoice amount "
           + std::to_string(inv.amount_cents);
  if (!ev.currency.empty() && ev.currency != inv.currency)
    return "currency " + ev.currency + " != invoice currency " + inv.currency;
  if (ev.refunded_cents && *ev.refunded_cents > inv.amount_cents)
    return "refunded " + std::to_string(*ev.refunded_cents) + " > invoice amount "
           + std::to_string(inv.amount_cents);
  return std::nullopt;
}

decision apply(const invoice& inv, const invoice_event& ev, unix_seconds now, provider_mode mode) {
  decision d;
  d.next = inv;
  auto ignore = [&](outcome o, std::string why) {
    d.result = o;
    d.reason = describe(inv, ev) + ": " + std::move(why);
    return d;
  };

  if (is_provider_event(ev.kind))
    if (auto why = event_mismatch(inv, ev, mode))
      return ignore(outcome::rejected_mismatch, std::move(*why));

  auto to = target(inv.status, ev.kind);
  if (!to)
    return ignore(classify_non_move(inv.status, ev.kind), "nothing to change");

  // Only a repeated failure can be overtaken by an older one: every other
  // move goes forward in the lifecycle whatever its timestamp. A failure is
  // news only when it is newer than the last event applied (two in one
  // second are one, whichever order they came in: a reconciliation's
  // reading at `now` followed by the real webhook of that same failure
  // must not count twice), and never when it is billingd's own reading of
  // the provider's state (it cannot tell a new attempt from the last one).
  if (inv.status == S::failed && *to == S::failed) {
    if (ev.reconciled)
      return ignore(outcome::ignored_no_effect, "a reading of the failure already recorded");
    if (inv.last_event_at && ev.created <= *inv.last_event_at)
      return ignore(outcome::ignored_stale, "not newer than the last applied event");
  }

  // Refunds are cumulative and absolute: the event says how much of the
  // payment is refunded in total, so a repeat or an older total changes
  // nothing, and only the whole amount makes the invoice REFUNDED.
  int64_t refunded = inv.refunded_cents;
  if (ev.kind == K::refunded) {
    const int64_t total = std::min(ev.refunded_cents.value_or(inv.amount_cents), inv.amount_cents);
    if (total <= inv.refunded_cents)
      return ignore(inv.status == S::paid ? outcome::ignored_no_effect : outcome::ignored_stale,
                    "refunded " + std::to_string(total) + " of " + std::to_string(inv.amount_cents)
                      + " is already recorded");
    refunded = total;
    if (total < inv.amount_cents)
      to = S::paid; // partly refunded: still paid (a refund implies the payment)
  }

  invoice& n = d.next;
  n.status = *to;
  n.updated_at = now;
  n.refunded_cents = refunded;
  if (is_provider_event(ev.kind))
    n.last_event_at = std::max(inv.last_event_at.value_or(ev.created), ev.created);
  if (*to == S::failed) {
    n.failure_code = ev.failure_code;
    n.failure_message = ev.failure_message;
  }
  // A Checkout invoice learns its PaymentIntent from the first event that
  // names it (event_mismatch has checked that it is its own).
  if (n.provider_intent_id.empty() && !ev.intent.empty())
    n.provider_intent_id = ev.intent;
  // Refunds and disputes imply a payment, even when they overtook it.
  if ((*to == S::paid || *to == S::refunded || *to == S::disputed) && !n.paid_at)
    n.paid_at = ev.created != 0 ? ev.created : now;
  d.result = outcome::applied;
  // A partial refund leaves the invoice PAID but is news all the same.
  d.signal = ev.kind == K::refunded ? signal_kind::payment_refunded : *signal_for(*to);
  d.reason = describe(inv, ev) + " -> " + std::string{to_string(*to)};
  if (ev.kind == K::refunded)
    d.reason += " (refunded " + std::to_string(refunded) + " of " + std::to_string(inv.amount_cents) + ")";
  return d;
}

invoice postpone_expiry(const invoice& inv, unix_seconds now, int64_t first_delay, int64_t max_delay) {
  invoice n = inv;
  const int shift = std::min<int32_t>(inv.expiry_retries, 30);
  const int64_t delay = std::min<int64_t>(max_delay, first_delay << shift);
  n.expires_at = now + std::max<int64_t>(delay, 1);
  n.expiry_retries = inv.expiry_retries + 1;
  n.updated_at = now;
  return n;
}

} // namespace billing
