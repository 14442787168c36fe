#pragma once
// What every actor in actors/ needs from the outside world, bundled once at
// start-up by app/ and shared read-only (never mutated after start). The
// writers and the reader are supervised (actors/supervisor.hpp): the context
// holds their slots, and every use reads the current handle from the slot.

#include "actors/actor_slot.hpp"
#include "protocol/messages.hpp"
#include "protocol/secret_box.hpp"

#include <caf/error.hpp>
#include <caf/sec.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace billing {

struct actor_settings {
  std::chrono::seconds idle_timeout{60};        // passivate an invoice actor after this
  int64_t default_expiry_seconds = 86'400;      // invoice lifetime unless the request says
  std::chrono::milliseconds request_timeout{10'000}; // any request to another actor
  std::string provider_name = "simulated";
  provider_mode mode = provider_mode::test;     // events from the other mode are mismatches
  int max_conflict_retries = 3;                 // re-read and re-apply after a CAS conflict
  size_t max_in_flight = 20'000;                // requests the gateway accepts at once
  // Under overload, calls in flight are capped at the peak completion rate
  // x this (actors/admission.hpp), never below admission_floor. 0: off.
  std::chrono::milliseconds admission_latency{50};
  size_t admission_floor = 1024;
  std::chrono::seconds sweep_interval{5};
  int32_t sweep_page = 500;
  // Expiry that finds a payment in flight postpones itself by this much,
  // doubling up to the max (protocol::postpone_expiry).
  int64_t expiry_retry_seconds = 60;
  int64_t expiry_retry_max_seconds = 3'600;
};

// Counters the actors keep for /metrics (routine transitions are counted,
// not logged).
struct actor_stats {
  std::atomic<uint64_t> created{0};
  std::array<std::atomic<uint64_t>, 6> transitions{}; // by the status entered (invoice_status)
  // A payment succeeded for a CANCELLED invoice (money taken in a race with
  // expiry or cancel): recorded, PAID, logged as an alert, counted here.
  std::atomic<uint64_t> paid_after_cancel{0};
  // Reconciliation (actors/reconciler): provider reads, readings applied.
  std::atomic<uint64_t> reconcile_checks{0};
  std::atomic<uint64_t> reconcile_applied{0};
  std::atomic<uint64_t> reconcile_events{0}; // events read from the provider's log
};

struct actor_context {
  actor_settings settings;
  // One or more (each on its own connection). An invoice's writes always go
  // to writer_for(its id), so they stay in order on one connection (the
  // slot's index, not the actor in it: a restarted writer keeps its share).
  std::vector<slot_ptr<writer_actor>> writers;
  slot_ptr<reader_actor> reader; // read it with reader_of()
  provider_actor provider;
  std::shared_ptr<const secret_box> box;
  std::function<unix_seconds()> clock; // wall clock; tests pass a fake
  std::shared_ptr<actor_stats> stats = std::make_shared<actor_stats>();
  // Tests only (empty in billingd): called at named points of an invoice
  // actor's work ("invoice.after_write"); a test throws from it to crash the
  // actor there.
  std::function<void(const char* where, const invoice_id& id)> fault_hook;
};

// The current writer for `key` (an invoice id, or an event id). Read it at
// each use: the handle changes when the supervisor restarts the writer.
inline writer_actor writer_for(const actor_context& ctx, std::string_view key) {
  return ctx.writers[std::hash<std::string_view>{}(key) % ctx.writers.size()]->get();
}

// The current reader (pool). Read it at each use, like writer_for.
inline reader_actor reader_of(const actor_context& ctx) {
  return ctx.reader->get();
}

using context_ptr = std::shared_ptr<const actor_context>;

// The one translation of CAF's own errors into ours. An actor that died with
// the message in its mailbox (its supervisor restarts it) and a timeout are
// worth a retry; anything else is a bug: internal (500, logged with the
// request id), never `unavailable`, which would make Stripe retry forever.
inline failure failure_from(const caf::error& err) {
  if (err == caf::sec::request_receiver_down)
    return fail(billing_errc::unavailable, "an actor billingd needed had stopped; retry");
  if (err == caf::sec::request_timeout)
    return fail(billing_errc::timeout, "the request timed out inside billingd");
  return fail(billing_errc::internal, "unexpected actor error: " + caf::to_string(err));
}

} // namespace billing
