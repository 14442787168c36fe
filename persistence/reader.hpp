#pragma once
// Reader actors: implement reader_actor on their own connections, so reads
// never wait behind a write batch. Each reader is detached (it blocks in
// libpqxx) and owns one pg_store. Database down: requests are answered
// failure{unavailable} at once while the reader reconnects with exponential
// backoff, attempted on the next request once the backoff has passed. A
// reader that dies (killed, an exception) answers the loads it holds
// failure{unavailable}; CAF bounces what is still in its mailbox.

#include "protocol/messages.hpp"

#include <caf/actor_system.hpp>

#include <chrono>
#include <cstddef>
#include <string>

namespace billing {

struct reader_config {
  std::string url;                                     // BILLING_DATABASE_URL
  size_t readers = 2;                                  // connections / detached actors
  std::chrono::milliseconds backoff_min{50};
  std::chrono::milliseconds backoff_max{2'000};
  std::chrono::seconds connect_timeout{2};
  std::chrono::milliseconds statement_timeout{5'000};
  std::string application_name = "billingd-reader";
};

// One detached reader on one connection.
reader_actor spawn_reader(caf::actor_system& sys, reader_config cfg);

// cfg.readers detached readers behind one handle: a small dispatcher (on the
// shared scheduler, it never blocks) delegates each request round-robin.
// The readers are linked to the dispatcher: sending it an exit message
// stops them all, and one reader dying takes the pool down with it (a
// supervisor then restarts the whole pool from this function). With
// readers <= 1 this is spawn_reader().
reader_actor spawn_readers(caf::actor_system& sys, reader_config cfg);

} // namespace billing
