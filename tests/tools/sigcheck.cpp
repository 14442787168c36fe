// sigcheck: a line-oriented bridge from the Node interop test to
// protocol/stripe_signature. Test tool only; single-threaded; blocks on stdin.
//
// Each input line is one JSON object; each gets exactly one output line.
//   {"op":"verify","header":H,"payload_hex":P,"secrets":[S...],"now":N[,"tolerance":T]}
//       -> {"verdict":"accept"|"reject","error":"<to_string(error)>"}
//   {"op":"sign","payload_hex":P,"secret":S,"t":N}
//       -> {"header":"t=N,v1=..."}
// "payload" (a JSON string, sent as UTF-8) may replace "payload_hex".
// A line that cannot be understood -> {"bad_input":"..."}.
#include "protocol/stripe_signature.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  throw std::invalid_argument("payload_hex: not hex");
}

std::string payload_of(const nlohmann::json& in) {
  if (in.contains("payload")) return in.at("payload").get<std::string>();
  const auto hex = in.at("payload_hex").get<std::string>();
  if (hex.size() % 2 != 0) throw std::invalid_argument("payload_hex: odd length");
  std::string out(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<char>(hex_digit(hex[2 * i]) * 16 + hex_digit(hex[2 * i + 1]));
  return out;
}

nlohmann::json handle(const nlohmann::json& in) {
  const auto op = in.at("op").get<std::string>();
  if (op == "sign")
    return {{"header", billing::sign_stripe_payload(payload_of(in), in.at("secret").get<std::string>(),
                                                    in.at("t").get<int64_t>())}};
  if (op != "verify") throw std::invalid_argument("unknown op " + op);
  const auto secrets = in.at("secrets").get<std::vector<std::string>>();
  billing::signature_check check;
  if (in.contains("tolerance")) check.tolerance_seconds = in.at("tolerance").get<int64_t>();
  const auto header = in.at("header").get<std::string>();
  const auto payload = payload_of(in);
  const auto e = billing::verify_stripe_signature(header, payload, secrets, in.at("now").get<int64_t>(), check);
  return {{"verdict", e == billing::signature_error::none ? "accept" : "reject"},
          {"error", std::string(billing::to_string(e))}};
}

}  // namespace

int main() {
  std::ios::sync_with_stdio(false);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    nlohmann::json out;
    try {
      out = handle(nlohmann::json::parse(line));
    } catch (const std::exception& e) {
      out = {{"bad_input", e.what()}};
    }
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  }
  return 0;
}
