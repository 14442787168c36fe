#pragma once
// JSON for the internal HTTP API and the outbox payloads. Parsing validates
// every field and names the first bad one; nothing here throws.

#include "protocol/api.hpp"
#include "protocol/errors.hpp"
#include "protocol/invoice.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace billing {

// Bounds a demanding caller can rely on (also documented in README.md).
inline constexpr size_t max_id_length = 200;
inline constexpr int64_t max_amount_cents = 99'999'999; // Stripe's limit for most currencies
inline constexpr int64_t min_expires_in_seconds = 60;
inline constexpr int64_t max_expires_in_seconds = 30 * 86'400;

// POST /v1/invoices body:
// {"shipment_id","user_id","workflow_id","amount_cents","currency"[,"expires_in_seconds"]}
result<create_invoice_request> parse_create_invoice(std::string_view body);

// Checks an id from a caller (path or query parameter); `field` names it in the error.
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
