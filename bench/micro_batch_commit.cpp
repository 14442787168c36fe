// Micro-benchmark: one group commit of B commands through pg_store, the
// persistence actor's only expensive step. Two shapes:
//  - create: B new invoice rows (what POST /v1/invoices writes first);
//  - transition: B webhook transitions, each a compare-and-set invoice
//    update + its webhook_events row + its outbox row (3 rows per command),
//    i.e. what B concurrent paying webhooks cost in one transaction.
// Needs a scratch PostgreSQL database: BILLING_BENCH_DATABASE_URL (migrated
// here; rows are added, never removed). Unset: every case is skipped with a
// message. synchronous_commit as the server has it (on for scripts/pg).
// Run: BILLING_BENCH_DATABASE_URL=... billing-micro --benchmark_filter=BatchCommit
#include "persistence/migrations.hpp"
#include "persistence/pg_store.hpp"
#include "protocol/invoice.hpp"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace billing;

constexpr unix_seconds now = 1'700'000'000;

const char* database_url() {
  const char* url = std::getenv("BILLING_BENCH_DATABASE_URL");
  return url && *url ? url : nullptr;
}

std::string run_token() {
  static const std::string token = [] {
    std::random_device rd;
    return std::to_string(rd()) + std::to_string(rd());
  }();
  return token;
}

stored_invoice fresh_invoice() {
  static uint64_t n = 0;
  auto k = std::to_string(n++);
  stored_invoice s;
  auto& inv = s.inv;
  inv.workflow_id = "micro-" + run_token() + "-wf-" + k;
  inv.shipment_id = "micro-" + run_token() + "-shp-" + k;
  inv.id = derive_invoice_id(inv.workflow_id, inv.shipment_id);
  inv.user_id = "micro-user";
  inv.amount_cents = 12'500;
  inv.currency = "usd";
  inv.status = invoice_status::pending;
  inv.version = 1;
  inv.provider = "simulated";
  inv.provider_intent_id = intent_id{"pi_micro_" + run_token() + "_" + k};
  inv.created_at = now;
  inv.updated_at = now;
  inv.expires_at = now + 86'400;
  return s;
}

write_command create_command(const stored_invoice& s) {
  write_command c;
  c.change = invoice_change{s, 0};
  return c;
}

write_command transition_command(const stored_invoice& s) {
  write_command c;
  auto next = s;
  next.inv.status = invoice_status::paid;
  next.inv.version = s.inv.version + 1;
  next.inv.paid_at = now + 5;
  next.inv.last_event_at = now + 5;
  next.inv.updated_at = now + 6;
  c.change = invoice_change{next, s.inv.version};
  c.event = webhook_record{event_id{"evt_micro_" + s.inv.provider_intent_id.str()}, "payment_intent.succeeded",
                           s.inv.id, outcome::applied, now + 6};
  c.signal = outbox_record{s.inv.id, "PaymentConfirmed",
                           R"({"invoice_id":")" + s.inv.id.str() + R"(","status":"PAID","amount_cents":12500})",
                           now + 6};
  return c;
}

void BM_BatchCommit(benchmark::State& state, bool transition) {
  const char* url = database_url();
  if (!url) {
    state.SkipWithError("BILLING_BENCH_DATABASE_URL is unset: skipped (give it a scratch database URL)");
    return;
  }
  static bool migrated = false;
  if (!migrated) {
    auto m = migrate(std::string{url});
    if (!ok(m)) {
      state.SkipWithError(("cannot migrate: " + std::get<failure>(m).message).c_str());
      return;
    }
    migrated = true;
  }
  pg_store store{store_options{.url = url, .application_name = "billing-micro"}};
  if (!ok(store.connect())) {
    state.SkipWithError("cannot connect to BILLING_BENCH_DATABASE_URL");
    return;
  }
  const auto batch = static_cast<size_t>(state.range(0));
  std::vector<write_command> cmds;
  for (auto _ : state) {
    state.PauseTiming();
    cmds.clear();
    std::vector<write_command> setup;
    for (size_t i = 0; i < batch; ++i) {
      auto inv = fresh_invoice();
      if (transition) {
        setup.push_back(create_command(inv));
        cmds.push_back(transition_command(inv));
      } else {
        cmds.push_back(create_command(inv));
      }
    }
    if (!setup.empty())
      store.write_batch(setup);
    state.ResumeTiming();
    auto statuses = store.write_batch(cmds);
    for (auto s : statuses)
      if (s != write_status::committed) {
        state.SkipWithError(("a command was not committed: " + std::string{to_string(s)}).c_str());
        return;
      }
  }
  auto commands = static_cast<double>(state.iterations()) * static_cast<double>(batch);
  state.SetItemsProcessed(static_cast<int64_t>(commands));
  state.counters["rows_per_s"] = benchmark::Counter(commands * (transition ? 3 : 1), benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_BatchCommit, create, false)->RangeMultiplier(4)->Range(1, 1024)->UseRealTime();
BENCHMARK_CAPTURE(BM_BatchCommit, transition, true)->RangeMultiplier(4)->Range(1, 1024)->UseRealTime();

} // namespace
