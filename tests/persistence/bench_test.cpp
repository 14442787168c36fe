// Throughput of pg_store::write_batch by batch size. Hidden from the normal
// run: ./persistence_tests "[.bench]"  (numbers go to stdout)

#include "persistence/pg_store.hpp"

#include "test_db.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>

using namespace billing;
using namespace billing::test;

TEST_CASE("bench: write_batch throughput by batch size", "[.bench]") {
  scratch_db db;
  pg_store store{store_options{.url = db.url()}};
  REQUIRE(ok(store.connect()));
  std::printf("%-10s %6s %8s %10s %12s %12s\n", "workload", "batch", "commands", "seconds",
              "commands/s", "rows/s");
  for (size_t batch : {size_t{1}, size_t{16}, size_t{256}}) {
    const size_t total = batch == 1 ? 1000 : 8192;
    // create: one invoice row per command (CreateInvoice).
    std::vector<stored_invoice> invs;
    std::vector<write_command> creates;
    for (size_t i = 0; i < total; ++i) {
      invs.push_back(sample_invoice());
      creates.push_back(create_cmd(invs.back()));
    }
    // transition: CAS update + webhook event + outbox row (a webhook that pays).
    std::vector<write_command> transitions;
    for (size_t i = 0; i < total; ++i) {
      auto c = update_cmd(invs[i], invoice_status::paid);
      c.event = sample_event("evt_bench_" + invs[i].inv.id.str(), invs[i].inv.id);
      c.signal = sample_signal(invs[i].inv.id);
      transitions.push_back(std::move(c));
    }
    auto run = [&](const char* name, const std::vector<write_command>& cmds, size_t rows_each) {
      auto t0 = std::chrono::steady_clock::now();
      for (size_t i = 0; i < cmds.size(); i += batch) {
        auto n = std::min(batch, cmds.size() - i);
        auto st = store.write_batch(std::span{cmds}.subspan(i, n));
        REQUIRE(std::count(st.begin(), st.end(), write_status::committed) == static_cast<long>(n));
      }
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("%-10s %6zu %8zu %10.3f %12.0f %12.0f\n", name, batch, cmds.size(), s,
                  static_cast<double>(cmds.size()) / s,
                  static_cast<double>(cmds.size() * rows_each) / s);
    };
    run("create", creates, 1);
    run("transition", transitions, 3);
  }
}
