// Retention against a real PostgreSQL: old webhook_events and delivered
// outbox rows go, everything else stays; the pruner actor does it on its own.
#include "persistence/pg_store.hpp"
#include "persistence/pruner.hpp"

#include "test_db.hpp"

#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

using namespace billing;
using namespace billing::test;
using namespace std::chrono_literals;

namespace {

// An invoice with one applied event and one outbox row; then ages them.
void seed(pg_store& store, const scratch_db& db) {
  auto inv = sample_invoice();
  REQUIRE(store.write_batch(std::vector{create_cmd(inv)})[0] == write_status::committed);
  for (int i = 0; i < 6; ++i) {
    write_command cmd;
    cmd.event = sample_event("evt_ret_" + std::to_string(i), inv.inv.id);
    cmd.signal = sample_signal(inv.inv.id);
    REQUIRE(store.write_batch(std::vector{cmd})[0] == write_status::committed);
  }
  auto c = db.connect();
  pqxx::work tx{*c};
  // evt 0..2 are 10 days old, 3..5 fresh; outbox rows 1..3 are 10 days old
  // (1 and 2 delivered, 3 not), 4..6 fresh (4 delivered).
  tx.exec("UPDATE webhook_events SET received_at = CASE WHEN event_id IN ('evt_ret_0', 'evt_ret_1', "
          "'evt_ret_2') THEN now() - interval '10 days' ELSE now() END");
  tx.exec("UPDATE outbox SET created_at = CASE WHEN id IN (SELECT id FROM outbox ORDER BY id LIMIT 3)"
          " THEN now() - interval '10 days' ELSE now() END");
  tx.exec("UPDATE outbox SET delivered_at = now() WHERE id IN"
          " (SELECT id FROM outbox ORDER BY id LIMIT 2) OR id = (SELECT id FROM outbox ORDER BY id OFFSET 3 LIMIT 1)");
  tx.commit();
}

} // namespace

TEST_CASE("prune deletes old events and old delivered outbox rows only", "[store][retention]") {
  scratch_db db;
  pg_store store{store_options{.url = db.url()}};
  REQUIRE(ok(store.connect()));
  seed(store, db);
  REQUIRE(db.scalar("SELECT count(*) FROM webhook_events") == 6);
  REQUIRE(db.scalar("SELECT count(*) FROM outbox") == 6);

  SECTION("in chunks") {
    auto r = store.prune(std::chrono::hours(24 * 3), std::chrono::hours(24 * 7), 1);
    REQUIRE(ok(r));
    CHECK(std::get<int64_t>(r) == 2); // one of each table
    r = store.prune(std::chrono::hours(24 * 3), std::chrono::hours(24 * 7), 100);
    REQUIRE(ok(r));
    CHECK(std::get<int64_t>(r) == 3); // the other two events, the other outbox row
  }
  SECTION("longer retention keeps them") {
    auto r = store.prune(std::chrono::hours(24 * 30), std::chrono::hours(24 * 30), 100);
    REQUIRE(ok(r));
    CHECK(std::get<int64_t>(r) == 0);
    return;
  }
  CHECK(db.scalar("SELECT count(*) FROM webhook_events") == 3);
  CHECK(db.scalar("SELECT count(*) FROM webhook_events WHERE received_at < now() - interval '3 days'") == 0);
  // The undelivered old row and the fresh ones stay.
  CHECK(db.scalar("SELECT count(*) FROM outbox") == 4);
  CHECK(db.scalar("SELECT count(*) FROM outbox WHERE created_at < now() - interval '7 days'") == 1);
  CHECK(db.scalar("SELECT count(*) FROM outbox WHERE created_at < now() - interval '7 days' AND delivered_at IS NULL") == 1);
  CHECK(db.scalar("SELECT count(*) FROM invoices") == 1);
}

TEST_CASE("the pruner actor prunes on its own, and a down database is not fatal", "[store][retention]") {
  scratch_db db;
  {
    pg_store store{store_options{.url = db.url()}};
    REQUIRE(ok(store.connect()));
    seed(store, db);
  }
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  pruner_config pc;
  pc.url = db.url();
  pc.interval = 1s;
  pc.event_retention = std::chrono::hours(24 * 3);
  pc.outbox_retention = std::chrono::hours(24 * 7);
  pc.chunk = 1;
  auto pruner = spawn_pruner(sys, pc);
  bool pruned = false;
  for (int i = 0; i < 100 && !pruned; ++i) {
    pruned = db.scalar("SELECT count(*) FROM webhook_events") == 3 && db.scalar("SELECT count(*) FROM outbox") == 4;
    if (!pruned)
      std::this_thread::sleep_for(50ms);
  }
  CHECK(pruned);
  caf::anon_send_exit(pruner, caf::exit_reason::user_shutdown);

  pc.url = "postgresql://nobody@127.0.0.1:1/none"; // nothing listens there
  auto lost = spawn_pruner(sys, pc);
  caf::scoped_actor self{sys};
  self->monitor(lost);
  bool died = false;
  self->receive([&](caf::down_msg&) { died = true; }, caf::after(1500ms) >> [] {});
  CHECK_FALSE(died); // it waits for the next interval, it does not crash
  caf::anon_send_exit(lost, caf::exit_reason::user_shutdown);
}
