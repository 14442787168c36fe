#include "net/simulated_provider.hpp"

#include "protocol/stripe_signature.hpp"

#include <caf/all.hpp>

#include <deque>
#include <memory>
#include <unordered_map>

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

// Refunds by idempotency key (invoice and discriminator), as Stripe keeps
// them: a repeat of the same request answers the same refund (replayed) and
// refunds nothing more; the same key with another request is refused. Only
// this process's memory, bounded (the oldest are forgotten first): a demo
// provider, not a ledger.
struct refund_memory {
  struct entry {
    std::optional<int64_t> amount_cents;
    std::string reason;
    refund_info answer;
  };
  static constexpr size_t capacity = 50'000;
  std::unordered_map<std::string, entry> by_key;
  std::deque<std::string> order;

  void remember(std::string key, entry e) {
    if (order.size() >= capacity) {
      by_key.erase(order.front());
      order.pop_front();
    }
    order.push_back(key);
    by_key.emplace(std::move(key), std::move(e));
  }
};

provider_actor::behavior_type simulated_provider() {
  // Owned by the behaviour, used only from its handlers (one at a time).
  auto refunds = std::make_shared<refund_memory>();
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
    // What was refunded before comes with the request; repeats are
    // answered from memory (above).
    [refunds](refund_atom, const refund_request& req) -> refund_result {
      auto key = req.invoice.str() + ":" + req.discriminator;
      if (auto it = refunds->by_key.find(key); it != refunds->by_key.end()) {
        if (it->second.amount_cents != req.amount_cents || it->second.reason != req.reason)
          return fail(billing_errc::conflict,
                      "this Idempotency-Key was used for another refund request of this invoice", "Idempotency-Key");
        auto again = it->second.answer;
        again.replayed = true;
        return again;
      }
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
      refunds->remember(std::move(key), refund_memory::entry{req.amount_cents, req.reason, r});
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
