// Request bodies and caller ids: the strict JSON rules (duplicate keys, depth),
// parse_create_invoice's validation naming the field, and check_id.

#include "protocol/json_codec.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

using namespace billing;
using json = nlohmann::json;

namespace {

constexpr auto invalid = billing_errc::invalid_argument;

// A valid create body with `extra` spliced in after the opening brace, so a
// case can repeat or override one key.
std::string body_with(const std::string& extra = "", const std::string& currency = R"("usd")") {
  return "{" + extra + R"("shipment_id":"s-1","user_id":"u-1","workflow_id":"w-1",)"
         + R"("amount_cents":12500,"currency":)" + currency + "}";
}

failure failure_of(const result<create_invoice_request>& r) {
  REQUIRE_FALSE(ok(r));
  return std::get<failure>(r);
}

failure strict_failure(std::string_view body) {
  auto r = parse_json_strict(body);
  REQUIRE_FALSE(ok(r));
  return std::get<failure>(r);
}

std::string nested(std::size_t depth, const std::string& open, const std::string& close,
                   const std::string& inner = "1") {
  std::string s;
  for (std::size_t i = 0; i < depth; ++i)
    s += open;
  s += inner;
  for (std::size_t i = 0; i < depth; ++i)
    s += close;
  return s;
}

} // namespace

TEST_CASE("parse_json_strict refuses a repeated key anywhere, naming its path", "[json_codec]") {
  struct row {
    const char* body;
    const char* path;
  };
  const std::vector<row> rows = {
    {R"({"a":1,"a":2})", "a"},
    {R"({"a":1,"a":1})", "a"}, // same value: still refused
    {R"({"a":1,"b":2,"a":3})", "a"},
    {R"({"a":{"x":1},"a":2})", "a"},
    {R"({"a":[1],"a":[1]})", "a"},
    {R"({"":1,"":2})", ""},
    {R"({"a":{"b":1,"b":2}})", "a.b"},
    {R"({"a":{"b":{"c":null,"c":null}}})", "a.b.c"},
    {R"({"items":[{"sku":"x"},{"sku":"y","sku":"z"}]})", "items[1].sku"},
    {R"([{"k":1},{"k":1,"k":2}])", "[1].k"},
    {R"([[0,{"k":1,"k":2}]])", "[0][1].k"},
    {R"({"m":{"a":1},"n":{"a":1,"b":[{"c":1,"c":2}]}})", "n.b[0].c"},
    {R"({"a\u0062":1,"ab":2})", "ab"}, // the same key once unescaped
    {R"({"caf\u00e9":1,"café":2})", "café"},
  };
  for (const auto& r : rows) {
    INFO(r.body);
    auto f = strict_failure(r.body);
    CHECK(f.code == invalid);
    CHECK(f.field == r.path);
    CHECK(f.message == "duplicate key \"" + std::string{r.path} + "\"");
  }
}

TEST_CASE("parse_json_strict accepts what is merely similar", "[json_codec]") {
  for (const char* body : {
         R"({"a":1,"A":2})",
         R"({"a":{"a":1}})",                 // same key, different objects
         R"({"x":{"k":1},"y":{"k":1}})",
         R"([{"k":1},{"k":2}])",
         R"({"a":1,"a ":2})",
         R"([1,1,1])",
         R"("text")",
         R"(42)",
         R"({})",
       }) {
    INFO(body);
    auto r = parse_json_strict(body);
    REQUIRE(ok(r));
    CHECK(std::get<json>(r) == json::parse(body));
  }
}

TEST_CASE("parse_json_strict builds the same document as nlohmann's parser", "[json_codec]") {
  const char* body = R"({"s":"v\n\u00e9","i":-7,"u":18446744073709551615,"f":1.5,"t":true,)"
                     R"("n":null,"a":[1,[2,[3,{}]],{"k":[]}],"o":{"p":{"q":"r"}}})";
  auto r = parse_json_strict(body);
  REQUIRE(ok(r));
  const auto& doc = std::get<json>(r);
  CHECK(doc == json::parse(body));
  CHECK(doc["u"].is_number_unsigned());
  CHECK(doc["i"].is_number_integer());
  CHECK(doc["f"].is_number_float());
}

TEST_CASE("parse_json_strict bounds nesting at max_json_depth", "[json_codec]") {
  REQUIRE(max_json_depth == 32);
  for (auto [open, close] : {std::pair{"[", "]"}, std::pair{"{\"k\":", "}"}}) {
    INFO(open);
    CHECK(ok(parse_json_strict(nested(max_json_depth, open, close))));
    auto f = strict_failure(nested(max_json_depth + 1, open, close));
    CHECK(f.code == invalid);
    CHECK(f.message == "the body nests objects and arrays deeper than 32 levels");
    // Far deeper than any stack would allow a recursive parser: refused at level 33.
    CHECK(strict_failure(nested(200'000, open, close)).message == f.message);
  }
  // The path names where the 33rd level starts.
  auto f = strict_failure(nested(max_json_depth + 1, "{\"k\":", "}"));
  std::string path = "k";
  for (std::size_t i = 1; i < max_json_depth; ++i)
    path += ".k";
  CHECK(f.field == path);
  // {"a":[0,[[...]]]}: the object, a, then 31 arrays; the 33rd level is refused
  // where it starts: a's element 1, then element 0 of each enclosing array.
  std::string mixed_path = "a[1]";
  for (std::size_t i = 0; i < max_json_depth - 2; ++i)
    mixed_path += "[0]";
  CHECK(strict_failure(R"({"a":[0,)" + nested(max_json_depth - 1, "[", "]") + "]}").field == mixed_path);
}

TEST_CASE("parse_json_strict refuses what is not JSON", "[json_codec]") {
  for (const std::string body : {
         "", " ", "{", "}", R"({"a":1,})", R"({"a":1}{"b":2})", R"({"a":1} x)", "[1,2",
         R"({'a':1})", R"({a:1})", "nul", "01", "1.", R"({"a":1 /* comment */})", "\"\xFF\"",
         "\"\xED\xA0\x80\"", R"("\ud800")", R"({"a":1,"b")", "\xEF\xBB\xBF\xEF\xBB\xBF{}",
       }) {
    INFO(body);
    auto f = strict_failure(body);
    CHECK(f.code == invalid);
    CHECK(f.message == "the body is not valid JSON");
    CHECK(f.field.empty());
  }
}

TEST_CASE("parse_json_strict reports the first problem in reading order", "[json_codec]") {
  // A syntax error after a duplicate: the duplicate comes first.
  CHECK(strict_failure(R"({"a":1,"a":2,)").field == "a");
  CHECK(strict_failure(R"({"a":1,"a")").field == "a"); // refused at the key, before its value
  // A syntax error before a duplicate: not JSON.
  CHECK(strict_failure(R"({"a":1,,"a":2})").message == "the body is not valid JSON");
  // Two duplicates: the first one read.
  CHECK(strict_failure(R"({"b":{"c":1,"c":2},"a":1,"a":2})").field == "b.c");
}

TEST_CASE("parse_create_invoice refuses a duplicate key (last-wins amounts)", "[json_codec]") {
  // The tester's body: nlohmann alone would keep 99,999,999.
  auto f = failure_of(parse_create_invoice(
    R"({"amount_cents":1,"amount_cents":99999999,"shipment_id":"s-1","user_id":"u-1",)"
    R"("workflow_id":"w-1","currency":"usd"})"));
  CHECK(f == failure{invalid, "duplicate key \"amount_cents\"", "amount_cents"});

  for (const char* key : {"shipment_id", "user_id", "workflow_id", "amount_cents", "currency"}) {
    INFO(key);
    auto first = std::string{"\""} + key + "\":" + (std::string{key} == "amount_cents" ? "1" : "\"usd\"") + ",";
    CHECK(failure_of(parse_create_invoice(body_with(first)))
          == failure{invalid, "duplicate key \"" + std::string{key} + "\"", key});
  }
  // An optional field, and a key billingd does not read: refused all the same.
  CHECK(failure_of(parse_create_invoice(body_with(R"("expires_in_seconds":60,"expires_in_seconds":120,)")))
          .field == "expires_in_seconds");
  CHECK(failure_of(parse_create_invoice(body_with(R"("note":"a","note":"b",)"))).field == "note");
  CHECK(failure_of(parse_create_invoice(body_with(R"("meta":{"x":1,"x":2},)"))).field == "meta.x");
}

TEST_CASE("parse_create_invoice accepts a valid body", "[json_codec]") {
  auto r = parse_create_invoice(body_with(R"("expires_in_seconds":3600,)", R"("EUR")"));
  REQUIRE(ok(r));
  const auto& req = std::get<create_invoice_request>(r);
  CHECK(req.shipment_id == "s-1");
  CHECK(req.user_id == "u-1");
  CHECK(req.workflow_id == "w-1");
  CHECK(req.amount_cents == 12'500);
  CHECK(req.currency == "eur"); // stored lower case
  CHECK(req.expires_in_seconds == 3600);
}

TEST_CASE("parse_create_invoice takes active ISO 4217 codes in either case", "[json_codec]") {
  for (auto [given, stored] : {std::pair{"usd", "usd"}, std::pair{"USD", "usd"}, std::pair{"Usd", "usd"},
                               std::pair{"jpy", "jpy"}, std::pair{"KWD", "kwd"}, std::pair{"clf", "clf"},
                               std::pair{"sle", "sle"}, std::pair{"VES", "ves"}}) {
    INFO(given);
    auto r = parse_create_invoice(body_with("", std::string{"\""} + given + "\""));
    REQUIRE(ok(r));
    CHECK(std::get<create_invoice_request>(r).currency == stored);
  }
}

TEST_CASE("parse_create_invoice refuses a currency that is not an active ISO 4217 code", "[json_codec]") {
  const std::string shape = "currency must be a three-letter ISO 4217 code, e.g. \"usd\"";
  const std::vector<std::pair<std::string, std::string>> rows = {
    {R"("xyz")", "currency \"xyz\" is not an active ISO 4217 code"},
    {R"("XYZ")", "currency \"XYZ\" is not an active ISO 4217 code"},
    {R"("dem")", "currency \"dem\" is not an active ISO 4217 code"},
    {R"("hrk")", "currency \"hrk\" is not an active ISO 4217 code"},
    {R"("vef")", "currency \"vef\" is not an active ISO 4217 code"},
    {R"("sll")", "currency \"sll\" is not an active ISO 4217 code"},
    {R"("xau")", "currency \"xau\" is not an active ISO 4217 code"},
    {R"("xxx")", "currency \"xxx\" is not an active ISO 4217 code"},
    {R"("us")", shape},
    {R"("usdd")", shape},
    {R"("")", shape},
    {R"("840")", shape},
    {R"("u d")", shape},
    {R"("us\u0000")", shape},
    {R"("usé")", shape}, // 4 bytes
    {R"("\u0443sd")", shape}, // Cyrillic u: 4 bytes
    {R"(840)", "currency must be a string"},
    {R"(["usd"])", "currency must be a string"},
    {R"(null)", "currency is required"},
  };
  for (const auto& [value, message] : rows) {
    INFO(value);
    CHECK(failure_of(parse_create_invoice(body_with("", value))) == failure{invalid, message, "currency"});
  }
}

TEST_CASE("parse_create_invoice keeps its other rules", "[json_codec]") {
  CHECK(failure_of(parse_create_invoice("[]")).message == "the body must be a JSON object");
  CHECK(failure_of(parse_create_invoice("{")).message == "the body is not valid JSON");
  CHECK(failure_of(parse_create_invoice(R"({"user_id":"u"})")).field == "shipment_id");
  for (const char* amount : {"0", "-1", "100000000", "18446744073709551615", "1.5", "\"5\""}) {
    INFO(amount);
    std::string body = body_with();
    body.replace(body.find("12500"), 5, amount);
    CHECK(failure_of(parse_create_invoice(body)).field == "amount_cents");
  }
  std::string max = body_with();
  max.replace(max.find("12500"), 5, std::to_string(max_amount_cents));
  REQUIRE(ok(parse_create_invoice(max)));
  CHECK(std::get<create_invoice_request>(parse_create_invoice(max)).amount_cents == max_amount_cents);
  CHECK(failure_of(parse_create_invoice(body_with(R"("expires_in_seconds":59,)"))).field == "expires_in_seconds");
  CHECK(failure_of(parse_create_invoice(
          R"({"shipment_id":"","user_id":"u-1","workflow_id":"w-1","amount_cents":1,"currency":"usd"})"))
        == failure{invalid, "shipment_id must not be empty", "shipment_id"});
  CHECK(failure_of(parse_create_invoice(
          "{\"shipment_id\":\"s-1\",\"user_id\":\"u-\\u0001\",\"workflow_id\":\"w-1\",\"amount_cents\":1,\"currency\":\"usd\"}"))
        == failure{invalid, "user_id must not contain control characters", "user_id"});
}

TEST_CASE("check_id: non-empty, bounded, no control characters, valid UTF-8", "[json_codec]") {
  const std::vector<std::pair<std::string, const char*>> accepted = {
    {"s-1", "ASCII"},
    {std::string(max_id_length, 'x'), "exactly the maximum length"},
    {"caf\xC3\xA9", "2-byte UTF-8"},
    {"\xE2\x82\xAC-42", "3-byte UTF-8"},
    {"\xF0\x9F\x93\xA6 parcel", "4-byte UTF-8"},
    {"\xF4\x8F\xBF\xBF", "max code point"},
    {"a b/c?d=e%", "punctuation and space"},
  };
  for (const auto& [value, name] : accepted) {
    INFO(name);
    CHECK_FALSE(check_id(value, "shipment_id"));
  }

  const std::vector<std::tuple<std::string, const char*, std::string>> refused = {
    {"", "empty", "shipment_id must not be empty"},
    {std::string(max_id_length + 1, 'x'), "one byte too long", "shipment_id must be at most 200 bytes"},
    {std::string(max_id_length - 1, 'x') + "\xC3\xA9", "too long counted in bytes",
     "shipment_id must be at most 200 bytes"},
    {"a\nb", "newline", "shipment_id must not contain control characters"},
    {std::string("a\0b", 3), "NUL", "shipment_id must not contain control characters"},
    {"a\x7f", "DEL", "shipment_id must not contain control characters"},
    {"\xFF", "the tester's %FF", "shipment_id must be valid UTF-8"},
    {"caf\xE9", "Latin-1", "shipment_id must be valid UTF-8"},
    {"\xC0\xAF", "overlong 2-byte", "shipment_id must be valid UTF-8"},
    {"\xE0\x80\xAF", "overlong 3-byte", "shipment_id must be valid UTF-8"},
    {"\xF0\x80\x80\xAF", "overlong 4-byte", "shipment_id must be valid UTF-8"},
    {"\xED\xA0\x80", "surrogate U+D800", "shipment_id must be valid UTF-8"},
    {"\xED\xBF\xBF", "surrogate U+DFFF", "shipment_id must be valid UTF-8"},
    {"\xF4\x90\x80\x80", "above U+10FFFF", "shipment_id must be valid UTF-8"},
    {"s-1\xE2\x82", "truncated", "shipment_id must be valid UTF-8"},
    {"\x80s-1", "stray continuation", "shipment_id must be valid UTF-8"},
  };
  for (const auto& [value, name, message] : refused) {
    INFO(name);
    auto err = check_id(value, "shipment_id");
    REQUIRE(err);
    CHECK(*err == failure{invalid, message, "shipment_id"});
  }
  // The field named is the caller's.
  CHECK(check_id("\xFF", "workflow_id")->field == "workflow_id");
  CHECK(check_id("\xFF", "workflow_id")->message == "workflow_id must be valid UTF-8");
}
