#pragma once
// The one table from billing_errc to HTTP status and gRPC code, used by both
// edges (net/http_edge, net/grpc_edge).

#include "protocol/errors.hpp"

#include <cstddef>
#include <iterator>

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
    case billing_errc::rate_limited: return 429;
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
         || e == billing_errc::timeout || e == billing_errc::provider_error
         || e == billing_errc::rate_limited;
}

// gRPC status codes (the numbers are the gRPC protocol's, fixed forever;
// declared here so this table needs no gRPC header).
enum class grpc_code : int {
  ok = 0,
  cancelled = 1,
  unknown = 2,
  invalid_argument = 3,
  deadline_exceeded = 4,
  not_found = 5,
  already_exists = 6,
  permission_denied = 7,
  resource_exhausted = 8,
  failed_precondition = 9,
  aborted = 10,
  out_of_range = 11,
  unimplemented = 12,
  internal = 13,
  unavailable = 14,
  data_loss = 15,
  unauthenticated = 16,
};

// The gRPC code of a failure: the same classes as the HTTP table above. A
// conflict on the idempotency key is ALREADY_EXISTS (the pair exists with
// other terms), a wrong status FAILED_PRECONDITION; everything a caller should
// retry later is UNAVAILABLE, except capacity (admission, rate limits,
// too-large messages): RESOURCE_EXHAUSTED, as gRPC's own limits answer.
inline grpc_code grpc_status(billing_errc e) noexcept {
  switch (e) {
    case billing_errc::invalid_argument: return grpc_code::invalid_argument;
    case billing_errc::bad_signature: return grpc_code::invalid_argument;
    case billing_errc::unauthenticated: return grpc_code::unauthenticated;
    case billing_errc::permission_denied: return grpc_code::permission_denied;
    case billing_errc::not_found: return grpc_code::not_found;
    case billing_errc::conflict: return grpc_code::already_exists;
    case billing_errc::invalid_state: return grpc_code::failed_precondition;
    case billing_errc::payload_too_large: return grpc_code::resource_exhausted;
    case billing_errc::provider_error: return grpc_code::unavailable;
    case billing_errc::unavailable: return grpc_code::unavailable;
    case billing_errc::overloaded: return grpc_code::resource_exhausted;
    case billing_errc::rate_limited: return grpc_code::resource_exhausted;
    case billing_errc::timeout: return grpc_code::deadline_exceeded;
    case billing_errc::internal: return grpc_code::internal;
  }
  return grpc_code::internal;
}

// "INVALID_ARGUMENT", ... (logs and metrics labels).
inline const char* grpc_code_name(grpc_code c) noexcept {
  static constexpr const char* names[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  auto i = static_cast<size_t>(c);
  return i < std::size(names) ? names[i] : "UNKNOWN";
}

} // namespace billing::net
