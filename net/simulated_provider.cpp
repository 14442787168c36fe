#include "net/simulated_provider.hpp"

#include "protocol/stripe_signature.hpp"

#include <caf/all.hpp>

namespace billing {

namespace {

constexpr std::string_view derivation_key = "billingd-simulated-provider";

provider_actor::behavior_type simulated_provider() {
  return {
    [](create_atom, const intent_request& req) -> intent_result {
      auto id = "pi_sim_" + hmac_sha256_hex(derivation_key, "intent:" + req.invoice.str()).substr(0, 24);
      auto secret = id + "_secret_"
                    + hmac_sha256_hex(derivation_key, "secret:" + req.invoice.str()).substr(0, 24);
      return intent_info{intent_id{std::move(id)}, std::move(secret), "requires_payment_method", req.amount_cents,
                         req.currency, false};
    },
    // Stateless: it cannot know what the simulator did to the intent since,
    // nor its amount; payments reach billingd only as webhooks.
    [](get_atom, const intent_id& id) -> intent_result {
      return intent_info{id, {}, "requires_payment_method", 0, {}, false};
    },
    [](cancel_atom, const intent_id& id, const invoice_id&) -> intent_result {
      return intent_info{id, {}, "canceled", 0, {}, false};
    },
  };
}

} // namespace

provider_actor spawn_simulated_provider(caf::actor_system& sys) {
  return sys.spawn(simulated_provider);
}

} // namespace billing
