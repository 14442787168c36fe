// Unit tests for protocol/stripe_event: every fixture in tests/data/events
// parses to exactly the expected fields and invoice_event; malformed bodies
// (truncated at every offset, wrong types, missing fields, huge numbers, deep
// nesting, invalid UTF-8, 10 MB bodies, duplicates) give the named error and
// never crash; key order does not matter.
#include "protocol/stripe_event.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using billing::event_kind;
using billing::event_parse_errc;
using billing::event_parse_error;
using billing::parse_stripe_event;
using billing::stripe_event;
using billing::stripe_object_kind;
using billing::to_invoice_event;
using ojson = nlohmann::ordered_json;

namespace {

const std::string events_dir = std::string(BILLING_TEST_DATA_DIR) + "/events/";

std::string fixture(const std::string& name) {
  const std::string path = events_dir + name + ".json";
  std::ifstream in(path, std::ios::binary);
  INFO("reading " << path);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  REQUIRE(!ss.str().empty());
  return ss.str();
}

stripe_event must_parse(std::string_view body) {
  auto r = parse_stripe_event(body);
  if (const auto* e = std::get_if<event_parse_error>(&r))
    FAIL("unexpected parse error: " << e->message());
  return std::get<stripe_event>(std::move(r));
}

event_parse_error must_fail(std::string_view body) {
  auto r = parse_stripe_event(body);
  if (const auto* ev = std::get_if<stripe_event>(&r))
    FAIL("parsed, but an error was expected (event " << ev->id.str() << ")");
  return std::get<event_parse_error>(std::move(r));
}

#define CHECK_ERROR(body, errc, path)                                  \
  do {                                                                 \
    const event_parse_error err_ = must_fail(body);                    \
    CHECK(billing::to_string(err_.code) == billing::to_string(errc));  \
    CHECK(err_.field == (path));                                       \
  } while (0)

// A small, valid event; `obj` is the inside of data.object, `top` extra
// top-level members (with a leading comma).
std::string minimal(const std::string& obj = R"("id":"pi_1","object":"payment_intent")",
                    const std::string& top = "") {
  return R"({"id":"evt_1","type":"payment_intent.succeeded","created":1720771823,"data":{"object":{)" +
         obj + "}}" + top + "}";
}

// Replaces the value at `pointer` of a fixture with raw JSON text (so numbers
// nlohmann cannot represent, like 99999999999999999999, stay verbatim), or
// removes the member when raw is empty.
std::string mutate(const std::string& name, const std::string& pointer, const std::string& raw) {
  ojson j = ojson::parse(fixture(name));
  const ojson::json_pointer ptr(pointer);
  if (raw.empty()) {
    j.at(ptr.parent_pointer()).erase(ptr.back());
    return j.dump(2);
  }
  j[ptr] = "@@RAW@@";
  std::string s = j.dump(2);
  const auto at = s.find("\"@@RAW@@\"");
  REQUIRE(at != std::string::npos);
  s.replace(at, 9, raw);
  return s;
}

// Same members, every object's keys in reverse order.
ojson reversed(const ojson& j) {
  if (j.is_array()) {
    ojson out = ojson::array();
    for (const auto& x : j)
      out.push_back(reversed(x));
    return out;
  }
  if (!j.is_object())
    return j;
  ojson out = ojson::object();
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it)
    keys.push_back(it.key());
  for (auto it = keys.rbegin(); it != keys.rend(); ++it)
    out[*it] = reversed(j.at(*it));
  return out;
}

// Inserts `member` (`"key": value`) right after the opening brace of the
// first object that follows `after` in `body`.
std::string insert_after(std::string body, const std::string& after, const std::string& member) {
  auto at = body.find(after);
  REQUIRE(at != std::string::npos);
  at = body.find('{', at + after.size());
  REQUIRE(at != std::string::npos);
  body.insert(at + 1, member + ",");
  return body;
}

struct fixture_case {
  const char* file;
  const char* id;
  const char* type;
  int64_t created;
  stripe_object_kind kind;
  const char* object_id;
  const char* intent;
  const char* status;
  const char* payment_status;
  std::optional<int64_t> amount;
  std::optional<int64_t> amount_refunded;
  const char* currency;
  const char* invoice_id;
  const char* workflow_id;
  const char* shipment_id;
  const char* failure_code;
  const char* failure_message;
  event_kind mapped;
  std::optional<int64_t> mapped_amount;
};

constexpr const char* pi1 = "pi_3PfW3kJ8rXyZaB2c0Qm7LsKd";
constexpr const char* ch1 = "ch_3PfW3kJ8rXyZaB2c0aZ4pWq1";
constexpr const char* inv1 = "8a1c7f5e-0000-4000-8000-000000000001";
constexpr const char* wf1 = "shipment-checkout-shp_20240712_000184";
constexpr const char* shp1 = "shp_20240712_000184";
constexpr const char* inv2 = "8a1c7f5e-0000-4000-8000-000000000002";
constexpr const char* wf2 = "shipment-checkout-shp_20240712_000201";
constexpr const char* shp2 = "shp_20240712_000201";
constexpr const char* cs_b = "cs_test_b1Kc8wUr3XnA0lMqY5dSg9Ie4OtZ7hVf1pCj6RxF";
constexpr const char* pi_b = "pi_3PfX4cJ8rXyZaB2c0Ub5KaTx";
constexpr auto none = std::nullopt;
using K = stripe_object_kind;
using E = event_kind;

const std::vector<fixture_case>& fixture_cases() {
  static const std::vector<fixture_case> cases = {
    {"payment_intent.succeeded", "evt_3PfW3kJ8rXyZaB2c0vNn1x2Y", "payment_intent.succeeded", 1720771823,
     K::payment_intent, pi1, pi1, "succeeded", "", 4999, none, "eur", inv1, wf1, shp1, "", "",
     E::payment_succeeded, 4999},
    {"payment_intent.payment_failed", "evt_3PfW3kJ8rXyZaB2c0Rt5yUi8", "payment_intent.payment_failed",
     1720771822, K::payment_intent, pi1, pi1, "requires_payment_method", "", 4999, none, "eur", inv1, wf1,
     shp1, "card_declined", "Your card has insufficient funds.", E::payment_failed, 4999},
    {"payment_intent.canceled", "evt_3PfW3kJ8rXyZaB2c0Cx7bN3m", "payment_intent.canceled", 1720858212,
     K::payment_intent, pi1, pi1, "canceled", "", 4999, none, "eur", inv1, wf1, shp1, "", "",
     E::payment_canceled, 4999},
    {"payment_intent.processing", "evt_3PfW3kJ8rXyZaB2c0Pr0cS5s", "payment_intent.processing", 1720771815,
     K::payment_intent, pi1, pi1, "processing", "", 4999, none, "eur", inv1, wf1, shp1, "", "",
     E::informational, 4999},
    {"charge.refunded.full", "evt_3PfW3kJ8rXyZaB2c0Rf1uLl9", "charge.refunded", 1720944001, K::charge, ch1,
     pi1, "succeeded", "", 4999, 4999, "eur", inv1, wf1, shp1, "", "", E::refunded, 4999},
    {"charge.refunded.partial", "evt_3PfW3kJ8rXyZaB2c0Rp2aRt4", "charge.refunded", 1720944002, K::charge, ch1,
     pi1, "succeeded", "", 4999, 1500, "eur", inv1, wf1, shp1, "", "", E::refunded, 4999},
    {"charge.dispute.created", "evt_1PgB7yJ8rXyZaB2cD1sP9uTe", "charge.dispute.created", 1721030401,
     K::dispute, "dp_1PgB7xJ8rXyZaB2cN4mKq2Lw", pi1, "needs_response", "", 4999, none, "eur", "", "", "",
     "", "", E::disputed, none},
    {"checkout.session.completed.paid", "evt_1PfX1bJ8rXyZaB2cQ7nM3kLp", "checkout.session.completed",
     1720775530, K::checkout_session, "cs_test_a1Jb7vTq2WmZ9kLpX4cRf8Hd3NsY6gUe0oBi5QwE",
     "pi_3PfX1aJ8rXyZaB2c1Lk9TyUi", "complete", "paid", 12900, none, "usd", inv2, wf2, shp2, "", "",
     E::payment_succeeded, 12900},
    {"checkout.session.completed.unpaid", "evt_1PfX4dJ8rXyZaB2cUa3Np8Qr", "checkout.session.completed",
     1720775811, K::checkout_session, cs_b, pi_b, "complete", "unpaid", 12900, none, "usd", inv2, wf2, shp2,
     "", "", E::informational, 12900},
    {"checkout.session.async_payment_succeeded", "evt_1PgC2aJ8rXyZaB2cAs4Yk7Wn",
     "checkout.session.async_payment_succeeded", 1720948812, K::checkout_session, cs_b, pi_b, "complete",
     "paid", 12900, none, "usd", inv2, wf2, shp2, "", "", E::payment_succeeded, 12900},
    {"checkout.session.async_payment_failed", "evt_1PgC2bJ8rXyZaB2cAf6Hj2Mq",
     "checkout.session.async_payment_failed", 1720948815, K::checkout_session, cs_b, pi_b, "complete",
     "unpaid", 12900, none, "usd", inv2, wf2, shp2, "", "", E::payment_failed, 12900},
    {"checkout.session.expired", "evt_1PgE9zJ8rXyZaB2cEx0Pq4Rt", "checkout.session.expired", 1720861805,
     K::checkout_session, "cs_test_c2Ld9xVs4YoB1mNrZ6eTh0Jf5PuA8iWg2qDk7SyG", "", "expired", "unpaid", 12900,
     none, "usd", "8a1c7f5e-0000-4000-8000-000000000003", "shipment-checkout-shp_20240712_000219",
     "shp_20240712_000219", "", "", E::payment_canceled, 12900},
    {"customer.updated", "evt_1PfW2xJ8rXyZaB2cCu5Tm9Bn", "customer.updated", 1720771801, K::other,
     "cus_QWm4dS8hJk2LpN", "", "", "", none, none, "", "", "", "", "", "", E::informational, none},
  };
  return cases;
}

void check_matches(const stripe_event& ev, const fixture_case& c) {
  CHECK(ev.id.str() == c.id);
  CHECK(ev.type == c.type);
  CHECK(ev.created == c.created);
  CHECK_FALSE(ev.livemode);
  CHECK(ev.api_version == "2024-06-20");
  CHECK(billing::to_string(ev.object_kind) == billing::to_string(c.kind));
  CHECK(ev.object_id == c.object_id);
  CHECK(ev.intent.str() == c.intent);
  CHECK(ev.status == c.status);
  CHECK(ev.payment_status == c.payment_status);
  CHECK(ev.amount == c.amount);
  CHECK(ev.amount_refunded == c.amount_refunded);
  CHECK(ev.currency == c.currency);
  CHECK(ev.invoice_id == c.invoice_id);
  CHECK(ev.workflow_id == c.workflow_id);
  CHECK(ev.shipment_id == c.shipment_id);
  CHECK(ev.failure_code == c.failure_code);
  CHECK(ev.failure_message == c.failure_message);
}

} // namespace

TEST_CASE("every fixture parses to its exact fields and invoice_event", "[stripe_event]") {
  for (const auto& c : fixture_cases()) {
    CAPTURE(c.file);
    const std::string body = fixture(c.file);
    // The brief: realistic 2-5 KB bodies.
    CHECK(body.size() >= 2000);
    CHECK(body.size() <= 5200);
    const stripe_event ev = must_parse(body);
    check_matches(ev, c);

    const billing::invoice_event ie = to_invoice_event(ev);
    CHECK(billing::to_string(ie.kind) == billing::to_string(c.mapped));
    CHECK(ie.id == ev.id);
    CHECK(ie.created == c.created);
    CHECK(ie.amount_cents == c.mapped_amount);
    CHECK(ie.currency == c.currency);
    CHECK(ie.intent.str() == c.intent);
    CHECK(ie.failure_code == (c.mapped == E::payment_failed ? c.failure_code : ""));
    CHECK(ie.failure_message == (c.mapped == E::payment_failed ? c.failure_message : ""));
  }
}

TEST_CASE("every fixture file is in the expectation table", "[stripe_event]") {
  std::set<std::string> known;
  for (const auto& c : fixture_cases())
    known.insert(std::string(c.file) + ".json");
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(events_dir)) {
    CAPTURE(entry.path().filename().string());
    CHECK(known.count(entry.path().filename().string()) == 1);
    ++files;
  }
  CHECK(files == known.size());
}

TEST_CASE("key order, whitespace and minification do not change the result", "[stripe_event]") {
  for (const auto& c : fixture_cases()) {
    CAPTURE(c.file);
    const std::string body = fixture(c.file);
    const stripe_event expected = must_parse(body);
    const ojson j = ojson::parse(body);
    SECTION("reversed key order everywhere (type first, data.object.object last)") {
      CHECK(must_parse(reversed(j).dump()) == expected);
    }
    SECTION("alphabetical key order") {
      CHECK(must_parse(nlohmann::json::parse(body).dump()) == expected);
    }
    SECTION("minified, and wrapped in whitespace") {
      CHECK(must_parse(j.dump()) == expected);
      CHECK(must_parse(" \r\n\t" + j.dump(4) + "\n\n  ") == expected);
    }
  }
  SECTION("metadata before id, object kind last: kind-dependent fields resolve at the end") {
    const std::string body = minimal(
        R"("metadata":{"invoice_id":"inv-9"},"amount":1,"amount_total":700,"payment_status":"paid",)"
        R"("payment_intent":"pi_9","id":"cs_9","object":"checkout.session")");
    const stripe_event ev = must_parse(body);
    CHECK(ev.object_kind == K::checkout_session);
    CHECK(ev.amount == 700); // amount_total, not amount
    CHECK(ev.payment_status == "paid");
    CHECK(ev.intent.str() == "pi_9");
    CHECK(ev.invoice_id == "inv-9");
    CHECK(ev.object_id == "cs_9");
  }
  SECTION("type after data and id last") {
    const stripe_event ev = must_parse(
        R"({"created":5,"data":{"object":{"object":"charge","id":"ch_1","amount":10,"amount_refunded":10}},)"
        R"("type":"charge.refunded","id":"evt_x"})");
    CHECK(ev.id.str() == "evt_x");
    CHECK(ev.type == "charge.refunded");
    CHECK(to_invoice_event(ev).kind == E::refunded);
  }
}

TEST_CASE("kind-specific fields are kept only for their object kind", "[stripe_event]") {
  SECTION("payment_intent: intent is the object id; payment_intent field, payment_status ignored") {
    const stripe_event ev = must_parse(minimal(
        R"("id":"pi_1","object":"payment_intent","payment_intent":"pi_other","payment_status":"paid",)"
        R"("amount":5,"amount_total":6,"amount_refunded":7,"last_payment_error":{"code":"c","message":"m"})"));
    CHECK(ev.intent.str() == "pi_1");
    CHECK(ev.amount == 5);
    CHECK(ev.amount_refunded == std::nullopt);
    CHECK(ev.payment_status.empty());
    CHECK(ev.failure_code == "c");
    CHECK(ev.failure_message == "m");
  }
  SECTION("charge: last_payment_error is not read into failure fields") {
    const stripe_event ev = must_parse(minimal(
        R"("id":"ch_1","object":"charge","payment_intent":"pi_7","amount":5,"amount_refunded":2,)"
        R"("last_payment_error":{"code":"c","message":"m"})"));
    CHECK(ev.intent.str() == "pi_7");
    CHECK(ev.amount == 5);
    CHECK(ev.amount_refunded == 2);
    CHECK(ev.failure_code.empty());
    CHECK(ev.failure_message.empty());
  }
  SECTION("last_payment_error.payment_method (card details) is skipped, even if odd") {
    const stripe_event ev = must_parse(minimal(
        R"("id":"pi_1","object":"payment_intent","last_payment_error":{"payment_method":{"card":)"
        R"({"last4":4242,"exp_month":"x"},"code":5},"code":"card_declined","message":null})"));
    CHECK(ev.failure_code == "card_declined");
    CHECK(ev.failure_message.empty());
  }
}

TEST_CASE("null optional fields count as absent", "[stripe_event]") {
  const stripe_event ev = must_parse(minimal(
      R"("id":"pi_1","object":"payment_intent","amount":null,"currency":null,"status":null,)"
      R"("metadata":null,"last_payment_error":null,"payment_intent":null)",
      R"(,"livemode":null,"api_version":null)"));
  CHECK(ev.amount == std::nullopt);
  CHECK(ev.currency.empty());
  CHECK(ev.status.empty());
  CHECK(ev.invoice_id.empty());
  CHECK(ev.failure_code.empty());
  CHECK_FALSE(ev.livemode);
  CHECK(ev.api_version.empty());
  CHECK(ev.intent.str() == "pi_1");
  SECTION("and livemode true is read") {
    CHECK(must_parse(minimal(R"("id":"pi_1")", R"(,"livemode":true)")).livemode);
  }
  SECTION("no object field: kind other, other fields still read") {
    const stripe_event o = must_parse(minimal(R"("id":"x_1","amount":3,"status":"s")"));
    CHECK(o.object_kind == K::other);
    CHECK(o.amount == 3);
    CHECK(o.status == "s");
  }
}

TEST_CASE("a present field of the wrong type is an error naming it", "[stripe_event]") {
  struct row {
    const char* fixture;
    const char* pointer;
    const char* raw;
    event_parse_errc code;
    const char* field;
  };
  const char* pi = "payment_intent.payment_failed";
  const char* ch = "charge.refunded.partial";
  const char* cs = "checkout.session.completed.paid";
  using C = event_parse_errc;
  const std::vector<row> rows = {
    {pi, "/id", "123", C::wrong_type, "id"},
    {pi, "/id", "null", C::wrong_type, "id"},
    {pi, "/id", "[\"evt_1\"]", C::wrong_type, "id"},
    {pi, "/type", "true", C::wrong_type, "type"},
    {pi, "/type", "null", C::wrong_type, "type"},
    {pi, "/created", "\"1720771822\"", C::wrong_type, "created"},
    {pi, "/created", "1720771822.5", C::wrong_type, "created"},
    {pi, "/created", "null", C::wrong_type, "created"},
    {pi, "/livemode", "\"false\"", C::wrong_type, "livemode"},
    {pi, "/livemode", "0", C::wrong_type, "livemode"},
    {pi, "/api_version", "20240620", C::wrong_type, "api_version"},
    {pi, "/data", "[]", C::wrong_type, "data"},
    {pi, "/data", "null", C::wrong_type, "data"},
    {pi, "/data/object", "\"pi_3PfW3kJ8rXyZaB2c0Qm7LsKd\"", C::wrong_type, "data.object"},
    {pi, "/data/object", "null", C::wrong_type, "data.object"},
    {pi, "/data/object/id", "42", C::wrong_type, "data.object.id"},
    {pi, "/data/object/object", "{}", C::wrong_type, "data.object.object"},
    {pi, "/data/object/amount", "\"4999\"", C::wrong_type, "data.object.amount"},
    {pi, "/data/object/amount", "49.99", C::wrong_type, "data.object.amount"},
    {pi, "/data/object/amount", "true", C::wrong_type, "data.object.amount"},
    {pi, "/data/object/amount", "{\"value\":4999}", C::wrong_type, "data.object.amount"},
    {pi, "/data/object/currency", "978", C::wrong_type, "data.object.currency"},
    {pi, "/data/object/status", "[\"succeeded\"]", C::wrong_type, "data.object.status"},
    {pi, "/data/object/metadata", "\"invoice_id=1\"", C::wrong_type, "data.object.metadata"},
    {pi, "/data/object/metadata", "[]", C::wrong_type, "data.object.metadata"},
    {pi, "/data/object/metadata/invoice_id", "17", C::wrong_type, "data.object.metadata.invoice_id"},
    {pi, "/data/object/metadata/workflow_id", "null", C::wrong_type, "data.object.metadata.workflow_id"},
    {pi, "/data/object/metadata/shipment_id", "{}", C::wrong_type, "data.object.metadata.shipment_id"},
    {pi, "/data/object/metadata/note", "1.5", C::wrong_type, "data.object.metadata.note"},
    {pi, "/data/object/last_payment_error", "\"card_declined\"", C::wrong_type,
     "data.object.last_payment_error"},
    {pi, "/data/object/last_payment_error/code", "402", C::wrong_type, "data.object.last_payment_error.code"},
    {pi, "/data/object/last_payment_error/message", "false", C::wrong_type,
     "data.object.last_payment_error.message"},
    {ch, "/data/object/amount_refunded", "\"1500\"", C::wrong_type, "data.object.amount_refunded"},
    {ch, "/data/object/payment_intent", "{\"id\":\"pi_1\"}", C::wrong_type, "data.object.payment_intent"},
    {cs, "/data/object/amount_total", "\"12900\"", C::wrong_type, "data.object.amount_total"},
    {cs, "/data/object/payment_status", "true", C::wrong_type, "data.object.payment_status"},
    // Numbers: non-negative integers fitting int64.
    {pi, "/created", "-1", C::value_out_of_range, "created"},
    {pi, "/created", "99999999999999999999", C::value_out_of_range, "created"},
    {pi, "/data/object/amount", "-1", C::value_out_of_range, "data.object.amount"},
    {pi, "/data/object/amount", "1e30", C::value_out_of_range, "data.object.amount"},
    {pi, "/data/object/amount", "-1e30", C::value_out_of_range, "data.object.amount"},
    {pi, "/data/object/amount", "99999999999999999999", C::value_out_of_range, "data.object.amount"},
    {pi, "/data/object/amount", "9223372036854775808", C::value_out_of_range, "data.object.amount"},
    {pi, "/data/object/amount", "-9223372036854775809", C::value_out_of_range, "data.object.amount"},
    {pi, "/data/object/amount", "100000000000000000000000000000000000000000000000000", C::value_out_of_range,
     "data.object.amount"},
    {ch, "/data/object/amount_refunded", "-1500", C::value_out_of_range, "data.object.amount_refunded"},
    {cs, "/data/object/amount_total", "1e30", C::value_out_of_range, "data.object.amount_total"},
    // Malformed scalars where billingd reads them.
    {pi, "/data/object/amount", "12a", C::invalid_json, "data.object.amount"},
    {pi, "/data/object/amount", "0123", C::invalid_json, "data.object.amount"},
    {pi, "/data/object/amount", "nul", C::invalid_json, "data.object.amount"},
    {pi, "/data/object/status", "\"\\ud800\"", C::invalid_json, "data.object.status"},
    {pi, "/data/object/status", "\"bad \\q escape\"", C::invalid_json, "data.object.status"},
    {pi, "/livemode", "fals", C::invalid_json, "livemode"},
    // Required ids present but empty.
    {pi, "/id", "\"\"", C::empty_value, "id"},
    {pi, "/data/object/id", "\"\"", C::empty_value, "data.object.id"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.fixture, r.pointer, r.raw);
    CHECK_ERROR(mutate(r.fixture, r.pointer, r.raw), r.code, r.field);
  }
  SECTION("the largest int64 is accepted") {
    CHECK(must_parse(mutate(pi, "/data/object/amount", "9223372036854775807")).amount == INT64_MAX);
    CHECK(must_parse(mutate(pi, "/data/object/amount", "0")).amount == 0);
  }
  SECTION("validation does not depend on the object kind (unknown objects too)") {
    CHECK_ERROR(mutate("customer.updated", "/data/object/amount", "\"5\""), C::wrong_type,
                "data.object.amount");
  }
  SECTION("message() names code and field") {
    const event_parse_error e = must_fail(mutate(pi, "/data/object/amount", "\"4999\""));
    CHECK(e.message() == "wrong_type at data.object.amount");
    CHECK(must_fail("").message() == "empty_body");
  }
}

TEST_CASE("a missing required field is an error naming it", "[stripe_event]") {
  const char* pi = "payment_intent.succeeded";
  for (const char* pointer : {"/id", "/type", "/created", "/data", "/data/object", "/data/object/id"}) {
    CAPTURE(pointer);
    std::string field = std::string(pointer).substr(1);
    for (auto& ch : field)
      if (ch == '/')
        ch = '.';
    CHECK_ERROR(mutate(pi, pointer, ""), event_parse_errc::missing_field, field);
  }
  SECTION("optional fields may all be missing") {
    const stripe_event ev = must_parse(R"({"id":"e","type":"t","created":0,"data":{"object":{"id":"o"}}})");
    CHECK(ev.id.str() == "e");
    CHECK(ev.created == 0);
    CHECK(ev.object_id == "o");
    CHECK(ev.object_kind == K::other);
    CHECK(ev.amount == std::nullopt);
  }
}

TEST_CASE("documents that are empty or not objects", "[stripe_event]") {
  for (const char* body : {"", " ", " \r\n\t "})
    CHECK_ERROR(body, event_parse_errc::empty_body, "");
  for (const char* body : {"[]", "42", "null", "true", "\"evt_1\"", "[{\"id\":\"evt_1\"}]", "}"}) {
    CAPTURE(body);
    CHECK_ERROR(body, event_parse_errc::not_an_object, "");
  }
  for (const char* body : {"{", "{\"id\"", "{\"id\":}", "{,}", "{\"id\" \"evt\"}", "{\"a\":1,}"}) {
    CAPTURE(body);
    CHECK(must_fail(body).code == event_parse_errc::invalid_json);
  }
  SECTION("content after the object is invalid") {
    const std::string body = minimal();
    CHECK(must_parse(body).id.str() == "evt_1");
    CHECK_ERROR(body + " x", event_parse_errc::invalid_json, "");
    CHECK_ERROR(body + "{}", event_parse_errc::invalid_json, "");
    CHECK_ERROR(body + "}", event_parse_errc::invalid_json, "");
  }
  SECTION("an embedded NUL is invalid") {
    std::string body = minimal();
    body.insert(body.find("evt_1"), 1, '\0');
    CHECK(must_fail(body).code == event_parse_errc::invalid_json);
  }
}

TEST_CASE("a fixture truncated at every offset is an error, never a crash", "[stripe_event]") {
  for (const auto& c : fixture_cases()) {
    CAPTURE(c.file);
    std::string body = fixture(c.file);
    while (!body.empty() && (body.back() == '\n' || body.back() == ' '))
      body.pop_back();
    for (const std::string& variant : {body, ojson::parse(body).dump()}) {
      size_t bad = 0;
      size_t first_bad = variant.size();
      std::string first_bad_what;
      for (size_t n = 0; n < variant.size(); ++n) {
        // Through a fresh copy with no spare bytes, so ASan sees any overread.
        const std::unique_ptr<char[]> copy(new char[n + 1]);
        std::memcpy(copy.get(), variant.data(), n);
        auto r = parse_stripe_event(std::string_view(copy.get(), n));
        const auto* e = std::get_if<event_parse_error>(&r);
        const event_parse_errc want = n == 0 ? event_parse_errc::empty_body : event_parse_errc::invalid_json;
        if (e == nullptr || e->code != want) {
          if (bad++ == 0) {
            first_bad = n;
            first_bad_what = e ? e->message() : "parsed";
          }
        }
      }
      INFO("first unexpected result at offset " << first_bad << ": " << first_bad_what);
      CHECK(bad == 0);
      // And the whole thing still parses after all those failures.
      CHECK(must_parse(variant).id.str() == c.id);
    }
  }
}

TEST_CASE("deep nesting never crashes", "[stripe_event]") {
  const std::string deep_array = std::string(10000, '[') + std::string(10000, ']');
  std::string deep_object;
  for (int i = 0; i < 10000; ++i)
    deep_object += "{\"a\":";
  deep_object += "1" + std::string(10000, '}');
  const std::string base = fixture("payment_intent.payment_failed");
  const stripe_event expected = must_parse(base);

  SECTION("in ignored fields (skipped without a depth limit): parses") {
    CHECK(must_parse(insert_after(base, "", "\"deep\":" + deep_array)) == expected);
    CHECK(must_parse(insert_after(base, "\"object\": {", "\"deep\":" + deep_array)) == expected);
    CHECK(must_parse(insert_after(base, "\"object\": {", "\"deep\":" + deep_object)) == expected);
    CHECK(must_parse(insert_after(base, "\"payment_method\": {", "\"deep\":" + deep_array)) == expected);
    CHECK(must_parse(insert_after(base, "\"data\": {", "\"previous_attributes\":" + deep_object)) == expected);
  }
  SECTION("in a field billingd reads: wrong type") {
    CHECK_ERROR(mutate("payment_intent.payment_failed", "/data/object/amount", deep_array),
                event_parse_errc::wrong_type, "data.object.amount");
    CHECK_ERROR(mutate("payment_intent.payment_failed", "/data/object/metadata/invoice_id", deep_array),
                event_parse_errc::wrong_type, "data.object.metadata.invoice_id");
    CHECK_ERROR(mutate("payment_intent.payment_failed", "/data/object/metadata/note", deep_object),
                event_parse_errc::wrong_type, "data.object.metadata.note");
    CHECK_ERROR(mutate("payment_intent.payment_failed", "/data/object", deep_array),
                event_parse_errc::wrong_type, "data.object");
  }
  SECTION("unbalanced: invalid") {
    CHECK(must_fail(insert_after(base, "\"object\": {", "\"deep\":" + std::string(10000, '['))).code ==
          event_parse_errc::invalid_json);
    CHECK(must_fail(insert_after(base, "", "\"deep\":" + std::string(10000, '{'))).code ==
          event_parse_errc::invalid_json);
    CHECK(must_fail(std::string(10000, '[')).code == event_parse_errc::not_an_object);
    CHECK(must_fail(std::string(10000, '{')).code == event_parse_errc::invalid_json);
  }
}

TEST_CASE("invalid UTF-8 anywhere is invalid_json", "[stripe_event]") {
  const std::string base = fixture("payment_intent.payment_failed");
  struct where {
    const char* name;
    const char* needle; // replaced by itself with bad bytes appended
  };
  const where places[] = {
      {"extracted value (metadata.invoice_id)", "8a1c7f5e-0000-4000-8000-000000000001"},
      {"extracted value (last_payment_error.message)", "insufficient funds"},
      {"ignored value (billing name)", "Camille Martin"},
      {"key", "\"amount_capturable\""},
  };
  const char* bad_sequences[] = {"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82", "\xf8\x88\x80\x80\x80"};
  for (const auto& p : places) {
    for (const char* bad : bad_sequences) {
      CAPTURE(p.name, std::string(bad).size());
      std::string body = base;
      const auto at = body.find(p.needle);
      REQUIRE(at != std::string::npos);
      body.insert(at + 1, bad);
      CHECK(must_fail(body).code == event_parse_errc::invalid_json);
    }
  }
  SECTION("valid multi-byte UTF-8 is fine and kept verbatim") {
    const stripe_event ev = must_parse(mutate("payment_intent.payment_failed",
                                              "/data/object/last_payment_error/message",
                                              "\"Carte refus\xc3\xa9\x65 \\u2014 \xf0\x9f\x92\xb3\""));
    CHECK(ev.failure_message == "Carte refus\xc3\xa9" "e \xe2\x80\x94 \xf0\x9f\x92\xb3");
  }
  SECTION("documented laxness: an escaped lone surrogate in an ignored string is not looked at") {
    // On-demand validates UTF-8 and structure for the whole body, but only
    // decodes the strings billingd reads; the body is signature-verified.
    CHECK(must_parse(mutate("payment_intent.payment_failed", "/data/object/description", "\"\\ud800\"")).id.str() ==
          "evt_3PfW3kJ8rXyZaB2c0Rt5yUi8");
  }
}

TEST_CASE("10 MB bodies", "[stripe_event]") {
  const std::string base = fixture("payment_intent.succeeded");
  const stripe_event expected = must_parse(base);
  constexpr size_t ten_mb = 10u << 20;
  SECTION("valid JSON with a big ignored string: parses") {
    const std::string body = insert_after(base, "", "\"blob\":\"" + std::string(ten_mb, 'a') + "\"");
    REQUIRE(body.size() > ten_mb);
    CHECK(must_parse(body) == expected);
    CHECK(must_parse(base) == expected); // the per-thread parser still works
  }
  SECTION("valid JSON with a big ignored array inside data.object: parses") {
    std::string list = "[0";
    while (list.size() < ten_mb)
      list += ",1234567";
    list += "]";
    CHECK(must_parse(insert_after(base, "\"object\": {", "\"big_list\":" + list)) == expected);
  }
  SECTION("10 MB of random bytes: an error") {
    std::mt19937 rng(20240620);
    std::string garbage(ten_mb, '\0');
    for (auto& ch : garbage)
      ch = static_cast<char>(rng() & 0xff);
    CHECK(must_fail(garbage).code == event_parse_errc::invalid_json);
    garbage[0] = '{';
    CHECK(must_fail(garbage).code == event_parse_errc::invalid_json);
  }
  SECTION("10 MB of '{': an error") {
    CHECK(must_fail(std::string(ten_mb, '{')).code == event_parse_errc::invalid_json);
  }
}

TEST_CASE("duplicate keys: rejected where billingd reads them, ignored elsewhere", "[stripe_event]") {
  using C = event_parse_errc;
  // Parsers disagree on duplicates (first wins, last wins), so a key billingd
  // acts on must be unambiguous.
  CHECK_ERROR(R"({"id":"evt_1","id":"evt_2","type":"t","created":1,"data":{"object":{"id":"o"}}})",
              C::duplicate_field, "id");
  CHECK_ERROR(R"({"id":"evt_1","\u0069d":"evt_2","type":"t","created":1,"data":{"object":{"id":"o"}}})",
              C::duplicate_field, "id");
  CHECK_ERROR(R"({"id":"evt_1","type":"t","type":"u","created":1,"data":{"object":{"id":"o"}}})",
              C::duplicate_field, "type");
  CHECK_ERROR(R"({"id":"evt_1","type":"t","created":1,"created":2,"data":{"object":{"id":"o"}}})",
              C::duplicate_field, "created");
  CHECK_ERROR(minimal(R"("id":"o")", R"(,"data":{"object":{"id":"p"}})"), C::duplicate_field, "data");
  CHECK_ERROR(R"({"id":"e","type":"t","created":1,"data":{"object":{"id":"o"},"object":{"id":"p"}}})",
              C::duplicate_field, "data.object");
  CHECK_ERROR(minimal(R"("id":"o","id":"p")"), C::duplicate_field, "data.object.id");
  CHECK_ERROR(minimal(R"("id":"o","amount":1,"amount":2)"), C::duplicate_field, "data.object.amount");
  CHECK_ERROR(minimal(R"("id":"o","object":"charge","object":"dispute")"), C::duplicate_field,
              "data.object.object");
  CHECK_ERROR(minimal(R"("id":"o","metadata":{"invoice_id":"a","invoice_id":"b"})"), C::duplicate_field,
              "data.object.metadata.invoice_id");
  CHECK_ERROR(minimal(R"("id":"o","last_payment_error":{"code":"a","code":"b"})"), C::duplicate_field,
              "data.object.last_payment_error.code");
  SECTION("duplicates of keys billingd does not read are accepted") {
    const stripe_event ev = must_parse(minimal(
        R"("id":"o","object":"payment_intent","customer":"a","customer":"b","metadata":{"note":"1","note":"2","invoice_id":"i"},)"
        R"("last_payment_error":{"type":"x","type":"y","code":"c"})",
        R"(,"pending_webhooks":1,"pending_webhooks":2)"));
    CHECK(ev.invoice_id == "i");
    CHECK(ev.failure_code == "c");
  }
}

TEST_CASE("documented laxness: skipped values are only checked for structure", "[stripe_event]") {
  // simdjson on-demand does not look inside values it skips: a bad literal or
  // a ']' closing a '{' there goes unnoticed. Stripe's bodies are signed and
  // well-formed; the same faults in a field billingd reads are errors.
  CHECK(must_parse(minimal(R"("id":"o","x":tru)")).object_id == "o");
  CHECK(must_parse(minimal(R"("id":"o","x":[1,2})")).object_id == "o");
  // (A read field's type is decided by its first byte: `tru` is a malformed
  // boolean, so the wrong type for an amount.)
  CHECK_ERROR(minimal(R"("id":"o","amount":tru)"), event_parse_errc::wrong_type, "data.object.amount");
  CHECK_ERROR(minimal(R"("id":"o")", R"(,"livemode":tru)"), event_parse_errc::invalid_json, "livemode");
}

TEST_CASE("to_invoice_event maps types by object kind", "[stripe_event]") {
  struct row {
    const char* type;
    stripe_object_kind kind;
    const char* payment_status;
    std::optional<int64_t> amount;
    std::optional<int64_t> refunded;
    event_kind want;
  };
  const std::vector<row> rows = {
    {"payment_intent.succeeded", K::payment_intent, "", 100, none, E::payment_succeeded},
    {"payment_intent.payment_failed", K::payment_intent, "", 100, none, E::payment_failed},
    {"payment_intent.canceled", K::payment_intent, "", 100, none, E::payment_canceled},
    {"payment_intent.processing", K::payment_intent, "", 100, none, E::informational},
    {"payment_intent.requires_action", K::payment_intent, "", 100, none, E::informational},
    {"payment_intent.created", K::payment_intent, "", 100, none, E::informational},
    {"payment_intent.amount_capturable_updated", K::payment_intent, "", 100, none, E::informational},
    {"payment_intent.partially_funded", K::payment_intent, "", 100, none, E::informational},
    {"charge.refunded", K::charge, "", 100, 100, E::refunded},
    {"charge.refunded", K::charge, "", 100, 150, E::refunded},
    {"charge.refunded", K::charge, "", 100, 99, E::refunded}, // partial: the total says how much
    {"charge.refunded", K::charge, "", 100, 0, E::informational},
    {"charge.refunded", K::charge, "", 100, none, E::informational},
    {"charge.refunded", K::charge, "", none, 100, E::informational},
    {"charge.succeeded", K::charge, "", 100, 0, E::informational},
    {"charge.dispute.created", K::dispute, "", 100, none, E::disputed},
    {"charge.dispute.closed", K::dispute, "", 100, none, E::informational},
    {"checkout.session.completed", K::checkout_session, "paid", 100, none, E::payment_succeeded},
    {"checkout.session.completed", K::checkout_session, "no_payment_required", 0, none,
     E::payment_succeeded},
    {"checkout.session.completed", K::checkout_session, "unpaid", 100, none, E::informational},
    {"checkout.session.completed", K::checkout_session, "", 100, none, E::informational},
    {"checkout.session.async_payment_succeeded", K::checkout_session, "", 100, none, E::payment_succeeded},
    {"checkout.session.async_payment_failed", K::checkout_session, "", 100, none, E::payment_failed},
    {"checkout.session.expired", K::checkout_session, "", 100, none, E::payment_canceled},
    {"customer.updated", K::other, "", none, none, E::informational},
    {"", K::other, "", none, none, E::informational},
    // A type whose object is of another kind moves nothing.
    {"payment_intent.succeeded", K::charge, "", 100, none, E::informational},
    {"payment_intent.succeeded", K::other, "", 100, none, E::informational},
    {"charge.refunded", K::payment_intent, "", 100, 100, E::informational},
    {"charge.dispute.created", K::charge, "", 100, none, E::informational},
    {"checkout.session.completed", K::payment_intent, "paid", 100, none, E::informational},
  };
  for (const auto& r : rows) {
    CAPTURE(r.type, billing::to_string(r.kind), r.payment_status);
    stripe_event ev;
    ev.id = billing::event_id{"evt_1"};
    ev.type = r.type;
    ev.created = 1720771823;
    ev.object_kind = r.kind;
    ev.intent = billing::intent_id{"pi_1"};
    ev.payment_status = r.payment_status;
    ev.amount = r.amount;
    ev.amount_refunded = r.refunded;
    ev.currency = "eur";
    ev.failure_code = "card_declined";
    ev.failure_message = "declined";
    ev.object_id = r.kind == K::checkout_session ? "cs_1" : "obj_1";
    ev.invoice_id = "inv-meta";
    const billing::invoice_event ie = to_invoice_event(ev);
    CHECK(billing::to_string(ie.kind) == billing::to_string(r.want));
    CHECK(ie.id.str() == "evt_1");
    CHECK(ie.created == 1720771823);
    CHECK(ie.intent.str() == "pi_1");
    CHECK(ie.currency == "eur");
    if (r.kind == K::dispute)
      CHECK(ie.amount_cents == std::nullopt);
    else
      CHECK(ie.amount_cents == r.amount);
    if (r.want == E::refunded)
      CHECK(ie.refunded_cents == std::min(*r.refunded, *r.amount)); // absolute, at most the charge
    else
      CHECK_FALSE(ie.refunded_cents);
    CHECK(ie.session.str() == (r.kind == K::checkout_session ? "cs_1" : ""));
    CHECK(ie.metadata_invoice == "inv-meta");
    const bool copies_failure = r.want == E::payment_failed && r.kind == K::payment_intent;
    CHECK(ie.failure_code == (copies_failure ? "card_declined" : ""));
    CHECK(ie.failure_message == (copies_failure ? "declined" : ""));
  }
}

TEST_CASE("repeated parses on one thread are independent", "[stripe_event]") {
  const std::string a = fixture("payment_intent.payment_failed");
  const std::string b = fixture("customer.updated");
  const stripe_event first = must_parse(a);
  const stripe_event other = must_parse(b);
  CHECK(other.failure_code.empty());
  CHECK(other.invoice_id.empty());
  CHECK(must_parse(a) == first);
  // A short body after a long one must not see the long one's leftover bytes.
  CHECK_ERROR(a.substr(0, 40), event_parse_errc::invalid_json, "");
}
