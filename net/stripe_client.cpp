// The Stripe provider actor: one http_client, a table of calls in flight,
// retries by delayed self-messages. Everything below runs on the actor.
#include "net/stripe_client.hpp"

#include "net/http_client.hpp"
#include "protocol/stripe_objects.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <unordered_map>

namespace billing::net {

namespace {

using steady = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;

// What one attempt brought back: the few headers that matter, never logged
// whole (the body holds client secrets).
struct attempt_answer {
  unsigned status = 0;       // 0: no answer (net says why)
  std::string body;
  std::string request_id;    // Stripe's Request-Id header
  std::string should_retry;  // Stripe-Should-Retry header
  bool replayed = false;     // Idempotent-Replayed: true
  client_errc net = client_errc::none;
  std::string net_error;
};

} // namespace
} // namespace billing::net

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::net::attempt_answer)

namespace billing::net {

namespace {

using attempt_atom = caf::atom_constant<caf::atom("sanswer")>;
using retry_atom = caf::atom_constant<caf::atom("sretry")>;
using stripe_impl = provider_actor::extend<caf::reacts_to<attempt_atom, uint64_t, attempt_answer>,
                                           caf::reacts_to<retry_atom, uint64_t, int64_t>>;

struct stripe_state;
using self_ptr = stripe_impl::stateful_pointer<stripe_state>;

struct call;
// A finished call: the last attempt's answer, successful or not, to the
// caller (the finisher holds the caller's promise).
using finisher = std::function<void(self_ptr, call&, attempt_answer&)>;

struct call {
  stripe::request req;
  finisher finish;
  std::function<void(failure)> abandon; // the client stopped first
  steady::time_point started;
  int attempts = 0;
};

struct stripe_state {
  static inline const char* name = "billing.stripe_client";
  stripe_client_config cfg;
  std::unique_ptr<http_client> client;
  std::unordered_map<uint64_t, call> calls;
  uint64_t next_id = 0;
  std::mt19937_64 prng{std::random_device{}()};
  // The loud-once log of a refused key.
  bool key_refusal_logged = false;
  uint64_t key_refusals_unlogged = 0;
  steady::time_point key_refusal_logged_at{};

  double random01() {
    if (cfg.random)
      return cfg.random();
    return std::uniform_real_distribution<double>{0.0, 1.0}(prng);
  }
};

std::string header(const http::fields& h, std::string_view name) {
  auto it = h.find(boost::beast::string_view{name.data(), name.size()});
  return it == h.end() ? std::string{} : std::string{it->value()};
}

std::string_view verb_name(stripe::method m) {
  return m == stripe::method::post ? "POST" : "GET";
}

// The path without its query (a list's query names no secret, but keeps log
// lines short and alike).
std::string_view log_path(const std::string& path) {
  return std::string_view{path}.substr(0, path.find('?'));
}

failure failure_of(self_ptr self, std::string_view what, const attempt_answer& a);

void send_attempt(self_ptr self, uint64_t id, ms timeout) {
  auto& s = self->state;
  auto it = s.calls.find(id);
  if (it == s.calls.end())
    return;
  auto& c = it->second;
  ++c.attempts;
  // The SDK's headers (it sends the Content-Type on a GET too).
  header_list headers{
    {"Authorization", "Bearer " + s.cfg.secret_key},
    {"Stripe-Version", s.cfg.api_version},
    {"Accept", "application/json"},
    {"Content-Type", "application/x-www-form-urlencoded"},
  };
  if (c.req.verb == stripe::method::post)
    headers.emplace_back("Idempotency-Key", c.req.idempotency_key);
  auto me = caf::actor_cast<stripe_impl>(self);
  s.client->request(c.req.verb == stripe::method::post ? http::verb::post : http::verb::get,
                    s.cfg.api_base + c.req.path, c.req.body, std::move(headers), timeout,
                    [me, id](client_result r) {
                      attempt_answer a;
                      a.status = r.status;
                      a.body = std::move(r.body);
                      a.net = r.code;
                      a.net_error = std::move(r.error);
                      if (r.ok()) {
                        a.request_id = header(r.headers, "Request-Id");
                        a.should_retry = header(r.headers, "Stripe-Should-Retry");
                        a.replayed = header(r.headers, "Idempotent-Replayed") == "true";
                      }
                      caf::anon_send(me, attempt_atom::value, id, std::move(a));
                    });
}

// Starts a call; `finish` gets the final answer (success or not), `abandon`
// the reason when the client stops before it.
// A follow-up call (a retrieve after a refused cancel or expire) passes the
// first call's `started`: both stay within one budget, so the caller's
// request timeout (app/service.cpp keeps the budget below it) still holds.
void start(self_ptr self, stripe::request req, finisher finish, std::function<void(failure)> abandon,
           std::optional<steady::time_point> started = std::nullopt) {
  auto& s = self->state;
  auto id = ++s.next_id;
  auto t0 = started.value_or(steady::now());
  s.calls.emplace(id, call{std::move(req), std::move(finish), std::move(abandon), t0, 0});
  auto timeout = stripe::first_attempt_timeout(s.cfg.retry);
  if (started) {
    auto left = s.cfg.retry.budget - std::chrono::duration_cast<ms>(steady::now() - t0);
    timeout = std::max(std::min(timeout, left), s.cfg.retry.min_attempt);
  }
  send_attempt(self, id, timeout);
}

template <class T>
std::function<void(failure)> abandon_with(caf::typed_response_promise<T> rp) {
  return [rp](failure f) mutable { rp.deliver(T{std::move(f)}); };
}

// What one kind of answer does with a successful attempt and a failed one:
// `ok(self, answer)` -> T, `not_ok(self, call, answer)` -> optional<T> (nullopt:
// the failure of the table).
template <class T, class Ok>
void start_call(self_ptr self, stripe::request req, caf::typed_response_promise<T> rp, Ok ok_answer,
                std::optional<steady::time_point> started = std::nullopt) {
  start(
    self, std::move(req),
    [rp, ok_answer](self_ptr me, call& c, attempt_answer& a) mutable {
      if (a.status >= 200 && a.status < 300)
        {
      rp.deliver(ok_answer(me, a));
      return;
    }
      rp.deliver(T{failure_of(me, stripe::to_string(c.req.op), a)});
    },
    abandon_with(rp), started);
}

void on_answer(self_ptr self, uint64_t id, attempt_answer& a) {
  auto& s = self->state;
  auto it = s.calls.find(id);
  if (it == s.calls.end())
    return;
  auto& c = it->second;
  const auto elapsed = std::chrono::duration_cast<ms>(steady::now() - c.started);
  const auto what = stripe::to_string(c.req.op);
  if (a.status >= 200 && a.status < 300) {
    spdlog::info("stripe {} {} -> {} ({}{}, attempt {}, {} ms)", verb_name(c.req.verb), log_path(c.req.path),
                 a.status, a.request_id.empty() ? "no request id" : a.request_id, a.replayed ? ", replayed" : "",
                 c.attempts, elapsed.count());
  } else if (a.status != 0) {
    spdlog::warn("stripe {} {} -> {} ({}{}, attempt {}, {} ms)", verb_name(c.req.verb), log_path(c.req.path),
                 a.status, a.request_id.empty() ? "no request id" : a.request_id, a.replayed ? ", replayed" : "",
                 c.attempts, elapsed.count());
  } else {
    spdlog::warn("stripe {} {} -> no answer: {} (attempt {}, {} ms)", verb_name(c.req.verb), log_path(c.req.path),
                 a.net_error, c.attempts, elapsed.count());
  }
  const bool failed = a.status < 200 || a.status >= 300;
  // Overloaded and stopped are ours, not Stripe's: retrying cannot help.
  const bool ours = a.net == client_errc::overloaded || a.net == client_errc::stopped
                    || a.net == client_errc::invalid_request;
  if (failed && !ours && stripe::should_retry(a.status, a.should_retry)) {
    if (auto next = stripe::plan_retry(s.cfg.retry, c.attempts - 1, elapsed, s.random01())) {
      spdlog::warn("stripe {}: retrying in {} ms (attempt {} of at most {})", what, next->delay.count(),
                   c.attempts + 1, s.cfg.retry.max_retries + 1);
      self->delayed_send(self, next->delay, retry_atom::value, id, static_cast<int64_t>(next->timeout.count()));
      return;
    }
  }
  auto done = std::move(c);
  s.calls.erase(it);
  done.finish(self, done, a);
}

// Logs what the operator must know about a failure, once where it repeats.
void log_failure(self_ptr self, const stripe::api_error& e, std::string_view what, const attempt_answer& a) {
  auto& s = self->state;
  switch (stripe::classify(e)) {
    case stripe::error_class::authentication:
    case stripe::error_class::permission: {
      auto now = steady::now();
      if (!s.key_refusal_logged) {
        s.key_refusal_logged = true;
        s.key_refusal_logged_at = now;
        spdlog::error("STRIPE REFUSED THE SECRET KEY: {} answered HTTP {} ({}, request {}): every Stripe call "
                      "fails until stripe_secret_key is fixed (a {} key for the right account and mode, "
                      "with the permissions billingd needs); not retried",
                      what, e.status, e.type.empty() ? "no error type" : e.type,
                      a.request_id.empty() ? "without id" : a.request_id,
                      e.status == 403 ? "restricted key with write access to PaymentIntents, or a secret" : "secret");
      } else if (now - s.key_refusal_logged_at >= s.cfg.auth_log_interval) {
        spdlog::error("Stripe still refuses the secret key: {} more call(s) refused since the last report",
                      s.key_refusals_unlogged + 1);
        s.key_refusals_unlogged = 0;
        s.key_refusal_logged_at = now;
      } else {
        ++s.key_refusals_unlogged;
      }
      return;
    }
    case stripe::error_class::idempotency:
      spdlog::error("STRIPE IDEMPOTENCY ERROR on {} (request {}): the idempotency key was used before with other "
                    "parameters; the invoice's amount or currency changed after a crash between the Stripe "
                    "call and the commit, or billingd builds requests that differ between attempts",
                    what, a.request_id);
      return;
    case stripe::error_class::not_found:
      spdlog::error("stripe {}: Stripe knows no such object (request {}): was it made with another account's "
                    "or mode's key?", what, a.request_id);
      return;
    case stripe::error_class::invalid_request:
    case stripe::error_class::unexpected_state:
      spdlog::warn("stripe {}: refused: {} {} (param {}, request {})", what, e.type, e.code,
                   e.param.empty() ? "none" : e.param, a.request_id);
      return;
    case stripe::error_class::unavailable:
    case stripe::error_class::other:
      spdlog::warn("stripe {}: failed: HTTP {} {} {} (request {})", what, e.status, e.type, e.code, a.request_id);
      return;
  }
}

// The answer to the caller when the call did not succeed.
failure failure_of(self_ptr self, std::string_view what, const attempt_answer& a) {
  if (a.status == 0) {
    if (a.net == client_errc::overloaded)
      return fail(billing_errc::overloaded, "too many Stripe calls waiting");
    return stripe::unreachable(what, a.net_error);
  }
  auto e = stripe::parse_error(a.status, a.body);
  log_failure(self, e, what, a);
  return stripe::to_failure(e, what);
}

// A 2xx with a PaymentIntent. A key that works again re-arms the loud log.
intent_result intent_of(self_ptr self, const attempt_answer& a) {
  self->state.key_refusal_logged = false;
  auto pi = stripe::parse_payment_intent(a.body);
  if (!ok(pi)) {
    spdlog::error("stripe: {}", std::get<failure>(pi).message);
    return std::get<failure>(pi);
  }
  return stripe::to_intent_info(std::get<stripe::payment_intent>(pi));
}

// cancel: a canceled intent; or, when Stripe says it is past cancelling, the
// intent with its real status (read afresh when the answer was a replay).
void answer_cancel(self_ptr self, call& c, attempt_answer& a, caf::typed_response_promise<intent_result> rp) {
  if (a.status >= 200 && a.status < 300)
    {
      rp.deliver(intent_of(self, a));
      return;
    }
  if (a.status != 0) {
    auto e = stripe::parse_error(a.status, a.body);
    if (stripe::classify(e) == stripe::error_class::unexpected_state && e.intent && !a.replayed) {
      spdlog::warn("stripe cancel_intent: {} is already {}; answering its status (request {})", e.intent->id,
                   e.intent->status, a.request_id);
      {
      rp.deliver(intent_result{stripe::to_intent_info(*e.intent)});
      return;
    }
    }
    if (stripe::classify(e) == stripe::error_class::unexpected_state) {
      // A stored answer (Idempotent-Replayed) may be stale: ask for the
      // intent as it is now.
      auto id = e.intent ? e.intent->id : std::string{};
      if (id.empty()) {
        // The path names the intent: /v1/payment_intents/{id}/cancel.
        auto p = std::string_view{c.req.path}.substr(std::string_view{"/v1/payment_intents/"}.size());
        id = std::string{p.substr(0, p.find('/'))};
      }
      spdlog::info("stripe cancel_intent: unexpected state in a replayed answer; retrieving {}", id);
      return start_call(self, stripe::retrieve_intent(intent_id{id}), rp, intent_of, c.started);
    }
  }
  rp.deliver(intent_result{failure_of(self, stripe::to_string(c.req.op), a)});
}

// A 2xx with a Checkout Session.
session_result session_of(self_ptr self, const attempt_answer& a) {
  self->state.key_refusal_logged = false;
  auto s = stripe::parse_checkout_session(a.body);
  if (!ok(s)) {
    spdlog::error("stripe: {}", std::get<failure>(s).message);
    return std::get<failure>(s);
  }
  return stripe::to_session_info(std::get<stripe::checkout_session>(s));
}

// expire: the expired session; a 400 (Stripe expires only open sessions,
// and says so without a code) or an unexpected state: the session as it is
// now, read afresh, whatever the error's code says.
void answer_expire(self_ptr self, call& c, attempt_answer& a, caf::typed_response_promise<session_result> rp,
                   std::string session) {
  if (a.status >= 200 && a.status < 300)
    {
      rp.deliver(session_of(self, a));
      return;
    }
  if (a.status == 400 || a.status == 409) {
    auto e = stripe::parse_error(a.status, a.body);
    if (e.type == "invalid_request_error" || stripe::classify(e) == stripe::error_class::unexpected_state) {
      spdlog::info("stripe expire_checkout_session: refused ({}); retrieving the session", a.status);
      return start_call(self, stripe::retrieve_checkout_session(session), rp, session_of, c.started);
    }
  }
  rp.deliver(session_result{failure_of(self, stripe::to_string(c.req.op), a)});
}

// refund: the refund with the charge's refunded total. The caller's
// Idempotency-Key reused with another request is the caller's conflict
// (409), not billingd's bug.
void answer_refund(self_ptr self, call& c, attempt_answer& a, caf::typed_response_promise<refund_result> rp) {
  if (a.status >= 200 && a.status < 300) {
    self->state.key_refusal_logged = false;
    auto r = stripe::parse_refund(a.body);
    if (!ok(r)) {
      spdlog::error("stripe: {}", std::get<failure>(r).message);
      {
      rp.deliver(refund_result{std::get<failure>(r)});
      return;
    }
    }
    auto info = stripe::to_refund_info(std::get<stripe::refund>(r));
    info.replayed = a.replayed;
    {
      rp.deliver(refund_result{std::move(info)});
      return;
    }
  }
  if (a.status != 0) {
    auto e = stripe::parse_error(a.status, a.body);
    if (stripe::classify(e) == stripe::error_class::idempotency) {
      spdlog::warn("stripe create_refund: the Idempotency-Key was used before with another request (request {})",
                   a.request_id);
      {
      rp.deliver(refund_result{fail(billing_errc::conflict,
                                           "this Idempotency-Key was used for another refund request of this "
                                           "invoice",
                                           "Idempotency-Key")});
      return;
    }
    }
  }
  rp.deliver(refund_result{failure_of(self, stripe::to_string(c.req.op), a)});
}

// A 2xx with a page of the event log.
event_page_result events_of(self_ptr self, const attempt_answer& a) {
  self->state.key_refusal_logged = false;
  auto page = stripe::parse_event_page(a.body);
  if (!ok(page)) {
    spdlog::error("stripe: {}", std::get<failure>(page).message);
    return std::get<failure>(page);
  }
  event_listing_page out;
  auto& p = std::get<stripe::event_page>(page);
  out.has_more = p.has_more;
  for (auto& ev : p.data)
    out.events.push_back(listed_provider_event{std::move(ev.id), std::move(ev.type), ev.created, std::move(ev.raw)});
  return out;
}

stripe_impl::behavior_type stripe_client(self_ptr self, stripe_client_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  while (st.cfg.api_base.ends_with('/'))
    st.cfg.api_base.pop_back();
  client_config cc;
  cc.max_connections_per_host = st.cfg.max_concurrency;
  cc.max_idle_per_host = st.cfg.max_concurrency;
  cc.max_pending = st.cfg.max_waiting;
  cc.connect_timeout = st.cfg.connect_timeout;
  cc.tls_ca_file = st.cfg.ca_file;
  cc.user_agent = "billingd (Stripe API client; C++)";
  st.client = std::make_unique<http_client>(cc);
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& s = self->state;
    s.client->stop(); // answers in flight arrive as messages nobody reads
    for (auto& [id, c] : s.calls)
      c.abandon(fail(billing_errc::unavailable, "the Stripe client stopped"));
    s.calls.clear();
    self->quit(msg.reason);
  });
  return {
    [self](create_atom, const intent_request& req) -> caf::result<intent_result> {
      auto rp = self->make_response_promise<intent_result>();
      start_call(self, stripe::create_intent(req), rp, intent_of);
      return rp;
    },
    [self](get_atom, const intent_id& id) -> caf::result<intent_result> {
      auto rp = self->make_response_promise<intent_result>();
      start_call(self, stripe::retrieve_intent(id), rp, intent_of);
      return rp;
    },
    [self](cancel_atom, const intent_id& id, const invoice_id& invoice) -> caf::result<intent_result> {
      auto rp = self->make_response_promise<intent_result>();
      start(
        self, stripe::cancel_intent(id, invoice),
        [rp](self_ptr me, call& c, attempt_answer& a) { answer_cancel(me, c, a, rp); }, abandon_with(rp));
      return rp;
    },
    [self](create_atom, const checkout_request& req) -> caf::result<session_result> {
      auto rp = self->make_response_promise<session_result>();
      stripe::checkout_params p{req.invoice, req.amount_cents, req.currency, req.workflow_id,
                                req.shipment_id, req.success_url, req.cancel_url, req.expires_at};
      start_call(self, stripe::create_checkout_session(p), rp, session_of);
      return rp;
    },
    [self](get_atom, const session_id& id) -> caf::result<session_result> {
      auto rp = self->make_response_promise<session_result>();
      start_call(self, stripe::retrieve_checkout_session(id.str()), rp, session_of);
      return rp;
    },
    [self](expire_atom, const session_id& id, const invoice_id& invoice) -> caf::result<session_result> {
      auto rp = self->make_response_promise<session_result>();
      start(
        self, stripe::expire_checkout_session(id.str(), invoice),
        [rp, session = id.str()](self_ptr me, call& c, attempt_answer& a) { answer_expire(me, c, a, rp, session); },
        abandon_with(rp));
      return rp;
    },
    [self](refund_atom, const refund_request& req) -> caf::result<refund_result> {
      auto rp = self->make_response_promise<refund_result>();
      stripe::refund_params p{req.invoice, req.intent, req.amount_cents, req.reason, req.discriminator};
      start(
        self, stripe::create_refund(p),
        [rp](self_ptr me, call& c, attempt_answer& a) { answer_refund(me, c, a, rp); }, abandon_with(rp));
      return rp;
    },
    [self](list_atom, const event_listing& q) -> caf::result<event_page_result> {
      auto rp = self->make_response_promise<event_page_result>();
      stripe::event_query eq;
      eq.types = q.types;
      if (q.created_gte > 0)
        eq.created_gte = q.created_gte;
      if (q.created_lte > 0)
        eq.created_lte = q.created_lte;
      eq.starting_after = q.starting_after;
      eq.limit = q.limit;
      start_call(self, stripe::list_events(eq), rp, events_of);
      return rp;
    },
    [self](attempt_atom, uint64_t id, attempt_answer& a) { on_answer(self, id, a); },
    [self](retry_atom, uint64_t id, int64_t timeout_ms) { send_attempt(self, id, ms{timeout_ms}); },
  };
}

} // namespace

result<provider_actor> spawn_stripe_client(caf::actor_system& sys, stripe_client_config cfg) {
  if (!stripe::mode_of_key(cfg.secret_key))
    return fail(billing_errc::invalid_argument,
                "stripe_secret_key must be a secret (sk_test_/sk_live_) or restricted (rk_test_/rk_live_) key",
                "stripe_secret_key");
  if (auto why = stripe::api_base_problem(cfg.api_base); !why.empty())
    return fail(billing_errc::invalid_argument, "stripe_api_base " + why, "stripe_api_base");
  if (!cfg.ca_file.empty() && !std::ifstream{cfg.ca_file})
    return fail(billing_errc::invalid_argument, "stripe_ca_path: cannot read " + cfg.ca_file, "stripe_ca_path");
  if (cfg.api_version.empty())
    return fail(billing_errc::invalid_argument, "stripe_api_version must not be empty", "stripe_api_version");
  stripe_impl h = sys.spawn(stripe_client, std::move(cfg));
  return provider_actor{h};
}

} // namespace billing::net
