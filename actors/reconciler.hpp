#pragma once
// Reconciliation: what billingd does about webhooks Stripe never delivered
// (an endpoint down for longer than Stripe retries, a misconfigured event
// list, a lost network). Every `interval`, one pass of two parts:
//
//  1. Invoices: claims (persistence/reconcile_actor: SKIP LOCKED, a backoff
//     per invoice, so several replicas share the work and nobody asks twice)
//     the PENDING/FAILED invoices without a transition for `quiet_seconds`,
//     retrieves each one's PaymentIntent or Checkout Session, and turns what
//     Stripe says into an event (protocol/reconcile: a reading, its id
//     "billingd-reconcile:...") sent to the invoice's actor exactly as a
//     webhook is (registry -> event_atom). The real webhook arriving later
//     is then ignored-no-effect (or stale): one transition, one outbox row.
//  2. The event log: with the checkpoint leased (one replica at a time),
//     pages GET /v1/events (billingd's event types, created after the
//     checkpoint and at least `quiet_seconds` ago, 100 a page) and hands
//     every event to billing_api::handle_event, the webhook's own path; its
//     real event id dedupes against webhook_events, so an event delivered
//     both ways is applied once. The checkpoint moves only when every event
//     of the window was handled.
//
// Every provider call takes a token of one bucket (`rate` requests a second,
// default well under Stripe's 100/s live and 25/s test limits); with N
// replicas the account sees up to N x rate. A pass claims at most `page`
// invoices and no more than the bucket reads in half the first backoff
// (rate x quiet_seconds / 2): a claim holds its invoices only that long, and
// an unread rest would be claimed and read again by another replica.
//
// Owner: app/ (supervised). Runs on CAF's scheduler and never blocks; the
// registry and the api must outlive it (stop it first). A pass that fails
// (database or Stripe unavailable) is logged and the next interval tries
// again.

#include "actors/context.hpp"
#include "actors/registry.hpp"
#include "protocol/api.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace billing {

struct reconciler_config {
  std::chrono::seconds interval{60};
  int64_t quiet_seconds = 300;          // no transition this long before an invoice is checked
  int32_t page = 100;                   // invoices claimed per pass, at most (see above)
  double rate = 10;                     // provider requests per second
  int64_t backoff_max_seconds = 3'600;  // between two checks of one invoice
  int64_t events_lookback_seconds = 3 * 86'400; // where a new checkpoint starts
  int32_t events_max_pages = 50;        // per pass; the rest waits for the next
  std::vector<std::string> event_types; // the webhook endpoint's events
  std::string holder;                   // this process, for the checkpoint's lease
};

// `store`: the (supervised) reconcile store's slot.
caf::actor spawn_reconciler(caf::actor_system& sys, context_ptr ctx, registry_ptr registry, billing_api* api,
                            slot_ptr<reconcile_store_actor> store, reconciler_config cfg);

} // namespace billing
