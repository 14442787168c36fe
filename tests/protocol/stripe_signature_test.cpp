// Unit tests for protocol/stripe_signature: the stripe-node vectors (by
// name, with the exact verdict and error), the SDK's parsing quirks,
// configuration edge cases, hostile headers and sign -> verify round trips.
#include "protocol/stripe_signature.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

using billing::signature_check;
using billing::signature_error;
using billing::verify_stripe_signature;

namespace {

const std::string vectors_file = std::string(BILLING_TEST_DATA_DIR) + "/stripe-signature-vectors.json";
const std::string shared_vectors_file = std::string(BILLING_SHARED_DIR) + "/stripe-signature-vectors.json";

nlohmann::json load_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  INFO("reading " << path);
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

const nlohmann::json& vectors() {
  static const nlohmann::json doc = load_json(vectors_file);
  return doc;
}

signature_error verify_one(std::string_view header, std::string_view payload, const std::string& secret,
                           int64_t now, signature_check check = {}) {
  const std::vector<std::string> secrets{secret};
  return verify_stripe_signature(header, payload, secrets, now, check);
}

// The verdict expected for each vector, by name. Every vector in the file
// must be listed here and every entry here must be in the file.
const std::map<std::string, signature_error> expected_by_name{
    {"valid", signature_error::none},
    {"two_v1_old_secret_first", signature_error::none},
    {"two_v1_old_secret_last", signature_error::none},
    {"tampered_body", signature_error::no_matching_signature},
    {"wrong_secret", signature_error::no_matching_signature},
    {"timestamp_too_old", signature_error::timestamp_outside_tolerance},
    {"timestamp_future_400s", signature_error::none},
    {"missing_t", signature_error::no_timestamp},
    {"only_v0", signature_error::no_v1_signature},
    {"empty_header", signature_error::missing_header},
    {"timestamp_exactly_300s", signature_error::none},
    {"valid_utf8_body", signature_error::none},
    {"spaces_after_commas", signature_error::no_v1_signature},
    {"uppercase_hex", signature_error::no_matching_signature},
    {"v1_plus_unknown_schemes", signature_error::none},
    {"truncated_signature", signature_error::no_matching_signature},
    {"empty_v1", signature_error::malformed_header},
    {"t_repeated_last_wins", signature_error::none},
    {"empty_body", signature_error::missing_payload},
};

// The SDK's error message (first line) for each of our errors.
const std::map<std::string, signature_error> expected_by_sdk_message{
    {"No stripe-signature header value was provided.", signature_error::missing_header},
    {"No webhook payload was provided.", signature_error::missing_payload},
    {"Unable to extract timestamp and signatures from header", signature_error::no_timestamp},
    {"No signatures found with expected scheme", signature_error::no_v1_signature},
    {"secureCompare must receive two arguments", signature_error::malformed_header},
    {"Timestamp outside the tolerance zone", signature_error::timestamp_outside_tolerance},
    {"No signatures found matching the expected signature for payload. Are you passing the raw request "
     "body you received from Stripe?",
     signature_error::no_matching_signature},
};

std::string v1_of(const std::string& header) {
  auto pos = header.rfind("v1=");
  REQUIRE(pos != std::string::npos);
  return header.substr(pos + 3, 64);
}

}  // namespace

TEST_CASE("signature: stripe-node vectors: every vector by name", "[signature]") {
  const auto& doc = vectors();
  const int64_t now = doc.at("now").get<int64_t>();
  const signature_check check{doc.at("tolerance_s").get<int64_t>()};
  REQUIRE(check.tolerance_seconds == 300);

  std::set<std::string> seen;
  for (const auto& v : doc.at("vectors")) {
    const auto name = v.at("name").get<std::string>();
    seen.insert(name);
    DYNAMIC_SECTION(name) {
      INFO("vector " << name << ": " << v.at("description").get<std::string>());
      const auto it = expected_by_name.find(name);
      REQUIRE(it != expected_by_name.end());
      const signature_error expected = it->second;

      // The table agrees with the file: accept/reject and the SDK's error.
      REQUIRE(v.at("expect").get<std::string>() == (expected == signature_error::none ? "accept" : "reject"));
      if (v.at("error_first_line").is_null()) {
        REQUIRE(expected == signature_error::none);
      } else {
        const auto msg = expected_by_sdk_message.find(v.at("error_first_line").get<std::string>());
        REQUIRE(msg != expected_by_sdk_message.end());
        REQUIRE(msg->second == expected);
      }

      const auto header = v.at("header").get<std::string>();
      const auto payload = v.at("payload").get<std::string>();
      const auto secret = v.at("secret").get<std::string>();
      const signature_error got = verify_one(header, payload, secret, now, check);
      INFO("got: " << billing::to_string(got));
      CHECK(got == expected);
    }
  }
  REQUIRE(seen.size() == 19);
  for (const auto& [name, _] : expected_by_name) {
    INFO("expected vector '" << name << "' is missing from " << vectors_file);
    CHECK(seen.count(name) == 1);
  }
}

TEST_CASE("signature: stripe-node vectors: secrets and rotation", "[signature]") {
  const auto& doc = vectors();
  const int64_t now = doc.at("now").get<int64_t>();
  const auto current = doc.at("secrets").at("current").get<std::string>();
  const auto old = doc.at("secrets").at("old").get<std::string>();
  const auto wrong = doc.at("secrets").at("wrong").get<std::string>();
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& v : doc.at("vectors")) by_name[v.at("name").get<std::string>()] = v;
  const auto payload = by_name.at("valid").at("payload").get<std::string>();

  SECTION("the vectors' signatures are what our HMAC computes") {
    const std::string message = std::to_string(now) + "." + payload;
    CHECK(v1_of(by_name.at("valid").at("header").get<std::string>()) == billing::hmac_sha256_hex(current, message));
    CHECK(v1_of(by_name.at("wrong_secret").at("header").get<std::string>()) ==
          billing::hmac_sha256_hex(wrong, message));
    CHECK(by_name.at("valid").at("header").get<std::string>() == billing::sign_stripe_payload(payload, current, now));
  }
  SECTION("wrong_secret verifies with the secret that signed it") {
    CHECK(verify_one(by_name.at("wrong_secret").at("header").get<std::string>(), payload, wrong, now) ==
          signature_error::none);
  }
  SECTION("two v1: each secret alone accepts, a third does not") {
    for (const char* name : {"two_v1_old_secret_first", "two_v1_old_secret_last"}) {
      const auto header = by_name.at(name).at("header").get<std::string>();
      CHECK(verify_one(header, payload, old, now) == signature_error::none);
      CHECK(verify_one(header, payload, current, now) == signature_error::none);
      CHECK(verify_one(header, payload, wrong, now) == signature_error::no_matching_signature);
    }
  }
  SECTION("several configured secrets: any one matching is enough, in any order") {
    const auto header = by_name.at("valid").at("header").get<std::string>();
    const std::vector<std::string> rotated{old, current};
    const std::vector<std::string> reversed{current, old};
    const std::vector<std::string> neither{old, wrong};
    CHECK(verify_stripe_signature(header, payload, rotated, now) == signature_error::none);
    CHECK(verify_stripe_signature(header, payload, reversed, now) == signature_error::none);
    CHECK(verify_stripe_signature(header, payload, neither, now) == signature_error::no_matching_signature);
  }
}

TEST_CASE("signature: the repo's vectors are the shared ones", "[signature]") {
  if (!std::filesystem::exists(shared_vectors_file)) {
    WARN("no " << shared_vectors_file << ": nothing to compare");
    return;
  }
  CHECK(load_json(shared_vectors_file) == vectors());
}

TEST_CASE("signature: HMAC-SHA256 known answers (RFC 4231)", "[signature]") {
  CHECK(billing::hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(billing::hmac_sha256_hex(std::string(20, '\x0b'), "Hi There") ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // An empty key is a key of zero bytes, not "reuse the previous key".
  CHECK(billing::hmac_sha256_hex("", "") == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  CHECK(billing::hmac_sha256_hex("Jefe", "") != billing::hmac_sha256_hex("", ""));
}

TEST_CASE("signature: per-thread HMAC contexts never mix keys", "[signature]") {
  // Reference: OpenSSL's one-shot HMAC(), no context reuse.
  auto reference = [](const std::string& key, const std::string& msg) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    static const unsigned char empty = 0;
    HMAC(EVP_sha256(), key.empty() ? &empty : reinterpret_cast<const unsigned char*>(key.data()),
         static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), digest, &len);
    REQUIRE(len == 32);
    std::string hex;
    for (unsigned i = 0; i < len; ++i) {
      static constexpr char digits[] = "0123456789abcdef";
      hex += digits[digest[i] >> 4];
      hex += digits[digest[i] & 15];
    }
    return hex;
  };
  // More keys than cached contexts; prefixes of each other; around the
  // SHA-256 block size (64) and beyond the cached key size.
  const std::vector<std::string> keys{
      "", "a", "ab", "whsec_one", "whsec_two", "whsec_one ", std::string(64, 'k'), std::string(65, 'k'),
      std::string(256, 'x'), std::string(257, 'x'), std::string(1000, 'y'), std::string("nul\0inside", 10)};
  std::mt19937 rng(7);
  for (int i = 0; i < 500; ++i) {
    const std::string& key = keys[rng() % keys.size()];
    const std::string msg(rng() % 200, static_cast<char>('a' + rng() % 26));
    INFO("key #" << (&key - keys.data()) << ", message size " << msg.size());
    REQUIRE(billing::hmac_sha256_hex(key, msg) == reference(key, msg));
  }
}

TEST_CASE("signature: sign -> verify round trip", "[signature]") {
  const std::string secret = "whsec_roundTripSecret0123456789abcdef";
  const std::string payload = R"({"id":"evt_1","type":"payment_intent.succeeded","x":"Zürich ✓"})";
  const int64_t t = 1700000123;
  const std::string header = billing::sign_stripe_payload(payload, secret, t);

  CHECK(header.rfind("t=1700000123,v1=", 0) == 0);
  CHECK(header.size() == std::string("t=1700000123,v1=").size() + 64);
  CHECK(header.find_first_not_of("t=0123456789,v1abcdef") == std::string::npos);  // lowercase hex only
  CHECK(verify_one(header, payload, secret, t) == signature_error::none);
  CHECK(verify_one(header, payload, secret, t + 300) == signature_error::none);
  CHECK(verify_one(header, payload, secret, t + 301) == signature_error::timestamp_outside_tolerance);
  CHECK(verify_one(header, payload + " ", secret, t) == signature_error::no_matching_signature);
  CHECK(verify_one(header, payload, secret + "x", t) == signature_error::no_matching_signature);

  // Every single-byte change of the body is caught.
  for (std::size_t i = 0; i < payload.size(); ++i) {
    std::string tampered = payload;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
    CHECK(verify_one(header, tampered, secret, t) == signature_error::no_matching_signature);
  }
  // Binary bodies are signed and verified as raw bytes.
  const std::string binary("\x00\xff\x80{\"a\":1}\x00", 10);
  CHECK(verify_one(billing::sign_stripe_payload(binary, secret, t), binary, secret, t) == signature_error::none);
  // Negative and zero timestamps are written like JavaScript writes them.
  CHECK(billing::sign_stripe_payload(payload, secret, -5).rfind("t=-5,v1=", 0) == 0);
  CHECK(verify_one(billing::sign_stripe_payload(payload, secret, 0), payload, secret, 10) == signature_error::none);
}

TEST_CASE("signature: tolerance is configurable", "[signature]") {
  const std::string secret = "whsec_tolerance";
  const std::string payload = "{}";
  const int64_t now = 1700000000;
  const std::string old_header = billing::sign_stripe_payload(payload, secret, now - 301);

  CHECK(verify_one(old_header, payload, secret, now) == signature_error::timestamp_outside_tolerance);
  CHECK(verify_one(old_header, payload, secret, now, {301}) == signature_error::none);
  CHECK(verify_one(old_header, payload, secret, now, {300}) == signature_error::timestamp_outside_tolerance);
  CHECK(verify_one(old_header, payload, secret, now, {10}) == signature_error::timestamp_outside_tolerance);
  const std::string fresh = billing::sign_stripe_payload(payload, secret, now - 10);
  CHECK(verify_one(fresh, payload, secret, now, {10}) == signature_error::none);
  CHECK(verify_one(fresh, payload, secret, now, {9}) == signature_error::timestamp_outside_tolerance);

  SECTION("0 or less disables the age check, as in the SDK") {
    const std::string ancient = billing::sign_stripe_payload(payload, secret, now - 10'000'000);
    CHECK(verify_one(ancient, payload, secret, now, {0}) == signature_error::none);
    CHECK(verify_one(ancient, payload, secret, now, {-1}) == signature_error::none);
    CHECK(verify_one(ancient, payload, secret, now, {300}) == signature_error::timestamp_outside_tolerance);
  }
  SECTION("future timestamps are never too old") {
    const std::string future = billing::sign_stripe_payload(payload, secret, now + 86400);
    CHECK(verify_one(future, payload, secret, now, {1}) == signature_error::none);
  }
  SECTION("extreme clocks do not overflow") {
    const std::string negative = billing::sign_stripe_payload(payload, secret, -9'000'000'000'000'000'000);
    CHECK(verify_one(negative, payload, secret, INT64_MAX) == signature_error::malformed_header);  // beyond 2^53
    const std::string min_safe = billing::sign_stripe_payload(payload, secret, -9'007'199'254'740'991);
    CHECK(verify_one(min_safe, payload, secret, INT64_MAX) == signature_error::timestamp_outside_tolerance);
    const std::string max_safe = billing::sign_stripe_payload(payload, secret, 9'007'199'254'740'991);
    CHECK(verify_one(max_safe, payload, secret, INT64_MIN) == signature_error::none);
    CHECK(verify_one(max_safe, payload, secret, INT64_MAX) == signature_error::timestamp_outside_tolerance);
  }
}

TEST_CASE("signature: secrets: none configured, blank ones skipped", "[signature]") {
  const std::string secret = "whsec_configured";
  const std::string payload = "{}";
  const int64_t now = 1700000000;
  const std::string header = billing::sign_stripe_payload(payload, secret, now);

  CHECK(verify_stripe_signature(header, payload, std::span<const std::string>{}, now) == signature_error::no_secret);
  const std::vector<std::string> blanks{"", " ", "\t\r\n\f\v "};
  CHECK(verify_stripe_signature(header, payload, blanks, now) == signature_error::no_secret);
  const std::vector<std::string> blank_then_real{"", "  ", secret};
  CHECK(verify_stripe_signature(header, payload, blank_then_real, now) == signature_error::none);
  // A secret with whitespace around it is a different key (the SDK only warns).
  CHECK(verify_one(header, payload, secret + "\n", now) == signature_error::no_matching_signature);
}

TEST_CASE("signature: header parsing follows the SDK", "[signature]") {
  const std::string secret = "whsec_parsing";
  const std::string payload = R"({"id":"evt_parse"})";
  const int64_t now = 1700000000;
  const std::string sig = v1_of(billing::sign_stripe_payload(payload, secret, now));
  const std::string t = "t=1700000000";
  auto verify = [&](const std::string& header) { return verify_one(header, payload, secret, now); };

  SECTION("the order of checks is the SDK's") {
    CHECK(verify_one("", "", secret, now) == signature_error::missing_payload);
    CHECK(verify_one("garbage", "", secret, now) == signature_error::missing_payload);
    CHECK(verify("") == signature_error::missing_header);
    CHECK(verify("v0=" + sig) == signature_error::no_timestamp);
    CHECK(verify(t + ",v0=" + sig) == signature_error::no_v1_signature);
    CHECK(verify_stripe_signature(t + ",v1=", payload, std::span<const std::string>{}, now) ==
          signature_error::no_secret);
    // A bad signature is reported before the age: a stale forgery is a forgery.
    CHECK(verify("t=1600000000,v1=" + std::string(64, 'a')) == signature_error::no_matching_signature);
    CHECK(verify_one(billing::sign_stripe_payload(payload, secret, 1600000000), payload, secret, now) ==
          signature_error::timestamp_outside_tolerance);
  }
  SECTION("items and values are split on ',' and '=' without trimming") {
    CHECK(verify(t + ",v1=" + sig) == signature_error::none);
    CHECK(verify(t + ", v1=" + sig) == signature_error::no_v1_signature);
    CHECK(verify(t + ",v1 =" + sig) == signature_error::no_v1_signature);
    CHECK(verify(" " + t + ",v1=" + sig) == signature_error::no_timestamp);
    CHECK(verify(t + ",v1=" + sig + " ") == signature_error::no_matching_signature);
    CHECK(verify(t + ",v1=" + sig + "=anything") == signature_error::none);  // value ends at the second '='
    CHECK(verify(t + ",,,v1=" + sig + ",") == signature_error::none);
    CHECK(verify("v1=" + sig + "," + t) == signature_error::none);
    CHECK(verify("V1=" + sig + "," + t) == signature_error::no_v1_signature);
    CHECK(verify("T=1700000000,v1=" + sig) == signature_error::no_timestamp);
  }
  SECTION("t is read like JavaScript parseInt(t, 10); the HMAC covers the number") {
    CHECK(verify("t= \t1700000000,v1=" + sig) == signature_error::none);
    CHECK(verify("t=+1700000000,v1=" + sig) == signature_error::none);
    CHECK(verify("t=0001700000000,v1=" + sig) == signature_error::none);
    CHECK(verify("t=1700000000abc,v1=" + sig) == signature_error::none);
    CHECK(verify("t=1700000000.9,v1=" + sig) == signature_error::none);
    CHECK(verify("t=1700000001,v1=" + sig) == signature_error::no_matching_signature);
    CHECK(verify("t=1700000000,t=1700000001,v1=" + sig) == signature_error::no_matching_signature);
    CHECK(verify("t=1700000001,t=1700000000,v1=" + sig) == signature_error::none);
    CHECK(verify("t=-1,v1=" + sig) == signature_error::no_timestamp);  // the SDK's sentinel
    CHECK(verify("t=-1.5,v1=" + sig) == signature_error::no_timestamp);
    CHECK(verify("t=1700000000,t=-1,v1=" + sig) == signature_error::no_timestamp);
    CHECK(verify("t=abc,v1=" + sig) == signature_error::malformed_header);
    CHECK(verify("t=,v1=" + sig) == signature_error::malformed_header);
    CHECK(verify("t,v1=" + sig) == signature_error::malformed_header);
    CHECK(verify("t=-,v1=" + sig) == signature_error::malformed_header);
    CHECK(verify("t=99999999999999999999,v1=" + sig) == signature_error::malformed_header);
    CHECK(verify("t=1700000000,t=abc,v1=" + sig) == signature_error::malformed_header);
    CHECK(verify("t=abc,t=1700000000,v1=" + sig) == signature_error::none);
  }
  SECTION("v1 values: any match accepts, but an empty one rejects everything") {
    const std::string other(64, 'f');
    CHECK(verify(t + ",v1=" + other + ",v1=" + sig) == signature_error::none);
    CHECK(verify(t + ",v1=" + sig + ",v1=" + other) == signature_error::none);
    CHECK(verify(t + ",v1=" + sig + ",v0=,v2=") == signature_error::none);
    CHECK(verify(t + ",v1=,v1=" + sig) == signature_error::malformed_header);
    CHECK(verify(t + ",v1=" + sig + ",v1=") == signature_error::malformed_header);
    CHECK(verify(t + ",v1=" + sig + ",v1") == signature_error::malformed_header);
    CHECK(verify(t + ",v1==" + sig) == signature_error::malformed_header);
    CHECK(verify(t + ",v1=" + sig.substr(0, 63)) == signature_error::no_matching_signature);
    CHECK(verify(t + ",v1=" + sig + "0") == signature_error::no_matching_signature);
    std::string upper = sig;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (upper != sig) CHECK(verify(t + ",v1=" + upper) == signature_error::no_matching_signature);
    CHECK(verify(t + ",v1=" + std::string(64, 'z')) == signature_error::no_matching_signature);
    CHECK(verify(t + ",v1=" + std::string(64, '\0')) == signature_error::no_matching_signature);
  }
}

TEST_CASE("signature: hostile headers of 100 KB", "[signature]") {
  const std::string secret = "whsec_hostile";
  const std::string payload = R"({"id":"evt_big"})";
  const int64_t now = 1700000000;
  const std::string valid = billing::sign_stripe_payload(payload, secret, now);
  constexpr std::size_t size = 100 * 1024;
  auto verify = [&](const std::string& header) { return verify_one(header, payload, secret, now); };

  SECTION("random bytes") {
    std::mt19937 rng(12345);
    std::uniform_int_distribution<int> byte(0, 255);
    std::string garbage(size, '\0');
    for (char& c : garbage) c = static_cast<char>(byte(rng));
    const signature_error got = verify(garbage);
    INFO("got: " << billing::to_string(got));
    CHECK(got != signature_error::none);
  }
  SECTION("no separators at all") {
    CHECK(verify(std::string(size, 'x')) == signature_error::no_timestamp);
    CHECK(verify(std::string(size, '=')) == signature_error::no_timestamp);
    CHECK(verify(std::string(size, ',')) == signature_error::no_timestamp);
  }
  SECTION("a very long t") {
    CHECK(verify("t=" + std::string(size, '1') + ",v1=" + v1_of(valid)) == signature_error::malformed_header);
    CHECK(verify("t=" + std::string(size, '0') + "1700000000,v1=" + v1_of(valid)) == signature_error::none);
  }
  SECTION("thousands of wrong v1, then the right one") {
    std::string header = "t=1700000000";
    while (header.size() < size) header += ",v1=" + std::string(64, 'a');
    CHECK(verify(header) == signature_error::no_matching_signature);
    CHECK(verify(header + ",v1=" + v1_of(valid)) == signature_error::none);
    CHECK(verify(header + ",v1=" + v1_of(valid) + ",v1=") == signature_error::malformed_header);
  }
  SECTION("thousands of t") {
    std::string header;
    while (header.size() < size) header += "t=1,";
    CHECK(verify(header + valid) == signature_error::none);
  }
}

TEST_CASE("signature: to_string names every error", "[signature]") {
  std::set<std::string_view> phrases;
  for (auto e : {signature_error::none, signature_error::missing_header, signature_error::malformed_header,
                 signature_error::no_timestamp, signature_error::no_v1_signature,
                 signature_error::timestamp_outside_tolerance, signature_error::no_matching_signature,
                 signature_error::missing_payload, signature_error::no_secret}) {
    CHECK_FALSE(billing::to_string(e).empty());
    phrases.insert(billing::to_string(e));
  }
  CHECK(phrases.size() == 9);
  CHECK(billing::to_string(signature_error::no_v1_signature) == "no signatures found with expected scheme");
  CHECK(billing::to_string(static_cast<signature_error>(200)) == "unknown signature error");
}
