#pragma once
// The expiry sweeper: every `sweep_interval` it asks the database for
// unpaid invoices past expires_at (a page at a time, through the partial
// index) and sends each an expire through its invoice actor, which cancels
// at the provider first. Timers live in the database, so they survive
// restarts and cost no memory per idle invoice. One sweeper per process;
// several replicas may sweep the same invoice, compare-and-set makes the
// second one a no-op.

#include "actors/context.hpp"
#include "actors/registry.hpp"

namespace billing {

caf::actor spawn_sweeper(caf::actor_system& sys, context_ptr ctx, registry_ptr registry);

} // namespace billing
