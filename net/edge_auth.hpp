#pragma once
// The decision both API edges (HTTP and gRPC) make before a call reaches
// billing_api: who is calling (protocol/api_keys), may they do this (the
// scope), and are they within their key's rate limit (net/key_limits). One
// function, so the two edges cannot drift apart; each turns the failure into
// its own status through net/status_map.

#include "net/http_edge.hpp"
#include "net/key_limits.hpp"
#include "protocol/api_keys.hpp"

#include <string>
#include <string_view>

namespace billing::net {

// What a caller is told for each authentication failure.
inline failure auth_failure_value(const auth_failure& f) {
  switch (f.code) {
    case auth_errc::missing:
      return fail(billing_errc::unauthenticated, "an API key is required: Authorization: Bearer <key>");
    case auth_errc::malformed:
      return fail(billing_errc::unauthenticated, "the Authorization header must be: Bearer <key>");
    case auth_errc::unknown_key:
      return fail(billing_errc::unauthenticated, "the API key is not valid");
    case auth_errc::missing_scope:
      return fail(billing_errc::permission_denied,
                  "this key lacks the scope " + std::string{to_string(f.needed)}, "scope");
  }
  return fail(billing_errc::unauthenticated, "the API key is not valid");
}

struct call_admission {
  const api_key_entry* key = nullptr; // set when admitted
  std::string key_name = "-";         // for the access log: known once the key is
  std::optional<failure> refused;     // unauthenticated, permission_denied or rate_limited
  int64_t retry_after = 0;            // seconds, with rate_limited
};

// `authorization`: the header (metadata) value, empty when absent. Counts
// 401s and 403s in `stats`; rate-limit refusals are counted per key in `limits`.
inline call_admission admit_call(const api_key_store& keys, key_limits* limits, edge_stats& stats,
                                 std::string_view authorization, scope needed) {
  call_admission a;
  auto d = keys.authorize(authorization, needed);
  if (auto* f = std::get_if<auth_failure>(&d)) {
    (f->code == auth_errc::missing_scope ? stats.forbidden : stats.unauthenticated)
      .fetch_add(1, std::memory_order_relaxed);
    if (f->code == auth_errc::missing_scope)
      a.key_name = std::string{f->key_name};
    a.refused = auth_failure_value(*f);
    return a;
  }
  a.key = std::get<caller>(d).key;
  a.key_name = a.key->name;
  if (limits)
    a.refused = limits->admit(*a.key, &a.retry_after);
  if (a.refused)
    a.key = nullptr;
  return a;
}

} // namespace billing::net
