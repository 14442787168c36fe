// stripe_probe: one provider call through net/stripe_client, for the Node
// tests that compare billingd's requests with the official SDK's against the
// fake Stripe (the calls billingd makes without an HTTP route to trigger
// them: retrieving an intent or a session, reading the event log).
//
//   stripe_probe BASE KEY CA_FILE create INVOICE AMOUNT CURRENCY WORKFLOW SHIPMENT
//   stripe_probe BASE KEY CA_FILE get INTENT
//   stripe_probe BASE KEY CA_FILE cancel INTENT INVOICE
//   stripe_probe BASE KEY CA_FILE session-get SESSION
//   stripe_probe BASE KEY CA_FILE events TYPES CREATED_GTE CREATED_LTE STARTING_AFTER LIMIT
//
// events: TYPES is comma-separated ("-": none), CREATED_GTE/CREATED_LTE are
// Unix seconds (0: no bound), STARTING_AFTER an event id ("-": none), as the
// reconciler fills event_listing.
//
// CA_FILE may be "-" (system roots only). Prints one JSON line: the
// intent_info, session_info or event page, or {"error":{code,message,field}};
// exit 0 either way, 2 on bad usage. Retries: the defaults, with short delays.
#include "net/stripe_client.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>
#include <optional>

using namespace billing;

namespace {

int usage() {
  std::cerr << "usage: stripe_probe BASE KEY CA_FILE create INVOICE AMOUNT CURRENCY WORKFLOW SHIPMENT\n"
               "       stripe_probe BASE KEY CA_FILE get INTENT\n"
               "       stripe_probe BASE KEY CA_FILE cancel INTENT INVOICE\n"
               "       stripe_probe BASE KEY CA_FILE session-get SESSION\n"
               "       stripe_probe BASE KEY CA_FILE events TYPES CREATED_GTE CREATED_LTE STARTING_AFTER LIMIT\n";
  return 2;
}

nlohmann::json error_json(const failure& f) {
  return {{"error", {{"code", std::string{to_string(f.code)}}, {"message", f.message}, {"field", f.field}}}};
}

nlohmann::json to_json(const intent_info& i) {
  return {{"id", i.id.str()},          {"status", i.status},     {"client_secret", i.client_secret},
          {"amount_cents", i.amount_cents}, {"currency", i.currency}, {"livemode", i.livemode}};
}

nlohmann::json to_json(const session_info& s) {
  return {{"id", s.id.str()},         {"url", s.url},
          {"status", s.status},       {"payment_status", s.payment_status},
          {"intent", s.intent.str()}, {"amount_cents", s.amount_cents},
          {"currency", s.currency},   {"livemode", s.livemode},
          {"expires_at", s.expires_at}};
}

nlohmann::json to_json(const event_listing_page& p) {
  auto events = nlohmann::json::array();
  for (const auto& ev : p.events)
    events.push_back({{"id", ev.id}, {"type", ev.type}, {"created", ev.created}});
  return {{"has_more", p.has_more}, {"events", events}};
}

template <class T>
nlohmann::json answer_json(const result<T>& r) {
  return ok(r) ? to_json(std::get<T>(r)) : error_json(std::get<failure>(r));
}

std::vector<std::string> split_types(const std::string& s) {
  std::vector<std::string> out;
  if (s == "-")
    return out;
  size_t from = 0;
  for (;;) {
    auto comma = s.find(',', from);
    out.push_back(s.substr(from, comma - from));
    if (comma == std::string::npos)
      return out;
    from = comma + 1;
  }
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  // Checked before the client is spawned: the actor system waits for it.
  const std::pair<std::string_view, size_t> arity[] = {
    {"create", 9}, {"get", 5}, {"cancel", 6}, {"session-get", 5}, {"events", 9}};
  if (a.size() < 4 || std::none_of(std::begin(arity), std::end(arity), [&](const auto& x) {
        return x.first == a[3] && x.second == a.size();
      }))
    return usage();
  net::stripe_client_config cfg;
  cfg.api_base = a[0];
  cfg.secret_key = a[1];
  if (a[2] != "-")
    cfg.ca_file = a[2];
  cfg.retry.initial_delay = std::chrono::milliseconds(50);
  caf::actor_system_config sys_cfg;
  caf::actor_system sys{sys_cfg};
  auto spawned = net::spawn_stripe_client(sys, cfg);
  if (!ok(spawned)) {
    std::cerr << std::get<failure>(spawned).message << '\n';
    return 2;
  }
  auto provider = std::get<provider_actor>(spawned);
  std::optional<nlohmann::json> out;
  {
    caf::scoped_actor self{sys};
    auto on_error = [&](caf::error& e) { out = error_json(fail(billing_errc::internal, caf::to_string(e))); };
    auto on_intent = [&](intent_result& r) { out = answer_json(r); };
    auto on_session = [&](session_result& r) { out = answer_json(r); };
    auto on_page = [&](event_page_result& r) { out = answer_json(r); };
    const auto wait = std::chrono::seconds(30);
    const auto& op = a[3];
    if (op == "create") {
      self->request(provider, wait, create_atom::value,
                    intent_request{invoice_id{a[4]}, std::stoll(a[5]), a[6], a[7], a[8]})
        .receive(on_intent, on_error);
    } else if (op == "get") {
      self->request(provider, wait, get_atom::value, intent_id{a[4]}).receive(on_intent, on_error);
    } else if (op == "cancel") {
      self->request(provider, wait, cancel_atom::value, intent_id{a[4]}, invoice_id{a[5]})
        .receive(on_intent, on_error);
    } else if (op == "session-get") {
      self->request(provider, wait, get_atom::value, session_id{a[4]}).receive(on_session, on_error);
    } else if (op == "events") {
      event_listing q;
      q.types = split_types(a[4]);
      q.created_gte = std::stoll(a[5]);
      q.created_lte = std::stoll(a[6]);
      q.starting_after = a[7] == "-" ? std::string{} : a[7];
      q.limit = std::stoi(a[8]);
      self->request(provider, wait, list_atom::value, std::move(q)).receive(on_page, on_error);
    }
    self->send_exit(provider, caf::exit_reason::user_shutdown);
  }
  if (!out)
    out = error_json(fail(billing_errc::internal, "no answer"));
  std::cout << out->dump() << std::endl;
  return 0;
}
