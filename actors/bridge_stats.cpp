// bridge_stats: written by the bridge actor, read by /metrics; one mutex.
#include "actors/bridge.hpp"

#include <algorithm>

namespace billing {

void bridge_stats::count(const std::string& signal, settle_kind k) {
  std::lock_guard<std::mutex> lock{mu_};
  auto& c = data_.by_signal[signal];
  switch (k) {
    case settle_kind::delivered: ++c.delivered; break;
    case settle_kind::retry: ++c.retried; break;
    case settle_kind::dead: ++c.dead; break;
  }
}

void bridge_stats::observe_latency(int64_t ms) {
  ms = std::max<int64_t>(ms, 0);
  auto it = std::lower_bound(bridge_latency_bounds_ms.begin(), bridge_latency_bounds_ms.end(), ms);
  std::lock_guard<std::mutex> lock{mu_};
  ++data_.buckets[static_cast<size_t>(it - bridge_latency_bounds_ms.begin())];
  ++data_.latency_count;
  data_.latency_sum_ms += ms;
}

bridge_stats::snapshot_type bridge_stats::snapshot() const {
  std::lock_guard<std::mutex> lock{mu_};
  return data_;
}

} // namespace billing
