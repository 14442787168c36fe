// Micro-benchmarks for protocol/stripe_event on the real fixtures
// (tests/data/events): the on-demand field extraction, the same plus the
// mapping to invoice_event, and for comparison an nlohmann DOM parse of the
// same body. Run: billing-micro --benchmark_filter=Event
#include "protocol/stripe_event.hpp"

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <variant>

namespace {

// The fixtures live next to this file's folder; __FILE__ is absolute in the
// CMake build.
std::string load_event(const char* name) {
  const auto path = std::filesystem::path(__FILE__).parent_path().parent_path() / "tests" / "data" /
                    "events" / (std::string(name) + ".json");
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void BM_StripeEvent_OnDemand(benchmark::State& state, const char* name) {
  const std::string body = load_event(name);
  if (body.empty() || !std::holds_alternative<billing::stripe_event>(billing::parse_stripe_event(body))) {
    state.SkipWithError("fixture missing or does not parse");
    return;
  }
  for (auto _ : state) {
    auto r = billing::parse_stripe_event(body);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
  state.counters["body_bytes"] = static_cast<double>(body.size());
}

void BM_StripeEvent_OnDemandAndMap(benchmark::State& state, const char* name) {
  const std::string body = load_event(name);
  if (body.empty()) {
    state.SkipWithError("fixture missing");
    return;
  }
  for (auto _ : state) {
    auto r = billing::parse_stripe_event(body);
    if (const auto* ev = std::get_if<billing::stripe_event>(&r)) {
      auto ie = billing::to_invoice_event(*ev);
      benchmark::DoNotOptimize(ie);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}

void BM_StripeEvent_NlohmannDom(benchmark::State& state, const char* name) {
  const std::string body = load_event(name);
  if (body.empty()) {
    state.SkipWithError("fixture missing");
    return;
  }
  for (auto _ : state) {
    auto j = nlohmann::json::parse(body);
    benchmark::DoNotOptimize(j);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
  state.counters["body_bytes"] = static_cast<double>(body.size());
}

} // namespace

BENCHMARK_CAPTURE(BM_StripeEvent_OnDemand, pi_succeeded, "payment_intent.succeeded");
BENCHMARK_CAPTURE(BM_StripeEvent_OnDemand, pi_payment_failed, "payment_intent.payment_failed");
BENCHMARK_CAPTURE(BM_StripeEvent_OnDemand, checkout_completed, "checkout.session.completed.paid");
BENCHMARK_CAPTURE(BM_StripeEvent_OnDemandAndMap, pi_succeeded, "payment_intent.succeeded");
BENCHMARK_CAPTURE(BM_StripeEvent_NlohmannDom, pi_succeeded, "payment_intent.succeeded");
BENCHMARK_CAPTURE(BM_StripeEvent_NlohmannDom, pi_payment_failed, "payment_intent.payment_failed");
