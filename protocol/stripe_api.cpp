#include "protocol/stripe_api.hpp"

#include "protocol/api_keys.hpp"
#include "protocol/stripe_form.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

namespace billing::stripe {

namespace {

using ojson = nlohmann::ordered_json;

ojson invoice_metadata(const invoice_id& invoice, const std::string& workflow_id,
                       const std::string& shipment_id) {
  ojson m = ojson::object();
  m["invoice_id"] = invoice.str();
  m["workflow_id"] = workflow_id;
  m["shipment_id"] = shipment_id;
  return m;
}

request post(operation op, std::string path, const ojson& params, std::string key) {
  return request{method::post, std::move(path), form_encode(params), std::move(key), op};
}

request get(operation op, std::string path, const ojson& query = ojson::object()) {
  auto q = form_encode(query);
  if (!q.empty())
    path += "?" + q;
  return request{method::get, std::move(path), {}, {}, op};
}

// An id in a path: Stripe's ids are [A-Za-z0-9_], escaped anyway so that no
// id can reach another path.
std::string segment(std::string_view id) {
  return form_escape(id);
}

} // namespace

std::optional<provider_mode> mode_of_key(std::string_view key) noexcept {
  for (std::string_view p : {"sk_test_", "rk_test_"})
    if (key.size() > p.size() && key.starts_with(p))
      return provider_mode::test;
  for (std::string_view p : {"sk_live_", "rk_live_"})
    if (key.size() > p.size() && key.starts_with(p))
      return provider_mode::live;
  return std::nullopt;
}

std::string api_base_problem(std::string_view base) {
  bool tls = base.starts_with("https://");
  if (!tls && !base.starts_with("http://"))
    return "must start with https://";
  auto rest = base.substr(tls ? 8 : 7);
  if (rest.ends_with('/'))
    rest.remove_suffix(1);
  if (rest.empty())
    return "names no host";
  if (rest.find_first_of("/?#@ ") != std::string_view::npos)
    return "must be scheme://host[:port] without a path, query or user info";
  std::string_view host = rest;
  if (host.starts_with('[')) {
    auto close = host.find(']');
    if (close == std::string_view::npos)
      return "has an unclosed [ in the host";
    host = host.substr(0, close + 1);
  } else if (auto colon = host.find(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  if (host.empty())
    return "names no host";
  if (tls)
    return {};
  bool loopback = host == "localhost" || host == "[::1]"
                  || (host.starts_with("127.") && host.find_first_not_of("0123456789.") == std::string_view::npos);
  if (!loopback)
    return "uses http:// to a host that is not loopback: the secret key would cross the network in the "
           "clear (http:// is for a fake Stripe on 127.0.0.1 in tests)";
  return {};
}

std::string_view to_string(operation op) noexcept {
  switch (op) {
    case operation::create_intent: return "create_intent";
    case operation::retrieve_intent: return "retrieve_intent";
    case operation::cancel_intent: return "cancel_intent";
    case operation::create_checkout_session: return "create_checkout_session";
    case operation::retrieve_checkout_session: return "retrieve_checkout_session";
    case operation::expire_checkout_session: return "expire_checkout_session";
    case operation::create_refund: return "create_refund";
    case operation::list_events: return "list_events";
  }
  return "unknown";
}

std::string idempotency_key(const invoice_id& invoice, operation op, std::string_view discriminator) {
  std::string key = "billingd:" + invoice.str() + ":" + std::string{to_string(op)};
  if (discriminator.empty())
    return key.size() <= max_idempotency_key_length ? key : "billingd:" + to_hex(sha256_of(key));
  std::string full = key + ":" + std::string{discriminator};
  if (full.size() <= max_idempotency_key_length)
    return full;
  full = key + ":" + to_hex(sha256_of(discriminator));
  // Only an absurdly long invoice id gets here; hash the lot, still a
  // function of both parts.
  return full.size() <= max_idempotency_key_length ? full : "billingd:" + to_hex(sha256_of(full));
}

std::string intent_description(const intent_request& req) {
  return "Shipment " + req.shipment_id + " (invoice " + req.invoice.str() + ")";
}

request create_intent(const intent_request& req) {
  ojson p = ojson::object();
  p["amount"] = req.amount_cents;
  p["currency"] = req.currency;
  p["automatic_payment_methods"] = ojson{{"enabled", true}};
  p["description"] = intent_description(req);
  p["metadata"] = invoice_metadata(req.invoice, req.workflow_id, req.shipment_id);
  return post(operation::create_intent, "/v1/payment_intents", p,
              idempotency_key(req.invoice, operation::create_intent));
}

request retrieve_intent(const intent_id& id) {
  return get(operation::retrieve_intent, "/v1/payment_intents/" + segment(id.str()));
}

request cancel_intent(const intent_id& id, const invoice_id& invoice) {
  ojson p = ojson::object();
  p["cancellation_reason"] = "abandoned";
  return post(operation::cancel_intent, "/v1/payment_intents/" + segment(id.str()) + "/cancel", p,
              idempotency_key(invoice, operation::cancel_intent));
}

bool checkout_expiry_ok(int64_t now, int64_t expires_at, int64_t slack) noexcept {
  return expires_at >= now + checkout_min_expiry_seconds + slack
         && expires_at <= now + checkout_max_expiry_seconds - slack;
}

request create_checkout_session(const checkout_params& c) {
  intent_request as_intent{c.invoice, c.amount_cents, c.currency, c.workflow_id, c.shipment_id};
  auto metadata = invoice_metadata(c.invoice, c.workflow_id, c.shipment_id);
  ojson price = ojson::object();
  price["currency"] = c.currency;
  price["unit_amount"] = c.amount_cents;
  price["product_data"] = ojson{{"name", "Shipment " + c.shipment_id}};
  ojson item = ojson::object();
  item["price_data"] = price;
  item["quantity"] = 1;
  ojson p = ojson::object();
  p["mode"] = "payment";
  p["line_items"] = ojson::array({item});
  p["success_url"] = c.success_url;
  p["cancel_url"] = c.cancel_url;
  p["client_reference_id"] = c.invoice.str();
  p["expires_at"] = c.expires_at;
  p["metadata"] = metadata;
  ojson pid = ojson::object();
  pid["description"] = intent_description(as_intent);
  pid["metadata"] = metadata;
  p["payment_intent_data"] = pid;
  return post(operation::create_checkout_session, "/v1/checkout/sessions", p,
              idempotency_key(c.invoice, operation::create_checkout_session));
}

request retrieve_checkout_session(std::string_view session_id) {
  return get(operation::retrieve_checkout_session, "/v1/checkout/sessions/" + segment(session_id));
}

request expire_checkout_session(std::string_view session_id, const invoice_id& invoice) {
  return post(operation::expire_checkout_session, "/v1/checkout/sessions/" + segment(session_id) + "/expire",
              ojson::object(), idempotency_key(invoice, operation::expire_checkout_session));
}

request create_refund(const refund_params& r) {
  ojson p = ojson::object();
  p["payment_intent"] = r.intent.str();
  if (r.amount_cents)
    p["amount"] = *r.amount_cents;
  if (!r.reason.empty())
    p["reason"] = r.reason;
  p["metadata"] = ojson{{"invoice_id", r.invoice.str()}};
  p["expand"] = ojson::array({"charge"});
  return post(operation::create_refund, "/v1/refunds", p,
              idempotency_key(r.invoice, operation::create_refund, r.discriminator));
}

request list_events(const event_query& q) {
  ojson p = ojson::object();
  p["limit"] = std::clamp(q.limit, 1, 100);
  if (q.types.size() == 1)
    p["type"] = q.types.front();
  else if (q.types.size() > 1)
    p["types"] = q.types;
  if (q.created_gte || q.created_lte) {
    ojson created = ojson::object();
    if (q.created_gte)
      created["gte"] = *q.created_gte;
    if (q.created_lte)
      created["lte"] = *q.created_lte;
    p["created"] = created;
  }
  if (!q.starting_after.empty())
    p["starting_after"] = q.starting_after;
  return get(operation::list_events, "/v1/events", p);
}

bool should_retry(unsigned status, std::string_view header) noexcept {
  if (status != 0) {
    if (header == "false")
      return false;
    if (header == "true")
      return true;
  }
  return status == 0 || status == 409 || status == 429 || status >= 500;
}

std::chrono::milliseconds first_attempt_timeout(const retry_policy& p) noexcept {
  return std::min(p.attempt_timeout, p.budget);
}

std::optional<planned_retry> plan_retry(const retry_policy& p, int retries_done, std::chrono::milliseconds elapsed,
                                        double random01) noexcept {
  using ms = std::chrono::milliseconds;
  if (retries_done < 0 || retries_done >= p.max_retries)
    return std::nullopt;
  // initial * 2^retries_done, capped (and without overflowing for big counts).
  double base = static_cast<double>(p.initial_delay.count()) * std::pow(2.0, std::min(retries_done, 30));
  base = std::min(base, static_cast<double>(p.max_delay.count()));
  double r = std::clamp(random01, 0.0, 1.0);
  auto delay = ms{static_cast<int64_t>(std::llround(base / 2 + r * base / 2))};
  auto left = p.budget - elapsed - delay;
  if (left < p.min_attempt)
    return std::nullopt;
  return planned_retry{delay, std::min(p.attempt_timeout, left)};
}

} // namespace billing::stripe
