// Form encoding against the vectors the official SDK produced
// (form_vectors.json: stripe-node's queryStringifyRequestData on each input;
// form_vectors.test.mjs re-derives them with the installed SDK).
#include "protocol/stripe_form.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

using namespace billing::stripe;
using ojson = nlohmann::ordered_json;

namespace {

ojson vectors() {
  std::ifstream in{BILLING_STRIPE_TEST_DIR "/form_vectors.json"};
  REQUIRE(in);
  std::stringstream buf;
  buf << in.rdbuf();
  return ojson::parse(buf.str());
}

} // namespace

TEST_CASE("form_encode matches stripe-node on every vector", "[stripe][form]") {
  auto v = vectors();
  REQUIRE(v["vectors"].size() >= 20);
  for (const auto& c : v["vectors"]) {
    INFO(c["name"].get<std::string>() << ": " << c["params"].dump());
    CHECK(form_encode(c["params"]) == c["encoded"].get<std::string>());
  }
}

TEST_CASE("form_escape: what stays and what is escaped", "[stripe][form]") {
  struct row {
    std::string in, out;
  };
  const std::vector<row> rows = {
    {"", ""},
    {"AZaz09", "AZaz09"},
    {"-_.~[]", "-_.~[]"},
    {" ", "%20"},
    {"+", "%2B"},
    {"!*()'", "%21%2A%28%29%27"},
    {"&=?#/", "%26%3D%3F%23%2F"},
    {"%", "%25"},
    {"\"<>\\^`{|}", "%22%3C%3E%5C%5E%60%7B%7C%7D"},
    {std::string{"\0", 1}, "%00"},
    {"\x7f", "%7F"},
    {"é", "%C3%A9"},
    {"\xff", "%FF"}, // not UTF-8: escaped byte by byte all the same
  };
  for (auto& r : rows) {
    INFO(r.in);
    CHECK(form_escape(r.in) == r.out);
  }
  // Every byte: kept exactly when unreserved or a bracket.
  for (int b = 0; b < 256; ++b) {
    std::string s(1, static_cast<char>(b));
    bool keep = std::isalnum(b) || b == '-' || b == '_' || b == '.' || b == '~' || b == '[' || b == ']';
    INFO(b);
    CHECK((form_escape(s) == s) == keep);
    if (!keep)
      CHECK(form_escape(s).size() == 3);
  }
}

TEST_CASE("form_encode: non-object top levels encode as nothing", "[stripe][form]") {
  CHECK(form_encode(ojson::array({1, 2})).empty());
  CHECK(form_encode(ojson("x")).empty());
  CHECK(form_encode(ojson()).empty());
  CHECK(form_encode(ojson::object()).empty());
}

TEST_CASE("form_decode reverses form_encode", "[stripe][form]") {
  auto v = vectors();
  for (const auto& c : v["vectors"]) {
    auto pairs = form_decode(c["encoded"].get<std::string>());
    std::string again;
    for (auto& [k, val] : pairs) {
      if (!again.empty())
        again += '&';
      again += form_escape(k);
      again += '=';
      again += form_escape(val);
    }
    INFO(c["name"].get<std::string>());
    CHECK(again == c["encoded"].get<std::string>());
  }
  using P = std::vector<std::pair<std::string, std::string>>;
  CHECK(form_decode("a[b]=c%20d&e=") == P{{"a[b]", "c d"}, {"e", ""}});
  CHECK(form_decode("a=1+2&&b") == P{{"a", "1 2"}, {"b", ""}});
  CHECK(form_decode("a=%zz%4") == P{{"a", "%zz%4"}});
  CHECK(form_decode("a%5Bb%5D=%e2%98%95") == P{{"a[b]", "☕"}});
}
