#pragma once
// The one table from billing_errc to HTTP status (and, later, gRPC code).

#include "protocol/errors.hpp"

namespace billing::net {

inline unsigned http_status(billing_errc e) noexcept {
  switch (e) {
    case billing_errc::invalid_argument: return 400;
    case billing_errc::bad_signature: return 400;
    case billing_errc::not_found: return 404;
    case billing_errc::conflict: return 409;
    case billing_errc::invalid_state: return 409;
    case billing_errc::payload_too_large: return 413;
    case billing_errc::provider_error: return 502;
    case billing_errc::unavailable: return 503;
    case billing_errc::overloaded: return 503;
    case billing_errc::timeout: return 503;
    case billing_errc::internal: return 500;
  }
  return 500;
}

// Worth retrying later: the answer carries Retry-After.
inline bool retry_later(billing_errc e) noexcept {
  return e == billing_errc::unavailable || e == billing_errc::overloaded
         || e == billing_errc::timeout;
}

} // namespace billing::net
