#include "protocol/stripe_objects.hpp"

#include <nlohmann/json.hpp>

namespace billing::stripe {

namespace {

using json = nlohmann::json;

// A readable reason why a field is unusable; empty when fine.
struct reader {
  const json& obj;
  std::string problem;

  bool present(const char* key) const { return obj.contains(key) && !obj.at(key).is_null(); }

  std::string text(const char* key, bool required = false) {
    if (!present(key)) {
      if (required && problem.empty())
        problem = std::string{"missing "} + key;
      return {};
    }
    const auto& v = obj.at(key);
    if (v.is_string())
      return v.get<std::string>();
    if (problem.empty())
      problem = std::string{key} + " is not a string";
    return {};
  }
  // Stripe's expandable fields are an id, or the object when expanded.
  std::string id_or_object(const char* key) {
    if (present(key) && obj.at(key).is_object()) {
      const auto& o = obj.at(key);
      return o.contains("id") && o.at("id").is_string() ? o.at("id").get<std::string>() : std::string{};
    }
    return text(key);
  }
  std::optional<int64_t> integer(const char* key, bool required = false) {
    if (!present(key)) {
      if (required && problem.empty())
        problem = std::string{"missing "} + key;
      return std::nullopt;
    }
    const auto& v = obj.at(key);
    if (v.is_number_integer())
      return v.get<int64_t>();
    if (problem.empty())
      problem = std::string{key} + " is not an integer";
    return std::nullopt;
  }
  bool boolean(const char* key) {
    if (!present(key))
      return false;
    const auto& v = obj.at(key);
    if (v.is_boolean())
      return v.get<bool>();
    if (problem.empty())
      problem = std::string{key} + " is not a boolean";
    return false;
  }
  metadata meta() {
    metadata out;
    if (!present("metadata"))
      return out;
    const auto& m = obj.at("metadata");
    if (!m.is_object()) {
      if (problem.empty())
        problem = "metadata is not an object";
      return out;
    }
    for (auto it = m.begin(); it != m.end(); ++it)
      if (it.value().is_string())
        out[it.key()] = it.value().get<std::string>();
    return out;
  }
  // The object's "object" field must say what we expect.
  void expect_object(const char* kind) {
    auto o = text("object", true);
    if (problem.empty() && o != kind)
      problem = "object is \"" + o + "\", not \"" + kind + "\"";
  }
};

// Parses `body` into an object and hands it to `fill`; any problem becomes
// failure{internal}.
template <class T, class Fill>
result<T> parse_as(std::string_view body, const char* what, Fill fill) {
  auto doc = json::parse(body.begin(), body.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return fail(billing_errc::internal, std::string{"Stripe's answer is not a readable "} + what + ": not a JSON object");
  T out;
  reader r{doc, {}};
  try {
    fill(r, out);
  } catch (const std::exception& ex) { // nlohmann's type errors: not expected, never escape
    r.problem = ex.what();
  }
  if (!r.problem.empty())
    return fail(billing_errc::internal, std::string{"Stripe's answer is not a readable "} + what + ": " + r.problem);
  return out;
}

void fill_intent(reader& r, payment_intent& pi) {
  r.expect_object("payment_intent");
  pi.id = r.text("id", true);
  pi.status = r.text("status", true);
  pi.amount = r.integer("amount", true).value_or(0);
  pi.amount_received = r.integer("amount_received").value_or(0);
  pi.currency = r.text("currency", true);
  pi.livemode = r.boolean("livemode");
  pi.created = r.integer("created").value_or(0);
  pi.client_secret = r.text("client_secret");
  pi.description = r.text("description");
  pi.cancellation_reason = r.text("cancellation_reason");
  pi.latest_charge = r.id_or_object("latest_charge");
  pi.meta = r.meta();
  if (r.present("last_payment_error") && r.obj.at("last_payment_error").is_object()) {
    reader e{r.obj.at("last_payment_error"), {}};
    pi.last_error_code = e.text("code");
    if (pi.last_error_code.empty())
      pi.last_error_code = e.text("decline_code");
    pi.last_error_message = e.text("message");
  }
  if (r.problem.empty() && pi.id.empty())
    r.problem = "empty id";
}

} // namespace

result<payment_intent> parse_payment_intent(std::string_view body) {
  return parse_as<payment_intent>(body, "PaymentIntent", fill_intent);
}

result<refund> parse_refund(std::string_view body) {
  return parse_as<refund>(body, "Refund", [](reader& r, refund& x) {
    r.expect_object("refund");
    x.id = r.text("id", true);
    x.status = r.text("status", true);
    x.amount = r.integer("amount", true).value_or(0);
    x.currency = r.text("currency", true);
    x.payment_intent = r.id_or_object("payment_intent");
    x.charge = r.id_or_object("charge");
    x.reason = r.text("reason");
    x.created = r.integer("created").value_or(0);
    x.meta = r.meta();
    if (r.present("charge") && r.obj.at("charge").is_object()) {
      reader c{r.obj.at("charge"), {}};
      x.charge_amount = c.integer("amount", true);
      x.charge_amount_refunded = c.integer("amount_refunded", true);
      x.charge_livemode = c.boolean("livemode");
      if (!c.problem.empty() && r.problem.empty())
        r.problem = "charge: " + c.problem;
    }
  });
}

result<checkout_session> parse_checkout_session(std::string_view body) {
  return parse_as<checkout_session>(body, "Checkout Session", [](reader& r, checkout_session& s) {
    r.expect_object("checkout.session");
    s.id = r.text("id", true);
    s.status = r.text("status");
    s.payment_status = r.text("payment_status", true);
    s.url = r.text("url");
    s.payment_intent = r.id_or_object("payment_intent");
    s.client_reference_id = r.text("client_reference_id");
    s.amount_total = r.integer("amount_total");
    s.currency = r.text("currency");
    s.livemode = r.boolean("livemode");
    s.created = r.integer("created").value_or(0);
    s.expires_at = r.integer("expires_at").value_or(0);
    s.meta = r.meta();
  });
}

result<event_page> parse_event_page(std::string_view body) {
  return parse_as<event_page>(body, "list of Events", [](reader& r, event_page& page) {
    r.expect_object("list");
    page.has_more = r.boolean("has_more");
    if (!r.problem.empty())
      return;
    if (!r.present("data") || !r.obj.at("data").is_array()) {
      r.problem = "data is not an array";
      return;
    }
    for (const auto& ev : r.obj.at("data")) {
      if (!ev.is_object()) {
        r.problem = "an element of data is not an object";
        return;
      }
      reader e{ev, {}};
      e.expect_object("event");
      listed_event out{e.text("id", true), e.text("type", true), e.integer("created", true).value_or(0), ev.dump()};
      if (!e.problem.empty()) {
        r.problem = "event " + out.id + ": " + e.problem;
        return;
      }
      page.data.push_back(std::move(out));
    }
  });
}

intent_info to_intent_info(const payment_intent& pi) {
  intent_info info;
  info.id = intent_id{pi.id};
  info.client_secret = pi.client_secret;
  info.status = pi.status;
  info.amount_cents = pi.amount;
  info.currency = pi.currency;
  info.livemode = pi.livemode;
  info.failure_code = pi.last_error_code;
  info.failure_message = pi.last_error_message;
  return info;
}

session_info to_session_info(const checkout_session& s) {
  session_info info;
  info.id = session_id{s.id};
  info.url = s.url;
  info.status = s.status;
  info.payment_status = s.payment_status;
  info.intent = intent_id{s.payment_intent};
  info.amount_cents = s.amount_total.value_or(0);
  info.currency = s.currency;
  info.livemode = s.livemode;
  info.expires_at = s.expires_at;
  return info;
}

refund_info to_refund_info(const refund& r) {
  refund_info info;
  info.id = r.id;
  info.status = r.status;
  info.amount_cents = r.amount;
  info.currency = r.currency;
  info.charge_amount_cents = r.charge_amount;
  info.charge_refunded_cents = r.charge_amount_refunded;
  info.livemode = r.charge_livemode;
  info.reason = r.reason;
  return info;
}

api_error parse_error(unsigned status, std::string_view body) {
  api_error e;
  e.status = status;
  auto doc = json::parse(body.begin(), body.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("error") || !doc.at("error").is_object())
    return e;
  const auto& err = doc.at("error");
  reader r{err, {}};
  e.type = r.text("type");
  e.code = r.text("code");
  e.decline_code = r.text("decline_code");
  e.message = r.text("message");
  e.param = r.text("param");
  e.doc_url = r.text("doc_url");
  if (r.present("payment_intent") && err.at("payment_intent").is_object()) {
    payment_intent pi;
    reader p{err.at("payment_intent"), {}};
    fill_intent(p, pi);
    if (p.problem.empty())
      e.intent = std::move(pi);
  }
  return e;
}

std::string_view to_string(error_class c) noexcept {
  switch (c) {
    case error_class::invalid_request: return "invalid_request";
    case error_class::unexpected_state: return "unexpected_state";
    case error_class::authentication: return "authentication";
    case error_class::permission: return "permission";
    case error_class::idempotency: return "idempotency";
    case error_class::not_found: return "not_found";
    case error_class::unavailable: return "unavailable";
    case error_class::other: return "other";
  }
  return "other";
}

error_class classify(const api_error& e) noexcept {
  // Stripe's own verdicts first: the status and the type agree in practice,
  // but a 401 is a key problem whatever the body says.
  if (e.status == 401 || e.type == "authentication_error")
    return error_class::authentication;
  if (e.status == 403)
    return error_class::permission;
  if (e.type == "idempotency_error")
    return error_class::idempotency;
  if (e.status == 409 || e.status == 429 || e.status >= 500 || e.type == "api_error"
      || e.code == "lock_timeout" || e.code == "rate_limit")
    return error_class::unavailable;
  if (e.code == "payment_intent_unexpected_state" || e.code == "checkout_session_unexpected_state"
      || e.code == "charge_already_refunded")
    return error_class::unexpected_state;
  if (e.status == 404 || e.code == "resource_missing")
    return error_class::not_found;
  if ((e.type == "invalid_request_error" || e.type == "card_error") && e.status >= 400 && e.status < 500)
    return error_class::invalid_request;
  return error_class::other;
}

failure to_failure(const api_error& e, std::string_view what) {
  auto ours = [&](billing_errc code, std::string_view why) {
    std::string m = "Stripe " + std::string{what} + ": " + std::string{why} + " (HTTP " + std::to_string(e.status);
    if (!e.type.empty())
      m += ", " + e.type;
    if (!e.code.empty())
      m += ", " + e.code;
    m += ")";
    return fail(code, std::move(m));
  };
  switch (classify(e)) {
    case error_class::invalid_request:
      // Stripe's user-facing text, and the parameter it names.
      return fail(billing_errc::invalid_argument,
                  e.message.empty() ? "Stripe refused the request" : e.message, e.param);
    case error_class::unexpected_state:
      return fail(billing_errc::invalid_state,
                  e.message.empty() ? "Stripe refused the request in the object's state" : e.message, e.param);
    case error_class::authentication:
      return ours(billing_errc::internal, "the secret key was refused");
    case error_class::permission:
      return ours(billing_errc::internal, "the key lacks a permission");
    case error_class::idempotency:
      return ours(billing_errc::internal, "idempotency key reused with other parameters");
    case error_class::not_found:
      return ours(billing_errc::internal, "no such object in this Stripe account");
    case error_class::unavailable:
      return ours(billing_errc::unavailable, "Stripe is unavailable");
    case error_class::other:
      break;
  }
  return ours(billing_errc::internal, "unexpected answer");
}

failure unreachable(std::string_view what, std::string_view detail) {
  return fail(billing_errc::unavailable,
              "Stripe " + std::string{what} + ": no answer (" + std::string{detail} + ")");
}

} // namespace billing::stripe
