#pragma once
// Schema migrations: persistence/migrations/NNNN_name.sql, compiled into the
// binary, applied in order, each in its own transaction, recorded in
// schema_migrations(version, name, applied_at). Blocking: call from app/
// at start-up (or a command-line tool), never from an actor on the shared
// scheduler. Every function catches libpqxx exceptions and returns values.

#include "protocol/errors.hpp"

#include <pqxx/connection>

#include <span>
#include <string>

namespace billing {

namespace migration_detail {

struct embedded_migration {
  int version;
  const char* name;
  const char* sql;
};

// Generated at build time (embed_migrations.cmake), ordered by version 1..N.
std::span<const embedded_migration> embedded() noexcept;

} // namespace migration_detail

// The highest version this binary knows.
int latest_schema_version() noexcept;

// The highest version recorded in the database; 0 when never migrated.
result<int> current_schema_version(pqxx::connection& conn);

// Applies every missing migration; returns how many were applied (0 when up
// to date, also when the database is newer than this binary: that is logged
// and tolerated, for rolling upgrades). Holds a session advisory lock for
// the whole run, so replicas migrating at once apply each file once.
result<int> migrate(pqxx::connection& conn);
result<int> migrate(const std::string& url);

// current_schema_version() on a fresh connection.
result<int> schema_version(const std::string& url);

} // namespace billing
