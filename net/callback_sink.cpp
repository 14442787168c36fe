#include "net/callback_sink.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <ctime>
#include <memory>
#include <unordered_map>

namespace billing::net {

namespace {

using done_atom = caf::atom_constant<caf::atom("cdone")>;
using sink_impl = sink_actor::extend<caf::reacts_to<done_atom, uint64_t, delivery_result>>;

delivery_result to_result(const client_result& r) {
  if (!r.ok())
    return {delivery_verdict::retry, "http " + std::string{to_string(r.code)} + ": " + r.error};
  delivery_result out;
  out.verdict = classify_http_status(r.status);
  if (out.verdict != delivery_verdict::delivered)
    out.detail = "http status " + std::to_string(r.status) + ": " + r.body.substr(0, 200);
  return out;
}

struct sink_state {
  static inline const char* name = "billing.callback_sink";
  callback_sink_config cfg;
  std::unique_ptr<http_client> client;
  uint64_t next_key = 0;
  std::unordered_map<uint64_t, caf::typed_response_promise<delivery_result>> pending;
};

sink_impl::behavior_type sink_fun(sink_impl::stateful_pointer<sink_state> self,
                                  callback_sink_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  if (!st.cfg.clock)
    st.cfg.clock = [] { return static_cast<int64_t>(std::time(nullptr)); };
  st.client = std::make_unique<http_client>(st.cfg.client);
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& s = self->state;
    s.client->stop();
    for (auto& [key, rp] : s.pending)
      rp.deliver(delivery_result{delivery_verdict::retry, "callback sink stopped"});
    s.pending.clear();
    self->quit(msg.reason);
  });
  return {
    [self](deliver_atom, const signal_delivery& d) -> caf::result<delivery_result> {
      auto& s = self->state;
      auto body = callback_body(d);
      header_list headers{
        {"Content-Type", "application/json"},
        {"Billing-Signature", billing_signature(body, s.cfg.secret, s.cfg.clock())},
        {"Idempotency-Key", d.request_id},
        {"Billing-Signal", d.signal},
      };
      auto rp = self->make_response_promise<delivery_result>();
      auto key = ++s.next_key;
      s.pending.emplace(key, rp);
      auto me = caf::actor_cast<sink_impl>(self);
      s.client->post(callback_url(s.cfg.url, d.signal), std::move(body), std::move(headers),
                     s.cfg.timeout, [me, key](client_result r) {
                       caf::anon_send(me, done_atom::value, key, to_result(r));
                     });
      return rp;
    },
    [self](done_atom, uint64_t key, delivery_result& r) {
      auto& s = self->state;
      auto it = s.pending.find(key);
      if (it == s.pending.end())
        return;
      it->second.deliver(std::move(r));
      s.pending.erase(it);
    },
  };
}

} // namespace

result<sink_actor> spawn_callback_sink(caf::actor_system& sys, callback_sink_config cfg) {
  if (!parse_url(callback_url(cfg.url, "PaymentConfirmed")))
    return fail(billing_errc::invalid_argument,
                "callback_url must be http(s)://host[:port][/path], with {signal} where the "
                "signal name goes",
                "callback_url");
  if (cfg.secret.empty())
    return fail(billing_errc::invalid_argument, "callback_secret is required", "callback_secret");
  sink_impl h = sys.spawn(sink_fun, std::move(cfg));
  return sink_actor{h};
}

}  // namespace billing::net
