// libFuzzer target for protocol/stripe_signature (scripts/fuzz builds it).
//
// Input layout: byte 0 = flags, bytes 1-2 = clock offset, then
// "<header>\n<secret>\n<payload>" (missing parts are empty).
// Checks, beyond "no crash, no UB, no out-of-bounds read":
//   - the verdict has a name;
//   - disabling the age check never turns an accept into a reject;
//   - an accepted header stays accepted with a junk item appended, and is
//     rejected as malformed with an empty v1 appended;
//   - a header we sign for this payload and secret is accepted, and is
//     rejected once the payload is changed.
#include "protocol/stripe_signature.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

std::string_view take_line(std::string_view& rest) {
  const std::size_t nl = rest.find('\n');
  std::string_view line = rest.substr(0, nl);
  rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
  return line;
}

bool blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && (c < '\t' || c > '\r')) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using billing::signature_error;
  if (size < 3) return 0;
  const uint8_t flags = data[0];
  const int64_t now = 1700000000 + static_cast<int16_t>(data[1] | (data[2] << 8));
  std::string_view rest(reinterpret_cast<const char*>(data + 3), size - 3);
  const std::string header(take_line(rest));
  const std::string secret(take_line(rest));
  const std::string payload(rest);

  std::vector<std::string> secrets;
  if (flags & 0x01) secrets.push_back("whsec_fuzz_other_secret");
  if (!(flags & 0x02)) secrets.push_back(secret);
  const billing::signature_check check{(flags & 0x04) ? int64_t{0} : int64_t{300}};

  const signature_error r = billing::verify_stripe_signature(header, payload, secrets, now, check);
  if (billing::to_string(r) == "unknown signature error") __builtin_trap();
  if (r == signature_error::none) {
    if (billing::verify_stripe_signature(header, payload, secrets, now, {0}) != signature_error::none) __builtin_trap();
    if (billing::verify_stripe_signature(header + ",x=y", payload, secrets, now, check) != signature_error::none)
      __builtin_trap();
    if (billing::verify_stripe_signature(header + ",v1=", payload, secrets, now, check) !=
        signature_error::malformed_header)
      __builtin_trap();
  }

  if (payload.empty() || blank(secret)) return 0;
  const int64_t t = now - (flags >> 3);  // 0..31 s old
  const std::string signed_header = billing::sign_stripe_payload(payload, secret, t);
  const std::vector<std::string> one{secret};
  if (billing::verify_stripe_signature(signed_header, payload, one, now) != signature_error::none) __builtin_trap();
  std::string changed = payload;
  changed[changed.size() / 2] = static_cast<char>(changed[changed.size() / 2] ^ 0x20);
  if (billing::verify_stripe_signature(signed_header, changed, one, now) != signature_error::no_matching_signature)
    __builtin_trap();
  return 0;
}
