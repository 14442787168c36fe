#include "net/request_id.hpp"

#include <random>

namespace billing::net {

bool is_well_formed_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 64)
    return false;
  for (char c : id)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.'
          || c == '_' || c == ':' || c == '-'))
      return false;
  return true;
}

std::string new_request_id() {
  thread_local std::mt19937_64 gen{[] {
    std::random_device rd;
    return (uint64_t{rd()} << 32) ^ rd();
  }()};
  static constexpr char digits[] = "0123456789abcdef";
  uint64_t v = gen();
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4)
    out[static_cast<size_t>(i)] = digits[v & 15];
  return out;
}

} // namespace billing::net
