#include "protocol/text.hpp"

#include <cstddef>

namespace billing {

bool is_valid_utf8(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* const end = p + s.size();
  while (p != end) {
    const unsigned char lead = *p;
    if (lead < 0x80) {
      ++p;
      continue;
    }
    // Table 3-7: the lead byte fixes the length and the range of the second
    // byte; the narrowed ranges after E0, ED, F0 and F4 are what exclude
    // overlong forms, surrogates and code points above U+10FFFF.
    std::size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2; // C0 and C1 would only encode ASCII again (overlong)
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0)
        low = 0xA0; // below: overlong
      else if (lead == 0xED)
        high = 0x9F; // above: surrogates U+D800..U+DFFF
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0)
        low = 0x90; // below: overlong
      else if (lead == 0xF4)
        high = 0x8F; // above: beyond U+10FFFF
    } else {
      return false; // a continuation byte without a lead, C0, C1 or F5..FF
    }
    if (static_cast<std::size_t>(end - p) < length)
      return false;
    if (p[1] < low || p[1] > high)
      return false;
    for (std::size_t i = 2; i < length; ++i)
      if ((p[i] & 0xC0) != 0x80)
        return false;
    p += length;
  }
  return true;
}

} // namespace billing
