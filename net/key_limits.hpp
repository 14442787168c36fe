#pragma once
// The per-key rate limits of the API edges (HTTP and gRPC share one
// instance): one token bucket (protocol/rate_limit) per configured key that
// has `rate=`, and per-key counters of refused calls for /metrics. Keys
// without a rate are never limited here (admission control bounds them), and
// webhooks never reach this: Stripe's signature is not a key.
//
// Thread-safe: each bucket has its own small mutex (held for a few
// arithmetic operations), so keys do not contend with each other. Built once
// from the key store; the store must outlive it.

#include "protocol/api_keys.hpp"
#include "protocol/errors.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace billing::net {

class key_limits {
public:
  using clock_fn = std::function<int64_t()>; // monotonic nanoseconds

  explicit key_limits(const api_key_store& keys, clock_fn clock = steady_ns);

  // Takes one request from `key`'s bucket. nullopt: go ahead; else a
  // failure{rate_limited} naming the key and the wait, and `retry_after`
  // (whole seconds, at least 1) is set for Retry-After.
  std::optional<failure> admit(const api_key_entry& key, int64_t* retry_after = nullptr);

  struct key_count {
    std::string name;
    uint64_t limited = 0; // calls refused by this key's rate limit
  };
  // Every key that has a rate limit, in configuration order.
  std::vector<key_count> snapshot() const;

  static int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
  }

private:
  struct limited_key {
    std::string name;
    std::mutex mu;
    token_bucket bucket; // guarded by mu
    std::atomic<uint64_t> limited{0};
  };
  clock_fn clock_;
  std::vector<std::unique_ptr<limited_key>> keys_;
  std::unordered_map<const api_key_entry*, limited_key*> by_entry_;
};

} // namespace billing::net
