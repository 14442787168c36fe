#include "protocol/stripe_event_builder.hpp"

#include <nlohmann/json.hpp>

#include <random>

namespace billing {

namespace {

using json = nlohmann::json;

// A card payment method as Stripe attaches it to a failed attempt.
json card_payment_method(const intent_event_spec& s) {
  return {
    {"id", "pm_" + s.intent_id.substr(std::min<size_t>(3, s.intent_id.size()))},
    {"object", "payment_method"},
    {"billing_details",
     {{"address",
       {{"city", nullptr}, {"country", "US"}, {"line1", nullptr}, {"line2", nullptr},
        {"postal_code", "94107"}, {"state", nullptr}}},
      {"email", nullptr}, {"name", nullptr}, {"phone", nullptr}}},
    {"card",
     {{"brand", "visa"},
      {"checks", {{"address_line1_check", nullptr}, {"address_postal_code_check", "pass"}, {"cvc_check", "pass"}}},
      {"country", "US"}, {"display_brand", "visa"}, {"exp_month", 12}, {"exp_year", 2030},
      {"fingerprint", "Xt5EWLLDS7FJjR1c"}, {"funding", "credit"}, {"generated_from", nullptr},
      {"last4", "0341"},
      {"networks", {{"available", json::array({"visa"})}, {"preferred", nullptr}}},
      {"three_d_secure_usage", {{"supported", true}}}, {"wallet", nullptr}}},
    {"created", s.created - 5},
    {"customer", nullptr},
    {"livemode", false},
    {"metadata", json::object()},
    {"type", "card"},
  };
}

} // namespace

std::optional<simulated_outcome> parse_simulated_outcome(std::string_view s) noexcept {
  if (s == "succeeded") return simulated_outcome::succeeded;
  if (s == "failed") return simulated_outcome::failed;
  if (s == "canceled") return simulated_outcome::canceled;
  return std::nullopt;
}

std::string_view event_type_for(simulated_outcome o) noexcept {
  switch (o) {
    case simulated_outcome::succeeded: return "payment_intent.succeeded";
    case simulated_outcome::failed: return "payment_intent.payment_failed";
    case simulated_outcome::canceled: return "payment_intent.canceled";
  }
  return "payment_intent.succeeded";
}

std::string random_stripe_id(std::string_view prefix) {
  static constexpr char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id{prefix};
  for (int i = 0; i < 24; ++i)
    id += alphabet[rng() % (sizeof alphabet - 1)];
  return id;
}

std::string build_payment_intent_event(const intent_event_spec& s) {
  const char* status = s.outcome == simulated_outcome::succeeded ? "succeeded"
                       : s.outcome == simulated_outcome::failed  ? "requires_payment_method"
                                                                 : "canceled";
  bool paid = s.outcome == simulated_outcome::succeeded;
  json object = {
    {"id", s.intent_id},
    {"object", "payment_intent"},
    {"amount", s.amount_cents},
    {"amount_capturable", 0},
    {"amount_details", {{"tip", json::object()}}},
    {"amount_received", paid ? s.amount_cents : 0},
    {"application", nullptr},
    {"application_fee_amount", nullptr},
    {"automatic_payment_methods", {{"allow_redirects", "always"}, {"enabled", true}}},
    {"canceled_at", s.outcome == simulated_outcome::canceled ? json(s.created) : json(nullptr)},
    {"cancellation_reason", s.outcome == simulated_outcome::canceled ? json("abandoned") : json(nullptr)},
    {"capture_method", "automatic_async"},
    {"client_secret", nullptr}, // Stripe omits it from events; so do we
    {"confirmation_method", "automatic"},
    {"created", s.created - 30},
    {"currency", s.currency},
    {"customer", nullptr},
    {"description", "Shipment " + s.shipment_id},
    {"invoice", nullptr},
    {"last_payment_error", nullptr},
    {"latest_charge", paid ? json("ch_" + s.intent_id.substr(std::min<size_t>(3, s.intent_id.size()))) : json(nullptr)},
    {"livemode", false},
    {"metadata",
     {{"invoice_id", s.invoice_id}, {"workflow_id", s.workflow_id}, {"shipment_id", s.shipment_id}}},
    {"next_action", nullptr},
    {"on_behalf_of", nullptr},
    {"payment_method", paid ? json("pm_1PgFixedCardVisa0000000") : json(nullptr)},
    {"payment_method_configuration_details", {{"id", "pmc_1PgFixedConfig000000000"}, {"parent", nullptr}}},
    {"payment_method_options",
     {{"card", {{"installments", nullptr}, {"mandate_options", nullptr}, {"network", nullptr},
                {"request_three_d_secure", "automatic"}}},
      {"link", {{"persistent_token", nullptr}}}}},
    {"payment_method_types", json::array({"card", "link"})},
    {"processing", nullptr},
    {"receipt_email", nullptr},
    {"review", nullptr},
    {"setup_future_usage", nullptr},
    {"shipping", nullptr},
    {"source", nullptr},
    {"statement_descriptor", nullptr},
    {"statement_descriptor_suffix", nullptr},
    {"status", status},
    {"transfer_data", nullptr},
    {"transfer_group", nullptr},
  };
  if (s.outcome == simulated_outcome::failed) {
    object["last_payment_error"] = {
      {"charge", "ch_" + s.intent_id.substr(std::min<size_t>(3, s.intent_id.size()))},
      {"code", "card_declined"},
      {"decline_code", s.decline_code},
      {"doc_url", "https://stripe.com/docs/error-codes/card-declined"},
      {"message", "Your card has insufficient funds."},
      {"payment_method", card_payment_method(s)},
      {"type", "card_error"},
    };
  }
  json event = {
    {"id", s.event_id},
    {"object", "event"},
    {"api_version", "2024-06-20"},
    {"created", s.created},
    {"data", {{"object", std::move(object)}}},
    {"livemode", false},
    {"pending_webhooks", 1},
    {"request", {{"id", nullptr}, {"idempotency_key", nullptr}}},
    {"type", event_type_for(s.outcome)},
  };
  return event.dump(2);
}

} // namespace billing
