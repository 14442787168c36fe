#include "protocol/rate_limit.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace billing;

namespace {
constexpr int64_t ms = 1'000'000; // in nanoseconds
} // namespace

TEST_CASE("token bucket: a table of takes over time", "[rate_limit]") {
  struct step {
    int64_t at_ms;
    bool allowed;
    int64_t retry_after_ms; // when refused
  };
  struct table {
    const char* name;
    rate_spec spec;
    std::vector<step> steps;
  };
  const std::vector<table> tables = {
    {"starts full: the burst passes at once, the next waits one interval",
     {10, 3},
     {{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, false, 100}, {50, false, 50}, {100, true, 0}, {100, false, 100}}},
    {"refills at the rate, never past the burst",
     {10, 2},
     {{0, true, 0}, {0, true, 0}, {10'000, true, 0}, {10'000, true, 0}, {10'000, false, 100}}},
    {"slow rates wait long", {0.5, 1}, {{0, true, 0}, {1, false, 1999}, {2'000, true, 0}}},
    {"a steady caller at the rate is never refused",
     {100, 1},
     {{0, true, 0}, {10, true, 0}, {20, true, 0}, {30, true, 0}, {35, false, 5}, {40, true, 0}}},
    {"a clock stepping back refills nothing",
     {10, 1},
     {{1'000, true, 0}, {500, false, 100}, {1'100, true, 0}}},
  };
  for (auto& t : tables) {
    DYNAMIC_SECTION(t.name) {
      token_bucket b{t.spec, 0};
      for (size_t i = 0; i < t.steps.size(); ++i) {
        auto& s = t.steps[i];
        INFO("step " << i << " at " << s.at_ms << " ms");
        auto d = b.take(s.at_ms * ms);
        CHECK(d.allowed == s.allowed);
        if (!s.allowed) {
          // Nanosecond rounding: within a microsecond of the exact wait.
          CHECK(d.retry_after_ns >= s.retry_after_ms * ms - 1'000);
          CHECK(d.retry_after_ns <= s.retry_after_ms * ms + 1'000);
        }
      }
    }
  }
}

TEST_CASE("Retry-After is whole seconds, at least one", "[rate_limit]") {
  CHECK(retry_after_seconds(1) == 1);
  CHECK(retry_after_seconds(999 * ms) == 1);
  CHECK(retry_after_seconds(1'000 * ms) == 1);
  CHECK(retry_after_seconds(1'001 * ms) == 2);
  CHECK(retry_after_seconds(2'000 * ms) == 2);
}
