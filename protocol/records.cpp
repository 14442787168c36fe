#include "protocol/records.hpp"

namespace billing {

std::string_view to_string(write_status s) noexcept {
  switch (s) {
    case write_status::committed: return "committed";
    case write_status::duplicate_event: return "duplicate_event";
    case write_status::version_conflict: return "version_conflict";
    case write_status::unavailable: return "unavailable";
    case write_status::overloaded: return "overloaded";
  }
  return "unknown";
}

} // namespace billing
