// stripe_probe: one provider call through net/stripe_client, for the Node
// tests that compare billingd's requests with the official SDK's against the
// fake Stripe (retrieve has no HTTP route in billingd to trigger it).
//
//   stripe_probe BASE KEY CA_FILE create INVOICE AMOUNT CURRENCY WORKFLOW SHIPMENT
//   stripe_probe BASE KEY CA_FILE get INTENT
//   stripe_probe BASE KEY CA_FILE cancel INTENT INVOICE
//
// CA_FILE may be "-" (system roots only). Prints one JSON line: the
// intent_info, or {"error":{code,message,field}}; exit 0 either way, 2 on
// bad usage. Retries: the defaults, with short delays.
#include "net/stripe_client.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

using namespace billing;

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  auto usage = [] {
    std::cerr << "usage: stripe_probe BASE KEY CA_FILE create INVOICE AMOUNT CURRENCY WORKFLOW SHIPMENT\n"
                 "       stripe_probe BASE KEY CA_FILE get INTENT\n"
                 "       stripe_probe BASE KEY CA_FILE cancel INTENT INVOICE\n";
    return 2;
  };
  if (a.size() < 5)
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
  intent_result out = fail(billing_errc::internal, "no answer");
  {
    caf::scoped_actor self{sys};
    auto receive = [&](auto&& req) {
      req.receive([&](intent_result& r) { out = std::move(r); },
                  [&](caf::error& e) { out = fail(billing_errc::internal, caf::to_string(e)); });
    };
    const auto wait = std::chrono::seconds(30);
    const auto& op = a[3];
    if (op == "create" && a.size() == 9)
      receive(self->request(provider, wait, create_atom::value,
                            intent_request{invoice_id{a[4]}, std::stoll(a[5]), a[6], a[7], a[8]}));
    else if (op == "get" && a.size() == 5)
      receive(self->request(provider, wait, get_atom::value, intent_id{a[4]}));
    else if (op == "cancel" && a.size() == 6)
      receive(self->request(provider, wait, cancel_atom::value, intent_id{a[4]}, invoice_id{a[5]}));
    else
      return usage();
    self->send_exit(provider, caf::exit_reason::user_shutdown);
  }
  nlohmann::json j;
  if (ok(out)) {
    auto& i = std::get<intent_info>(out);
    j = {{"id", i.id.str()},          {"status", i.status},     {"client_secret", i.client_secret},
         {"amount_cents", i.amount_cents}, {"currency", i.currency}, {"livemode", i.livemode}};
  } else {
    auto& f = std::get<failure>(out);
    j = {{"error", {{"code", std::string{to_string(f.code)}}, {"message", f.message}, {"field", f.field}}}};
  }
  std::cout << j.dump() << std::endl;
  return 0;
}
