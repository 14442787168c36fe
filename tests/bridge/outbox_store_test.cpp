// Integration (label integration): persistence/outbox_store against a real
// PostgreSQL (BILLING_TEST_DATABASE_URL), a database of its own per case.

#include "persistence/outbox_store.hpp"
#include "persistence/pg_store.hpp"

#include "../persistence/test_db.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <thread>

using namespace billing;
using namespace billing::test;
using namespace std::chrono_literals;

namespace {

// Commits `n` transitions per invoice for `invoices` new invoices, as the
// writer does (invoice row + outbox row); returns the invoice ids.
std::vector<invoice_id> seed(const scratch_db& db, int invoices, int n) {
  pg_store store{store_options{.url = db.url()}};
  REQUIRE(ok(store.connect()));
  std::vector<invoice_id> ids;
  for (int i = 0; i < invoices; ++i) {
    auto s = sample_invoice();
    ids.push_back(s.inv.id);
    auto c = create_cmd(s);
    c.signal = sample_signal(s.inv.id, "PaymentFailed");
    std::vector<write_command> cmds{c};
    REQUIRE(store.write_batch(cmds)[0] == write_status::committed);
  }
  for (int k = 1; k < n; ++k)
    for (auto& id : ids) {
      write_command c;
      c.signal = sample_signal(id, k + 1 == n ? "PaymentConfirmed" : "PaymentFailed");
      std::vector<write_command> cmds{c};
      REQUIRE(store.write_batch(cmds)[0] == write_status::committed);
    }
  return ids;
}

std::vector<outbox_item> claim_ok(outbox_store& s, int32_t limit, std::chrono::milliseconds lease = 60s) {
  auto r = s.claim(limit, lease);
  REQUIRE(ok(r));
  return std::get<0>(r);
}

std::vector<outbox_outcome> delivered(const std::vector<outbox_item>& items) {
  std::vector<outbox_outcome> out;
  for (auto& i : items)
    out.push_back({i.id, settle_kind::delivered, 0, ""});
  return out;
}

} // namespace

TEST_CASE("claim takes the oldest undelivered row of each invoice, leased", "[outbox_store]") {
  scratch_db db;
  auto ids = seed(db, 3, 3); // rows 1..3 first transitions, 4..9 later ones
  outbox_store store{outbox_store_options{db.url()}};
  REQUIRE(ok(store.connect()));
  auto first = claim_ok(store, 100);
  REQUIRE(first.size() == 3);
  std::set<std::string> invoices;
  for (auto& it : first) {
    invoices.insert(it.invoice.str());
    CHECK(it.attempts == 1);
    CHECK(it.signal == "PaymentFailed");
    CHECK(it.workflow_id.starts_with("workflow-"));
    CHECK(it.age_ms >= 0);
    CHECK(it.id <= 3);
  }
  CHECK(invoices.size() == 3);
  // Leased, and their successors wait behind them.
  CHECK(claim_ok(store, 100).empty());
  auto s = store.settle(delivered(first));
  REQUIRE(ok(s));
  CHECK(std::get<0>(s).latency_ms.size() == 3);
  auto second = claim_ok(store, 100);
  REQUIRE(second.size() == 3);
  for (auto& it : second)
    CHECK((it.id >= 4 && it.id <= 6));
  CHECK(db.scalar("SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL") == 3);
  CHECK(db.scalar("SELECT count(*) FROM outbox WHERE enqueued_at IS NULL") == 0);
}

TEST_CASE("an expired lease makes the row due again, with the next attempt number", "[outbox_store]") {
  scratch_db db;
  seed(db, 1, 1);
  outbox_store store{outbox_store_options{db.url()}};
  REQUIRE(ok(store.connect()));
  REQUIRE(claim_ok(store, 10, 1ms).size() == 1);
  std::this_thread::sleep_for(20ms);
  auto again = claim_ok(store, 10);
  REQUIRE(again.size() == 1);
  CHECK(again[0].attempts == 2);
}

TEST_CASE("two replicas claiming at once never take the same row", "[outbox_store]") {
  scratch_db db;
  seed(db, 40, 1);
  outbox_store a{outbox_store_options{db.url()}};
  REQUIRE(ok(a.connect()));
  outbox_store b{outbox_store_options{db.url()}};
  REQUIRE(ok(b.connect()));
  std::set<int64_t> seen;
  for (int round = 0; round < 10; ++round) {
    for (auto* s : {&a, &b})
      for (auto& it : claim_ok(*s, 3))
        CHECK(seen.insert(it.id).second);
  }
  CHECK(seen.size() == 40);
}

TEST_CASE("retry, dead with held-back successors, stats and re-drive", "[outbox_store]") {
  scratch_db db;
  auto ids = seed(db, 2, 3);
  outbox_store store{outbox_store_options{db.url()}};
  REQUIRE(ok(store.connect()));
  auto first = claim_ok(store, 10);
  REQUIRE(first.size() == 2);
  // Invoice A's first row fails for good; invoice B's is retried in 1 h.
  auto a = first[0], b = first[1];
  std::vector<outbox_outcome> outcomes{{a.id, settle_kind::dead, 0, "permanent: gone"},
                                       {b.id, settle_kind::retry, 3'600'000, "unavailable"}};
  auto r = store.exchange(outcomes, 10, 60s);
  REQUIRE(ok(r));
  auto& x = std::get<0>(r);
  CHECK(x.settled.held_back == 2); // A's two later rows
  CHECK(x.claimed.empty());        // B waits for its retry, A is dead
  CHECK(db.scalar("SELECT count(*) FROM outbox WHERE dead_at IS NOT NULL") == 3);
  CHECK(db.scalar("SELECT count(*) FROM outbox WHERE last_error LIKE 'held back: % (outbox id "
                  + std::to_string(a.id) + ")'")
        == 2);
  CHECK(db.scalar("SELECT count(*) FROM outbox WHERE id = " + std::to_string(b.id)
                  + " AND last_error = 'unavailable' AND next_attempt_at > now() + interval '50 minutes'")
        == 1);

  auto st = store.stats();
  REQUIRE(ok(st));
  CHECK(std::get<0>(st).backlog == 3); // B's three rows
  CHECK(std::get<0>(st).dead == 3);
  CHECK(std::get<0>(st).oldest_ms >= 0);

  // Re-driving A's first row brings its held-back successors along, in order.
  auto n = store.redrive(redrive_request{{a.id}, false});
  REQUIRE(ok(n));
  CHECK(std::get<0>(n) == 3);
  auto next = claim_ok(store, 10);
  REQUIRE(next.size() == 1);
  CHECK(next[0].id == a.id);
  CHECK(next[0].attempts == 1); // attempts start afresh
  REQUIRE(ok(store.settle(delivered(next))));
  auto then = claim_ok(store, 10);
  REQUIRE(then.size() == 1);
  CHECK(then[0].invoice == a.invoice);
  CHECK(then[0].id > a.id);
}

TEST_CASE("a row arriving behind a dead one is held back by the stats sweep, and --all-dead re-drives", "[outbox_store]") {
  scratch_db db;
  auto ids = seed(db, 1, 1);
  outbox_store store{outbox_store_options{db.url()}};
  REQUIRE(ok(store.connect()));
  auto first = claim_ok(store, 10);
  REQUIRE(ok(store.settle(std::vector<outbox_outcome>{{first[0].id, settle_kind::dead, 0, "x"}})));
  pg_store writer{store_options{.url = db.url()}};
  REQUIRE(ok(writer.connect()));
  write_command c;
  c.signal = sample_signal(ids[0], "PaymentRefunded");
  std::vector<write_command> cmds{c};
  REQUIRE(writer.write_batch(cmds)[0] == write_status::committed);
  CHECK(claim_ok(store, 10).empty()); // blocked behind the dead row
  auto st = store.stats();
  REQUIRE(ok(st));
  CHECK(std::get<0>(st).held_back == 1);
  CHECK(std::get<0>(st).backlog == 0);
  CHECK(std::get<0>(st).dead == 2);
  auto n = store.redrive(redrive_request{{}, true});
  REQUIRE(ok(n));
  CHECK(std::get<0>(n) == 2);
  CHECK(claim_ok(store, 10).size() == 1);
}

TEST_CASE("a delivered row is never settled again", "[outbox_store]") {
  scratch_db db;
  seed(db, 1, 1);
  outbox_store store{outbox_store_options{db.url()}};
  REQUIRE(ok(store.connect()));
  auto first = claim_ok(store, 10);
  REQUIRE(ok(store.settle(delivered(first))));
  std::vector<outbox_outcome> late{{first[0].id, settle_kind::dead, 0, "late"},
                                   {first[0].id, settle_kind::retry, 10, "late"}};
  REQUIRE(ok(store.settle(late)));
  CHECK(db.scalar("SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL AND dead_at IS NULL "
                  "AND last_error IS NULL")
        == 1);
  auto again = store.settle(delivered(first));
  REQUIRE(ok(again));
  CHECK(std::get<0>(again).latency_ms.empty());
}
