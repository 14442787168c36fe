#include "persistence/pg_store.hpp"

#include "test_db.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace billing;
using namespace billing::test;

namespace {

using statuses = std::vector<write_status>;

} // namespace

TEST_CASE("load of a missing or malformed id is empty, not an error", "[store]") {
  scratch_db db;
  pg_store store{store_options{.url = db.url()}};
  REQUIRE(ok(store.connect()));
  for (auto id : {new_uuid(), std::string{"not-a-uuid"}, std::string{}}) {
    auto r = store.load(invoice_id{id});
    REQUIRE(ok(r));
    CHECK_FALSE(std::get<0>(r).has_value());
  }
  auto f = store.find_by_intent(intent_id{"pi_missing"});
  REQUIRE(ok(f));
  CHECK_FALSE(std::get<0>(f).has_value());
}

TEST_CASE("load_many answers each id as load does, in one query", "[store]") {
  scratch_db db;
  pg_store store{store_options{.url = db.url()}};
  REQUIRE(ok(store.connect()));
  auto a = sample_invoice(true);
  auto b = sample_invoice(false);
  std::vector<write_command> create{create_cmd(a), create_cmd(b)};
  REQUIRE(store.write_batch(create) == statuses(2, write_status::committed));

  std::vector<invoice_id> ids{a.inv.id, invoice_id{new_uuid()}, b.inv.id, invoice_id{"not-a-uuid"},
                              a.inv.id, invoice_id{}};
  auto got = store.load_many(ids);
  REQUIRE(got.size() == ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    INFO("position " << i);
    REQUIRE(ok(got[i]));
    auto single = store.load(ids[i]);
    REQUIRE(ok(single));
    CHECK(std::get<0>(got[i]) == std::get<0>(single));
  }
  CHECK(std::get<0>(got[0]).has_value());
  CHECK_FALSE(std::get<0>(got[1]).has_value());
  REQUIRE(std::get<0>(got[2]).has_value());
  CHECK(std::get<0>(got[2])->inv.id == b.inv.id);
  CHECK(std::get<0>(got[4]) == std::get<0>(got[0])); // a repeated id gets the row twice
  CHECK(std::get<0>(got[0])->sealed_client_secret == a.sealed_client_secret);

  store.disconnect();
  auto down = store.load_many(ids);
  for (auto& r : down) {
    REQUIRE_FALSE(ok(r));
    CHECK(std::get<failure>(r).code == billing_errc::unavailable);
  }
}

TEST_CASE("find_by_intent, list and due_for_expiry round-trip", "[store]") {
  scratch_db db;
  pg_store store{store_options{.url = db.url()}};
  REQUIRE(ok(store.connect()));
  std::vector<stored_invoice> invs;
  std::vector<write_command> create;
  for (int i = 0; i < 6; ++i) {
    auto s = sample_invoice(i == 0);
    s.inv.shipment_id = i < 3 ? "ship-A" : "ship-B"; // (ship, wf) pairs are unique
    s.inv.workflow_id = "wf-" + std::to_string(i % 3);
    s.inv.created_at = 1'700'000'000 + i * 10;
    s.inv.expires_at = 1'700'001'000 - i * 100; // later created, sooner due
    invs.push_back(s);
    create.push_back(create_cmd(s));
  }
  invs[1].inv.status = invoice_status::paid;
  invs[2].inv.status = invoice_status::failed;
  invs[3].inv.status = invoice_status::cancelled;
  for (int i = 1; i <= 3; ++i)
    create[i].change->next.inv.status = invs[i].inv.status;
  REQUIRE(store.write_batch(create) == statuses(6, write_status::committed));

  auto f = store.find_by_intent(invs[0].inv.provider_intent_id);
  REQUIRE(ok(f));
  REQUIRE(std::get<0>(f).has_value());
  CHECK(*std::get<0>(f) == invs[0].inv.id);

  auto ids = [](const std::vector<invoice>& v) {
    std::vector<invoice_id> out;
    for (auto& i : v)
      out.push_back(i.id);
    return out;
  };
  auto by_ship = store.list(invoice_filter{"ship-A", "", 100});
  REQUIRE(ok(by_ship));
  auto& ship_list = std::get<0>(by_ship);
  CHECK(ids(ship_list)
        == std::vector<invoice_id>{invs[2].inv.id, invs[1].inv.id, invs[0].inv.id}); // newest first
  CHECK(ship_list.back() == invs[0].inv); // every field, the optional ones too
  CHECK(ship_list[1] == invs[1].inv);
  auto by_wf = store.list(invoice_filter{"", "wf-1", 100});
  REQUIRE(ok(by_wf));
  CHECK(ids(std::get<0>(by_wf)) == std::vector<invoice_id>{invs[4].inv.id, invs[1].inv.id});
  auto limited = store.list(invoice_filter{"ship-B", "", 2});
  REQUIRE(ok(limited));
  CHECK(ids(std::get<0>(limited)) == std::vector<invoice_id>{invs[5].inv.id, invs[4].inv.id});
  auto by_both = store.list(invoice_filter{"ship-B", "wf-0", 5000}); // capped, not refused
  REQUIRE(ok(by_both));
  CHECK(ids(std::get<0>(by_both)) == std::vector<invoice_id>{invs[3].inv.id});
  auto none = store.list(invoice_filter{"ship-C", "", 10});
  REQUIRE(ok(none));
  CHECK(std::get<0>(none).empty());
  auto no_filter = store.list(invoice_filter{"", "", 10});
  REQUIRE_FALSE(ok(no_filter));
  CHECK(std::get<failure>(no_filter).code == billing_errc::invalid_argument);
  auto zero = store.list(invoice_filter{"ship-A", "", 0});
  REQUIRE_FALSE(ok(zero));
  CHECK(std::get<failure>(zero).field == "limit");

  // Due: PENDING or FAILED, expires_at <= now, soonest first.
  // expires: 0 -> +1000, 1 -> +900 (PAID), 2 -> +800 (FAILED), 3 -> +700 (CANCELLED),
  //          4 -> +600, 5 -> +500
  const unix_seconds base = 1'700'000'000;
  auto due = store.due_for_expiry(base + 800, 100);
  REQUIRE(ok(due));
  CHECK(std::get<0>(due) == std::vector<invoice_id>{invs[5].inv.id, invs[4].inv.id, invs[2].inv.id});
  auto due1 = store.due_for_expiry(base + 800, 1);
  REQUIRE(ok(due1));
  CHECK(std::get<0>(due1) == std::vector<invoice_id>{invs[5].inv.id});
  auto all_due = store.due_for_expiry(base + 5000, 100);
  REQUIRE(ok(all_due));
  CHECK(std::get<0>(all_due).size() == 4);
  auto early = store.due_for_expiry(base, 100);
  REQUIRE(ok(early));
  CHECK(std::get<0>(early).empty());
}

TEST_CASE("due_for_expiry's predicate matches the partial index", "[store]") {
  scratch_db db;
  auto conn = db.connect();
  pqxx::nontransaction tx{*conn};
  tx.exec("SET enable_seqscan = off");
  std::string plan;
  for (const auto& row :
       tx.exec("EXPLAIN SELECT id::text FROM invoices WHERE status IN ('PENDING', 'FAILED')"
               " AND expires_at <= to_timestamp(1700000000) ORDER BY expires_at LIMIT 10"))
    plan += row[0].as<std::string>() + "\n";
  INFO(plan);
  CHECK(plan.find("invoices_expiry_idx") != std::string::npos);
}

