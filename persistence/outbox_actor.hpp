#pragma once
// The outbox actor: implements outbox_actor (protocol/messages.hpp) on an
// outbox_store of its own. Detached (it blocks in libpqxx), so the workflow
// bridge never waits behind a write batch and never blocks a scheduler
// thread. Database down: requests are answered failure{unavailable} at once
// while it reconnects with exponential backoff, attempted on the next
// request once the backoff has passed. Stop it after the bridge.

#include "persistence/outbox_store.hpp"
#include "protocol/messages.hpp"

#include <caf/actor_system.hpp>

#include <chrono>

namespace billing {

struct outbox_actor_config {
  outbox_store_options store;
  std::chrono::milliseconds backoff_min{50};
  std::chrono::milliseconds backoff_max{2'000};
};

outbox_actor spawn_outbox_actor(caf::actor_system& sys, outbox_actor_config cfg);

} // namespace billing
