#pragma once
// A token bucket: the per-key rate limit of the API edges (`rate=R/s
// burst=B` in an api_keys entry). Pure: time is a parameter (nanoseconds on
// any monotonic clock), nothing here reads a clock or locks; the caller
// (net/key_limits) holds one per key and serialises access to it.
//
// The bucket starts full (B tokens) and refills at R tokens a second up to B;
// each request takes one. A refused request learns how long until a token is
// there (the Retry-After of HTTP 429, rounded up to whole seconds there).

#include <algorithm>
#include <cstdint>

namespace billing {

struct rate_spec {
  double per_second = 0; // R > 0
  double burst = 0;      // B >= 1
  friend bool operator==(const rate_spec&, const rate_spec&) = default;
};

struct rate_decision {
  bool allowed = true;
  int64_t retry_after_ns = 0; // > 0 when refused: until one token is back
};

class token_bucket {
public:
  token_bucket() = default;
  token_bucket(rate_spec spec, int64_t now_ns) noexcept
    : spec_(spec), tokens_(spec.burst), last_ns_(now_ns) {}

  rate_decision take(int64_t now_ns) noexcept {
    refill(now_ns);
    if (tokens_ >= 1.0) {
      tokens_ -= 1.0;
      return {true, 0};
    }
    const double missing = 1.0 - tokens_;
    const double ns = missing / spec_.per_second * 1e9;
    return {false, std::max<int64_t>(1, static_cast<int64_t>(ns + 0.999))};
  }

  double tokens(int64_t now_ns) noexcept {
    refill(now_ns);
    return tokens_;
  }

private:
  void refill(int64_t now_ns) noexcept {
    // A clock that steps back (another thread's older reading) refills nothing.
    if (now_ns > last_ns_) {
      tokens_ = std::min(spec_.burst, tokens_ + static_cast<double>(now_ns - last_ns_) * 1e-9 * spec_.per_second);
      last_ns_ = now_ns;
    }
  }

  rate_spec spec_;
  double tokens_ = 0;
  int64_t last_ns_ = 0;
};

// Whole seconds for a Retry-After header: at least 1.
inline int64_t retry_after_seconds(int64_t retry_after_ns) noexcept {
  return std::max<int64_t>(1, (retry_after_ns + 999'999'999) / 1'000'000'000);
}

} // namespace billing
