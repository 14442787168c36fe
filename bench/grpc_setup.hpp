#pragma once
// billing-bench's setup over gRPC (--setup-grpc HOST:PORT): the plan's
// invoices created with billing.v1.BillingService/CreateInvoice instead of
// POST /v1/invoices, so the two edges' create throughput and latency can be
// compared (docs/performance.md). Asynchronous calls on gRPC's callback API
// over one channel, at most `concurrency` in flight; latency per call from
// its start to its answer.

#include "bench/histogram.hpp"
#include "bench/plan.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace billing::bench {

struct grpc_setup_result {
  uint64_t created = 0;
  uint64_t differed = 0; // answers whose ids differ from the derived ones
  uint64_t failed = 0;
  double elapsed_s = 0;
  histogram latency_ok;
  std::vector<std::string> samples; // first failures
};

// Fills the invoices' ids from the answers (like the HTTP setup).
grpc_setup_result grpc_create_invoices(plan& p, const std::string& address, const std::string& api_key,
                                       size_t concurrency, int retries);

} // namespace billing::bench
