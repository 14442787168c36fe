// The requests billingd sends to Stripe, byte for byte; idempotency keys; the
// mode of a key; the retry rule and its backoff.
#include "protocol/stripe_api.hpp"
#include "protocol/stripe_form.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace billing;
using namespace billing::stripe;
using namespace std::chrono_literals;

namespace {

const invoice_id inv{"8a1c7f5e-0000-4000-8000-000000000001"};
const std::string inv_s = inv.str();

intent_request sample_intent() {
  return intent_request{inv, 4999, "eur", "wf-1", "shp_1"};
}

} // namespace

TEST_CASE("mode_of_key", "[stripe][api]") {
  struct row {
    std::string key;
    std::optional<provider_mode> mode;
  };
  const std::vector<row> rows = {
    {"sk_test_51Abc", provider_mode::test},
    {"rk_test_51Abc", provider_mode::test},
    {"sk_live_51Abc", provider_mode::live},
    {"rk_live_51Abc", provider_mode::live},
    {"sk_test_", std::nullopt}, // a prefix alone is no key
    {"pk_test_51Abc", std::nullopt}, // publishable keys cannot create intents
    {"pk_live_51Abc", std::nullopt},
    {"whsec_abc", std::nullopt},
    {"SK_TEST_51Abc", std::nullopt},
    {"sk_51Abc", std::nullopt},
    {" sk_test_51Abc", std::nullopt},
    {"", std::nullopt},
  };
  for (auto& r : rows) {
    INFO(r.key);
    CHECK(mode_of_key(r.key) == r.mode);
  }
}

TEST_CASE("idempotency keys: from the invoice and the operation", "[stripe][api]") {
  CHECK(idempotency_key(inv, operation::create_intent) == "billingd:" + inv_s + ":create_intent");
  CHECK(idempotency_key(inv, operation::cancel_intent) == "billingd:" + inv_s + ":cancel_intent");
  CHECK(idempotency_key(inv, operation::create_checkout_session)
        == "billingd:" + inv_s + ":create_checkout_session");
  CHECK(idempotency_key(inv, operation::expire_checkout_session)
        == "billingd:" + inv_s + ":expire_checkout_session");
  CHECK(idempotency_key(inv, operation::create_refund, "req-7") == "billingd:" + inv_s + ":create_refund:req-7");

  SECTION("each operation and invoice its own key") {
    std::set<std::string> keys;
    for (auto op : {operation::create_intent, operation::retrieve_intent, operation::cancel_intent,
                    operation::create_checkout_session, operation::retrieve_checkout_session,
                    operation::expire_checkout_session, operation::create_refund, operation::list_events})
      for (auto& id : {inv, invoice_id{"other"}})
        keys.insert(idempotency_key(id, op));
    CHECK(keys.size() == 16);
  }
  SECTION("at most 255 characters, still a function of the discriminator") {
    for (size_t n : {0u, 1u, 100u, 200u, 201u, 202u, 203u, 250u, 255u, 256u, 1000u, 100000u}) {
      std::string d(n, 'x');
      auto k = idempotency_key(inv, operation::create_refund, d);
      INFO(n);
      CHECK(k.size() <= max_idempotency_key_length);
      CHECK(k.starts_with("billingd:" + inv_s + ":create_refund"));
      CHECK(k == idempotency_key(inv, operation::create_refund, d));
      CHECK(k != idempotency_key(inv, operation::create_refund, d + "y"));
    }
    auto fits = "billingd:" + inv_s + ":create_refund:";
    std::string exact(max_idempotency_key_length - fits.size(), 'k');
    CHECK(idempotency_key(inv, operation::create_refund, exact) == fits + exact); // kept as it is
    CHECK(idempotency_key(inv, operation::create_refund, exact + "k").size() == fits.size() + 64); // hashed
  }
  SECTION("an absurd invoice id still gives a bounded key") {
    invoice_id huge{std::string(400, 'i')};
    CHECK(idempotency_key(huge, operation::create_intent).size() <= max_idempotency_key_length);
    CHECK(idempotency_key(huge, operation::create_refund, "d").size() <= max_idempotency_key_length);
    CHECK(idempotency_key(huge, operation::create_intent) != idempotency_key(huge, operation::cancel_intent));
  }
}

TEST_CASE("PaymentIntent requests", "[stripe][api]") {
  SECTION("create") {
    auto r = create_intent(sample_intent());
    CHECK(r.verb == method::post);
    CHECK(r.path == "/v1/payment_intents");
    CHECK(r.op == operation::create_intent);
    CHECK(r.idempotency_key == "billingd:" + inv_s + ":create_intent");
    CHECK(r.body
          == "amount=4999&currency=eur&automatic_payment_methods[enabled]=true"
             "&description=Shipment%20shp_1%20%28invoice%20" + inv_s + "%29"
             "&metadata[invoice_id]=" + inv_s + "&metadata[workflow_id]=wf-1&metadata[shipment_id]=shp_1");
    // The same request on every retry: parameters depend on the invoice only.
    CHECK(create_intent(sample_intent()).body == r.body);
  }
  SECTION("create escapes what callers send") {
    auto req = sample_intent();
    req.workflow_id = "wf a&b=c";
    req.shipment_id = "shp/ü";
    auto pairs = form_decode(create_intent(req).body);
    CHECK(std::count(pairs.begin(), pairs.end(), std::pair<std::string, std::string>{"metadata[workflow_id]", "wf a&b=c"}) == 1);
    CHECK(std::count(pairs.begin(), pairs.end(), std::pair<std::string, std::string>{"metadata[shipment_id]", "shp/ü"}) == 1);
    CHECK(pairs.size() == 7);
  }
  SECTION("retrieve") {
    auto r = retrieve_intent(intent_id{"pi_3Abc"});
    CHECK(r.verb == method::get);
    CHECK(r.path == "/v1/payment_intents/pi_3Abc");
    CHECK(r.body.empty());
    CHECK(r.idempotency_key.empty());
  }
  SECTION("cancel") {
    auto r = cancel_intent(intent_id{"pi_3Abc"}, inv);
    CHECK(r.verb == method::post);
    CHECK(r.path == "/v1/payment_intents/pi_3Abc/cancel");
    CHECK(r.body == "cancellation_reason=abandoned");
    CHECK(r.idempotency_key == "billingd:" + inv_s + ":cancel_intent");
  }
  SECTION("an id cannot reach another path") {
    CHECK(retrieve_intent(intent_id{"../customers/cus_1"}).path == "/v1/payment_intents/..%2Fcustomers%2Fcus_1");
    CHECK(cancel_intent(intent_id{"pi?x=1"}, inv).path == "/v1/payment_intents/pi%3Fx%3D1/cancel");
  }
}

TEST_CASE("Checkout Session requests", "[stripe][api]") {
  checkout_params p{inv, 2500, "usd", "wf-1", "shp_1", "https://shop.example/ok?s={CHECKOUT_SESSION_ID}",
                    "https://shop.example/cancel", 1'700'003'600};
  auto r = create_checkout_session(p);
  CHECK(r.verb == method::post);
  CHECK(r.path == "/v1/checkout/sessions");
  CHECK(r.idempotency_key == "billingd:" + inv_s + ":create_checkout_session");
  const std::string meta = "metadata[invoice_id]=" + inv_s + "&metadata[workflow_id]=wf-1&metadata[shipment_id]=shp_1";
  CHECK(r.body
        == "mode=payment"
           "&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=2500"
           "&line_items[0][price_data][product_data][name]=Shipment%20shp_1&line_items[0][quantity]=1"
           "&success_url=https%3A%2F%2Fshop.example%2Fok%3Fs%3D%7BCHECKOUT_SESSION_ID%7D"
           "&cancel_url=https%3A%2F%2Fshop.example%2Fcancel"
           "&client_reference_id=" + inv_s + "&expires_at=1700003600&" + meta +
           "&payment_intent_data[description]=Shipment%20shp_1%20%28invoice%20" + inv_s + "%29"
           "&payment_intent_data[metadata][invoice_id]=" + inv_s +
           "&payment_intent_data[metadata][workflow_id]=wf-1&payment_intent_data[metadata][shipment_id]=shp_1");

  auto g = retrieve_checkout_session("cs_test_a1");
  CHECK(g.verb == method::get);
  CHECK(g.path == "/v1/checkout/sessions/cs_test_a1");
  auto x = expire_checkout_session("cs_test_a1", inv);
  CHECK(x.verb == method::post);
  CHECK(x.path == "/v1/checkout/sessions/cs_test_a1/expire");
  CHECK(x.body.empty());
  CHECK(x.idempotency_key == "billingd:" + inv_s + ":expire_checkout_session");

  SECTION("expires_at window: 30 min to 24 h, with slack") {
    const int64_t now = 1'700'000'000;
    struct row {
      int64_t offset;
      bool ok;
    };
    for (auto [offset, ok] : std::vector<row>{{0, false}, {1799, false}, {1800, false}, {1859, false},
                                              {1860, true}, {3600, true}, {86'340, true}, {86'341, false},
                                              {86'400, false}, {-10, false}}) {
      INFO(offset);
      CHECK(checkout_expiry_ok(now, now + offset) == ok);
    }
    CHECK(checkout_expiry_ok(now, now + 1800, 0));
    CHECK(checkout_expiry_ok(now, now + 86'400, 0));
    CHECK_FALSE(checkout_expiry_ok(now, now + 86'401, 0));
  }
}

TEST_CASE("Refund requests", "[stripe][api]") {
  refund_params full{inv, intent_id{"pi_1"}, std::nullopt, "", "k1"};
  auto r = create_refund(full);
  CHECK(r.verb == method::post);
  CHECK(r.path == "/v1/refunds");
  CHECK(r.body == "payment_intent=pi_1&metadata[invoice_id]=" + inv_s + "&expand[0]=charge");
  CHECK(r.idempotency_key == "billingd:" + inv_s + ":create_refund:k1");
  refund_params part{inv, intent_id{"pi_1"}, 700, "requested_by_customer", "k2"};
  CHECK(create_refund(part).body
        == "payment_intent=pi_1&amount=700&reason=requested_by_customer&metadata[invoice_id]=" + inv_s
             + "&expand[0]=charge");
  CHECK(create_refund(part).idempotency_key != r.idempotency_key);
}

TEST_CASE("Event list requests", "[stripe][api]") {
  CHECK(list_events({}).path == "/v1/events?limit=100");
  CHECK(list_events({}).verb == method::get);
  event_query one{{"payment_intent.succeeded"}, 1'700'000'000, std::nullopt, "evt_9", 100};
  CHECK(list_events(one).path == "/v1/events?limit=100&type=payment_intent.succeeded&created[gte]=1700000000&starting_after=evt_9");
  event_query many{{"payment_intent.succeeded", "charge.refunded"}, std::nullopt, std::nullopt, "", 500};
  CHECK(list_events(many).path == "/v1/events?limit=100&types[0]=payment_intent.succeeded&types[1]=charge.refunded");
  event_query tiny{{}, std::nullopt, std::nullopt, "", 0};
  CHECK(list_events(tiny).path == "/v1/events?limit=1");
  event_query window{{"charge.refunded"}, 1'700'000'000, 1'700'000'600, "", 100};
  CHECK(list_events(window).path
        == "/v1/events?limit=100&type=charge.refunded&created[gte]=1700000000&created[lte]=1700000600");
}

TEST_CASE("should_retry: the SDKs' rule", "[stripe][retry]") {
  // Without Stripe-Should-Retry.
  for (unsigned s : {0u, 409u, 429u, 500u, 502u, 503u, 504u, 599u}) {
    INFO(s);
    CHECK(should_retry(s, ""));
  }
  for (unsigned s : {200u, 201u, 301u, 400u, 401u, 402u, 403u, 404u, 405u, 408u, 410u, 413u, 422u, 451u}) {
    INFO(s);
    CHECK_FALSE(should_retry(s, ""));
  }
  // The header decides when there is one.
  for (unsigned s : {400u, 401u, 402u, 404u, 409u, 429u, 500u, 503u}) {
    INFO(s);
    CHECK(should_retry(s, "true"));
    CHECK_FALSE(should_retry(s, "false"));
    CHECK(should_retry(s, "maybe") == should_retry(s, "")); // anything else: as if absent
  }
  // No answer: no header to honour.
  CHECK(should_retry(0, "false"));
}

TEST_CASE("plan_retry: jittered exponential backoff within count and budget", "[stripe][retry]") {
  retry_policy p;
  p.max_retries = 4;
  p.initial_delay = 500ms;
  p.max_delay = 3'000ms;
  p.attempt_timeout = 2'000ms;
  p.budget = 60'000ms;
  p.min_attempt = 250ms;
  CHECK(first_attempt_timeout(p) == 2'000ms);

  SECTION("delays double, jitter spans [d/2, d], capped") {
    struct row {
      int done;
      std::chrono::milliseconds lo, hi;
    };
    for (auto [done, lo, hi] : std::vector<row>{{0, 250ms, 500ms}, {1, 500ms, 1'000ms}, {2, 1'000ms, 2'000ms},
                                                {3, 1'500ms, 3'000ms}}) {
      INFO(done);
      auto a = plan_retry(p, done, 0ms, 0.0);
      auto b = plan_retry(p, done, 0ms, 0.999999);
      auto m = plan_retry(p, done, 0ms, 0.5);
      REQUIRE(a);
      REQUIRE(b);
      REQUIRE(m);
      CHECK(a->delay == lo);
      CHECK(b->delay == hi);
      CHECK(m->delay > lo);
      CHECK(m->delay < hi);
      CHECK(a->timeout == 2'000ms);
    }
    CHECK(plan_retry(p, 1, 0ms, -3.0)->delay == 500ms); // clamped to [0, 1]
    CHECK(plan_retry(p, 1, 0ms, 7.0)->delay == 1'000ms);
  }
  SECTION("bounded in count") {
    CHECK(plan_retry(p, 3, 0ms, 0.5));
    CHECK_FALSE(plan_retry(p, 4, 0ms, 0.5));
    CHECK_FALSE(plan_retry(p, 99, 0ms, 0.5));
    CHECK_FALSE(plan_retry(p, -1, 0ms, 0.5));
    p.max_retries = 0;
    CHECK_FALSE(plan_retry(p, 0, 0ms, 0.5));
  }
  SECTION("bounded in time: the last attempt gets what is left, never less than min_attempt") {
    p.budget = 5'000ms;
    auto r = plan_retry(p, 0, 3'500ms, 0.0); // 250 ms wait, 1250 ms left
    REQUIRE(r);
    CHECK(r->timeout == 1'250ms);
    r = plan_retry(p, 0, 4'500ms, 0.0); // 250 ms left after the wait
    REQUIRE(r);
    CHECK(r->timeout == 250ms);
    CHECK_FALSE(plan_retry(p, 0, 4'501ms, 0.0));
    CHECK_FALSE(plan_retry(p, 0, 9'000ms, 0.0));
  }
  SECTION("the budget caps the first attempt too") {
    p.budget = 1'000ms;
    CHECK(first_attempt_timeout(p) == 1'000ms);
  }
  SECTION("a huge retry count does not overflow") {
    p.max_retries = 1'000;
    auto r = plan_retry(p, 900, 0ms, 1.0);
    REQUIRE(r);
    CHECK(r->delay == 3'000ms);
  }
  SECTION("the total time of a whole call stays within the budget") {
    p.max_retries = 10;
    p.budget = 9'000ms;
    p.attempt_timeout = 4'000ms;
    for (double rnd : {0.0, 0.5, 0.99}) {
      // Every attempt times out: the worst case.
      auto elapsed = first_attempt_timeout(p);
      int retries = 0;
      while (auto next = plan_retry(p, retries, elapsed, rnd)) {
        elapsed += next->delay + next->timeout;
        ++retries;
      }
      INFO(rnd);
      CHECK(elapsed <= p.budget);
      CHECK(retries >= 1);
    }
  }
}

TEST_CASE("api_base_problem", "[stripe][api]") {
  for (std::string ok : {"https://api.stripe.com", "https://api.stripe.com/", "https://127.0.0.1:12111",
                         "https://[::1]:443", "http://127.0.0.1:12111", "http://127.0.0.2", "http://localhost:8080/",
                         "http://[::1]:9"}) {
    INFO(ok);
    CHECK(api_base_problem(ok).empty());
  }
  struct row {
    std::string base, says;
  };
  for (auto& [base, says] : std::vector<row>{
         {"", "https://"},
         {"api.stripe.com", "https://"},
         {"ftp://api.stripe.com", "https://"},
         {"https://", "no host"},
         {"https:///v1", "path"},
         {"https://api.stripe.com/v1", "path"},
         {"https://api.stripe.com?x=1", "path"},
         {"https://user:pw@api.stripe.com", "user info"},
         {"https://[::1", "unclosed"},
         {"http://api.stripe.com", "not loopback"},
         {"http://10.0.0.1:80", "not loopback"},
         {"http://127.0.0.1.evil.example", "not loopback"},
         {"http://localhost.evil.example", "not loopback"},
       }) {
    INFO(base);
    auto p = api_base_problem(base);
    CHECK(p.find(says) != std::string::npos);
  }
}
