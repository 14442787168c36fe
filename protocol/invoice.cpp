#include "protocol/invoice.hpp"
#include "protocol/invoice_event.hpp"

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
