// The supervisor with trivial children (restart, backoff, readiness, stop),
// and the expiry sweeper restarted under it.

#include "actors/supervisor.hpp"
#include "actors/sweeper.hpp"
#include "actor_fixture.hpp"

#include <catch2/catch.hpp>

#include <mutex>
#include <thread>

using namespace billing;
using namespace billing::test;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;
using quit_atom = caf::atom_constant<caf::atom("tquit")>;

caf::behavior echo(caf::event_based_actor* self) {
  return {
    [](int x) { return x; },
    [self](quit_atom) { self->quit(); }, // a normal exit
  };
}

int ask(caf::actor_system& sys, const caf::actor& a, int x) {
  caf::scoped_actor self{sys};
  int got = -1;
  self->request(a, 5s, x).receive([&](int y) { got = y; }, [](caf::error&) {});
  return got;
}

// Spawns echo actors and records when; the first `doomed` die at once.
struct spawner {
  explicit spawner(caf::actor_system& s, int d = 0) : sys(s), doomed(d) {}

  caf::actor_system& sys;
  int doomed;
  std::mutex mu;
  std::vector<steady::time_point> times;

  caf::actor operator()() {
    auto a = sys.spawn(echo);
    std::lock_guard lock{mu};
    times.push_back(steady::now());
    if (static_cast<int>(times.size()) <= doomed)
      caf::anon_send_exit(a, caf::exit_reason::kill);
    return a;
  }
  size_t count() {
    std::lock_guard lock{mu};
    return times.size();
  }
};

struct system_fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  system_fixture() {
    cfg.set("scheduler.max-threads", size_t{2});
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

int64_t ms(steady::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

} // namespace

TEST_CASE("a child that dies is restarted; all_up is false while it is down", "[supervisor]") {
  system_fixture sf;
  auto& sys = *sf.sys;
  spawner sp{sys};
  supervisor sup{sys, restart_policy{.backoff_min = 200ms, .backoff_max = 1s}};
  auto slot = sup.supervise<caf::actor>("echo 0", [&] { return sp(); });
  CHECK(sup.all_up());
  CHECK(sp.count() == 1);
  CHECK(ask(sys, slot->get(), 7) == 7);
  auto old = slot->get();
  caf::anon_send_exit(old, caf::exit_reason::kill);
  REQUIRE(eventually([&] { return !sup.all_up(); }));
  CHECK(sup.down() == std::vector<std::string>{"echo 0"});
  REQUIRE(eventually([&] { return sup.all_up(); }));
  CHECK(sp.count() == 2);
  CHECK(sup.restarts("echo 0") == 1);
  CHECK(slot->get() != old);
  CHECK(ask(sys, slot->get(), 8) == 8);
  CHECK(sup.down().empty());

  SECTION("a normal exit is not restarted, and counts as down") {
    caf::anon_send(slot->get(), quit_atom::value);
    REQUIRE(eventually([&] { return !sup.all_up(); }));
    std::this_thread::sleep_for(400ms); // twice the backoff: a restart would have happened
    CHECK(sp.count() == 2);
    CHECK(sup.down() == std::vector<std::string>{"echo 0"});
  }
}

TEST_CASE("restarts back off exponentially up to the cap", "[supervisor]") {
  system_fixture sf;
  spawner sp{*sf.sys, 6}; // the first six die at once
  supervisor sup{*sf.sys, restart_policy{.backoff_min = 25ms, .backoff_max = 100ms}};
  auto slot = sup.supervise<caf::actor>("flaky", [&] { return sp(); });
  REQUIRE(eventually([&] { return sp.count() == 7 && sup.all_up(); }, 10s));
  CHECK(sup.restarts("flaky") == 6);
  const int64_t expected[] = {25, 50, 100, 100, 100, 100};
  std::lock_guard lock{sp.mu};
  for (size_t i = 0; i < 6; ++i) {
    auto gap = ms(sp.times[i + 1] - sp.times[i]);
    INFO("restart " << i + 1 << " after " << gap << " ms, expected " << expected[i]);
    CHECK(gap >= expected[i] - 5);
    if (i >= 4) // uncapped it would wait 400 and 800 ms
      CHECK(gap < 300);
  }
}

TEST_CASE("a child that stayed up starts its backoff over", "[supervisor]") {
  system_fixture sf;
  spawner sp{*sf.sys, 3}; // waits 50, 100, 200 ms; the fourth stays up
  supervisor sup{*sf.sys, restart_policy{.backoff_min = 50ms, .backoff_max = 800ms,
                                         .stable_after = 300ms}};
  auto slot = sup.supervise<caf::actor>("steady", [&] { return sp(); });
  REQUIRE(eventually([&] { return sp.count() == 4 && sup.all_up(); }, 10s));
  std::this_thread::sleep_for(400ms); // up longer than stable_after
  auto killed = steady::now();
  caf::anon_send_exit(slot->get(), caf::exit_reason::kill);
  REQUIRE(eventually([&] { return sp.count() == 5; }, 10s));
  std::lock_guard lock{sp.mu};
  CHECK(ms(sp.times[4] - killed) < 300); // 50 ms, not the 400 ms it had grown to
}

TEST_CASE("stopping restarts nothing and leaves no child running", "[supervisor]") {
  system_fixture sf;
  auto& sys = *sf.sys;
  spawner sp{sys};
  caf::actor a;
  caf::actor b;
  {
    supervisor sup{sys, restart_policy{.backoff_min = 200ms}};
    auto sa = sup.supervise<caf::actor>("a", [&] { return sp(); });
    auto sb = sup.supervise<caf::actor>("b", [&] { return sp(); });
    a = sa->get();
    b = sb->get();
    SECTION("stop(name) stops one child; it is not down, the other keeps running") {
      sup.stop("a");
      CHECK(sup.all_up());
      CHECK(ask(sys, sb->get(), 1) == 1);
      CHECK(sup.restarts("a") == 0);
    }
    SECTION("a death just before stop() is not restarted") {
      caf::anon_send_exit(b, caf::exit_reason::kill);
      REQUIRE(eventually([&] { return !sup.all_up(); }));
      sup.stop(); // before the 200 ms backoff ends
    }
    sup.stop();
    // The supervisor actor is gone too: nothing can restart any more.
    CHECK(sp.count() == 2);
    CHECK(sup.restarts("a") == 0);
    CHECK(sup.restarts("b") == 0);
  }
  caf::scoped_actor self{sys};
  self->wait_for(a, b); // both exited (this would hang otherwise)
  CHECK(sp.count() == 2);
}

TEST_CASE("the expiry sweeper comes back after a kill and keeps sweeping", "[supervisor][actors]") {
  fixture f;
  f.ctx->settings.sweep_interval = 1s;
  auto due = std::get<invoice_view>(f.create(request("shp_due"))).inv.id;
  supervisor sup{*f.sys, restart_policy{.backoff_min = 100ms}};
  auto sweeper = sup.supervise<caf::actor>("sweeper", [&] {
    return spawn_sweeper(*f.sys, f.ctx, f.registry);
  });
  auto first = sweeper->get();
  caf::anon_send_exit(first, caf::exit_reason::kill);
  REQUIRE(eventually([&] { return sup.restarts("sweeper") == 1 && sup.all_up(); }));
  CHECK(sweeper->get() != first);
  f.now->fetch_add(86'400 + 1); // now it is due: only the new sweeper can expire it
  CHECK(eventually([&] { return std::get<invoice_view>(f.get(due)).inv.status == invoice_status::cancelled; },
                   10s));
  sup.stop();
  std::lock_guard lock{f.db->mtx};
  REQUIRE(f.db->outbox.size() == 1);
  CHECK(f.db->outbox[0].signal == "PaymentCancelled");
}
