#pragma once
// Checks on caller text that are not JSON's business: bytes that reach the
// database, the logs and other services must be well-formed UTF-8 (PostgreSQL
// refuses anything else, with an error we would otherwise turn into a 500).

#include <string_view>

namespace billing {

// True when `s` is well-formed UTF-8 as the Unicode Standard defines it
// (Table 3-7): refuses overlong encodings, surrogates U+D800..U+DFFF, code
// points above U+10FFFF, truncated sequences and stray continuation bytes.
// U+0000 and other control characters are valid UTF-8: callers that refuse
// them do so separately.
bool is_valid_utf8(std::string_view s) noexcept;

} // namespace billing
