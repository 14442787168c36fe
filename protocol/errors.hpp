#pragma once
// Errors are values inside billingd; net/ turns them into HTTP statuses and
// gRPC codes in one table (net/status_map). Messages never carry secrets.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace billing {

enum class billing_errc : uint8_t {
  invalid_argument,  // bad input; `field` names it
  unauthenticated,   // no API key, or not one of ours
  permission_denied, // a known key without the scope the call needs
  not_found,
  conflict,          // same idempotency key, different request
  invalid_state,     // e.g. cancel a PAID invoice
  bad_signature,     // webhook signature check failed
  payload_too_large,
  unavailable,       // the database (or another dependency) is down: retry later
  overloaded,        // a bound was reached: retry later
  rate_limited,      // this key's rate limit (api_keys rate=R/s burst=B): retry later
  timeout,
  provider_error,    // the payment provider refused or failed
  internal,
};

std::string_view to_string(billing_errc e) noexcept; // "invalid_argument", ...

struct failure {
  billing_errc code = billing_errc::internal;
  std::string message;
  std::string field; // the offending input field, when there is one

  friend bool operator==(const failure&, const failure&) = default;
};

// A value or the reason there is none.
template <class T>
using result = std::variant<T, failure>;

template <class T>
bool ok(const result<T>& r) noexcept {
  return r.index() == 0;
}

inline failure fail(billing_errc code, std::string message, std::string field = {}) {
  return failure{code, std::move(message), std::move(field)};
}

} // namespace billing
