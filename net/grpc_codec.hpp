#pragma once
// billing.v1 messages <-> billingd's values, and failures -> grpc::Status.
// Pure translation (no I/O, no threads); the gRPC edge's only dictionary.
// Validation of what a caller sends is the same as over HTTP: the same
// bounds and messages (protocol/json_codec's check_id, currency table,
// amount and expiry limits), the field named in the message and, for
// INVALID_ARGUMENT, in a google.rpc.BadRequest detail.

#include "billing/v1/billing.pb.h"
#include "protocol/api.hpp"

#include <grpcpp/support/status.h>

#include <optional>
#include <string>
#include <string_view>

namespace billing::net {

namespace pb = ::billing::v1;

pb::InvoiceStatus to_proto(invoice_status s) noexcept;
void to_proto(const invoice& inv, pb::Invoice* out);

// A create request from the wire, validated like the HTTP body.
result<create_invoice_request> from_proto(const pb::CreateInvoiceRequest& in);
// A refund request from the wire (the invoice id is checked by the edge).
result<refund_invoice_request> from_proto(const pb::RefundInvoiceRequest& in);

// The status a failure is answered with: the code from net/status_map, the
// failure's message for the caller's own mistakes, the fixed public message
// for billingd's own trouble (never its internal text); INVALID_ARGUMENT
// carries a google.rpc.BadRequest naming the field. `request_id` ends the
// message, as the HTTP error body names it.
grpc::Status to_status(const failure& f, std::string_view request_id);

// ListInvoices paging. A token is the position after the last invoice of a
// page (created_at, id: the list's own order, newest first) and a digest of
// the filter, so a token used with another filter is refused rather than
// silently paging something else; it is opaque to callers (base64url).
struct page_cursor {
  unix_seconds created_at = 0;
  std::string id;
};
std::string encode_page_token(const page_cursor& c, std::string_view filter_key);
std::optional<page_cursor> decode_page_token(std::string_view token, std::string_view filter_key);
// Whether `inv` comes after `c` in the list order (created_at desc, id desc).
bool after_cursor(const invoice& inv, const page_cursor& c) noexcept;

} // namespace billing::net
