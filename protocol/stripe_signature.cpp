// Stripe-Signature verification. The parsing rules below are copied from
// stripe-node 23.x (Webhooks.js parseHeader / parseEventDetails /
// validateComputedSignature, NodePlatformFunctions.secureCompare), because
// what matters is giving the same verdict as the SDK, quirks included:
//   - the header is split on ',' with no trimming, so " v1=..." is not v1;
//   - each item is split on '=': the key is before the first '=', the value
//     runs from the first '=' to the second one (or the end);
//   - the last `t=` wins; its value goes through JavaScript parseInt(v, 10)
//     (leading whitespace, optional sign, then digits up to the first
//     non-digit: "1700000000abc" is 1700000000) and the HMAC is computed over
//     the *number* written back in decimal, not over the header text;
//   - t == -1 is the SDK's "no timestamp" sentinel;
//   - any empty or '='-less `v1` makes the SDK's secureCompare throw, so the
//     whole header is rejected even if another v1 matches;
//   - signatures are compared as strings: only the exact 64-character
//     lowercase hex digest matches (upper case does not);
//   - an empty payload is rejected first: the SDK tests `!payload`, and the
//     empty string is falsy in JavaScript.
// Deliberate differences, none of which changes a verdict on anything
// Stripe sends: a `t=` that is not a number (NaN in the SDK, which would go
// on to HMAC "NaN.<body>") or beyond 2^53 (rounded in the SDK) is rejected
// as malformed; only ASCII whitespace is skipped before the number; the HMAC
// covers the raw body bytes (the SDK HMACs the UTF-8 re-encoding of the
// decoded text, which differs only for invalid UTF-8).
#include "protocol/stripe_signature.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <charconv>
#include <cstddef>
#include <cstring>

namespace billing {
namespace {

constexpr std::size_t digest_size = 32;
constexpr std::size_t hex_size = 2 * digest_size;
constexpr int64_t max_safe_integer = (int64_t{1} << 53) - 1;  // JavaScript's Number.MAX_SAFE_INTEGER

// Per-thread HMAC-SHA256 contexts, one per recently used key (a handful:
// the active Stripe secrets, a callback secret). A context keeps its key's
// inner and outer pad state, so the next message with the same key skips the
// key setup; reusing contexts at all avoids the fetch and allocations that
// make one-shot HMAC() much slower. Created on first use, freed (and key
// copies wiped) at thread exit; never shared between threads; no allocation
// after warm-up. Keys are compared with each other only (never with request
// data), so that comparison need not be constant-time.
class thread_hmac {
public:
  thread_hmac() noexcept {
    mac_ = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
    if (mac_ == nullptr) return;
    for (slot& s : slots_) {
      s.ctx = EVP_MAC_CTX_new(mac_);
      char digest[] = "SHA256";
      OSSL_PARAM params[] = {
          OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
          OSSL_PARAM_construct_end(),
      };
      if (s.ctx != nullptr && EVP_MAC_CTX_set_params(s.ctx, params) != 1) {
        EVP_MAC_CTX_free(s.ctx);
        s.ctx = nullptr;
      }
    }
  }
  ~thread_hmac() {
    for (slot& s : slots_) {
      OPENSSL_cleanse(s.key, sizeof s.key);
      EVP_MAC_CTX_free(s.ctx);
    }
    EVP_MAC_free(mac_);
  }
  thread_hmac(const thread_hmac&) = delete;
  thread_hmac& operator=(const thread_hmac&) = delete;

  // HMAC(key, concatenation of parts). False if OpenSSL fails.
  template <std::size_t N>
  bool compute(std::string_view key, const std::array<std::string_view, N>& parts,
               unsigned char (&out)[digest_size]) noexcept {
    EVP_MAC_CTX* ctx = keyed(key);
    if (ctx == nullptr) return false;
    for (std::string_view part : parts) {
      if (part.empty()) continue;
      if (EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(part.data()), part.size()) != 1)
        return false;
    }
    std::size_t len = 0;
    return EVP_MAC_final(ctx, out, &len, digest_size) == 1 && len == digest_size;
  }

private:
  static constexpr std::size_t max_cached_key = 256;
  struct slot {
    EVP_MAC_CTX* ctx = nullptr;
    bool valid = false;  // ctx holds the key below
    std::size_t key_len = 0;
    unsigned char key[max_cached_key] = {};
  };

  // A context initialised for `key` and ready for EVP_MAC_update.
  EVP_MAC_CTX* keyed(std::string_view key) noexcept {
    for (slot& s : slots_) {
      if (s.valid && s.key_len == key.size() && std::memcmp(s.key, key.data(), key.size()) == 0) {
        // A null key means "same key again": restart from the saved pads.
        if (EVP_MAC_init(s.ctx, nullptr, 0, nullptr) == 1) return s.ctx;
        s.valid = false;
        return nullptr;
      }
    }
    slot& s = slots_[next_];
    next_ = (next_ + 1) % slots_.size();
    if (s.ctx == nullptr) return nullptr;
    OPENSSL_cleanse(s.key, sizeof s.key);
    s.valid = false;
    // Never pass a null key here: it would mean "reuse the previous key".
    static const unsigned char empty_key = 0;
    const auto* key_data = key.empty() ? &empty_key : reinterpret_cast<const unsigned char*>(key.data());
    if (EVP_MAC_init(s.ctx, key_data, key.size(), nullptr) != 1) return nullptr;
    if (key.size() <= max_cached_key) {
      std::memcpy(s.key, key_data, key.size());
      s.key_len = key.size();
      s.valid = true;
    }
    return s.ctx;
  }

  EVP_MAC* mac_ = nullptr;
  std::array<slot, 4> slots_{};
  std::size_t next_ = 0;
};

thread_hmac& hmac_for_this_thread() noexcept {
  thread_local thread_hmac instance;
  return instance;
}

void to_hex(const unsigned char (&digest)[digest_size], char* out) noexcept {
  constexpr char digits[] = "0123456789abcdef";
  for (std::size_t i = 0; i < digest_size; ++i) {
    out[2 * i] = digits[digest[i] >> 4];
    out[2 * i + 1] = digits[digest[i] & 0x0f];
  }
}

// Decimal form of t, as JavaScript's `${t}` writes an integer below 2^53.
struct decimal {
  char buf[24]{};
  std::size_t len = 0;
  explicit decimal(int64_t t) noexcept {
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, t);
    len = ec == std::errc{} ? static_cast<std::size_t>(end - buf) : 0;
  }
  std::string_view view() const noexcept { return {buf, len}; }
};

// One "key=value" item of the header, split the way the SDK does.
struct header_item {
  std::string_view key;
  std::string_view value;
  bool has_value = false;
};

header_item split_item(std::string_view item) noexcept {
  header_item out;
  std::size_t eq = item.find('=');
  if (eq == std::string_view::npos) {
    out.key = item;
    return out;
  }
  out.key = item.substr(0, eq);
  std::string_view rest = item.substr(eq + 1);
  out.value = rest.substr(0, rest.find('='));
  out.has_value = true;
  return out;
}

template <typename F>
void for_each_item(std::string_view header, F&& f) noexcept {
  for (;;) {
    std::size_t comma = header.find(',');
    f(split_item(header.substr(0, comma)));
    if (comma == std::string_view::npos) return;
    header.remove_prefix(comma + 1);
  }
}

struct parsed_time {
  int64_t value = 0;
  bool is_number = false;  // false: NaN in the SDK, or beyond 2^53
};

// JavaScript parseInt(text, 10), restricted to the safe-integer range.
parsed_time js_parse_int(std::string_view text) noexcept {
  std::size_t i = 0;
  while (i < text.size() && (text[i] == ' ' || (text[i] >= '\t' && text[i] <= '\r'))) ++i;
  bool negative = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    negative = text[i] == '-';
    ++i;
  }
  parsed_time out;
  int64_t value = 0;
  std::size_t digits = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++digits) {
    value = value * 10 + (text[i] - '0');
    if (value > max_safe_integer) return out;
  }
  if (digits == 0) return out;
  out.value = negative ? -value : value;
  out.is_number = true;
  return out;
}

// The SDK's isBlankWebhookSecret: empty or only [ \t\r\n\f\v].
bool is_blank(std::string_view secret) noexcept {
  for (char c : secret)
    if (c != ' ' && (c < '\t' || c > '\r')) return false;
  return true;
}

// now - t > tolerance, without signed overflow.
bool too_old(int64_t now, int64_t t, int64_t tolerance) noexcept {
  int64_t age = 0;
  if (__builtin_sub_overflow(now, t, &age)) return t < 0;  // overflow: |age| is huge; its sign is now's
  return age > tolerance;
}

}  // namespace

std::string_view to_string(signature_error e) noexcept {
  switch (e) {
    case signature_error::none: return "ok";
    case signature_error::missing_header: return "no stripe-signature header value was provided";
    case signature_error::malformed_header: return "malformed stripe-signature header";
    case signature_error::no_timestamp: return "unable to extract timestamp and signatures from header";
    case signature_error::no_v1_signature: return "no signatures found with expected scheme";
    case signature_error::timestamp_outside_tolerance: return "timestamp outside the tolerance zone";
    case signature_error::no_matching_signature:
      return "no signatures found matching the expected signature for payload";
    case signature_error::missing_payload: return "no webhook payload was provided";
    case signature_error::no_secret: return "no webhook secret configured";
  }
  return "unknown signature error";
}

signature_error verify_stripe_signature(std::string_view header, std::string_view payload,
                                        std::span<const std::string> secrets, int64_t now_unix,
                                        signature_check check) noexcept {
  if (payload.empty()) return signature_error::missing_payload;
  if (header.empty()) return signature_error::missing_header;

  bool has_t = false;
  std::string_view t_text;
  std::size_t v1_count = 0;
  bool v1_unusable = false;  // an empty or '='-less v1: secureCompare throws in the SDK
  for_each_item(header, [&](const header_item& item) noexcept {
    if (item.key == "t") {
      has_t = true;  // last one wins; without '=' it is NaN, like parseInt(undefined)
      t_text = item.has_value ? item.value : std::string_view{};
    } else if (item.key == "v1") {
      ++v1_count;
      if (item.value.empty()) v1_unusable = true;
    }
  });

  parsed_time t = has_t ? js_parse_int(t_text) : parsed_time{};
  if (!has_t || (t.is_number && t.value == -1)) return signature_error::no_timestamp;
  if (v1_count == 0) return signature_error::no_v1_signature;

  bool any_secret = false;
  for (const std::string& s : secrets) any_secret = any_secret || !is_blank(s);
  if (!any_secret) return signature_error::no_secret;
  if (!t.is_number || v1_unusable) return signature_error::malformed_header;

  decimal t_dec(t.value);
  const std::array<std::string_view, 3> message{t_dec.view(), ".", payload};
  thread_hmac& hmac = hmac_for_this_thread();
  bool matched = false;
  for (const std::string& secret : secrets) {
    if (is_blank(secret)) continue;
    unsigned char digest[digest_size];
    if (!hmac.compute(secret, message, digest)) continue;  // fail closed
    char expected[hex_size];
    to_hex(digest, expected);
    OPENSSL_cleanse(digest, sizeof digest);
    for_each_item(header, [&](const header_item& item) noexcept {
      if (item.key == "v1" && item.value.size() == hex_size)
        matched = (CRYPTO_memcmp(expected, item.value.data(), hex_size) == 0) || matched;
    });
    if (matched) break;
  }
  if (!matched) return signature_error::no_matching_signature;
  if (check.tolerance_seconds > 0 && too_old(now_unix, t.value, check.tolerance_seconds))
    return signature_error::timestamp_outside_tolerance;
  return signature_error::none;
}

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
  unsigned char digest[digest_size];
  if (!hmac_for_this_thread().compute(key, std::array<std::string_view, 1>{message}, digest)) return {};
  std::string out(hex_size, '\0');
  to_hex(digest, out.data());
  return out;
}

std::string sign_stripe_payload(std::string_view payload, std::string_view secret, int64_t t) {
  decimal t_dec(t);
  unsigned char digest[digest_size];
  if (!hmac_for_this_thread().compute(secret, std::array<std::string_view, 3>{t_dec.view(), ".", payload},
                                      digest))
    return {};
  std::string out;
  out.reserve(t_dec.len + 6 + hex_size);
  out.append("t=").append(t_dec.view()).append(",v1=");
  out.resize(out.size() + hex_size);
  to_hex(digest, out.data() + out.size() - hex_size);
  return out;
}

}  // namespace billing
