#include "actors/registry.hpp"

#include "actors/invoice_actor.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace billing {

std::shared_ptr<invoice_registry> invoice_registry::make(caf::actor_system& sys, context_ptr ctx,
                                                         size_t shards) {
  return std::make_shared<invoice_registry>(sys, std::move(ctx), shards);
}

invoice_registry::invoice_registry(caf::actor_system& sys, context_ptr ctx, size_t shards)
  : sys_(sys), ctx_(std::move(ctx)), shards_(shards == 0 ? 1 : shards) {}

invoice_actor invoice_registry::actor_for_one_message(const invoice_id& id) {
  auto& s = shard_of(id);
  std::lock_guard lock{s.mu};
  auto it = s.actors.find(id);
  if (it == s.actors.end()) {
    auto actor = spawn_invoice_actor(sys_, id, ctx_, shared_from_this());
    // Runs when the actor terminates, however it does. A retired actor's
    // entry is gone already; a killed one is forgotten here.
    caf::actor_cast<caf::abstract_actor*>(actor)->attach_functor(
      [weak = weak_from_this(), id, aid = actor.id()](const caf::error& reason) {
        if (auto self = weak.lock()) {
          if (reason && reason != caf::exit_reason::user_shutdown)
            spdlog::warn("invoice {}: its actor stopped ({}); the next message starts a fresh one",
                         id.str(), caf::to_string(reason));
          self->forget(id, aid);
        }
      });
    it = s.actors.emplace(id, entry{std::move(actor), 0}).first;
    live_.fetch_add(1, std::memory_order_relaxed);
  }
  ++it->second.routed;
  return it->second.actor;
}

bool invoice_registry::try_retire(const invoice_id& id, caf::actor_id self, uint64_t handled) {
  auto& s = shard_of(id);
  std::lock_guard lock{s.mu};
  auto it = s.actors.find(id);
  if (it == s.actors.end() || it->second.actor.id() != self || it->second.routed != handled)
    return false;
  s.actors.erase(it);
  live_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

void invoice_registry::forget(const invoice_id& id, caf::actor_id aid) {
  auto& s = shard_of(id);
  std::lock_guard lock{s.mu};
  auto it = s.actors.find(id);
  if (it == s.actors.end() || it->second.actor.id() != aid)
    return;
  s.actors.erase(it);
  live_.fetch_sub(1, std::memory_order_relaxed);
}

void invoice_registry::stop_all() {
  for (auto& s : shards_) {
    std::unordered_map<invoice_id, entry> gone;
    {
      std::lock_guard lock{s.mu};
      gone.swap(s.actors);
    }
    live_.fetch_sub(static_cast<int64_t>(gone.size()), std::memory_order_relaxed);
    for (auto& [id, e] : gone)
      caf::anon_send_exit(e.actor, caf::exit_reason::user_shutdown);
  }
}

} // namespace billing
