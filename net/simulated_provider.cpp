#include "net/simulated_provider.hpp"

#include "protocol/stripe_signature.hpp"

#include <caf/all.hpp>

namespace billing {

namespace {

constexpr std::string_view derivation_key = "billingd-simulated-provider";

std::string derived(std::string_view prefix, const std::string& what) {
  return std::string{prefix} + hmac_sha256_hex(derivation_key, what).substr(0, 24);
}

intent_info intent_of(intent_id id, std::string secret, std::string status, int64_t amount, std::string currency) {
  intent_info i;
  i.id = std::move(id);
  i.client_secret = std::move(secret);
  i.status = std::move(status);
  i.amount_cents = amount;
  i.currency = std::move(currency);
  return i;
}

provider_actor::behavior_type simulated_provider() {
  return {
    [](create_atom, const intent_request& req) -> intent_result {
      auto id = derived("pi_sim_", "intent:" + req.invoice.str());
      auto secret = id + "_secret_" + hmac_sha256_hex(derivation_key, "secret:" + req.invoice.str()).substr(0, 24);
      return intent_of(intent_id{std::move(id)}, std::move(secret), "requires_payment_method", req.amount_cents,
                       req.currency);
    },
    // Stateless: it cannot know what the simulator did to the intent since,
    // nor its amount; payments reach billingd only as webhooks.
    [](get_atom, const intent_id& id) -> intent_result {
      return intent_of(id, {}, "requires_payment_method", 0, {});
    },
    [](cancel_atom, const intent_id& id, const invoice_id&) -> intent_result {
      return intent_of(id, {}, "canceled", 0, {});
    },
    [](create_atom, const checkout_request& req) -> session_result {
      session_info s;
      s.id = session_id{derived("cs_sim_", "session:" + req.invoice.str())};
      s.url = "https://checkout.simulated.invalid/pay/" + s.id.str();
      s.status = "open";
      s.payment_status = "unpaid";
      s.amount_cents = req.amount_cents;
      s.currency = req.currency;
      s.expires_at = req.expires_at;
      return s;
    },
    [](get_atom, const session_id& id) -> session_result {
      session_info s;
      s.id = id;
      s.status = "open";
      s.payment_status = "unpaid";
      return s;
    },
    [](expire_atom, const session_id& id, const invoice_id&) -> session_result {
      session_info s;
      s.id = id;
      s.status = "expired";
      s.payment_status = "unpaid";
      return s;
    },
    // Stateless too: what was refunded before comes with the request.
    [](refund_atom, const refund_request& req) -> refund_result {
      const int64_t left = req.invoice_amount_cents - req.refunded_before;
      const int64_t amount = req.amount_cents.value_or(left);
      if (amount < 1 || amount > left)
        return fail(billing_errc::invalid_argument,
                    "Refund amount (" + std::to_string(amount) + ") is greater than unrefunded amount on charge ("
                      + std::to_string(left) + ")",
                    "amount");
      refund_info r;
      r.id = derived("re_sim_", "refund:" + req.invoice.str() + ":" + req.discriminator);
      r.status = "succeeded";
      r.amount_cents = amount;
      r.charge_amount_cents = req.invoice_amount_cents;
      r.charge_refunded_cents = req.refunded_before + amount;
      r.reason = req.reason;
      return r;
    },
    [](list_atom, const event_listing&) -> event_page_result { return event_listing_page{}; },
  };
}

} // namespace

provider_actor spawn_simulated_provider(caf::actor_system& sys) {
  return sys.spawn(simulated_provider);
}

} // namespace billing
