#pragma once
// Request ids: every HTTP answer carries one (X-Request-Id), every error
// body names it, and the log line that explains a failure carries the same
// id. A caller's own X-Request-Id is kept when it is well formed; otherwise
// billingd makes one. Thread-safe, never blocks.

#include <string>
#include <string_view>

namespace billing::net {

// 1 to 64 characters of A-Z a-z 0-9 . _ : -
bool is_well_formed_request_id(std::string_view id) noexcept;

// 16 random lowercase hex characters (a per-thread generator seeded from the
// OS: unpredictable enough for correlation, cheap enough for every request).
std::string new_request_id();

// The caller's id when well formed, else a new one.
inline std::string request_id_from(std::string_view header) {
  return is_well_formed_request_id(header) ? std::string{header} : new_request_id();
}

} // namespace billing::net
