#pragma once
// Retention: a detached actor on its own connection that, every `interval`,
// deletes webhook_events received longer than `event_retention` ago and
// delivered outbox rows created longer than `outbox_retention` ago, a chunk
// at a time (short statements, no long locks), so the tables a transition
// touches stay small. The dedupe window must outlast Stripe's retries
// (3 days): app/ refuses a shorter event_retention.
//
// Owner: app/ (supervised). It blocks in libpqxx, hence detached. Database
// down: the run is skipped and the next interval tries again.

#include "protocol/messages.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <chrono>
#include <string>

namespace billing {

struct pruner_config {
  std::string url;
  std::chrono::seconds interval{600};
  std::chrono::seconds event_retention{30 * 86'400};
  std::chrono::seconds outbox_retention{7 * 86'400};
  int32_t chunk = 5'000;            // rows per statement
  int32_t max_chunks_per_run = 200; // then the rest waits for the next run
};

caf::actor spawn_pruner(caf::actor_system& sys, pruner_config cfg);

} // namespace billing
