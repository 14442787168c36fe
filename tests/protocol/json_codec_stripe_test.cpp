// protocol/json_codec for Checkout creates and refunds: what a caller may
// send, the field each refusal names, and the JSON answered.
#include "protocol/json_codec.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

using namespace billing;
using json = nlohmann::json;

namespace {

json base() {
  return {{"shipment_id", "shp_1"}, {"user_id", "usr_1"}, {"workflow_id", "wf_1"}, {"amount_cents", 2500},
          {"currency", "usd"}};
}

std::string field_of(const result<create_invoice_request>& r) {
  REQUIRE_FALSE(ok(r));
  return std::get<failure>(r).field;
}

} // namespace

TEST_CASE("parse_create_invoice: mode checkout needs its URLs, others refuse them", "[json_codec][checkout]") {
  auto b = base();
  auto plain = parse_create_invoice(b.dump());
  REQUIRE(ok(plain));
  CHECK(std::get<create_invoice_request>(plain).mode == invoice_mode::payment_intent);

  b["mode"] = "checkout";
  CHECK(field_of(parse_create_invoice(b.dump())) == "success_url");
  b["success_url"] = "https://shop.example/paid";
  CHECK(field_of(parse_create_invoice(b.dump())) == "cancel_url");
  b["cancel_url"] = "https://shop.example/cancelled?x=1";
  auto r = parse_create_invoice(b.dump());
  REQUIRE(ok(r));
  auto& req = std::get<create_invoice_request>(r);
  CHECK(req.mode == invoice_mode::checkout);
  CHECK(req.success_url == "https://shop.example/paid");
  CHECK(req.cancel_url == "https://shop.example/cancelled?x=1");

  struct bad_case {
    const char* name;
    json value;
    const char* field;
  };
  const std::vector<bad_case> bad = {
    {"mode", "subscription", "mode"},
    {"mode", 1, "mode"},
    {"success_url", "ftp://shop.example/", "success_url"},
    {"success_url", "https://", "success_url"},
    {"success_url", "https://shop example/", "success_url"},
    {"success_url", std::string(3000, 'a'), "success_url"},
    {"cancel_url", 7, "cancel_url"},
    {"expires_in_seconds", 1'800, "expires_in_seconds"},  // under Stripe's 30 min (plus margin)
    {"expires_in_seconds", 86'400, "expires_in_seconds"}, // Stripe's 24 h, no margin left
  };
  for (const auto& c : bad) {
    DYNAMIC_SECTION(c.name << " = " << c.value.dump().substr(0, 40)) {
      auto w = b;
      w[c.name] = c.value;
      CHECK(field_of(parse_create_invoice(w.dump())) == c.field);
    }
  }
  SECTION("inside the window is fine") {
    auto w = b;
    w["expires_in_seconds"] = 3'600;
    CHECK(ok(parse_create_invoice(w.dump())));
  }
  SECTION("a PaymentIntent invoice refuses the URLs") {
    auto w = base();
    w["success_url"] = "https://shop.example/paid";
    CHECK(field_of(parse_create_invoice(w.dump())) == "success_url");
    w = base();
    w["mode"] = "payment_intent";
    w["cancel_url"] = "https://shop.example/c";
    CHECK(field_of(parse_create_invoice(w.dump())) == "cancel_url");
  }
}

TEST_CASE("parse_refund_request: full by default, bounded amount, known reasons, a sane key", "[json_codec][refund]") {
  for (const char* empty : {"", "  \n", "{}"}) {
    auto r = parse_refund_request(empty, "");
    REQUIRE(ok(r));
    CHECK_FALSE(std::get<refund_invoice_request>(r).amount_cents);
  }
  auto r = parse_refund_request(R"({"amount_cents":700,"reason":"requested_by_customer"})", "order-7-refund-1");
  REQUIRE(ok(r));
  auto& q = std::get<refund_invoice_request>(r);
  CHECK(q.amount_cents == 700);
  CHECK(q.reason == "requested_by_customer");
  CHECK(q.idempotency_key == "order-7-refund-1");

  struct bad_case {
    const char* body;
    std::string key;
    const char* field;
  };
  const std::vector<bad_case> bad = {
    {R"({"amount_cents":0})", "", "amount_cents"},
    {R"({"amount_cents":-5})", "", "amount_cents"},
    {R"({"amount_cents":1.5})", "", "amount_cents"},
    {R"({"amount_cents":"700"})", "", "amount_cents"},
    {R"({"amount_cents":100000000})", "", "amount_cents"},
    {R"({"reason":"changed_my_mind"})", "", "reason"},
    {R"({"reason":3})", "", "reason"},
    {R"({"amount":700})", "", "amount"},
    {R"({"amount_cents":1,"amount_cents":2})", "", "amount_cents"},
    {"[1]", "", ""},
    {"{", "", ""},
    {"{}", "has space", "Idempotency-Key"},
    {"{}", std::string(201, 'k'), "Idempotency-Key"},
    {"{}", "tab\there", "Idempotency-Key"},
  };
  for (const auto& c : bad) {
    DYNAMIC_SECTION(c.body << " key=" << c.key.substr(0, 20)) {
      auto w = parse_refund_request(c.body, c.key);
      REQUIRE_FALSE(ok(w));
      CHECK(std::get<failure>(w).code == billing_errc::invalid_argument);
      CHECK(std::get<failure>(w).field == c.field);
    }
  }
}

TEST_CASE("invoices and refunds as JSON carry the new fields", "[json_codec]") {
  invoice inv;
  inv.id = invoice_id{"8a1c7f5e-0000-4000-8000-000000000001"};
  inv.amount_cents = 2500;
  inv.currency = "usd";
  inv.status = invoice_status::paid;
  inv.mode = invoice_mode::checkout;
  inv.provider_session_id = session_id{"cs_test_1"};
  inv.provider_intent_id = intent_id{"pi_1"};
  inv.refunded_cents = 700;
  invoice_view v{inv, {}, true, "https://checkout.stripe.com/c/pay/cs_test_1"};
  auto j = json::parse(to_json(v));
  CHECK(j["mode"] == "checkout");
  CHECK(j["provider_session_id"] == "cs_test_1");
  CHECK(j["refunded_cents"] == 700);
  CHECK(j["checkout_url"] == "https://checkout.stripe.com/c/pay/cs_test_1");
  CHECK_FALSE(j.contains("client_secret"));

  auto rj = json::parse(to_json(refund_view{inv, "re_1", "succeeded", 700, true}));
  CHECK(rj["refund"] == json{{"id", "re_1"}, {"status", "succeeded"}, {"amount_cents", 700}});
  CHECK(rj["invoice"]["refunded_cents"] == 700);

  auto payload = json::parse(signal_payload(inv, 1'700'000'000));
  CHECK(payload["refunded_cents"] == 700);
  inv.refunded_cents = 0;
  CHECK_FALSE(json::parse(signal_payload(inv, 1'700'000'000)).contains("refunded_cents"));
}
