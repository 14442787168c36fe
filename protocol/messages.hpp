#pragma once
// The actor vocabulary: atoms and typed interfaces through which actors/,
// persistence/ and net/ meet. Only declarations live here.

#include "protocol/api.hpp"
#include "protocol/outbox.hpp"
#include "protocol/provider.hpp"
#include "protocol/reconcile.hpp"
#include "protocol/records.hpp"
#include "protocol/reply.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

namespace billing {

// Atoms: at most 10 characters in CAF 0.17.
using create_atom = caf::atom_constant<caf::atom("create")>;
using get_atom = caf::atom_constant<caf::atom("get")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using event_atom = caf::atom_constant<caf::atom("event")>;
using expire_atom = caf::atom_constant<caf::atom("expire")>;
using write_atom = caf::atom_constant<caf::atom("write")>;
using load_atom = caf::atom_constant<caf::atom("load")>;
using find_atom = caf::atom_constant<caf::atom("find")>;
using list_atom = caf::atom_constant<caf::atom("list")>;
using due_atom = caf::atom_constant<caf::atom("due")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using idle_atom = caf::atom_constant<caf::atom("idle")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using secret_atom = caf::atom_constant<caf::atom("secret")>;
using intent_atom = caf::atom_constant<caf::atom("intent")>;
using health_atom = caf::atom_constant<caf::atom("health")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using claim_atom = caf::atom_constant<caf::atom("claim")>;
using redrive_atom = caf::atom_constant<caf::atom("redrive")>;
using deliver_atom = caf::atom_constant<caf::atom("deliver")>;
using nudge_atom = caf::atom_constant<caf::atom("nudge")>;
using refund_atom = caf::atom_constant<caf::atom("refund")>;
using lease_atom = caf::atom_constant<caf::atom("lease")>;
using advance_atom = caf::atom_constant<caf::atom("advance")>;

// The way back to an invoice actor's caller (protocol/reply.hpp).
using invoice_reply = reply_to<invoice_result>;
using event_reply = reply_to<webhook_result>;
using refund_reply = reply_to<refund_view_result>;

// One invoice's lifecycle, serialised (actors/invoice_actor). Reached only
// through the invoice_registry (actors/registry.hpp), which counts what it
// delivers; each message carries the reply_to it is answered through, once.
using invoice_actor = caf::typed_actor<
  caf::reacts_to<create_atom, create_invoice_request, invoice_reply>,
  caf::reacts_to<get_atom, invoice_reply>,
  caf::reacts_to<secret_atom, invoice_reply>, // get, with the client secret while unpaid
  caf::reacts_to<cancel_atom, invoice_reply>,
  caf::reacts_to<event_atom, incoming_event, event_reply>,
  caf::reacts_to<expire_atom, event_reply>,
  caf::reacts_to<refund_atom, refund_invoice_request, refund_reply>,
  caf::reacts_to<idle_atom>>; // its own passivation timer

// Group-committing writer (persistence/writer). Replies after COMMIT.
using writer_actor = caf::typed_actor<
  caf::replies_to<write_atom, write_command>::with<write_status>>;

// Reads on their own connection, so they never wait behind a batch.
using reader_actor = caf::typed_actor<
  caf::replies_to<load_atom, invoice_id>::with<load_result>,
  caf::replies_to<find_atom, intent_id>::with<find_result>,
  caf::replies_to<list_atom, invoice_filter>::with<list_result>,
  caf::replies_to<due_atom, unix_seconds, int32_t>::with<due_result>>;

// The payment provider (net/simulated_provider, net/stripe_client). create is
// idempotent on the invoice id; get reads the intent as the provider holds it
// now; cancel answers the intent's real status when it is past cancelling
// (succeeded, processing, canceled) instead of failing. Checkout Sessions
// likewise (expire answers the session as it is when it is no longer open);
// refund is idempotent on (invoice, discriminator); list pages the
// provider's event log (reconciliation).
using provider_actor = caf::typed_actor<
  caf::replies_to<create_atom, intent_request>::with<intent_result>,
  caf::replies_to<get_atom, intent_id>::with<intent_result>,
  caf::replies_to<cancel_atom, intent_id, invoice_id>::with<intent_result>,
  caf::replies_to<create_atom, checkout_request>::with<session_result>,
  caf::replies_to<get_atom, session_id>::with<session_result>,
  caf::replies_to<expire_atom, session_id, invoice_id>::with<session_result>,
  caf::replies_to<refund_atom, refund_request>::with<refund_result>,
  caf::replies_to<list_atom, event_listing>::with<event_page_result>>;

// Reconciliation's queries (persistence/reconcile_actor), detached, on a
// connection of its own. claim: invoices quiet long enough, each claimed
// with a backoff so no replica (this one included) claims it again before
// then; lease/advance: the event log's checkpoint, held by one replica at a
// time.
using reconcile_store_actor = caf::typed_actor<
  caf::replies_to<claim_atom, reconcile_claim>::with<candidates_result>,
  caf::replies_to<lease_atom, checkpoint_lease>::with<checkpoint_result>,
  caf::replies_to<advance_atom, checkpoint_advance>::with<advance_result>>;

// The outbox queue (persistence/outbox_actor), detached, on its own
// connection. claim: in one transaction, settle the attempts' outcomes, then
// claim up to `limit` due rows (the oldest undelivered row of each invoice
// only), leased for `lease_ms`.
using outbox_actor = caf::typed_actor<
  caf::replies_to<claim_atom, std::vector<outbox_outcome>, int32_t, int64_t>::with<exchange_result>,
  caf::replies_to<stats_atom>::with<outbox_stats_result>,
  caf::replies_to<redrive_atom, redrive_request>::with<redrive_result>>;

// A delivery target (net/temporal_sink, net/callback_sink). Answers once the
// target confirmed or refused, or the attempt failed or timed out; never blocks.
using sink_actor = caf::typed_actor<
  caf::replies_to<deliver_atom, signal_delivery>::with<delivery_result>>;

// The workflow bridge (actors/bridge): a nudge says "outbox rows were just
// committed" (the writer sends it after such a COMMIT).
using bridge_actor = caf::typed_actor<caf::reacts_to<nudge_atom>>;
using outbox_listener = bridge_actor;

} // namespace billing

// Local-only messages: billingd does not send these over the network.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::create_invoice_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::invoice_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::incoming_event)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::invoice_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::event_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::webhook_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::write_command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::write_status)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::invoice_id)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::intent_id)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::invoice_filter)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::load_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::find_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::list_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::due_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::intent_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::intent_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::outbox_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<billing::outbox_outcome>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::exchange_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::outbox_stats_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::redrive_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::redrive_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::signal_delivery)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::delivery_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::session_id)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::checkout_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::session_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::refund_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::refund_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::event_listing)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::event_page_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::refund_invoice_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::refund_view_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::refund_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::reconcile_claim)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::candidates_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::checkpoint_lease)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::checkpoint_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::checkpoint_advance)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::advance_result)
