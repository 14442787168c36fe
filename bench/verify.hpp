#pragma once
// billing-bench's verifier: after a run, reads the run's invoices, webhook
// events and outbox rows from PostgreSQL (scoped to the run's invoice ids
// and event ids, so other runs may share the database) and checks that
//  - every delivery answered 2xx is durable: its event id is recorded, once
//    (the primary key), against the right invoice, with a sane outcome;
//  - every event id sent is recorded (unless unacknowledged ones are
//    allowed: an overload run where the excess got 503 and no retry);
//  - every invoice ends in the state its recorded events imply: they are
//    replayed in creation order through the pure state machine
//    (protocol/state_machine) and status, paid_at, last_event_at and (for
//    FAILED) failure_code must match;
//  - exactly one outbox row per transition: outbox rows == events recorded
//    as `applied` == version - base_version, and the newest outbox signal is
//    the one the final status sends.
// Blocking (libpqxx); runs on the main thread after the load.

#include "bench/plan.hpp"
#include "protocol/invoice_event.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace billing::bench {

// Per pass, per plan event: what happened to its delivery.
enum class delivery_state : uint8_t { not_sent = 0, sent = 1, acknowledged = 2 };
using pass_states = std::vector<std::vector<delivery_state>>;

struct verify_options {
  std::string database_url;
  bool allow_unacknowledged = false;
  int64_t base_version = 1; // after setup: created with its intent, one commit
  size_t max_problems = 10;
};

struct verify_report {
  bool pass = false;
  bool error = false; // could not verify at all (database unreachable, ...)
  std::vector<std::string> problems; // the first few, readable
  uint64_t problem_count = 0;
  uint64_t invoices_checked = 0;
  uint64_t invoices_mismatched = 0;
  uint64_t events_sent = 0;           // distinct event ids sent
  uint64_t events_acknowledged = 0;   // ... answered 2xx at least once
  uint64_t events_recorded = 0;       // ... found in webhook_events
  uint64_t lost = 0;                  // acknowledged but not recorded
  uint64_t unacknowledged_recorded = 0;
  uint64_t unacknowledged_missing = 0;
  uint64_t transitions = 0;           // events recorded as applied
  uint64_t outbox_rows = 0;
  std::vector<std::pair<std::string, uint64_t>> final_status; // status -> invoices
};

// The invoice_event billingd should make of plan event `e` sent as `id`
// (what parse_stripe_event + to_invoice_event give for its body).
invoice_event expected_event(const plan& p, const plan_event& e, const std::string& id);

verify_report verify_run(const plan& p, const pass_states& sent, const verify_options& o);

} // namespace billing::bench
