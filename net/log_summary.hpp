#pragma once
// A warning that may come in floods (bad webhook signatures from a
// misconfigured or hostile sender, 503s during a database outage): the first
// occurrence is logged at once, the rest are counted and summarised in one
// line per interval ("... 1234 more in the last 10 s; last: ..."). Nothing
// is ever dropped from the count. Thread-safe (atomics and one short mutex
// for the last detail); callable from io and actor threads.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include <spdlog/spdlog.h>

namespace billing::net {

class log_summary {
public:
  using clock = std::chrono::steady_clock;

  // `what` names the kind of event in the summary line ("webhook rejected").
  log_summary(std::string what, std::chrono::milliseconds interval)
    : what_(std::move(what)), interval_(interval) {}

  // Counts one occurrence; logs `detail` now when no line was written for
  // `interval`, with the number of occurrences that were held back.
  void warn(const std::string& detail, clock::time_point now = clock::now()) {
    total_.fetch_add(1, std::memory_order_relaxed);
    const int64_t t = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    int64_t last = last_ms_.load(std::memory_order_relaxed);
    const bool due = last == never || t - last >= interval_.count();
    if (!due || !last_ms_.compare_exchange_strong(last, t)) {
      held_.fetch_add(1, std::memory_order_relaxed);
      std::lock_guard lock{mu_};
      last_detail_ = detail;
      return;
    }
    const uint64_t held = held_.exchange(0, std::memory_order_relaxed);
    if (held == 0)
      spdlog::warn("{}: {}", what_, detail);
    else
      spdlog::warn("{}: {} ({} more in the last {} s, the latest: {})", what_, detail, held,
                   (interval_.count() + 999) / 1000, latest());
  }

  uint64_t total() const noexcept { return total_.load(std::memory_order_relaxed); }

private:
  static constexpr int64_t never = INT64_MIN;
  std::string latest() {
    std::lock_guard lock{mu_};
    return last_detail_;
  }

  const std::string what_;
  const std::chrono::milliseconds interval_;
  std::atomic<int64_t> last_ms_{never};
  std::atomic<uint64_t> held_{0};
  std::atomic<uint64_t> total_{0};
  std::mutex mu_;
  std::string last_detail_;
};

} // namespace billing::net
