#pragma once
// API keys of internal callers: what a key may do (scopes), how keys are
// configured (SHA-256 hashes with a name, never the keys themselves), and the
// one decision every edge makes: may this request's credentials do this?
// Pure code (OpenSSL for the hash); key generation lives in app/.
//
// Configuration, one entry per key, entries separated by ';' or newlines:
//
//   name=orders sha256=<64 hex> scopes=invoices:write,invoices:read [rate=50/s burst=100]
//
// `rate=R/s` (R from 0.001 to 1,000,000, decimals allowed) limits the key to R
// requests a second on average, `burst=B` (1 to 1,000,000; default R rounded
// up) to B at once after a quiet spell: a token bucket (protocol/rate_limit).
// Without rate= a key is not limited (admission control still bounds it).
//
// A key is `bk_` followed by 43 base64url characters (32 random bytes), so
// one SHA-256 is enough: there is nothing to brute-force.

#include "protocol/errors.hpp"
#include "protocol/rate_limit.hpp"

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace billing {

enum class scope : uint8_t {
  invoices_write, // create and cancel invoices (a create answers the client secret)
  invoices_read,  // read and list invoices
  simulator,      // the payment simulator (simulated provider only)
  admin,          // operator routes on the admin listener
};
inline constexpr size_t scope_count = 4;

std::string_view to_string(scope s) noexcept; // "invoices:write", ...
std::optional<scope> parse_scope(std::string_view s) noexcept;

class scope_set {
public:
  constexpr scope_set() = default;
  constexpr scope_set(std::initializer_list<scope> scopes) {
    for (auto s : scopes)
      add(s);
  }
  constexpr void add(scope s) noexcept { bits_ |= bit(s); }
  constexpr bool has(scope s) const noexcept { return (bits_ & bit(s)) != 0; }
  constexpr bool empty() const noexcept { return bits_ == 0; }
  friend constexpr bool operator==(scope_set, scope_set) = default;

private:
  static constexpr uint8_t bit(scope s) noexcept { return uint8_t(1u << static_cast<unsigned>(s)); }
  uint8_t bits_ = 0;
};

// "invoices:write,invoices:read" (in enum order).
std::string to_string(scope_set s);
// Comma-separated scope names; a failure names the unknown one.
result<scope_set> parse_scopes(std::string_view text);

using key_digest = std::array<unsigned char, 32>;

struct api_key_entry {
  std::string name; // [a-z0-9][a-z0-9._-]{0,63}: goes into logs and metrics
  key_digest sha256{};
  scope_set scopes;
  std::optional<rate_spec> rate; // none: not rate-limited
  friend bool operator==(const api_key_entry&, const api_key_entry&) = default;
};

key_digest sha256_of(std::string_view key) noexcept;
std::string to_hex(const key_digest& d);

// The whole configuration value. A failure says which entry (by position
// and, when readable, name) and why; it never repeats a hash.
result<std::vector<api_key_entry>> parse_api_keys(std::string_view text);

// The configuration line for one key (what `billingd keys new` prints).
std::string config_entry(const api_key_entry& e);

// Whether `key` looks like one of ours (prefix, length, alphabet).
bool is_well_formed_key(std::string_view key) noexcept;
inline constexpr std::string_view key_prefix = "bk_";

// The token of an `Authorization: Bearer <token>` header value (scheme
// case-insensitive, RFC 6750), or nullopt when the value is anything else.
std::optional<std::string_view> bearer_token(std::string_view authorization) noexcept;

// Who is calling, once authenticated.
struct caller {
  const api_key_entry* key = nullptr; // null: anonymous (open routes only)
  std::string_view name() const noexcept { return key ? std::string_view{key->name} : "-"; }
};

enum class auth_errc : uint8_t {
  missing,       // no Authorization header: 401
  malformed,     // not "Bearer <token>": 401
  unknown_key,   // no configured key has this hash: 401
  missing_scope, // authenticated, not allowed: 403
};

struct auth_failure {
  auth_errc code = auth_errc::missing;
  scope needed = scope::invoices_read; // for missing_scope
  std::string_view key_name;           // for missing_scope
};

// The configured keys. Lookup hashes the presented key and compares the
// digest with every entry in constant time (no early exit, CRYPTO_memcmp),
// so timing reveals neither which entry matched nor how much of it did.
// Immutable after construction; safe to share between threads.
class api_key_store {
public:
  api_key_store() = default;
  explicit api_key_store(std::vector<api_key_entry> keys) : keys_(std::move(keys)) {}

  const api_key_entry* find(std::string_view presented) const noexcept;
  const std::vector<api_key_entry>& entries() const noexcept { return keys_; }

  // The decision for a request carrying `authorization` (the header value,
  // empty when absent) that needs `needed`.
  std::variant<caller, auth_failure> authorize(std::string_view authorization, scope needed) const;

private:
  std::vector<api_key_entry> keys_;
};

} // namespace billing
