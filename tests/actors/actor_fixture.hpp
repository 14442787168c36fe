#pragma once
// The actor tier's fixture: a real actor system, the real registry, invoice
// actors and gateway, the simulated provider, and the in-memory store
// (fake_store.hpp) behind a writer that can hold writes.

#include "actors/gateway.hpp"
#include "actors/registry.hpp"
#include "net/simulated_provider.hpp"
#include "fake_store.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <thread>

namespace billing::test {

using namespace std::chrono_literals;

// Polls `pred` until it holds or `timeout` passed; returns its last value.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 5'000ms) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred())
      return true;
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<fake_db> db = std::make_shared<fake_db>();
  std::shared_ptr<write_gate> gate = std::make_shared<write_gate>();
  std::shared_ptr<std::atomic<unix_seconds>> now = std::make_shared<std::atomic<unix_seconds>>(1'700'000'000);
  std::shared_ptr<actor_context> ctx = std::make_shared<actor_context>();
  registry_ptr registry;
  std::unique_ptr<actor_gateway> gateway;

  explicit fixture(std::chrono::seconds idle = 60s, std::chrono::milliseconds timeout = 5'000ms) {
    cfg.set("scheduler.max-threads", size_t{2});
    sys = std::make_unique<caf::actor_system>(cfg);
    ctx->settings.idle_timeout = idle;
    ctx->settings.request_timeout = timeout;
    ctx->writers = {actor_slot<writer_actor>::make(caf::actor_cast<writer_actor>(sys->spawn(holding_writer, db, gate)))};
    ctx->reader = actor_slot<reader_actor>::make(sys->spawn(fake_reader, db));
    ctx->provider = spawn_simulated_provider(*sys);
    ctx->box = std::make_shared<secret_box>(secret_box::key_type{1, 2, 3});
    ctx->clock = [n = now] { return n->load(); };
    registry = invoice_registry::make(*sys, ctx, 4);
    gateway = std::make_unique<actor_gateway>(*sys, ctx, registry, [] { return true; }, 2);
  }

  ~fixture() {
    gateway.reset();
    registry->stop_all();
    caf::anon_send_exit(ctx->writers.front()->get(), caf::exit_reason::user_shutdown);
    caf::anon_send_exit(ctx->reader->get(), caf::exit_reason::user_shutdown);
    caf::anon_send_exit(ctx->provider, caf::exit_reason::user_shutdown);
    ctx.reset();
    registry.reset();
  }

  // Calls an async API and waits for its answer (tests only).
  template <class T, class F>
  T wait(F call) {
    std::promise<T> p;
    auto f = p.get_future();
    call([&p](T r) { p.set_value(std::move(r)); });
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    return f.get();
  }

  invoice_result create(create_invoice_request req) {
    return wait<invoice_result>([&](auto cb) { gateway->create_invoice(req, cb); });
  }
  invoice_result get(const invoice_id& id) {
    return wait<invoice_result>([&](auto cb) { gateway->get_invoice(id, cb); });
  }
  incoming_event make_event(event_kind kind, const std::string& evt, unix_seconds created,
                            int64_t amount = 12'500) {
    incoming_event in;
    in.ev.kind = kind;
    in.ev.id = event_id{evt};
    in.ev.created = created;
    in.ev.amount_cents = amount;
    in.ev.currency = "usd";
    in.type = "payment_intent.test";
    in.received_at = now->load();
    return in;
  }
  webhook_result event(const invoice_id& id, event_kind kind, const std::string& evt,
                       unix_seconds created, int64_t amount = 12'500) {
    auto in = make_event(kind, evt, created, amount);
    // A genuine event names the invoice's own PaymentIntent (when there is one).
    if (auto known = get(id); ok(known))
      in.ev.intent = std::get<invoice_view>(known).inv.provider_intent_id;
    return wait<webhook_result>([&](auto cb) { gateway->handle_event(id, in, cb); });
  }
};

inline create_invoice_request request(std::string shipment = "shp_1", int64_t amount = 12'500,
                                      std::string workflow = "wf_1") {
  return create_invoice_request{std::move(shipment), "usr_1", std::move(workflow), amount, "usd",
                                std::nullopt, invoice_mode::payment_intent, {}, {}};
}

} // namespace billing::test
