#pragma once
// The currencies an invoice may be in: the active codes of ISO 4217 with the
// number of digits after the decimal point (what "cents" means for each).
// The table and its choices are in currency.cpp.

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace billing {

struct currency_info {
  std::string_view code; // lower case, e.g. "usd"
  uint8_t minor_units;   // digits after the decimal point: usd 2, jpy 0, bhd 3, clf 4

  friend constexpr bool operator==(const currency_info&, const currency_info&) = default;
};

// The active codes, sorted by code, each once.
std::span<const currency_info> active_currencies() noexcept;

// The entry for `code` ("usd" or "USD": ASCII letters in either case), or
// nullopt when it is not an active ISO 4217 code with minor units.
std::optional<currency_info> find_currency(std::string_view code) noexcept;

} // namespace billing
