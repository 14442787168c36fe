#include "net/key_limits.hpp"

#include <cstdio>

namespace billing::net {

key_limits::key_limits(const api_key_store& keys, clock_fn clock) : clock_(std::move(clock)) {
  const int64_t now = clock_();
  for (auto& e : keys.entries()) {
    if (!e.rate)
      continue;
    auto k = std::make_unique<limited_key>();
    k->name = e.name;
    k->bucket = token_bucket{*e.rate, now};
    by_entry_.emplace(&e, k.get());
    keys_.push_back(std::move(k));
  }
}

std::optional<failure> key_limits::admit(const api_key_entry& key, int64_t* retry_after) {
  auto it = by_entry_.find(&key);
  if (it == by_entry_.end())
    return std::nullopt;
  limited_key& k = *it->second;
  rate_decision d;
  {
    std::lock_guard lock{k.mu};
    d = k.bucket.take(clock_());
  }
  if (d.allowed)
    return std::nullopt;
  k.limited.fetch_add(1, std::memory_order_relaxed);
  const int64_t seconds = retry_after_seconds(d.retry_after_ns);
  if (retry_after)
    *retry_after = seconds;
  char wait[32];
  std::snprintf(wait, sizeof wait, "%.3f", static_cast<double>(d.retry_after_ns) / 1e9);
  return fail(billing_errc::rate_limited,
              "the rate limit of key " + k.name + " is reached; retry in " + wait + " s");
}

std::vector<key_limits::key_count> key_limits::snapshot() const {
  std::vector<key_count> out;
  out.reserve(keys_.size());
  for (auto& k : keys_)
    out.push_back({k->name, k->limited.load(std::memory_order_relaxed)});
  return out;
}

} // namespace billing::net
