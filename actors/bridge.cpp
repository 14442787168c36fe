#include "actors/bridge.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <unordered_map>
#include <vector>

namespace billing {

namespace {

// Private to the bridge: it sends these to itself only.
using scan_atom = caf::atom_constant<caf::atom("bscan")>;
using gauge_atom = caf::atom_constant<caf::atom("bgauge")>;
using wake_atom = caf::atom_constant<caf::atom("bwake")>;
using drain_atom = caf::atom_constant<caf::atom("bdrain")>;

using bridge_impl = bridge_actor::extend<caf::reacts_to<scan_atom>, caf::reacts_to<gauge_atom>,
                                         caf::reacts_to<wake_atom, uint64_t>,
                                         caf::reacts_to<drain_atom>>;
using clock = std::chrono::steady_clock;

struct flight {
  outbox_item item;
  std::string signal; // configured name
  clock::time_point started;
};

struct bridge_state {
  static inline const char* name = "billing.bridge";

  bridge_config cfg;
  outbox_actor outbox;
  sink_actor sink;
  std::shared_ptr<bridge_stats> stats;
  std::mt19937_64 prng{std::random_device{}()};

  std::unordered_map<int64_t, flight> in_flight;
  std::vector<outbox_outcome> to_settle; // outcomes not recorded yet
  bool dirty = true;   // due rows may exist that are not claimed yet
  bool busy = false;   // an exchange (settle + claim) is in flight
  bool paused = false; // the last exchange failed: wait for the next scan
  clock::time_point wake_at = clock::time_point::max();
  uint64_t wake_gen = 0;
  uint64_t failures = 0; // attempts failed since the last summary
  std::string last_failure;
  bool stopping = false;
  caf::error exit_reason;
};

using self_ptr = bridge_impl::stateful_pointer<bridge_state>;

double uniform(bridge_state& s) {
  if (s.cfg.random)
    return s.cfg.random();
  return std::uniform_real_distribution<double>{0.0, 1.0}(s.prng);
}

void cycle(self_ptr self);

void maybe_quit(self_ptr self) {
  auto& s = self->state;
  if (s.stopping && s.in_flight.empty() && !s.busy && s.to_settle.empty())
    self->quit(s.exit_reason);
}

void schedule_wake(self_ptr self, std::chrono::milliseconds delay) {
  auto& s = self->state;
  auto at = clock::now() + delay;
  if (at >= s.wake_at)
    return; // an earlier wake-up (or the scan) picks this row up too
  s.wake_at = at;
  self->delayed_send(caf::actor_cast<bridge_impl>(self), delay, wake_atom::value, ++s.wake_gen);
}

void finish(self_ptr self, int64_t id, const delivery_result& r) {
  auto& s = self->state;
  auto it = s.in_flight.find(id);
  if (it == s.in_flight.end())
    return;
  auto& f = it->second;
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - f.started);
  auto out = decide(s.cfg.retry, f.item, r, elapsed.count(), uniform(s));
  s.stats->count(f.signal, out.kind);
  switch (out.kind) {
    case settle_kind::delivered:
      spdlog::debug("bridge: outbox {} ({} to {}) delivered on attempt {} in {} ms", id, f.signal,
                    f.item.workflow_id, f.item.attempts, elapsed.count());
      break;
    case settle_kind::retry:
      ++s.failures;
      s.last_failure = r.detail;
      spdlog::debug("bridge: outbox {} ({} to {}) attempt {} failed: {}; next in {} ms", id,
                    f.signal, f.item.workflow_id, f.item.attempts, r.detail, out.delay_ms);
      schedule_wake(self, std::chrono::milliseconds{out.delay_ms});
      break;
    case settle_kind::dead:
      spdlog::error("bridge: outbox {} ({} for invoice {}, workflow {}) is dead after {} "
                    "attempt(s): {}; re-drive it with `billingd outbox retry --id {}`",
                    id, f.signal, f.item.invoice.str(), f.item.workflow_id, f.item.attempts,
                    out.error, id);
      break;
  }
  s.to_settle.push_back(std::move(out));
  s.in_flight.erase(it);
  s.stats->in_flight = s.in_flight.size();
  cycle(self);
  maybe_quit(self);
}

void dispatch(self_ptr self, outbox_item item) {
  auto& s = self->state;
  if (s.in_flight.count(item.id) > 0)
    return; // still in flight here although its lease ran out: the running attempt settles it
  const auto id = item.id;
  signal_delivery d;
  d.outbox_id = id;
  d.request_id = outbox_request_id(id, item.invoice);
  d.invoice = item.invoice;
  d.workflow_id = item.workflow_id;
  d.signal = std::string{s.cfg.names.map(item.signal)};
  d.payload = item.payload;
  d.attempt = item.attempts;
  d.created_at = item.created_at;
  s.in_flight.emplace(id, flight{std::move(item), d.signal, clock::now()});
  s.stats->in_flight = s.in_flight.size();
  if (d.workflow_id.empty())
    return finish(self, id, {delivery_verdict::permanent, "the invoice of this row is gone"});
  auto wait = s.cfg.delivery_timeout + std::chrono::seconds{2};
  self->request(s.sink, wait, deliver_atom::value, std::move(d))
    .then([self, id](delivery_result& r) { finish(self, id, r); },
          [self, id](caf::error& e) {
            finish(self, id, {delivery_verdict::retry,
                              "the sink did not answer: " + self->system().render(e)});
          });
}

void record(self_ptr self, const settle_summary& sum) {
  auto& s = self->state;
  for (auto ms : sum.latency_ms)
    s.stats->observe_latency(ms);
  if (sum.held_back > 0) {
    s.stats->held_back += static_cast<uint64_t>(sum.held_back);
    spdlog::error("bridge: {} later signal(s) of invoices with a dead signal are held back (dead) "
                  "to keep their order; re-driving the dead one re-drives them",
                  sum.held_back);
  }
}

// One round trip to the outbox actor: record the outcomes gathered so far and
// claim up to the free capacity, in one transaction. At most one is in
// flight; whatever finishes meanwhile goes into the next, so batches grow
// with load and an idle bridge answers a lone nudge at once.
void cycle(self_ptr self) {
  auto& s = self->state;
  if (s.busy || s.paused)
    return;
  const bool claim = s.sink && !s.stopping && s.dirty && s.in_flight.size() < s.cfg.concurrency;
  if (!claim && s.to_settle.empty())
    return;
  const auto limit = claim ? static_cast<int32_t>(s.cfg.concurrency - s.in_flight.size()) : 0;
  s.busy = true;
  if (claim)
    s.dirty = false;
  auto batch = std::move(s.to_settle);
  s.to_settle.clear();
  auto failed = [self, batch, limit](const std::string& why) {
    auto& s = self->state;
    s.busy = false;
    s.paused = true; // again at the next scan; the leases keep the rows ours meanwhile
    s.dirty = s.dirty || limit > 0;
    s.to_settle.insert(s.to_settle.begin(), batch.begin(), batch.end());
    ++s.failures;
    s.last_failure = "outbox: " + why;
    maybe_quit(self);
  };
  const auto sent = clock::now();
  self->request(s.outbox, s.cfg.store_timeout, claim_atom::value, batch, limit,
                static_cast<int64_t>(s.cfg.lease.count()))
    .then(
      [self, batch, limit, failed, sent](exchange_result& r) {
        if (!ok(r))
          return failed(std::get<failure>(r).message);
        auto& s = self->state;
        s.busy = false;
        auto& x = std::get<exchange_reply>(r);
        spdlog::trace("bridge: exchange settled {} claimed {}/{} in {} us", batch.size(),
                      x.claimed.size(), limit,
                      std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - sent).count());
        record(self, x.settled);
        // A full page: more may be due. Rows settled without a claim free
        // their invoices' next rows.
        if ((limit > 0 && x.claimed.size() >= static_cast<size_t>(limit))
            || (limit == 0 && std::any_of(batch.begin(), batch.end(), [](const auto& o) {
                  return o.kind != settle_kind::retry;
                })))
          s.dirty = true;
        for (auto& row : x.claimed)
          dispatch(self, std::move(row));
        cycle(self);
        maybe_quit(self);
      },
      [self, failed](caf::error& e) { failed(self->system().render(e)); });
}

void read_gauges(self_ptr self) {
  auto& s = self->state;
  if (s.failures > 0) {
    spdlog::warn("bridge ({}): {} failed attempt(s) in the last {} s; last: {}",
                 s.cfg.sink_name, s.failures, s.cfg.stats_interval.count() / 1000,
                 s.last_failure);
    s.failures = 0;
  }
  self->request(s.outbox, s.cfg.store_timeout, stats_atom::value)
    .then(
      [self](outbox_stats_result& r) {
        auto& s = self->state;
        if (!ok(r))
          return;
        auto& st = std::get<outbox_stats>(r);
        s.stats->backlog = st.backlog;
        s.stats->dead_rows = st.dead;
        s.stats->oldest_ms = st.oldest_ms;
        if (st.held_back > 0) {
          s.stats->held_back += static_cast<uint64_t>(st.held_back);
          spdlog::error("bridge: {} signal(s) arrived behind a dead signal of their invoice and "
                        "are held back (dead) to keep their order",
                        st.held_back);
        }
      },
      [](caf::error&) {});
}

bridge_impl::behavior_type bridge_fun(self_ptr self, bridge_config cfg, outbox_actor outbox,
                                      sink_actor sink, std::shared_ptr<bridge_stats> stats) {
  auto& s = self->state;
  s.cfg = std::move(cfg);
  s.cfg.concurrency = std::max<size_t>(s.cfg.concurrency, 1);
  if (s.cfg.lease.count() <= 0)
    s.cfg.lease = 2 * s.cfg.delivery_timeout + std::chrono::seconds{2};
  s.outbox = std::move(outbox);
  s.sink = std::move(sink);
  s.stats = std::move(stats);
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& s = self->state;
    if (s.stopping)
      return;
    s.stopping = true;
    s.exit_reason = msg.reason;
    maybe_quit(self);
    self->delayed_send(caf::actor_cast<bridge_impl>(self), s.cfg.drain_timeout, drain_atom::value);
  });
  auto me = caf::actor_cast<bridge_impl>(self);
  self->send(me, scan_atom::value);
  self->send(me, gauge_atom::value);
  return {
    [self](nudge_atom) {
      self->state.dirty = true;
      cycle(self);
    },
    [self](scan_atom) {
      auto& s = self->state;
      s.paused = false;
      s.dirty = true;
      cycle(self);
      if (!s.stopping)
        self->delayed_send(caf::actor_cast<bridge_impl>(self), s.cfg.scan_interval, scan_atom::value);
    },
    [self](gauge_atom) {
      read_gauges(self);
      if (!self->state.stopping)
        self->delayed_send(caf::actor_cast<bridge_impl>(self), self->state.cfg.stats_interval,
                           gauge_atom::value);
    },
    [self](wake_atom, uint64_t gen) {
      auto& s = self->state;
      if (gen != s.wake_gen)
        return;
      s.wake_at = clock::time_point::max();
      s.dirty = true;
      cycle(self);
    },
    [self](drain_atom) {
      auto& s = self->state;
      if (!s.in_flight.empty() || !s.to_settle.empty())
        spdlog::warn("bridge: stopping with {} delivery(ies) in flight and {} outcome(s) "
                     "unrecorded; they are delivered again after their lease (same request id)",
                     s.in_flight.size(), s.to_settle.size());
      self->quit(s.exit_reason);
    },
  };
}

} // namespace

bridge_actor spawn_bridge(caf::actor_system& sys, bridge_config cfg, outbox_actor outbox,
                          sink_actor sink, std::shared_ptr<bridge_stats> stats) {
  if (!stats)
    stats = std::make_shared<bridge_stats>();
  stats->sink = cfg.sink_name; // before the actor runs: /metrics reads it unlocked
  bridge_impl h = sys.spawn(bridge_fun, std::move(cfg), std::move(outbox), std::move(sink),
                            std::move(stats));
  return h;
}

} // namespace billing
