#include "persistence/migrations.hpp"

#include "persistence/pg_util.hpp"

#include <pqxx/nontransaction>
#include <pqxx/transaction>

#include <spdlog/spdlog.h>

#include <chrono>

namespace billing {

namespace {

// pg_advisory_lock key: "billmigr" as a big-endian int64.
constexpr int64_t migration_lock_key = 0x62696c6c6d696772;

constexpr const char* create_table_sql =
  "CREATE TABLE IF NOT EXISTS schema_migrations ("
  " version int PRIMARY KEY,"
  " name text NOT NULL,"
  " applied_at timestamptz NOT NULL DEFAULT now())";

int read_version(pqxx::transaction_base& tx) {
  auto exists = tx.exec("SELECT to_regclass('schema_migrations') IS NOT NULL");
  if (!exists[0][0].as<bool>())
    return 0;
  auto r = tx.exec("SELECT coalesce(max(version), 0) FROM schema_migrations");
  return r[0][0].as<int>();
}

std::string open_url(const std::string& url) {
  return pg_detail::connection_string(url, std::chrono::seconds{5}, "billingd-migrate");
}

} // namespace

int latest_schema_version() noexcept {
  auto all = migration_detail::embedded();
  return all.empty() ? 0 : all.back().version;
}

result<int> current_schema_version(pqxx::connection& conn) {
  try {
    pqxx::nontransaction tx{conn};
    return read_version(tx);
  } catch (const std::exception& e) {
    return pg_detail::to_failure(e, &conn);
  }
}

result<int> migrate(pqxx::connection& conn) {
  try {
    {
      pqxx::nontransaction tx{conn};
      tx.exec("SELECT pg_advisory_lock(" + std::to_string(migration_lock_key) + ")");
    }
    int applied = 0;
    int current = 0;
    {
      pqxx::nontransaction tx{conn};
      tx.exec(create_table_sql);
      current = read_version(tx);
    }
    if (current > latest_schema_version())
      spdlog::warn("database schema version {} is newer than this binary's {}; not migrating",
                   current, latest_schema_version());
    for (const auto& m : migration_detail::embedded()) {
      if (m.version <= current)
        continue;
      pqxx::work tx{conn};
      tx.exec(m.sql);
      tx.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                     m.version, std::string{m.name});
      tx.commit();
      spdlog::info("applied schema migration {:04}_{}", m.version, m.name);
      ++applied;
    }
    pqxx::nontransaction tx{conn};
    tx.exec("SELECT pg_advisory_unlock(" + std::to_string(migration_lock_key) + ")");
    return applied;
  } catch (const std::exception& e) {
    // The failed migration's transaction rolled back. Release the session
    // lock in case the caller keeps this connection (it also goes with it).
    auto f = pg_detail::to_failure(e, &conn);
    try {
      if (conn.is_open()) {
        pqxx::nontransaction tx{conn};
        tx.exec("SELECT pg_advisory_unlock_all()");
      }
    } catch (const std::exception&) {
      // the connection is gone, and the lock with it
    }
    spdlog::error("schema migration failed: {}", f.message);
    return f;
  }
}

result<int> migrate(const std::string& url) {
  try {
    auto conn = pg_detail::open_connection(open_url(url));
    return migrate(*conn); // the connection (and any advisory lock) closes here
  } catch (const std::exception& e) {
    auto f = pg_detail::to_failure(e, nullptr);
    spdlog::error("schema migration: cannot connect to {}: {}", pg_detail::redact(url), f.message);
    return f;
  }
}

result<int> schema_version(const std::string& url) {
  try {
    auto conn = pg_detail::open_connection(open_url(url));
    return current_schema_version(*conn);
  } catch (const std::exception& e) {
    return pg_detail::to_failure(e, nullptr);
  }
}

} // namespace billing
