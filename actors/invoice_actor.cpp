#include "actors/invoice_actor.hpp"

#include "protocol/json_codec.hpp"
#include "protocol/state_machine.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <variant>
#include <vector>

namespace billing {

namespace {

using invoice_promise = caf::typed_response_promise<invoice_result>;
using webhook_promise = caf::typed_response_promise<webhook_result>;
// The promise of a request not answered yet. Promises live in the state,
// never only inside a callback: CAF 0.17 has no broken_promise, so a promise
// dropped with a dead actor's callbacks would leave its caller waiting for
// the full request timeout. ~invoice_state answers them instead.
using any_promise = std::variant<std::monostate, invoice_promise, webhook_promise>;

// Answers `p` (if it is a promise) with `f`.
void deliver_failure(any_promise& p, const failure& f) {
  if (auto* i = std::get_if<invoice_promise>(&p))
    i->deliver(invoice_result{f});
  else if (auto* w = std::get_if<webhook_promise>(&p))
    w->deliver(webhook_result{f});
  p = std::monostate{};
}

struct queued_request {
  std::function<void()> start; // runs it (its arguments captured); it answers through `active`
  any_promise promise;
};

struct invoice_state {
  static inline const char* name = "invoice";
  invoice_id id;
  context_ptr ctx;
  registry_actor shard;
  bool loaded = false;
  std::optional<stored_invoice> current; // nullopt: no such invoice (yet)
  bool busy = false;
  any_promise active; // the request being worked on
  // Requests waiting their turn: nearly always empty or one or two long. A
  // vector, not a deque: libstdc++'s deque allocates ~600 bytes even empty,
  // which was a sixth of a live actor's memory.
  std::vector<queued_request> queue;
  uint64_t handled = 0;                    // requests received from the shard
  // Passivation: one idle timer at a time (not one per request: CAF's timer
  // set is a tree, and a timer per request cost ~4 % of a webhook's CPU).
  std::chrono::steady_clock::time_point last_finished{};
  bool idle_timer_armed = false;

  // CAF 0.17 destroys the state in on_exit(), which runs before the actor's
  // cleanup (pending callbacks dropped, mailbox closed and bounced, DOWN
  // sent), so delivering here is delivering from a live actor; checked
  // against 0.17.6 for scheduled and detached actors. After a passivation
  // there is nothing left to answer; after a kill, an exception or a
  // shutdown, every waiting caller learns it at once.
  ~invoice_state() {
    if (std::holds_alternative<std::monostate>(active) && queue.empty())
      return;
    auto f = fail(billing_errc::unavailable, "the invoice's actor stopped; retry");
    spdlog::warn("invoice {}: actor stopped with {} request(s) unanswered; answering unavailable",
                 id.str(), queue.size() + (std::holds_alternative<std::monostate>(active) ? 0 : 1));
    deliver_failure(active, f);
    for (auto& q : queue)
      deliver_failure(q.promise, f);
  }
};

using self_ptr = invoice_actor::stateful_pointer<invoice_state>;

failure failure_from(const caf::error& err) {
  return fail(billing_errc::unavailable, "internal request failed: " + caf::to_string(err));
}

failure failure_from(write_status s) {
  if (s == write_status::overloaded)
    return fail(billing_errc::overloaded, "too many writes waiting for the database");
  return fail(billing_errc::unavailable, "the database is unavailable");
}

invoice_view view_of(const stored_invoice& s) {
  return invoice_view{s.inv, {}, false};
}

class invoice_logic {
public:
  explicit invoice_logic(self_ptr self) : self_(self) {}

  invoice_state& st() { return self_->state; }
  const actor_settings& settings() { return st().ctx->settings; }
  unix_seconds now() { return st().ctx->clock(); }

  // Queues `start`; it runs when every earlier request has finished and
  // answers `promise` through answer().
  void enqueue(std::function<void()> start, any_promise promise) {
    ++st().handled;
    st().queue.push_back(queued_request{std::move(start), std::move(promise)});
    pump();
  }

  void pump() {
    if (st().busy || st().queue.empty())
      return;
    if (!st().loaded) {
      load();
      return;
    }
    st().busy = true;
    auto next = std::move(st().queue.front());
    st().queue.erase(st().queue.begin());
    st().active = std::move(next.promise);
    next.start();
  }

  // Every request ends here exactly once: answers its caller, then runs the
  // next one.
  template <class Result>
  void answer(Result r) {
    std::get<caf::typed_response_promise<Result>>(st().active).deliver(std::move(r));
    st().active = std::monostate{};
    st().busy = false;
    if (!st().queue.empty()) {
      pump();
      return;
    }
    went_quiet();
  }

  // Nothing running, nothing queued. An actor that holds no invoice (none
  // exists, or its copy must be re-read anyway) reports itself idle at once:
  // reads of ids that do not exist must not fill memory until idle_timeout.
  // The shard drops the report if a request was routed here meanwhile
  // (routed != handled), and then that request ends here again.
  void went_quiet() {
    if (!st().loaded || !st().current) {
      self_->send(st().shard, idle_atom::value, st().id, st().handled);
      return;
    }
    st().last_finished = std::chrono::steady_clock::now();
    if (!st().idle_timer_armed)
      arm_idle_timer(settings().idle_timeout);
  }

  void arm_idle_timer(std::chrono::steady_clock::duration after) {
    st().idle_timer_armed = true;
    self_->delayed_send(self_, after, idle_atom::value);
  }

  // The idle timer fired: passivate if nothing happened for idle_timeout,
  // otherwise wait for the rest of it.
  void on_idle_timer() {
    st().idle_timer_armed = false;
    if (st().busy || !st().queue.empty())
      return; // answer() re-arms it
    auto idle_for = std::chrono::steady_clock::now() - st().last_finished;
    if (idle_for >= settings().idle_timeout)
      self_->send(st().shard, idle_atom::value, st().id, st().handled);
    else
      arm_idle_timer(settings().idle_timeout - idle_for);
  }

  // Requests to the writers and readers carry no timeout of their own: they
  // always answer (they bound their work with connect and statement
  // timeouts, one that dies answers what it holds `unavailable`, and CAF
  // answers for an actor that is gone), and a timer per hop is measurable
  // CPU. The gateway's timeout bounds the caller's wait.
  void load() {
    st().busy = true;
    self_->request(reader_of(*st().ctx), caf::infinite, load_atom::value, st().id)
      .then(
        [this](load_result& r) {
          st().busy = false;
          if (ok(r)) {
            st().current = std::move(std::get<0>(r));
            st().loaded = true;
            pump();
          } else {
            fail_queue(std::get<failure>(r));
          }
        },
        [this](caf::error& err) {
          st().busy = false;
          fail_queue(failure_from(err));
        });
  }

  // Hydration failed: every waiting request learns why; the next one retries.
  void fail_queue(const failure& f) {
    spdlog::warn("invoice {}: cannot load ({}); {} queued requests answered {}", st().id.str(),
                 f.message, st().queue.size(), to_string(f.code));
    auto queue = std::move(st().queue);
    st().queue.clear();
    for (auto& q : queue)
      deliver_failure(q.promise, f);
    went_quiet();
  }

  // Writes `cmd`; on commit updates the state and calls `done(committed)`.
  // A CAS conflict re-reads the invoice and calls `retry` (up to a bound).
  void write(write_command cmd, std::function<void(write_status)> done) {
    self_->request(writer_for(*st().ctx, st().id.str()), caf::infinite, write_atom::value, cmd)
      .then(
        [this, cmd, done](write_status s) {
          if (s == write_status::committed && cmd.change)
            st().current = cmd.change->next;
          // A connection lost during COMMIT may have committed after all:
          // re-read before the next request rather than trust our copy.
          if (s == write_status::unavailable)
            st().loaded = false;
          done(s);
        },
        [this, done](caf::error& err) {
          spdlog::warn("invoice {}: write not confirmed: {}", st().id.str(), caf::to_string(err));
          st().loaded = false;
          done(write_status::unavailable);
        });
  }

  // Re-reads the invoice after a conflict, then runs `again`.
  void reload_then(std::function<void()> again, std::function<void(failure)> give_up) {
    self_->request(reader_of(*st().ctx), caf::infinite, load_atom::value, st().id)
      .then(
        [this, again, give_up](load_result& r) {
          if (!ok(r))
            return give_up(std::get<failure>(r));
          st().current = std::move(std::get<0>(r));
          again();
        },
        [give_up](caf::error& err) { give_up(failure_from(err)); });
  }

  // -- create ---------------------------------------------------------------

  // A new invoice costs one provider call and one commit: the intent first
  // (idempotency key: the invoice id, so a retry after a crash gets the same
  // intent back), then the complete row. An intent whose row never got
  // written is harmless: its client secret was never handed out, so nobody
  // can pay it.
  void create(create_invoice_request req, int attempt = 0) {
    auto reply = [this](invoice_result r) { answer(std::move(r)); };
    if (st().current) {
      auto& inv = st().current->inv;
      if (inv.amount_cents != req.amount_cents || inv.currency != req.currency
          || inv.user_id != req.user_id)
        return reply(fail(billing_errc::conflict,
                          "an invoice for this workflow_id and shipment_id exists with a "
                          "different amount, currency or user",
                          "amount_cents"));
      // A row from an earlier billingd that wrote the row first and the
      // intent second, and stopped in between, lacks it.
      if (inv.provider_intent_id.empty() && inv.status == invoice_status::pending)
        return attach_intent(std::move(reply), attempt);
      return reply(view_with_secret(false));
    }
    auto t = now();
    stored_invoice fresh;
    auto& inv = fresh.inv;
    inv.id = st().id;
    inv.user_id = req.user_id;
    inv.shipment_id = req.shipment_id;
    inv.workflow_id = req.workflow_id;
    inv.amount_cents = req.amount_cents;
    inv.currency = req.currency;
    inv.status = invoice_status::pending;
    inv.version = 1;
    inv.provider = settings().provider_name;
    inv.created_at = t;
    inv.updated_at = t;
    inv.expires_at = t + req.expires_in_seconds.value_or(settings().default_expiry_seconds);
    auto ir = intent_request_for(inv); // before `fresh` moves into the callback
    with_intent(std::move(ir), [this, fresh = std::move(fresh), req, reply, attempt](
                       const intent_info& intent) mutable {
      fresh.inv.provider_intent_id = intent.id;
      fresh.sealed_client_secret = st().ctx->box->seal(intent.client_secret, fresh.inv.id.str());
      write_command cmd;
      cmd.change = invoice_change{fresh, 0};
      write(std::move(cmd), [this, req, reply, attempt](write_status s) mutable {
        if (s == write_status::committed) {
          spdlog::info("invoice {} created for workflow {} shipment {} ({} {})", st().id.str(),
                       req.workflow_id, req.shipment_id, req.amount_cents, req.currency);
          return reply(view_with_secret(true));
        }
        // Another replica wrote it first: answer from its row.
        if (s == write_status::version_conflict && attempt < settings().max_conflict_retries)
          return reload_then([this, req, attempt] { create(req, attempt + 1); },
                             [reply](failure f) mutable { reply(std::move(f)); });
        reply(failure_from(s));
      });
    }, reply);
  }

  static intent_request intent_request_for(const invoice& inv) {
    return {inv.id, inv.amount_cents, inv.currency, inv.workflow_id, inv.shipment_id};
  }

  // Asks the provider for an intent (idempotency key: the invoice id) and
  // hands it to `then`; a provider failure goes to `reply`.
  template <class Then>
  void with_intent(intent_request ir, Then then, std::function<void(invoice_result)> reply) {
    self_->request(st().ctx->provider, settings().request_timeout, create_atom::value, ir)
      .then(
        [this, then, reply](intent_result& r) mutable {
          if (!ok(r)) {
            auto f = std::get<failure>(r);
            spdlog::warn("invoice {}: provider did not create the intent: {}", st().id.str(),
                         f.message);
            return reply(std::move(f));
          }
          then(std::get<intent_info>(r));
        },
        [this, reply](caf::error& err) mutable {
          spdlog::warn("invoice {}: provider unreachable: {}", st().id.str(), caf::to_string(err));
          reply(fail(billing_errc::provider_error, "the payment provider did not answer"));
        });
  }

  // Repair: stores the intent of a PENDING row that has none.
  void attach_intent(std::function<void(invoice_result)> reply, int attempt) {
    with_intent(intent_request_for(st().current->inv), [this, reply, attempt](const intent_info& intent) mutable {
      stored_invoice next = *st().current;
      next.inv.provider_intent_id = intent.id;
      next.inv.version += 1;
      next.inv.updated_at = now();
      next.sealed_client_secret = st().ctx->box->seal(intent.client_secret, next.inv.id.str());
      write_command cmd;
      cmd.change = invoice_change{next, st().current->inv.version};
      write(std::move(cmd), [this, reply, attempt](write_status s) mutable {
        if (s == write_status::committed)
          return reply(view_with_secret(false));
        if (s == write_status::version_conflict && attempt < settings().max_conflict_retries)
          return reload_then(
            [this, reply, attempt]() mutable {
              if (st().current && st().current->inv.provider_intent_id.empty())
                return attach_intent(std::move(reply), attempt + 1);
              reply(view_with_secret(false));
            },
            [reply](failure f) mutable { reply(std::move(f)); });
        reply(failure_from(s));
      });
    }, reply);
  }

  invoice_result view_with_secret(bool created) {
    auto v = view_of(*st().current);
    v.created = created;
    if (!st().current->sealed_client_secret.empty()) {
      auto secret = st().ctx->box->open(st().current->sealed_client_secret, st().id.str());
      if (!secret)
        return fail(billing_errc::internal,
                    "the stored client secret does not open with the configured key");
      v.client_secret = std::move(*secret);
    }
    return v;
  }

  // -- read ---------------------------------------------------------------

  void get() {
    if (!st().current)
      answer(invoice_result{fail(billing_errc::not_found, "no invoice with this id")});
    else
      answer(invoice_result{view_of(*st().current)});
  }

  // -- transitions ----------------------------------------------------------

  // Applies `ev` and writes the result with its event row and outbox row.
  // `record` is false for internal commands (cancel, expiry): no event row.
  void transition(invoice_event ev, std::string type, bool record,
                  std::function<void(webhook_result)> reply, int attempt = 0) {
    auto t = now();
    write_command cmd;
    if (!st().current) {
      // Only provider events reach an unknown invoice id: record and ignore.
      cmd.event = webhook_record{ev.id, type, invoice_id{}, outcome::ignored_unknown_invoice, t};
      return write(std::move(cmd), [this, ev, reply](write_status s) mutable {
        if (s == write_status::committed || s == write_status::duplicate_event) {
          spdlog::info("event {}: no invoice {}; ignored", ev.id.str(), st().id.str());
          return reply(webhook_reply{s == write_status::committed ? outcome::ignored_unknown_invoice
                                                                  : outcome::ignored_duplicate,
                                     {}, std::nullopt});
        }
        reply(failure_from(s));
      });
    }
    auto d = apply(st().current->inv, ev, t, settings().mode);
    if (record)
      cmd.event = webhook_record{ev.id, type, st().id, d.result, t};
    if (d.result == outcome::applied) {
      stored_invoice next = *st().current;
      next.inv = d.next;
      next.inv.version = st().current->inv.version + 1;
      cmd.change = invoice_change{next, st().current->inv.version};
      cmd.signal = outbox_record{st().id, std::string{default_signal_name(*d.signal)},
                                 signal_payload(next.inv, ev.created != 0 ? ev.created : t), t};
    }
    if (!cmd.event && !cmd.change) // an internal command that changes nothing
      return reply(webhook_reply{d.result, st().id, st().current->inv.status});
    write(std::move(cmd), [this, ev, type, record, reply, attempt, d](write_status s) mutable {
      switch (s) {
        case write_status::committed:
          if (d.result == outcome::applied)
            spdlog::info("invoice {}: {} (event {})", st().id.str(), d.reason, ev.id.str());
          else if (d.result == outcome::rejected_mismatch)
            spdlog::warn("invoice {}: event {} ({}) rejected, not about this invoice: {}",
                         st().id.str(), ev.id.str(), type, d.reason);
          else
            spdlog::info("invoice {}: {} ({})", st().id.str(), d.reason, to_string(d.result));
          return reply(webhook_reply{d.result, st().id, st().current->inv.status});
        case write_status::duplicate_event:
          return reply(webhook_reply{outcome::ignored_duplicate, st().id, st().current->inv.status});
        case write_status::version_conflict:
          if (attempt < settings().max_conflict_retries)
            return reload_then(
              [this, ev, type, record, reply, attempt]() mutable {
                transition(ev, type, record, std::move(reply), attempt + 1);
              },
              [reply](failure f) mutable { reply(std::move(f)); });
          return reply(fail(billing_errc::conflict, "the invoice kept changing; retry"));
        case write_status::unavailable:
        case write_status::overloaded:
          return reply(failure_from(s));
      }
    });
  }

  void on_event(incoming_event in) {
    transition(in.ev, in.type, true, [this](webhook_result r) { answer(std::move(r)); });
  }

  // Cancel (by API) and expiry both ask the provider to cancel first: if it
  // says the payment already succeeded, the invoice becomes PAID instead.
  void cancel_at_provider_then(event_kind kind, std::function<void(webhook_result)> reply) {
    auto& inv = st().current->inv;
    bool cancellable = inv.status == invoice_status::pending || inv.status == invoice_status::failed;
    if (!cancellable || inv.provider_intent_id.empty()) {
      invoice_event ev;
      ev.kind = kind;
      return transition(ev, {}, false, std::move(reply));
    }
    self_->request(st().ctx->provider, settings().request_timeout, cancel_atom::value,
                   inv.provider_intent_id, inv.id)
      .then(
        [this, kind, reply](intent_result& r) mutable {
          if (!ok(r)) {
            auto f = std::get<failure>(r);
            spdlog::warn("invoice {}: provider did not cancel: {}", st().id.str(), f.message);
            return reply(std::move(f));
          }
          invoice_event ev;
          ev.kind = kind;
          auto& info = std::get<intent_info>(r);
          if (info.status == "succeeded") {
            spdlog::warn("invoice {}: cancel raced a successful payment; marking PAID",
                         st().id.str());
            // The provider's own answer, not a webhook: it is about this
            // invoice's intent, amount, currency and mode by construction.
            auto& inv = st().current->inv;
            ev.kind = event_kind::payment_succeeded;
            ev.intent = info.id;
            ev.amount_cents = inv.amount_cents;
            ev.currency = inv.currency;
            ev.livemode = settings().mode == provider_mode::live;
          }
          transition(ev, {}, false, std::move(reply));
        },
        [this, reply](caf::error& err) mutable {
          spdlog::warn("invoice {}: provider unreachable: {}", st().id.str(), caf::to_string(err));
          reply(fail(billing_errc::provider_error, "the payment provider did not answer"));
        });
  }

  void cancel() {
    auto reply = [this](invoice_result r) { answer(std::move(r)); };
    if (!st().current)
      return reply(fail(billing_errc::not_found, "no invoice with this id"));
    cancel_at_provider_then(event_kind::cancel_requested, [this, reply](webhook_result r) mutable {
      if (!ok(r))
        return reply(std::get<failure>(r));
      auto& w = std::get<webhook_reply>(r);
      if (w.result == outcome::rejected_invalid_state || w.status != invoice_status::cancelled)
        return reply(fail(billing_errc::invalid_state,
                          "the invoice is " + std::string{to_string(st().current->inv.status)}
                            + " and can no longer be cancelled"));
      reply(view_of(*st().current));
    });
  }

  void expire() {
    auto reply = [this](webhook_result r) { answer(std::move(r)); };
    if (!st().current)
      return reply(webhook_reply{outcome::ignored_unknown_invoice, st().id, std::nullopt});
    if (st().current->inv.expires_at > now())
      return reply(webhook_reply{outcome::ignored_no_effect, st().id, st().current->inv.status});
    cancel_at_provider_then(event_kind::expired, std::move(reply));
  }

private:
  self_ptr self_;
};

invoice_actor::behavior_type make_behavior(self_ptr self, invoice_id id, context_ptr ctx,
                                           registry_actor shard) {
  self->state.id = std::move(id);
  self->state.ctx = std::move(ctx);
  self->state.shard = std::move(shard);
  auto logic = std::make_shared<invoice_logic>(self);
  return {
    // Each handler returns a copy of the promise (CAF then sends no reply
    // of its own); the state keeps the one that answers.
    [self, logic](create_atom, create_invoice_request& req) {
      auto rp = self->make_response_promise<invoice_result>();
      logic->enqueue([logic, req = std::move(req)] { logic->create(req); }, rp);
      return rp;
    },
    [self, logic](get_atom) {
      auto rp = self->make_response_promise<invoice_result>();
      logic->enqueue([logic] { logic->get(); }, rp);
      return rp;
    },
    [self, logic](cancel_atom) {
      auto rp = self->make_response_promise<invoice_result>();
      logic->enqueue([logic] { logic->cancel(); }, rp);
      return rp;
    },
    [self, logic](event_atom, incoming_event& in) {
      auto rp = self->make_response_promise<webhook_result>();
      logic->enqueue([logic, in = std::move(in)] { logic->on_event(in); }, rp);
      return rp;
    },
    [self, logic](expire_atom) {
      auto rp = self->make_response_promise<webhook_result>();
      logic->enqueue([logic] { logic->expire(); }, rp);
      return rp;
    },
    [logic](idle_atom) { logic->on_idle_timer(); },
    [self](stop_atom) {
      // The shard routes nothing more here after sending stop, and it only
      // does so when every routed request was handled.
      self->quit();
    },
  };
}

} // namespace

invoice_actor spawn_invoice_actor(caf::actor_system& sys, invoice_id id, context_ptr ctx,
                                  registry_actor shard) {
  return sys.spawn(make_behavior, std::move(id), std::move(ctx), std::move(shard));
}

} // namespace billing
