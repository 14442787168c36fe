#pragma once
// The supervisor keeps long-lived actors running (billingd: the writers, the
// reader pool, the expiry sweeper, the workflow bridge). Each child comes
// from a factory; the supervisor monitors it and, when it dies of anything
// but a normal exit, spawns a new one after a backoff (backoff_min doubling
// to backoff_max; a child that stayed up stable_after starts at backoff_min
// again) and publishes the new handle in the child's actor_slot, which users
// read at each use. Log lines: "writer 0 died (<reason>); restarting in
// 200 ms", then "writer 0 restarted".
//
// Owner and threads: app/ owns the object; supervise(), stop() and the
// destructor are called from one thread (app's main thread, or a test),
// never from an actor (they wait on a scoped_actor). all_up(), down() and
// restarts() may be called from any thread (/readyz runs on io threads).
// The supervisor itself is one event-based actor that never blocks;
// factories run on it for restarts, so they must not block either (spawning
// a detached actor is fine: its blocking start runs on its own thread).
//
// Stop: stop(name) stops one child (no more restarts, an exit message with
// user_shutdown, returns once it has exited); stop() stops the others in
// reverse order of supervise() and then the supervisor actor. Nothing is
// restarted once a stop began, so shutdown never races a restart, and after
// stop() no actor of it is left running. Slots keep the last (dead) handle
// until they are dropped: drop them before the actor system goes.

#include "actors/actor_slot.hpp"

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace billing {

struct restart_policy {
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{5'000};
  std::chrono::milliseconds stable_after{30'000}; // up this long: backoff starts over
  std::chrono::milliseconds stop_timeout{60'000}; // stop(name) waits at most this
};

namespace detail {
struct supervisor_core;
}

class supervisor {
public:
  explicit supervisor(caf::actor_system& sys, restart_policy policy = {});
  ~supervisor(); // stop() unless done
  supervisor(const supervisor&) = delete;
  supervisor& operator=(const supervisor&) = delete;

  // Spawns the child now (the slot holds it on return) and keeps it running.
  // `name` is unique; it appears in logs and in down().
  template <class Handle>
  slot_ptr<Handle> supervise(std::string name, std::function<Handle()> spawn) {
    auto slot = actor_slot<Handle>::make();
    add(std::move(name), [slot, spawn = std::move(spawn)] {
      Handle h = spawn();
      slot->set(h);
      return caf::actor_cast<caf::actor>(h);
    });
    return slot;
  }

  // Every child is running (none waiting for its restart or gone). Children
  // stopped by stop(name) do not count.
  bool all_up() const;
  // The names of the children that are not running.
  std::vector<std::string> down() const;
  // How often `name` was restarted (0 for an unknown name).
  uint64_t restarts(std::string_view name) const;

  void stop(const std::string& name);
  void stop();

private:
  void add(std::string name, std::function<caf::actor()> spawn);

  caf::actor_system& sys_;
  std::shared_ptr<detail::supervisor_core> core_;
  caf::actor actor_;
};

} // namespace billing
