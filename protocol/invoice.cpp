#include "protocol/invoice.hpp"
#include "protocol/invoice_event.hpp"

#include <openssl/sha.h>

#include <array>

namespace billing {

namespace {

constexpr std::array status_names{
  std::string_view{"PENDING"},   std::string_view{"PAID"},
  std::string_view{"FAILED"},    std::string_view{"CANCELLED"},
  std::string_view{"REFUNDED"},  std::string_view{"DISPUTED"},
};

} // namespace

std::string_view to_string(invoice_status s) noexcept {
  return status_names[static_cast<size_t>(s)];
}

std::optional<invoice_status> parse_invoice_status(std::string_view s) noexcept {
  for (size_t i = 0; i < status_names.size(); ++i)
    if (status_names[i] == s)
      return static_cast<invoice_status>(i);
  return std::nullopt;
}

std::string_view to_string(invoice_mode m) noexcept {
  return m == invoice_mode::checkout ? "checkout" : "payment_intent";
}

std::optional<invoice_mode> parse_invoice_mode(std::string_view s) noexcept {
  if (s == "payment_intent")
    return invoice_mode::payment_intent;
  if (s == "checkout")
    return invoice_mode::checkout;
  return std::nullopt;
}

std::string name_based_uuid(std::string_view key) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  digest[6] = static_cast<unsigned char>((digest[6] & 0x0f) | 0x80); // version 8
  digest[8] = static_cast<unsigned char>((digest[8] & 0x3f) | 0x80); // RFC 4122 variant
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out += '-';
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0x0f];
  }
  return out;
}

invoice_id derive_invoice_id(std::string_view workflow_id, std::string_view shipment_id) {
  // Length-prefixed so ("a", "bc") and ("ab", "c") differ.
  std::string key = "billingd/invoice/v1\n" + std::to_string(workflow_id.size()) + ":";
  key.append(workflow_id);
  key += std::to_string(shipment_id.size()) + ":";
  key.append(shipment_id);
  return invoice_id{name_based_uuid(key)};
}

bool is_canonical_uuid(std::string_view s) noexcept {
  if (s.size() != 36)
    return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-')
        return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

std::string_view to_string(event_kind k) noexcept {
  switch (k) {
    case event_kind::payment_succeeded: return "payment_succeeded";
    case event_kind::payment_failed: return "payment_failed";
    case event_kind::payment_canceled: return "payment_canceled";
    case event_kind::refunded: return "refunded";
    case event_kind::disputed: return "disputed";
    case event_kind::cancel_requested: return "cancel_requested";
    case event_kind::expired: return "expired";
    case event_kind::informational: return "informational";
  }
  return "unknown";
}

} // namespace billing
