#include "actors/sweeper.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace billing {

namespace {

struct sweeper_state {
  static inline const char* name = "expiry-sweeper";
  context_ptr ctx;
  std::vector<registry_actor> shards; // copied: the registry outlives no actor
  bool sweeping = false;
};

const registry_actor& shard_of(const std::vector<registry_actor>& shards, const invoice_id& id) {
  return shards[std::hash<invoice_id>{}(id) % shards.size()];
}

caf::behavior sweeper(caf::stateful_actor<sweeper_state>* self, context_ptr ctx,
                      std::vector<registry_actor> shards) {
  self->state.ctx = std::move(ctx);
  self->state.shards = std::move(shards);
  self->send(self, tick_atom::value);
  return {
    [self](tick_atom) {
      auto& st = self->state;
      if (st.sweeping)
        return;
      st.sweeping = true;
      auto& s = st.ctx->settings;
      self->request(reader_of(*st.ctx), s.request_timeout, due_atom::value, st.ctx->clock(), s.sweep_page)
        .then(
          [self](due_result& r) {
            auto& st = self->state;
            auto& s = st.ctx->settings;
            auto next_tick = [self] {
              self->state.sweeping = false;
              self->delayed_send(self, self->state.ctx->settings.sweep_interval, tick_atom::value);
            };
            if (!ok(r)) {
              spdlog::warn("expiry sweep: cannot list due invoices: {}", std::get<failure>(r).message);
              return next_tick();
            }
            auto ids = std::move(std::get<std::vector<invoice_id>>(r));
            if (ids.empty())
              return next_tick();
            auto remaining = std::make_shared<size_t>(ids.size());
            auto cancelled = std::make_shared<size_t>(0);
            bool full_page = ids.size() == static_cast<size_t>(s.sweep_page);
            for (auto& id : ids) {
              self->request(shard_of(st.shards, id), s.request_timeout, expire_atom::value, id)
                .then(
                  [=](webhook_result& w) {
                    if (ok(w) && std::get<webhook_reply>(w).result == outcome::applied)
                      ++*cancelled;
                    if (--*remaining == 0) {
                      spdlog::info("expiry sweep: {} of {} due invoices expired", *cancelled, ids.size());
                      // A full page that made progress: more may be due now.
                      if (full_page && *cancelled > 0) {
                        self->state.sweeping = false;
                        self->send(self, tick_atom::value);
                      } else {
                        next_tick();
                      }
                    }
                  },
                  [=](caf::error&) {
                    if (--*remaining == 0)
                      next_tick();
                  });
            }
          },
          [self](caf::error& err) {
            spdlog::warn("expiry sweep: reader did not answer: {}", caf::to_string(err));
            self->state.sweeping = false;
            self->delayed_send(self, self->state.ctx->settings.sweep_interval, tick_atom::value);
          });
    },
  };
}

} // namespace

caf::actor spawn_sweeper(caf::actor_system& sys, context_ptr ctx, const invoice_registry& registry) {
  return sys.spawn(sweeper, std::move(ctx), registry.shards());
}

} // namespace billing
