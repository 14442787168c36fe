#include "actors/registry.hpp"

#include "actors/invoice_actor.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <unordered_map>

namespace billing {

namespace {

struct shard_state {
  static inline const char* name = "registry-shard";
  struct entry {
    invoice_actor actor;
    uint64_t routed = 0; // requests delegated to it
  };
  context_ptr ctx;
  std::shared_ptr<std::atomic<int64_t>> live;
  std::unordered_map<invoice_id, entry> actors;
  // The registered actor's id -> its key in `actors` (node keys never move).
  // A DOWN is matched by the actor, not by the invoice id, so the DOWN of an
  // actor already passivated or replaced never removes a fresh one.
  std::unordered_map<caf::actor_id, const invoice_id*> by_actor;

  void forget(std::unordered_map<invoice_id, entry>::iterator it) {
    by_actor.erase(it->second.actor.id());
    actors.erase(it);
    live->fetch_sub(1, std::memory_order_relaxed);
  }
};

using shard_ptr = registry_actor::stateful_pointer<shard_state>;

registry_actor::behavior_type shard_behavior(shard_ptr self, context_ptr ctx,
                                             std::shared_ptr<std::atomic<int64_t>> live) {
  self->state.ctx = std::move(ctx);
  self->state.live = std::move(live);
  // Stopping the shard stops its invoice actors. Not links: CAF 0.17 keeps
  // links in a list, so unlinking at each passivation costs O(live actors)
  // and a burst going idle at once costs O(n^2). A monitor is one entry on
  // the monitored actor only, gone with it.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    for (auto& [id, entry] : self->state.actors)
      self->send_exit(entry.actor, msg.reason);
    self->quit(msg.reason);
  });
  // An invoice actor died (killed, an exception): forget it, so the next
  // request spawns a fresh one that hydrates from the database. It answered
  // what it held `unavailable` (~invoice_state); CAF bounces what was still
  // in its mailbox (sec::request_receiver_down, 503 at the gateway). Passivated
  // actors were forgotten before they stopped: their DOWN finds nothing.
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    auto by = st.by_actor.find(msg.source.id());
    if (by == st.by_actor.end())
      return;
    auto it = st.actors.find(*by->second);
    spdlog::warn("invoice {}: its actor stopped ({}); the next request starts a fresh one",
                 it->first.str(), self->system().render(msg.reason));
    st.forget(it);
  });
  // The actor for `id`, spawned (and counted) on demand.
  auto route = [self](const invoice_id& id) -> invoice_actor {
    auto& st = self->state;
    auto it = st.actors.find(id);
    if (it == st.actors.end()) {
      auto actor = spawn_invoice_actor(self->system(), id, st.ctx,
                                       caf::actor_cast<registry_actor>(self));
      self->monitor(actor);
      it = st.actors.emplace(id, shard_state::entry{std::move(actor), 0}).first;
      st.by_actor.emplace(it->second.actor.id(), &it->first);
      st.live->fetch_add(1, std::memory_order_relaxed);
    }
    ++it->second.routed;
    return it->second.actor;
  };
  return {
    [self, route](create_atom, const invoice_id& id, create_invoice_request& req) {
      return self->delegate(route(id), create_atom::value, std::move(req));
    },
    [self, route](get_atom, const invoice_id& id) {
      return self->delegate(route(id), get_atom::value);
    },
    [self, route](cancel_atom, const invoice_id& id) {
      return self->delegate(route(id), cancel_atom::value);
    },
    [self, route](event_atom, const invoice_id& id, incoming_event& ev) {
      return self->delegate(route(id), event_atom::value, std::move(ev));
    },
    [self, route](expire_atom, const invoice_id& id) {
      return self->delegate(route(id), expire_atom::value);
    },
    [self](idle_atom, const invoice_id& id, uint64_t handled) {
      auto& st = self->state;
      auto it = st.actors.find(id);
      // A request routed after the actor reported idle makes the report
      // stale; so does a report from an actor this shard no longer routes to
      // (its successor for the same id may have routed as many).
      if (it == st.actors.end() || it->second.routed != handled
          || self->current_sender() != caf::actor_cast<caf::strong_actor_ptr>(it->second.actor))
        return;
      self->send(it->second.actor, stop_atom::value);
      st.forget(it);
    },
    [self](stats_atom) -> uint64_t { return self->state.actors.size(); },
  };
}

} // namespace

invoice_registry::invoice_registry(caf::actor_system& sys, context_ptr ctx, size_t shards) {
  if (shards == 0)
    shards = 1;
  shards_.reserve(shards);
  for (size_t i = 0; i < shards; ++i)
    shards_.push_back(sys.spawn(shard_behavior, ctx, live_));
}

const registry_actor& invoice_registry::shard_for(const invoice_id& id) const {
  return shards_[std::hash<invoice_id>{}(id) % shards_.size()];
}

} // namespace billing
