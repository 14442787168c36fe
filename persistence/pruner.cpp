#include "persistence/pruner.hpp"

#include "persistence/guarded_store.hpp"
#include "persistence/pg_store.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <optional>

namespace billing {

namespace {

using prune_atom = caf::atom_constant<caf::atom("prune")>;

struct pruner_state {
  static inline const char* name = "billing.pruner";
  std::optional<pg_detail::guarded_store<pg_store>> db;
};

caf::behavior pruner_fun(caf::stateful_actor<pruner_state>* self, pruner_config cfg) {
  store_options opts;
  opts.url = cfg.url;
  opts.application_name = "billingd-pruner";
  self->state.db.emplace(std::make_unique<pg_store>(opts), "pruner", cfg.url,
                         std::chrono::milliseconds{500}, std::chrono::milliseconds{30'000});
  self->send(self, prune_atom::value);
  return {
    [self, cfg](prune_atom) {
      int64_t deleted = 0;
      for (int32_t i = 0; i < cfg.max_chunks_per_run; ++i) {
        auto r = self->state.db->run<result<int64_t>>([&](pg_store& st) {
          return st.prune(cfg.event_retention, cfg.outbox_retention, cfg.chunk);
        });
        if (!ok(r)) {
          spdlog::warn("retention: skipped this run: {}", std::get<failure>(r).message);
          break;
        }
        deleted += std::get<int64_t>(r);
        if (std::get<int64_t>(r) < cfg.chunk) // both tables had less than a chunk left
          break;
      }
      if (deleted > 0)
        spdlog::info("retention: deleted {} old webhook_events and delivered outbox rows", deleted);
      self->delayed_send(self, cfg.interval, prune_atom::value);
    },
  };
}

} // namespace

caf::actor spawn_pruner(caf::actor_system& sys, pruner_config cfg) {
  return sys.spawn<caf::detached>(pruner_fun, std::move(cfg));
}

} // namespace billing
