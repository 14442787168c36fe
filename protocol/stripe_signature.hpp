// Stripe-Signature verification for webhooks, and the matching signer.
//
// Pure functions: no clock (the caller passes `now_unix`), no logging, no
// exceptions from the verifier. Safe to call from any thread; each thread
// keeps one reusable HMAC context (thread_local), so the hot path does not
// allocate. Called once per webhook on the HTTP edge, before any actor.
//
// The verdicts are those of Stripe's official SDK (stripe-node 23.x,
// `stripe.webhooks.signature.verifyHeader`), checked by
// tests/data/stripe-signature-vectors.json and by the interop test in
// tests/node. The checks run in the SDK's order:
//   1. empty payload                      -> missing_payload
//   2. empty header                       -> missing_header
//   3. no usable `t=` (absent, or -1)     -> no_timestamp
//   4. no `v1=` item                      -> no_v1_signature
//   5. no non-blank secret                -> no_secret
//   6. an empty `v1=` value, or a `t=` that is not a number -> malformed_header
//   7. no `v1` equals HMAC-SHA256(secret, "<t>.<payload>") in lowercase hex
//                                         -> no_matching_signature
//   8. now - t > tolerance (when tolerance > 0) -> timestamp_outside_tolerance
// See stripe_signature.cpp for the parsing rules copied from the SDK.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace billing {

enum class signature_error : uint8_t {
  none,
  missing_header,
  malformed_header,
  no_timestamp,
  no_v1_signature,
  timestamp_outside_tolerance,
  no_matching_signature,
  // The SDK rejects an empty body before looking at the header.
  missing_payload,
  // No secret configured, or only blank ones (a configuration error).
  no_secret,
};

// Short phrase for logs and HTTP bodies; never contains a secret.
std::string_view to_string(signature_error e) noexcept;

struct signature_check {
  // Maximum age of `t` in seconds. As in the SDK, 0 or less disables the
  // age check entirely; future timestamps are always accepted.
  int64_t tolerance_seconds = 300;
};

// `secrets`: every active endpoint secret (rotation). The whole string,
// "whsec_" prefix included, is the HMAC key. Blank secrets are skipped.
// Accepts if any `v1` matches any secret. Constant-time compare.
signature_error verify_stripe_signature(std::string_view header, std::string_view payload,
                                        std::span<const std::string> secrets, int64_t now_unix,
                                        signature_check check = {}) noexcept;

// Full header value "t=<t>,v1=<lowercase hex>", as Stripe (and the SDK's
// generateTestHeaderString) produce it. Empty string if OpenSSL fails.
std::string sign_stripe_payload(std::string_view payload, std::string_view secret, int64_t t);

// Lowercase hex HMAC-SHA256 (64 characters). Empty string if OpenSSL fails.
std::string hmac_sha256_hex(std::string_view key, std::string_view message);

}  // namespace billing
