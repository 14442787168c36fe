#pragma once
// Wires the parts into one running service and runs it until SIGINT or
// SIGTERM. Start order: persistence, provider, registry, gateway, sweeper,
// HTTP edge; stop in reverse (drain HTTP first, flush the writer last).

#include "app/config.hpp"

namespace billing::app {

// Returns the process exit code. The caller has blocked SIGINT and SIGTERM
// in every thread (see main), so they are consumed here with sigwait.
int serve(const config& c);

// `billingd migrate`: applies pending migrations; exit code.
int migrate(const config& c);

} // namespace billing::app
