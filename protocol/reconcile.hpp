#pragma once
// What billingd makes of the provider's current state of a payment: the
// event a PaymentIntent or a Checkout Session *as it is now* implies for an
// invoice. Reconciliation (actors/reconciler) applies these through the
// same path a webhook takes; the invoice actor uses intent_reading when a
// cancel is answered with the intent's real status (the expiry race). Pure.
//
// The readings are marked `reconciled` and carry `created = now`, so the
// real webhook of the same fact, arriving later, is classified ignored
// (no-effect, or stale for a failure: apply() takes a failure on FAILED only
// when strictly newer) and the fact makes exactly one transition and one
// outbox row. Their event ids are deterministic and cannot collide with
// Stripe's (evt_...): two replicas reading the same state dedupe.

#include "protocol/invoice.hpp"
#include "protocol/invoice_event.hpp"
#include "protocol/provider.hpp"

#include "protocol/errors.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace billing {

// -- what reconciliation asks of its store (persistence/reconcile_actor) ------

// Claim up to `limit` PENDING or FAILED invoices that have a provider object
// and no transition for `quiet_seconds`, and whose next check is due; each
// claimed one is not due again for min(backoff_max, backoff_first * 2^k)
// seconds (k: how often it was checked), on any replica.
struct reconcile_claim {
  unix_seconds now = 0;
  int64_t quiet_seconds = 300;
  int32_t limit = 100;
  int64_t backoff_first = 300;
  int64_t backoff_max = 3'600;
};

struct reconcile_candidate {
  invoice_id id;
  invoice_status status = invoice_status::pending;
  invoice_mode mode = invoice_mode::payment_intent;
  intent_id intent;   // empty until known
  session_id session; // checkout mode
};

using candidates_result = result<std::vector<reconcile_candidate>>;

// The event log's checkpoint `name`, leased to `holder` for lease_seconds
// (one replica pages the log at a time); a new checkpoint starts at
// `initial_position`.
struct checkpoint_lease {
  std::string name;
  std::string holder;
  int64_t initial_position = 0;
  int64_t lease_seconds = 60;
};

struct checkpoint_state {
  bool held = false;     // false: another holder has the lease now
  int64_t position = 0;  // unix seconds: the log is applied up to here
};

using checkpoint_result = result<checkpoint_state>;

// Moves the checkpoint forward (never back) and ends the lease.
struct checkpoint_advance {
  std::string name;
  std::string holder;
  int64_t position = 0;
};

struct checkpoint_advanced {
  bool advanced = false; // false: the lease was lost meanwhile
};

using advance_result = result<checkpoint_advanced>;

// "billingd-reconcile:<object id>:<what>".
event_id reconcile_event_id(std::string_view object_id, std::string_view what);

// The webhook_events.type of a reading: "billingd.reconcile.<object>.<what>",
// e.g. "billingd.reconcile.payment_intent.succeeded".
std::string reconcile_event_type(std::string_view object, std::string_view what);

struct reading {
  invoice_event ev;
  std::string type; // reconcile_event_type(...)
};

// A PaymentIntent as the provider holds it now, for an invoice in `status`:
//   succeeded               -> payment_succeeded (amount, currency, mode: the intent's)
//   canceled                -> payment_canceled
//   requires_payment_method with a last payment error, invoice PENDING
//                           -> payment_failed (the error's code and message)
//   anything else (processing, requires_action, ...) -> nullopt: in flight
//     or waiting for the customer; nothing to apply.
std::optional<reading> intent_reading(const intent_info& pi, invoice_status status, unix_seconds now);

// A Checkout Session as the provider holds it now:
//   complete and paid (or no_payment_required) -> payment_succeeded
//     (amount_total, currency, the session and its intent)
//   expired                                   -> payment_canceled
//   open, or complete and unpaid (an asynchronous payment in flight) -> nullopt.
std::optional<reading> session_reading(const session_info& s, unix_seconds now);

} // namespace billing
