#pragma once
// reply_to<T>: the way back to whoever asked, carried inside the message
// itself (an edge's callback that posts to its connection, or a sweeper's).
// The invoice actors answer through it instead of CAF's request/response, so
// a webhook costs no extra mailbox for a requester actor.
//
// Exactly once: the first call counts, later calls do nothing. Always once:
// if every copy is destroyed unanswered (the message was dropped because its
// actor died, or a bug forgot it), the caller gets `unavailable`, never a
// silent hang. CAF 0.17 has no broken_promise; this is ours. Thread-safe;
// cheap to copy (one shared_ptr).

#include "protocol/errors.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <utility>

namespace billing {

template <class T>
class reply_to {
public:
  reply_to() = default;
  explicit reply_to(std::function<void(T)> fn) : s_(std::make_shared<state>(std::move(fn))) {}

  void operator()(T value) const {
    if (s_ && !s_->done.exchange(true, std::memory_order_acq_rel))
      s_->fn(std::move(value));
  }
  explicit operator bool() const noexcept { return s_ != nullptr; }

private:
  struct state {
    explicit state(std::function<void(T)> f) : fn(std::move(f)) {}
    ~state() {
      if (!done.load(std::memory_order_acquire) && fn)
        fn(T{fail(billing_errc::unavailable, "the invoice's actor stopped before it answered")});
    }
    std::function<void(T)> fn;
    std::atomic<bool> done{false};
  };
  std::shared_ptr<state> s_;
};

} // namespace billing
