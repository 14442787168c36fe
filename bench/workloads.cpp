// billing-bench's workloads: invoice setup (API or SQL), the event bodies,
// the signed webhook deliveries, and the /metrics read-back. Used by
// billing_bench.cpp; the engine that drives them is http_load.
#include "bench/workloads.hpp"

#include "protocol/stripe_event.hpp"
#include "protocol/stripe_signature.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <atomic>
#include <cstring>
#include <ctime>
#include <sstream>
#include <thread>

namespace billing::bench {

using json = nlohmann::ordered_json;

namespace {

std::string quoted_array(const std::vector<std::string>& v) {
  std::string s = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i)
      s += ',';
    s += '"';
    for (char c : v[i]) {
      if (c == '"' || c == '\\')
        s += '\\';
      s += c;
    }
    s += '"';
  }
  return s + "}";
}

} // namespace

// -- setup ------------------------------------------------------------------

void create_load::prepare(uint64_t item, int, outgoing& out) {
  const auto& inv = p_.invoices[item];
  json body{{"shipment_id", inv.shipment_id}, {"user_id", inv.user_id}, {"workflow_id", inv.workflow_id},
            {"amount_cents", inv.amount_cents}, {"currency", inv.currency}};
  out.scratch = body.dump();
  out.body = out.scratch;
  out.head = "POST /v1/invoices HTTP/1.1\r\nHost: " + host_ + "\r\nAuthorization: Bearer " + api_key_
             + "\r\nContent-Type: application/json\r\nUser-Agent: billing-bench\r\nContent-Length: "
             + std::to_string(out.scratch.size()) + "\r\n\r\n";
}

void create_load::on_reply(uint64_t item, int, const reply& r, bool final) {
  auto& inv = p_.invoices[item];
  if (r.status == 200 || r.status == 201) {
    try {
      auto j = json::parse(r.body);
      auto id = j.value("id", std::string{});
      auto intent = j.value("provider_intent_id", std::string{});
      if (id.empty() || intent.empty()) {
        note_failure(inv, "answer without id or provider_intent_id: " + std::string{r.body.substr(0, 200)});
        return;
      }
      if (id != inv.id || intent != inv.intent) {
        ++differed;
        inv.id = id;
        inv.intent = intent;
      }
      ++created;
    } catch (const std::exception&) {
      note_failure(inv, "answer is not JSON: " + std::string{r.body.substr(0, 200)});
    }
    return;
  }
  if (final)
    note_failure(inv, r.status == 0 ? std::string{r.error}
                                    : "HTTP " + std::to_string(r.status) + " " + std::string{r.body.substr(0, 200)});
}

void create_load::note_failure(const plan_invoice& inv, std::string why) {
  ++failed;
  if (samples.size() < 5)
    samples.push_back("workflow " + inv.workflow_id + ": " + why);
}

uint64_t seed_invoices(const plan& p, const std::string& url) {
  pqxx::connection conn{url};
  pqxx::work tx{conn};
  uint64_t inserted = 0;
  constexpr size_t chunk = 10'000;
  for (size_t from = 0; from < p.invoices.size(); from += chunk) {
    std::vector<std::string> id, user, shipment, workflow, amount, currency, intent;
    for (size_t i = from; i < std::min(p.invoices.size(), from + chunk); ++i) {
      auto& inv = p.invoices[i];
      id.push_back(inv.id);
      user.push_back(inv.user_id);
      shipment.push_back(inv.shipment_id);
      workflow.push_back(inv.workflow_id);
      amount.push_back(std::to_string(inv.amount_cents));
      currency.push_back(inv.currency);
      intent.push_back(inv.intent);
    }
    auto r = tx.exec_params(
      "INSERT INTO invoices (id, user_id, shipment_id, workflow_id, amount_cents, currency, status, version, "
      "provider, provider_intent_id, expires_at, created_at, updated_at) "
      "SELECT i::uuid, u, s, w, a, c, 'PENDING', 1, 'simulated', pi, now() + interval '1 day', now(), now() "
      "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[]) "
      "AS t(i, u, s, w, a, c, pi) ON CONFLICT DO NOTHING",
      quoted_array(id), quoted_array(user), quoted_array(shipment), quoted_array(workflow), quoted_array(amount),
      quoted_array(currency), quoted_array(intent));
    inserted += static_cast<uint64_t>(r.affected_rows());
  }
  tx.commit();
  return inserted;
}


bodies build_bodies(const plan& p) {
  bodies b;
  b.text.resize(p.events.size());
  b.tag_at.resize(p.events.size());
  std::atomic<uint64_t> fallbacks{0};
  auto work = [&](size_t from, size_t step) {
    body_factory factory{p};
    for (size_t i = from; i < p.events.size(); i += step) {
      b.text[i] = factory.build(p.events[i]);
      auto at = b.text[i].find(p.events[i].id);
      b.tag_at[i] = static_cast<uint32_t>(at == std::string::npos ? 0 : at + p.events[i].id.size() - pass_tag_size);
    }
    fallbacks += factory.fallbacks();
  };
  std::thread helper{work, 1, 2};
  work(0, 2);
  helper.join();
  b.fallbacks = fallbacks.load();
  return b;
}

// -- webhooks ---------------------------------------------------------------

std::pair<uint64_t, uint32_t> webhook_load::locate(uint64_t item) {
  auto n = p_.deliveries.size();
  uint64_t pass = item / n;
  while (states_.size() <= pass)
    states_.emplace_back(p_.events.size(), delivery_state::not_sent);
  return {pass, p_.deliveries[item % n]};
}

void webhook_load::prepare(uint64_t item, int, outgoing& out) {
  auto [pass, ev] = locate(item);
  auto& st = states_[pass][ev];
  if (st == delivery_state::not_sent)
    st = delivery_state::sent;
  const std::string& body = b_.text[ev];
  if (pass == 0) {
    out.body = body;
  } else {
    out.scratch.assign(body);
    auto tagged = event_id_for_pass(p_.events[ev].id, pass);
    std::memcpy(out.scratch.data() + b_.tag_at[ev], tagged.data() + tagged.size() - pass_tag_size, pass_tag_size);
    out.body = out.scratch;
  }
  // Signed now, as Stripe signs each attempt: a stale `t` would be refused.
  auto sig = sign_stripe_payload(out.body, secret_, static_cast<int64_t>(std::time(nullptr)));
  out.head.reserve(256);
  out.head += "POST /webhook HTTP/1.1\r\nHost: ";
  out.head += host_;
  out.head += "\r\nContent-Type: application/json; charset=utf-8\r\nUser-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\nStripe-Signature: ";
  out.head += sig;
  out.head += "\r\nContent-Length: ";
  out.head += std::to_string(out.body.size());
  out.head += "\r\n\r\n";
}

void webhook_load::on_reply(uint64_t item, int, const reply& r, bool final) {
  auto [pass, ev] = locate(item);
  if (r.status >= 200 && r.status < 300) {
    states_[pass][ev] = delivery_state::acknowledged;
    constexpr std::string_view key = "\"outcome\":\"";
    auto at = r.body.find(key);
    std::string_view outcome = "(none)";
    if (at != std::string_view::npos) {
      auto rest = r.body.substr(at + key.size());
      outcome = rest.substr(0, rest.find('"'));
    }
    auto it = outcomes.find(outcome);
    if (it == outcomes.end())
      outcomes.emplace(std::string{outcome}, 1);
    else
      ++it->second;
    return;
  }
  if (final && samples.size() < 5)
    samples.push_back("event " + event_id_for_pass(p_.events[ev].id, pass) + ": "
                      + (r.status == 0 ? std::string{r.error}
                                       : "HTTP " + std::to_string(r.status) + " " + std::string{r.body.substr(0, 200)}));
}

// -- read-back ----------------------------------------------------------------

std::map<std::string, double> fetch_metrics(const std::string& host, uint16_t port) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  std::map<std::string, double> out;
  try {
    boost::asio::io_context ioc;
    beast::tcp_stream stream{ioc};
    boost::asio::ip::tcp::resolver resolver{ioc};
    stream.expires_after(std::chrono::seconds(5));
    stream.connect(resolver.resolve(host, std::to_string(port)));
    http::request<http::empty_body> req{http::verb::get, "/metrics", 11};
    req.set(http::field::host, host);
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    if (res.result_int() != 200)
      return out;
    std::istringstream in{res.body()};
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#')
        continue;
      auto sp = line.rfind(' ');
      if (sp == std::string::npos)
        continue;
      try {
        out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
      } catch (const std::exception&) {
      }
    }
  } catch (const std::exception&) {
  }
  return out;
}

std::string self_check(const plan& p, const bodies& b) {
  bool seen[3] = {false, false, false};
  for (size_t i = 0; i < p.events.size(); ++i) {
    auto k = static_cast<size_t>(p.events[i].outcome);
    if (seen[k])
      continue;
    seen[k] = true;
    auto parsed = parse_stripe_event(b.text[i]);
    if (auto* err = std::get_if<event_parse_error>(&parsed))
      return "generated body does not parse: " + err->message();
    auto got = to_invoice_event(std::get<stripe_event>(parsed));
    auto want = expected_event(p, p.events[i], p.events[i].id);
    if (got.kind != want.kind || got.created != want.created || got.amount_cents != want.amount_cents
        || got.currency != want.currency || got.intent != want.intent || got.failure_code != want.failure_code
        || got.id != want.id)
      return "generated body of " + p.events[i].id + " does not parse to the expected event";
    if (std::get<stripe_event>(parsed).invoice_id != p.invoices[p.events[i].invoice].id)
      return "generated body of " + p.events[i].id + " does not carry metadata.invoice_id";
  }
  return {};
}

} // namespace billing::bench
