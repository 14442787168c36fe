#include "net/http_edge.hpp"

#include "net/simulator.hpp"
#include "net/status_map.hpp"
#include "protocol/json_codec.hpp"
#include "protocol/stripe_event.hpp"

#include <spdlog/spdlog.h>

#include <charconv>

namespace billing::net {

namespace {

constexpr std::string_view invoices_prefix = "/v1/invoices";
constexpr std::string_view simulator_prefix = "/v1/simulator/payments/";

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      if (i + 2 >= s.size())
        return std::nullopt;
      int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
      if (hi < 0 || lo < 0)
        return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The value of `name` in a query string, decoded; nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) != name)
      continue;
    auto decoded = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    return decoded ? decoded : std::optional<std::string>{std::string{}};
  }
  return std::nullopt;
}

response method_not_allowed(const request& req, const char* allow) {
  auto res = error_response(req, fail(billing_errc::invalid_argument,
                                      std::string{"method not allowed; use "} + allow));
  res.result(http::status::method_not_allowed);
  res.set(http::field::allow, allow);
  return res;
}

// Invoice ids are ours (derive_invoice_id): anything else cannot exist.
std::optional<failure> check_invoice_id(std::string_view id) {
  if (!is_canonical_uuid(id))
    return fail(billing_errc::not_found, "no invoice with this id (ids are lower-case UUIDs)", "id");
  return std::nullopt;
}

} // namespace

response json_response(const request& req, unsigned status, std::string body) {
  response res{static_cast<http::status>(status), req.version()};
  res.set(http::field::content_type, "application/json");
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

response error_response(const request& req, const failure& f) {
  auto res = json_response(req, http_status(f.code), to_json(f));
  if (retry_later(f.code))
    res.set(http::field::retry_after, "1");
  return res;
}

http_edge::http_edge(billing_api& api, edge_config cfg, payment_simulator* simulator)
  : api_(api), cfg_(std::move(cfg)), simulator_(simulator) {}

void http_edge::handle(request&& req, responder reply) {
  std::string_view target{req.target().data(), req.target().size()};
  auto qmark = target.find('?');
  std::string_view path = target.substr(0, qmark);
  std::string_view query = qmark == std::string_view::npos ? "" : target.substr(qmark + 1);
  auto method = req.method();

  if (path == "/webhook") {
    if (method != http::verb::post)
      return reply(method_not_allowed(req, "POST"));
    return webhook(req, std::move(reply));
  }
  if (path == invoices_prefix) {
    if (method == http::verb::post)
      return create_invoice(req, std::move(reply));
    if (method == http::verb::get)
      return list_invoices(req, query, std::move(reply));
    return reply(method_not_allowed(req, "GET, POST"));
  }
  if (path.starts_with(invoices_prefix) && path.size() > invoices_prefix.size()
      && path[invoices_prefix.size()] == '/') {
    auto rest = path.substr(invoices_prefix.size() + 1);
    constexpr std::string_view cancel_suffix = "/cancel";
    if (rest.ends_with(cancel_suffix)) {
      if (method != http::verb::post)
        return reply(method_not_allowed(req, "POST"));
      return cancel_invoice(req, rest.substr(0, rest.size() - cancel_suffix.size()), std::move(reply));
    }
    if (rest.find('/') == std::string_view::npos) {
      if (method != http::verb::get)
        return reply(method_not_allowed(req, "GET"));
      return get_invoice(req, rest, std::move(reply));
    }
  }
  if (simulator_ && path.starts_with(simulator_prefix)) {
    if (method != http::verb::post)
      return reply(method_not_allowed(req, "POST"));
    return simulate(req, path.substr(simulator_prefix.size()), std::move(reply));
  }
  if (path == "/healthz")
    return reply(json_response(req, 200, R"({"status":"ok"})"));
  if (path == "/readyz") {
    if (api_.ready())
      return reply(json_response(req, 200, R"({"status":"ready"})"));
    return reply(error_response(req, fail(billing_errc::unavailable, "the database is unreachable")));
  }
  if (path == "/metrics" && cfg_.metrics) {
    response res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain; version=0.0.4");
    res.keep_alive(req.keep_alive());
    res.body() = cfg_.metrics();
    res.prepare_payload();
    return reply(std::move(res));
  }
  reply(error_response(req, fail(billing_errc::not_found, "no such route: " + std::string{path})));
}

namespace {

// Answers with `r`'s value as JSON (`ok_status`) or its failure.
template <class T, class ToStatus>
callback<result<T>> answer(const request& req, responder reply, ToStatus ok_status) {
  return [version = req.version(), keep_alive = req.keep_alive(), reply = std::move(reply),
          ok_status](result<T> r) {
    request shape;
    shape.version(version);
    shape.keep_alive(keep_alive);
    if (!ok(r))
      return reply(error_response(shape, std::get<failure>(r)));
    auto& value = std::get<T>(r);
    reply(json_response(shape, ok_status(value), to_json(value)));
  };
}

} // namespace

void http_edge::create_invoice(const request& req, responder reply) {
  auto parsed = parse_create_invoice(req.body());
  if (!ok(parsed))
    return reply(error_response(req, std::get<failure>(parsed)));
  api_.create_invoice(std::move(std::get<create_invoice_request>(parsed)),
                      answer<invoice_view>(req, std::move(reply), [](const invoice_view& v) {
                        return v.created ? 201u : 200u;
                      }));
}

void http_edge::get_invoice(const request& req, std::string_view id, responder reply) {
  if (auto err = check_invoice_id(id))
    return reply(error_response(req, *err));
  api_.get_invoice(invoice_id{std::string{id}},
                   answer<invoice_view>(req, std::move(reply), [](auto&) { return 200u; }));
}

void http_edge::list_invoices(const request& req, std::string_view query, responder reply) {
  invoice_filter filter;
  if (auto v = query_param(query, "shipment_id"))
    filter.shipment_id = std::move(*v);
  if (auto v = query_param(query, "workflow_id"))
    filter.workflow_id = std::move(*v);
  if (filter.shipment_id.empty() && filter.workflow_id.empty())
    return reply(error_response(req, fail(billing_errc::invalid_argument,
                                          "give shipment_id or workflow_id", "shipment_id")));
  for (auto [value, name] : {std::pair{&filter.shipment_id, "shipment_id"},
                             std::pair{&filter.workflow_id, "workflow_id"}})
    if (!value->empty())
      if (auto err = check_id(*value, name))
        return reply(error_response(req, *err));
  if (auto v = query_param(query, "limit")) {
    int limit = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), limit);
    if (ec != std::errc{} || end != v->data() + v->size() || limit < 1 || limit > 1000)
      return reply(error_response(req, fail(billing_errc::invalid_argument,
                                            "limit must be an integer from 1 to 1000", "limit")));
    filter.limit = limit;
  }
  api_.list_invoices(std::move(filter),
                     answer<std::vector<invoice>>(req, std::move(reply), [](auto&) { return 200u; }));
}

void http_edge::cancel_invoice(const request& req, std::string_view id, responder reply) {
  if (auto err = check_invoice_id(id))
    return reply(error_response(req, *err));
  api_.cancel_invoice(invoice_id{std::string{id}},
                      answer<invoice_view>(req, std::move(reply), [](auto&) { return 200u; }));
}

void http_edge::webhook(const request& req, responder reply) {
  if (auto refused = api_.refuse_now())
    return reply(error_response(req, *refused));
  auto now = cfg_.clock();
  auto sig_it = req.find("Stripe-Signature");
  std::string_view sig = sig_it == req.end() ? std::string_view{}
                                             : std::string_view{sig_it->value().data(), sig_it->value().size()};
  auto verdict = verify_stripe_signature(sig, req.body(), cfg_.webhook_secrets, now, cfg_.signature);
  if (verdict != signature_error::none) {
    spdlog::warn("webhook rejected: {}", to_string(verdict));
    return reply(error_response(
      req, fail(billing_errc::bad_signature,
                "Stripe-Signature check failed: " + std::string{to_string(verdict)}, "Stripe-Signature")));
  }
  auto parsed = parse_stripe_event(req.body());
  if (auto* err = std::get_if<event_parse_error>(&parsed)) {
    spdlog::warn("webhook rejected: {}", err->message());
    return reply(error_response(req, fail(billing_errc::invalid_argument, err->message(), err->field)));
  }
  auto& ev = std::get<stripe_event>(parsed);
  // Ids end up in the database and the logs: bound them like our own.
  if (auto err = check_id(ev.id.str(), "id"))
    return reply(error_response(req, *err));
  if (auto err = check_id(ev.type, "type"))
    return reply(error_response(req, *err));
  incoming_event in{to_invoice_event(ev), ev.type, now};
  api_.handle_event(invoice_id{std::move(ev.invoice_id)}, std::move(in),
                    answer<webhook_reply>(req, std::move(reply), [](auto&) { return 200u; }));
}

void http_edge::simulate(const request& req, std::string_view id, responder reply) {
  if (auto err = check_invoice_id(id))
    return reply(error_response(req, *err));
  simulator_->pay(invoice_id{std::string{id}}, req.body(),
                  [version = req.version(), keep_alive = req.keep_alive(),
                   reply = std::move(reply)](result<std::string> r) {
                    request shape;
                    shape.version(version);
                    shape.keep_alive(keep_alive);
                    if (!ok(r))
                      return reply(error_response(shape, std::get<failure>(r)));
                    reply(json_response(shape, 200, std::move(std::get<std::string>(r))));
                  });
}

} // namespace billing::net
