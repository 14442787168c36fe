// Unit: the pure rules of the workflow bridge (protocol/outbox.hpp) and the
// bytes of the Temporal request (net/temporal_sink encode_signal_request).

#include "net/temporal_sink.hpp"
#include "protocol/outbox.hpp"
#include "protocol/stripe_signature.hpp"

#include "temporal/api/workflowservice/v1/request_response.pb.h"

#include <catch2/catch.hpp>
#include <google/protobuf/io/coded_stream.h>
#include <nlohmann/json.hpp>

#include <set>

using namespace billing;
using namespace std::chrono_literals;

TEST_CASE("request ids are deterministic UUIDs, one per row", "[outbox]") {
  const invoice_id inv{"6f1c2a3b-0000-8000-8000-000000000001"};
  // Cross-checked with the independent JavaScript derivation in tests/bridge/bridge_lib.mjs.
  CHECK(outbox_request_id(42, inv) == "363af488-4038-8c73-be1e-3b796f4c7127");
  CHECK(outbox_request_id(1, invoice_id{"inv"}) == "11dac41b-7e32-8275-b0dd-7452e788a568");
  CHECK(outbox_request_id(42, inv) == outbox_request_id(42, inv));
  std::set<std::string> ids;
  for (int64_t i = 1; i <= 1000; ++i)
    ids.insert(outbox_request_id(i, inv));
  ids.insert(outbox_request_id(42, invoice_id{"6f1c2a3b-0000-8000-8000-000000000002"}));
  CHECK(ids.size() == 1001);
  auto id = outbox_request_id(7, inv);
  REQUIRE(id.size() == 36);
  CHECK(id[14] == '8'); // version 8
  CHECK(std::string{"89ab"}.find(id[19]) != std::string::npos);
}

TEST_CASE("backoff doubles from min, is capped, and is jittered within [d/2, d]", "[outbox]") {
  retry_policy p{500ms, 8'000ms, std::chrono::seconds{3600}};
  CHECK(retry_delay(p, 1, 0.0) == 250ms);
  CHECK(retry_delay(p, 1, 0.999999) == 499ms);
  CHECK(retry_delay(p, 2, 0.0) == 500ms);
  CHECK(retry_delay(p, 3, 1.0) == 2'000ms);
  CHECK(retry_delay(p, 5, 1.0) == 8'000ms);
  CHECK(retry_delay(p, 60, 1.0) == 8'000ms); // no overflow
  CHECK(retry_delay(p, 60, 0.0) == 4'000ms);
  CHECK(retry_delay(p, 2, -5.0) == 500ms);   // clamped
  CHECK(retry_delay(p, 2, std::nan("")) == 500ms);
}

TEST_CASE("decide: delivered, permanent, retry, and dead past the horizon", "[outbox]") {
  retry_policy p{1'000ms, 60'000ms, std::chrono::seconds{10}};
  outbox_item item;
  item.id = 9;
  item.attempts = 1;
  item.age_ms = 0;
  auto ok = decide(p, item, {delivery_verdict::delivered, ""}, 5, 0.5);
  CHECK(ok.kind == settle_kind::delivered);
  CHECK(ok.id == 9);
  auto gone = decide(p, item, {delivery_verdict::permanent, "temporal NOT_FOUND: gone"}, 5, 0.5);
  CHECK(gone.kind == settle_kind::dead);
  CHECK(gone.error == "permanent: temporal NOT_FOUND: gone");
  auto again = decide(p, item, {delivery_verdict::retry, "temporal UNAVAILABLE: x"}, 5, 0.0);
  CHECK(again.kind == settle_kind::retry);
  CHECK(again.delay_ms == 500);
  CHECK(again.error == "temporal UNAVAILABLE: x");
  item.attempts = 4;  // next delay 4 s..8 s
  item.age_ms = 5'001;
  auto late = decide(p, item, {delivery_verdict::retry, "timeout"}, 1'000, 0.0);
  CHECK(late.kind == settle_kind::dead); // 5.001 s + 1 s + 4 s > 10 s
  CHECK(late.error.find("retry horizon of 10 s passed after 4 attempt(s); last: timeout") == 0);
  item.age_ms = 5'000; // exactly at the horizon: still tried
  CHECK(decide(p, item, {delivery_verdict::retry, "timeout"}, 1'000, 0.0).kind == settle_kind::retry);
}

TEST_CASE("Temporal status codes: NOT_FOUND and INVALID_ARGUMENT are permanent", "[outbox]") {
  CHECK(classify_grpc_status(0, "", "") == delivery_verdict::delivered);
  CHECK(classify_grpc_status(5, "workflow execution not found", "") == delivery_verdict::permanent);
  CHECK(classify_grpc_status(5, "workflow execution already completed", "") == delivery_verdict::permanent);
  CHECK(classify_grpc_status(3, "bad", "") == delivery_verdict::permanent);
  // A missing namespace is the deployment's fault, not the row's.
  CHECK(classify_grpc_status(5, "Namespace billing is not found.", "") == delivery_verdict::retry);
  CHECK(classify_grpc_status(5, "x", "type.googleapis.com/temporal.api.errordetails.v1.NamespaceNotFoundFailure")
        == delivery_verdict::retry);
  for (int code : {1, 2, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
    CHECK(classify_grpc_status(code, "", "") == delivery_verdict::retry);
}

TEST_CASE("HTTP statuses: 2xx delivered, 408/429/5xx retried, other 4xx permanent", "[outbox]") {
  for (unsigned s : {200u, 201u, 202u, 204u, 299u})
    CHECK(classify_http_status(s) == delivery_verdict::delivered);
  for (unsigned s : {408u, 429u, 500u, 502u, 503u, 504u, 599u, 301u, 100u, 0u})
    CHECK(classify_http_status(s) == delivery_verdict::retry);
  for (unsigned s : {400u, 401u, 403u, 404u, 409u, 410u, 422u, 499u})
    CHECK(classify_http_status(s) == delivery_verdict::permanent);
}

TEST_CASE("callback URL, body and Billing-Signature", "[outbox]") {
  CHECK(callback_url("https://h/x/{signal}?s={signal}", "PaymentFailed") == "https://h/x/PaymentFailed?s=PaymentFailed");
  CHECK(callback_url("https://h/hook", "PaymentFailed") == "https://h/hook");
  signal_delivery d;
  d.outbox_id = 12;
  d.request_id = "rid";
  d.invoice = invoice_id{"inv-1"};
  d.workflow_id = "wf-1";
  d.signal = "PaymentConfirmed";
  d.payload = R"({"invoice_id":"inv-1","status":"PAID","amount_cents":100})";
  d.attempt = 3;
  d.created_at = 1'700'000'000;
  auto body = callback_body(d);
  CHECK(body == callback_body(d));
  auto j = nlohmann::json::parse(body);
  CHECK(j["id"] == "rid");
  CHECK(j["type"] == "PaymentConfirmed");
  CHECK(j["workflow_id"] == "wf-1");
  CHECK(j["invoice_id"] == "inv-1");
  CHECK(j["outbox_id"] == 12);
  CHECK(j["attempt"] == 3);
  CHECK(j["created"] == 1'700'000'000);
  CHECK(j["data"]["status"] == "PAID");
  // Stripe's scheme: the Stripe verifier accepts it with the callback secret.
  auto header = billing_signature(body, "cb_secret", 1'700'000'100);
  CHECK(header.starts_with("t=1700000100,v1="));
  CHECK(header.substr(16) == hmac_sha256_hex("cb_secret", "1700000100." + body));
  std::vector<std::string> secrets{"cb_secret"};
  CHECK(verify_stripe_signature(header, body, secrets, 1'700'000'100) == signature_error::none);
  std::vector<std::string> wrong{"other"};
  CHECK(verify_stripe_signature(header, body, wrong, 1'700'000'100) == signature_error::no_matching_signature);
}

TEST_CASE("configured signal names map the canonical ones", "[outbox]") {
  signal_names n;
  n.confirmed = "OrderPaid";
  CHECK(n.map("PaymentConfirmed") == "OrderPaid");
  CHECK(n.map("PaymentDisputed") == "PaymentDisputed");
  CHECK(n.map("Other") == "Other");
}

TEST_CASE("the Temporal request carries upstream field numbers and a json/plain payload", "[temporal]") {
  net::temporal_sink_config cfg;
  cfg.namespace_name = "ns";
  cfg.identity = "billingd@test";
  signal_delivery d;
  d.request_id = "req-1";
  d.workflow_id = "wf-9";
  d.signal = "PaymentConfirmed";
  d.payload = R"({"status":"PAID"})";
  auto bytes = net::encode_signal_request(cfg, d);

  // Top-level tags on the wire: namespace 1, workflow_execution 2,
  // signal_name 3, input 4, identity 5, request_id 6.
  google::protobuf::io::CodedInputStream in{reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size())};
  std::set<uint32_t> fields;
  for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
    CHECK((tag & 7) == 2); // length-delimited
    fields.insert(tag >> 3);
    uint32_t len = 0;
    REQUIRE(in.ReadVarint32(&len));
    REQUIRE(in.Skip(static_cast<int>(len)));
  }
  CHECK(fields == std::set<uint32_t>{1, 2, 3, 4, 5, 6});

  temporal::api::workflowservice::v1::SignalWorkflowExecutionRequest req;
  REQUIRE(req.ParseFromString(bytes));
  CHECK(req.namespace_() == "ns");
  CHECK(req.workflow_execution().workflow_id() == "wf-9");
  CHECK(req.workflow_execution().run_id().empty());
  CHECK(req.signal_name() == "PaymentConfirmed");
  CHECK(req.identity() == "billingd@test");
  CHECK(req.request_id() == "req-1");
  REQUIRE(req.input().payloads_size() == 1);
  CHECK(req.input().payloads(0).metadata().at("encoding") == "json/plain");
  CHECK(req.input().payloads(0).data() == d.payload);
}
