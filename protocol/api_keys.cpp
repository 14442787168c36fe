#include "protocol/api_keys.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace billing {

namespace {

constexpr std::array<std::string_view, scope_count> scope_names{
  "invoices:write", "invoices:read", "simulator", "admin"};

// 32 bytes in unpadded base64url.
constexpr size_t key_body_length = 43;

bool is_name_char(char c, bool first) {
  if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
    return true;
  return !first && (c == '.' || c == '_' || c == '-');
}

bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > 64)
    return false;
  for (size_t i = 0; i < n.size(); ++i)
    if (!is_name_char(n[i], i == 0))
      return false;
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<key_digest> parse_digest(std::string_view hex) {
  key_digest d{};
  if (hex.size() != 2 * d.size())
    return std::nullopt;
  for (size_t i = 0; i < d.size(); ++i) {
    int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return std::nullopt;
    d[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return d;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return s;
}

// A positive decimal number (digits and at most one '.'), up to `max`.
std::optional<double> parse_positive(std::string_view text, double max) {
  if (text.empty() || text.size() > 16 || text.front() == '.' || text.back() == '.')
    return std::nullopt;
  if (std::count(text.begin(), text.end(), '.') > 1
      || !std::all_of(text.begin(), text.end(), [](char c) { return c == '.' || (c >= '0' && c <= '9'); }))
    return std::nullopt;
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, std::chars_format::fixed);
  if (ec != std::errc{} || end != text.data() + text.size() || v <= 0 || v > max)
    return std::nullopt;
  return v;
}

constexpr double max_rate = 1'000'000;

failure bad_entry(size_t index, std::string_view name, std::string why) {
  std::string where = "api_keys entry " + std::to_string(index + 1);
  if (valid_name(name))
    where += " (" + std::string{name} + ")";
  return fail(billing_errc::invalid_argument, where + ": " + std::move(why), "api_keys");
}

result<api_key_entry> parse_entry(std::string_view text, size_t index) {
  api_key_entry e;
  bool have_name = false, have_hash = false, have_scopes = false;
  std::optional<double> rate, burst;
  std::string_view name_seen;
  // Find the name first, so every later error can say which key it is about.
  for (std::string_view rest = text; !rest.empty();) {
    auto sp = rest.find_first_of(" \t");
    auto token = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view{} : trim(rest.substr(sp));
    if (token.starts_with("name="))
      name_seen = token.substr(5);
  }
  for (std::string_view rest = text; !rest.empty();) {
    auto sp = rest.find_first_of(" \t");
    auto token = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view{} : trim(rest.substr(sp));
    auto eq = token.find('=');
    if (eq == std::string_view::npos)
      return bad_entry(index, name_seen, "expected name=… sha256=… scopes=…, got a word without '='");
    auto key = token.substr(0, eq), value = token.substr(eq + 1);
    if (key == "name") {
      if (have_name)
        return bad_entry(index, name_seen, "name given twice");
      if (!valid_name(value))
        return bad_entry(index, name_seen,
                         "name must be 1-64 characters of a-z 0-9 . _ - starting with a letter or digit");
      e.name = std::string{value};
      have_name = true;
    } else if (key == "sha256") {
      if (have_hash)
        return bad_entry(index, name_seen, "sha256 given twice");
      auto d = parse_digest(value);
      if (!d)
        return bad_entry(index, name_seen, "sha256 must be 64 hex characters (the SHA-256 of the key)");
      e.sha256 = *d;
      have_hash = true;
    } else if (key == "scopes") {
      if (have_scopes)
        return bad_entry(index, name_seen, "scopes given twice");
      auto s = parse_scopes(value);
      if (!ok(s))
        return bad_entry(index, name_seen, std::get<failure>(s).message);
      e.scopes = std::get<scope_set>(s);
      have_scopes = true;
    } else if (key == "rate") {
      if (rate)
        return bad_entry(index, name_seen, "rate given twice");
      rate = value.ends_with("/s") ? parse_positive(value.substr(0, value.size() - 2), max_rate)
                                   : std::nullopt;
      if (!rate)
        return bad_entry(index, name_seen,
                         "rate must be requests per second, e.g. rate=50/s (more than 0, at most 1000000)");
    } else if (key == "burst") {
      if (burst)
        return bad_entry(index, name_seen, "burst given twice");
      burst = parse_positive(value, max_rate);
      if (!burst || *burst != static_cast<double>(static_cast<int64_t>(*burst)))
        return bad_entry(index, name_seen, "burst must be a whole number of requests from 1 to 1000000");
    } else {
      return bad_entry(index, name_seen, "unknown field '" + std::string{key.substr(0, 32)}
                                           + "' (fields: name, sha256, scopes, rate, burst)");
    }
  }
  if (!have_name)
    return bad_entry(index, name_seen, "name= is missing");
  if (!have_hash)
    return bad_entry(index, name_seen, "sha256= is missing");
  if (!have_scopes)
    return bad_entry(index, name_seen, "scopes= is missing");
  if (burst && !rate)
    return bad_entry(index, name_seen, "burst= needs rate= (requests per second)");
  if (rate)
    e.rate = rate_spec{*rate, burst ? *burst : std::max(1.0, std::ceil(*rate))};
  return e;
}

} // namespace

std::string_view to_string(scope s) noexcept {
  return scope_names[static_cast<size_t>(s)];
}

std::optional<scope> parse_scope(std::string_view s) noexcept {
  for (size_t i = 0; i < scope_names.size(); ++i)
    if (scope_names[i] == s)
      return static_cast<scope>(i);
  return std::nullopt;
}

std::string to_string(scope_set set) {
  std::string out;
  for (size_t i = 0; i < scope_count; ++i)
    if (set.has(static_cast<scope>(i))) {
      if (!out.empty())
        out += ',';
      out += scope_names[i];
    }
  return out;
}

result<scope_set> parse_scopes(std::string_view text) {
  scope_set set;
  while (!text.empty()) {
    auto comma = text.find(',');
    auto name = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    auto s = parse_scope(name);
    if (!s)
      return fail(billing_errc::invalid_argument,
                  "unknown scope '" + std::string{name.substr(0, 32)}
                    + "' (scopes: invoices:write, invoices:read, simulator, admin)",
                  "scopes");
    set.add(*s);
  }
  if (set.empty())
    return fail(billing_errc::invalid_argument, "at least one scope is needed", "scopes");
  return set;
}

key_digest sha256_of(std::string_view key) noexcept {
  key_digest d{};
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), d.data());
  return d;
}

std::string to_hex(const key_digest& d) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * d.size());
  for (unsigned char b : d) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

result<std::vector<api_key_entry>> parse_api_keys(std::string_view text) {
  std::vector<api_key_entry> out;
  size_t index = 0;
  while (!text.empty()) {
    auto end = text.find_first_of(";\n");
    auto entry = trim(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (entry.empty() || entry.front() == '#')
      continue;
    auto e = parse_entry(entry, index);
    if (!ok(e))
      return std::get<failure>(e);
    auto& parsed = std::get<api_key_entry>(e);
    for (auto& other : out) {
      if (other.name == parsed.name)
        return bad_entry(index, parsed.name, "another key has this name");
      if (other.sha256 == parsed.sha256)
        return bad_entry(index, parsed.name, "the same key is configured as " + other.name);
    }
    out.push_back(std::move(parsed));
    ++index;
  }
  return out;
}

std::string config_entry(const api_key_entry& e) {
  std::string out = "name=" + e.name + " sha256=" + to_hex(e.sha256) + " scopes=" + to_string(e.scopes);
  if (e.rate) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " rate=%.17g/s burst=%.0f", e.rate->per_second, e.rate->burst);
    out += buf;
  }
  return out;
}

bool is_well_formed_key(std::string_view key) noexcept {
  if (!key.starts_with(key_prefix) || key.size() != key_prefix.size() + key_body_length)
    return false;
  for (char c : key.substr(key_prefix.size()))
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'
          || c == '_'))
      return false;
  return true;
}

std::optional<std::string_view> bearer_token(std::string_view value) noexcept {
  constexpr std::string_view scheme = "bearer";
  if (value.size() <= scheme.size() || !is_space(value[scheme.size()]))
    return std::nullopt;
  for (size_t i = 0; i < scheme.size(); ++i)
    if ((value[i] | 0x20) != scheme[i])
      return std::nullopt;
  auto token = trim(value.substr(scheme.size()));
  // token68 (RFC 6750 §2.1): no spaces, printable ASCII only.
  if (token.empty())
    return std::nullopt;
  for (char c : token)
    if (c <= 0x20 || c >= 0x7f)
      return std::nullopt;
  return token;
}

const api_key_entry* api_key_store::find(std::string_view presented) const noexcept {
  const auto digest = sha256_of(presented);
  const api_key_entry* found = nullptr;
  for (auto& k : keys_) {
    const bool same = CRYPTO_memcmp(digest.data(), k.sha256.data(), digest.size()) == 0;
    // No early exit and no data-dependent branch on the comparison itself.
    found = same ? &k : found;
  }
  return found;
}

std::variant<caller, auth_failure> api_key_store::authorize(std::string_view authorization,
                                                            scope needed) const {
  if (authorization.empty())
    return auth_failure{auth_errc::missing, needed, {}};
  auto token = bearer_token(authorization);
  if (!token)
    return auth_failure{auth_errc::malformed, needed, {}};
  const api_key_entry* key = find(*token);
  if (!key)
    return auth_failure{auth_errc::unknown_key, needed, {}};
  if (!key->scopes.has(needed))
    return auth_failure{auth_errc::missing_scope, needed, key->name};
  return caller{key};
}

} // namespace billing
