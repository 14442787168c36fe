#pragma once
// actor_slot<Handle>: where the *current* handle of a supervised actor lives
// (actors/supervisor.hpp). The supervisor replaces it after each restart;
// users read it at each use, never keep a copy across messages.
//
// Threads: any. get() is on the hot path (every hydration load and every
// write of an invoice actor): one atomic shared_ptr load, no mutex, no
// allocation; set() happens once per restart. Between a child's death and
// its restart the slot still holds the dead handle: a request to it fails at
// once with sec::request_receiver_down, which callers answer `unavailable`.

#include <atomic>
#include <memory>
#include <utility>

namespace billing {

template <class Handle>
class actor_slot {
public:
  explicit actor_slot(Handle h = {}) : current_(std::make_shared<const Handle>(std::move(h))) {}
  actor_slot(const actor_slot&) = delete;
  actor_slot& operator=(const actor_slot&) = delete;

  Handle get() const { return *current_.load(std::memory_order_acquire); }
  void set(Handle h) {
    current_.store(std::make_shared<const Handle>(std::move(h)), std::memory_order_release);
  }

  static std::shared_ptr<actor_slot> make(Handle h = {}) {
    return std::make_shared<actor_slot>(std::move(h));
  }

private:
  std::atomic<std::shared_ptr<const Handle>> current_;
};

template <class Handle>
using slot_ptr = std::shared_ptr<actor_slot<Handle>>;

} // namespace billing
