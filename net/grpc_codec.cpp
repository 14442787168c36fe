#include "net/grpc_codec.hpp"

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "net/status_map.hpp"
#include "protocol/currency.hpp"
#include "protocol/json_codec.hpp"

#include <google/protobuf/timestamp.pb.h>

#include <algorithm>
#include <charconv>

namespace billing::net {

namespace {

void stamp(unix_seconds t, google::protobuf::Timestamp* out) {
  out->set_seconds(t);
  out->set_nanos(0);
}

failure bad(std::string field, std::string message) {
  return fail(billing_errc::invalid_argument, std::move(message), std::move(field));
}

constexpr char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += b64[(acc >> bits) & 63];
    }
  }
  if (bits > 0)
    out += b64[(acc << (6 - bits)) & 63];
  return out;
}

std::optional<std::string> unbase64url(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const char* p = std::find(b64, b64 + 64, c);
    if (p == b64 + 64)
      return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(p - b64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

// A short, stable digest of the filter (FNV-1a 64): not a secret, only a
// guard against mixing tokens of different lists.
std::string filter_digest(std::string_view key) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  static constexpr char hex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i, h >>= 4)
    buf[i] = hex[h & 15];
  buf[16] = 0;
  return buf;
}

} // namespace

pb::InvoiceStatus to_proto(invoice_status s) noexcept {
  switch (s) {
    case invoice_status::pending: return pb::INVOICE_STATUS_PENDING;
    case invoice_status::paid: return pb::INVOICE_STATUS_PAID;
    case invoice_status::failed: return pb::INVOICE_STATUS_FAILED;
    case invoice_status::cancelled: return pb::INVOICE_STATUS_CANCELLED;
    case invoice_status::refunded: return pb::INVOICE_STATUS_REFUNDED;
    case invoice_status::disputed: return pb::INVOICE_STATUS_DISPUTED;
  }
  return pb::INVOICE_STATUS_UNSPECIFIED;
}

void to_proto(const invoice& inv, pb::Invoice* out) {
  out->set_invoice_id(inv.id.str());
  out->set_shipment_id(inv.shipment_id);
  out->set_user_id(inv.user_id);
  out->set_workflow_id(inv.workflow_id);
  out->set_amount_cents(inv.amount_cents);
  out->set_currency(inv.currency);
  out->set_status(to_proto(inv.status));
  out->set_provider(inv.provider);
  out->set_provider_intent_id(inv.provider_intent_id.str());
  stamp(inv.created_at, out->mutable_created_at());
  stamp(inv.updated_at, out->mutable_updated_at());
  stamp(inv.expires_at, out->mutable_expires_at());
  if (inv.paid_at)
    stamp(*inv.paid_at, out->mutable_paid_at());
  out->set_failure_code(inv.failure_code);
  out->set_failure_message(inv.failure_message);
  out->set_version(inv.version);
  out->set_mode(inv.mode == invoice_mode::checkout ? pb::INVOICE_MODE_CHECKOUT : pb::INVOICE_MODE_PAYMENT_INTENT);
  out->set_provider_session_id(inv.provider_session_id.str());
  out->set_refunded_cents(inv.refunded_cents);
}

result<create_invoice_request> from_proto(const pb::CreateInvoiceRequest& in) {
  create_invoice_request req;
  for (auto [value, name, target] :
       {std::tuple{&in.shipment_id(), "shipment_id", &req.shipment_id},
        std::tuple{&in.user_id(), "user_id", &req.user_id},
        std::tuple{&in.workflow_id(), "workflow_id", &req.workflow_id}}) {
    if (value->empty())
      return bad(name, std::string{name} + " is required");
    if (auto err = check_id(*value, name))
      return *err;
    *target = *value;
  }
  if (in.amount_cents() <= 0 || in.amount_cents() > max_amount_cents)
    return bad("amount_cents", "amount_cents must be between 1 and " + std::to_string(max_amount_cents));
  req.amount_cents = in.amount_cents();
  const auto& code = in.currency();
  if (code.empty())
    return bad("currency", "currency is required");
  auto is_letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (code.size() != 3 || !std::all_of(code.begin(), code.end(), is_letter))
    return bad("currency", "currency must be a three-letter ISO 4217 code, e.g. \"usd\"");
  auto known = find_currency(code);
  if (!known)
    return bad("currency", "currency \"" + code + "\" is not an active ISO 4217 code");
  req.currency = std::string{known->code};
  if (in.has_expires_in_seconds()) {
    auto e = in.expires_in_seconds();
    if (e < min_expires_in_seconds || e > max_expires_in_seconds)
      return bad("expires_in_seconds", "expires_in_seconds must be between "
                                         + std::to_string(min_expires_in_seconds) + " and "
                                         + std::to_string(max_expires_in_seconds));
    req.expires_in_seconds = e;
  }
  switch (in.mode()) {
    case pb::INVOICE_MODE_UNSPECIFIED:
    case pb::INVOICE_MODE_PAYMENT_INTENT: req.mode = invoice_mode::payment_intent; break;
    case pb::INVOICE_MODE_CHECKOUT: req.mode = invoice_mode::checkout; break;
    default: return bad("mode", "mode must be INVOICE_MODE_PAYMENT_INTENT or INVOICE_MODE_CHECKOUT");
  }
  req.success_url = in.success_url();
  req.cancel_url = in.cancel_url();
  if (auto err = check_create_mode(req))
    return *err;
  return req;
}

result<refund_invoice_request> from_proto(const pb::RefundInvoiceRequest& in) {
  refund_invoice_request req;
  if (in.has_amount_cents())
    req.amount_cents = in.amount_cents();
  req.reason = in.reason();
  req.idempotency_key = in.idempotency_key();
  if (auto err = check_refund_request(req)) {
    if (err->field == "Idempotency-Key")
      err->field = "idempotency_key";
    return *err;
  }
  return req;
}

grpc::Status to_status(const failure& f, std::string_view request_id) {
  const auto code = static_cast<grpc::StatusCode>(grpc_status(f.code));
  std::string message = server_side(f.code) ? std::string{public_message(f.code)} : f.message;
  message += " (request_id ";
  message += request_id;
  message += ')';
  if (f.code != billing_errc::invalid_argument || f.field.empty())
    return grpc::Status{code, message};
  google::rpc::BadRequest detail;
  auto* v = detail.add_field_violations();
  v->set_field(f.field);
  v->set_description(f.message);
  google::rpc::Status st;
  st.set_code(static_cast<int>(code));
  st.set_message(message);
  st.add_details()->PackFrom(detail);
  return grpc::Status{code, message, st.SerializeAsString()};
}

std::string encode_page_token(const page_cursor& c, std::string_view filter_key) {
  return base64url("v1:" + filter_digest(filter_key) + ':' + std::to_string(c.created_at) + ':' + c.id);
}

std::optional<page_cursor> decode_page_token(std::string_view token, std::string_view filter_key) {
  if (token.size() > 512)
    return std::nullopt;
  auto raw = unbase64url(token);
  if (!raw)
    return std::nullopt;
  std::string_view s{*raw};
  const std::string prefix = "v1:" + filter_digest(filter_key) + ':';
  if (!s.starts_with(prefix))
    return std::nullopt;
  s.remove_prefix(prefix.size());
  auto colon = s.find(':');
  if (colon == std::string_view::npos)
    return std::nullopt;
  page_cursor c;
  auto [end, ec] = std::from_chars(s.data(), s.data() + colon, c.created_at);
  if (ec != std::errc{} || end != s.data() + colon)
    return std::nullopt;
  c.id = std::string{s.substr(colon + 1)};
  if (!is_canonical_uuid(c.id))
    return std::nullopt;
  return c;
}

bool after_cursor(const invoice& inv, const page_cursor& c) noexcept {
  if (inv.created_at != c.created_at)
    return inv.created_at < c.created_at;
  return inv.id.str() < c.id;
}

} // namespace billing::net
