#include "persistence/outbox_actor.hpp"

#include "persistence/guarded_store.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <memory>
#include <optional>

namespace billing {

namespace {

struct outbox_state {
  static inline const char* name = "billing.outbox";

  std::optional<pg_detail::guarded_store<outbox_store>> db;
};

using outbox_ptr = outbox_actor::stateful_pointer<outbox_state>;

outbox_actor::behavior_type outbox_fun(outbox_ptr self, outbox_actor_config cfg) {
  auto& db = self->state.db.emplace(std::make_unique<outbox_store>(cfg.store), "outbox",
                                    cfg.store.url, cfg.backoff_min, cfg.backoff_max);
  db.ensure_connected();
  return {
    [self](claim_atom, const std::vector<outbox_outcome>& outcomes, int32_t limit,
           int64_t lease_ms) {
      return self->state.db->run<exchange_result>([&](outbox_store& st) {
        return st.exchange(outcomes, limit, std::chrono::milliseconds{lease_ms});
      });
    },
    [self](stats_atom) {
      return self->state.db->run<outbox_stats_result>([&](outbox_store& st) { return st.stats(); });
    },
    [self](redrive_atom, const redrive_request& r) {
      return self->state.db->run<redrive_result>([&](outbox_store& st) { return st.redrive(r); });
    },
  };
}

} // namespace

outbox_actor spawn_outbox_actor(caf::actor_system& sys, outbox_actor_config cfg) {
  return sys.spawn<caf::detached>(outbox_fun, std::move(cfg));
}

} // namespace billing
