#pragma once
// Reconciliation's queries (the SQL is in reconcile_store.cpp): claim the
// invoices to ask Stripe about, and hold and move the checkpoint of the pass
// over Stripe's event log. Safe with several replicas: a claim takes rows with
// FOR UPDATE SKIP LOCKED and moves their reconcile_after forward in the same
// statement, so no replica claims an invoice again before its backoff is
// over; the checkpoint is leased to one holder at a time and only ever moves
// forward.
//
// Neither touches the compare-and-set columns: transitions still go through
// the invoice actors and the writer, and a claim never conflicts with one.
//
// Owner: one thread at a time (the reconcile actor); not thread-safe; every
// call blocks on the network. One connection of its own. No libpqxx
// exception escapes: failures are values (unavailable drops the connection;
// connect() again later).

#include "protocol/reconcile.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace billing {

struct reconcile_store_options {
  std::string url;
  std::chrono::seconds connect_timeout{2};
  std::chrono::milliseconds statement_timeout{10'000};
  std::string application_name = "billingd-reconcile";
};

class reconcile_store {
public:
  explicit reconcile_store(reconcile_store_options opts);
  ~reconcile_store();
  reconcile_store(const reconcile_store&) = delete;
  reconcile_store& operator=(const reconcile_store&) = delete;

  result<int> connect(); // backend pid
  bool connected() const noexcept;

  // PENDING/FAILED invoices with an intent or a session, updated_at at least
  // quiet_seconds ago, whose reconcile_after is due (or unset), the longest
  // waiting first, at most `limit` (1..1000); each gets reconcile_after =
  // now + min(backoff_max, backoff_first * 2^reconcile_checks) and one more check.
  candidates_result claim(const reconcile_claim& c);

  // The checkpoint, leased to `holder` (also when it already holds it, or the
  // lease expired); held = false when another holder's lease runs.
  checkpoint_result lease(const checkpoint_lease& l);

  // position = greatest(position, l.position), the lease ended; advanced =
  // false when `holder` no longer held it (nothing changed then).
  advance_result advance(const checkpoint_advance& a);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace billing
