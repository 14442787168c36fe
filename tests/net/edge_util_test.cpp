// The edge's small pieces: request ids and the rate-limited warning.
#include "net/log_summary.hpp"
#include "net/request_id.hpp"

#include <catch2/catch.hpp>
#include <spdlog/sinks/ostream_sink.h>

#include <set>
#include <sstream>

using namespace billing::net;

TEST_CASE("request ids: a caller's well-formed id is kept, anything else replaced", "[net][request_id]") {
  CHECK(request_id_from("order-svc:1.2_x") == "order-svc:1.2_x");
  CHECK(request_id_from(std::string(64, 'a')) == std::string(64, 'a'));
  for (std::string bad : {std::string{}, std::string(65, 'a'), std::string{"a b"}, std::string{"a\"b"},
                          std::string{"a\nb"}, std::string{"é"}}) {
    auto id = request_id_from(bad);
    CHECK(id != bad);
    CHECK(id.size() == 16);
    CHECK(is_well_formed_request_id(id));
  }
  std::set<std::string> seen;
  for (int i = 0; i < 10'000; ++i)
    seen.insert(new_request_id());
  CHECK(seen.size() == 10'000);
}

TEST_CASE("log_summary: one line per interval, with the count held back", "[net][log_summary]") {
  std::ostringstream out;
  auto logger = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  logger->set_pattern("%v");
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);

  log_summary s{"webhook rejected", std::chrono::seconds(10)};
  const auto t0 = log_summary::clock::time_point{} + std::chrono::hours(1);
  s.warn("first", t0);
  for (int i = 0; i < 999; ++i)
    s.warn("flood " + std::to_string(i), t0 + std::chrono::seconds(1));
  s.warn("after the interval", t0 + std::chrono::seconds(11));
  s.warn("held again", t0 + std::chrono::seconds(12));
  spdlog::set_default_logger(previous);

  const auto text = out.str();
  CHECK(text == "webhook rejected: first\n"
                "webhook rejected: after the interval (999 more in the last 10 s, the latest: flood 998)\n");
  CHECK(s.total() == 1'002);
}
