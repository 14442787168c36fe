#include "persistence/reconcile_actor.hpp"

#include "persistence/guarded_store.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <memory>
#include <optional>

namespace billing {

namespace {

struct reconcile_store_state {
  static inline const char* name = "billing.reconcile_store";
  std::optional<pg_detail::guarded_store<reconcile_store>> db;
};

using store_ptr = reconcile_store_actor::stateful_pointer<reconcile_store_state>;

reconcile_store_actor::behavior_type reconcile_store_fun(store_ptr self, reconcile_actor_config cfg) {
  auto& db = self->state.db.emplace(std::make_unique<reconcile_store>(cfg.store), "reconcile store",
                                    cfg.store.url, cfg.backoff_min, cfg.backoff_max);
  db.ensure_connected();
  return {
    [self](claim_atom, const reconcile_claim& c) {
      return self->state.db->run<candidates_result>([&](reconcile_store& st) { return st.claim(c); });
    },
    [self](lease_atom, const checkpoint_lease& l) {
      return self->state.db->run<checkpoint_result>([&](reconcile_store& st) { return st.lease(l); });
    },
    [self](advance_atom, const checkpoint_advance& a) {
      return self->state.db->run<advance_result>([&](reconcile_store& st) { return st.advance(a); });
    },
  };
}

} // namespace

reconcile_store_actor spawn_reconcile_store(caf::actor_system& sys, reconcile_actor_config cfg) {
  return sys.spawn<caf::detached>(reconcile_store_fun, std::move(cfg));
}

} // namespace billing
