// protocol/refunds: which invoices may be refunded and for how much, what
// the provider's answer means, how its refusal is answered. Every invoice
// status, with and without the caller's key.
#include "protocol/refunds.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace billing;
using S = invoice_status;

namespace {
constexpr unix_seconds now = 1'700'000'000;

invoice inv(S status, int64_t refunded = 0) {
  invoice i;
  i.id = invoice_id{"5b3c9a52-0000-4000-8000-00000000abcd"};
  i.amount_cents = 5'000;
  i.currency = "eur";
  i.status = status;
  i.version = 7;
  i.provider_intent_id = intent_id{"pi_1"};
  i.refunded_cents = refunded;
  return i;
}

refund_invoice_request req(std::optional<int64_t> amount = std::nullopt, std::string key = "") {
  refund_invoice_request r;
  r.amount_cents = amount;
  r.reason = "requested_by_customer";
  r.idempotency_key = std::move(key);
  return r;
}
} // namespace

TEST_CASE("plan_refund: who may be refunded, with and without the caller's key", "[refunds]") {
  struct row {
    S status;
    bool key;
    bool planned;
  };
  const std::vector<row> rows = {
    {S::paid, false, true},       {S::paid, true, true},
    {S::refunded, false, false},  {S::refunded, true, true}, // may be a repeat: the provider answers it
    {S::disputed, false, false},  {S::disputed, true, true},
    {S::pending, false, false},   {S::pending, true, false},
    {S::failed, false, false},    {S::failed, true, false},
    {S::cancelled, false, false}, {S::cancelled, true, false},
  };
  for (const auto& r : rows) {
    CAPTURE(to_string(r.status), r.key);
    auto p = plan_refund(inv(r.status), req(std::nullopt, r.key ? "order-42" : ""));
    REQUIRE(ok(p) == r.planned);
    if (!r.planned) {
      CHECK(std::get<failure>(p).code == billing_errc::invalid_state);
      CHECK(std::get<failure>(p).message.find(to_string(r.status)) != std::string::npos);
    }
  }
  auto no_payment = inv(S::paid);
  no_payment.provider_intent_id = intent_id{};
  CHECK(std::get<failure>(plan_refund(no_payment, req())).code == billing_errc::invalid_state);
}

TEST_CASE("plan_refund: the amount, what is left, the provider's request", "[refunds]") {
  auto p = plan_refund(inv(S::paid, 2'000), req(3'000));
  REQUIRE(ok(p));
  auto& rr = std::get<refund_request>(p);
  CHECK(rr.invoice.str() == "5b3c9a52-0000-4000-8000-00000000abcd");
  CHECK(rr.intent.str() == "pi_1");
  CHECK(rr.amount_cents == 3'000);
  CHECK(rr.reason == "requested_by_customer");
  CHECK(rr.discriminator == "v7");
  CHECK(rr.invoice_amount_cents == 5'000);
  CHECK(rr.refunded_before == 2'000);

  auto over = plan_refund(inv(S::paid, 2'000), req(3'001));
  REQUIRE_FALSE(ok(over));
  CHECK(std::get<failure>(over).code == billing_errc::invalid_argument);
  CHECK(std::get<failure>(over).field == "amount_cents");
  CHECK(std::get<failure>(over).message.find("(3000)") != std::string::npos);

  CHECK_FALSE(std::get<refund_request>(plan_refund(inv(S::paid), req())).amount_cents); // all that is left
  CHECK(std::get<refund_request>(plan_refund(inv(S::paid), req(1, "order-42"))).discriminator == "k:order-42");
  // Past PAID the provider decides what is left (a repeat names its own amount).
  CHECK(ok(plan_refund(inv(S::refunded, 5'000), req(100, "order-42"))));
}

TEST_CASE("read_refund: the charge's total, and whether the caller sees a new refund", "[refunds]") {
  refund_info info;
  info.id = "re_1";
  info.status = "succeeded";
  info.amount_cents = 1'000;
  info.currency = "eur";
  info.charge_amount_cents = 5'000;
  info.charge_refunded_cents = 3'000;
  info.livemode = true;

  auto r = read_refund(inv(S::paid, 2'000), info, provider_mode::test, now);
  CHECK(r.ev.kind == event_kind::refunded);
  CHECK(r.ev.reconciled);
  CHECK(r.ev.created == now);
  CHECK(r.ev.intent.str() == "pi_1");
  CHECK(r.ev.amount_cents == 5'000);
  CHECK(r.ev.refunded_cents == 3'000);
  CHECK(r.ev.currency == "eur");
  CHECK(r.ev.livemode); // the charge's mode, which apply() compares with ours
  CHECK(r.fresh);

  // The client's own retry after a lost answer is replayed, yet new to the caller.
  info.replayed = true;
  CHECK(read_refund(inv(S::paid, 2'000), info, provider_mode::test, now).fresh);
  // The caller's repeat: the total is what the invoice records.
  CHECK_FALSE(read_refund(inv(S::paid, 3'000), info, provider_mode::test, now).fresh);
  CHECK_FALSE(read_refund(inv(S::refunded, 5'000), info, provider_mode::test, now).fresh);

  // A provider that does not say the charge: the invoice's values, ours the mode, replayed decides.
  refund_info bare;
  bare.id = "re_sim_1";
  bare.amount_cents = 1'000;
  auto b = read_refund(inv(S::paid, 2'000), bare, provider_mode::live, now);
  CHECK(b.ev.amount_cents == 5'000);
  CHECK(b.ev.refunded_cents == 3'000);
  CHECK(b.ev.currency == "eur");
  CHECK(b.ev.livemode);
  CHECK(b.fresh);
  bare.replayed = true;
  CHECK_FALSE(read_refund(inv(S::paid, 2'000), bare, provider_mode::test, now).fresh);
}

TEST_CASE("refund_refusal: past PAID a refusal is the invoice's state", "[refunds]") {
  auto bad = fail(billing_errc::invalid_argument, "Charge ch_1 has already been refunded.", "amount");
  auto on_refunded = refund_refusal(inv(S::refunded, 5'000), bad);
  CHECK(on_refunded.code == billing_errc::invalid_state);
  CHECK(on_refunded.message.find("REFUNDED") != std::string::npos);
  CHECK(refund_refusal(inv(S::disputed), bad).code == billing_errc::invalid_state);
  // On PAID the provider's words stand (an amount Stripe refuses is the caller's 400).
  auto on_paid = refund_refusal(inv(S::paid), bad);
  CHECK(on_paid.code == billing_errc::invalid_argument);
  CHECK(on_paid.field == "amount");
  // A conflict, an outage, a refused key stay what they are.
  for (auto code : {billing_errc::conflict, billing_errc::unavailable, billing_errc::internal, billing_errc::timeout})
    CHECK(refund_refusal(inv(S::refunded, 5'000), fail(code, "x")).code == code);
}
