#include "protocol/state_machine.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <vector>

using namespace billing;
using S = invoice_status;
using K = event_kind;
using O = outcome;

namespace {

constexpr unix_seconds t0 = 1'700'000'000;

invoice make_invoice(S status) {
  invoice inv;
  inv.id = invoice_id{"8a1c7f5e-0000-4000-8000-000000000001"};
  inv.amount_cents = 12'500;
  inv.currency = "usd";
  inv.status = status;
  inv.version = 3;
  inv.created_at = t0 - 100;
  inv.updated_at = t0 - 100;
  inv.expires_at = t0 + 86'400;
  inv.provider_intent_id = intent_id{"pi_1"};
  if (status == S::paid || status == S::refunded || status == S::disputed)
    inv.paid_at = t0 - 50;
  if (status != S::pending)
    inv.last_event_at = t0 - 50;
  return inv;
}

invoice_event make_event(K kind, unix_seconds created = t0) {
  invoice_event ev;
  ev.kind = kind;
  bool internal = kind == K::cancel_requested || kind == K::expired;
  if (!internal) {
    ev.id = event_id{"evt_1"};
    ev.created = created;
    ev.intent = intent_id{"pi_1"};
    ev.currency = "usd";
    if (kind != K::disputed)
      ev.amount_cents = 12'500;
  }
  if (kind == K::payment_failed) {
    ev.failure_code = "card_declined";
    ev.failure_message = "Your card was declined.";
  }
  return ev;
}

struct row {
  S from;
  K kind;
  O result;
  S to;
};

// The whole lifecycle, every status x every event kind. Keep it in the order
// of the enums so a missing row is easy to see.
const std::vector<row> lifecycle = {
  {S::pending, K::payment_succeeded, O::applied, S::paid},
  {S::pending, K::payment_failed, O::applied, S::failed},
  {S::pending, K::payment_canceled, O::applied, S::cancelled},
  {S::pending, K::refunded, O::applied, S::refunded},
  {S::pending, K::disputed, O::applied, S::disputed},
  {S::pending, K::cancel_requested, O::applied, S::cancelled},
  {S::pending, K::expired, O::applied, S::cancelled},
  {S::pending, K::informational, O::ignored_no_effect, S::pending},

  {S::paid, K::payment_succeeded, O::ignored_no_effect, S::paid},
  {S::paid, K::payment_failed, O::ignored_stale, S::paid},
  {S::paid, K::payment_canceled, O::ignored_stale, S::paid},
  {S::paid, K::refunded, O::applied, S::refunded},
  {S::paid, K::disputed, O::applied, S::disputed},
  {S::paid, K::cancel_requested, O::rejected_invalid_state, S::paid},
  {S::paid, K::expired, O::ignored_stale, S::paid},
  {S::paid, K::informational, O::ignored_no_effect, S::paid},

  {S::failed, K::payment_succeeded, O::applied, S::paid},
  {S::failed, K::payment_failed, O::applied, S::failed},
  {S::failed, K::payment_canceled, O::applied, S::cancelled},
  {S::failed, K::refunded, O::applied, S::refunded},
  {S::failed, K::disputed, O::applied, S::disputed},
  {S::failed, K::cancel_requested, O::applied, S::cancelled},
  {S::failed, K::expired, O::applied, S::cancelled},
  {S::failed, K::informational, O::ignored_no_effect, S::failed},

  {S::cancelled, K::payment_succeeded, O::applied, S::paid},
  {S::cancelled, K::payment_failed, O::ignored_stale, S::cancelled},
  {S::cancelled, K::payment_canceled, O::ignored_no_effect, S::cancelled},
  {S::cancelled, K::refunded, O::applied, S::refunded},
  {S::cancelled, K::disputed, O::applied, S::disputed},
  {S::cancelled, K::cancel_requested, O::ignored_no_effect, S::cancelled},
  {S::cancelled, K::expired, O::ignored_no_effect, S::cancelled},
  {S::cancelled, K::informational, O::ignored_no_effect, S::cancelled},

  {S::refunded, K::payment_succeeded, O::ignored_stale, S::refunded},
  {S::refunded, K::payment_failed, O::ignored_stale, S::refunded},
  {S::refunded, K::payment_canceled, O::ignored_stale, S::refunded},
  {S::refunded, K::refunded, O::ignored_no_effect, S::refunded},
  {S::refunded, K::disputed, O::applied, S::disputed},
  {S::refunded, K::cancel_requested, O::rejected_invalid_state, S::refunded},
  {S::refunded, K::expired, O::ignored_stale, S::refunded},
  {S::refunded, K::informational, O::ignored_no_effect, S::refunded},

  {S::disputed, K::payment_succeeded, O::ignored_stale, S::disputed},
  {S::disputed, K::payment_failed, O::ignored_stale, S::disputed},
  {S::disputed, K::payment_canceled, O::ignored_stale, S::disputed},
  {S::disputed, K::refunded, O::ignored_stale, S::disputed},
  {S::disputed, K::disputed, O::ignored_no_effect, S::disputed},
  {S::disputed, K::cancel_requested, O::rejected_invalid_state, S::disputed},
  {S::disputed, K::expired, O::ignored_stale, S::disputed},
  {S::disputed, K::informational, O::ignored_no_effect, S::disputed},
};

} // namespace

TEST_CASE("the lifecycle table covers every status and every event kind", "[state_machine]") {
  constexpr int statuses = 6;
  constexpr int kinds = 8;
  REQUIRE(lifecycle.size() == statuses * kinds);
  std::map<std::pair<int, int>, int> seen;
  for (auto& r : lifecycle)
    ++seen[{static_cast<int>(r.from), static_cast<int>(r.kind)}];
  CHECK(seen.size() == statuses * kinds);
}

TEST_CASE("apply follows the lifecycle table", "[state_machine]") {
  for (auto& r : lifecycle) {
    DYNAMIC_SECTION(to_string(r.from) << " + " << to_string(r.kind)) {
      auto inv = make_invoice(r.from);
      auto d = apply(inv, make_event(r.kind), t0 + 1, provider_mode::test);
      CHECK(d.result == r.result);
      CHECK(d.next.status == r.to);
      CHECK_FALSE(d.reason.empty());
      // The version is bumped by the store on write, never here.
      CHECK(d.next.version == inv.version);
      if (d.result == O::applied) {
        REQUIRE(d.signal);
        CHECK(*d.signal == *signal_for(r.to));
        CHECK(d.next.updated_at == t0 + 1);
      } else {
        CHECK_FALSE(d.signal);
        CHECK(d.next == inv); // nothing changes unless applied
      }
    }
  }
}

TEST_CASE("apply records what the event says", "[state_machine]") {
  SECTION("a failure keeps its code and message") {
    auto d = apply(make_invoice(S::pending), make_event(K::payment_failed), t0 + 1, provider_mode::test);
    CHECK(d.next.failure_code == "card_declined");
    CHECK(d.next.failure_message == "Your card was declined.");
    CHECK(d.next.last_event_at == t0);
    CHECK(d.next.provider_intent_id == intent_id{"pi_1"});
  }
  SECTION("paid_at is when the provider says it was paid") {
    auto d = apply(make_invoice(S::failed), make_event(K::payment_succeeded, t0 - 7), t0 + 1, provider_mode::test);
    CHECK(d.next.paid_at == t0 - 7);
  }
  SECTION("a refund that overtakes the payment still sets paid_at") {
    auto d = apply(make_invoice(S::pending), make_event(K::refunded), t0 + 1, provider_mode::test);
    CHECK(d.next.status == S::refunded);
    CHECK(d.next.paid_at == t0);
  }
  SECTION("an internal cancel leaves last_event_at alone") {
    auto inv = make_invoice(S::failed);
    auto d = apply(inv, make_event(K::cancel_requested), t0 + 1, provider_mode::test);
    CHECK(d.next.last_event_at == inv.last_event_at);
  }
  SECTION("last_event_at never goes backwards") {
    auto inv = make_invoice(S::failed); // last_event_at = t0 - 50
    auto d = apply(inv, make_event(K::payment_succeeded, t0 - 60), t0 + 1, provider_mode::test);
    CHECK(d.result == O::applied);
    CHECK(d.next.last_event_at == t0 - 50);
  }
}

TEST_CASE("an older failure cannot overwrite a newer one", "[state_machine]") {
  auto inv = make_invoice(S::failed); // last_event_at = t0 - 50
  inv.failure_code = "expired_card";
  auto older = make_event(K::payment_failed, t0 - 51);
  auto d = apply(inv, older, t0, provider_mode::test);
  CHECK(d.result == O::ignored_stale);
  CHECK(d.next.failure_code == "expired_card");

  // Not newer is not news: the same second as the last applied event is
  // stale too (a reconciliation's reading and the real webhook of the same
  // failure must not make two transitions).
  auto same_second = make_event(K::payment_failed, t0 - 50);
  CHECK(apply(inv, same_second, t0, provider_mode::test).result == O::ignored_stale);
  auto newer = make_event(K::payment_failed, t0 - 49);
  CHECK(apply(inv, newer, t0, provider_mode::test).result == O::applied);
}

TEST_CASE("amount and currency must match the invoice", "[state_machine]") {
  for (K kind : {K::payment_succeeded, K::payment_failed, K::payment_canceled, K::refunded}) {
    DYNAMIC_SECTION(to_string(kind)) {
      auto inv = make_invoice(S::pending);
      auto ev = make_event(kind);
      ev.amount_cents = 12'499;
      auto d = apply(inv, ev, t0, provider_mode::test);
      CHECK(d.result == O::rejected_mismatch);
      CHECK(d.next == inv);
      CHECK(d.reason.find("12499") != std::string::npos);

      ev = make_event(kind);
      ev.currency = "eur";
      d = apply(inv, ev, t0, provider_mode::test);
      CHECK(d.result == O::rejected_mismatch);
      CHECK(d.reason.find("eur") != std::string::npos);
    }
  }
  SECTION("a partial dispute carries no amount and still applies") {
    auto d = apply(make_invoice(S::paid), make_event(K::disputed), t0, provider_mode::test);
    CHECK(d.result == O::applied);
  }
  SECTION("an event without amount or currency is not a mismatch") {
    auto ev = make_event(K::payment_canceled);
    ev.amount_cents.reset();
    ev.currency.clear();
    CHECK(apply(make_invoice(S::pending), ev, t0, provider_mode::test).result == O::applied);
  }
}

TEST_CASE("a signed event must be about the invoice", "[state_machine]") {
  const std::vector<K> provider_kinds = {K::payment_succeeded, K::payment_failed, K::payment_canceled,
                                         K::refunded, K::disputed, K::informational};
  struct forgery {
    const char* name;
    std::function<void(invoice&, invoice_event&)> make;
    const char* reason; // a piece of the reason
  };
  const std::vector<forgery> forgeries = {
    {"another PaymentIntent", [](invoice&, invoice_event& ev) { ev.intent = intent_id{"pi_other"}; },
     "pi_other"},
    {"no PaymentIntent in the event", [](invoice&, invoice_event& ev) { ev.intent = intent_id{}; },
     "names no PaymentIntent"},
    {"an invoice without a PaymentIntent", [](invoice& inv, invoice_event&) { inv.provider_intent_id = intent_id{}; },
     "no PaymentIntent yet"},
    {"livemode on a test-mode billingd", [](invoice&, invoice_event& ev) { ev.livemode = true; },
     "livemode true"},
    {"another amount", [](invoice&, invoice_event& ev) { ev.amount_cents = 12'499; }, "12499"},
    {"another currency", [](invoice&, invoice_event& ev) { ev.currency = "eur"; }, "eur"},
  };
  for (auto status : {S::pending, S::paid, S::failed, S::cancelled, S::refunded, S::disputed})
    for (auto kind : provider_kinds)
      for (auto& f : forgeries) {
        if (kind == K::disputed && std::string_view{f.name} == "another amount")
          continue; // disputes carry no amount (they may be partial)
        DYNAMIC_SECTION(to_string(status) << " + " << to_string(kind) << ": " << f.name) {
          auto inv = make_invoice(status);
          auto ev = make_event(kind);
          f.make(inv, ev);
          auto d = apply(inv, ev, t0 + 1, provider_mode::test);
          CHECK(d.result == O::rejected_mismatch);
          CHECK(d.next == inv); // changes nothing
          CHECK_FALSE(d.signal);
          CHECK(d.reason.find(f.reason) != std::string::npos);
        }
      }

  SECTION("a payment must say what was paid") {
    auto ev = make_event(K::payment_succeeded);
    ev.amount_cents.reset();
    auto d = apply(make_invoice(S::pending), ev, t0, provider_mode::test);
    CHECK(d.result == O::rejected_mismatch);
    CHECK(d.reason.find("without an amount") != std::string::npos);
    ev = make_event(K::payment_succeeded);
    ev.currency.clear();
    d = apply(make_invoice(S::pending), ev, t0, provider_mode::test);
    CHECK(d.result == O::rejected_mismatch);
    CHECK(d.reason.find("without a currency") != std::string::npos);
  }
  SECTION("the mode must be the configured one, both ways") {
    auto ev = make_event(K::payment_succeeded);
    CHECK(apply(make_invoice(S::pending), ev, t0, provider_mode::live).result == O::rejected_mismatch);
    ev.livemode = true;
    CHECK(apply(make_invoice(S::pending), ev, t0, provider_mode::live).result == O::applied);
    CHECK(apply(make_invoice(S::pending), ev, t0, provider_mode::test).result == O::rejected_mismatch);
  }
  SECTION("internal commands are ours and never mismatched") {
    for (auto kind : {K::cancel_requested, K::expired}) {
      auto inv = make_invoice(S::pending);
      inv.provider_intent_id = intent_id{};
      inv.expires_at = t0;
      CHECK(apply(inv, make_event(kind), t0 + 1, provider_mode::live).result == O::applied);
    }
  }
  SECTION("event_mismatch agrees with apply") {
    auto inv = make_invoice(S::pending);
    CHECK_FALSE(event_mismatch(inv, make_event(K::payment_succeeded), provider_mode::test));
    auto ev = make_event(K::payment_succeeded);
    ev.intent = intent_id{"pi_2"};
    CHECK(event_mismatch(inv, ev, provider_mode::test));
  }
}

namespace {

// Applies a history in the given order and returns the final status and
// the number of applied transitions.
std::pair<S, int> replay(std::vector<invoice_event> events) {
  auto inv = make_invoice(S::pending);
  inv.last_event_at.reset();
  int applied = 0;
  for (auto& ev : events) {
    auto d = apply(inv, ev, t0 + 1000, provider_mode::test);
    if (d.result == O::applied) {
      ++applied;
      inv = d.next;
    }
  }
  return {inv.status, applied};
}

} // namespace

TEST_CASE("the final status does not depend on delivery order", "[state_machine]") {
  // Histories a real payment can have, with increasing `created`.
  std::vector<std::pair<std::vector<K>, S>> histories = {
    {{K::payment_succeeded}, S::paid},
    {{K::payment_failed}, S::failed},
    {{K::payment_canceled}, S::cancelled},
    {{K::payment_failed, K::payment_succeeded}, S::paid},
    {{K::payment_failed, K::payment_failed, K::payment_succeeded}, S::paid},
    {{K::payment_failed, K::payment_failed, K::payment_canceled}, S::cancelled},
    {{K::payment_failed, K::payment_failed}, S::failed},
    {{K::payment_succeeded, K::refunded}, S::refunded},
    {{K::payment_succeeded, K::disputed}, S::disputed},
    {{K::payment_failed, K::payment_succeeded, K::refunded, K::disputed}, S::disputed},
    {{K::informational, K::payment_succeeded}, S::paid},
  };
  for (auto& [kinds, expected] : histories) {
    std::vector<invoice_event> events;
    for (size_t i = 0; i < kinds.size(); ++i) {
      auto ev = make_event(kinds[i], t0 + static_cast<unix_seconds>(i));
      ev.id = event_id{"evt_" + std::to_string(i)};
      events.push_back(ev);
    }
    std::vector<size_t> order(events.size());
    for (size_t i = 0; i < order.size(); ++i)
      order[i] = i;
    int permutations = 0;
    do {
      std::vector<invoice_event> shuffled;
      for (auto i : order)
        shuffled.push_back(events[i]);
      auto [status, applied] = replay(shuffled);
      INFO("history of " << kinds.size() << " events, permutation " << permutations);
      CHECK(status == expected);
      CHECK(applied >= 1);
      ++permutations;
    } while (std::next_permutation(order.begin(), order.end()));
  }
}

TEST_CASE("names round-trip", "[state_machine]") {
  for (int i = 0; i < 6; ++i) {
    auto s = static_cast<S>(i);
    CHECK(parse_invoice_status(to_string(s)) == s);
  }
  CHECK_FALSE(parse_invoice_status("paid"));
  for (int i = 0; i < 7; ++i) {
    auto o = static_cast<O>(i);
    CHECK(parse_outcome(to_string(o)) == o);
  }
  CHECK(to_string(O::ignored_unknown_invoice) == "ignored-unknown-invoice");
  CHECK(default_signal_name(signal_kind::payment_confirmed) == "PaymentConfirmed");
  CHECK_FALSE(signal_for(S::pending));
}
