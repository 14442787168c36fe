#pragma once
// billing-bench's workloads, driven by the http_load engine on its io
// thread: creating the plan's invoices over the API (or inserting them with
// SQL), building every event body before the timed phase, and the signed
// webhook deliveries. Plus the /metrics read-back after the run.

#include "bench/http_load.hpp"
#include "bench/plan.hpp"
#include "bench/verify.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace billing::bench {

// POST /v1/invoices for plan invoice `item`; keeps the ids the answers give.
class create_load final : public workload {
public:
  create_load(plan& p, std::string host_header, std::string api_key)
    : p_(p), host_(std::move(host_header)), api_key_(std::move(api_key)) {}

  void prepare(uint64_t item, int attempt, outgoing& out) override;
  void on_reply(uint64_t item, int attempt, const reply& r, bool final) override;

  uint64_t created = 0;
  uint64_t differed = 0; // answers whose ids differ from the derived ones
  uint64_t failed = 0;
  std::vector<std::string> samples;

private:
  void note_failure(const plan_invoice& inv, std::string why);

  plan& p_;
  std::string host_;
  std::string api_key_;
};

// Inserts the plan's invoices as billingd would have stored them after
// create + intent (version 2, PENDING, the simulated intent id); existing
// rows are left alone, so a re-run is harmless. Returns rows inserted.
// Throws on database errors.
uint64_t seed_invoices(const plan& p, const std::string& url);

struct bodies {
  std::vector<std::string> text; // per plan event
  std::vector<uint32_t> tag_at;  // offset of the pass tag in the body
  uint64_t fallbacks = 0;        // bodies the template could not make
};

// Every event body of the plan (two threads, template fast path).
bodies build_bodies(const plan& p);

// The generator and billingd's parser must agree on what each body means,
// or verification would compare against the wrong expectation. Empty when
// they do; otherwise what differs.
std::string self_check(const plan& p, const bodies& b);

// Delivery `item` is plan delivery item % n of pass item / n, signed at
// send time; records per pass and event whether it was sent / answered 2xx.
class webhook_load final : public workload {
public:
  webhook_load(const plan& p, const bodies& b, std::string secret, std::string host_header, pass_states& states)
    : p_(p), b_(b), secret_(std::move(secret)), host_(std::move(host_header)), states_(states) {}

  void prepare(uint64_t item, int attempt, outgoing& out) override;
  void on_reply(uint64_t item, int attempt, const reply& r, bool final) override;

  std::map<std::string, uint64_t, std::less<>> outcomes; // from 2xx bodies
  std::vector<std::string> samples;                      // first failures

private:
  std::pair<uint64_t, uint32_t> locate(uint64_t item);

  const plan& p_;
  const bodies& b_;
  std::string secret_;
  std::string host_;
  pass_states& states_;
};

// GET /metrics once; every sample by name. Empty when unreachable or not billingd.
std::map<std::string, double> fetch_metrics(const std::string& host, uint16_t port);

} // namespace billing::bench
