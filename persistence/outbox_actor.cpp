#include "persistence/outbox_actor.hpp"

#include "persistence/pg_util.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <optional>

namespace billing {

namespace {

using clock = std::chrono::steady_clock;

struct outbox_state {
  static inline const char* name = "billing.outbox";

  outbox_actor_config cfg;
  std::unique_ptr<outbox_store> store;
  std::chrono::milliseconds backoff{0};
  clock::time_point next_attempt{};
};

using outbox_ptr = outbox_actor::stateful_pointer<outbox_state>;

// nullopt when the store is usable now, else the failure to answer with.
std::optional<failure> ensure_connected(outbox_state& s) {
  if (s.store->connected())
    return std::nullopt;
  if (clock::now() < s.next_attempt)
    return fail(billing_errc::unavailable, "database unavailable");
  auto r = s.store->connect();
  if (ok(r)) {
    if (s.backoff.count() > 0)
      spdlog::info("outbox: database connection restored");
    s.backoff = std::chrono::milliseconds{0};
    return std::nullopt;
  }
  if (s.backoff.count() == 0)
    spdlog::warn("outbox: cannot connect to {}: {}", pg_detail::redact(s.cfg.store.url),
                 std::get<failure>(r).message);
  s.backoff = s.backoff.count() == 0 ? s.cfg.backoff_min
                                      : std::min(s.backoff * 2, s.cfg.backoff_max);
  s.next_attempt = clock::now() + s.backoff;
  return std::get<failure>(std::move(r));
}

template <class Result, class Op>
Result guarded(outbox_state& s, Op op) {
  if (auto f = ensure_connected(s))
    return std::move(*f);
  Result r = op(*s.store);
  if (!s.store->connected()) {
    s.backoff = s.cfg.backoff_min;
    s.next_attempt = clock::now() + s.backoff;
  }
  return r;
}

outbox_actor::behavior_type outbox_fun(outbox_ptr self, outbox_actor_config cfg) {
  auto& s = self->state;
  s.cfg = std::move(cfg);
  s.store = std::make_unique<outbox_store>(s.cfg.store);
  ensure_connected(s);
  return {
    [self](claim_atom, const std::vector<outbox_outcome>& outcomes, int32_t limit,
           int64_t lease_ms) {
      return guarded<exchange_result>(self->state, [&](outbox_store& st) {
        return st.exchange(outcomes, limit, std::chrono::milliseconds{lease_ms});
      });
    },
    [self](stats_atom) {
      return guarded<outbox_stats_result>(self->state,
                                          [&](outbox_store& st) { return st.stats(); });
    },
    [self](redrive_atom, const redrive_request& r) {
      return guarded<redrive_result>(self->state,
                                     [&](outbox_store& st) { return st.redrive(r); });
    },
  };
}

} // namespace

outbox_actor spawn_outbox_actor(caf::actor_system& sys, outbox_actor_config cfg) {
  return sys.spawn<caf::detached>(outbox_fun, std::move(cfg));
}

} // namespace billing
