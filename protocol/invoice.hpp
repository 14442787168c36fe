#pragma once
// The invoice model: what one invoice actor holds and what the `invoices`
// table stores. Plain data; the rules that change it live in state_machine.

#include "protocol/ids.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace billing {

enum class invoice_status : uint8_t {
  pending,
  paid,
  failed,
  cancelled,
  refunded,
  disputed,
};

// Upper-case wire/database names: "PENDING", "PAID", ...
std::string_view to_string(invoice_status s) noexcept;
std::optional<invoice_status> parse_invoice_status(std::string_view s) noexcept;

// How the customer pays: a PaymentIntent billingd creates at once (its
// client secret confirmed by the caller's front end), or a Stripe Checkout
// Session (a hosted page; its PaymentIntent appears only when the customer
// confirms there).
enum class invoice_mode : uint8_t {
  payment_intent,
  checkout,
};

// "payment_intent" | "checkout" (API and database).
std::string_view to_string(invoice_mode m) noexcept;
std::optional<invoice_mode> parse_invoice_mode(std::string_view s) noexcept;

// Unix seconds. Time is always a parameter, never read from a clock here.
using unix_seconds = int64_t;

struct invoice {
  invoice_id id;
  std::string user_id;
  std::string shipment_id;
  std::string workflow_id;
  int64_t amount_cents = 0;
  std::string currency; // ISO 4217, lower case ("usd")
  invoice_status status = invoice_status::pending;
  int64_t version = 0; // compare-and-set counter, bumped by every write
  std::string provider;          // "stripe" | "simulated"
  invoice_mode mode = invoice_mode::payment_intent;
  // payment_intent mode: set at creation. checkout mode: empty until the
  // customer confirms on the session's page (learned from the session's
  // events, or from the intent's metadata naming this invoice).
  intent_id provider_intent_id;
  session_id provider_session_id; // checkout mode only: the Checkout Session
  unix_seconds created_at = 0;
  unix_seconds updated_at = 0;
  unix_seconds expires_at = 0;
  std::optional<unix_seconds> paid_at;
  std::optional<unix_seconds> last_event_at; // `created` of the last applied event
  std::string failure_code;
  std::string failure_message;
  // What the provider says was refunded of the payment so far (the charge's
  // amount_refunded); == amount_cents once REFUNDED. A partly refunded
  // invoice stays PAID.
  int64_t refunded_cents = 0;
  // How often expiry found a payment in flight (processing) and postponed
  // itself; the next postponement waits twice as long (state_machine.hpp).
  int32_t expiry_retries = 0;

  friend bool operator==(const invoice&, const invoice&) = default;
};

// The invoice id is derived from the idempotency key (workflow_id,
// shipment_id): a repeated create, on any replica, after any crash, lands on
// the same id, hence the same actor and the same row. A UUID (version 8,
// from SHA-256), so it fits the uuid column and reveals nothing useful.
invoice_id derive_invoice_id(std::string_view workflow_id, std::string_view shipment_id);

// A name-based UUID (version 8, from SHA-256 of `key`): the same key gives
// the same id everywhere. Callers prefix `key` with their own domain string.
std::string name_based_uuid(std::string_view key);

// Canonical lower-case 8-4-4-4-12 form, as derive_invoice_id makes them.
bool is_canonical_uuid(std::string_view s) noexcept;

} // namespace billing
