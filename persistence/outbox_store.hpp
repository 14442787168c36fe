#pragma once
// The outbox queue's queries: claim due rows (the oldest undelivered row of
// each invoice only, leased so no other replica claims it meanwhile), settle
// attempts (delivered / retry at / dead), statistics, re-drive dead rows.
//
// Owner: one thread at a time (the outbox actor, or `billingd outbox retry`
// on the main thread); not thread-safe; every call blocks on the network.
// One connection of its own, so the bridge never waits behind a write batch.
// No libpqxx exception escapes: failures are values (unavailable when the
// connection is unusable, which also drops it; connect() again later).

#include "protocol/outbox.hpp"

#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace billing {

struct outbox_store_options {
  std::string url;
  std::chrono::seconds connect_timeout{2};
  std::chrono::milliseconds statement_timeout{10'000};
  std::string application_name = "billingd-outbox";
};

class outbox_store {
public:
  explicit outbox_store(outbox_store_options opts);
  ~outbox_store();
  outbox_store(const outbox_store&) = delete;
  outbox_store& operator=(const outbox_store&) = delete;

  result<int> connect(); // backend pid
  bool connected() const noexcept;

  // Up to `limit` rows with next_attempt_at <= now(), undelivered, not dead,
  // and no earlier undelivered row of the same invoice (dead ones included),
  // soonest due first, skipping rows another transaction holds. Each claimed
  // row gets attempts + 1 and next_attempt_at = now() + lease (its lease: if
  // nobody settles it, it is due again then). Sorted by id.
  claim_result claim(int32_t limit, std::chrono::milliseconds lease);

  // In one transaction: delivered rows get delivered_at = now(); retries get
  // next_attempt_at = now() + delay and last_error; dead rows get dead_at and
  // last_error, and the later undelivered rows of their invoices are marked
  // dead too ("held back"), so the order of an invoice's signals survives a
  // re-drive. Rows already delivered are left alone.
  settle_result settle(std::span<const outbox_outcome> outcomes);

  // settle(outcomes) then claim(limit, lease), in one transaction: the
  // bridge's one round trip per cycle.
  exchange_result exchange(std::span<const outbox_outcome> outcomes, int32_t limit,
                           std::chrono::milliseconds lease);

  // Backlog, dead rows, oldest backlog age; also marks dead every live row
  // stuck behind a dead row of its invoice (one that arrived after it died).
  outbox_stats_result stats();

  // Makes dead rows live again (attempts 0, due now, enqueued_at now):
  // every dead row, or the named ones plus the later dead rows of their
  // invoices. Returns how many.
  redrive_result redrive(const redrive_request& r);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace billing
