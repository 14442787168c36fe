#include "net/http_edge.hpp"

#include "net/edge_auth.hpp"
#include "net/request_id.hpp"
#include "net/simulator.hpp"
#include "net/status_map.hpp"
#include "protocol/json_codec.hpp"
#include "protocol/log_context.hpp"
#include "protocol/stripe_event.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>

namespace billing::net {

namespace {

constexpr std::string_view invoices_prefix = "/v1/invoices";
constexpr std::string_view simulator_prefix = "/v1/simulator/payments/";
using steady = std::chrono::steady_clock;

std::string_view header(const request& req, std::string_view name) {
  auto it = req.find(name);
  return it == req.end() ? std::string_view{} : std::string_view{it->value().data(), it->value().size()};
}

} // namespace

// Everything an answer needs after the request itself is gone: the reply is
// built on an actor thread, long after handle() returned.
struct http_edge::exchange {
  responder reply_to;
  unsigned version = 11;
  bool keep_alive = true;
  bool access_log = false; // API calls log one line each; webhooks and probes do not
  std::string request_id;
  std::string method;
  std::string path;
  std::string key_name = "-";
  std::string retry_after = "1"; // Retry-After of a retry_later failure, in seconds
  steady::time_point started = steady::now();
  edge_stats* stats = nullptr;
  log_summary* server_errors = nullptr;
  request_metrics* metrics = nullptr;
  http_route route = http_route::other;

  response make(unsigned status, std::string body) const {
    response res{static_cast<http::status>(status), version};
    res.set(http::field::content_type, "application/json");
    res.set("X-Request-Id", request_id);
    res.keep_alive(keep_alive);
    res.body() = std::move(body);
    return res;
  }

  void send(response res) const {
    const auto elapsed = steady::now() - started;
    if (metrics)
      metrics->observe_http(route, res.result_int(), elapsed);
    if (access_log) {
      log_scope lctx{request_id};
      auto ms = std::chrono::duration<double, std::milli>(elapsed).count();
      spdlog::info("{} {} {} key={} request_id={} {:.1f} ms", method, path, res.result_int(), key_name,
                   request_id, ms);
    }
    reply_to(std::move(res));
  }

  void ok(unsigned status, std::string body) const { send(make(status, std::move(body))); }

  // The one place a failure becomes a response. A server-side failure's own
  // text may quote PostgreSQL, CAF or a library: the client gets a fixed
  // message, the log gets the detail under the request id.
  void fail(const failure& f) const {
    log_scope lctx{request_id};
    const unsigned status = http_status(f.code);
    nlohmann::json e = {{"code", to_string(f.code)}};
    if (server_side(f.code)) {
      e["message"] = public_message(f.code);
      if (f.code == billing_errc::internal) {
        stats->internal_errors.fetch_add(1, std::memory_order_relaxed);
        spdlog::error("{} {} request_id={}: internal error: {}", method, path, request_id, f.message);
      } else {
        server_errors->warn(method + " " + path + " answered " + std::to_string(status) + " "
                            + std::string{to_string(f.code)} + " request_id=" + request_id + ": "
                            + f.message);
      }
    } else {
      e["message"] = f.message;
      if (!f.field.empty())
        e["field"] = f.field;
    }
    e["request_id"] = request_id;
    auto res = make(status, nlohmann::json{{"error", std::move(e)}}.dump(
                              -1, ' ', false, nlohmann::json::error_handler_t::replace));
    if (retry_later(f.code))
      res.set(http::field::retry_after, retry_after);
    if (f.code == billing_errc::unauthenticated)
      res.set(http::field::www_authenticate, R"(Bearer realm="billingd")");
    send(std::move(res));
  }

  void method_not_allowed(const char* allow) const {
    nlohmann::json e = {{"code", "method_not_allowed"},
                        {"message", std::string{"method not allowed; use "} + allow},
                        {"request_id", request_id}};
    auto res = make(405, nlohmann::json{{"error", std::move(e)}}.dump());
    res.set(http::field::allow, allow);
    send(std::move(res));
  }

  // A callback answering `r`'s value as JSON with `ok_status(value)`, or its failure.
  template <class T, class ToStatus>
  static callback<result<T>> answer(std::shared_ptr<exchange> x, ToStatus ok_status) {
    return [x = std::move(x), ok_status](result<T> r) {
      if (!billing::ok(r))
        return x->fail(std::get<failure>(r));
      auto& value = std::get<T>(r);
      x->ok(ok_status(value), to_json(value));
    };
  }
};

namespace {

using exchange_ptr = std::shared_ptr<http_edge::exchange>;

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

// A query string split into decoded parameters, each allowed once and
// named in `allowed`; the failure names the offending parameter.
result<std::vector<std::pair<std::string, std::string>>> parse_query(
  std::string_view query, std::initializer_list<std::string_view> allowed) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty())
      continue;
    auto eq = pair.find('=');
    auto raw_name = pair.substr(0, eq);
    auto name = percent_decode(raw_name);
    if (!name || std::find(allowed.begin(), allowed.end(), *name) == allowed.end()) {
      std::string shown = name && check_id(*name, "parameter") == std::nullopt ? *name : "?";
      return fail(billing_errc::invalid_argument, "unknown query parameter '" + shown + "'", shown);
    }
    for (auto& [seen, v] : out)
      if (seen == *name)
        return fail(billing_errc::invalid_argument, *name + " is given more than once", *name);
    auto value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (!value)
      return fail(billing_errc::invalid_argument, *name + " is not well-formed percent-encoding", *name);
    out.emplace_back(std::move(*name), std::move(*value));
  }
  return out;
}

// Invoice ids are ours (derive_invoice_id): lower-case UUIDs.
std::optional<failure> check_invoice_id(std::string_view id) {
  if (!is_canonical_uuid(id))
    return fail(billing_errc::invalid_argument, "id must be a lower-case UUID (an invoice id)", "id");
  return std::nullopt;
}

void answer_health(const exchange_ptr& x, std::string_view path, const billing_api& api) {
  if (path == "/healthz")
    return x->ok(200, R"({"status":"ok"})");
  if (api.ready())
    return x->ok(200, R"({"status":"ready"})");
  auto res = x->make(503, R"({"status":"not ready"})");
  res.set(http::field::retry_after, "1");
  x->send(std::move(res));
}

exchange_ptr make_exchange(const request& req, responder reply, edge_stats* stats,
                           log_summary* server_errors, request_metrics* metrics) {
  auto x = std::make_shared<http_edge::exchange>();
  x->reply_to = std::move(reply);
  x->version = req.version();
  x->keep_alive = req.keep_alive();
  x->request_id = request_id_from(header(req, "X-Request-Id"));
  x->method = std::string{req.method_string()};
  std::string_view target{req.target().data(), req.target().size()};
  x->path = std::string{target.substr(0, target.find('?'))};
  x->stats = stats;
  x->server_errors = server_errors;
  x->metrics = metrics;
  return x;
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

http_edge::http_edge(billing_api& api, edge_config cfg, payment_simulator* simulator)
  : api_(api), cfg_(std::move(cfg)), simulator_(simulator),
    bad_signatures_("webhook rejected", cfg_.log_summary_interval),
    server_errors_("request failed", cfg_.log_summary_interval) {}

void http_edge::handle(request&& req, responder reply) {
  auto x = make_exchange(req, std::move(reply), cfg_.stats.get(), &server_errors_, cfg_.metrics.get());
  log_scope lctx{x->request_id};
  std::string_view target{req.target().data(), req.target().size()};
  auto qmark = target.find('?');
  std::string_view path = target.substr(0, qmark);
  std::string_view query = qmark == std::string_view::npos ? "" : target.substr(qmark + 1);
  auto method = req.method();

  if (path == "/webhook") {
    if (method != http::verb::post)
      return x->method_not_allowed("POST");
    x->route = http_route::webhook;
    return webhook_request(x, req);
  }
  if (path == "/healthz" || path == "/readyz") {
    if (method != http::verb::get && method != http::verb::head)
      return x->method_not_allowed("GET");
    x->route = path == "/healthz" ? http_route::healthz : http_route::readyz;
    return answer_health(x, path, api_);
  }

  // API routes: find the route, then ask for the key its scope needs.
  x->access_log = true;
  // The key, its scope, its rate limit (net/edge_auth, shared with gRPC).
  auto authorized = [&](scope needed, http_route route) {
    x->route = route;
    auto a = admit_call(*cfg_.keys, cfg_.limits.get(), *cfg_.stats, header(req, "Authorization"), needed);
    x->key_name = a.key_name;
    if (a.refused) {
      if (a.refused->code == billing_errc::rate_limited)
        x->retry_after = std::to_string(a.retry_after);
      x->fail(*a.refused);
      return false;
    }
    return true;
  };

  if (path == invoices_prefix) {
    if (method == http::verb::post)
      return authorized(scope::invoices_write, http_route::create_invoice) ? create_invoice(x, req) : void();
    if (method == http::verb::get)
      return authorized(scope::invoices_read, http_route::list_invoices) ? list_invoices(x, query) : void();
    return x->method_not_allowed("GET, POST");
  }
  if (path.starts_with(invoices_prefix) && path.size() > invoices_prefix.size()
      && path[invoices_prefix.size()] == '/') {
    auto rest = path.substr(invoices_prefix.size() + 1);
    constexpr std::string_view refunds_suffix = "/refunds";
    if (rest.ends_with(refunds_suffix) && rest.find('/') == rest.size() - refunds_suffix.size()) {
      if (method != http::verb::post)
        return x->method_not_allowed("POST");
      if (authorized(scope::invoices_write, http_route::refund_invoice))
        refund_invoice(x, rest.substr(0, rest.size() - refunds_suffix.size()), req);
      return;
    }
    constexpr std::string_view cancel_suffix = "/cancel";
    if (rest.ends_with(cancel_suffix) && rest.find('/') == rest.size() - cancel_suffix.size()) {
      if (method != http::verb::post)
        return x->method_not_allowed("POST");
      if (authorized(scope::invoices_write, http_route::cancel_invoice))
        cancel_invoice(x, rest.substr(0, rest.size() - cancel_suffix.size()));
      return;
    }
    if (rest.find('/') == std::string_view::npos) {
      if (method != http::verb::get)
        return x->method_not_allowed("GET");
      if (authorized(scope::invoices_read, http_route::get_invoice))
        get_invoice(x, rest);
      return;
    }
  }
  if (simulator_ && path.starts_with(simulator_prefix)) {
    if (method != http::verb::post)
      return x->method_not_allowed("POST");
    if (authorized(scope::simulator, http_route::simulator))
      simulate(x, path.substr(simulator_prefix.size()), req.body());
    return;
  }
  x->fail(fail(billing_errc::not_found, "no such route: " + std::string{path.substr(0, 200)}));
}

void http_edge::create_invoice(const exchange_ptr& x, const request& req) {
  auto parsed = parse_create_invoice(req.body());
  if (!ok(parsed))
    return x->fail(std::get<failure>(parsed));
  api_.create_invoice(std::move(std::get<create_invoice_request>(parsed)),
                      exchange::answer<invoice_view>(x, [](const invoice_view& v) {
                        return v.created ? 201u : 200u;
                      }));
}

void http_edge::get_invoice(const exchange_ptr& x, std::string_view id) {
  if (auto err = check_invoice_id(id))
    return x->fail(*err);
  api_.get_invoice(invoice_id{std::string{id}},
                   exchange::answer<invoice_view>(x, [](auto&) { return 200u; }));
}

void http_edge::list_invoices(const exchange_ptr& x, std::string_view query) {
  auto params = parse_query(query, {"shipment_id", "workflow_id", "limit"});
  if (!ok(params))
    return x->fail(std::get<failure>(params));
  invoice_filter filter;
  for (auto& [name, value] : std::get<0>(params)) {
    if (name == "limit") {
      int limit = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), limit);
      if (ec != std::errc{} || end != value.data() + value.size() || limit < 1 || limit > 1000)
        return x->fail(fail(billing_errc::invalid_argument,
                            "limit must be an integer from 1 to 1000", "limit"));
      filter.limit = limit;
      continue;
    }
    if (auto err = check_id(value, name))
      return x->fail(*err);
    (name == "shipment_id" ? filter.shipment_id : filter.workflow_id) = std::move(value);
  }
  if (filter.shipment_id.empty() && filter.workflow_id.empty())
    return x->fail(fail(billing_errc::invalid_argument, "give shipment_id or workflow_id", "shipment_id"));
  api_.list_invoices(std::move(filter),
                     exchange::answer<std::vector<invoice>>(x, [](auto&) { return 200u; }));
}

void http_edge::cancel_invoice(const exchange_ptr& x, std::string_view id) {
  if (auto err = check_invoice_id(id))
    return x->fail(*err);
  api_.cancel_invoice(invoice_id{std::string{id}},
                      exchange::answer<invoice_view>(x, [](auto&) { return 200u; }));
}

void http_edge::refund_invoice(const exchange_ptr& x, std::string_view id, const request& req) {
  if (auto err = check_invoice_id(id))
    return x->fail(*err);
  // Two keys would make the first one win silently; a repeated JSON key is refused too.
  if (req.count("Idempotency-Key") > 1)
    return x->fail(fail(billing_errc::invalid_argument, "Idempotency-Key must be sent once", "Idempotency-Key"));
  auto parsed = parse_refund_request(req.body(), header(req, "Idempotency-Key"));
  if (!ok(parsed))
    return x->fail(std::get<failure>(parsed));
  api_.refund_invoice(invoice_id{std::string{id}}, std::move(std::get<refund_invoice_request>(parsed)),
                      exchange::answer<refund_view>(x, [](const refund_view& v) { return v.created ? 201u : 200u; }));
}

void http_edge::webhook_request(const exchange_ptr& x, const request& req) {
  if (auto refused = api_.refuse_now())
    return x->fail(*refused);
  auto now = cfg_.clock();
  auto verdict = verify_stripe_signature(header(req, "Stripe-Signature"), req.body(),
                                         cfg_.webhook_secrets, now, cfg_.signature);
  if (verdict != signature_error::none) {
    cfg_.stats->webhook_bad_signature.fetch_add(1, std::memory_order_relaxed);
    cfg_.metrics->count_webhook(webhook_unverified, webhook_verdict::bad_signature);
    bad_signatures_.warn("bad Stripe-Signature (" + std::string{to_string(verdict)} + ") request_id="
                         + x->request_id);
    return x->fail(fail(billing_errc::bad_signature,
                        "Stripe-Signature check failed: " + std::string{to_string(verdict)},
                        "Stripe-Signature"));
  }
  auto parsed = parse_stripe_event(req.body());
  if (auto* err = std::get_if<event_parse_error>(&parsed)) {
    cfg_.stats->webhook_bad_body.fetch_add(1, std::memory_order_relaxed);
    cfg_.metrics->count_webhook(webhook_type_index(""), webhook_verdict::bad_body);
    spdlog::warn("webhook rejected: a signed body billingd cannot read: {} request_id={}",
                 err->message(), x->request_id);
    return x->fail(fail(billing_errc::invalid_argument, err->message(), err->field));
  }
  auto& ev = std::get<stripe_event>(parsed);
  // Ids end up in the database and the logs: bound them like our own.
  for (auto [value, name] : {std::pair<const std::string*, const char*>{&ev.id.str(), "id"},
                             std::pair<const std::string*, const char*>{&ev.type, "type"}})
    if (auto err = check_id(*value, name)) {
      cfg_.stats->webhook_bad_body.fetch_add(1, std::memory_order_relaxed);
      cfg_.metrics->count_webhook(webhook_type_index(""), webhook_verdict::bad_body);
      return x->fail(*err);
    }
  incoming_event in{to_invoice_event(ev), ev.type, now};
  const size_t type_index = webhook_type_index(ev.type);
  api_.handle_event(invoice_id{std::move(ev.invoice_id)}, std::move(in),
                    [x, type_index](webhook_result r) {
                      if (!ok(r)) {
                        x->metrics->count_webhook(type_index, webhook_verdict::failed);
                        return x->fail(std::get<failure>(r));
                      }
                      auto& w = std::get<webhook_reply>(r);
                      x->stats->webhook_outcomes[static_cast<size_t>(w.result)].fetch_add(
                        1, std::memory_order_relaxed);
                      x->metrics->count_webhook(type_index, verdict_of(w.result));
                      x->ok(200, to_json(w));
                    });
}

void http_edge::simulate(const exchange_ptr& x, std::string_view id, std::string_view body) {
  if (auto err = check_invoice_id(id))
    return x->fail(*err);
  simulator_->pay(invoice_id{std::string{id}}, body, [x](result<std::string> r) {
    if (!ok(r))
      return x->fail(std::get<failure>(r));
    x->ok(200, std::move(std::get<std::string>(r)));
  });
}

// -- the admin listener -------------------------------------------------------

admin_edge::admin_edge(billing_api& api, admin_config cfg) : api_(api), cfg_(std::move(cfg)) {}

void admin_edge::handle(request&& req, responder reply) {
  static log_summary admin_errors{"admin request failed", std::chrono::seconds(10)};
  auto x = make_exchange(req, std::move(reply), cfg_.stats.get(), &admin_errors, cfg_.latency.get());
  auto path = std::string_view{x->path};
  if (req.method() != http::verb::get && req.method() != http::verb::head)
    return x->method_not_allowed("GET");
  if (path == "/healthz" || path == "/readyz") {
    x->route = path == "/healthz" ? http_route::healthz : http_route::readyz;
    return answer_health(x, path, api_);
  }
  if (path == "/metrics" && cfg_.metrics) {
    x->route = http_route::metrics;
    if (cfg_.require_key) {
      auto d = cfg_.keys->authorize(header(req, "Authorization"), scope::admin);
      if (auto* f = std::get_if<auth_failure>(&d)) {
        x->access_log = true;
        return x->fail(auth_failure_value(*f));
      }
    }
    auto res = x->make(200, cfg_.metrics());
    res.set(http::field::content_type, "text/plain; version=0.0.4");
    return x->send(std::move(res));
  }
  x->fail(fail(billing_errc::not_found, "no such route on the admin listener"));
}

} // namespace billing::net
