#pragma once
// Admission control by latency, from Little's law: calls in flight = rate x
// latency. Capping the calls in flight at (capacity x target latency) holds
// the latency of accepted calls near the target when more arrives than
// billingd can finish; the excess is refused at once (503 + Retry-After)
// instead of queueing behind everything else.
//
// Capacity is the highest completion rate seen recently (a peak that decays
// with a time constant of `memory`), not the current rate: below capacity
// the current rate is just the offered load, and a cap of (offered load x
// target) refused bursts and commit stalls at 40 % of capacity (90 503s at
// 5,000/s in the earlier run-burst). `floor` absorbs a stall of a quiet or
// warming-up service: at 5,000/s a 200 ms fsync stall puts 1,000 calls in
// flight without anything being wrong.
//
// Thread-safe and lock-free: limit() is called on io threads for every call,
// completed() on actor threads. The cap is recomputed once per window by
// whichever caller first sees the window end.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace billing {

class admission_limit {
public:
  using clock = std::chrono::steady_clock;

  // target 0: no cap below `ceiling`. `floor` keeps a quiet service (whose
  // recent rate says little) from refusing the first calls of a burst.
  admission_limit(std::chrono::milliseconds target, size_t floor, size_t ceiling,
                  std::chrono::milliseconds window = std::chrono::milliseconds{100},
                  std::chrono::seconds memory = std::chrono::seconds{10});

  // The most calls that may be in flight now.
  size_t limit(clock::time_point now) noexcept;
  void completed() noexcept { completed_.fetch_add(1, std::memory_order_relaxed); }

private:
  const int64_t target_ns_;
  const size_t floor_;
  const size_t ceiling_;
  const int64_t window_ns_;
  const double memory_ns_;
  std::atomic<uint64_t> completed_{0};
  std::atomic<int64_t> window_start_ns_{-1}; // -1: not started
  std::atomic<uint64_t> completed_at_start_{0};
  std::atomic<size_t> limit_;
  double peak_per_ns_ = 0; // written only by the window's recomputing caller
};

} // namespace billing
