// The state machine's rules for what the real Stripe issue added: partial
// and full refunds (absolute totals), Checkout invoices (matched by their
// session; their intent learned from the events), readings of the
// provider's state (reconciled events), postponed expiry. Tables, every
// status where the rule depends on it.
#include "protocol/reconcile.hpp"
#include "protocol/state_machine.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace billing;
using S = invoice_status;
using K = event_kind;
using O = outcome;

namespace {

constexpr unix_seconds t0 = 1'700'000'000;
const std::vector<S> all_statuses = {S::pending, S::paid, S::failed, S::cancelled, S::refunded, S::disputed};

invoice make_invoice(S status, invoice_mode mode = invoice_mode::payment_intent) {
  invoice inv;
  inv.id = invoice_id{"8a1c7f5e-0000-4000-8000-000000000001"};
  inv.amount_cents = 10'000;
  inv.currency = "usd";
  inv.status = status;
  inv.version = 3;
  inv.mode = mode;
  inv.created_at = t0 - 100;
  inv.updated_at = t0 - 100;
  inv.expires_at = t0 + 3'600;
  if (mode == invoice_mode::payment_intent)
    inv.provider_intent_id = intent_id{"pi_1"};
  else
    inv.provider_session_id = session_id{"cs_1"};
  if (status == S::paid || status == S::refunded || status == S::disputed)
    inv.paid_at = t0 - 50;
  if (status == S::refunded)
    inv.refunded_cents = inv.amount_cents;
  if (status != S::pending)
    inv.last_event_at = t0 - 50;
  return inv;
}

invoice_event refund_event(std::optional<int64_t> total, unix_seconds created = t0) {
  invoice_event ev;
  ev.kind = K::refunded;
  ev.id = event_id{"evt_r"};
  ev.created = created;
  ev.intent = intent_id{"pi_1"};
  ev.amount_cents = 10'000;
  ev.currency = "usd";
  ev.refunded_cents = total;
  return ev;
}

} // namespace

TEST_CASE("refunds are absolute totals: partial stays PAID, the whole amount is REFUNDED", "[state_machine][refund]") {
  struct row {
    S from;
    int64_t recorded; // refunded_cents before
    std::optional<int64_t> total;
    O result;
    S to;
    int64_t refunded; // after
  };
  const std::vector<row> rows = {
    {S::paid, 0, 3'000, O::applied, S::paid, 3'000},
    {S::paid, 3'000, 5'000, O::applied, S::paid, 5'000},
    {S::paid, 5'000, 3'000, O::ignored_no_effect, S::paid, 5'000},  // an older total arriving late
    {S::paid, 5'000, 5'000, O::ignored_no_effect, S::paid, 5'000},  // a repeat
    {S::paid, 5'000, 10'000, O::applied, S::refunded, 10'000},
    {S::paid, 0, std::nullopt, O::applied, S::refunded, 10'000},   // no total: all of it
    {S::pending, 0, 3'000, O::applied, S::paid, 3'000},            // a refund implies the payment
    {S::failed, 0, 3'000, O::applied, S::paid, 3'000},
    {S::cancelled, 0, 3'000, O::applied, S::paid, 3'000},          // money was taken after all
    {S::pending, 0, 10'000, O::applied, S::refunded, 10'000},
    {S::cancelled, 0, 10'000, O::applied, S::refunded, 10'000},
    {S::refunded, 10'000, 3'000, O::ignored_no_effect, S::refunded, 10'000},
    {S::refunded, 10'000, 10'000, O::ignored_no_effect, S::refunded, 10'000},
    {S::disputed, 0, 3'000, O::ignored_stale, S::disputed, 0},
    {S::disputed, 0, 10'000, O::ignored_stale, S::disputed, 0},
  };
  for (const auto& r : rows) {
    DYNAMIC_SECTION(to_string(r.from) << " with " << r.recorded << " refunded + total "
                                      << (r.total ? std::to_string(*r.total) : "none")) {
      auto inv = make_invoice(r.from);
      inv.refunded_cents = r.recorded;
      auto d = apply(inv, refund_event(r.total), t0 + 1, provider_mode::test);
      CHECK(d.result == r.result);
      CHECK(d.next.status == r.to);
      CHECK(d.next.refunded_cents == r.refunded);
      if (d.result == O::applied) {
        // Partial or full, each refund is news: PaymentRefunded.
        REQUIRE(d.signal);
        CHECK(*d.signal == signal_kind::payment_refunded);
        CHECK(d.next.paid_at);
        CHECK(d.reason.find("refunded " + std::to_string(r.refunded)) != std::string::npos);
      } else {
        CHECK_FALSE(d.signal);
        CHECK(d.next == inv);
      }
    }
  }
  SECTION("a total above the invoice amount is not about this invoice") {
    auto d = apply(make_invoice(S::paid), refund_event(10'001), t0 + 1, provider_mode::test);
    CHECK(d.result == O::rejected_mismatch);
    CHECK(d.reason.find("10001") != std::string::npos);
  }
  SECTION("partial refunds in any order end at the largest total, one transition per new total") {
    std::vector<int64_t> totals = {2'000, 5'000, 10'000};
    std::sort(totals.begin(), totals.end());
    do {
      auto inv = make_invoice(S::paid);
      int applied = 0;
      for (auto t : totals) {
        auto d = apply(inv, refund_event(t), t0 + 1, provider_mode::test);
        if (d.result == O::applied) {
          ++applied;
          inv = d.next;
        }
      }
      CHECK(inv.status == S::refunded);
      CHECK(inv.refunded_cents == 10'000);
      CHECK(applied >= 1);
      CHECK(applied <= 3);
    } while (std::next_permutation(totals.begin(), totals.end()));
  }
}

TEST_CASE("a Checkout invoice is matched by its session and learns its intent", "[state_machine][checkout]") {
  auto session_event = [](K kind, const char* session, const char* intent) {
    invoice_event ev;
    ev.kind = kind;
    ev.id = event_id{"evt_cs"};
    ev.created = t0;
    ev.session = session_id{session};
    ev.intent = intent_id{intent};
    ev.amount_cents = 10'000;
    ev.currency = "usd";
    ev.metadata_invoice = "8a1c7f5e-0000-4000-8000-000000000001";
    return ev;
  };
  auto intent_event = [](K kind, const char* intent, const char* metadata) {
    invoice_event ev;
    ev.kind = kind;
    ev.id = event_id{"evt_pi"};
    ev.created = t0;
    ev.intent = intent_id{intent};
    ev.amount_cents = 10'000;
    ev.currency = "usd";
    ev.metadata_invoice = metadata;
    return ev;
  };
  const char* ours = "8a1c7f5e-0000-4000-8000-000000000001";
  struct row {
    const char* name;
    invoice_mode mode;
    const char* invoice_intent; // "" : not learned yet
    invoice_event ev;
    O result;
    const char* learned; // provider_intent_id afterwards
  };
  const std::vector<row> rows = {
    {"session completed (paid) names the session and its new intent", invoice_mode::checkout, "",
     session_event(K::payment_succeeded, "cs_1", "pi_9"), O::applied, "pi_9"},
    {"session expired names no intent", invoice_mode::checkout, "",
     session_event(K::payment_canceled, "cs_1", ""), O::applied, ""},
    {"another session", invoice_mode::checkout, "", session_event(K::payment_succeeded, "cs_2", "pi_9"),
     O::rejected_mismatch, ""},
    {"the session names another intent than the learned one", invoice_mode::checkout, "pi_9",
     session_event(K::payment_succeeded, "cs_1", "pi_8"), O::rejected_mismatch, "pi_9"},
    {"the session names the learned intent", invoice_mode::checkout, "pi_9",
     session_event(K::payment_succeeded, "cs_1", "pi_9"), O::applied, "pi_9"},
    {"an intent whose metadata names the invoice, before the session said", invoice_mode::checkout, "",
     intent_event(K::payment_succeeded, "pi_9", ours), O::applied, "pi_9"},
    {"an intent whose metadata names the invoice fails", invoice_mode::checkout, "",
     intent_event(K::payment_failed, "pi_9", ours), O::applied, "pi_9"},
    {"an intent with another invoice's metadata", invoice_mode::checkout, "",
     intent_event(K::payment_succeeded, "pi_9", "8a1c7f5e-0000-4000-8000-000000000002"), O::rejected_mismatch, ""},
    {"an intent without metadata", invoice_mode::checkout, "", intent_event(K::payment_succeeded, "pi_9", ""),
     O::rejected_mismatch, ""},
    {"once learned, only that intent", invoice_mode::checkout, "pi_9",
     intent_event(K::payment_succeeded, "pi_8", ours), O::rejected_mismatch, "pi_9"},
    {"once learned, that intent", invoice_mode::checkout, "pi_9", intent_event(K::payment_succeeded, "pi_9", ""),
     O::applied, "pi_9"},
    {"a session event for a PaymentIntent invoice", invoice_mode::payment_intent, "pi_1",
     session_event(K::payment_succeeded, "cs_1", "pi_1"), O::rejected_mismatch, "pi_1"},
    {"metadata does not stand in for the intent of a PaymentIntent invoice", invoice_mode::payment_intent, "pi_1",
     intent_event(K::payment_succeeded, "pi_9", ours), O::rejected_mismatch, "pi_1"},
  };
  for (const auto& r : rows) {
    DYNAMIC_SECTION(r.name) {
      auto inv = make_invoice(S::pending, r.mode);
      inv.provider_intent_id = intent_id{r.invoice_intent};
      auto d = apply(inv, r.ev, t0 + 1, provider_mode::test);
      CHECK(d.result == r.result);
      CHECK(d.next.provider_intent_id.str() == r.learned);
      if (d.result == O::rejected_mismatch)
        CHECK(d.next == inv);
    }
  }
  SECTION("amounts still count: a session paying another amount is not ours") {
    auto ev = session_event(K::payment_succeeded, "cs_1", "pi_9");
    ev.amount_cents = 9'999;
    CHECK(apply(make_invoice(S::pending, invoice_mode::checkout), ev, t0, provider_mode::test).result
          == O::rejected_mismatch);
  }
  SECTION("every status: a foreign session is a mismatch, our own one follows the lifecycle") {
    for (auto status : all_statuses) {
      auto inv = make_invoice(status, invoice_mode::checkout);
      CHECK(apply(inv, session_event(K::payment_succeeded, "cs_x", ""), t0, provider_mode::test).result
            == O::rejected_mismatch);
      auto d = apply(inv, session_event(K::payment_canceled, "cs_1", ""), t0, provider_mode::test);
      CHECK(d.result != O::rejected_mismatch);
    }
  }
}

TEST_CASE("readings of the provider's state never make a second transition", "[state_machine][reconcile]") {
  SECTION("a reconciled failure on FAILED is no news") {
    auto inv = make_invoice(S::failed);
    inv.failure_code = "card_declined";
    intent_info pi{intent_id{"pi_1"}, {}, "requires_payment_method", 10'000, "usd", false, "card_declined", "no"};
    // The reader does not turn a FAILED invoice's failure into an event...
    CHECK_FALSE(intent_reading(pi, S::failed, t0 + 10));
    // ...and if one raced in, the state machine ignores it.
    auto r = intent_reading(pi, S::pending, t0 + 10);
    REQUIRE(r);
    CHECK(apply(inv, r->ev, t0 + 10, provider_mode::test).result == O::ignored_no_effect);
  }
  struct row {
    const char* name;
    intent_info pi;
    K webhook; // the real event of the same fact, arriving after the reading
    S after;
  };
  const std::vector<row> rows = {
    {"succeeded", {intent_id{"pi_1"}, {}, "succeeded", 10'000, "usd", false, "", ""}, K::payment_succeeded, S::paid},
    {"canceled", {intent_id{"pi_1"}, {}, "canceled", 10'000, "usd", false, "", ""}, K::payment_canceled, S::cancelled},
    {"failed", {intent_id{"pi_1"}, {}, "requires_payment_method", 10'000, "usd", false, "card_declined", "Declined."},
     K::payment_failed, S::failed},
  };
  for (const auto& r : rows) {
    DYNAMIC_SECTION("reading " << r.name << ", then the real webhook (same second or earlier)") {
      for (unix_seconds webhook_created : {t0 + 10, t0 + 5}) {
        auto inv = make_invoice(S::pending);
        auto reading = intent_reading(r.pi, S::pending, t0 + 10);
        REQUIRE(reading);
        CHECK(reading->ev.reconciled);
        CHECK(reading->ev.id.str().starts_with("billingd-reconcile:pi_1:"));
        auto first = apply(inv, reading->ev, t0 + 10, provider_mode::test);
        REQUIRE(first.result == O::applied);
        CHECK(first.next.status == r.after);
        invoice_event late;
        late.kind = r.webhook;
        late.id = event_id{"evt_real"};
        late.created = webhook_created;
        late.intent = intent_id{"pi_1"};
        late.amount_cents = 10'000;
        late.currency = "usd";
        late.failure_code = "card_declined";
        auto second = apply(first.next, late, t0 + 20, provider_mode::test);
        CHECK(second.result != O::applied);
        CHECK((second.result == O::ignored_no_effect || second.result == O::ignored_stale));
      }
    }
  }
}

TEST_CASE("postponed expiry doubles its wait up to a cap and leaves the rest alone", "[state_machine][expiry]") {
  auto inv = make_invoice(S::pending);
  inv.expires_at = t0;
  std::vector<int64_t> waits;
  for (int i = 0; i < 8; ++i) {
    auto n = postpone_expiry(inv, t0 + 1'000 * i, 60, 900);
    waits.push_back(n.expires_at - (t0 + 1'000 * i));
    CHECK(n.expiry_retries == inv.expiry_retries + 1);
    CHECK(n.status == inv.status);
    CHECK(n.version == inv.version);
    CHECK(n.updated_at == t0 + 1'000 * i);
    inv = n;
  }
  CHECK(waits == std::vector<int64_t>{60, 120, 240, 480, 900, 900, 900, 900});
  inv.expiry_retries = 1'000; // no overflow however often
  CHECK(postpone_expiry(inv, t0, 60, 900).expires_at == t0 + 900);
}
