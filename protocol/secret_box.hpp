#pragma once
// Seals client secrets before they reach the database (AES-256-GCM), so a
// dump of `invoices` does not hand out payment confirmations. The invoice
// id is the associated data: a sealed secret copied to another row does
// not open.

#include "protocol/errors.hpp"

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace billing {

class secret_box {
public:
  using key_type = std::array<unsigned char, 32>;

  // `key_text`: 64 hex characters. Fails with a message naming the problem
  // (never echoing the key).
  static result<secret_box> from_hex(std::string_view key_text);
  explicit secret_box(const key_type& key) : key_(key) {}

  // base64(nonce || ciphertext || tag); a fresh random nonce per call.
  std::string seal(std::string_view plaintext, std::string_view associated) const;
  // nullopt when the text was not sealed by this key for `associated`.
  std::optional<std::string> open(std::string_view sealed, std::string_view associated) const;

private:
  key_type key_;
};

} // namespace billing
