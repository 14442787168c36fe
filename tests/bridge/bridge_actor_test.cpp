// Actor tier (label unit): the real bridge actor on a real actor system,
// with an in-memory outbox and a scriptable sink (fake_outbox.hpp).

#include "actors/bridge.hpp"
#include "actors/supervisor.hpp"

#include "fake_outbox.hpp"

#include <catch2/catch.hpp>

#include <thread>

using namespace billing;
using namespace billing::test;
using namespace std::chrono_literals;

namespace {

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 5'000ms) {
  auto end = steady::now() + timeout;
  while (steady::now() < end) {
    if (pred())
      return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<fake_outbox_db> db = std::make_shared<fake_outbox_db>();
  std::shared_ptr<fake_sink_state> sink_state = std::make_shared<fake_sink_state>();
  std::shared_ptr<bridge_stats> stats = std::make_shared<bridge_stats>();
  outbox_actor outbox;
  fake_sink_actor sink;
  bridge_actor bridge;

  fixture() {
    cfg.set("scheduler.max-threads", size_t{2});
    sys = std::make_unique<caf::actor_system>(cfg);
    outbox = sys->spawn(fake_outbox, db);
    sink = sys->spawn(fake_sink, sink_state);
  }

  void start(bridge_config b) {
    b.sink_name = "fake";
    if (!b.random)
      b.random = [] { return 0.5; };
    bridge = spawn_bridge(*sys, b, outbox, sink, stats);
  }

  bool delivered(size_t n) {
    return db->with([&](auto& rows) {
      return static_cast<size_t>(std::count_if(rows.begin(), rows.end(), [](auto& r) { return r.delivered; })) == n;
    });
  }

  void stop_bridge() {
    caf::scoped_actor self{*sys};
    self->send_exit(bridge, caf::exit_reason::user_shutdown);
    self->wait_for(bridge);
  }

  ~fixture() {
    if (bridge)
      caf::anon_send_exit(bridge, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(outbox, caf::exit_reason::user_shutdown);
  }
};

} // namespace

TEST_CASE("a nudge delivers committed rows at once, each once", "[bridge]") {
  fixture f;
  bridge_config b;
  b.scan_interval = 60s; // only the nudge can find the rows
  f.start(b);
  REQUIRE(eventually([&] { return f.db->with([&](auto&) { return f.db->exchanges >= 1; }); }));
  for (int i = 0; i < 5; ++i)
    f.db->add("inv-" + std::to_string(i));
  auto t0 = steady::now();
  caf::anon_send(f.bridge, nudge_atom::value);
  REQUIRE(eventually([&] { return f.delivered(5); }, 2'000ms));
  CHECK(steady::now() - t0 < 1'000ms);
  std::lock_guard lock{f.sink_state->mu};
  REQUIRE(f.sink_state->seen.size() == 5);
  for (auto& d : f.sink_state->seen) {
    CHECK(d.request_id == outbox_request_id(d.outbox_id, d.invoice));
    CHECK(d.workflow_id == "wf-" + d.invoice.str());
    CHECK(d.attempt == 1);
  }
  auto snap = f.stats->snapshot();
  CHECK(snap.by_signal["PaymentConfirmed"].delivered == 5);
  CHECK(snap.latency_count == 5);
}

TEST_CASE("bounded concurrency and per-invoice order", "[bridge]") {
  fixture f;
  f.sink_state->delay = 15ms;
  for (int round = 0; round < 4; ++round)
    for (int inv = 0; inv < 5; ++inv)
      f.db->add("inv-" + std::to_string(inv),
                round % 2 == 0 ? "PaymentFailed" : "PaymentConfirmed");
  bridge_config b;
  b.concurrency = 3;
  b.scan_interval = 20ms;
  b.names.confirmed = "OrderPaid";
  f.start(b);
  REQUIRE(eventually([&] { return f.delivered(20); }));
  std::lock_guard lock{f.sink_state->mu};
  CHECK(f.sink_state->max_in_flight <= 3);
  CHECK(f.sink_state->max_in_flight >= 2);
  CHECK_FALSE(f.sink_state->same_invoice_overlap);
  CHECK(f.sink_state->seen.size() == 20); // nothing twice
  std::map<std::string, int64_t> last;
  for (auto& d : f.sink_state->seen) {
    CHECK(d.outbox_id > last[d.invoice.str()]);
    last[d.invoice.str()] = d.outbox_id;
    CHECK((d.signal == "OrderPaid" || d.signal == "PaymentFailed"));
  }
}

TEST_CASE("retries with backoff, permanent failures and the horizon end dead", "[bridge]") {
  std::map<std::string, int> calls; // outlives the fixture's sink
  fixture f;
  f.sink_state->verdict = [&calls](const signal_delivery& d) {
    auto n = ++calls[d.workflow_id];
    if (d.workflow_id == "wf-flaky")
      return n <= 2 ? delivery_verdict::retry : delivery_verdict::delivered;
    if (d.workflow_id == "wf-gone")
      return delivery_verdict::permanent;
    if (d.workflow_id == "wf-down")
      return delivery_verdict::retry;
    return delivery_verdict::delivered;
  };
  f.db->add("flaky");
  f.db->add("gone");
  f.db->add("down");
  f.db->add("fine");
  bridge_config b;
  b.scan_interval = 20ms;
  b.retry.min = 20ms;
  b.retry.max = 100ms;
  b.retry.horizon = 1s;
  f.start(b);
  REQUIRE(eventually([&] {
    return f.db->with([](auto& rows) {
      return std::all_of(rows.begin(), rows.end(), [](auto& r) { return r.delivered || r.dead; });
    });
  }));
  f.db->with([](auto& rows) {
    CHECK(rows[0].delivered);
    CHECK(rows[0].item.attempts == 3);
    CHECK(rows[1].dead);
    CHECK(rows[1].item.attempts == 1);
    CHECK(rows[1].error == "permanent: permanent");
    CHECK(rows[2].dead);
    CHECK(rows[2].error.starts_with("retry horizon of 1 s passed"));
    CHECK(rows[2].item.attempts > 3);
    CHECK(rows[3].delivered);
    return 0;
  });
  auto snap = f.stats->snapshot();
  CHECK(snap.by_signal["PaymentConfirmed"].delivered == 2);
  CHECK(snap.by_signal["PaymentConfirmed"].dead == 2);
  CHECK(snap.by_signal["PaymentConfirmed"].retried >= 2 + 3);
}

TEST_CASE("stopping waits for deliveries in flight and records them", "[bridge]") {
  fixture f;
  f.sink_state->hold = true;
  f.db->add("a");
  f.db->add("b");
  bridge_config b;
  b.scan_interval = 20ms;
  b.drain_timeout = 5s;
  f.start(b);
  REQUIRE(eventually([&] {
    std::lock_guard lock{f.sink_state->mu};
    return f.sink_state->in_flight == 2;
  }));
  std::thread releaser{[&] {
    std::this_thread::sleep_for(100ms);
    caf::anon_send(f.sink, release_atom::value, uint64_t{0});
  }};
  f.stop_bridge(); // returns once the bridge quit
  releaser.join();
  CHECK(f.delivered(2));
  f.bridge = bridge_actor{};
}

TEST_CASE("without a sink the bridge only reads the backlog", "[bridge]") {
  fixture f;
  f.db->add("x");
  f.db->add("y");
  bridge_config b;
  b.scan_interval = 20ms;
  b.stats_interval = 20ms;
  f.bridge = spawn_bridge(*f.sys, b, f.outbox, sink_actor{}, f.stats);
  REQUIRE(eventually([&] { return f.stats->backlog.load() == 2; }));
  std::this_thread::sleep_for(100ms);
  CHECK_FALSE(f.delivered(1));
  std::lock_guard lock{f.sink_state->mu};
  CHECK(f.sink_state->seen.empty());
}

TEST_CASE("a killed bridge is restarted and delivers what was pending", "[bridge][supervisor]") {
  fixture f;
  f.sink_state->hold = true; // deliveries stay in flight until the kill
  f.db->add("a");
  f.db->add("b");
  bridge_config b;
  b.sink_name = "fake";
  b.random = [] { return 0.5; };
  b.scan_interval = 50ms;
  b.lease = 300ms; // the dead bridge's claims come due again after this
  b.stats_interval = 60s; // gauges read once, at start
  supervisor sup{*f.sys, restart_policy{.backoff_min = 50ms}};
  auto bridge = sup.supervise<bridge_actor>("bridge", [&] {
    return spawn_bridge(*f.sys, b, f.outbox, f.sink, f.stats);
  });
  REQUIRE(eventually([&] {
    std::lock_guard lock{f.sink_state->mu};
    return f.sink_state->in_flight == 2;
  }));
  auto first = bridge->get();
  caf::anon_send_exit(first, caf::exit_reason::kill);
  REQUIRE(eventually([&] { return sup.restarts("bridge") == 1 && sup.all_up(); }));
  CHECK(bridge->get() != first);
  // The held answers go to the dead bridge; the new one claims the rows
  // again once their lease is over, and the sink answers now.
  caf::anon_send(f.sink, release_atom::value, uint64_t{0});
  REQUIRE(eventually([&] { return f.delivered(2); }));

  // A nudge through the slot reaches the new bridge (the writer nudges so).
  b.scan_interval = 60s; // the factory reads `b` at each spawn
  f.stats->backlog = -1;
  caf::anon_send_exit(bridge->get(), caf::exit_reason::kill);
  REQUIRE(eventually([&] { return sup.restarts("bridge") == 2 && sup.all_up(); }));
  // The new bridge's start-up scan, then its first gauge read, reach the
  // outbox in that order: once the gauge is back, the scan has claimed.
  REQUIRE(eventually([&] { return f.stats->backlog.load() == 0; }));
  f.db->add("c"); // only a nudge finds it now
  caf::anon_send(bridge->get(), nudge_atom::value);
  REQUIRE(eventually([&] { return f.delivered(3); }, 2'000ms));
  sup.stop();
}
