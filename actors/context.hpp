#pragma once
// What every actor in actors/ needs from the outside world, bundled once at
// start-up by app/ and shared read-only (never mutated after start).

#include "protocol/messages.hpp"
#include "protocol/secret_box.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace billing {

struct actor_settings {
  std::chrono::seconds idle_timeout{60};        // passivate an invoice actor after this
  int64_t default_expiry_seconds = 86'400;      // invoice lifetime unless the request says
  std::chrono::milliseconds request_timeout{10'000}; // any request to another actor
  std::string provider_name = "simulated";
  int max_conflict_retries = 3;                 // re-read and re-apply after a CAS conflict
  size_t max_in_flight = 20'000;                // requests the gateway accepts at once
  std::chrono::seconds sweep_interval{5};
  int32_t sweep_page = 500;
};

struct actor_context {
  actor_settings settings;
  writer_actor writer;
  reader_actor reader;
  provider_actor provider;
  std::shared_ptr<const secret_box> box;
  std::function<unix_seconds()> clock; // wall clock; tests pass a fake
};

using context_ptr = std::shared_ptr<const actor_context>;

} // namespace billing
