#pragma once
// The reconcile actor: implements reconcile_store_actor (protocol/messages.hpp)
// on a reconcile_store of its own. Detached (it blocks in libpqxx). Database
// down: requests are answered failure{unavailable} at once while it
// reconnects with exponential backoff, attempted on the next request once
// the backoff has passed. Used by actors/reconciler; stopped after it.

#include "persistence/reconcile_store.hpp"
#include "protocol/messages.hpp"

#include <caf/actor_system.hpp>

#include <chrono>

namespace billing {

struct reconcile_actor_config {
  reconcile_store_options store;
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{5'000};
};

reconcile_store_actor spawn_reconcile_store(caf::actor_system& sys, reconcile_actor_config cfg);

} // namespace billing
