#include "actors/admission.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace billing;
using namespace std::chrono_literals;
using clock_type = admission_limit::clock;

namespace {

// Completes `n` calls spread over `span`, asking for the limit as callers do.
void run_window(admission_limit& a, clock_type::time_point& now, uint64_t n,
                std::chrono::milliseconds span) {
  for (uint64_t i = 0; i < n; ++i)
    a.completed();
  now += span;
  a.limit(now);
}

} // namespace

TEST_CASE("admission: a quiet service admits the floor, not less", "[admission]") {
  admission_limit a{50ms, 256, 20'000};
  auto now = clock_type::time_point{} + 1h;
  CHECK(a.limit(now) == 256);
  run_window(a, now, 3, 100ms); // 30 calls/s x 50 ms = 1.5
  CHECK(a.limit(now) == 256);
}

TEST_CASE("admission: the cap is the peak rate times the target latency", "[admission]") {
  admission_limit a{50ms, 256, 20'000};
  auto now = clock_type::time_point{} + 1h;
  a.limit(now);
  run_window(a, now, 1'000, 100ms); // 10,000/s x 50 ms
  CHECK(a.limit(now) == 500);
  run_window(a, now, 2'000, 100ms); // 20,000/s
  CHECK(a.limit(now) == 1'000);
  // Slower now (offered load fell, or a commit stalled): capacity is still
  // ~20,000/s, so the cap stays near it instead of refusing the next burst.
  run_window(a, now, 300, 100ms);
  CHECK(a.limit(now) >= 980);
  // It forgets with a time constant of 10 s: after a minute at 3,000/s the
  // cap is 3,000/s x 50 ms (below the floor here).
  for (int w = 0; w < 600; ++w)
    run_window(a, now, 300, 100ms);
  CHECK(a.limit(now) == 256);
}

TEST_CASE("admission: below capacity a stall is not refused", "[admission]") {
  // 5,000/s offered to a service that did 12,000/s a few seconds ago: a
  // 150 ms stall puts 750 calls in flight; the cap (12,000/s x 50 ms = 600,
  // the floor 1,024) admits them.
  admission_limit a{50ms, 1'024, 20'000};
  auto now = clock_type::time_point{} + 1h;
  a.limit(now);
  for (int w = 0; w < 10; ++w)
    run_window(a, now, 1'200, 100ms);
  for (int w = 0; w < 30; ++w)
    run_window(a, now, 500, 100ms);
  CHECK(a.limit(now) >= 1'024);
  run_window(a, now, 0, 150ms); // the stall: nothing completes
  CHECK(a.limit(now) >= 750);
}

TEST_CASE("admission: the cap moves once per window, not per call", "[admission]") {
  admission_limit a{50ms, 10, 20'000};
  auto now = clock_type::time_point{} + 1h;
  a.limit(now);
  run_window(a, now, 1'000, 100ms);
  REQUIRE(a.limit(now) == 500);
  for (int i = 0; i < 5'000; ++i)
    a.completed();
  now += 99ms; // the window has not ended: same cap
  CHECK(a.limit(now) == 500);
  now += 1ms; // 5,000 calls in the 100 ms since the last window: 50,000/s x 50 ms
  CHECK(a.limit(now) == 2'500);
  run_window(a, now, 0, 100ms); // nothing done: the peak decays by e^-0.01 only
  CHECK(a.limit(now) >= 2'450);
}

TEST_CASE("admission: never above the ceiling; target 0 is no cap", "[admission]") {
  admission_limit capped{50ms, 256, 400};
  auto now = clock_type::time_point{} + 1h;
  capped.limit(now);
  run_window(capped, now, 10'000, 100ms);
  CHECK(capped.limit(now) == 400);

  admission_limit off{0ms, 256, 20'000};
  CHECK(off.limit(now) == 20'000);
  run_window(off, now, 1, 100ms);
  CHECK(off.limit(now) == 20'000);

  admission_limit small{50ms, 256, 100}; // a floor above the ceiling is the ceiling
  CHECK(small.limit(now) == 100);
}

TEST_CASE("admission: from the floor, the cap grows to the target latency", "[admission]") {
  // A server that answers in 10 ms below its capacity of 5,000 calls/s:
  // with N in flight it completes min(5,000, N / 10 ms) per second.
  admission_limit a{50ms, 16, 100'000};
  auto now = clock_type::time_point{} + 1h;
  size_t cap = a.limit(now);
  CHECK(cap == 16);
  for (int w = 0; w < 10; ++w) {
    double rate = std::min(5'000.0, static_cast<double>(cap) / 0.010);
    run_window(a, now, static_cast<uint64_t>(rate / 10.0), 100ms);
    cap = a.limit(now);
  }
  CHECK(cap == 250); // 5,000/s x 50 ms: accepted calls wait ~50 ms, the rest get 503
}
