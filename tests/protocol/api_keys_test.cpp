#include "protocol/api_keys.hpp"

#include <catch2/catch.hpp>

using namespace billing;

namespace {

const std::string orders_key = "bk_" + std::string(43, 'A');
const std::string ops_key = "bk_" + std::string(42, 'b') + "_";

std::string keys_config() {
  return "name=orders sha256=" + to_hex(sha256_of(orders_key)) + " scopes=invoices:write,invoices:read;\n"
         "# a comment line\n"
         "name=ops sha256=" + to_hex(sha256_of(ops_key)) + " scopes=admin";
}

api_key_store store() {
  auto parsed = parse_api_keys(keys_config());
  REQUIRE(ok(parsed));
  return api_key_store{std::get<std::vector<api_key_entry>>(parsed)};
}

} // namespace

TEST_CASE("scopes round-trip by name", "[api_keys]") {
  for (size_t i = 0; i < scope_count; ++i) {
    auto s = static_cast<scope>(i);
    CHECK(parse_scope(to_string(s)) == s);
  }
  CHECK_FALSE(parse_scope("invoices"));
  CHECK_FALSE(parse_scope("Admin"));
  auto set = parse_scopes("invoices:read, admin");
  REQUIRE(ok(set));
  CHECK(std::get<scope_set>(set).has(scope::admin));
  CHECK(std::get<scope_set>(set).has(scope::invoices_read));
  CHECK_FALSE(std::get<scope_set>(set).has(scope::invoices_write));
  CHECK(to_string(std::get<scope_set>(set)) == "invoices:read,admin");
  CHECK_FALSE(ok(parse_scopes("")));
  CHECK_FALSE(ok(parse_scopes("admin,root")));
}

TEST_CASE("the key configuration parses, and says what is wrong without the hash", "[api_keys]") {
  auto parsed = parse_api_keys(keys_config());
  REQUIRE(ok(parsed));
  auto& keys = std::get<std::vector<api_key_entry>>(parsed);
  REQUIRE(keys.size() == 2);
  CHECK(keys[0].name == "orders");
  CHECK(keys[1].scopes == scope_set{scope::admin});
  CHECK(parse_api_keys(config_entry(keys[0])) == result<std::vector<api_key_entry>>{std::vector{keys[0]}});
  CHECK(std::get<std::vector<api_key_entry>>(parse_api_keys("")).empty());

  const std::string hash = to_hex(sha256_of(orders_key));
  struct bad_case {
    std::string text;
    std::string says;
  };
  const std::vector<bad_case> bad = {
    {"name=a scopes=admin", "sha256= is missing"},
    {"sha256=" + hash + " scopes=admin", "name= is missing"},
    {"name=a sha256=" + hash, "scopes= is missing"},
    {"name=a sha256=abc scopes=admin", "64 hex"},
    {"name=a sha256=" + std::string(64, 'g') + " scopes=admin", "64 hex"},
    {"name=A sha256=" + hash + " scopes=admin", "name must be"},
    {"name=-a sha256=" + hash + " scopes=admin", "name must be"},
    {"name=" + std::string(65, 'a') + " sha256=" + hash + " scopes=admin", "name must be"},
    {"name=a sha256=" + hash + " scopes=root", "unknown scope 'root'"},
    {"name=a sha256=" + hash + " scopes=", "at least one scope"},
    {"name=a sha256=" + hash + " scopes=admin color=5", "unknown field 'color'"},
    {"name=a sha256=" + hash + " scopes=admin rate=5", "rate must be requests per second"},
    {"name=a sha256=" + hash + " scopes=admin rate=0/s", "rate must be requests per second"},
    {"name=a sha256=" + hash + " scopes=admin rate=-1/s", "rate must be requests per second"},
    {"name=a sha256=" + hash + " scopes=admin rate=1.2.3/s", "rate must be requests per second"},
    {"name=a sha256=" + hash + " scopes=admin rate=.5/s", "rate must be requests per second"},
    {"name=a sha256=" + hash + " scopes=admin rate=2000000/s", "rate must be requests per second"},
    {"name=a sha256=" + hash + " scopes=admin rate=1e3/s", "rate must be requests per second"},
    {"name=a sha256=" + hash + " scopes=admin rate=5/s rate=6/s", "rate given twice"},
    {"name=a sha256=" + hash + " scopes=admin rate=5/s burst=0", "burst must be a whole number"},
    {"name=a sha256=" + hash + " scopes=admin rate=5/s burst=2.5", "burst must be a whole number"},
    {"name=a sha256=" + hash + " scopes=admin rate=5/s burst=3 burst=3", "burst given twice"},
    {"name=a sha256=" + hash + " scopes=admin burst=3", "burst= needs rate="},
    {"name=a name=b sha256=" + hash + " scopes=admin", "name given twice"},
    {"name=a sha256=" + hash + " scopes=admin sha256=" + hash, "sha256 given twice"},
    {"name=a sha256=" + hash + " scopes=admin scopes=admin", "scopes given twice"},
    {"name=a " + hash + " scopes=admin", "without '='"},
    {"name=a sha256=" + hash + " scopes=admin; name=a sha256=" + std::string(64, '0') + " scopes=admin",
     "another key has this name"},
    {"name=a sha256=" + hash + " scopes=admin; name=b sha256=" + hash + " scopes=admin",
     "the same key is configured as a"},
  };
  for (auto& c : bad) {
    DYNAMIC_SECTION(c.says) {
      auto r = parse_api_keys(c.text);
      REQUIRE_FALSE(ok(r));
      auto& f = std::get<failure>(r);
      CHECK(f.message.find(c.says) != std::string::npos);
      CHECK(f.message.find("api_keys entry") == 0);
      CHECK(f.message.find(hash) == std::string::npos); // never echoes a hash
    }
  }
}

TEST_CASE("Authorization: Bearer is parsed as RFC 6750 says", "[api_keys]") {
  CHECK(bearer_token("Bearer abc") == std::string_view{"abc"});
  CHECK(bearer_token("bearer abc") == std::string_view{"abc"});
  CHECK(bearer_token("BEARER   abc  ") == std::string_view{"abc"});
  CHECK_FALSE(bearer_token("Bearer"));
  CHECK_FALSE(bearer_token("Bearer "));
  CHECK_FALSE(bearer_token("Bearerabc"));
  CHECK_FALSE(bearer_token("Basic YWxhZGRpbjpvcGVuc2VzYW1l"));
  CHECK_FALSE(bearer_token("Bearer a b"));
  CHECK_FALSE(bearer_token(std::string_view{"Bearer a\0b", 10}));
  CHECK_FALSE(bearer_token("Bearer \xc3\xa9"));
}

TEST_CASE("authorize: the auth matrix", "[api_keys]") {
  auto keys = store();
  auto bearer = [](const std::string& k) { return "Bearer " + k; };
  SECTION("no header, a malformed header, an unknown key") {
    auto r = keys.authorize("", scope::invoices_read);
    REQUIRE(std::holds_alternative<auth_failure>(r));
    CHECK(std::get<auth_failure>(r).code == auth_errc::missing);
    r = keys.authorize("Basic abc", scope::invoices_read);
    CHECK(std::get<auth_failure>(r).code == auth_errc::malformed);
    r = keys.authorize(bearer("bk_" + std::string(43, 'C')), scope::invoices_read);
    CHECK(std::get<auth_failure>(r).code == auth_errc::unknown_key);
    // The hash itself is not a key.
    r = keys.authorize(bearer(to_hex(sha256_of(orders_key))), scope::invoices_read);
    CHECK(std::get<auth_failure>(r).code == auth_errc::unknown_key);
    // Nor is a key that differs in one character.
    auto near = orders_key;
    near.back() = 'B';
    r = keys.authorize(bearer(near), scope::invoices_read);
    CHECK(std::get<auth_failure>(r).code == auth_errc::unknown_key);
  }
  SECTION("a known key without the scope") {
    auto r = keys.authorize(bearer(ops_key), scope::invoices_write);
    REQUIRE(std::holds_alternative<auth_failure>(r));
    auto& f = std::get<auth_failure>(r);
    CHECK(f.code == auth_errc::missing_scope);
    CHECK(f.needed == scope::invoices_write);
    CHECK(f.key_name == "ops");
  }
  SECTION("a known key with the scope") {
    auto r = keys.authorize(bearer(orders_key), scope::invoices_write);
    REQUIRE(std::holds_alternative<caller>(r));
    CHECK(std::get<caller>(r).name() == "orders");
    CHECK(std::holds_alternative<caller>(keys.authorize(bearer(ops_key), scope::admin)));
  }
  SECTION("no keys configured: nobody gets in") {
    api_key_store none;
    CHECK(std::get<auth_failure>(none.authorize(bearer(orders_key), scope::invoices_read)).code
          == auth_errc::unknown_key);
  }
}

TEST_CASE("keys have one shape", "[api_keys]") {
  CHECK(is_well_formed_key(orders_key));
  CHECK(is_well_formed_key(ops_key));
  CHECK_FALSE(is_well_formed_key("bk_short"));
  CHECK_FALSE(is_well_formed_key("xx_" + std::string(43, 'A')));
  CHECK_FALSE(is_well_formed_key("bk_" + std::string(42, 'A') + "="));
}

TEST_CASE("rate= and burst= set a key's rate limit", "[api_keys]") {
  const std::string hash = to_hex(sha256_of(orders_key));
  struct good_case {
    std::string fields;
    std::optional<rate_spec> rate;
  };
  const std::vector<good_case> good = {
    {"", std::nullopt},
    {" rate=50/s burst=100", rate_spec{50, 100}},
    {" rate=50/s", rate_spec{50, 50}},
    {" rate=0.5/s", rate_spec{0.5, 1}},
    {" rate=2.5/s", rate_spec{2.5, 3}},
    {" burst=7 rate=3/s", rate_spec{3, 7}},
    {" rate=1000000/s burst=1000000", rate_spec{1'000'000, 1'000'000}},
  };
  for (auto& c : good) {
    DYNAMIC_SECTION("fields '" << c.fields << "'") {
      auto parsed = parse_api_keys("name=a sha256=" + hash + " scopes=admin" + c.fields);
      REQUIRE(ok(parsed));
      auto& keys = std::get<std::vector<api_key_entry>>(parsed);
      REQUIRE(keys.size() == 1);
      CHECK(keys[0].rate == c.rate);
      // What `billingd keys new` prints parses back to the same entry.
      CHECK(parse_api_keys(config_entry(keys[0])) == parsed);
    }
  }
}
