// Parsing Stripe's answers (objects from realistic fixtures, malformed
// input) and the error table: Stripe's error JSON -> billingd's failure.
#include "protocol/stripe_objects.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

using namespace billing;
using namespace billing::stripe;
using json = nlohmann::json;

namespace {

json fixture(const std::string& name) {
  std::ifstream in{std::string{BILLING_TEST_DATA_DIR} + "/events/" + name};
  REQUIRE(in);
  std::stringstream buf;
  buf << in.rdbuf();
  return json::parse(buf.str());
}

template <class T>
const T& value(const result<T>& r) {
  if (!ok(r))
    FAIL("failure: " << std::get<failure>(r).message);
  return std::get<T>(r);
}

template <class T>
std::string problem(const result<T>& r) {
  REQUIRE_FALSE(ok(r));
  CHECK(std::get<failure>(r).code == billing_errc::internal);
  return std::get<failure>(r).message;
}

} // namespace

TEST_CASE("parse_payment_intent: a real PaymentIntent", "[stripe][objects]") {
  auto obj = fixture("payment_intent.succeeded.json")["data"]["object"];
  auto pi = value(parse_payment_intent(obj.dump()));
  CHECK(pi.id == "pi_3PfW3kJ8rXyZaB2c0Qm7LsKd");
  CHECK(pi.status == "succeeded");
  CHECK(pi.amount == 4999);
  CHECK(pi.amount_received == 4999);
  CHECK(pi.currency == "eur");
  CHECK_FALSE(pi.livemode);
  CHECK(pi.created == 1720771810);
  CHECK(pi.client_secret == "pi_3PfW3kJ8rXyZaB2c0Qm7LsKd_secret_kT3bV9xQwE2mYp7RzL1nC8sHd");
  CHECK(pi.latest_charge == "ch_3PfW3kJ8rXyZaB2c0aZ4pWq1");
  CHECK(pi.meta.at("invoice_id") == "8a1c7f5e-0000-4000-8000-000000000001");
  CHECK(pi.meta.at("shipment_id") == "shp_20240712_000184");
  CHECK(pi.meta.size() == 3);

  auto info = to_intent_info(pi);
  CHECK(info.id.str() == pi.id);
  CHECK(info.status == "succeeded");
  CHECK(info.client_secret == pi.client_secret);
  CHECK(info.amount_cents == 4999);
  CHECK(info.currency == "eur");
  CHECK_FALSE(info.livemode);

  SECTION("a failed one carries its last error") {
    auto failed = fixture("payment_intent.payment_failed.json")["data"]["object"];
    auto f = value(parse_payment_intent(failed.dump()));
    CHECK(f.status == "requires_payment_method");
    CHECK_FALSE(f.last_error_code.empty());
    CHECK_FALSE(f.last_error_message.empty());
    // The invoice actors see it too (a FAILED reconciliation needs it).
    auto fi = to_intent_info(f);
    CHECK(fi.failure_code == f.last_error_code);
    CHECK(fi.failure_message == f.last_error_message);
  }
  SECTION("an expanded latest_charge gives its id") {
    obj["latest_charge"] = json{{"id", "ch_x"}, {"object", "charge"}};
    CHECK(value(parse_payment_intent(obj.dump())).latest_charge == "ch_x");
  }
  SECTION("livemode true") {
    obj["livemode"] = true;
    CHECK(value(parse_payment_intent(obj.dump())).livemode);
  }
}

TEST_CASE("parse_payment_intent: what is not a PaymentIntent", "[stripe][objects]") {
  auto good = fixture("payment_intent.succeeded.json")["data"]["object"];
  struct row {
    std::string name;
    std::string body;
    std::string says;
  };
  auto without = [&](const char* key) {
    auto o = good;
    o.erase(key);
    return o.dump();
  };
  auto with = [&](const char* key, json v) {
    auto o = good;
    o[key] = std::move(v);
    return o.dump();
  };
  const std::vector<row> rows = {
    {"empty", "", "not a JSON object"},
    {"truncated", good.dump().substr(0, 100), "not a JSON object"},
    {"an array", "[1]", "not a JSON object"},
    {"HTML", "<html>502</html>", "not a JSON object"},
    {"no id", without("id"), "missing id"},
    {"empty id", with("id", ""), "empty id"},
    {"no status", without("status"), "missing status"},
    {"no amount", without("amount"), "missing amount"},
    {"amount as text", with("amount", "4999"), "amount is not an integer"},
    {"amount fractional", with("amount", 49.5), "amount is not an integer"},
    {"no currency", without("currency"), "missing currency"},
    {"livemode as text", with("livemode", "false"), "livemode is not a boolean"},
    {"another object", with("object", "charge"), "object is \"charge\", not \"payment_intent\""},
    {"no object field", without("object"), "missing object"},
    {"metadata an array", with("metadata", json::array()), "metadata is not an object"},
    {"id a number", with("id", 5), "id is not a string"},
  };
  for (auto& r : rows) {
    INFO(r.name);
    auto msg = problem(parse_payment_intent(r.body));
    CHECK(msg.starts_with("Stripe's answer is not a readable PaymentIntent: "));
    CHECK(msg.find(r.says) != std::string::npos);
  }
  // Null counts as absent for optional fields.
  CHECK(value(parse_payment_intent(with("client_secret", nullptr))).client_secret.empty());
  CHECK(value(parse_payment_intent(with("description", nullptr))).description.empty());
  // A non-string metadata value is skipped (Stripe's are always strings).
  auto odd = good;
  odd["metadata"]["n"] = 5;
  CHECK(value(parse_payment_intent(odd.dump())).meta.count("n") == 0);
}

TEST_CASE("parse_checkout_session", "[stripe][objects]") {
  auto obj = fixture("checkout.session.completed.paid.json")["data"]["object"];
  auto s = value(parse_checkout_session(obj.dump()));
  CHECK(s.id == "cs_test_a1Jb7vTq2WmZ9kLpX4cRf8Hd3NsY6gUe0oBi5QwE");
  CHECK(s.status == "complete");
  CHECK(s.payment_status == "paid");
  CHECK(s.url.empty()); // null once complete
  CHECK(s.payment_intent == "pi_3PfX1aJ8rXyZaB2c1Lk9TyUi");
  CHECK(s.client_reference_id == "8a1c7f5e-0000-4000-8000-000000000002");
  CHECK(s.amount_total == 12900);
  CHECK(s.currency == "usd");
  CHECK(s.expires_at == 1720861800);
  CHECK(s.meta.at("invoice_id") == "8a1c7f5e-0000-4000-8000-000000000002");
  auto info = to_session_info(s);
  CHECK(info.id.str() == s.id);
  CHECK(info.intent.str() == s.payment_intent);
  CHECK(info.status == "complete");
  CHECK(info.payment_status == "paid");
  CHECK(info.amount_cents == 12900);
  CHECK(info.currency == "usd");
  CHECK(info.expires_at == 1720861800);

  SECTION("an open one has a URL and no intent yet") {
    obj["status"] = "open";
    obj["payment_status"] = "unpaid";
    obj["url"] = "https://checkout.stripe.com/c/pay/cs_test_a1";
    obj["payment_intent"] = nullptr;
    auto open = value(parse_checkout_session(obj.dump()));
    CHECK(open.url == "https://checkout.stripe.com/c/pay/cs_test_a1");
    CHECK(open.payment_intent.empty());
  }
  SECTION("not a session") {
    obj["object"] = "payment_intent";
    CHECK(problem(parse_checkout_session(obj.dump())).find("not \"checkout.session\"") != std::string::npos);
  }
}

TEST_CASE("parse_refund", "[stripe][objects]") {
  json r = {{"id", "re_3Abc"}, {"object", "refund"}, {"amount", 700}, {"charge", "ch_1"},
            {"created", 1720771900}, {"currency", "usd"}, {"metadata", {{"invoice_id", "inv-1"}}},
            {"payment_intent", "pi_1"}, {"reason", "requested_by_customer"}, {"status", "succeeded"}};
  auto x = value(parse_refund(r.dump()));
  CHECK(x.id == "re_3Abc");
  CHECK(x.amount == 700);
  CHECK(x.status == "succeeded");
  CHECK(x.payment_intent == "pi_1");
  CHECK(x.charge == "ch_1");
  CHECK(x.reason == "requested_by_customer");
  CHECK(x.meta.at("invoice_id") == "inv-1");
  r["reason"] = nullptr;
  CHECK(value(parse_refund(r.dump())).reason.empty());
  CHECK_FALSE(x.charge_amount_refunded);
  SECTION("with the charge expanded, the refunded total comes along") {
    r["charge"] = {{"id", "ch_1"}, {"object", "charge"}, {"amount", 2500}, {"amount_refunded", 1200},
                   {"livemode", false}};
    auto e = value(parse_refund(r.dump()));
    CHECK(e.charge == "ch_1");
    CHECK(e.charge_amount == 2500);
    CHECK(e.charge_amount_refunded == 1200);
    auto info = to_refund_info(e);
    CHECK(info.id == "re_3Abc");
    CHECK(info.amount_cents == 700);
    CHECK(info.charge_amount_cents == 2500);
    CHECK(info.charge_refunded_cents == 1200);
    CHECK_FALSE(info.livemode);
    r["charge"].erase("amount_refunded");
    CHECK(problem(parse_refund(r.dump())).find("charge: missing amount_refunded") != std::string::npos);
  }
  r.erase("amount");
  CHECK(problem(parse_refund(r.dump())).find("missing amount") != std::string::npos);
}

TEST_CASE("parse_event_page", "[stripe][objects]") {
  auto a = fixture("payment_intent.succeeded.json");
  auto b = fixture("charge.refunded.partial.json");
  json page = {{"object", "list"}, {"url", "/v1/events"}, {"has_more", true}, {"data", {a, b}}};
  auto p = value(parse_event_page(page.dump()));
  CHECK(p.has_more);
  REQUIRE(p.data.size() == 2);
  CHECK(p.data[0].id == a["id"]);
  CHECK(p.data[0].type == "payment_intent.succeeded");
  CHECK(p.data[0].created == a["created"].get<int64_t>());
  CHECK(json::parse(p.data[0].raw) == a); // the event as Stripe sent it
  CHECK(p.data[1].type == b["type"]);

  page["has_more"] = false;
  page["data"] = json::array();
  auto empty = value(parse_event_page(page.dump()));
  CHECK_FALSE(empty.has_more);
  CHECK(empty.data.empty());

  page["data"] = json::array({json{{"object", "event"}, {"type", "x"}, {"created", 1}}});
  CHECK(problem(parse_event_page(page.dump())).find("missing id") != std::string::npos);
  page["data"] = json::array({5});
  CHECK(problem(parse_event_page(page.dump())).find("not an object") != std::string::npos);
  page["data"] = "x";
  CHECK(problem(parse_event_page(page.dump())).find("data is not an array") != std::string::npos);
  page["object"] = "event";
  CHECK_FALSE(ok(parse_event_page(page.dump())));
}

TEST_CASE("Stripe errors -> billingd failures", "[stripe][errors]") {
  struct row {
    std::string name;
    unsigned status;
    std::string body;
    error_class cls;
    billing_errc code;
    std::string message; // exact for invalid requests (Stripe's text reaches the caller)
    std::string field;
  };
  auto err = [](json e) { return json{{"error", std::move(e)}}.dump(); };
  const std::vector<row> rows = {
    {"amount too small", 400,
     err({{"code", "amount_too_small"}, {"doc_url", "https://stripe.com/docs/error-codes/amount-too-small"},
          {"message", "Amount must be at least $0.50 usd"}, {"param", "amount"}, {"type", "invalid_request_error"}}),
     error_class::invalid_request, billing_errc::invalid_argument, "Amount must be at least $0.50 usd", "amount"},
    {"invalid currency", 400,
     err({{"code", "parameter_invalid_string"}, {"message", "Invalid currency: xyz."}, {"param", "currency"},
          {"type", "invalid_request_error"}}),
     error_class::invalid_request, billing_errc::invalid_argument, "Invalid currency: xyz.", "currency"},
    {"missing parameter", 400,
     err({{"code", "parameter_missing"}, {"message", "Missing required param: amount."}, {"param", "amount"},
          {"type", "invalid_request_error"}}),
     error_class::invalid_request, billing_errc::invalid_argument, "Missing required param: amount.", "amount"},
    {"card declined", 402,
     err({{"code", "card_declined"}, {"decline_code", "generic_decline"}, {"message", "Your card was declined."},
          {"type", "card_error"}}),
     error_class::invalid_request, billing_errc::invalid_argument, "Your card was declined.", ""},
    {"unexpected state", 400,
     err({{"code", "payment_intent_unexpected_state"}, {"message", "You cannot cancel this PaymentIntent because it has a status of succeeded."},
          {"type", "invalid_request_error"}}),
     error_class::unexpected_state, billing_errc::invalid_state,
     "You cannot cancel this PaymentIntent because it has a status of succeeded.", ""},
    {"bad key (Stripe says invalid_request_error with a 401)", 401,
     err({{"message", "Invalid API Key provided: sk_test_****************abcd"}, {"type", "invalid_request_error"}}),
     error_class::authentication, billing_errc::internal, "", ""},
    {"authentication_error type", 401, err({{"message", "x"}, {"type", "authentication_error"}}),
     error_class::authentication, billing_errc::internal, "", ""},
    {"restricted key without permission", 403,
     err({{"message", "The provided key 'rk_test_***' does not have the required permissions"},
          {"type", "invalid_request_error"}}),
     error_class::permission, billing_errc::internal, "", ""},
    {"idempotency_error", 400,
     err({{"message", "Keys for idempotent requests can only be used with the same parameters they were first used with."},
          {"type", "idempotency_error"}}),
     error_class::idempotency, billing_errc::internal, "", ""},
    {"idempotency key in use", 409,
     err({{"code", "idempotency_key_in_use"}, {"message", "There is currently another in-progress request using this Idempotent Key"},
          {"type", "invalid_request_error"}}),
     error_class::unavailable, billing_errc::unavailable, "", ""},
    {"lock_timeout", 429,
     err({{"code", "lock_timeout"}, {"message", "This object cannot be accessed right now"}, {"type", "invalid_request_error"}}),
     error_class::unavailable, billing_errc::unavailable, "", ""},
    {"rate_limit", 429, err({{"code", "rate_limit"}, {"message", "Request rate limit exceeded."}, {"type", "invalid_request_error"}}),
     error_class::unavailable, billing_errc::unavailable, "", ""},
    {"api_error 500", 500, err({{"message", "An unknown error occurred"}, {"type", "api_error"}}),
     error_class::unavailable, billing_errc::unavailable, "", ""},
    {"502 from a proxy, HTML", 502, "<html>Bad gateway</html>", error_class::unavailable, billing_errc::unavailable, "", ""},
    {"503 empty", 503, "", error_class::unavailable, billing_errc::unavailable, "", ""},
    {"resource_missing", 404,
     err({{"code", "resource_missing"}, {"message", "No such payment_intent: 'pi_x'"}, {"param", "intent"},
          {"type", "invalid_request_error"}}),
     error_class::not_found, billing_errc::internal, "", ""},
    {"404 without a body", 404, "", error_class::not_found, billing_errc::internal, "", ""},
    {"400 that is not JSON", 400, "oops", error_class::other, billing_errc::internal, "", ""},
    {"418", 418, err({{"message", "teapot"}, {"type", "weird_error"}}), error_class::other, billing_errc::internal, "", ""},
  };
  for (auto& r : rows) {
    INFO(r.name);
    auto e = parse_error(r.status, r.body);
    CHECK(e.status == r.status);
    CHECK(classify(e) == r.cls);
    auto f = to_failure(e, "create_intent");
    CHECK(f.code == r.code);
    if (r.code == billing_errc::invalid_argument || r.code == billing_errc::invalid_state) {
      CHECK(f.message == r.message);
      CHECK(f.field == r.field);
    } else {
      // Ours, for the log: the operation and the status, never Stripe's
      // message (a 401's message quotes part of the key).
      CHECK(f.message.starts_with("Stripe create_intent: "));
      CHECK(f.message.find("HTTP " + std::to_string(r.status)) != std::string::npos);
      CHECK(f.message.find("sk_test") == std::string::npos);
      CHECK(f.message.find("rk_test") == std::string::npos);
      CHECK(f.field.empty());
    }
  }
}

TEST_CASE("parse_error: all fields, and the intent an unexpected state carries", "[stripe][errors]") {
  auto pi = fixture("payment_intent.succeeded.json")["data"]["object"];
  json body = {{"error",
                {{"code", "payment_intent_unexpected_state"},
                 {"decline_code", "d"},
                 {"doc_url", "https://stripe.com/docs/error-codes/payment-intent-unexpected-state"},
                 {"message", "m"},
                 {"param", "p"},
                 {"payment_intent", pi},
                 {"type", "invalid_request_error"}}}};
  auto e = parse_error(400, body.dump());
  CHECK(e.type == "invalid_request_error");
  CHECK(e.code == "payment_intent_unexpected_state");
  CHECK(e.decline_code == "d");
  CHECK(e.message == "m");
  CHECK(e.param == "p");
  CHECK(e.doc_url.ends_with("payment-intent-unexpected-state"));
  REQUIRE(e.intent);
  CHECK(e.intent->status == "succeeded");
  CHECK(e.intent->id == "pi_3PfW3kJ8rXyZaB2c0Qm7LsKd");

  body["error"]["payment_intent"].erase("status");
  CHECK_FALSE(parse_error(400, body.dump()).intent); // unreadable: left out
  CHECK(parse_error(400, R"({"error":"x"})").type.empty());
  CHECK(parse_error(400, R"({"error":{"type":5}})").type.empty());
}

TEST_CASE("unreachable: no answer is unavailable", "[stripe][errors]") {
  auto f = unreachable("cancel_intent", "connect failed: Connection refused");
  CHECK(f.code == billing_errc::unavailable);
  CHECK(f.message == "Stripe cancel_intent: no answer (connect failed: Connection refused)");
}
