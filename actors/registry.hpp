#pragma once
// The invoice registry: a fixed set of shards, each an actor owning the
// invoice actors whose id hashes to it. A shard spawns an invoice actor on
// the first request for its id (the actor hydrates itself from the
// database), routes by delegation (the reply goes straight back to the
// caller) and passivates actors that report themselves idle. It monitors
// each actor it spawns: one that dies is forgotten (and logged), and the
// next request for its id spawns a fresh one. One shard per id means one
// actor per invoice in this process; across replicas the store's
// compare-and-set keeps them honest.

#include "actors/context.hpp"

#include <atomic>
#include <memory>
#include <vector>

namespace billing {

class invoice_registry {
public:
  invoice_registry(caf::actor_system& sys, context_ptr ctx, size_t shards);

  const registry_actor& shard_for(const invoice_id& id) const;
  const std::vector<registry_actor>& shards() const { return shards_; }
  // Invoice actors alive in this process (for /metrics).
  int64_t live_actors() const { return live_->load(std::memory_order_relaxed); }

private:
  std::vector<registry_actor> shards_;
  std::shared_ptr<std::atomic<int64_t>> live_ = std::make_shared<std::atomic<int64_t>>(0);
};

} // namespace billing
