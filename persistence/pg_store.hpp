#pragma once
// The blocking PostgreSQL store: one connection, the named prepared
// statements of billingd, set-based batched writes.
//
// Owner: exactly one thread at a time (the writer actor, or one reader
// actor); not thread-safe. Every call blocks on the network, so the owner
// must be a detached actor or its own thread. No libpqxx exception escapes:
// results are values (write_status, failure{unavailable} when the
// connection is unusable, failure{internal} otherwise).
//
// Connection lifecycle: connect() opens (or re-opens) the connection and
// prepares the statements; any call that finds the connection broken drops
// it, reports unavailable, and leaves reconnecting (and its backoff) to the
// owner, which calls connect() again when it sees fit. Calls made while
// disconnected answer unavailable without touching the network.

#include "protocol/records.hpp"

#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace billing {

struct store_options {
  std::string url;                                      // libpq URI or key=value string
  std::chrono::seconds connect_timeout{2};              // libpq's minimum is 2
  std::chrono::milliseconds statement_timeout{10'000};  // server side; 0 = none
  std::string application_name = "billingd";            // shows in pg_stat_activity
};

class pg_store {
public:
  explicit pg_store(store_options opts);
  ~pg_store();
  pg_store(const pg_store&) = delete;
  pg_store& operator=(const pg_store&) = delete;

  // Drops any current connection and connects anew. Returns the server
  // backend pid, or failure{unavailable}.
  result<int> connect();
  void disconnect() noexcept;
  bool connected() const noexcept;
  int backend_pid() const noexcept; // 0 when disconnected

  // Writes every command in ONE transaction and returns one status per
  // command, in order. Per command:
  //  - event set: recorded unless its id is already in webhook_events (or
  //    earlier in this batch: the first wins) -> duplicate_event, and
  //    nothing else of that command is written;
  //  - change with expected_version 0: inserted with version 1 unless the
  //    id, (workflow_id, shipment_id), provider_intent_id or provider_session_id exists
  //    -> version_conflict; expected_version > 0: the mutable columns are
  //    overwritten and version becomes expected_version + 1 iff the row
  //    still has expected_version, else version_conflict (its event row, if
  //    recorded above, is removed again so a retry can record it);
  //  - signal: one outbox row iff the command is committed.
  // Several changes to one invoice in one batch are applied in batch order
  // (a chain v1 -> v2 -> v3 works; two changes from the same version: the
  // second conflicts). Connection trouble: every command is unavailable.
  // A command the database rejects for another reason (a CHECK, malformed
  // JSON, a non-uuid invoice id) does not sink its batch: the batch is
  // replayed one command per transaction and only that command answers
  // unavailable (logged without row contents).
  std::vector<write_status> write_batch(std::span<const write_command> cmds);

  // Not found (including a non-uuid id) is an empty optional, not a failure.
  load_result load(const invoice_id& id);
  // load() of each id, in one query; a failure is every id's answer.
  std::vector<load_result> load_many(std::span<const invoice_id> ids);
  find_result find_by_intent(const intent_id& id);
  // By shipment_id and/or workflow_id (at least one), newest first;
  // limit must be >= 1 and is capped at 1000. Client secrets are not read.
  list_result list(const invoice_filter& filter);
  // PENDING or FAILED with expires_at <= now, soonest first; limit 1..10000.
  due_result due_for_expiry(unix_seconds now, int32_t limit);

  // Retention: deletes at most `chunk` webhook_events received longer than
  // `event_age` ago and at most `chunk` delivered outbox rows created longer
  // than `outbox_age` ago (each in its own short statement, so no long lock);
  // returns the rows deleted.
  result<int64_t> prune(std::chrono::seconds event_age, std::chrono::seconds outbox_age, int32_t chunk);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace billing
