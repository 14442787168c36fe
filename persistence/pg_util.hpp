#pragma once
// Internal helpers shared by pg_store and migrations: connection strings,
// exception-to-value mapping, PostgreSQL array literals, base64. Not part of
// the persistence API; nothing outside persistence/ includes this.

#include "protocol/errors.hpp"

#include <pqxx/connection>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace billing::pg_detail {

// `url` plus libpq options we always want (connect_timeout, keepalives,
// application_name) unless the url already sets them. Accepts both the
// URI form (postgresql://...) and the key=value form.
std::string connection_string(const std::string& url, std::chrono::seconds connect_timeout,
                              std::string_view application_name);

// Connects (blocking, throws pqxx exceptions) with pqxx's silent
// auto-reconnect turned off: we reconnect ourselves, visibly.
std::unique_ptr<pqxx::connection> open_connection(const std::string& conninfo);

// True if `e` means the connection is unusable (or the server is going
// away / refusing work), i.e. "retry later", not "this request is wrong".
bool is_unavailable(const std::exception& e, const pqxx::connection* c) noexcept;

// True if the connection itself is gone (or being shut down by the
// server): the owner must drop it and reconnect. A statement timeout or a
// deadlock is unavailable but leaves the connection usable.
bool connection_lost(const std::exception& e, const pqxx::connection* c) noexcept;

// unavailable or internal, with a one-line message: the first line of the
// server's error (DETAIL lines can hold row contents, so they are dropped).
failure to_failure(const std::exception& e, const pqxx::connection* c);

// Runs fn(*conn) -> result<T> on a store's own connection: no connection is
// `unavailable` at once; any exception becomes a failure (logged as a
// warning under `who` and `what`), and a lost connection is dropped so the
// owner's next connect() makes a new one.
template <class T, class F>
result<T> run_guarded(std::unique_ptr<pqxx::connection>& conn, std::string_view who, std::string_view what, F&& fn);

// First line of an error text, without "ERROR:  ", safe to log.
std::string first_line(std::string_view text);

// The url with any password replaced by "***", for logs.
std::string redact(std::string_view url);

// Builds a PostgreSQL array literal ("{...}") for `$n::type[]` parameters:
// every statement sends whole columns, one array per column.
class pg_array {
public:
  pg_array() : text_("{") {}
  void add(std::string_view value);
  void add(int64_t value);
  void add_null();
  void add_or_null(std::string_view value) { value.empty() ? add_null() : add(value); }
  void add_or_null(const std::optional<int64_t>& value) { value ? add(*value) : add_null(); }
  size_t size() const noexcept { return size_; }
  std::string str() const { return text_ + "}"; }

private:
  void separator();
  std::string text_;
  size_t size_ = 0;
};

std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

// 8-4-4-4-12 hex digits, any case: the only invoice id form we accept.
bool is_uuid(std::string_view s) noexcept;
// Lower-cased, so ids compare as PostgreSQL's uuid type compares them.
std::string uuid_key(std::string_view s);

void log_store_failure(std::string_view who, std::string_view what, const failure& f);

template <class T, class F>
result<T> run_guarded(std::unique_ptr<pqxx::connection>& conn, std::string_view who, std::string_view what, F&& fn) {
  if (!conn || !conn->is_open())
    return fail(billing_errc::unavailable, "database unavailable");
  try {
    return fn(*conn);
  } catch (const std::exception& e) {
    auto f = to_failure(e, conn.get());
    if (connection_lost(e, conn.get()))
      conn.reset();
    log_store_failure(who, what, f);
    return f;
  }
}

} // namespace billing::pg_detail
