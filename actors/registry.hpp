#pragma once
// The invoice registry: which actor owns which invoice in this process. A
// sharded concurrent map (one mutex per shard, held for a lookup) that any
// thread — an edge's io thread, an actor — uses to reach an invoice's actor,
// spawning it on demand. No router actor sits in the way: a message to a
// live invoice costs one mailbox, the invoice actor's own.
//
// Race-free passivation: send() counts each message on the invoice's entry
// under the shard lock before enqueueing it; an invoice actor leaves only
// through try_retire(), which erases its entry iff the actor has handled
// every message counted for it. A message counted after that finds no entry
// and spawns a fresh actor (which hydrates from the database), so nothing
// is ever sent to an actor that decided to go. An actor that dies any other
// way (killed, an exception) is forgotten by a functor attached at spawn,
// matched by actor id so it never removes a successor; the messages left in
// its mailbox are dropped and their reply_to answers `unavailable`.
//
// One entry per id means one actor per invoice in this process; across
// replicas the store's compare-and-set keeps them honest.

#include "actors/context.hpp"

#include <caf/send.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace billing {

class invoice_registry : public std::enable_shared_from_this<invoice_registry> {
public:
  // Use make(): invoice actors keep the registry alive while they run.
  static std::shared_ptr<invoice_registry> make(caf::actor_system& sys, context_ptr ctx,
                                                size_t shards);
  invoice_registry(caf::actor_system& sys, context_ptr ctx, size_t shards);
  invoice_registry(const invoice_registry&) = delete;
  invoice_registry& operator=(const invoice_registry&) = delete;

  // Sends (anonymously) one message to the actor of `id`, spawning it if
  // need be. Any thread; never blocks beyond the shard lock.
  template <class... Ts>
  void send(const invoice_id& id, Ts&&... xs) {
    caf::anon_send(actor_for_one_message(id), std::forward<Ts>(xs)...);
  }

  // Called by the invoice actor `self` that has handled `handled` messages
  // and wants to go: true (and its entry erased) iff nothing more was sent
  // to it; then it must quit at once.
  bool try_retire(const invoice_id& id, caf::actor_id self, uint64_t handled);

  // Invoice actors alive in this process (for /metrics).
  int64_t live_actors() const { return live_.load(std::memory_order_relaxed); }

  // Stops every invoice actor and forgets them (shutdown). Later sends spawn
  // fresh actors: stop the senders first.
  void stop_all();

private:
  struct entry {
    invoice_actor actor;
    uint64_t routed = 0; // messages counted for it
  };
  struct shard {
    std::mutex mu;
    std::unordered_map<invoice_id, entry> actors;
  };

  invoice_actor actor_for_one_message(const invoice_id& id);
  shard& shard_of(const invoice_id& id) {
    return shards_[std::hash<invoice_id>{}(id) % shards_.size()];
  }
  // The actor `aid` of `id` died: forget it unless it was already replaced.
  void forget(const invoice_id& id, caf::actor_id aid);

  caf::actor_system& sys_;
  context_ptr ctx_;
  std::vector<shard> shards_;
  std::atomic<int64_t> live_{0};
};

using registry_ptr = std::shared_ptr<invoice_registry>;

} // namespace billing
