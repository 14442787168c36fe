#pragma once
// JSON for the internal HTTP API and the outbox payloads. Parsing validates
// every field and names the first bad one; nothing here throws.

#include "protocol/api.hpp"
#include "protocol/errors.hpp"
#include "protocol/invoice.hpp"

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace billing {

// Bounds a demanding caller can rely on (also documented in README.md).
inline constexpr size_t max_id_length = 200;
inline constexpr int64_t max_amount_cents = 99'999'999; // Stripe's limit for most currencies
inline constexpr int64_t min_expires_in_seconds = 60;
inline constexpr int64_t max_expires_in_seconds = 30 * 86'400;
inline constexpr size_t max_json_depth = 32; // nested objects and arrays; the top level is 1
// Checkout: Stripe's 30 min to 24 h window for a session's expires_at, with
// two minutes kept from each end for the calls in between.
inline constexpr int64_t min_checkout_expires_in_seconds = 30 * 60 + 120;
inline constexpr int64_t max_checkout_expires_in_seconds = 24 * 3'600 - 120;
inline constexpr size_t max_url_length = 2'048;
inline constexpr size_t max_idempotency_key_length = 200; // ours, inside Stripe's 255 with our prefix

// Parses a request body with the rules every JSON body of the API shares: one
// JSON value; no object (at any depth) repeats a key, because parsers disagree
// on which copy counts (nlohmann keeps the last, others the first), so a
// repeated key could mean one amount here and another to whoever reads the
// body next; nesting at most max_json_depth. A failure is invalid_argument:
// "duplicate key \"a.b\"" with field "a.b" (the path: keys joined by '.',
// array elements as "[i]"); for a value nested too deep, field is its path;
// field "" when the body is not JSON. Stops at the first problem; throws
// nothing but std::bad_alloc.
result<nlohmann::json> parse_json_strict(std::string_view body);

// POST /v1/invoices body:
// {"shipment_id","user_id","workflow_id","amount_cents","currency"[,"expires_in_seconds"]
//  [,"mode":"payment_intent"|"checkout","success_url","cancel_url"]},
// parsed by parse_json_strict; currency is an active ISO 4217 code (currency.hpp),
// either case, returned lower case. mode=checkout needs success_url and
// cancel_url (absolute http(s) URLs, at most max_url_length) and keeps
// expires_in_seconds inside Stripe's window; other modes refuse the URLs.
result<create_invoice_request> parse_create_invoice(std::string_view body);

// POST /v1/invoices/{id}/refunds body: {} or empty (a full refund), or
// {"amount_cents"?: 1..max_amount_cents, "reason"?: "duplicate" |
// "fraudulent" | "requested_by_customer"}. `idempotency_key` is the
// Idempotency-Key header ("" when absent): 1..max_idempotency_key_length
// printable ASCII characters.
result<refund_invoice_request> parse_refund_request(std::string_view body, std::string_view idempotency_key);

// The rules both edges share: mode and URLs of a create (above), and a
// refund's amount, reason and key (the gRPC edge fills the structs from
// protobuf, then asks these).
std::optional<failure> check_create_mode(const create_invoice_request& req);
std::optional<failure> check_refund_request(const refund_invoice_request& req);

// Checks an id from a caller (path or query parameter); `field` names it in the
// error: non-empty, at most max_id_length bytes, no control characters, valid UTF-8.
std::optional<failure> check_id(std::string_view value, std::string_view field);

std::string to_json(const invoice_view& v);
std::string to_json(const std::vector<invoice>& list);
std::string to_json(const webhook_reply& r);
// {"refund":{"id","status","amount_cents"},"invoice":{...}}
std::string to_json(const refund_view& r);
// {"error":{"code":..,"message":..[,"field":..]}}
std::string to_json(const failure& f);

// The signal payload a workflow receives: {invoice_id, status, amount_cents,
// currency, provider_intent_id, occurred_at (RFC 3339)[, refunded_cents]}
// (refunded_cents once something was refunded: PaymentRefunded says how much
// in total).
std::string signal_payload(const invoice& inv, unix_seconds occurred_at);

std::string rfc3339(unix_seconds t);

} // namespace billing
