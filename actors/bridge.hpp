#pragma once
// The workflow bridge: takes outbox rows from the outbox actor and has the
// sink deliver them (a Temporal signal or an HTTP callback).
//
// Owner and threads: one event-based actor on the shared scheduler; it never
// blocks (the outbox actor is detached, sinks are asynchronous), so delivery
// never holds up invoice actors or edges.
//
// Work arrives two ways: a nudge from the writer after each COMMIT that wrote
// outbox rows (the normal path: no polling delay), and a scan every
// scan_interval (after a restart, after failures, for retries coming due).
// Round trips coalesce: at most one exchange (record outcomes + claim) is in
// flight, whatever finishes meanwhile joins the next;
// at most `concurrency` deliveries are.
//
// Per-invoice order: the store hands out only the oldest undelivered row of
// an invoice, and leases it, so an invoice has at most one delivery in flight
// and its next row becomes claimable only after this one is settled
// delivered. A row is marked delivered only after the sink confirmed it.
// Failures are retried with jittered exponential backoff until the retry
// horizon, then the row is dead (kept, counted, logged, re-drivable).
//
// Stop: on an exit message it claims nothing more, waits up to drain_timeout
// for deliveries in flight and their settle, then quits. Unsettled rows are
// delivered again after their lease (same request id: harmless).

#include "protocol/messages.hpp"

#include <caf/actor_system.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace billing {

struct bridge_config {
  std::string sink_name = "none";                      // metrics label
  size_t concurrency = 64;                             // deliveries in flight
  std::chrono::milliseconds delivery_timeout{10'000};  // the sink's own deadline
  std::chrono::milliseconds scan_interval{1'000};
  std::chrono::milliseconds stats_interval{5'000};     // backlog gauges, failure summary
  std::chrono::milliseconds lease{0};                  // 0: 2 x delivery_timeout + 2 s
  std::chrono::milliseconds drain_timeout{5'000};
  std::chrono::milliseconds store_timeout{15'000};     // a request to the outbox actor
  retry_policy retry;
  signal_names names;
  std::function<double()> random; // uniform [0, 1) for jitter; empty: seeded PRNG
};

// Upper bounds (ms) of the commit-to-signal latency histogram; +Inf follows.
inline constexpr std::array<int64_t, 16> bridge_latency_bounds_ms = {
  5, 10, 25, 50, 100, 250, 500, 1'000, 2'500, 5'000, 10'000, 30'000, 60'000, 300'000,
  3'600'000, 86'400'000};

// Counters shared between the bridge (the only writer) and /metrics.
class bridge_stats {
public:
  struct per_signal {
    uint64_t delivered = 0; // the sink confirmed
    uint64_t retried = 0;   // an attempt failed, another is scheduled
    uint64_t dead = 0;      // permanent failure or past the horizon
  };
  struct snapshot_type {
    std::map<std::string, per_signal> by_signal; // by the configured signal name
    std::array<uint64_t, bridge_latency_bounds_ms.size() + 1> buckets{}; // not cumulative
    uint64_t latency_count = 0;
    int64_t latency_sum_ms = 0;
  };

  std::string sink = "none";
  std::atomic<int64_t> backlog{-1};   // undelivered live rows; -1 until first read
  std::atomic<int64_t> dead_rows{-1}; // dead rows in the table
  std::atomic<int64_t> oldest_ms{-1}; // age of the oldest backlog row; -1: none
  std::atomic<uint64_t> in_flight{0};
  std::atomic<uint64_t> held_back{0}; // rows marked dead behind a dead row

  void count(const std::string& signal, settle_kind k);
  void observe_latency(int64_t ms);
  snapshot_type snapshot() const;

private:
  mutable std::mutex mu_;
  snapshot_type data_;
};

// `sink` may be null (sink = none): the bridge then only reads the backlog.
bridge_actor spawn_bridge(caf::actor_system& sys, bridge_config cfg, outbox_actor outbox,
                          sink_actor sink, std::shared_ptr<bridge_stats> stats);

} // namespace billing
