#pragma once
// One actor per live invoice. It serialises everything that happens to its
// invoice: requests queue and run one at a time, each ending only after the
// persistence actor confirmed its write. It holds the last committed state
// (hydrated from the database on first use) and calls the pure state
// machine; it knows nothing of HTTP or SQL. Owned by a registry shard
// (which monitors it), passivated after `idle_timeout` without requests, or
// at once when it holds no invoice (the id has no row, or the load failed).
// If it dies (killed, an exception), every request it had received and not
// answered is answered `unavailable` before it goes.

#include "actors/context.hpp"

namespace billing {

invoice_actor spawn_invoice_actor(caf::actor_system& sys, invoice_id id, context_ptr ctx,
                                  registry_actor shard);

} // namespace billing
