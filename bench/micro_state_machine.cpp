// Micro-benchmarks for protocol/state_machine: what an invoice actor pays per
// event to decide a transition (apply() copies the invoice into the decision
// and builds a one-line reason). Three shapes: a move (PENDING -> PAID), a
// stale event that moves nothing (failed on PAID), and a whole history
// replayed as billing-bench's verifier does (3 failures, then success).
// Run: billing-micro --benchmark_filter=StateMachine
#include "protocol/state_machine.hpp"

#include <benchmark/benchmark.h>

#include <vector>

namespace {

using namespace billing;

constexpr unix_seconds now = 1'700'000'000;

invoice sample_invoice(invoice_status status) {
  invoice inv;
  inv.id = derive_invoice_id("wf_bench_000042", "shp_bench_000042");
  inv.user_id = "user_000042";
  inv.shipment_id = "shp_bench_000042";
  inv.workflow_id = "wf_bench_000042";
  inv.amount_cents = 12'500;
  inv.currency = "usd";
  inv.status = status;
  inv.version = 2;
  inv.provider = "simulated";
  inv.provider_intent_id = intent_id{"pi_sim_0123456789abcdef01234567"};
  inv.created_at = now - 600;
  inv.updated_at = now - 600;
  inv.expires_at = now + 86'400;
  return inv;
}

invoice_event sample_event(event_kind kind, unix_seconds created) {
  invoice_event ev;
  ev.kind = kind;
  ev.id = event_id{"evt_0123456789ABCDEFGHIJabcd"};
  ev.created = created;
  ev.amount_cents = 12'500;
  ev.currency = "usd";
  ev.intent = intent_id{"pi_sim_0123456789abcdef01234567"};
  if (kind == event_kind::payment_failed) {
    ev.failure_code = "card_declined";
    ev.failure_message = "Your card has insufficient funds.";
  }
  return ev;
}

void BM_StateMachine_ApplyMove(benchmark::State& state) {
  const auto inv = sample_invoice(invoice_status::pending);
  const auto ev = sample_event(event_kind::payment_succeeded, now - 1);
  for (auto _ : state) {
    auto d = apply(inv, ev, now, provider_mode::test);
    benchmark::DoNotOptimize(d);
    if (d.result != outcome::applied) {
      state.SkipWithError("expected applied");
      break;
    }
  }
}
BENCHMARK(BM_StateMachine_ApplyMove);

void BM_StateMachine_ApplyStale(benchmark::State& state) {
  const auto inv = sample_invoice(invoice_status::paid);
  const auto ev = sample_event(event_kind::payment_failed, now - 1);
  for (auto _ : state) {
    auto d = apply(inv, ev, now, provider_mode::test);
    benchmark::DoNotOptimize(d);
    if (d.result != outcome::ignored_stale) {
      state.SkipWithError("expected ignored-stale");
      break;
    }
  }
}
BENCHMARK(BM_StateMachine_ApplyStale);

// A realistic history: three declined attempts, then the one that pays.
void BM_StateMachine_ReplayHistory(benchmark::State& state) {
  const auto start = sample_invoice(invoice_status::pending);
  std::vector<invoice_event> history;
  for (int i = 0; i < 3; ++i)
    history.push_back(sample_event(event_kind::payment_failed, now - 100 + i));
  history.push_back(sample_event(event_kind::payment_succeeded, now - 50));
  for (auto _ : state) {
    invoice inv = start;
    for (const auto& ev : history) {
      auto d = apply(inv, ev, now, provider_mode::test);
      if (d.result == outcome::applied)
        inv = std::move(d.next);
    }
    benchmark::DoNotOptimize(inv);
    if (inv.status != invoice_status::paid) {
      state.SkipWithError("expected PAID");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * history.size()));
}
BENCHMARK(BM_StateMachine_ReplayHistory);

} // namespace
