#include "protocol/json_codec.hpp"

#include "protocol/currency.hpp"
#include "protocol/text.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>
#include <utility>

namespace billing {

namespace {

using json = nlohmann::json;

failure bad(std::string field, std::string message) {
  return fail(billing_errc::invalid_argument, std::move(message), std::move(field));
}

// parse_json_strict's reader: builds the document from nlohmann's SAX events,
// so the duplicate-key and depth rules are checked while reading and the
// parse ends at the first problem (an event answering false ends sax_parse).
// Pointers into the document stay valid: a container only grows while it is
// the innermost open one, so its ancestors never move.
class strict_reader {
public:
  using number_integer_t = json::number_integer_t;
  using number_unsigned_t = json::number_unsigned_t;
  using number_float_t = json::number_float_t;
  using string_t = json::string_t;
  using binary_t = json::binary_t;

  bool null() { return add(json(nullptr)); }
  bool boolean(bool v) { return add(json(v)); }
  bool number_integer(number_integer_t v) { return add(json(v)); }
  bool number_unsigned(number_unsigned_t v) { return add(json(v)); }
  bool number_float(number_float_t v, const string_t&) { return add(json(v)); }
  bool string(string_t& v) { return add(json(std::move(v))); }
  bool binary(binary_t& v) { return add(json::binary(std::move(v))); } // not from JSON text
  bool start_object(std::size_t) { return open(json::object()); }
  bool start_array(std::size_t) { return open(json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(string_t& k) {
    auto& top = open_.back();
    top.key = std::move(k);
    if (top.value->get_ref<const json::object_t&>().count(top.key) != 0) {
      auto where = path();
      error_ = bad(where, "duplicate key \"" + where + "\"");
      return false;
    }
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const json::exception&) {
    error_ = bad("", "the body is not valid JSON");
    return false;
  }

  failure error() && {
    return error_ ? std::move(*error_) : bad("", "the body is not valid JSON");
  }
  json root() && { return std::move(root_); }

private:
  struct open_value {
    json* value;
    std::string key; // objects: the key whose value is being read
  };

  // Where the value being read sits: keys joined by '.', array elements as "[i]".
  std::string path() const {
    std::string out;
    for (std::size_t i = 0; i < open_.size(); ++i) {
      auto& level = open_[i];
      if (level.value->is_array()) {
        // An outer array's last element is open; the innermost one's next is being read.
        auto index = level.value->size() - (i + 1 < open_.size() ? 1 : 0);
        // Appended piecewise: GCC 12 -O3 warns (-Wrestrict, a false
        // positive) on "[" + std::to_string(...) in Release builds.
        out += '[';
        out += std::to_string(index);
        out += ']';
      } else {
        if (!out.empty())
          out += '.';
        out += level.key;
      }
    }
    return out;
  }

  json* place(json&& v) {
    if (open_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    auto& top = open_.back();
    if (top.value->is_array()) {
      top.value->push_back(std::move(v));
      return &top.value->back();
    }
    return &top.value->get_ref<json::object_t&>().emplace(top.key, std::move(v)).first->second;
  }

  bool add(json&& v) {
    place(std::move(v));
    return true;
  }

  bool open(json&& container) {
    if (open_.size() >= max_json_depth) {
      error_ = bad(path(), "the body nests objects and arrays deeper than "
                             + std::to_string(max_json_depth) + " levels");
      return false;
    }
    open_.push_back({place(std::move(container)), {}});
    return true;
  }

  bool close() {
    open_.pop_back();
    return true;
  }

  json root_;
  std::vector<open_value> open_;
  std::optional<failure> error_;
};

// A required, non-empty, bounded string without control characters.
result<std::string> id_field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null())
    return bad(name, std::string{name} + " is required");
  if (!it->is_string())
    return bad(name, std::string{name} + " must be a string");
  auto value = it->get<std::string>();
  if (auto err = check_id(value, name))
    return *err;
  return value;
}

json invoice_json(const invoice& inv) {
  json j = {
    {"id", inv.id.str()},
    {"shipment_id", inv.shipment_id},
    {"user_id", inv.user_id},
    {"workflow_id", inv.workflow_id},
    {"amount_cents", inv.amount_cents},
    {"currency", inv.currency},
    {"status", to_string(inv.status)},
    {"version", inv.version},
    {"provider", inv.provider},
    {"provider_intent_id", inv.provider_intent_id.empty() ? json(nullptr) : json(inv.provider_intent_id.str())},
    {"mode", to_string(inv.mode)},
    {"provider_session_id", inv.provider_session_id.empty() ? json(nullptr) : json(inv.provider_session_id.str())},
    {"refunded_cents", inv.refunded_cents},
    {"created_at", rfc3339(inv.created_at)},
    {"updated_at", rfc3339(inv.updated_at)},
    {"expires_at", rfc3339(inv.expires_at)},
    {"paid_at", inv.paid_at ? json(rfc3339(*inv.paid_at)) : json(nullptr)},
  };
  if (!inv.failure_code.empty() || !inv.failure_message.empty())
    j["failure"] = {{"code", inv.failure_code}, {"message", inv.failure_message}};
  return j;
}

} // namespace

std::string_view to_string(billing_errc e) noexcept {
  switch (e) {
    case billing_errc::invalid_argument: return "invalid_argument";
    case billing_errc::unauthenticated: return "unauthenticated";
    case billing_errc::permission_denied: return "permission_denied";
    case billing_errc::not_found: return "not_found";
    case billing_errc::conflict: return "conflict";
    case billing_errc::invalid_state: return "invalid_state";
    case billing_errc::bad_signature: return "bad_signature";
    case billing_errc::payload_too_large: return "payload_too_large";
    case billing_errc::unavailable: return "unavailable";
    case billing_errc::overloaded: return "overloaded";
    case billing_errc::rate_limited: return "rate_limited";
    case billing_errc::timeout: return "timeout";
    case billing_errc::provider_error: return "provider_error";
    case billing_errc::internal: return "internal";
  }
  return "internal";
}

std::optional<failure> check_id(std::string_view value, std::string_view field) {
  std::string name{field};
  if (value.empty())
    return bad(name, name + " must not be empty");
  if (value.size() > max_id_length)
    return bad(name, name + " must be at most " + std::to_string(max_id_length) + " bytes");
  for (unsigned char c : value)
    if (c < 0x20 || c == 0x7f)
      return bad(name, name + " must not contain control characters");
  // Ids reach PostgreSQL, which refuses invalid UTF-8 with an error of its own.
  if (!is_valid_utf8(value))
    return bad(name, name + " must be valid UTF-8");
  return std::nullopt;
}

result<json> parse_json_strict(std::string_view body) {
  strict_reader reader;
  if (!json::sax_parse(body, &reader))
    return std::move(reader).error();
  return std::move(reader).root();
}

result<create_invoice_request> parse_create_invoice(std::string_view body) {
  auto parsed = parse_json_strict(body);
  if (!ok(parsed))
    return std::get<failure>(std::move(parsed));
  const auto& doc = std::get<json>(parsed);
  if (!doc.is_object())
    return bad("", "the body must be a JSON object");

  create_invoice_request req;
  for (auto [name, target] : {std::pair{"shipment_id", &req.shipment_id},
                              std::pair{"user_id", &req.user_id},
                              std::pair{"workflow_id", &req.workflow_id}}) {
    auto v = id_field(doc, name);
    if (!ok(v))
      return std::get<failure>(v);
    *target = std::move(std::get<std::string>(v));
  }

  auto amount = doc.find("amount_cents");
  if (amount == doc.end() || amount->is_null())
    return bad("amount_cents", "amount_cents is required");
  if (!amount->is_number_integer())
    return bad("amount_cents", "amount_cents must be an integer number of cents");
  if (amount->is_number_unsigned() ? amount->get<uint64_t>() > uint64_t(max_amount_cents)
                                   : (amount->get<int64_t>() <= 0 || amount->get<int64_t>() > max_amount_cents))
    return bad("amount_cents", "amount_cents must be between 1 and " + std::to_string(max_amount_cents));
  req.amount_cents = amount->get<int64_t>();
  if (req.amount_cents <= 0)
    return bad("amount_cents", "amount_cents must be between 1 and " + std::to_string(max_amount_cents));

  auto currency = doc.find("currency");
  if (currency == doc.end() || currency->is_null())
    return bad("currency", "currency is required");
  if (!currency->is_string())
    return bad("currency", "currency must be a string");
  const auto& code = currency->get_ref<const std::string&>();
  auto is_letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  // Only three ASCII letters are echoed back in the message below.
  if (code.size() != 3 || !std::all_of(code.begin(), code.end(), is_letter))
    return bad("currency", "currency must be a three-letter ISO 4217 code, e.g. \"usd\"");
  auto known = find_currency(code);
  if (!known)
    return bad("currency", "currency \"" + code + "\" is not an active ISO 4217 code");
  req.currency = std::string{known->code};

  auto expires = doc.find("expires_in_seconds");
  if (expires != doc.end() && !expires->is_null()) {
    if (!expires->is_number_integer())
      return bad("expires_in_seconds", "expires_in_seconds must be an integer");
    bool in_range = !expires->is_number_unsigned()
                      ? expires->get<int64_t>() >= min_expires_in_seconds
                          && expires->get<int64_t>() <= max_expires_in_seconds
                      : expires->get<uint64_t>() <= uint64_t(max_expires_in_seconds)
                          && expires->get<uint64_t>() >= uint64_t(min_expires_in_seconds);
    if (!in_range)
      return bad("expires_in_seconds", "expires_in_seconds must be between "
                                         + std::to_string(min_expires_in_seconds) + " and "
                                         + std::to_string(max_expires_in_seconds));
    req.expires_in_seconds = expires->get<int64_t>();
  }

  if (auto mode = doc.find("mode"); mode != doc.end() && !mode->is_null()) {
    auto m = mode->is_string() ? parse_invoice_mode(mode->get<std::string>()) : std::nullopt;
    if (!m)
      return bad("mode", "mode must be \"payment_intent\" or \"checkout\"");
    req.mode = *m;
  }
  for (auto [name, target] : {std::pair{"success_url", &req.success_url}, std::pair{"cancel_url", &req.cancel_url}}) {
    auto it = doc.find(name);
    if (it == doc.end() || it->is_null())
      continue;
    if (!it->is_string())
      return bad(name, std::string{name} + " must be a string");
    *target = it->get<std::string>();
  }
  if (auto err = check_create_mode(req))
    return *err;
  return req;
}

std::optional<failure> check_create_mode(const create_invoice_request& req) {
  const bool checkout = req.mode == invoice_mode::checkout;
  for (auto [name, url] : {std::pair{"success_url", &req.success_url}, std::pair{"cancel_url", &req.cancel_url}}) {
    if (url->empty()) {
      if (checkout)
        return bad(name, std::string{name} + " is required with mode \"checkout\"");
      continue;
    }
    if (!checkout)
      return bad(name, std::string{name} + " is only for mode \"checkout\"");
    const bool tls = url->starts_with("https://");
    const bool scheme = tls || url->starts_with("http://");
    if (!scheme || url->size() > max_url_length || url->size() <= (tls ? 8u : 7u)
        || url->find_first_of(" \t\r\n") != std::string::npos || !is_valid_utf8(*url))
      return bad(name, std::string{name} + " must be an absolute http(s) URL of at most "
                         + std::to_string(max_url_length) + " bytes");
  }
  if (checkout && req.expires_in_seconds
      && (*req.expires_in_seconds < min_checkout_expires_in_seconds
          || *req.expires_in_seconds > max_checkout_expires_in_seconds))
    return bad("expires_in_seconds", "with mode \"checkout\", expires_in_seconds must be between "
                                       + std::to_string(min_checkout_expires_in_seconds) + " and "
                                       + std::to_string(max_checkout_expires_in_seconds)
                                       + " (Stripe's window for a Checkout Session)");
  return std::nullopt;
}

std::optional<failure> check_refund_request(const refund_invoice_request& req) {
  const auto& key = req.idempotency_key;
  if (!key.empty()) {
    bool printable = std::all_of(key.begin(), key.end(), [](char c) { return c > 0x20 && c < 0x7f; });
    if (!printable || key.size() > max_idempotency_key_length)
      return bad("Idempotency-Key", "Idempotency-Key must be 1 to " + std::to_string(max_idempotency_key_length)
                                      + " printable ASCII characters without spaces");
  }
  if (req.amount_cents && (*req.amount_cents < 1 || *req.amount_cents > max_amount_cents))
    return bad("amount_cents", "amount_cents must be between 1 and " + std::to_string(max_amount_cents));
  static constexpr std::string_view reasons[] = {"duplicate", "fraudulent", "requested_by_customer"};
  if (!req.reason.empty() && std::find(std::begin(reasons), std::end(reasons), req.reason) == std::end(reasons))
    return bad("reason", "reason must be \"duplicate\", \"fraudulent\" or \"requested_by_customer\"");
  return std::nullopt;
}

result<refund_invoice_request> parse_refund_request(std::string_view body, std::string_view idempotency_key) {
  refund_invoice_request req;
  req.idempotency_key = std::string{idempotency_key};
  if (body.find_first_not_of(" \t\r\n") != std::string_view::npos) {
    auto parsed = parse_json_strict(body);
    if (!ok(parsed))
      return std::get<failure>(std::move(parsed));
    const auto& doc = std::get<json>(parsed);
    if (!doc.is_object())
      return bad("", "the body must be a JSON object");
    for (auto it = doc.begin(); it != doc.end(); ++it)
      if (it.key() != "amount_cents" && it.key() != "reason") {
        std::string shown = check_id(it.key(), "field") ? "?" : it.key();
        return bad(shown, "unknown field \"" + shown + "\" (amount_cents and reason are known)");
      }
    if (auto a = doc.find("amount_cents"); a != doc.end() && !a->is_null()) {
      if (!a->is_number_integer() || (a->is_number_unsigned() && a->get<uint64_t>() > uint64_t(max_amount_cents)))
        return bad("amount_cents", "amount_cents must be an integer from 1 to " + std::to_string(max_amount_cents));
      req.amount_cents = a->get<int64_t>();
    }
    if (auto r = doc.find("reason"); r != doc.end() && !r->is_null()) {
      if (!r->is_string())
        return bad("reason", "reason must be a string");
      req.reason = r->get<std::string>();
    }
  }
  if (auto err = check_refund_request(req))
    return *err;
  return req;
}

std::string to_json(const invoice_view& v) {
  auto j = invoice_json(v.inv);
  if (!v.client_secret.empty())
    j["client_secret"] = v.client_secret;
  if (!v.checkout_url.empty())
    j["checkout_url"] = v.checkout_url;
  return j.dump();
}

std::string to_json(const refund_view& r) {
  return json{{"refund", {{"id", r.refund_id}, {"status", r.refund_status}, {"amount_cents", r.amount_cents}}},
              {"invoice", invoice_json(r.inv)}}
    .dump();
}

std::string to_json(const std::vector<invoice>& list) {
  json items = json::array();
  for (auto& inv : list)
    items.push_back(invoice_json(inv));
  return json{{"invoices", std::move(items)}}.dump();
}

std::string to_json(const webhook_reply& r) {
  json j = {{"received", true}, {"outcome", to_string(r.result)}};
  if (!r.invoice.empty())
    j["invoice_id"] = r.invoice.str();
  if (r.status)
    j["status"] = to_string(*r.status);
  return j.dump();
}

std::string to_json(const failure& f) {
  json e = {{"code", to_string(f.code)}, {"message", f.message}};
  if (!f.field.empty())
    e["field"] = f.field;
  return json{{"error", std::move(e)}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string signal_payload(const invoice& inv, unix_seconds occurred_at) {
  json j{
    {"invoice_id", inv.id.str()},
    {"status", to_string(inv.status)},
    {"amount_cents", inv.amount_cents},
    {"currency", inv.currency},
    {"provider_intent_id", inv.provider_intent_id.str()},
    {"occurred_at", rfc3339(occurred_at)},
  };
  if (inv.refunded_cents > 0)
    j["refunded_cents"] = inv.refunded_cents;
  return j.dump();
}

std::string rfc3339(unix_seconds t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

} // namespace billing
