#include "test_db.hpp"

#include "persistence/migrations.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>

namespace billing::test {

std::string base_url() {
  const char* url = std::getenv("BILLING_TEST_DATABASE_URL");
  if (url == nullptr || *url == '\0')
    FAIL("BILLING_TEST_DATABASE_URL is not set: these integration tests need a PostgreSQL "
         "server. Run scripts/test, or: export BILLING_TEST_DATABASE_URL=$(scripts/pg start "
         "build/test-pg 55432)");
  return url;
}

std::string with_database(const std::string& url, const std::string& db) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos)
    return url + " dbname=" + db; // key=value form: the last dbname wins
  auto slash = url.find('/', scheme + 3);
  auto query = url.find('?', scheme + 3);
  std::string tail = query == std::string::npos ? "" : url.substr(query);
  std::string head = url.substr(0, std::min(slash, query));
  return head + "/" + db + tail;
}

scratch_db::scratch_db(bool migrated) : admin_url_(base_url()) {
  static std::atomic<int> counter{0};
  name_ = "billing_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  url_ = with_database(admin_url_, name_);
  {
    pqxx::connection admin{admin_url_};
    pqxx::nontransaction tx{admin};
    tx.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    tx.exec("CREATE DATABASE " + name_);
  }
  if (migrated) {
    auto r = migrate(url_);
    REQUIRE(ok(r));
  }
}

scratch_db::~scratch_db() {
  try {
    pqxx::connection admin{admin_url_};
    pqxx::nontransaction tx{admin};
    tx.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: could not drop %s: %s\n", name_.c_str(), e.what());
  }
}

std::unique_ptr<pqxx::connection> scratch_db::connect() const {
  return std::make_unique<pqxx::connection>(url_);
}

int64_t scratch_db::scalar(const std::string& sql) const {
  pqxx::connection c{url_};
  pqxx::nontransaction tx{c};
  return tx.exec(sql)[0][0].as<int64_t>();
}

int scratch_db::terminate(const std::string& app) const {
  pqxx::connection c{admin_url_};
  pqxx::nontransaction tx{c};
  auto r = tx.exec_params("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                          "WHERE datname = $1 AND application_name = $2",
                          name_, app);
  return r[0][0].as<int>();
}

std::string new_uuid() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = rng(), b = rng();
  a = (a & 0xFFFFFFFFFFFF0FFFull) | 0x4000ull;          // version 4
  b = (b & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull; // variant
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx",
                static_cast<unsigned>(a >> 32), static_cast<unsigned>((a >> 16) & 0xFFFF),
                static_cast<unsigned>(a & 0xFFFF), static_cast<unsigned>(b >> 48),
                static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFull));
  return buf;
}

stored_invoice sample_invoice(bool full) {
  static std::atomic<int> n{0};
  int k = n++;
  stored_invoice s;
  auto& inv = s.inv;
  inv.id = invoice_id{new_uuid()};
  inv.user_id = "user-" + std::to_string(k);
  inv.shipment_id = "shipment-" + std::to_string(k);
  inv.workflow_id = "workflow-" + std::to_string(k);
  inv.amount_cents = 1000 + k;
  inv.currency = "usd";
  inv.status = invoice_status::pending;
  inv.version = 1;
  inv.provider = "simulated";
  inv.created_at = 1'700'000'000 + k;
  inv.updated_at = inv.created_at;
  inv.expires_at = inv.created_at + 86'400;
  if (full) {
    inv.provider_intent_id = intent_id{"pi_" + inv.id.str().substr(0, 8)};
    inv.paid_at = inv.created_at + 10;
    inv.last_event_at = inv.created_at + 9;
    inv.failure_code = "card_declined";
    inv.failure_message = "Your card was declined. \"quoted\" \\ {braces}, commas";
    s.sealed_client_secret = std::string("\x00\x01sealed\xff\"\\", 11);
  }
  return s;
}

write_command create_cmd(const stored_invoice& s) {
  write_command c;
  c.change = invoice_change{s, 0};
  return c;
}

write_command update_cmd(const stored_invoice& s, invoice_status status) {
  write_command c;
  auto next = s;
  next.inv.status = status;
  next.inv.version = s.inv.version + 1;
  next.inv.updated_at = s.inv.updated_at + 1;
  c.change = invoice_change{next, s.inv.version};
  return c;
}

webhook_record sample_event(const std::string& id, const invoice_id& inv, outcome o) {
  return webhook_record{event_id{id}, "payment_intent.succeeded", inv, o, 1'700'000'500};
}

outbox_record sample_signal(const invoice_id& inv, const std::string& name) {
  return outbox_record{inv, name, R"({"invoice_id":")" + inv.str() + R"(","status":"PAID"})",
                       1'700'000'500};
}

} // namespace billing::test
