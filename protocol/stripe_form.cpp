#include "protocol/stripe_form.hpp"

#include <nlohmann/json.hpp>

namespace billing::stripe {

namespace {

bool kept(unsigned char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'
         || c == '.' || c == '~' || c == '[' || c == ']';
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// JavaScript's String(value) for what JSON can hold.
std::string scalar_text(const nlohmann::ordered_json& v) {
  if (v.is_null())
    return {};
  if (v.is_string())
    return v.get<std::string>();
  if (v.is_boolean())
    return v.get<bool>() ? "true" : "false";
  return v.dump();
}

void encode(const std::string& key, const nlohmann::ordered_json& value, std::string& out) {
  if (value.is_discarded())
    return; // JavaScript's undefined: the SDK leaves the key out
  if (value.is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it)
      encode(key + "[" + it.key() + "]", it.value(), out);
    return;
  }
  if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i)
      encode(key + "[" + std::to_string(i) + "]", value[i], out);
    return;
  }
  if (!out.empty())
    out += '&';
  out += form_escape(key);
  out += '=';
  out += form_escape(scalar_text(value));
}

} // namespace

std::string form_escape(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (kept(c)) {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xF];
    }
  }
  return out;
}

std::string form_encode(const nlohmann::ordered_json& params) {
  std::string out;
  if (!params.is_object())
    return out;
  for (auto it = params.begin(); it != params.end(); ++it)
    encode(it.key(), it.value(), out);
  return out;
}

std::vector<std::pair<std::string, std::string>> form_decode(std::string_view body) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!body.empty()) {
    auto amp = body.find('&');
    auto part = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view{} : body.substr(amp + 1);
    if (part.empty())
      continue;
    auto eq = part.find('=');
    auto key = part.substr(0, eq);
    auto value = eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1);
    out.emplace_back(percent_decode(key), percent_decode(value));
  }
  return out;
}

} // namespace billing::stripe
