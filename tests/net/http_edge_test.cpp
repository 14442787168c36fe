// The HTTP edge over a real socket with a scripted billing_api: what it
// answers before and after handing a webhook to the API.
#include "net/http_edge.hpp"
#include "protocol/stripe_event_builder.hpp"
#include "protocol/stripe_signature.hpp"
#include "test_util.hpp"

#include <catch2/catch.hpp>

#include <atomic>

using namespace billing;
using namespace billing::net;
using namespace billing::net::test;

namespace {

constexpr int64_t now_unix = 1'800'000'000;
const std::string secret = "whsec_edge_test";

// Answers every event `applied`; refuses for capacity while `full` is set.
struct scripted_api final : billing_api {
  std::atomic<bool> full{false};
  std::atomic<int> events{0};

  void create_invoice(create_invoice_request, callback<invoice_result> done) override {
    done(fail(billing_errc::internal, "not scripted"));
  }
  void get_invoice(invoice_id, callback<invoice_result> done) override {
    done(fail(billing_errc::internal, "not scripted"));
  }
  void list_invoices(invoice_filter, callback<list_result> done) override {
    done(fail(billing_errc::internal, "not scripted"));
  }
  void cancel_invoice(invoice_id, callback<invoice_result> done) override {
    done(fail(billing_errc::internal, "not scripted"));
  }
  void handle_event(invoice_id invoice, incoming_event, callback<webhook_result> done) override {
    ++events;
    done(webhook_reply{outcome::applied, invoice, invoice_status::paid});
  }
  bool ready() const override { return true; }
  std::optional<failure> refuse_now() const override {
    if (full)
      return fail(billing_errc::overloaded, "billingd is at capacity (256 calls in flight); retry later");
    return std::nullopt;
  }
};

std::string webhook_request(std::string_view body, std::string_view signature) {
  return make_request("POST", "/webhook", body, true,
                      "Stripe-Signature: " + std::string{signature} + "\r\n");
}

} // namespace

TEST_CASE("http_edge: at capacity, a webhook is refused 503 before any check", "[net][http_edge]") {
  scripted_api api;
  edge_config cfg;
  cfg.webhook_secrets = {secret};
  cfg.clock = [] { return now_unix; };
  http_edge edge{api, cfg, nullptr};
  auto srv = start_server({}, [&edge](request&& req, responder reply) {
    edge.handle(std::move(req), std::move(reply));
  });
  raw_conn conn{srv->port()};
  REQUIRE(conn.connected());

  intent_event_spec spec;
  spec.event_id = "evt_edge_1";
  spec.created = now_unix;
  spec.intent_id = "pi_edge_1";
  spec.amount_cents = 1'000;
  spec.currency = "usd";
  spec.invoice_id = "0b6a3c2e-8f1d-8a4b-9c3d-2e1f0a9b8c7d";
  auto body = build_payment_intent_event(spec);
  auto good = sign_stripe_payload(body, secret, now_unix);

  SECTION("below capacity: a good signature reaches the API, a bad one is 400") {
    REQUIRE(conn.send(webhook_request(body, good)));
    auto ok_res = conn.read_response();
    REQUIRE(ok_res);
    CHECK(ok_res->result_int() == 200);
    REQUIRE(conn.send(webhook_request(body, "t=1,v1=00")));
    auto bad = conn.read_response();
    REQUIRE(bad);
    CHECK(bad->result_int() == 400);
    CHECK(api.events == 1);
  }
  SECTION("at capacity: 503 with Retry-After, nothing parsed or handed on") {
    api.full = true;
    for (auto sig : {good, std::string{"t=1,v1=00"}}) {
      REQUIRE(conn.send(webhook_request(body, sig)));
      auto res = conn.read_response();
      REQUIRE(res);
      CHECK(res->result_int() == 503);
      CHECK((*res)[http::field::retry_after] == "1");
      CHECK(res->body().find("\"overloaded\"") != std::string::npos);
    }
    CHECK(api.events == 0);
    api.full = false; // and it recovers at once
    REQUIRE(conn.send(webhook_request(body, good)));
    auto again = conn.read_response();
    REQUIRE(again);
    CHECK(again->result_int() == 200);
    CHECK(api.events == 1);
  }
}
