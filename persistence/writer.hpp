#pragma once
// The group-commit writer: implements writer_actor. Spawned detached (it
// blocks in libpqxx) and owns one pg_store connection. The writers (one or
// more, see spawn_writers) are the only actors that write invoices,
// webhook_events and outbox rows.
//
// Batching: the first write of a new batch makes the actor send itself a
// flush marker; every write already in the mailbox is taken in before the
// marker, so a batch is whatever queued while the previous commit ran (an
// idle system commits a lone write at once). A batch holds at most
// max_batch commands; the rest stay queued for the next commit, which
// starts right after this one (and after the mailbox is drained again).
// Each requester is answered only after COMMIT.
//
// Bounds: at most max_pending commands received and not yet answered; past
// it a write is answered `overloaded` at once. (Latency under overload is
// bounded earlier, by the gateway's admission limit.) Database down: writes are
// answered `unavailable` at once while the actor reconnects with
// exponential backoff (backoff_min .. backoff_max), driven by a retry timer
// and by incoming writes; it recovers without a restart.
//
// Stop: on an exit message the queued commands are committed (a last
// flush), then the actor quits. Stop the edges and actors that write first.
// Killed (or dead of an exception), it answers every queued command
// `unavailable` (none of them was committed) and leaves the gauges as if it
// had stopped, so a supervisor can start another on the same stats.

#include "protocol/messages.hpp"

#include <caf/actor_system.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace billing {

struct writer_config {
  std::string url;                                      // BILLING_DATABASE_URL
  size_t max_batch = 256;                               // commands per transaction
  size_t max_pending = 10'000;                          // received, not yet answered
  std::chrono::milliseconds backoff_min{50};            // first reconnect delay
  std::chrono::milliseconds backoff_max{2'000};         // reconnect delay cap
  std::chrono::seconds connect_timeout{2};              // libpq connect_timeout (min 2)
  std::chrono::milliseconds statement_timeout{10'000};  // server-side, per statement
  std::string application_name = "billingd-writer";
  // Told (a nudge) after each COMMIT that wrote outbox rows, so the workflow
  // bridge delivers them without waiting for its scan. Called at each such
  // commit for the bridge's current handle (a supervisor may have restarted
  // it); a nudge lost while it restarts is covered by its periodic scan.
  // Empty, or returning a null handle: nobody to tell.
  std::function<outbox_listener()> listener{};
};

// Counters shared between the writers (several may share one) and any
// reader: the HTTP edge's /metrics, readiness, tests. Monotonic except the
// gauges (queued, writers, writers_up).
struct persistence_stats {
  std::atomic<uint64_t> batches{0};     // transactions attempted
  std::atomic<uint64_t> commands{0};    // commands in those transactions
  std::atomic<uint64_t> committed{0};   // answered committed
  std::atomic<uint64_t> conflicts{0};   // answered version_conflict
  std::atomic<uint64_t> duplicates{0};  // answered duplicate_event
  std::atomic<uint64_t> unavailable{0}; // answered unavailable (incl. at once, db down)
  std::atomic<uint64_t> overloaded{0};  // answered overloaded (max_pending reached)
  std::atomic<uint64_t> max_batch_seen{0};
  std::atomic<uint64_t> queued{0};      // gauge: received, not yet answered (all writers)
  std::atomic<uint32_t> writers{0};     // gauge: writers running
  std::atomic<uint32_t> writers_up{0};  // gauge: writers whose connection is open

  // Every writer has its connection (readiness).
  bool db_up() const noexcept {
    auto n = writers.load();
    return n > 0 && writers_up.load() == n;
  }
  double mean_batch_size() const noexcept {
    auto b = batches.load();
    return b == 0 ? 0.0 : static_cast<double>(commands.load()) / static_cast<double>(b);
  }
};

// Spawns the writer (detached). It connects at once; a database that is down
// at start is not an error (writes answer unavailable until it is back).
writer_actor spawn_writer(caf::actor_system& sys, writer_config cfg,
                          std::shared_ptr<persistence_stats> stats);

// `count` writers, each on its own connection and sharing `stats`: one
// batch's statements run while another's COMMIT waits for its fsync, which
// a single connection cannot overlap. Route each invoice to one of them
// (writer_for in actors/context.hpp) so its writes stay on one connection.
std::vector<writer_actor> spawn_writers(caf::actor_system& sys, const writer_config& cfg,
                                        size_t count, std::shared_ptr<persistence_stats> stats);

// The configuration of writer `index` of a pool of `count` (its own
// application_name), for spawning (and restarting) the writers one by one.
writer_config pooled_writer_config(const writer_config& cfg, size_t index, size_t count);

} // namespace billing
