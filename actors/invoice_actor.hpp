#pragma once
// One actor per live invoice. It serialises everything that happens to its
// invoice with CAF's own mailbox: while it waits for the database or the
// provider it awaits the answer (CAF's `await`), so the next message stays
// in the mailbox until this one is done; there is no queue of its own. It
// holds the last committed state (hydrated from the database on first use),
// calls the pure state machine, writes through the writer, and answers
// through the reply_to each message carries (protocol/reply.hpp), only after
// the write committed. It knows nothing of HTTP or SQL.
//
// Lifecycle: spawned by the invoice_registry for the first message to its
// id; retires through the registry (race-free, see registry.hpp) after
// `idle_timeout` without messages, or at once when it holds no invoice (the
// id has no row, or its copy must be re-read after a failed load or an
// uncertain write), so reads of ids that do not exist fill no memory. If it
// dies, every reply it held or that sat in its mailbox answers
// `unavailable` (reply_to's destructor).

#include "actors/context.hpp"

namespace billing {

class invoice_registry;

invoice_actor spawn_invoice_actor(caf::actor_system& sys, invoice_id id, context_ptr ctx,
                                  std::shared_ptr<invoice_registry> registry);

} // namespace billing
