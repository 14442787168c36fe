#include "persistence/pg_util.hpp"

#include <pqxx/except>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

namespace billing::pg_detail {

namespace {

bool is_uri(std::string_view url) {
  return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

// Adds key=value unless the connection string already names `key`.
void add_option(std::string& out, bool uri, std::string_view key, std::string_view value) {
  std::string probe{key};
  probe += '=';
  if (out.find(probe) != std::string::npos)
    return;
  if (uri)
    out += out.find('?') == std::string::npos ? '?' : '&';
  else if (!out.empty())
    out += ' ';
  out += key;
  out += '=';
  out += value;
}

bool sqlstate_unavailable(const std::string& state) {
  if (state.size() != 5)
    return false;
  if (state.starts_with("08") || state.starts_with("53") || state.starts_with("57P")
      || state.starts_with("40"))
    return true; // connection, resources, shutdown, rollback (deadlock, serialization)
  return state == "57014" /* statement timeout */ || state == "55P03" /* lock_not_available */;
}

constexpr std::string_view b64_chars =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

} // namespace

std::string connection_string(const std::string& url, std::chrono::seconds connect_timeout,
                              std::string_view application_name) {
  const bool uri = is_uri(url);
  std::string out = url;
  add_option(out, uri, "connect_timeout", std::to_string(std::max<int64_t>(connect_timeout.count(), 1)));
  if (!application_name.empty())
    add_option(out, uri, "application_name", application_name);
  add_option(out, uri, "keepalives", "1");
  add_option(out, uri, "keepalives_idle", "30");
  add_option(out, uri, "keepalives_interval", "10");
  add_option(out, uri, "keepalives_count", "3");
  return out;
}

std::unique_ptr<pqxx::connection> open_connection(const std::string& conninfo) {
  auto c = std::make_unique<pqxx::connection>(conninfo);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  // libpqxx 6 would otherwise reconnect behind our back, losing session
  // settings and hiding the outage from the actor that must report it.
  c->inhibit_reactivation(true);
#pragma GCC diagnostic pop
  return c;
}

bool is_unavailable(const std::exception& e, const pqxx::connection* c) noexcept {
  if (c != nullptr && !c->is_open())
    return true;
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr
      || dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr
      || dynamic_cast<const pqxx::transaction_rollback*>(&e) != nullptr)
    return true;
  if (auto* sql = dynamic_cast<const pqxx::sql_error*>(&e))
    return sqlstate_unavailable(sql->sqlstate());
  return false;
}

bool connection_lost(const std::exception& e, const pqxx::connection* c) noexcept {
  if (c == nullptr || !c->is_open())
    return true;
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr
      || dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr)
    return true;
  if (auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const auto& state = sql->sqlstate();
    return state.starts_with("08") || state.starts_with("57P");
  }
  return false;
}

failure to_failure(const std::exception& e, const pqxx::connection* c) {
  if (is_unavailable(e, c))
    return fail(billing_errc::unavailable, "database unavailable: " + first_line(e.what()));
  return fail(billing_errc::internal, "database error: " + first_line(e.what()));
}

void log_store_failure(std::string_view who, std::string_view what, const failure& f) {
  spdlog::warn("{} {}: {}", who, what, f.message);
}

std::string first_line(std::string_view text) {
  if (text.starts_with("ERROR:"))
    text.remove_prefix(6);
  while (!text.empty() && text.front() == ' ')
    text.remove_prefix(1);
  auto nl = text.find('\n');
  if (nl != std::string_view::npos)
    text = text.substr(0, nl);
  if (text.size() > 300)
    text = text.substr(0, 300);
  return std::string{text};
}

std::string redact(std::string_view url) {
  std::string out{url};
  if (is_uri(url)) {
    // scheme://user:password@host -> scheme://user:***@host
    auto start = out.find("://") + 3;
    auto at = out.find('@', start);
    auto colon = out.find(':', start);
    if (at != std::string::npos && colon != std::string::npos && colon < at)
      out.replace(colon + 1, at - colon - 1, "***");
  }
  auto pw = out.find("password=");
  if (pw != std::string::npos) {
    auto end = out.find_first_of(" &", pw);
    out.replace(pw + 9, (end == std::string::npos ? out.size() : end) - pw - 9, "***");
  }
  return out;
}

void pg_array::separator() {
  if (size_++ > 0)
    text_ += ',';
}

void pg_array::add(std::string_view value) {
  separator();
  text_ += '"';
  for (char ch : value) {
    if (ch == '"' || ch == '\\')
      text_ += '\\';
    text_ += ch;
  }
  text_ += '"';
}

void pg_array::add(int64_t value) {
  separator();
  text_ += std::to_string(value);
}

void pg_array::add_null() {
  separator();
  text_ += "NULL";
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (uint32_t{static_cast<uint8_t>(bytes[i])} << 16)
                 | (uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8)
                 | uint32_t{static_cast<uint8_t>(bytes[i + 2])};
    out += b64_chars[(v >> 18) & 63];
    out += b64_chars[(v >> 12) & 63];
    out += b64_chars[(v >> 6) & 63];
    out += b64_chars[v & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = uint32_t{static_cast<uint8_t>(bytes[i])} << 16;
    if (i + 1 < bytes.size())
      v |= uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8;
    out += b64_chars[(v >> 18) & 63];
    out += b64_chars[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? b64_chars[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  std::array<int8_t, 256> rev{};
  rev.fill(-1);
  for (size_t i = 0; i < b64_chars.size(); ++i)
    rev[static_cast<uint8_t>(b64_chars[i])] = static_cast<int8_t>(i);
  if (text.size() % 4 != 0)
    return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (size_t j = 0; j < 4; ++j) {
      char ch = text[i + j];
      if (ch == '=' && i + 4 == text.size() && j >= 2) {
        ++pad;
        v <<= 6;
        continue;
      }
      if (pad > 0 || rev[static_cast<uint8_t>(ch)] < 0)
        return std::nullopt;
      v = (v << 6) | static_cast<uint32_t>(rev[static_cast<uint8_t>(ch)]);
    }
    out += static_cast<char>((v >> 16) & 0xFF);
    if (pad < 2)
      out += static_cast<char>((v >> 8) & 0xFF);
    if (pad < 1)
      out += static_cast<char>(v & 0xFF);
  }
  return out;
}

bool is_uuid(std::string_view s) noexcept {
  if (s.size() != 36)
    return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char ch = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (ch != '-')
        return false;
    } else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F'))) {
      return false;
    }
  }
  return true;
}

std::string uuid_key(std::string_view s) {
  std::string out{s};
  for (auto& ch : out)
    if (ch >= 'A' && ch <= 'F')
      ch = static_cast<char>(ch - 'A' + 'a');
  return out;
}

} // namespace billing::pg_detail
