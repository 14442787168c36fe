#include "persistence/migrations.hpp"

#include "test_db.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

using namespace billing;
using namespace billing::test;

TEST_CASE("migrations are embedded in the binary, numbered from 1", "[migrations]") {
  auto all = migration_detail::embedded();
  REQUIRE(!all.empty());
  CHECK(latest_schema_version() == static_cast<int>(all.size()));
  CHECK(all[0].version == 1);
  CHECK(std::string{all[0].name} == "init");
  CHECK(std::string{all[0].sql}.find("CREATE TABLE invoices") != std::string::npos);
}

TEST_CASE("migrate applies every migration once and records it", "[migrations]") {
  scratch_db db{false};
  auto before = schema_version(db.url());
  REQUIRE(ok(before));
  CHECK(std::get<int>(before) == 0);

  auto first = migrate(db.url());
  REQUIRE(ok(first));
  CHECK(std::get<int>(first) == latest_schema_version());

  auto second = migrate(db.url());
  REQUIRE(ok(second));
  CHECK(std::get<int>(second) == 0);

  auto after = schema_version(db.url());
  REQUIRE(ok(after));
  CHECK(std::get<int>(after) == latest_schema_version());

  auto conn = db.connect();
  auto cur = current_schema_version(*conn);
  REQUIRE(ok(cur));
  CHECK(std::get<int>(cur) == latest_schema_version());
  pqxx::nontransaction tx{*conn};
  auto rows = tx.exec("SELECT version, name, applied_at IS NOT NULL FROM schema_migrations "
                      "ORDER BY version");
  REQUIRE(rows.size() == static_cast<size_t>(latest_schema_version()));
  CHECK(rows[0][0].as<int>() == 1);
  CHECK(rows[0][1].as<std::string>() == "init");
  CHECK(rows[0][2].as<bool>());
  for (auto table : {"invoices", "webhook_events", "outbox"})
    CHECK(tx.exec_params("SELECT to_regclass($1) IS NOT NULL", std::string{table})[0][0].as<bool>());
}

TEST_CASE("replicas migrating at once apply each migration exactly once", "[migrations]") {
  scratch_db db{false};
  std::vector<result<int>> results(4, result<int>{0});
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i)
    threads.emplace_back([&, i] { results[i] = migrate(db.url()); });
  for (auto& t : threads)
    t.join();
  int applied = 0;
  for (auto& r : results) {
    REQUIRE(ok(r));
    applied += std::get<int>(r);
  }
  CHECK(applied == latest_schema_version());
  CHECK(db.scalar("SELECT count(*) FROM schema_migrations") == latest_schema_version());
}

TEST_CASE("the schema enforces its checks", "[migrations]") {
  scratch_db db;
  auto conn = db.connect();
  auto rejects = [&](const std::string& sql) {
    try {
      pqxx::work tx{*conn};
      tx.exec(sql);
      tx.commit();
      return false;
    } catch (const pqxx::sql_error&) {
      return true;
    }
  };
  const std::string cols = "INSERT INTO invoices (id, user_id, shipment_id, workflow_id, "
                           "amount_cents, currency, status, version, provider, expires_at, "
                           "created_at, updated_at) VALUES ";
  auto row = [&](std::string user, std::string amount, std::string currency, std::string status) {
    return cols + "(gen_random_uuid(), '" + user + "', gen_random_uuid()::text, 'w', " + amount + ", '" + currency
           + "', '" + status + "', 1, 'stripe', now(), now(), now())";
  };
  CHECK_FALSE(rejects(row("u", "100", "usd", "PENDING")));
  CHECK(rejects(row("", "100", "usd", "PENDING")));
  CHECK(rejects(row("u", "0", "usd", "PENDING")));
  CHECK(rejects(row("u", "100", "USD", "PENDING")));
  CHECK(rejects(row("u", "100", "usd", "LOST")));
  CHECK(rejects("INSERT INTO webhook_events VALUES ('evt', 't', NULL, 'maybe', now())"));
  CHECK_FALSE(rejects("INSERT INTO webhook_events VALUES ('evt', 't', NULL, 'ignored-stale', now())"));
}

TEST_CASE("migrate reports an unreachable database as unavailable", "[migrations]") {
  auto r = migrate(with_database("postgresql://postgres@127.0.0.1:1/billing", "billing"));
  REQUIRE_FALSE(ok(r));
  CHECK(std::get<failure>(r).code == billing_errc::unavailable);
}
