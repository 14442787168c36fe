#include "protocol/secret_box.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>
#include <vector>

namespace billing {

namespace {

constexpr int nonce_len = 12;
constexpr int tag_len = 16;

using ctx_ptr = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string base64(const unsigned char* data, size_t n) {
  std::string out(4 * ((n + 2) / 3), '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<size_t>(len));
  return out;
}

std::optional<std::vector<unsigned char>> unbase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0)
    return std::nullopt;
  std::vector<unsigned char> out(3 * text.size() / 4);
  int len = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                            static_cast<int>(text.size()));
  if (len < 0)
    return std::nullopt;
  // EVP_DecodeBlock counts padding bytes as output; drop them.
  size_t pad = (text.back() == '=') + (text.size() > 1 && text[text.size() - 2] == '=');
  out.resize(static_cast<size_t>(len) - pad);
  return out;
}

} // namespace

result<secret_box> secret_box::from_hex(std::string_view key_text) {
  if (key_text.size() != 64)
    return fail(billing_errc::invalid_argument,
                "the secret key must be 64 hex characters (32 bytes), got "
                  + std::to_string(key_text.size()) + " characters",
                "secret_key");
  key_type key{};
  for (size_t i = 0; i < key.size(); ++i) {
    int hi = hex_value(key_text[2 * i]);
    int lo = hex_value(key_text[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return fail(billing_errc::invalid_argument, "the secret key must be hex", "secret_key");
    key[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return secret_box{key};
}

std::string secret_box::seal(std::string_view plaintext, std::string_view associated) const {
  std::vector<unsigned char> out(nonce_len + plaintext.size() + tag_len);
  if (RAND_bytes(out.data(), nonce_len) != 1)
    return {};
  ctx_ptr ctx{EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free};
  int len = 0;
  bool ok = ctx
    && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), out.data()) == 1
    && EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                         reinterpret_cast<const unsigned char*>(associated.data()),
                         static_cast<int>(associated.size())) == 1
    && EVP_EncryptUpdate(ctx.get(), out.data() + nonce_len, &len,
                         reinterpret_cast<const unsigned char*>(plaintext.data()),
                         static_cast<int>(plaintext.size())) == 1
    && EVP_EncryptFinal_ex(ctx.get(), out.data() + nonce_len + len, &len) == 1
    && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, tag_len,
                           out.data() + nonce_len + plaintext.size()) == 1;
  if (!ok)
    return {};
  return base64(out.data(), out.size());
}

std::optional<std::string> secret_box::open(std::string_view sealed,
                                            std::string_view associated) const {
  auto raw = unbase64(sealed);
  if (!raw || raw->size() < nonce_len + tag_len)
    return std::nullopt;
  size_t text_len = raw->size() - nonce_len - tag_len;
  std::string plain(text_len, '\0');
  ctx_ptr ctx{EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free};
  int len = 0;
  bool ok = ctx
    && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), raw->data()) == 1
    && EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                         reinterpret_cast<const unsigned char*>(associated.data()),
                         static_cast<int>(associated.size())) == 1
    && EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len,
                         raw->data() + nonce_len, static_cast<int>(text_len)) == 1
    && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, tag_len,
                           raw->data() + nonce_len + text_len) == 1
    && EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len, &len) == 1;
  if (!ok)
    return std::nullopt;
  return plain;
}

} // namespace billing
