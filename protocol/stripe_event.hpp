#pragma once
// Stripe webhook event parsing: the raw (already signature-verified) body in,
// the few fields billingd needs out, in one pass over the bytes (simdjson
// on-demand; no DOM). Pure code: no I/O, no clock, never throws, safe to call
// from any thread (each thread keeps its own parser and scratch buffer).
//
// Then to_invoice_event() translates the event into the state machine's
// vocabulary (invoice_event.hpp).

#include "protocol/ids.hpp"
#include "protocol/invoice_event.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace billing {

enum class stripe_object_kind : uint8_t {
  payment_intent,   // data.object.object == "payment_intent"
  charge,           // "charge"
  dispute,          // "dispute"
  checkout_session, // "checkout.session"
  other,            // anything else, or no "object" field
};

std::string_view to_string(stripe_object_kind k) noexcept;

struct stripe_event {
  event_id id;
  std::string type; // "payment_intent.succeeded", ...
  int64_t created = 0;
  bool livemode = false;
  std::string api_version;
  stripe_object_kind object_kind = stripe_object_kind::other;
  std::string object_id; // pi_..., ch_..., dp_..., cs_...
  // The PaymentIntent: the object id for a payment_intent, otherwise the
  // object's "payment_intent" field (empty when absent or null).
  intent_id intent;
  std::string status;         // the object's status
  std::string payment_status; // checkout.session only
  // payment_intent/charge/dispute "amount", checkout.session "amount_total".
  std::optional<int64_t> amount;
  std::optional<int64_t> amount_refunded; // charge only
  std::string currency;
  // From data.object.metadata (set by billingd when it creates the intent).
  std::string invoice_id, workflow_id, shipment_id;
  // payment_intent only: last_payment_error.code / .message.
  std::string failure_code, failure_message;

  friend bool operator==(const stripe_event&, const stripe_event&) = default;
};

enum class event_parse_errc : uint8_t {
  empty_body,         // nothing but whitespace
  invalid_json,       // not well-formed JSON (incl. invalid UTF-8, truncation)
  not_an_object,      // the document is not a JSON object
  missing_field,      // a required field is absent
  wrong_type,         // a field is present with the wrong JSON type
  value_out_of_range, // negative amount, number not fitting int64
  empty_value,        // a required id is the empty string
  duplicate_field,    // a field billingd reads appears twice in one object
  too_deep,           // nesting beyond simdjson's depth limit
  too_large,          // beyond simdjson's capacity (4 GiB)
  out_of_memory,
};

std::string_view to_string(event_parse_errc c) noexcept;

struct event_parse_error {
  event_parse_errc code = event_parse_errc::invalid_json;
  // JSON path of the offending field, e.g. "data.object.amount"; empty when
  // the problem is the document as a whole. For metadata values it ends in
  // the key ("data.object.metadata.invoice_id").
  std::string field;
  // "wrong_type at data.object.amount"
  std::string message() const;

  friend bool operator==(const event_parse_error&, const event_parse_error&) = default;
};

using stripe_event_result = std::variant<stripe_event, event_parse_error>;

// Required: id (non-empty string), type (string), created (integer >= 0),
// data.object (object) with a non-empty string id. Everything else is
// optional; null counts as absent; a present field of the wrong type, an
// amount that is negative or does not fit int64, or a non-string metadata
// value is an error naming the field. Keys billingd reads must not repeat
// within their object (duplicate_field); keys it does not read are skipped
// without full validation (simdjson on-demand only validates UTF-8 and
// structure there). Never throws.
stripe_event_result parse_stripe_event(std::string_view body) noexcept;

// Pure mapping to the state machine's vocabulary. Events whose type does not
// match their object kind (e.g. "payment_intent.succeeded" carrying a
// charge) map to informational. charge.refunded maps to refunded whenever
// something was refunded (refunded_cents: the charge's total, at most its
// amount); a checkout.session object's id goes to `session`; the object's
// metadata.invoice_id to `metadata_invoice`.
invoice_event to_invoice_event(const stripe_event& ev);

} // namespace billing
