#include "actors/sweeper.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace billing::sweeper_detail {
// The answer of one invoice's expiry, back in the sweeper's mailbox.
struct expired_msg {
  webhook_result result;
};
} // namespace billing::sweeper_detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::sweeper_detail::expired_msg)

namespace billing {

namespace {

struct sweeper_state {
  static inline const char* name = "expiry-sweeper";
  context_ptr ctx;
  registry_ptr registry;
  bool sweeping = false;
  size_t round = 0;     // due invoices in the current round
  size_t remaining = 0; // of them, not answered yet
  size_t cancelled = 0;
  bool full_page = false;
};

using sweeper_detail::expired_msg;

caf::behavior sweeper(caf::stateful_actor<sweeper_state>* self, context_ptr ctx,
                      registry_ptr registry) {
  self->state.ctx = std::move(ctx);
  self->state.registry = std::move(registry);
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
            // One round: every due invoice expires through its own actor;
            // each answer comes back here as an expired_msg.
            st.remaining = ids.size();
            st.cancelled = 0;
            st.round = ids.size();
            st.full_page = ids.size() == static_cast<size_t>(s.sweep_page);
            auto me = caf::actor_cast<caf::actor>(self);
            for (auto& id : ids)
              st.registry->send(id, expire_atom::value, event_reply{[me](webhook_result w) {
                                  caf::anon_send(me, expired_msg{std::move(w)});
                                }});
          },
          [self](caf::error& err) {
            spdlog::warn("expiry sweep: reader did not answer: {}", caf::to_string(err));
            self->state.sweeping = false;
            self->delayed_send(self, self->state.ctx->settings.sweep_interval, tick_atom::value);
          });
    },
    [self](expired_msg& m) {
      auto& st = self->state;
      if (ok(m.result) && std::get<webhook_reply>(m.result).result == outcome::applied)
        ++st.cancelled;
      if (st.remaining == 0 || --st.remaining > 0)
        return;
      spdlog::info("expiry sweep: {} of {} due invoices expired", st.cancelled, st.round);
      st.sweeping = false;
      // A full page that made progress: more may be due now.
      if (st.full_page && st.cancelled > 0)
        self->send(self, tick_atom::value);
      else
        self->delayed_send(self, st.ctx->settings.sweep_interval, tick_atom::value);
    },
  };
}

} // namespace

caf::actor spawn_sweeper(caf::actor_system& sys, context_ptr ctx, registry_ptr registry) {
  return sys.spawn(sweeper, std::move(ctx), std::move(registry));
}

} // namespace billing
