#include "net/simulator.hpp"

#include "protocol/json_codec.hpp"
#include "protocol/stripe_event_builder.hpp"
#include "protocol/stripe_signature.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace billing::net {

using json = nlohmann::json;

payment_simulator::payment_simulator(billing_api& api, http_client& client,
                                     std::function<std::string()> webhook_url,
                                     std::string webhook_secret,
                                     std::function<unix_seconds()> clock)
  : api_(api), client_(client), webhook_url_(std::move(webhook_url)),
    webhook_secret_(std::move(webhook_secret)), clock_(std::move(clock)) {}

void payment_simulator::pay(invoice_id id, std::string_view body,
                            callback<result<std::string>> done) {
  auto parsed = parse_json_strict(body); // the API's rules: a repeated "outcome" is refused
  if (!ok(parsed))
    return done(std::get<failure>(std::move(parsed)));
  const auto& doc = std::get<json>(parsed);
  if (!doc.is_object())
    return done(fail(billing_errc::invalid_argument, "the body must be a JSON object", ""));
  auto it = doc.find("outcome");
  if (it == doc.end() || !it->is_string())
    return done(fail(billing_errc::invalid_argument,
                     "outcome is required: \"succeeded\", \"failed\" or \"canceled\"", "outcome"));
  auto outcome = parse_simulated_outcome(it->get<std::string>());
  if (!outcome)
    return done(fail(billing_errc::invalid_argument,
                     "outcome must be \"succeeded\", \"failed\" or \"canceled\"", "outcome"));

  api_.get_invoice(id, [this, outcome = *outcome, done](invoice_result r) {
    if (!ok(r))
      return done(std::get<failure>(r));
    auto& inv = std::get<invoice_view>(r).inv;
    if (inv.provider_intent_id.empty())
      return done(fail(billing_errc::invalid_state, "the invoice has no payment intent yet"));
    intent_event_spec spec;
    spec.event_id = random_stripe_id("evt_sim_");
    spec.outcome = outcome;
    spec.created = clock_();
    spec.intent_id = inv.provider_intent_id.str();
    spec.amount_cents = inv.amount_cents;
    spec.currency = inv.currency;
    spec.invoice_id = inv.id.str();
    spec.workflow_id = inv.workflow_id;
    spec.shipment_id = inv.shipment_id;
    auto event = build_payment_intent_event(spec);
    auto signature = sign_stripe_payload(event, webhook_secret_, spec.created);
    header_list headers{{"Content-Type", "application/json"}, {"Stripe-Signature", signature}};
    auto type = std::string{event_type_for(outcome)};
    client_.post(webhook_url_(), std::move(event), std::move(headers), std::chrono::seconds(15),
                 [done, type, event_id = spec.event_id, invoice = inv.id](client_result res) {
                   if (!res.ok()) {
                     spdlog::warn("simulator: webhook delivery failed: {}", res.error);
                     return done(fail(billing_errc::unavailable,
                                      "could not deliver the webhook: " + res.error));
                   }
                   json answer = {{"invoice_id", invoice.str()},
                                  {"event_id", event_id},
                                  {"event_type", type},
                                  {"webhook_status", res.status}};
                   auto reply = json::parse(res.body, nullptr, false);
                   if (!reply.is_discarded())
                     answer["webhook_response"] = std::move(reply);
                   done(answer.dump());
                 });
  });
}

} // namespace billing::net
