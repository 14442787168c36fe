#include "protocol/outbox.hpp"

#include "protocol/invoice.hpp"
#include "protocol/stripe_signature.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

namespace billing {

namespace {

// gRPC status codes (grpc::StatusCode), repeated so protocol/ needs no gRPC.
constexpr int grpc_ok = 0;
constexpr int grpc_invalid_argument = 3;
constexpr int grpc_not_found = 5;

} // namespace

std::string_view to_string(delivery_verdict v) noexcept {
  switch (v) {
    case delivery_verdict::delivered: return "delivered";
    case delivery_verdict::retry: return "retry";
    case delivery_verdict::permanent: return "permanent";
  }
  return "unknown";
}

std::string_view signal_names::map(std::string_view canonical) const noexcept {
  if (canonical == "PaymentConfirmed") return confirmed;
  if (canonical == "PaymentFailed") return failed;
  if (canonical == "PaymentCancelled") return cancelled;
  if (canonical == "PaymentRefunded") return refunded;
  if (canonical == "PaymentDisputed") return disputed;
  return canonical;
}

std::string outbox_request_id(int64_t outbox_id, const invoice_id& invoice) {
  // Length-prefixed like derive_invoice_id, with its own domain string.
  std::string key = "billingd/outbox/v1\n" + std::to_string(invoice.str().size()) + ":";
  key += invoice.str();
  key += std::to_string(outbox_id);
  return name_based_uuid(key);
}

std::chrono::milliseconds retry_delay(const retry_policy& p, int32_t attempt, double u) {
  const int64_t lo = std::max<int64_t>(p.min.count(), 1);
  const int64_t hi = std::max<int64_t>(p.max.count(), lo);
  int64_t d = lo;
  for (int32_t i = 1; i < attempt && d < hi; ++i)
    d *= 2;
  d = std::min(d, hi);
  u = std::clamp(std::isfinite(u) ? u : 0.0, 0.0, 1.0);
  const auto half = d / 2;
  return std::chrono::milliseconds{half + static_cast<int64_t>(u * static_cast<double>(d - half))};
}

outbox_outcome decide(const retry_policy& p, const outbox_item& item, const delivery_result& r,
                      int64_t elapsed_ms, double u) {
  outbox_outcome out;
  out.id = item.id;
  switch (r.verdict) {
    case delivery_verdict::delivered:
      out.kind = settle_kind::delivered;
      return out;
    case delivery_verdict::permanent:
      out.kind = settle_kind::dead;
      out.error = "permanent: " + r.detail;
      return out;
    case delivery_verdict::retry:
      break;
  }
  const auto delay = retry_delay(p, std::max(item.attempts, 1), u);
  const int64_t age_at_next = item.age_ms + std::max<int64_t>(elapsed_ms, 0) + delay.count();
  const int64_t horizon_ms = std::chrono::duration_cast<std::chrono::milliseconds>(p.horizon).count();
  if (age_at_next > horizon_ms) {
    out.kind = settle_kind::dead;
    out.error = "retry horizon of " + std::to_string(p.horizon.count()) + " s passed after "
                + std::to_string(item.attempts) + " attempt(s); last: " + r.detail;
    return out;
  }
  out.kind = settle_kind::retry;
  out.delay_ms = delay.count();
  out.error = r.detail;
  return out;
}

delivery_verdict classify_grpc_status(int code, std::string_view message,
                                      std::string_view details) noexcept {
  if (code == grpc_ok)
    return delivery_verdict::delivered;
  if (code == grpc_not_found) {
    // Temporal answers NOT_FOUND for an unknown namespace too: that is a
    // deployment problem, not a property of this row.
    bool namespace_missing = details.find("NamespaceNotFoundFailure") != std::string_view::npos
                             || message.starts_with("Namespace ")
                             || message.starts_with("namespace ");
    return namespace_missing ? delivery_verdict::retry : delivery_verdict::permanent;
  }
  if (code == grpc_invalid_argument)
    return delivery_verdict::permanent;
  return delivery_verdict::retry;
}

delivery_verdict classify_http_status(unsigned status) noexcept {
  if (status >= 200 && status < 300)
    return delivery_verdict::delivered;
  if (status == 408 || status == 429 || (status >= 500 && status < 600))
    return delivery_verdict::retry;
  if (status >= 400 && status < 500)
    return delivery_verdict::permanent;
  return delivery_verdict::retry;
}

std::string callback_url(std::string_view url_template, std::string_view signal) {
  static constexpr std::string_view placeholder = "{signal}";
  std::string out;
  size_t pos = 0;
  for (;;) {
    auto at = url_template.find(placeholder, pos);
    out.append(url_template.substr(pos, at == std::string_view::npos ? std::string_view::npos : at - pos));
    if (at == std::string_view::npos)
      return out;
    out.append(signal);
    pos = at + placeholder.size();
  }
}

std::string callback_body(const signal_delivery& d) {
  using json = nlohmann::ordered_json;
  auto data = json::parse(d.payload, nullptr, false);
  if (data.is_discarded())
    data = d.payload; // never happens for rows we wrote; keep the text rather than drop it
  json body = {
    {"id", d.request_id},
    {"type", d.signal},
    {"workflow_id", d.workflow_id},
    {"invoice_id", d.invoice.str()},
    {"outbox_id", d.outbox_id},
    {"attempt", d.attempt},
    {"created", d.created_at},
    {"data", std::move(data)},
  };
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string billing_signature(std::string_view body, std::string_view secret, int64_t t) {
  return sign_stripe_payload(body, secret, t);
}

} // namespace billing
