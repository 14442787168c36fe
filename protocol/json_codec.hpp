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
// {"shipment_id","user_id","workflow_id","amount_cents","currency"[,"expires_in_seconds"]},
// parsed by parse_json_strict; currency is an active ISO 4217 code (currency.hpp),
// either case, returned lower case.
result<create_invoice_request> parse_create_invoice(std::string_view body);

// Checks an id from a caller (path or query parameter); `field` names it in the
// error: non-empty, at most max_id_length bytes, no control characters, valid UTF-8.
std::optional<failure> check_id(std::string_view value, std::string_view field);

std::string to_json(const invoice_view& v);
std::string to_json(const std::vector<invoice>& list);
std::string to_json(const webhook_reply& r);
// {"error":{"code":..,"message":..[,"field":..]}}
std::string to_json(const failure& f);

// The signal payload a workflow receives: {invoice_id, status, amount_cents,
// currency, provider_intent_id, occurred_at (RFC 3339)}.
std::string signal_payload(const invoice& inv, unix_seconds occurred_at);

std::string rfc3339(unix_seconds t);

} // namespace billing
