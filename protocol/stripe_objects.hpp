#pragma once
// Stripe's answers, parsed: the objects billingd reads (PaymentIntent,
// Refund, Checkout Session, a page of Events) and the error JSON, with the
// one table from a Stripe error to billingd's failure. Pure: nlohmann/json
// DOM parsing (these answers are off the webhook hot path), never throws.
//
// Errors, as the caller of billingd sees them:
//   invalid_request_error, card_error   -> invalid_argument (400) with Stripe's
//        message and `param` as the field: the only provider text that reaches
//        our caller, and it is Stripe's user-facing text
//   payment_intent_unexpected_state, checkout_session_unexpected_state,
//        charge_already_refunded       -> invalid_state (409) with Stripe's
//        message (net/stripe_client answers a cancel's unexpected state with
//        the intent's real status instead)
//   authentication_error (401), permission (403) -> internal (500): our key is
//        wrong; the client logs it loudly, once, and never retries it
//   idempotency_error                   -> internal (500), logged loudly: the
//        same key was sent with other parameters (a bug, or an amount changed
//        after a crash between the Stripe call and the commit)
//   resource_missing (404)              -> internal: an id billingd stored is
//        unknown to this Stripe account (another account or mode?)
//   api_error, 5xx, 429 (lock_timeout, rate_limit), 409, connection errors
//        and timeouts, once retries are spent -> unavailable (503 + Retry-After)
//   anything else                       -> internal

#include "protocol/errors.hpp"
#include "protocol/provider.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace billing::stripe {

using metadata = std::map<std::string, std::string>;

struct payment_intent {
  std::string id;
  std::string status; // requires_payment_method, requires_confirmation, requires_action,
                      // processing, requires_capture, canceled, succeeded
  int64_t amount = 0;
  int64_t amount_received = 0;
  std::string currency;
  bool livemode = false;
  int64_t created = 0;
  std::string client_secret;
  std::string description;
  std::string cancellation_reason;
  std::string latest_charge;
  std::string last_error_code, last_error_message; // last_payment_error
  metadata meta;
};

struct refund {
  std::string id;
  std::string status; // pending, requires_action, succeeded, failed, canceled
  int64_t amount = 0;
  std::string currency;
  std::string payment_intent;
  std::string charge;
  std::string reason;
  int64_t created = 0;
  metadata meta;
  // With expand[]=charge (billingd's create_refund asks for it): the charge
  // after the refund, so the refunded total is known without another call.
  std::optional<int64_t> charge_amount;
  std::optional<int64_t> charge_amount_refunded;
  bool charge_livemode = false;
};

struct checkout_session {
  std::string id;
  std::string status;         // open, complete, expired
  std::string payment_status; // unpaid, paid, no_payment_required
  std::string url;            // null once complete or expired
  std::string payment_intent; // empty until the customer confirms
  std::string client_reference_id;
  std::optional<int64_t> amount_total;
  std::string currency;
  bool livemode = false;
  int64_t created = 0;
  int64_t expires_at = 0;
  metadata meta;
};

// One event of GET /v1/events. `raw` is the event's JSON as Stripe sent it,
// for the webhook path's parser (parse_stripe_event), so a listed event is
// applied exactly as a delivered one.
struct listed_event {
  std::string id;
  std::string type;
  int64_t created = 0;
  std::string raw;
};

struct event_page {
  std::vector<listed_event> data;
  bool has_more = false;
};

// Unreadable answers are failure{internal, "Stripe's answer is not a
// readable <what>: <why>"}.
result<payment_intent> parse_payment_intent(std::string_view body);
result<refund> parse_refund(std::string_view body);
result<checkout_session> parse_checkout_session(std::string_view body);
result<event_page> parse_event_page(std::string_view body);

// What the invoice actors see of an intent (with its last payment error).
intent_info to_intent_info(const payment_intent& pi);
session_info to_session_info(const checkout_session& s);
refund_info to_refund_info(const refund& r);

// -- errors --------------------------------------------------------------------

struct api_error {
  unsigned status = 0;   // HTTP status
  std::string type;      // api_error, card_error, idempotency_error, invalid_request_error, ...
  std::string code;      // e.g. parameter_invalid_integer, payment_intent_unexpected_state
  std::string decline_code;
  std::string message;
  std::string param;
  std::string doc_url;
  // error.payment_intent: Stripe includes the intent when an operation on it
  // failed (payment_intent_unexpected_state carries its real status).
  std::optional<payment_intent> intent;
};

// A body that is not Stripe's error JSON still gives an api_error with
// `status` and an empty `type`.
api_error parse_error(unsigned status, std::string_view body);

enum class error_class : uint8_t {
  invalid_request,  // the caller's input (400 to our caller)
  unexpected_state, // payment_intent_unexpected_state: the object is past this operation
  authentication,   // 401: our key is wrong
  permission,       // 403: a restricted key without the permission
  idempotency,      // same key, other parameters
  not_found,        // 404 resource_missing
  unavailable,      // Stripe's trouble, or too busy: retry later
  other,
};
std::string_view to_string(error_class c) noexcept;

error_class classify(const api_error& e) noexcept;

// The table above. `what` names the operation for messages that are not
// Stripe's ("create_intent").
failure to_failure(const api_error& e, std::string_view what);

// No answer at all (connection refused, reset, timeout) after the retries.
failure unreachable(std::string_view what, std::string_view detail);

} // namespace billing::stripe
