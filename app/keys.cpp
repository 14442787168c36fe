#include "app/keys.hpp"

#include "protocol/api_keys.hpp"

#include <openssl/rand.h>

#include <array>
#include <ostream>

namespace billing::app {

std::string generate_api_key() {
  std::array<unsigned char, 32> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1)
    return {};
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string key{key_prefix};
  // Unpadded base64url: 32 bytes are 256 bits, 43 six-bit digits.
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      key += alphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0)
    key += alphabet[(acc << (6 - bits)) & 63];
  return key;
}

int keys_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  constexpr const char* usage =
    "usage: billingd keys new NAME --scopes SCOPE[,SCOPE...]\n"
    "  scopes: invoices:write, invoices:read, simulator, admin\n";
  if (args.empty() || args[0] != "new") {
    err << usage;
    return 2;
  }
  std::string name, scopes_text;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--scopes" && i + 1 < args.size())
      scopes_text = args[++i];
    else if (args[i].starts_with("--scopes="))
      scopes_text = args[i].substr(9);
    else if (!args[i].starts_with("--") && name.empty())
      name = args[i];
    else {
      err << "billingd keys new: unexpected argument '" << args[i] << "'\n" << usage;
      return 2;
    }
  }
  if (name.empty() || scopes_text.empty()) {
    err << usage;
    return 2;
  }
  auto key = generate_api_key();
  if (key.empty()) {
    err << "billingd keys new: the random generator failed\n";
    return 1;
  }
  auto hash = to_hex(sha256_of(key));
  // Validate the entry exactly as serve will read it.
  auto parsed = parse_api_keys("name=" + name + " sha256=" + hash + " scopes=" + scopes_text);
  if (!ok(parsed)) {
    err << "billingd keys new: " << std::get<failure>(parsed).message << '\n';
    return 2;
  }
  auto& entry = std::get<std::vector<api_key_entry>>(parsed).front();
  out << "API key for " << entry.name << " (shown once; billingd keeps only its SHA-256):\n"
      << "  " << key << "\n\n"
      << "Add this entry to BILLING_API_KEYS (entries separated by ';') or as a line of the\n"
      << "file named by BILLING_API_KEYS_FILE:\n"
      << "  " << config_entry(entry) << "\n\n"
      << "Callers send it as: Authorization: Bearer <key>\n";
  return 0;
}

} // namespace billing::app
