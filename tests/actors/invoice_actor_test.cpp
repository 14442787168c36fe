// The actor tier: a real actor system, the real registry and invoice
// actors, the simulated provider, and an in-memory store.

#include "actors/sweeper.hpp"
#include "actor_fixture.hpp"

#include <catch2/catch.hpp>

#include <future>
#include <thread>

using namespace billing;
using namespace billing::test;
using namespace std::chrono_literals;

TEST_CASE("create is idempotent on (workflow_id, shipment_id)", "[actors]") {
  fixture f;
  auto first = f.create(request());
  REQUIRE(ok(first));
  auto& v = std::get<invoice_view>(first);
  CHECK(v.created);
  CHECK(v.inv.status == invoice_status::pending);
  CHECK(v.inv.id == derive_invoice_id("wf_1", "shp_1"));
  CHECK(v.inv.provider_intent_id.str().starts_with("pi_sim_"));
  CHECK(v.client_secret.starts_with(v.inv.provider_intent_id.str() + "_secret_"));
  // The database holds the secret only sealed.
  {
    std::lock_guard lock{f.db->mtx};
    auto& stored = f.db->invoices.at(v.inv.id.str());
    CHECK_FALSE(stored.sealed_client_secret.empty());
    CHECK(stored.sealed_client_secret.find(v.client_secret) == std::string::npos);
  }

  {
    std::lock_guard lock{f.db->mtx};
    CHECK(f.db->writes == 1); // the intent first, then one commit of the whole row
    CHECK(f.db->invoices.at(v.inv.id.str()).inv.version == 1);
  }

  auto again = f.create(request());
  REQUIRE(ok(again));
  CHECK_FALSE(std::get<invoice_view>(again).created);
  CHECK(std::get<invoice_view>(again).client_secret == v.client_secret);
  CHECK(std::get<invoice_view>(again).inv.version == v.inv.version);

  auto different = f.create(request("shp_1", 999));
  REQUIRE_FALSE(ok(different));
  CHECK(std::get<failure>(different).code == billing_errc::conflict);

  auto read = f.get(v.inv.id);
  REQUIRE(ok(read));
  CHECK(std::get<invoice_view>(read).client_secret.empty()); // reads never expose it
}

TEST_CASE("each invoice gets its own intent; a row without one is repaired", "[actors]") {
  fixture f;
  auto a = f.create(request("shp_a"));
  auto b = f.create(request("shp_b"));
  REQUIRE(ok(a));
  REQUIRE(ok(b));
  auto& va = std::get<invoice_view>(a);
  auto& vb = std::get<invoice_view>(b);
  CHECK(va.inv.provider_intent_id != vb.inv.provider_intent_id);
  CHECK(va.client_secret != vb.client_secret);

  // A PENDING row with no intent (an older billingd stopped between its two
  // steps): the repeated create attaches one and hands out its secret.
  auto id = derive_invoice_id("wf_1", "shp_c");
  {
    std::lock_guard lock{f.db->mtx};
    stored_invoice legacy;
    legacy.inv.id = id;
    legacy.inv.user_id = "usr_1";
    legacy.inv.shipment_id = "shp_c";
    legacy.inv.workflow_id = "wf_1";
    legacy.inv.amount_cents = 12'500;
    legacy.inv.currency = "usd";
    legacy.inv.status = invoice_status::pending;
    legacy.inv.version = 1;
    legacy.inv.provider = "simulated";
    f.db->invoices[id.str()] = legacy;
  }
  auto c = f.create(request("shp_c"));
  REQUIRE(ok(c));
  auto& vc = std::get<invoice_view>(c);
  CHECK_FALSE(vc.created);
  CHECK(vc.inv.version == 2);
  CHECK(vc.inv.provider_intent_id.str().starts_with("pi_sim_"));
  CHECK(vc.client_secret.starts_with(vc.inv.provider_intent_id.str() + "_secret_"));
}

TEST_CASE("events move the invoice once and write one outbox row per transition", "[actors]") {
  fixture f;
  auto created = f.create(request());
  REQUIRE(ok(created));
  auto id = std::get<invoice_view>(created).inv.id;
  auto t = f.now->load();

  auto failed = f.event(id, event_kind::payment_failed, "evt_1", t + 1);
  REQUIRE(ok(failed));
  CHECK(std::get<webhook_reply>(failed).result == outcome::applied);
  CHECK(std::get<webhook_reply>(failed).status == invoice_status::failed);

  auto dup = f.event(id, event_kind::payment_failed, "evt_1", t + 1);
  REQUIRE(ok(dup));
  CHECK(std::get<webhook_reply>(dup).result == outcome::ignored_duplicate);

  auto paid = f.event(id, event_kind::payment_succeeded, "evt_2", t + 2);
  REQUIRE(ok(paid));
  CHECK(std::get<webhook_reply>(paid).status == invoice_status::paid);

  auto late = f.event(id, event_kind::payment_failed, "evt_0", t);
  REQUIRE(ok(late));
  CHECK(std::get<webhook_reply>(late).result == outcome::ignored_stale);

  auto mismatch = f.event(id, event_kind::refunded, "evt_3", t + 3, 1);
  REQUIRE(ok(mismatch));
  CHECK(std::get<webhook_reply>(mismatch).result == outcome::rejected_mismatch);

  std::lock_guard lock{f.db->mtx};
  REQUIRE(f.db->outbox.size() == 2);
  CHECK(f.db->outbox[0].signal == "PaymentFailed");
  CHECK(f.db->outbox[1].signal == "PaymentConfirmed");
  CHECK(f.db->outbox[1].payload.find("\"status\":\"PAID\"") != std::string::npos);
  CHECK(f.db->events.size() == 4); // evt_0..evt_3, each once
  CHECK(f.db->events.at("evt_3").result == outcome::rejected_mismatch);
  CHECK(f.db->invoices.at(id.str()).inv.status == invoice_status::paid);
}

TEST_CASE("events for unknown invoices are recorded and acknowledged", "[actors]") {
  fixture f;
  auto unknown = derive_invoice_id("wf_x", "shp_x");
  auto r = f.event(unknown, event_kind::payment_succeeded, "evt_u", f.now->load());
  REQUIRE(ok(r));
  CHECK(std::get<webhook_reply>(r).result == outcome::ignored_unknown_invoice);
  auto by_intent = f.event(invoice_id{"42"}, event_kind::payment_succeeded, "evt_v", f.now->load());
  REQUIRE(ok(by_intent));
  CHECK(std::get<webhook_reply>(by_intent).result == outcome::ignored_unknown_invoice);
  std::lock_guard lock{f.db->mtx};
  CHECK(f.db->events.size() == 2);
  CHECK(f.db->outbox.empty());
}

TEST_CASE("an unavailable database is reported, not hidden", "[actors]") {
  fixture f;
  auto created = f.create(request());
  REQUIRE(ok(created));
  auto id = std::get<invoice_view>(created).inv.id;
  {
    std::lock_guard lock{f.db->mtx};
    f.db->down = true;
  }
  auto r = f.event(id, event_kind::payment_succeeded, "evt_1", f.now->load());
  REQUIRE_FALSE(ok(r));
  CHECK(std::get<failure>(r).code == billing_errc::unavailable);
  {
    std::lock_guard lock{f.db->mtx};
    f.db->down = false;
  }
  auto retried = f.event(id, event_kind::payment_succeeded, "evt_1", f.now->load());
  REQUIRE(ok(retried));
  CHECK(std::get<webhook_reply>(retried).result == outcome::applied);
}

TEST_CASE("cancel goes through the provider and the state machine", "[actors]") {
  fixture f;
  auto id = std::get<invoice_view>(f.create(request())).inv.id;
  auto cancelled = f.wait<invoice_result>([&](auto cb) { f.gateway->cancel_invoice(id, cb); });
  REQUIRE(ok(cancelled));
  CHECK(std::get<invoice_view>(cancelled).inv.status == invoice_status::cancelled);
  auto again = f.wait<invoice_result>([&](auto cb) { f.gateway->cancel_invoice(id, cb); });
  REQUIRE(ok(again)); // cancelling a cancelled invoice is idempotent

  auto other = std::get<invoice_view>(f.create(request("shp_2"))).inv.id;
  REQUIRE(ok(f.event(other, event_kind::payment_succeeded, "evt_p", f.now->load())));
  auto refused = f.wait<invoice_result>([&](auto cb) { f.gateway->cancel_invoice(other, cb); });
  REQUIRE_FALSE(ok(refused));
  CHECK(std::get<failure>(refused).code == billing_errc::invalid_state);
}

TEST_CASE("the sweeper cancels invoices past expires_at", "[actors]") {
  fixture f;
  f.ctx->settings.sweep_interval = 1s;
  auto due = std::get<invoice_view>(f.create(request("shp_due"))).inv.id;
  auto req = request("shp_later");
  req.expires_in_seconds = 7 * 86'400;
  auto later = std::get<invoice_view>(f.create(req)).inv.id;
  f.now->fetch_add(86'400 + 1);
  auto sweeper = spawn_sweeper(*f.sys, f.ctx, f.registry);
  invoice_status status = invoice_status::pending;
  for (int i = 0; i < 100 && status != invoice_status::cancelled; ++i) {
    std::this_thread::sleep_for(50ms);
    status = std::get<invoice_view>(f.get(due)).inv.status;
  }
  caf::anon_send_exit(sweeper, caf::exit_reason::user_shutdown);
  CHECK(status == invoice_status::cancelled);
  CHECK(std::get<invoice_view>(f.get(later)).inv.status == invoice_status::pending);
  std::lock_guard lock{f.db->mtx};
  REQUIRE(f.db->outbox.size() == 1);
  CHECK(f.db->outbox[0].signal == "PaymentCancelled");
}

TEST_CASE("idle invoice actors passivate and come back from the store", "[actors]") {
  fixture f{1s};
  for (int i = 0; i < 20; ++i)
    REQUIRE(ok(f.create(request("shp_" + std::to_string(i)))));
  CHECK(f.registry->live_actors() == 20);
  for (int i = 0; i < 60 && f.registry->live_actors() > 0; ++i)
    std::this_thread::sleep_for(100ms);
  CHECK(f.registry->live_actors() == 0);
  auto id = derive_invoice_id("wf_1", "shp_3");
  auto back = f.get(id);
  REQUIRE(ok(back));
  CHECK(std::get<invoice_view>(back).inv.shipment_id == "shp_3");
  CHECK(f.registry->live_actors() == 1);
}

TEST_CASE("concurrent requests for one invoice are serialised", "[actors]") {
  fixture f;
  auto created = std::get<invoice_view>(f.create(request())).inv;
  auto id = created.id;
  std::vector<std::future<webhook_result>> results;
  std::atomic<int> applied{0};
  std::vector<std::promise<webhook_result>> promises(50);
  for (int i = 0; i < 50; ++i) {
    incoming_event in;
    in.ev.kind = i % 2 ? event_kind::payment_failed : event_kind::payment_succeeded;
    in.ev.id = event_id{"evt_c" + std::to_string(i % 10)}; // each id 5 times
    in.ev.created = f.now->load() + i;
    in.ev.intent = created.provider_intent_id;
    in.ev.amount_cents = created.amount_cents;
    in.ev.currency = created.currency;
    in.type = "payment_intent.test";
    results.push_back(promises[static_cast<size_t>(i)].get_future());
    f.gateway->handle_event(id, in, [&promises, i](webhook_result r) {
      promises[static_cast<size_t>(i)].set_value(std::move(r));
    });
  }
  int dups = 0;
  for (auto& r : results) {
    REQUIRE(r.wait_for(10s) == std::future_status::ready);
    auto w = r.get();
    REQUIRE(ok(w));
    if (std::get<webhook_reply>(w).result == outcome::ignored_duplicate)
      ++dups;
  }
  CHECK(dups == 40);
  std::lock_guard lock{f.db->mtx};
  CHECK(f.db->events.size() == 10);
  CHECK(f.db->invoices.at(id.str()).inv.status == invoice_status::paid);
}
