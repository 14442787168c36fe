// The configuration table: sources, bounds, the key and retention rules, the
// simulated provider's loopback rule, and that describe() never prints a secret.
#include "app/config.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace billing::app;

namespace {

const std::string key_hash(64, 'a');

std::map<std::string, std::string> base_env() {
  return {{"BILLING_DATABASE_URL", "postgresql://billing:pw-secret@db:5432/billing"},
          {"BILLING_WEBHOOK_SECRETS", "whsec_topsecret"},
          {"BILLING_SECRET_KEY", std::string(64, '0')}};
}

std::variant<config, config_error> load(std::map<std::string, std::string> extra,
                                        std::vector<std::string> args = {}) {
  auto env = base_env();
  for (auto& [k, v] : extra)
    env[k] = v;
  return load_config(args, env);
}

std::string error_of(const std::variant<config, config_error>& r) {
  REQUIRE(std::holds_alternative<config_error>(r));
  return std::get<config_error>(r).message;
}

} // namespace

TEST_CASE("config: API keys are parsed at load, errors name the entry, never the hash", "[app][config]") {
  auto ok = load({{"BILLING_API_KEYS", "name=orders sha256=" + key_hash + " scopes=invoices:write,invoices:read"}});
  REQUIRE(std::holds_alternative<config>(ok));
  REQUIRE(std::get<config>(ok).api_keys.size() == 1);
  CHECK(std::get<config>(ok).api_keys[0].name == "orders");

  auto bad = error_of(load({{"BILLING_API_KEYS", "name=orders sha256=" + key_hash + " scopes=root"}}));
  CHECK(bad.find("api_keys entry 1 (orders)") != std::string::npos);
  CHECK(bad.find("root") != std::string::npos);
  CHECK(bad.find(key_hash) == std::string::npos);

  auto none = load({});
  REQUIRE(std::holds_alternative<config>(none));
  CHECK(std::get<config>(none).api_keys.empty()); // billingd starts and refuses every API call
}

TEST_CASE("config: retention cannot undercut Stripe's retry window", "[app][config]") {
  CHECK(error_of(load({{"BILLING_EVENT_RETENTION_DAYS", "2"}})).find("event_retention_days") != std::string::npos);
  CHECK(error_of(load({{"BILLING_OUTBOX_RETENTION_DAYS", "0"}})).find("outbox_retention_days") != std::string::npos);
  auto ok = load({{"BILLING_EVENT_RETENTION_DAYS", "3"}});
  REQUIRE(std::holds_alternative<config>(ok));
  CHECK(std::get<config>(ok).event_retention_days == 3);
  CHECK(std::get<config>(load({})).event_retention_days == 30);
}

TEST_CASE("config: the simulated provider serves only on loopback unless allowed", "[app][config]") {
  for (auto [address, loopback] : std::vector<std::pair<std::string, bool>>{
         {"127.0.0.1", true}, {"127.1.2.3", true}, {"::1", true}, {"localhost", true},
         {"0.0.0.0", false}, {"::", false}, {"10.0.0.1", false}, {"127.0.0.256", false},
         {"127.0.0", false}, {"127.0.0.1.", false}, {"127.0.0.01x", false}, {"", false}}) {
    INFO(address);
    CHECK(is_loopback(address) == loopback);
  }
  auto open = std::get<config>(load({{"BILLING_HTTP_ADDRESS", "0.0.0.0"}}));
  CHECK(serve_refusal(open).find("loopback") != std::string::npos);
  auto allowed = std::get<config>(load({{"BILLING_HTTP_ADDRESS", "0.0.0.0"}, {"BILLING_ALLOW_SIMULATED", "true"}}));
  CHECK(serve_refusal(allowed).empty());
  CHECK(serve_refusal(std::get<config>(load({}))).empty()); // 127.0.0.1 by default
}

TEST_CASE("config: describe() shows names and scopes, never a secret", "[app][config]") {
  auto c = std::get<config>(load({{"BILLING_API_KEYS", "name=orders sha256=" + key_hash + " scopes=admin"}}));
  auto text = describe(c);
  CHECK(text.find("orders (admin)") != std::string::npos);
  for (auto secret : {key_hash, std::string{"whsec_topsecret"}, std::string(64, '0'), std::string{"pw-secret"}}) {
    INFO(secret);
    CHECK(text.find(secret) == std::string::npos);
  }
}
