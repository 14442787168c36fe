#pragma once
// The one table from billing_errc to HTTP status (and, later, gRPC code).

#include "protocol/errors.hpp"

namespace billing::net {

inline unsigned http_status(billing_errc e) noexcept {
  switch (e) {
    case billing_errc::invalid_argument: return 400;
    case billing_errc::bad_signature: return 400;
    case billing_errc::unauthenticated: return 401;
    case billing_errc::permission_denied: return 403;
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

// The server's own trouble: the client gets a fixed message for these (the
// detail, which may quote a database or library, goes to the log with the
// request id), never the text the failure carries.
inline bool server_side(billing_errc e) noexcept {
  return e == billing_errc::internal || e == billing_errc::unavailable
         || e == billing_errc::overloaded || e == billing_errc::timeout
         || e == billing_errc::provider_error;
}

// What a client is told for a server-side failure.
inline const char* public_message(billing_errc e) noexcept {
  switch (e) {
    case billing_errc::unavailable: return "billingd cannot reach its database right now; retry later";
    case billing_errc::overloaded: return "billingd is at capacity; retry later";
    case billing_errc::timeout: return "the request timed out inside billingd; retry later";
    case billing_errc::provider_error: return "the payment provider failed; retry later";
    default: return "internal error; the log has the details under this request id";
  }
}

// Worth retrying later: the answer carries Retry-After.
inline bool retry_later(billing_errc e) noexcept {
  return e == billing_errc::unavailable || e == billing_errc::overloaded
         || e == billing_errc::timeout || e == billing_errc::provider_error;
}

} // namespace billing::net
