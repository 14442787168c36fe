#include "protocol/log_context.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <thread>

using namespace billing;

TEST_CASE("log scopes nest and restore", "[log_context]") {
  auto& c = log_context::current();
  REQUIRE(c.request_id.empty());
  {
    log_scope outer{"req-1"};
    CHECK(c.request_id == "req-1");
    CHECK(c.invoice_id.empty());
    {
      std::string inv = "inv-1";
      log_scope inner{"", inv, "evt_1"};
      inv = "changed"; // copied, not referenced
      CHECK(c.request_id == "req-1");
      CHECK(c.invoice_id == "inv-1");
      CHECK(c.event_id == "evt_1");
      log_scope::set_invoice("inv-2");
      CHECK(c.invoice_id == "inv-2");
    }
    CHECK(c.request_id == "req-1");
    CHECK(c.invoice_id.empty());
    CHECK(c.event_id.empty());
  }
  CHECK(c.request_id.empty());
}

TEST_CASE("log contexts are per thread", "[log_context]") {
  log_scope here{"main-thread"};
  std::string seen = "unset";
  std::thread{[&] { seen = log_context::current().request_id; }}.join();
  CHECK(seen.empty());
  CHECK(log_context::current().request_id == "main-thread");
}
