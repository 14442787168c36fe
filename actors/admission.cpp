#include "actors/admission.hpp"

#include <algorithm>
#include <cmath>

namespace billing {

admission_limit::admission_limit(std::chrono::milliseconds target, size_t floor, size_t ceiling,
                                 std::chrono::milliseconds window, std::chrono::seconds memory)
  : target_ns_(std::chrono::nanoseconds(target).count()),
    floor_(std::min(floor, ceiling)),
    ceiling_(ceiling),
    window_ns_(std::max<int64_t>(std::chrono::nanoseconds(window).count(), 1)),
    memory_ns_(static_cast<double>(std::max<int64_t>(std::chrono::nanoseconds(memory).count(), 1))),
    limit_(target.count() > 0 ? std::min(floor, ceiling) : ceiling) {
}

size_t admission_limit::limit(clock::time_point now) noexcept {
  if (target_ns_ <= 0)
    return ceiling_;
  const int64_t t = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  int64_t start = window_start_ns_.load(std::memory_order_acquire);
  if (start < 0) {
    if (window_start_ns_.compare_exchange_strong(start, t, std::memory_order_acq_rel))
      completed_at_start_.store(completed_.load(std::memory_order_relaxed),
                                std::memory_order_relaxed);
    return limit_.load(std::memory_order_relaxed);
  }
  const int64_t elapsed = t - start;
  // One caller per window recomputes; the others use the current cap.
  if (elapsed >= window_ns_
      && window_start_ns_.compare_exchange_strong(start, t, std::memory_order_acq_rel)) {
    const uint64_t done = completed_.load(std::memory_order_relaxed);
    const uint64_t in_window = done - completed_at_start_.exchange(done, std::memory_order_relaxed);
    // Capacity: the peak completion rate, decaying with time constant
    // memory_ns_; the cap is capacity x target. Only the caller that won
    // the window's compare-and-set gets here, so peak_per_ns_ has one writer.
    const double rate = static_cast<double>(in_window) / static_cast<double>(elapsed);
    peak_per_ns_ = std::max(rate, peak_per_ns_ * std::exp(-static_cast<double>(elapsed) / memory_ns_));
    const double cap = peak_per_ns_ * static_cast<double>(target_ns_);
    const size_t next = cap >= static_cast<double>(ceiling_)
                          ? ceiling_
                          : std::max(floor_, static_cast<size_t>(cap));
    limit_.store(next, std::memory_order_relaxed);
  }
  return limit_.load(std::memory_order_relaxed);
}

} // namespace billing
