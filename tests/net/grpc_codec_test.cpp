// The gRPC edge's pure parts: the status table, failures as grpc::Status
// (fixed messages, BadRequest details), create validation, page tokens;
// per-key rate limits with a fake clock; the request metrics exposition.
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "net/grpc_codec.hpp"
#include "net/key_limits.hpp"
#include "net/request_metrics.hpp"
#include "net/status_map.hpp"

#include <catch2/catch.hpp>

#include <sstream>

using namespace billing;
using namespace billing::net;

TEST_CASE("every billing error has one gRPC code beside its HTTP status", "[grpc_codec]") {
  struct row {
    billing_errc e;
    grpc_code grpc;
    unsigned http;
  };
  const std::vector<row> table = {
    {billing_errc::invalid_argument, grpc_code::invalid_argument, 400},
    {billing_errc::unauthenticated, grpc_code::unauthenticated, 401},
    {billing_errc::permission_denied, grpc_code::permission_denied, 403},
    {billing_errc::not_found, grpc_code::not_found, 404},
    {billing_errc::conflict, grpc_code::already_exists, 409},
    {billing_errc::invalid_state, grpc_code::failed_precondition, 409},
    {billing_errc::bad_signature, grpc_code::invalid_argument, 400},
    {billing_errc::payload_too_large, grpc_code::resource_exhausted, 413},
    {billing_errc::unavailable, grpc_code::unavailable, 503},
    {billing_errc::overloaded, grpc_code::resource_exhausted, 503},
    {billing_errc::rate_limited, grpc_code::resource_exhausted, 429},
    {billing_errc::timeout, grpc_code::deadline_exceeded, 503},
    {billing_errc::provider_error, grpc_code::unavailable, 502},
    {billing_errc::internal, grpc_code::internal, 500},
  };
  for (auto& r : table) {
    INFO(to_string(r.e));
    CHECK(grpc_status(r.e) == r.grpc);
    CHECK(http_status(r.e) == r.http);
  }
  CHECK(std::string{grpc_code_name(grpc_code::resource_exhausted)} == "RESOURCE_EXHAUSTED");
  CHECK(std::string{grpc_code_name(grpc_code::unauthenticated)} == "UNAUTHENTICATED");
}

TEST_CASE("billingd's own failures answer the fixed message, never their text", "[grpc_codec]") {
  for (auto e : {billing_errc::internal, billing_errc::unavailable, billing_errc::overloaded,
                 billing_errc::timeout, billing_errc::provider_error}) {
    auto st = to_status(fail(e, "pqxx::broken_connection: server closed the connection at 10.0.0.7"), "req-1");
    INFO(to_string(e));
    CHECK(st.error_message().find("pqxx") == std::string::npos);
    CHECK(st.error_message().find("10.0.0.7") == std::string::npos);
    CHECK(st.error_message() == std::string{public_message(e)} + " (request_id req-1)");
    CHECK(st.error_details().empty());
  }
  auto own = to_status(fail(billing_errc::not_found, "no such invoice"), "r2");
  CHECK(own.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(own.error_message() == "no such invoice (request_id r2)");
}

TEST_CASE("INVALID_ARGUMENT carries a google.rpc.BadRequest naming the field", "[grpc_codec]") {
  auto st = to_status(fail(billing_errc::invalid_argument, "currency is required", "currency"), "r3");
  REQUIRE(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::Status detail;
  REQUIRE(detail.ParseFromString(st.error_details()));
  CHECK(detail.code() == 3);
  REQUIRE(detail.details_size() == 1);
  google::rpc::BadRequest br;
  REQUIRE(detail.details(0).UnpackTo(&br));
  REQUIRE(br.field_violations_size() == 1);
  CHECK(br.field_violations(0).field() == "currency");
  CHECK(br.field_violations(0).description() == "currency is required");
}

TEST_CASE("CreateInvoiceRequest is validated like the HTTP body", "[grpc_codec]") {
  auto good = [] {
    pb::CreateInvoiceRequest r;
    r.set_shipment_id("shp_1");
    r.set_user_id("usr_1");
    r.set_workflow_id("wf_1");
    r.set_amount_cents(1250);
    r.set_currency("EUR");
    return r;
  };
  auto parsed = from_proto(good());
  REQUIRE(ok(parsed));
  CHECK(std::get<create_invoice_request>(parsed).currency == "eur");
  CHECK_FALSE(std::get<create_invoice_request>(parsed).expires_in_seconds);

  struct bad_case {
    const char* field;
    std::function<void(pb::CreateInvoiceRequest&)> edit;
  };
  const std::vector<bad_case> bad = {
    {"shipment_id", [](auto& r) { r.clear_shipment_id(); }},
    {"user_id", [](auto& r) { r.set_user_id(std::string(201, 'u')); }},
    {"workflow_id", [](auto& r) { r.set_workflow_id("bad\x01id"); }},
    {"workflow_id", [](auto& r) { r.set_workflow_id("\xff\xfe"); }},
    {"amount_cents", [](auto& r) { r.set_amount_cents(0); }},
    {"amount_cents", [](auto& r) { r.set_amount_cents(-5); }},
    {"amount_cents", [](auto& r) { r.set_amount_cents(100'000'000); }},
    {"currency", [](auto& r) { r.clear_currency(); }},
    {"currency", [](auto& r) { r.set_currency("us"); }},
    {"currency", [](auto& r) { r.set_currency("xyz"); }},
    {"expires_in_seconds", [](auto& r) { r.set_expires_in_seconds(59); }},
    {"expires_in_seconds", [](auto& r) { r.set_expires_in_seconds(31 * 86'400); }},
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    DYNAMIC_SECTION("case " << i << ": " << bad[i].field) {
      auto r = good();
      bad[i].edit(r);
      auto p = from_proto(r);
      REQUIRE_FALSE(ok(p));
      CHECK(std::get<failure>(p).code == billing_errc::invalid_argument);
      CHECK(std::get<failure>(p).field == bad[i].field);
    }
  }
  auto e = good();
  e.set_expires_in_seconds(3600);
  CHECK(std::get<create_invoice_request>(from_proto(e)).expires_in_seconds == 3600);
}

TEST_CASE("page tokens round-trip, and belong to one filter", "[grpc_codec]") {
  const page_cursor c{1'767'000'000, "0192a4c1-7e1d-8b3a-9f00-1234567890ab"};
  auto token = encode_page_token(c, "w=wf_1\ns=");
  auto back = decode_page_token(token, "w=wf_1\ns=");
  REQUIRE(back);
  CHECK(back->created_at == c.created_at);
  CHECK(back->id == c.id);
  CHECK_FALSE(decode_page_token(token, "w=wf_2\ns="));
  CHECK_FALSE(decode_page_token("garbage!", "w=wf_1\ns="));
  CHECK_FALSE(decode_page_token("", "w=wf_1\ns="));
  CHECK_FALSE(decode_page_token(std::string(600, 'A'), "w=wf_1\ns="));

  invoice newer, same_time_lower_id, older;
  newer.created_at = c.created_at + 1;
  newer.id = invoice_id{"ffffffff-0000-8000-8000-000000000000"};
  same_time_lower_id.created_at = c.created_at;
  same_time_lower_id.id = invoice_id{"0000aaaa-0000-8000-8000-000000000000"};
  older.created_at = c.created_at - 1;
  older.id = invoice_id{"ffffffff-ffff-8fff-bfff-ffffffffffff"};
  CHECK_FALSE(after_cursor(newer, c));
  CHECK(after_cursor(same_time_lower_id, c));
  CHECK(after_cursor(older, c));
  invoice itself;
  itself.created_at = c.created_at;
  itself.id = invoice_id{c.id};
  CHECK_FALSE(after_cursor(itself, c));
}

TEST_CASE("key limits: a bucket per limited key, refusals counted by name", "[key_limits]") {
  api_key_entry limited{"limited", sha256_of("a"), scope_set{scope::invoices_read}, rate_spec{2, 2}};
  api_key_entry free_key{"free", sha256_of("b"), scope_set{scope::invoices_read}, std::nullopt};
  api_key_store store{{limited, free_key}};
  int64_t now = 0;
  key_limits limits{store, [&] { return now; }};
  const auto& l = store.entries()[0];
  const auto& f = store.entries()[1];
  int64_t retry = 0;
  CHECK_FALSE(limits.admit(l, &retry));
  CHECK_FALSE(limits.admit(l, &retry));
  auto refused = limits.admit(l, &retry);
  REQUIRE(refused);
  CHECK(refused->code == billing_errc::rate_limited);
  CHECK(refused->message.find("limited") != std::string::npos);
  CHECK(retry == 1);
  for (int i = 0; i < 100; ++i)
    CHECK_FALSE(limits.admit(f));
  now += 500'000'000; // half a second: one token back at 2/s
  CHECK_FALSE(limits.admit(l));
  CHECK(limits.admit(l));
  auto counts = limits.snapshot();
  REQUIRE(counts.size() == 1);
  CHECK(counts[0].name == "limited");
  CHECK(counts[0].limited == 2);
}

TEST_CASE("request metrics: cumulative buckets, stable names, fixed label sets", "[request_metrics]") {
  request_metrics m;
  m.observe_http(http_route::create_invoice, 201, std::chrono::microseconds(700));
  m.observe_http(http_route::create_invoice, 201, std::chrono::milliseconds(30));
  m.observe_http(http_route::get_invoice, 404, std::chrono::milliseconds(2));
  m.observe_grpc(grpc_method::get_invoice, grpc_code::not_found, std::chrono::milliseconds(1));
  m.count_webhook(webhook_type_index("payment_intent.succeeded"), webhook_verdict::applied);
  m.count_webhook(webhook_type_index("made.up.type"), verdict_of(outcome::ignored_duplicate));
  m.count_webhook(webhook_unverified, webhook_verdict::bad_signature);
  std::ostringstream out;
  m.write(out);
  auto text = out.str();
  auto has = [&](const std::string& line) {
    INFO(line);
    CHECK(text.find(line + "\n") != std::string::npos);
  };
  const std::string create = R"(route="/v1/invoices",method="POST",status_class="2xx")";
  has("billing_http_request_duration_seconds_bucket{" + create + R"(,le="0.0005"} 0)");
  has("billing_http_request_duration_seconds_bucket{" + create + R"(,le="0.001"} 1)");
  has("billing_http_request_duration_seconds_bucket{" + create + R"(,le="0.025"} 1)");
  has("billing_http_request_duration_seconds_bucket{" + create + R"(,le="0.05"} 2)");
  has("billing_http_request_duration_seconds_bucket{" + create + R"(,le="+Inf"} 2)");
  has("billing_http_request_duration_seconds_count{" + create + "} 2");
  has(R"(billing_http_request_duration_seconds_count{route="/v1/invoices/{id}",method="GET",status_class="4xx"} 1)");
  has(R"(billing_grpc_request_duration_seconds_count{method="GetInvoice",code="NOT_FOUND"} 1)");
  has(R"(billing_grpc_request_duration_seconds_count{method="CreateInvoice",code="OK"} 0)");
  has(R"(billing_webhook_events_total{type="payment_intent.succeeded",verdict="applied"} 1)");
  has(R"(billing_webhook_events_total{type="other",verdict="duplicate"} 1)");
  has(R"(billing_webhook_events_total{type="unverified",verdict="bad_signature"} 1)");
  has(R"(billing_webhook_events_total{type="charge.refunded",verdict="stale"} 0)");
  has("# TYPE billing_http_request_duration_seconds histogram");
  has("billing_grpc_watches 0");
  // Series that saw nothing, other than success, are left out.
  CHECK(text.find(R"(method="CreateInvoice",code="INTERNAL")") == std::string::npos);
}
