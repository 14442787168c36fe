// protocol/reconcile: what a PaymentIntent or a Checkout Session as the
// provider holds it now means for an invoice. Every status the provider can
// answer, for each invoice status that changes the answer.
#include "protocol/reconcile.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace billing;
using S = invoice_status;
using K = event_kind;

namespace {
constexpr unix_seconds now = 1'700'000'000;

intent_info intent(const char* status, const char* code = "") {
  return intent_info{intent_id{"pi_7"}, "pi_7_secret_x", status, 2'500, "eur", true, code, *code ? "Declined." : ""};
}
} // namespace

TEST_CASE("intent_reading: the intent's status as an event", "[reconcile]") {
  struct row {
    const char* status;
    const char* code;
    S invoice;
    std::optional<K> want;
  };
  const std::vector<row> rows = {
    {"succeeded", "", S::pending, K::payment_succeeded},
    {"succeeded", "", S::failed, K::payment_succeeded},
    {"succeeded", "", S::cancelled, K::payment_succeeded}, // money taken in a race: follow Stripe
    {"canceled", "", S::pending, K::payment_canceled},
    {"canceled", "", S::failed, K::payment_canceled},
    {"requires_payment_method", "card_declined", S::pending, K::payment_failed},
    {"requires_payment_method", "card_declined", S::failed, std::nullopt}, // already recorded
    {"requires_payment_method", "", S::pending, std::nullopt},             // waiting for the customer
    {"requires_confirmation", "", S::pending, std::nullopt},
    {"requires_action", "", S::pending, std::nullopt},
    {"processing", "", S::pending, std::nullopt}, // in flight: never cancel, never guess
    {"requires_capture", "", S::pending, std::nullopt},
  };
  for (const auto& r : rows) {
    DYNAMIC_SECTION(r.status << " (" << r.code << ") on " << to_string(r.invoice)) {
      auto got = intent_reading(intent(r.status, r.code), r.invoice, now);
      REQUIRE(got.has_value() == r.want.has_value());
      if (!got)
        continue;
      const auto& ev = got->ev;
      CHECK(ev.kind == *r.want);
      CHECK(ev.reconciled);
      CHECK(ev.created == now);
      CHECK(ev.intent == intent_id{"pi_7"});
      CHECK(ev.currency == "eur");
      CHECK(ev.livemode); // the provider's mode, not a guess
      CHECK(ev.session.empty());
      CHECK(ev.id.str().starts_with("billingd-reconcile:pi_7:"));
      CHECK_FALSE(ev.id.str().starts_with("evt_"));
      CHECK(got->type.starts_with("billingd.reconcile.payment_intent."));
      if (ev.kind == K::payment_succeeded)
        CHECK(ev.amount_cents == 2'500);
      if (ev.kind == K::payment_failed) {
        CHECK(ev.failure_code == "card_declined");
        CHECK(ev.failure_message == "Declined.");
      }
    }
  }
  SECTION("the same state read twice gives the same id (replicas dedupe)") {
    CHECK(intent_reading(intent("succeeded"), S::pending, now)->ev.id
          == intent_reading(intent("succeeded"), S::failed, now + 60)->ev.id);
    CHECK(intent_reading(intent("requires_payment_method", "card_declined"), S::pending, now)->ev.id
          != intent_reading(intent("requires_payment_method", "expired_card"), S::pending, now)->ev.id);
  }
  SECTION("a provider that does not say the amount leaves it for the caller") {
    auto pi = intent("succeeded");
    pi.amount_cents = 0;
    CHECK_FALSE(intent_reading(pi, S::pending, now)->ev.amount_cents);
  }
  SECTION("no intent, no reading") {
    auto pi = intent("succeeded");
    pi.id = intent_id{};
    CHECK_FALSE(intent_reading(pi, S::pending, now));
  }
}

TEST_CASE("session_reading: the session's status as an event", "[reconcile]") {
  struct row {
    const char* status;
    const char* payment_status;
    std::optional<K> want;
  };
  const std::vector<row> rows = {
    {"complete", "paid", K::payment_succeeded},
    {"complete", "no_payment_required", K::payment_succeeded},
    {"complete", "unpaid", std::nullopt}, // an asynchronous payment in flight
    {"open", "unpaid", std::nullopt},
    {"expired", "unpaid", K::payment_canceled},
  };
  for (const auto& r : rows) {
    DYNAMIC_SECTION(r.status << "/" << r.payment_status) {
      session_info s{session_id{"cs_3"}, "", r.status, r.payment_status, intent_id{"pi_3"}, 2'500, "eur", false, 0};
      auto got = session_reading(s, now);
      REQUIRE(got.has_value() == r.want.has_value());
      if (!got)
        continue;
      CHECK(got->ev.kind == *r.want);
      CHECK(got->ev.session == session_id{"cs_3"});
      CHECK(got->ev.intent == intent_id{"pi_3"});
      CHECK(got->ev.reconciled);
      CHECK(got->ev.id.str().starts_with("billingd-reconcile:cs_3:"));
      CHECK(got->type.starts_with("billingd.reconcile.checkout.session."));
      if (*r.want == K::payment_succeeded)
        CHECK(got->ev.amount_cents == 2'500);
    }
  }
}
