#pragma once
// The load engine of billing-bench: C keep-alive HTTP/1.1 connections driven
// by ONE asio io thread (the caller's: run() blocks until the work is done),
// closed loop (each connection sends its next request when the previous
// answer arrived) or open loop (request i is due at t0 + i/rate whatever
// the answers do; latency counts from that due time, so a slow server cannot
// hide its queueing: no coordinated omission).
//
// The engine knows nothing of webhooks: a `workload` writes request i into
// the connection's buffers and hears every answer. Failed exchanges (5xx or
// transport) are re-sent up to `retries` times after a short backoff, as
// Stripe re-delivers; each exchange is timed separately.

#include "bench/histogram.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace billing::bench {

using clock = std::chrono::steady_clock;

// What a workload fills in for one exchange. `head` is the request line and
// headers including the final blank line; `body` must stay valid until the
// exchange ends (point it into plan memory or into `scratch`).
struct outgoing {
  std::string head;
  std::string_view body;
  std::string scratch;
};

struct reply {
  unsigned status = 0;       // 0: transport error (see `error`)
  std::string_view body;
  bool retry_after = false;  // the answer carried Retry-After
  std::string_view error;
};

class workload {
public:
  virtual ~workload() = default;
  // Writes request `item` (attempt 0, 1, ...) into `out`. Io thread.
  virtual void prepare(uint64_t item, int attempt, outgoing& out) = 0;
  // Every answer (or transport failure) of every exchange. `final` is true
  // when no retry follows. Io thread.
  virtual void on_reply(uint64_t item, int attempt, const reply& r, bool final) = 0;
};

struct load_progress {
  uint64_t started = 0;    // items taken (first attempts)
  uint64_t completed = 0;  // items finished (final answer)
  uint64_t failed = 0;     // items whose final answer was not 2xx
  uint64_t exchanges = 0;
  uint64_t planned = 0;    // items (0 when bounded by duration only)
  double elapsed_s = 0;
  double duration_s = 0;
};

struct load_options {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  int connections = 64;
  // Open loop only: when a request is due and every connection is busy,
  // open another, up to this many (as Stripe does under a backlog). 0: none.
  int max_connections = 0;
  uint64_t items = 0;                    // requests to send (attempts not counted)
  double rate = 0;                       // > 0: open loop at this many items/s
  std::chrono::nanoseconds duration{0};  // > 0: stop starting new items after this long
  int retries = 0;                       // re-sends of a 5xx / transport failure
  std::chrono::milliseconds timeout{30'000}; // one exchange
  std::chrono::milliseconds backoff{20};     // first retry delay; doubles, capped at 1 s
  size_t body_limit = 1 << 20;
  // Called about 4 times a second while running (io thread); empty: none.
  std::function<void(const load_progress&)> progress;
};

struct load_result {
  double elapsed_s = 0;            // first send to last answer
  uint64_t items_completed = 0;    // final answers (2xx or given up)
  uint64_t items_ok = 0;           // final answer 2xx
  uint64_t exchanges = 0;          // every attempt
  uint64_t retried = 0;            // attempts after the first
  uint64_t transport_errors = 0;   // exchanges that got no HTTP answer
  uint64_t status_503_without_retry_after = 0;
  uint64_t connects = 0;
  uint64_t connections_peak = 0;   // connections that existed at the end
  std::map<unsigned, uint64_t> status_counts; // per exchange; 0 = transport error
  histogram latency_all;           // every exchange
  histogram latency_ok;            // 2xx exchanges only
  histogram service_ok;            // 2xx, from the moment the request was sent
                                   // (open loop: without the wait for a connection)
  std::vector<uint64_t> ok_per_second; // 2xx answers in each second of the run
  std::string first_error;         // first transport error, for the report
};

// Runs the load to completion on the calling thread.
load_result run_load(const load_options& opts, workload& w);

} // namespace billing::bench
