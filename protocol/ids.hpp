#pragma once
// Strong identifier types: an invoice id cannot be passed where an intent id
// is expected. Each wraps a string (ids cross HTTP, SQL and Stripe as text).

#include <compare>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace billing {

template <class Tag>
class named_id {
public:
  named_id() = default;
  explicit named_id(std::string value) : value_(std::move(value)) {}

  const std::string& str() const noexcept { return value_; }
  bool empty() const noexcept { return value_.empty(); }

  friend bool operator==(const named_id&, const named_id&) = default;
  friend auto operator<=>(const named_id&, const named_id&) = default;

  // CAF 0.17 serialization hook (also usable by other inspectors).
  template <class Inspector>
  friend auto inspect(Inspector& f, named_id& x) {
    return f(x.value_);
  }

private:
  std::string value_;
};

using invoice_id = named_id<struct invoice_id_tag>;
using event_id = named_id<struct event_id_tag>;
using intent_id = named_id<struct intent_id_tag>;
using session_id = named_id<struct session_id_tag>; // a Checkout Session (cs_...)

} // namespace billing

template <class Tag>
struct std::hash<billing::named_id<Tag>> {
  size_t operator()(const billing::named_id<Tag>& x) const noexcept {
    return std::hash<std::string>{}(x.str());
  }
};
