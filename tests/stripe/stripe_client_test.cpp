// net/stripe_client against a scripted HTTP server on 127.0.0.1: what goes
// over the wire (headers, bodies, idempotency keys on every retry), the retry
// rule and its bounds, the error table as the caller sees it, the cancel that
// races a payment. (tests/stripe/*.test.mjs run billingd against the fake.)
#include "net/stripe_client.hpp"

#include "net/http_server.hpp"
#include "protocol/stripe_api.hpp"
#include "test_util.hpp"

#include <caf/all.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <deque>
#include <mutex>

using namespace billing;
using namespace billing::net;
using namespace billing::net::test;
using json = nlohmann::json;

namespace {

struct seen {
  std::string method, target, body;
  std::map<std::string, std::string> headers; // lower-case names
};

struct scripted {
  scripted(int s = 200, std::string b = {}, std::map<std::string, std::string> h = {},
           std::chrono::milliseconds d = std::chrono::milliseconds{0})
      : status(s), body(std::move(b)), headers(std::move(h)), delay(d) {}
  int status;
  std::string body;
  std::map<std::string, std::string> headers;
  std::chrono::milliseconds delay;
};

// A Stripe stand-in: answers from a script (the last entry repeats), records
// every request.
class script_server {
 public:
  script_server() {
    srv_ = start_server({}, [this](request&& req, responder reply) {
      seen s{std::string{req.method_string()}, std::string{req.target()}, req.body(), {}};
      for (auto& f : req) {
        std::string name{f.name_string()};
        for (auto& ch : name)
          ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        s.headers[name] = std::string{f.value()};
      }
      scripted next;
      {
        std::lock_guard lock{m_};
        requests_.push_back(std::move(s));
        next = script_.size() > 1 ? script_.front() : script_.empty() ? scripted{} : script_.front();
        if (script_.size() > 1)
          script_.pop_front();
      }
      auto answer = [next, reply]() mutable {
        auto res = text_response(static_cast<http::status>(next.status), next.body);
        res.set(http::field::content_type, "application/json");
        res.set("Request-Id", "req_test");
        for (auto& [k, v] : next.headers)
          res.set(k, v);
        reply(std::move(res));
      };
      if (next.delay.count() > 0)
        later_.after(next.delay, answer);
      else
        answer();
    });
  }
  ~script_server() { srv_->stop(std::chrono::milliseconds(200)); }

  void script(std::vector<scripted> s) {
    std::lock_guard lock{m_};
    script_.assign(s.begin(), s.end());
  }
  std::vector<seen> requests() {
    std::lock_guard lock{m_};
    return requests_;
  }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(srv_->port()); }

 private:
  std::mutex m_;
  std::deque<scripted> script_;
  std::vector<seen> requests_;
  delayed later_;
  std::unique_ptr<http_server> srv_;
};

json intent_json(const std::string& id, const std::string& status, int64_t amount = 4999) {
  return {{"id", id},         {"object", "payment_intent"},    {"amount", amount},
          {"currency", "eur"}, {"status", status},              {"livemode", false},
          {"created", 1720771810}, {"client_secret", id + "_secret_abc"}, {"metadata", json::object()}};
}

std::string error_json(const std::string& type, const std::string& code, const std::string& message,
                       const std::string& param = {}, json intent = nullptr) {
  json e = {{"type", type}, {"message", message}};
  if (!code.empty())
    e["code"] = code;
  if (!param.empty())
    e["param"] = param;
  if (!intent.is_null())
    e["payment_intent"] = intent;
  return json{{"error", e}}.dump();
}

const invoice_id inv{"8a1c7f5e-0000-4000-8000-000000000001"};
const intent_request req{inv, 4999, "eur", "wf-1", "shp_1"};

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  script_server stripe;
  provider_actor provider;

  explicit fixture(std::function<void(stripe_client_config&)> tweak = {}) {
    sys = std::make_unique<caf::actor_system>(cfg);
    stripe_client_config c;
    c.secret_key = "sk_test_51UnitTestKey";
    c.api_base = stripe.base();
    c.retry.initial_delay = std::chrono::milliseconds(20);
    c.retry.max_delay = std::chrono::milliseconds(80);
    c.retry.attempt_timeout = std::chrono::milliseconds(2'000);
    c.retry.budget = std::chrono::milliseconds(5'000);
    c.random = [] { return 0.5; };
    if (tweak)
      tweak(c);
    auto p = spawn_stripe_client(*sys, c);
    REQUIRE(ok(p));
    provider = std::get<provider_actor>(p);
  }
  ~fixture() {
    caf::anon_send_exit(provider, caf::exit_reason::user_shutdown);
    provider = nullptr;
  }

  template <class... Ts>
  intent_result ask(Ts&&... xs) {
    caf::scoped_actor self{*sys};
    intent_result out = fail(billing_errc::internal, "no answer");
    self->request(provider, std::chrono::seconds(30), std::forward<Ts>(xs)...)
      .receive([&](intent_result& r) { out = std::move(r); },
               [&](caf::error& e) { out = fail(billing_errc::internal, caf::to_string(e)); });
    return out;
  }
};

intent_info info(const intent_result& r) {
  if (!ok(r))
    FAIL("failure: " << std::get<failure>(r).message);
  return std::get<intent_info>(r);
}

failure why(const intent_result& r) {
  REQUIRE_FALSE(ok(r));
  return std::get<failure>(r);
}

} // namespace

TEST_CASE("stripe_client: create sends what the SDK sends", "[stripe][client]") {
  fixture f;
  f.stripe.script({{200, intent_json("pi_1", "requires_payment_method").dump()}});
  auto r = f.ask(create_atom::value, req);
  auto i = info(r);
  CHECK(i.id.str() == "pi_1");
  CHECK(i.client_secret == "pi_1_secret_abc");
  CHECK(i.status == "requires_payment_method");
  CHECK(i.amount_cents == 4999);
  CHECK(i.currency == "eur");
  CHECK_FALSE(i.livemode);

  auto seen = f.stripe.requests();
  REQUIRE(seen.size() == 1);
  auto& s = seen[0];
  CHECK(s.method == "POST");
  CHECK(s.target == "/v1/payment_intents");
  CHECK(s.body == stripe::create_intent(req).body);
  CHECK(s.headers["authorization"] == "Bearer sk_test_51UnitTestKey");
  CHECK(s.headers["stripe-version"] == std::string{stripe::default_api_version});
  CHECK(s.headers["idempotency-key"] == "billingd:" + inv.str() + ":create_intent");
  CHECK(s.headers["content-type"] == "application/x-www-form-urlencoded");
  CHECK(s.headers["accept"] == "application/json");
  CHECK(s.headers["content-length"] == std::to_string(s.body.size()));
}

TEST_CASE("stripe_client: get is a GET without body or idempotency key", "[stripe][client]") {
  fixture f{[](stripe_client_config& c) { c.api_version = "2025-01-01.pinned"; }};
  f.stripe.script({{200, intent_json("pi_2", "succeeded").dump()}});
  auto i = info(f.ask(get_atom::value, intent_id{"pi_2"}));
  CHECK(i.status == "succeeded");
  auto s = f.stripe.requests().at(0);
  CHECK(s.method == "GET");
  CHECK(s.target == "/v1/payment_intents/pi_2");
  CHECK(s.body.empty());
  CHECK(s.headers.count("idempotency-key") == 0);
  CHECK(s.headers["content-type"] == "application/x-www-form-urlencoded"); // as the SDK
  CHECK(s.headers.count("content-length") == 0);
  CHECK(s.headers["stripe-version"] == "2025-01-01.pinned");
}

TEST_CASE("stripe_client: retries 500, 429 and 409 with the same key, then succeeds", "[stripe][client]") {
  fixture f;
  f.stripe.script({{500, error_json("api_error", "", "An unknown error occurred")},
                   {429, error_json("invalid_request_error", "lock_timeout", "locked")},
                   {200, intent_json("pi_3", "requires_payment_method").dump()}});
  auto i = info(f.ask(create_atom::value, req));
  CHECK(i.id.str() == "pi_3");
  auto seen = f.stripe.requests();
  REQUIRE(seen.size() == 3);
  for (auto& s : seen) {
    CHECK(s.headers["idempotency-key"] == "billingd:" + inv.str() + ":create_intent");
    CHECK(s.body == seen[0].body);
  }
  SECTION("409 too") {
    f.stripe.script({{409, error_json("invalid_request_error", "idempotency_key_in_use", "in use")},
                     {200, intent_json("pi_3", "requires_payment_method").dump()}});
    CHECK(ok(f.ask(create_atom::value, req)));
    CHECK(f.stripe.requests().size() == 5);
  }
}

TEST_CASE("stripe_client: retries are bounded: count, then unavailable", "[stripe][client]") {
  fixture f;
  f.stripe.script({{503, error_json("api_error", "", "down")}});
  auto e = why(f.ask(create_atom::value, req));
  CHECK(e.code == billing_errc::unavailable);
  CHECK(f.stripe.requests().size() == 3); // 1 + max_retries (2)
}

TEST_CASE("stripe_client: retries are bounded in time", "[stripe][client]") {
  fixture f{[](stripe_client_config& c) {
    c.retry.max_retries = 50;
    c.retry.attempt_timeout = std::chrono::milliseconds(300);
    c.retry.budget = std::chrono::milliseconds(1'000);
    c.retry.min_attempt = std::chrono::milliseconds(100);
  }};
  f.stripe.script({{200, intent_json("pi_4", "requires_payment_method").dump(), {}, std::chrono::milliseconds(2'000)}});
  auto t0 = std::chrono::steady_clock::now();
  auto e = why(f.ask(create_atom::value, req));
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(e.code == billing_errc::unavailable);
  CHECK(took < std::chrono::milliseconds(2'500)); // the budget (1 s), not 51 attempts of 300 ms
  auto n = f.stripe.requests().size();
  CHECK(n >= 2);
  CHECK(n <= 4);
}

TEST_CASE("stripe_client: Stripe-Should-Retry decides", "[stripe][client]") {
  fixture f;
  SECTION("false on a 500: one request") {
    f.stripe.script({{500, error_json("api_error", "", "stored failure"), {{"Stripe-Should-Retry", "false"}}}});
    CHECK(why(f.ask(create_atom::value, req)).code == billing_errc::unavailable);
    CHECK(f.stripe.requests().size() == 1);
  }
  SECTION("true on a 400: retried") {
    f.stripe.script({{400, error_json("invalid_request_error", "", "odd"), {{"Stripe-Should-Retry", "true"}}},
                     {200, intent_json("pi_5", "requires_payment_method").dump()}});
    CHECK(ok(f.ask(create_atom::value, req)));
    CHECK(f.stripe.requests().size() == 2);
  }
}

TEST_CASE("stripe_client: 4xx are not retried and map to the caller's errors", "[stripe][client]") {
  fixture f;
  SECTION("invalid request: Stripe's message and param") {
    f.stripe.script({{400, error_json("invalid_request_error", "amount_too_small", "Amount must be at least $0.50 usd",
                                      "amount")}});
    auto e = why(f.ask(create_atom::value, req));
    CHECK(e.code == billing_errc::invalid_argument);
    CHECK(e.message == "Amount must be at least $0.50 usd");
    CHECK(e.field == "amount");
    CHECK(f.stripe.requests().size() == 1);
  }
  SECTION("401: internal, once") {
    f.stripe.script({{401, error_json("invalid_request_error", "", "Invalid API Key provided: sk_test_****Key")}});
    for (int i = 0; i < 3; ++i) {
      auto e = why(f.ask(create_atom::value, req));
      CHECK(e.code == billing_errc::internal);
      CHECK(e.message.find("sk_test") == std::string::npos);
    }
    CHECK(f.stripe.requests().size() == 3); // one per call, no retries
  }
  SECTION("idempotency_error: internal") {
    f.stripe.script({{400, error_json("idempotency_error", "", "Keys for idempotent requests can only be used with the same parameters")}});
    CHECK(why(f.ask(create_atom::value, req)).code == billing_errc::internal);
    CHECK(f.stripe.requests().size() == 1);
  }
  SECTION("a 2xx that is no PaymentIntent: internal") {
    f.stripe.script({{200, "{\"object\":\"charge\",\"id\":\"ch_1\"}"}});
    CHECK(why(f.ask(create_atom::value, req)).code == billing_errc::internal);
  }
}

TEST_CASE("stripe_client: no answer at all is retried, then unavailable", "[stripe][client]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  stripe_client_config c;
  c.secret_key = "rk_live_51Restricted";
  c.api_base = "http://127.0.0.1:" + std::to_string(unused_port());
  c.retry.initial_delay = std::chrono::milliseconds(10);
  auto p = spawn_stripe_client(sys, c);
  REQUIRE(ok(p));
  auto provider = std::get<provider_actor>(p);
  caf::scoped_actor self{sys};
  self->request(provider, std::chrono::seconds(30), create_atom::value, req)
    .receive([&](intent_result& r) {
               REQUIRE_FALSE(ok(r));
               CHECK(std::get<failure>(r).code == billing_errc::unavailable);
               CHECK(std::get<failure>(r).message.find("no answer") != std::string::npos);
             },
             [&](caf::error& e) { FAIL(caf::to_string(e)); });
  self->send_exit(provider, caf::exit_reason::user_shutdown);
}

TEST_CASE("stripe_client: cancel, and the cancel that raced a payment", "[stripe][client]") {
  fixture f;
  SECTION("canceled") {
    f.stripe.script({{200, intent_json("pi_6", "canceled").dump()}});
    CHECK(info(f.ask(cancel_atom::value, intent_id{"pi_6"}, inv)).status == "canceled");
    auto s = f.stripe.requests().at(0);
    CHECK(s.target == "/v1/payment_intents/pi_6/cancel");
    CHECK(s.body == "cancellation_reason=abandoned");
    CHECK(s.headers["idempotency-key"] == "billingd:" + inv.str() + ":cancel_intent");
  }
  for (std::string status : {"succeeded", "processing", "canceled"}) {
    SECTION("already " + status + ": the intent's real status, not a failure") {
      f.stripe.script({{400, error_json("invalid_request_error", "payment_intent_unexpected_state",
                                        "You cannot cancel this PaymentIntent because it has a status of " + status + ".",
                                        "", intent_json("pi_7", status, 4999))}});
      auto i = info(f.ask(cancel_atom::value, intent_id{"pi_7"}, inv));
      CHECK(i.status == status);
      CHECK(i.amount_cents == 4999);
      CHECK(i.currency == "eur");
      CHECK(f.stripe.requests().size() == 1);
    }
  }
  SECTION("a replayed unexpected state is checked afresh") {
    f.stripe.script({{400, error_json("invalid_request_error", "payment_intent_unexpected_state", "processing", "",
                                      intent_json("pi_8", "processing")),
                      {{"Idempotent-Replayed", "true"}}},
                     {200, intent_json("pi_8", "succeeded").dump()}});
    CHECK(info(f.ask(cancel_atom::value, intent_id{"pi_8"}, inv)).status == "succeeded");
    auto seen = f.stripe.requests();
    REQUIRE(seen.size() == 2);
    CHECK(seen[1].method == "GET");
    CHECK(seen[1].target == "/v1/payment_intents/pi_8");
  }
  SECTION("another refusal stays a failure") {
    f.stripe.script({{404, error_json("invalid_request_error", "resource_missing", "No such payment_intent: 'pi_9'", "intent")}});
    CHECK(why(f.ask(cancel_atom::value, intent_id{"pi_9"}, inv)).code == billing_errc::internal);
  }
}

TEST_CASE("stripe_client: bounded concurrency", "[stripe][client]") {
  fixture f{[](stripe_client_config& c) { c.max_concurrency = 2; }};
  f.stripe.script({{200, intent_json("pi_c", "requires_payment_method").dump(), {}, std::chrono::milliseconds(150)}});
  caf::scoped_actor self{*f.sys};
  const int n = 6;
  for (int i = 0; i < n; ++i) {
    intent_request r = req;
    r.invoice = invoice_id{"inv-" + std::to_string(i)};
    self->send(f.provider, create_atom::value, r);
  }
  int answered = 0;
  auto t0 = std::chrono::steady_clock::now();
  self->receive_for(answered, n)([&](intent_result& r) { CHECK(ok(r)); });
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took >= std::chrono::milliseconds(400)); // 3 rounds of 2 x 150 ms
  CHECK(f.stripe.requests().size() == static_cast<size_t>(n));
}

TEST_CASE("spawn_stripe_client refuses what cannot work", "[stripe][client]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto refused = [&](std::function<void(stripe_client_config&)> tweak) {
    stripe_client_config c;
    c.secret_key = "sk_test_51Abc";
    tweak(c);
    auto r = spawn_stripe_client(sys, c);
    REQUIRE_FALSE(ok(r));
    CHECK(std::get<failure>(r).code == billing_errc::invalid_argument);
    CHECK(std::get<failure>(r).message.find("sk_test_51Abc") == std::string::npos);
    return std::get<failure>(r).field;
  };
  CHECK(refused([](auto& c) { c.secret_key = "pk_test_51Abc"; }) == "stripe_secret_key");
  CHECK(refused([](auto& c) { c.secret_key = ""; }) == "stripe_secret_key");
  CHECK(refused([](auto& c) { c.api_base = "http://api.stripe.com"; }) == "stripe_api_base");
  CHECK(refused([](auto& c) { c.ca_file = "/nonexistent/ca.pem"; }) == "stripe_ca_path");
  CHECK(refused([](auto& c) { c.api_version = ""; }) == "stripe_api_version");
}

// -- Checkout Sessions, refunds, the event log ---------------------------------------

namespace {

template <class T, class... Ts>
T ask_as(fixture& f, Ts&&... xs) {
  caf::scoped_actor self{*f.sys};
  T out = fail(billing_errc::internal, "no answer");
  self->request(f.provider, std::chrono::seconds(30), std::forward<Ts>(xs)...)
    .receive([&](T& r) { out = std::move(r); },
             [&](caf::error& e) { out = fail(billing_errc::internal, caf::to_string(e)); });
  return out;
}

json session_json(const std::string& status, const std::string& payment_status, const std::string& intent = "") {
  json s = {{"id", "cs_test_1"},       {"object", "checkout.session"}, {"status", status},
            {"payment_status", payment_status}, {"amount_total", 4999}, {"currency", "eur"},
            {"livemode", false},        {"created", 1720771810},        {"expires_at", 1720858210},
            {"metadata", json::object()}};
  s["url"] = status == "open" ? json("https://checkout.stripe.com/c/pay/cs_test_1") : json(nullptr);
  s["payment_intent"] = intent.empty() ? json(nullptr) : json(intent);
  return s;
}

} // namespace

TEST_CASE("Checkout: create sends the session's form with its key; expire of a closed session reads it", "[stripe][client]") {
  fixture f;
  f.stripe.script({{200, session_json("open", "unpaid").dump()}});
  checkout_request cr{inv, 4999, "eur", "wf-1", "shp_1", "https://shop.example/ok", "https://shop.example/no", 1720858210};
  auto r = ask_as<session_result>(f, create_atom::value, cr);
  REQUIRE(ok(r));
  auto& s = std::get<session_info>(r);
  CHECK(s.id.str() == "cs_test_1");
  CHECK(s.url == "https://checkout.stripe.com/c/pay/cs_test_1");
  auto sent = f.stripe.requests().back();
  CHECK(sent.target == "/v1/checkout/sessions");
  CHECK(sent.headers.at("idempotency-key") == "billingd:" + inv.str() + ":create_checkout_session");
  CHECK(sent.body.find("mode=payment") != std::string::npos);
  CHECK(sent.body.find("expires_at=1720858210") != std::string::npos);
  CHECK(sent.body.find("payment_intent_data[metadata][invoice_id]=" + inv.str()) != std::string::npos);

  // Stripe expires only open sessions and says so with a 400 without a
  // code: the client reads the session and answers it as it is.
  f.stripe.script({{400, error_json("invalid_request_error", "", "Only Checkout Sessions with a status in [\"open\"] can be expired.")},
                   {200, session_json("complete", "paid", "pi_77").dump()}});
  auto e = ask_as<session_result>(f, expire_atom::value, session_id{"cs_test_1"}, inv);
  REQUIRE(ok(e));
  CHECK(std::get<session_info>(e).status == "complete");
  CHECK(std::get<session_info>(e).intent.str() == "pi_77");
  auto reqs = f.stripe.requests();
  CHECK(reqs.at(reqs.size() - 2).target == "/v1/checkout/sessions/cs_test_1/expire");
  CHECK(reqs.back().method == "GET");
  CHECK(reqs.back().target == "/v1/checkout/sessions/cs_test_1");
}

TEST_CASE("Refunds: the refunded total comes back; a reused key is the caller's conflict", "[stripe][client]") {
  fixture f;
  json refund = {{"id", "re_1"}, {"object", "refund"}, {"amount", 1000}, {"currency", "eur"}, {"status", "succeeded"},
                 {"payment_intent", "pi_1"}, {"created", 1720771900}, {"metadata", json::object()},
                 {"charge", {{"id", "ch_1"}, {"object", "charge"}, {"amount", 4999}, {"amount_refunded", 3000},
                             {"livemode", false}}}};
  f.stripe.script({{200, refund.dump(), {{"Idempotent-Replayed", "true"}}}});
  refund_request rr{inv, intent_id{"pi_1"}, 1000, "requested_by_customer", "k:abc", 4999, 2000};
  auto r = ask_as<refund_result>(f, refund_atom::value, rr);
  REQUIRE(ok(r));
  auto& info = std::get<refund_info>(r);
  CHECK(info.id == "re_1");
  CHECK(info.charge_refunded_cents == 3000);
  CHECK(info.charge_amount_cents == 4999);
  CHECK(info.replayed);
  auto sent = f.stripe.requests().back();
  CHECK(sent.headers.at("idempotency-key") == "billingd:" + inv.str() + ":create_refund:k:abc");
  CHECK(sent.body.find("expand[0]=charge") != std::string::npos);

  f.stripe.script({{400, error_json("idempotency_error", "", "Keys for idempotent requests can only be used with the same parameters")}});
  auto c = ask_as<refund_result>(f, refund_atom::value, rr);
  REQUIRE_FALSE(ok(c));
  CHECK(std::get<failure>(c).code == billing_errc::conflict);
  CHECK(std::get<failure>(c).field == "Idempotency-Key");
  f.stripe.script({{400, error_json("invalid_request_error", "", "Refund amount (9000) is greater than unrefunded amount on charge (2999)", "amount")}});
  auto big = ask_as<refund_result>(f, refund_atom::value, rr);
  REQUIRE_FALSE(ok(big));
  CHECK(std::get<failure>(big).code == billing_errc::invalid_argument);
  CHECK(std::get<failure>(big).field == "amount");
}

TEST_CASE("The event log: one page, its query, the raw events", "[stripe][client]") {
  fixture f;
  json ev = {{"id", "evt_1"}, {"object", "event"}, {"type", "payment_intent.succeeded"}, {"created", 1720771900},
             {"data", {{"object", intent_json("pi_1", "succeeded")}}}};
  f.stripe.script({{200, json{{"object", "list"}, {"data", json::array({ev})}, {"has_more", true}}.dump()}});
  event_listing q{{"payment_intent.succeeded", "charge.refunded"}, 1720771000, 1720772000, "evt_0", 100};
  auto r = ask_as<event_page_result>(f, list_atom::value, q);
  REQUIRE(ok(r));
  auto& page = std::get<event_listing_page>(r);
  CHECK(page.has_more);
  REQUIRE(page.events.size() == 1);
  CHECK(page.events[0].id == "evt_1");
  CHECK(json::parse(page.events[0].raw)["data"]["object"]["id"] == "pi_1");
  CHECK(f.stripe.requests().back().target
        == "/v1/events?limit=100&types[0]=payment_intent.succeeded&types[1]=charge.refunded"
           "&created[gte]=1720771000&created[lte]=1720772000&starting_after=evt_0");
}
