#include "actors/invoice_actor.hpp"

#include "actors/registry.hpp"
#include "protocol/json_codec.hpp"
#include "protocol/log_context.hpp"
#include "protocol/reconcile.hpp"
#include "protocol/refunds.hpp"
#include "protocol/state_machine.hpp"
#include "protocol/stripe_api.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <variant>

namespace billing {

namespace {

using steady = std::chrono::steady_clock;

struct invoice_state {
  static inline const char* name = "invoice";
  invoice_id id;
  context_ptr ctx;
  std::shared_ptr<invoice_registry> registry;
  bool loaded = false;
  std::optional<stored_invoice> current; // nullopt: no such invoice (yet)
  uint64_t handled = 0;                  // messages received through the registry
  // Passivation: one idle timer at a time (a timer per message cost ~4 % of
  // a webhook's CPU: CAF's timer set is a tree).
  steady::time_point last_message{};
  bool idle_timer_armed = false;
  // The reply of the message being worked on. CAF destroys the state in
  // on_exit, before its cleanup, so a killed actor answers this one at once;
  // the copies in its continuations and in messages still in its mailbox go
  // when the actor object does (once every request it made was answered:
  // the writers and readers always answer, within their statement timeout).
  std::variant<std::monostate, invoice_reply, event_reply, refund_reply> in_flight;

  ~invoice_state() {
    auto stopped = fail(billing_errc::unavailable, "the invoice's actor stopped; retry");
    if (auto* r = std::get_if<invoice_reply>(&in_flight))
      (*r)(invoice_result{stopped});
    else if (auto* e = std::get_if<event_reply>(&in_flight))
      (*e)(webhook_result{stopped});
    else if (auto* f = std::get_if<refund_reply>(&in_flight))
      (*f)(refund_view_result{stopped});
  }
};

using self_ptr = invoice_actor::stateful_pointer<invoice_state>;

failure write_failure(write_status s) {
  if (s == write_status::overloaded)
    return fail(billing_errc::overloaded, "too many writes waiting for the database");
  return fail(billing_errc::unavailable, "the database is unavailable");
}

// A provider that does not answer in time is the provider's failure (503,
// retry later), not ours.
failure provider_failure_from(const caf::error& err) {
  if (err == caf::sec::request_timeout)
    return fail(billing_errc::provider_error, "the payment provider did not answer in time");
  return failure_from(err);
}

invoice_view view_of(const stored_invoice& s) {
  return invoice_view{s.inv, {}, false, {}};
}

// The behaviour's logic. Every message ends in exactly one answer through
// its reply_to and one finish(); everything it waits for is awaited, so
// messages never interleave.
class invoice_logic {
public:
  explicit invoice_logic(self_ptr self) : self_(self) {}

  invoice_state& st() { return self_->state; }
  const actor_settings& settings() { return st().ctx->settings; }
  unix_seconds now() { return st().ctx->clock(); }

  // -- the frame around every message -----------------------------------------

  // A message arrived through the registry; `run` gets the invoice loaded,
  // or the reason it could not be.
  template <class Reply, class Run>
  void begin(const Reply& reply, Run run) {
    st().in_flight = reply;
    ++st().handled;
    st().last_message = steady::now();
    if (st().loaded)
      return run(std::optional<failure>{});
    self_->request(reader_of(*st().ctx), caf::infinite, load_atom::value, st().id)
      .await(
        [this, run](load_result& r) mutable {
          if (!ok(r)) {
            log_scope here{{}, st().id.str()};
            spdlog::warn("invoice {}: cannot load: {}", st().id.str(), std::get<failure>(r).message);
            return run(std::optional<failure>{std::get<failure>(r)});
          }
          st().current = std::move(std::get<0>(r));
          st().loaded = true;
          run(std::optional<failure>{});
        },
        [run](caf::error& err) mutable { run(std::optional<failure>{failure_from(err)}); });
  }

  // Answers and ends the message. An actor that holds no invoice (none
  // exists, or its copy must be re-read anyway) retires at once: reads of
  // ids that do not exist must not fill memory until idle_timeout. The
  // registry refuses if a message was sent here meanwhile; it ends here too.
  template <class Reply, class Result>
  void done(const Reply& reply, Result r) {
    reply(std::move(r));
    st().in_flight = std::monostate{};
    if (!st().current || !st().loaded) {
      if (st().registry->try_retire(st().id, self_->id(), st().handled))
        self_->quit();
      return;
    }
    if (!st().idle_timer_armed)
      arm_idle_timer(settings().idle_timeout);
  }

  void arm_idle_timer(steady::duration after) {
    st().idle_timer_armed = true;
    self_->delayed_send(self_, after, idle_atom::value);
  }

  // Passivate if nothing arrived for idle_timeout, otherwise wait the rest.
  void on_idle_timer() {
    st().idle_timer_armed = false;
    auto idle_for = steady::now() - st().last_message;
    if (idle_for < settings().idle_timeout)
      return arm_idle_timer(settings().idle_timeout - idle_for);
    if (st().registry->try_retire(st().id, self_->id(), st().handled))
      self_->quit();
    // else a message is on its way; its done() re-arms the timer.
  }

  // -- database --------------------------------------------------------------

  // Writes `cmd` (moved into the message, not copied); on commit adopts the
  // new state. A connection lost during COMMIT may have committed after
  // all: re-read before the next message rather than trust our copy.
  template <class Then>
  void write(write_command cmd, Then then) {
    std::optional<stored_invoice> next;
    if (cmd.change)
      next = cmd.change->next;
    self_->request(writer_for(*st().ctx, st().id.str()), caf::infinite, write_atom::value, std::move(cmd))
      .await(
        [this, next = std::move(next), then](write_status s) mutable {
          if (st().ctx->fault_hook)
            st().ctx->fault_hook("invoice.after_write", st().id);
          if (s == write_status::committed && next)
            st().current = std::move(*next);
          if (s == write_status::unavailable)
            st().loaded = false;
          then(result<write_status>{s});
        },
        [this, then](caf::error& err) mutable {
          st().loaded = false;
          then(result<write_status>{failure_from(err)});
        });
  }

  // Re-reads the invoice after a conflict, then `then(std::nullopt)`.
  template <class Then>
  void reload(Then then) {
    self_->request(reader_of(*st().ctx), caf::infinite, load_atom::value, st().id)
      .await(
        [this, then](load_result& r) mutable {
          if (!ok(r))
            return then(std::optional<failure>{std::get<failure>(r)});
          st().current = std::move(std::get<0>(r));
          then(std::optional<failure>{});
        },
        [then](caf::error& err) mutable { then(std::optional<failure>{failure_from(err)}); });
  }

  // -- create ------------------------------------------------------------------

  // A new invoice costs one provider call and one commit: the intent first
  // (idempotency key: the invoice id, so a retry after a crash gets the same
  // intent back), then the complete row. An intent whose row never got
  // written is harmless: its client secret was never handed out.
  void create(create_invoice_request req, const invoice_reply& reply, int attempt) {
    if (st().current) {
      auto& inv = st().current->inv;
      if (inv.amount_cents != req.amount_cents || inv.currency != req.currency
          || inv.user_id != req.user_id || inv.mode != req.mode)
        return done(reply, invoice_result{fail(billing_errc::conflict,
                                               "an invoice for this workflow_id and shipment_id exists "
                                               "with a different amount, currency, user or mode",
                                               "amount_cents")});
      // A checkout row is written before its session; a crash in between
      // leaves it without one (nobody was given a URL): make it now.
      if (inv.mode == invoice_mode::checkout) {
        if (inv.provider_session_id.empty() && inv.status == invoice_status::pending)
          return attach_session(std::move(req), reply, attempt, false);
        return done(reply, view_with_secret(false));
      }
      // A row from an earlier billingd that wrote the row first and the
      // intent second, and stopped in between, lacks it.
      if (inv.provider_intent_id.empty() && inv.status == invoice_status::pending)
        return attach_intent(reply, attempt);
      return done(reply, view_with_secret(false));
    }
    auto t = now();
    stored_invoice fresh;
    auto& inv = fresh.inv;
    inv.id = st().id;
    inv.user_id = std::move(req.user_id);
    inv.shipment_id = std::move(req.shipment_id);
    inv.workflow_id = std::move(req.workflow_id);
    inv.amount_cents = req.amount_cents;
    inv.currency = std::move(req.currency);
    inv.status = invoice_status::pending;
    inv.version = 1;
    inv.provider = settings().provider_name;
    inv.created_at = t;
    inv.updated_at = t;
    inv.mode = req.mode;
    if (inv.mode == invoice_mode::checkout) {
      // Stripe's window for a session (30 min to 24 h, with a margin for the
      // calls in between): the default lifetime, which may be shorter or
      // longer, is held inside it.
      inv.expires_at = t + req.expires_in_seconds.value_or(std::clamp(
                             settings().default_expiry_seconds, min_checkout_expires_in_seconds,
                             max_checkout_expires_in_seconds));
      return create_checkout(std::move(fresh), std::move(req), reply, attempt);
    }
    inv.expires_at = t + req.expires_in_seconds.value_or(settings().default_expiry_seconds);
    auto ir = intent_request_for(inv); // before `fresh` moves into the continuation
    with_intent(std::move(ir), reply,
                [this, fresh = std::move(fresh), reply, attempt](const intent_info& intent) mutable {
                  fresh.inv.provider_intent_id = intent.id;
                  fresh.sealed_client_secret = st().ctx->box->seal(intent.client_secret, fresh.inv.id.str());
                  // Kept for a retry: the request is rebuilt from the row.
                  create_invoice_request again{fresh.inv.shipment_id, fresh.inv.user_id,
                                               fresh.inv.workflow_id, fresh.inv.amount_cents,
                                               fresh.inv.currency, std::nullopt, invoice_mode::payment_intent,
                                               {}, {}};
                  write_command cmd;
                  cmd.change = invoice_change{std::move(fresh), 0};
                  write(std::move(cmd), [this, again = std::move(again), reply, attempt](result<write_status> r) mutable {
                    if (!ok(r))
                      return done(reply, invoice_result{std::get<failure>(r)});
                    auto s = std::get<write_status>(r);
                    if (s == write_status::committed) {
                      if (spdlog::should_log(spdlog::level::debug))
                        spdlog::debug("invoice {} created for workflow {} shipment {} ({} {})", st().id.str(),
                                      st().current->inv.workflow_id, st().current->inv.shipment_id,
                                      st().current->inv.amount_cents, st().current->inv.currency);
                      st().ctx->stats->created.fetch_add(1, std::memory_order_relaxed);
                      return done(reply, view_with_secret(true));
                    }
                    // Another replica wrote it first: answer from its row.
                    if (s == write_status::version_conflict && attempt < settings().max_conflict_retries)
                      return reload([this, again = std::move(again), reply, attempt](std::optional<failure> f) mutable {
                        if (f)
                          return done(reply, invoice_result{*f});
                        create(std::move(again), reply, attempt + 1);
                      });
                    done(reply, invoice_result{write_failure(s)});
                  });
                });
  }

  static intent_request intent_request_for(const invoice& inv) {
    return {inv.id, inv.amount_cents, inv.currency, inv.workflow_id, inv.shipment_id};
  }

  // Asks the provider for an intent (idempotency key: the invoice id) and
  // hands it to `then`; a provider failure answers `reply`.
  template <class Then>
  void with_intent(intent_request ir, const invoice_reply& reply, Then then) {
    ir_amount_ = ir.amount_cents;
    ir_currency_ = ir.currency;
    self_->request(st().ctx->provider, settings().request_timeout, create_atom::value, std::move(ir))
      .await(
        [this, then, reply](intent_result& r) mutable {
          if (!ok(r)) {
            auto& f = std::get<failure>(r);
            log_scope here{{}, st().id.str()};
            spdlog::warn("invoice {}: provider did not create the intent: {}", st().id.str(), f.message);
            return done(reply, invoice_result{f});
          }
          auto& info = std::get<intent_info>(r);
          if (auto why = provider_disagrees(info.livemode, info.amount_cents, info.currency, ir_amount_, ir_currency_)) {
            log_scope here{{}, st().id.str()};
            spdlog::error("invoice {}: the provider's intent {} is not what was asked for: {}", st().id.str(),
                          info.id.str(), *why);
            return done(reply, invoice_result{fail(billing_errc::internal, "the provider's intent " + info.id.str()
                                                                             + " does not match the invoice: " + *why)});
          }
          then(info);
        },
        [this, reply](caf::error& err) mutable {
          log_scope here{{}, st().id.str()};
          spdlog::warn("invoice {}: provider did not answer: {}", st().id.str(), caf::to_string(err));
          done(reply, invoice_result{provider_failure_from(err)});
        });
  }

  // Why the provider's object (its mode, and its amount and currency when
  // it says them) cannot be the invoice's, or nullopt: an idempotent replay
  // of an object made for other parameters, or a key of the other mode.
  std::optional<std::string> provider_disagrees(bool livemode, int64_t amount, const std::string& currency,
                                                int64_t want_amount, const std::string& want_currency) {
    const bool live = settings().mode == provider_mode::live;
    if (livemode != live)
      return std::string{"livemode "} + (livemode ? "true" : "false") + " on a " + (live ? "live" : "test")
             + "-mode billingd";
    if (amount != 0 && amount != want_amount)
      return "amount " + std::to_string(amount) + " != " + std::to_string(want_amount);
    if (!currency.empty() && currency != want_currency)
      return "currency " + currency + " != " + want_currency;
    return std::nullopt;
  }

  // Repair: stores the intent of a PENDING row that has none.
  void attach_intent(const invoice_reply& reply, int attempt) {
    with_intent(intent_request_for(st().current->inv), reply, [this, reply, attempt](const intent_info& intent) {
      stored_invoice next = *st().current;
      next.inv.provider_intent_id = intent.id;
      next.inv.version += 1;
      next.inv.updated_at = now();
      next.sealed_client_secret = st().ctx->box->seal(intent.client_secret, next.inv.id.str());
      write_command cmd;
      cmd.change = invoice_change{std::move(next), st().current->inv.version};
      write(std::move(cmd), [this, reply, attempt](result<write_status> r) {
        if (!ok(r))
          return done(reply, invoice_result{std::get<failure>(r)});
        auto s = std::get<write_status>(r);
        if (s == write_status::committed)
          return done(reply, view_with_secret(false));
        if (s == write_status::version_conflict && attempt < settings().max_conflict_retries)
          return reload([this, reply, attempt](std::optional<failure> f) {
            if (f)
              return done(reply, invoice_result{*f});
            if (st().current && st().current->inv.provider_intent_id.empty())
              return attach_intent(reply, attempt + 1);
            done(reply, st().current ? view_with_secret(false)
                                     : invoice_result{fail(billing_errc::not_found, "no invoice with this id")});
          });
        done(reply, invoice_result{write_failure(s)});
      });
    });
  }

  // -- Checkout ------------------------------------------------------------------

  // A checkout invoice costs two commits: the row first (so the session's
  // parameters, its expires_at above all, are those of the stored row and a
  // retry after any crash sends the same ones under the same idempotency
  // key), then the session's id and URL.
  void create_checkout(stored_invoice fresh, create_invoice_request req, const invoice_reply& reply, int attempt) {
    write_command cmd;
    cmd.change = invoice_change{std::move(fresh), 0};
    write(std::move(cmd), [this, req = std::move(req), reply, attempt](result<write_status> r) mutable {
      if (!ok(r))
        return done(reply, invoice_result{std::get<failure>(r)});
      auto s = std::get<write_status>(r);
      if (s == write_status::committed) {
        st().ctx->stats->created.fetch_add(1, std::memory_order_relaxed);
        return attach_session(std::move(req), reply, attempt, true);
      }
      if (s == write_status::version_conflict && attempt < settings().max_conflict_retries)
        return reload([this, req = std::move(req), reply, attempt](std::optional<failure> f) mutable {
          if (f)
            return done(reply, invoice_result{*f});
          create(std::move(req), reply, attempt + 1);
        });
      done(reply, invoice_result{write_failure(s)});
    });
  }

  // Asks the provider for the stored row's Checkout Session (idempotency
  // key: the invoice id) and records its id and (sealed) URL.
  void attach_session(create_invoice_request req, const invoice_reply& reply, int attempt, bool created) {
    const auto& inv = st().current->inv;
    checkout_request cr{inv.id, inv.amount_cents, inv.currency, inv.workflow_id, inv.shipment_id,
                        std::move(req.success_url), std::move(req.cancel_url), inv.expires_at};
    self_->request(st().ctx->provider, settings().request_timeout, create_atom::value, std::move(cr))
      .await(
        [this, reply, attempt, created](session_result& r) mutable {
          log_scope here{{}, st().id.str()};
          if (!ok(r)) {
            spdlog::warn("invoice {}: provider did not create the Checkout Session: {}", st().id.str(),
                         std::get<failure>(r).message);
            return done(reply, invoice_result{std::get<failure>(r)});
          }
          auto& s = std::get<session_info>(r);
          const auto& cur = st().current->inv;
          if (auto why = provider_disagrees(s.livemode, s.amount_cents, s.currency, cur.amount_cents, cur.currency)) {
            spdlog::error("invoice {}: the provider's session {} is not what was asked for: {}", st().id.str(),
                          s.id.str(), *why);
            return done(reply, invoice_result{fail(billing_errc::internal, "the provider's Checkout Session "
                                                                             + s.id.str() + " does not match: " + *why)});
          }
          stored_invoice next = *st().current;
          next.inv.provider_session_id = s.id;
          next.inv.version += 1;
          next.inv.updated_at = now();
          next.sealed_client_secret = st().ctx->box->seal(s.url, next.inv.id.str());
          write_command cmd;
          cmd.change = invoice_change{std::move(next), cur.version};
          write(std::move(cmd), [this, reply, attempt, created](result<write_status> w) {
            if (!ok(w))
              return done(reply, invoice_result{std::get<failure>(w)});
            auto ws = std::get<write_status>(w);
            if (ws == write_status::committed)
              return done(reply, view_with_secret(created));
            // Another replica attached it (or moved the invoice) first.
            if (ws == write_status::version_conflict && attempt < settings().max_conflict_retries)
              return reload([this, reply](std::optional<failure> f) {
                if (f)
                  return done(reply, invoice_result{*f});
                done(reply, st().current ? view_with_secret(false)
                                         : invoice_result{fail(billing_errc::not_found, "no invoice with this id")});
              });
            done(reply, invoice_result{write_failure(ws)});
          });
        },
        [this, reply](caf::error& err) mutable {
          log_scope here{{}, st().id.str()};
          spdlog::warn("invoice {}: provider did not answer: {}", st().id.str(), caf::to_string(err));
          done(reply, invoice_result{provider_failure_from(err)});
        });
  }

  // -- refunds -----------------------------------------------------------------------

  // Refunds at the provider first, then records what it says (the
  // payment's refunded total) through the state machine; the provider's
  // charge.refunded webhook confirms the same total later (no effect then).
  // Provider first, then its answer (the charge's refunded total) through
  // the state machine; the rules are protocol/refunds.
  void refund(refund_invoice_request req, const refund_reply& reply) {
    if (!st().current)
      return done(reply, refund_view_result{fail(billing_errc::not_found, "no invoice with this id")});
    auto planned = plan_refund(st().current->inv, req);
    if (!ok(planned))
      return done(reply, refund_view_result{std::get<failure>(std::move(planned))});
    self_->request(st().ctx->provider, settings().request_timeout, refund_atom::value,
                   std::get<refund_request>(std::move(planned)))
      .await(
        [this, reply](refund_result& r) mutable {
          log_scope here{{}, st().id.str()};
          if (!ok(r)) {
            auto& f = std::get<failure>(r);
            spdlog::warn("invoice {}: provider did not refund: {}", st().id.str(), f.message);
            return done(reply, refund_view_result{refund_refusal(st().current->inv, std::move(f))});
          }
          auto info = std::get<refund_info>(std::move(r));
          auto reading = read_refund(st().current->inv, info, settings().mode, now());
          spdlog::info("invoice {}: refund {} of {} {} ({}{})", st().id.str(), info.id, info.amount_cents,
                       reading.ev.currency, info.status, reading.fresh ? "" : ", a repeat");
          transition(std::move(reading.ev), {}, [this, reply, info, fresh = reading.fresh](webhook_result w) {
            if (!ok(w))
              return done(reply, refund_view_result{std::get<failure>(w)});
            if (std::get<webhook_reply>(w).result == outcome::rejected_mismatch)
              spdlog::error("invoice {}: the provider's answer to refund {} does not fit the invoice", st().id.str(),
                            info.id);
            done(reply, refund_view_result{refund_view{st().current->inv, info.id, info.status, info.amount_cents,
                                                       fresh}});
          });
        },
        [this, reply](caf::error& err) mutable {
          log_scope here{{}, st().id.str()};
          spdlog::warn("invoice {}: provider did not answer: {}", st().id.str(), caf::to_string(err));
          done(reply, refund_view_result{provider_failure_from(err)});
        });
  }

  invoice_result view_with_secret(bool created) {
    auto v = view_of(*st().current);
    v.created = created;
    if (!st().current->sealed_client_secret.empty()) {
      auto secret = st().ctx->box->open(st().current->sealed_client_secret, st().id.str());
      if (!secret)
        return fail(billing_errc::internal,
                    "the stored client secret of invoice " + st().id.str()
                      + " does not open with the configured secret_key");
      // A checkout invoice keeps its session's URL sealed in the same place.
      (st().current->inv.mode == invoice_mode::checkout ? v.checkout_url : v.client_secret) = std::move(*secret);
    }
    return v;
  }

  // -- reads ---------------------------------------------------------------------

  void get(const invoice_reply& reply) {
    if (!st().current)
      return done(reply, invoice_result{fail(billing_errc::not_found, "no invoice with this id")});
    done(reply, invoice_result{view_of(*st().current)});
  }

  // The client secret, for an invoice still to be paid (the caller decided
  // who may ask).
  void get_secret(const invoice_reply& reply) {
    if (!st().current)
      return done(reply, invoice_result{fail(billing_errc::not_found, "no invoice with this id")});
    auto s = st().current->inv.status;
    if (s != invoice_status::pending && s != invoice_status::failed)
      return done(reply, invoice_result{view_of(*st().current)});
    done(reply, view_with_secret(false));
  }

  // -- transitions -----------------------------------------------------------------

  // Applies `ev` and writes the result with its event row and outbox row.
  // `type` is empty for internal commands (cancel, expiry): no event row.
  template <class Reply>
  void transition(invoice_event ev, std::string type, Reply reply, int attempt = 0) {
    auto t = now();
    write_command cmd;
    if (!st().current) {
      // Only provider events reach an unknown invoice id: record and ignore.
      cmd.event = webhook_record{ev.id, std::move(type), invoice_id{}, outcome::ignored_unknown_invoice, t};
      return write(std::move(cmd), [this, reply](result<write_status> r) mutable {
        if (!ok(r))
          return reply(webhook_result{std::get<failure>(r)});
        auto s = std::get<write_status>(r);
        if (s == write_status::committed || s == write_status::duplicate_event)
          return reply(webhook_result{webhook_reply{s == write_status::committed ? outcome::ignored_unknown_invoice
                                                                                 : outcome::ignored_duplicate,
                                                    {}, std::nullopt}});
        reply(webhook_result{write_failure(s)});
      });
    }
    auto d = apply(st().current->inv, ev, t, settings().mode);
    const bool record = !type.empty();
    if (record)
      cmd.event = webhook_record{ev.id, type, st().id, d.result, t};
    if (d.result == outcome::applied) {
      stored_invoice next = *st().current;
      next.inv = std::move(d.next);
      next.inv.version = st().current->inv.version + 1;
      cmd.signal = outbox_record{st().id, std::string{default_signal_name(*d.signal)},
                                 signal_payload(next.inv, ev.created != 0 ? ev.created : t), t};
      cmd.change = invoice_change{std::move(next), st().current->inv.version};
    }
    if (!cmd.event && !cmd.change) // an internal command that changes nothing
      return reply(webhook_result{webhook_reply{d.result, st().id, st().current->inv.status}});
    // Money taken for an invoice already CANCELLED: recorded (PAID) and alerted.
    const bool after_cancel = d.result == outcome::applied && st().current->inv.status == invoice_status::cancelled
                              && d.next.status == invoice_status::paid;
    write(std::move(cmd), [this, ev = std::move(ev), type = std::move(type), reply, attempt, after_cancel,
                           result = d.result, reason = std::move(d.reason)](result<write_status> r) mutable {
      if (!ok(r))
        return reply(webhook_result{std::get<failure>(r)});
      switch (std::get<write_status>(r)) {
        case write_status::committed:
          log_outcome(ev, type, result, reason);
          if (after_cancel)
            alert_paid_after_cancel(ev, type);
          return reply(webhook_result{webhook_reply{result, st().id, st().current->inv.status}});
        case write_status::duplicate_event:
          return reply(webhook_result{webhook_reply{outcome::ignored_duplicate, st().id, st().current->inv.status}});
        case write_status::version_conflict:
          if (attempt < settings().max_conflict_retries)
            return reload([this, ev = std::move(ev), type = std::move(type), reply, attempt](std::optional<failure> f) mutable {
              if (f)
                return reply(webhook_result{*f});
              transition(std::move(ev), std::move(type), reply, attempt + 1);
            });
          return reply(webhook_result{fail(billing_errc::conflict, "the invoice kept changing; retry")});
        case write_status::unavailable:
        case write_status::overloaded:
          return reply(webhook_result{write_failure(std::get<write_status>(r))});
      }
    });
  }

  // Routine outcomes are counted (the edge's outcome counters, transitions
  // by status here) and logged at debug; a forgery is a warning.
  void log_outcome(const invoice_event& ev, const std::string& type, outcome result, const std::string& reason) {
    if (result == outcome::applied)
      st().ctx->stats->transitions[static_cast<size_t>(st().current->inv.status)].fetch_add(
        1, std::memory_order_relaxed);
    if (result == outcome::rejected_mismatch) {
      log_scope here{{}, st().id.str(), ev.id.str()};
      spdlog::warn("invoice {}: event {} ({}) rejected, not about this invoice: {}", st().id.str(),
                   ev.id.str(), type, reason);
    } else if (spdlog::should_log(spdlog::level::debug)) {
      log_scope here{{}, st().id.str(), ev.id.str()};
      spdlog::debug("invoice {}: {} ({}, event {})", st().id.str(), reason, to_string(result), ev.id.str());
    }
  }

  void alert_paid_after_cancel(const invoice_event& ev, const std::string& type) {
    st().ctx->stats->paid_after_cancel.fetch_add(1, std::memory_order_relaxed);
    log_scope here{{}, st().id.str(), ev.id.str()};
    spdlog::error("ALERT invoice {}: a payment succeeded after the invoice was CANCELLED ({} {}, intent {}): "
                  "money was taken, the invoice is now PAID and its workflow told so; refund it or fulfil the "
                  "order (billing_payments_after_cancel_total)",
                  st().id.str(), type.empty() ? "the provider's answer" : type, ev.id.str(), ev.intent.str());
  }

  void on_event(incoming_event in, const event_reply& reply) {
    transition(std::move(in.ev), std::move(in.type), [this, reply](webhook_result r) { done(reply, std::move(r)); });
  }

  // Cancel (by API) and expiry both ask the provider first (cancel the
  // intent, expire the session) and follow its answer: cancelled at the
  // provider -> CANCELLED; the payment already succeeded -> PAID (the
  // provider's amount, currency and mode); a payment in flight (processing,
  // an asynchronous Checkout payment) -> never CANCELLED: "retry later", and
  // an expiry postpones itself with a backoff.
  template <class Reply>
  void cancel_at_provider_then(event_kind kind, Reply reply) {
    auto& inv = st().current->inv;
    bool cancellable = inv.status == invoice_status::pending || inv.status == invoice_status::failed;
    auto just = [this, kind, reply]() mutable {
      invoice_event ev;
      ev.kind = kind;
      transition(std::move(ev), {}, std::move(reply));
    };
    if (!cancellable)
      return just();
    auto failed = [this, reply](const failure& f) mutable {
      log_scope here{{}, st().id.str()};
      spdlog::warn("invoice {}: provider did not cancel: {}", st().id.str(), f.message);
      reply(webhook_result{f});
    };
    auto silent = [this, reply](caf::error& err) mutable {
      log_scope here{{}, st().id.str()};
      spdlog::warn("invoice {}: provider did not answer: {}", st().id.str(), caf::to_string(err));
      reply(webhook_result{provider_failure_from(err)});
    };
    if (inv.mode == invoice_mode::checkout && !inv.provider_session_id.empty()) {
      self_->request(st().ctx->provider, settings().request_timeout, expire_atom::value, inv.provider_session_id,
                     inv.id)
        .await(
          [this, kind, reply, just, failed](session_result& r) mutable {
            if (!ok(r))
              return failed(std::get<failure>(r));
            auto& s = std::get<session_info>(r);
            if (s.status == "expired")
              return just();
            if (auto paid = session_reading(s, now()))
              return follow_provider(std::move(paid->ev), std::move(reply));
            in_flight(kind, "its Checkout Session is " + s.status + "/" + s.payment_status, std::move(reply));
          },
          silent);
      return;
    }
    if (inv.provider_intent_id.empty())
      return just();
    self_->request(st().ctx->provider, settings().request_timeout, cancel_atom::value, inv.provider_intent_id,
                   inv.id)
      .await(
        [this, kind, reply, just, failed](intent_result& r) mutable {
          if (!ok(r))
            return failed(std::get<failure>(r));
          auto& info = std::get<intent_info>(r);
          if (info.status == "canceled")
            return just();
          if (info.status == "succeeded") {
            if (auto paid = intent_reading(info, st().current->inv.status, now()))
              return follow_provider(std::move(paid->ev), std::move(reply));
          }
          // processing, requires_capture, or an answer that is not a cancel.
          in_flight(kind, "its PaymentIntent is " + info.status, std::move(reply));
        },
        silent);
  }

  // The provider says the payment succeeded: the invoice follows it. Its
  // amount and currency are the provider's; only a provider that did not
  // say them (the simulated one) lets the invoice's stand in.
  template <class Reply>
  void follow_provider(invoice_event ev, Reply reply) {
    const auto& cur = st().current->inv;
    if (!ev.amount_cents)
      ev.amount_cents = cur.amount_cents;
    if (ev.currency.empty())
      ev.currency = cur.currency;
    log_scope here{{}, st().id.str()};
    spdlog::warn("invoice {}: cancel raced a successful payment; following the provider", st().id.str());
    transition(std::move(ev), {}, std::move(reply));
  }

  // A payment is in flight: not CANCELLED now, retry later. An expiry moves
  // expires_at (state_machine: postpone_expiry), so the sweeper comes back
  // after a backoff instead of every sweep.
  template <class Reply>
  void in_flight(event_kind kind, std::string why, Reply reply) {
    log_scope here{{}, st().id.str()};
    auto later = fail(billing_errc::unavailable, "a payment is in flight for this invoice (" + why + "); retry later");
    if (kind != event_kind::expired) {
      spdlog::info("invoice {}: not cancelled: {}", st().id.str(), why);
      return reply(webhook_result{later});
    }
    stored_invoice next = *st().current;
    next.inv = postpone_expiry(next.inv, now(), settings().expiry_retry_seconds, settings().expiry_retry_max_seconds);
    next.inv.version = st().current->inv.version + 1;
    spdlog::info("invoice {}: expiry postponed to {} ({} time(s)): {}", st().id.str(), next.inv.expires_at,
                 next.inv.expiry_retries, why);
    write_command cmd;
    cmd.change = invoice_change{std::move(next), st().current->inv.version};
    write(std::move(cmd), [reply, later](result<write_status> r) mutable {
      if (!ok(r))
        return reply(webhook_result{std::get<failure>(r)});
      // Committed or not (a conflict: something moved it meanwhile, the next
      // sweep sees that), the answer is the same.
      reply(webhook_result{later});
    });
  }

  void cancel(const invoice_reply& reply) {
    if (!st().current)
      return done(reply, invoice_result{fail(billing_errc::not_found, "no invoice with this id")});
    cancel_at_provider_then(event_kind::cancel_requested, [this, reply](webhook_result r) {
      if (!ok(r))
        return done(reply, invoice_result{std::get<failure>(r)});
      auto& w = std::get<webhook_reply>(r);
      if (w.result == outcome::rejected_invalid_state || w.status != invoice_status::cancelled)
        return done(reply, invoice_result{fail(billing_errc::invalid_state,
                                               "the invoice is " + std::string{to_string(st().current->inv.status)}
                                                 + " and can no longer be cancelled")});
      done(reply, invoice_result{view_of(*st().current)});
    });
  }

  void expire(const event_reply& reply) {
    if (!st().current)
      return done(reply, webhook_result{webhook_reply{outcome::ignored_unknown_invoice, st().id, std::nullopt}});
    if (st().current->inv.expires_at > now())
      return done(reply, webhook_result{webhook_reply{outcome::ignored_no_effect, st().id, st().current->inv.status}});
    cancel_at_provider_then(event_kind::expired, [this, reply](webhook_result r) { done(reply, std::move(r)); });
  }

private:
  self_ptr self_;
  // What the intent being created must carry (with_intent's check).
  int64_t ir_amount_ = 0;
  std::string ir_currency_;
};

invoice_actor::behavior_type make_behavior(self_ptr self, invoice_id id, context_ptr ctx,
                                           std::shared_ptr<invoice_registry> registry) {
  self->state.id = std::move(id);
  self->state.ctx = std::move(ctx);
  self->state.registry = std::move(registry);
  auto logic = std::make_shared<invoice_logic>(self);
  // A failed load answers the message with its reason (and retires: the
  // next message loads again).
  return {
    [logic](create_atom, create_invoice_request& req, invoice_reply& reply) {
      logic->begin(reply, [logic, req = std::move(req), reply](std::optional<failure> f) mutable {
        if (f)
          return logic->done(reply, invoice_result{*f});
        logic->create(std::move(req), reply, 0);
      });
    },
    [logic](get_atom, invoice_reply& reply) {
      logic->begin(reply, [logic, reply](std::optional<failure> f) {
        if (f)
          return logic->done(reply, invoice_result{*f});
        logic->get(reply);
      });
    },
    [logic](secret_atom, invoice_reply& reply) {
      logic->begin(reply, [logic, reply](std::optional<failure> f) {
        if (f)
          return logic->done(reply, invoice_result{*f});
        logic->get_secret(reply);
      });
    },
    [logic](cancel_atom, invoice_reply& reply) {
      logic->begin(reply, [logic, reply](std::optional<failure> f) {
        if (f)
          return logic->done(reply, invoice_result{*f});
        logic->cancel(reply);
      });
    },
    [logic](event_atom, incoming_event& in, event_reply& reply) {
      logic->begin(reply, [logic, in = std::move(in), reply](std::optional<failure> f) mutable {
        if (f)
          return logic->done(reply, webhook_result{*f});
        logic->on_event(std::move(in), reply);
      });
    },
    [logic](expire_atom, event_reply& reply) {
      logic->begin(reply, [logic, reply](std::optional<failure> f) {
        if (f)
          return logic->done(reply, webhook_result{*f});
        logic->expire(reply);
      });
    },
    [logic](refund_atom, refund_invoice_request& req, refund_reply& reply) {
      logic->begin(reply, [logic, req = std::move(req), reply](std::optional<failure> f) mutable {
        if (f)
          return logic->done(reply, refund_view_result{*f});
        logic->refund(std::move(req), reply);
      });
    },
    [logic](idle_atom) { logic->on_idle_timer(); },
  };
}

} // namespace

invoice_actor spawn_invoice_actor(caf::actor_system& sys, invoice_id id, context_ptr ctx,
                                  std::shared_ptr<invoice_registry> registry) {
  return sys.spawn(make_behavior, std::move(id), std::move(ctx), std::move(registry));
}

} // namespace billing
