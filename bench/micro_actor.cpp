// Micro-benchmark: CAF 0.17 request/response between event-based actors, the
// hop an HTTP request makes into the actor side and back. One round trip:
// request(dest, ping, n).then(...) and the reply; "via delegate" adds the
// registry-shard hop billingd makes (the middle actor delegates, so the
// reply goes straight back). Each iteration is 1000 sequential round trips
// by a fresh client actor; see the per-round-trip counter.
// Run: billing-micro --benchmark_filter=Actor
#include <benchmark/benchmark.h>
#include <caf/all.hpp>

#include <future>

namespace {

using ping_atom = caf::atom_constant<caf::atom("ping")>;
using unused_atom = caf::atom_constant<caf::atom("unused")>;

constexpr int round_trips = 1000;

caf::behavior server() {
  return {[](ping_atom, int x) { return x + 1; }};
}

caf::behavior forwarder(caf::event_based_actor* self, caf::actor target) {
  return {[=](ping_atom a, int x) { return self->delegate(target, a, x); }};
}

// Sends `n` requests one after the other, then fulfils `done` and quits.
class pinger : public caf::event_based_actor {
public:
  pinger(caf::actor_config& cfg, caf::actor dest, int n, std::promise<void>* done)
    : caf::event_based_actor(cfg), dest_(std::move(dest)), left_(n), done_(done) {}

  caf::behavior make_behavior() override {
    next();
    return {[](unused_atom) {}};
  }

private:
  void next() {
    if (left_ == 0) {
      done_->set_value();
      quit();
      return;
    }
    --left_;
    request(dest_, caf::infinite, ping_atom::value, left_).then([this](int) { next(); });
  }

  caf::actor dest_;
  int left_;
  std::promise<void>* done_;
};

void BM_ActorRoundTrip(benchmark::State& state, bool via_delegate) {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", static_cast<size_t>(2));
  caf::actor_system sys{cfg};
  auto srv = sys.spawn(server);
  caf::actor middle;
  if (via_delegate)
    middle = sys.spawn(forwarder, srv);
  caf::actor dest = via_delegate ? middle : srv;
  for (auto _ : state) {
    std::promise<void> done;
    auto finished = done.get_future();
    sys.spawn<pinger>(dest, round_trips, &done);
    finished.wait();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * round_trips);
  state.counters["per_round_trip"] = benchmark::Counter(
    static_cast<double>(state.iterations()) * round_trips, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  caf::anon_send_exit(srv, caf::exit_reason::user_shutdown);
  if (middle)
    caf::anon_send_exit(middle, caf::exit_reason::user_shutdown);
}
BENCHMARK_CAPTURE(BM_ActorRoundTrip, direct, false)->UseRealTime();
BENCHMARK_CAPTURE(BM_ActorRoundTrip, via_delegate, true)->UseRealTime();

} // namespace
