#pragma once
// Stripe's request bodies and query strings: application/x-www-form-urlencoded
// with bracketed keys, written exactly as the official SDK writes them
// (stripe-node 23.1, utils.js `stringifyRequestData`):
//
//   {"amount":2000,"metadata":{"invoice_id":"x"},"expand":["latest_charge"]}
//   -> amount=2000&metadata[invoice_id]=x&expand[0]=latest_charge
//
// - keys in the object's order; a nested object's key is parent[child], an
//   array element's parent[i] (recursively);
// - null becomes the empty string (Stripe's "unset"), booleans true/false,
//   integers in decimal, strings as they are;
// - each key and value is percent-encoded like encodeURIComponent plus
//   ! * ( ) ' (what the SDK adds), then [ and ] are put back: so A-Z a-z 0-9
//   - _ . ~ [ ] stay, every other byte (UTF-8 included) becomes %XX in upper
//   case hex, a space %20 (never '+').
//
// Pure, never throws for the JSON it accepts (objects at the top).
// tests/stripe/stripe_form_test.cpp holds the table; the SDK-parity test
// compares what billingd sends with what the SDK sends.

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace billing::stripe {

// One key or value as the SDK encodes it.
std::string form_escape(std::string_view s);

// The whole body or query (without '?'). A non-object top level encodes as
// the empty string (the SDK ignores it too). Floating-point numbers are
// written by nlohmann's dump(), which may differ from JavaScript's String()
// for exotic values; Stripe's parameters billingd sends are integers.
std::string form_encode(const nlohmann::ordered_json& params);

// The reverse, for tests and the fake's own checks: "a[b]=c%20d&e=" ->
// {("a[b]", "c d"), ("e", "")}. '+' decodes to a space (HTML forms); a
// malformed escape is kept as it is.
std::vector<std::pair<std::string, std::string>> form_decode(std::string_view body);

} // namespace billing::stripe
