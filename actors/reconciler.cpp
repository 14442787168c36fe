#include "actors/reconciler.hpp"

#include "protocol/rate_limit.hpp"
#include "protocol/reconcile.hpp"
#include "protocol/stripe_event.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <cmath>
#include <deque>

namespace billing::reconciler_detail {
// An answer of an invoice actor or of billing_api, back in the reconciler's mailbox.
struct applied_msg {
  uint64_t pass = 0;
  bool from_log = false;
  webhook_result result;
};
} // namespace billing::reconciler_detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::reconciler_detail::applied_msg)

namespace billing {

namespace {

using reconciler_detail::applied_msg;
using pump_atom = caf::atom_constant<caf::atom("rpump")>;
using steady = std::chrono::steady_clock;

constexpr const char* checkpoint_name = "stripe_events";

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch()).count();
}

struct reconciler_state {
  static inline const char* name = "reconciler";
  context_ptr ctx;
  registry_ptr registry;
  billing_api* api = nullptr;
  slot_ptr<reconcile_store_actor> store; // read at each use: it may have been restarted
  reconciler_config cfg;
  token_bucket bucket;

  // The pass in progress (0: none). Answers of an older pass are ignored.
  uint64_t pass = 0;
  uint64_t passes = 0;
  std::deque<reconcile_candidate> queue; // claimed, not asked yet
  size_t asking = 0;                     // provider reads in flight
  size_t applying = 0;                   // readings sent, not answered
  size_t checked = 0, applied = 0;
  bool pump_scheduled = false;
  bool page_waiting = false; // the next page of the log waits for a token

  // The event log part.
  int64_t window_gte = 0, window_lte = 0;
  int64_t window_cap = 0; // a truncated pass leaves the older rest for the next one
  std::string starting_after;
  int pages = 0;
  std::vector<listed_provider_event> fetched; // newest first
  size_t log_pending = 0;
  size_t log_failed = 0;
  int64_t oldest_seen = 0;
  bool truncated = false;
};

using self_ptr = caf::stateful_actor<reconciler_state>*;

void finish_pass(self_ptr self);
void start_log(self_ptr self);
void pump(self_ptr self);

// Waits for a token; false (and a pump scheduled) when none is there yet.
bool take_token(self_ptr self) {
  auto& st = self->state;
  auto d = st.bucket.take(steady_ns());
  if (d.allowed)
    return true;
  if (!st.pump_scheduled) {
    st.pump_scheduled = true;
    self->delayed_send(self, std::chrono::nanoseconds{d.retry_after_ns}, pump_atom::value, st.pass);
  }
  return false;
}

std::chrono::milliseconds timeout(self_ptr self) {
  return self->state.ctx->settings.request_timeout;
}

// What the provider said, as an event to the invoice's actor (the webhook's path).
void apply_reading(self_ptr self, const reconcile_candidate& c, std::optional<reading> r) {
  auto& st = self->state;
  if (!r)
    return;
  ++st.applying;
  incoming_event in{std::move(r->ev), std::move(r->type), st.ctx->clock()};
  auto me = caf::actor_cast<caf::actor>(self);
  st.registry->send(c.id, event_atom::value, std::move(in), event_reply{[me, pass = st.pass](webhook_result w) {
                      caf::anon_send(me, applied_msg{pass, false, std::move(w)});
                    }});
}

void read_provider(self_ptr self, reconcile_candidate c) {
  auto& st = self->state;
  ++st.asking;
  ++st.checked;
  st.ctx->stats->reconcile_checks.fetch_add(1, std::memory_order_relaxed);
  const uint64_t pass = st.pass;
  auto failed = [self, pass, id = c.id](const failure& f) {
    if (self->state.pass != pass)
      return;
    spdlog::warn("reconcile: invoice {}: cannot read it at the provider: {}", id.str(), f.message);
  };
  auto after = [self, pass] {
    auto& s = self->state;
    if (s.pass != pass)
      return;
    --s.asking;
    pump(self);
  };
  if (c.mode == invoice_mode::checkout && !c.session.empty()) {
    self->request(st.ctx->provider, timeout(self), get_atom::value, c.session)
      .then(
        [self, c, failed, after](session_result& r) {
          if (!ok(r))
            failed(std::get<failure>(r));
          else if (self->state.pass != 0)
            apply_reading(self, c, session_reading(std::get<session_info>(r), self->state.ctx->clock()));
          after();
        },
        [failed, after](caf::error& err) {
          failed(failure_from(err));
          after();
        });
    return;
  }
  self->request(st.ctx->provider, timeout(self), get_atom::value, c.intent)
    .then(
      [self, c, failed, after](intent_result& r) {
        if (!ok(r))
          failed(std::get<failure>(r));
        else if (self->state.pass != 0)
          apply_reading(self, c, intent_reading(std::get<intent_info>(r), c.status, self->state.ctx->clock()));
        after();
      },
      [failed, after](caf::error& err) {
        failed(failure_from(err));
        after();
      });
}

// Asks the provider about the next claimed invoices, as fast as tokens come.
void pump(self_ptr self) {
  auto& st = self->state;
  if (st.pass == 0)
    return;
  while (!st.queue.empty()) {
    if (!take_token(self))
      return;
    auto c = std::move(st.queue.front());
    st.queue.pop_front();
    read_provider(self, std::move(c));
  }
  if (st.asking == 0 && st.applying == 0 && st.window_gte == 0)
    start_log(self);
}

// -- the event log ---------------------------------------------------------------

void apply_log(self_ptr self) {
  auto& st = self->state;
  const uint64_t pass = st.pass;
  auto me = caf::actor_cast<caf::actor>(self);
  // Oldest first, as Stripe would have delivered them.
  st.log_pending = st.fetched.size();
  if (st.log_pending == 0)
    return finish_pass(self);
  st.ctx->stats->reconcile_events.fetch_add(st.fetched.size(), std::memory_order_relaxed);
  for (auto it = st.fetched.rbegin(); it != st.fetched.rend(); ++it) {
    auto parsed = parse_stripe_event(it->raw);
    if (auto* err = std::get_if<event_parse_error>(&parsed)) {
      spdlog::warn("reconcile: event {} ({}) from the log is unreadable: {}; skipped", it->id, it->type,
                   err->message());
      --st.log_pending;
      continue;
    }
    auto& ev = std::get<stripe_event>(parsed);
    incoming_event in{to_invoice_event(ev), ev.type, st.ctx->clock()};
    st.api->handle_event(invoice_id{std::move(ev.invoice_id)}, std::move(in), [me, pass](webhook_result w) {
      caf::anon_send(me, applied_msg{pass, true, std::move(w)});
    });
  }
  if (st.log_pending == 0)
    finish_pass(self);
}

void next_page(self_ptr self) {
  auto& st = self->state;
  if (!take_token(self)) {
    st.page_waiting = true; // the pump comes back here
    return;
  }
  event_listing q;
  q.types = st.cfg.event_types;
  q.created_gte = st.window_gte;
  q.created_lte = st.window_lte;
  q.starting_after = st.starting_after;
  q.limit = 100;
  ++st.pages;
  const uint64_t pass = st.pass;
  self->request(st.ctx->provider, timeout(self), list_atom::value, std::move(q))
    .then(
      [self, pass](event_page_result& r) {
        auto& s = self->state;
        if (s.pass != pass)
          return;
        if (!ok(r)) {
          spdlog::warn("reconcile: cannot read the provider's event log: {}", std::get<failure>(r).message);
          s.log_failed = 1;
          return finish_pass(self);
        }
        auto& page = std::get<event_listing_page>(r);
        for (auto& ev : page.events) {
          s.oldest_seen = s.oldest_seen == 0 ? ev.created : std::min(s.oldest_seen, ev.created);
          s.starting_after = ev.id;
          s.fetched.push_back(std::move(ev));
        }
        if (page.has_more && !page.events.empty()) {
          if (s.pages < s.cfg.events_max_pages)
            return next_page(self);
          s.truncated = true;
        }
        apply_log(self);
      },
      [self, pass](caf::error& err) {
        if (self->state.pass != pass)
          return;
        spdlog::warn("reconcile: the provider did not answer for its event log: {}", caf::to_string(err));
        self->state.log_failed = 1;
        finish_pass(self);
      });
}

void start_log(self_ptr self) {
  auto& st = self->state;
  if (st.cfg.event_types.empty())
    return finish_pass(self);
  const auto now = st.ctx->clock();
  st.window_gte = -1; // the log part has begun
  checkpoint_lease l{checkpoint_name, st.cfg.holder, now - st.cfg.events_lookback_seconds,
                     std::max<int64_t>(60, 2 * std::chrono::duration_cast<std::chrono::seconds>(timeout(self)).count()
                                             * (st.cfg.events_max_pages + 1))};
  const uint64_t pass = st.pass;
  self->request(st.store->get(), timeout(self), lease_atom::value, std::move(l))
    .then(
      [self, pass, now](checkpoint_result& r) {
        auto& s = self->state;
        if (s.pass != pass)
          return;
        if (!ok(r)) {
          spdlog::warn("reconcile: cannot lease the event log's checkpoint: {}", std::get<failure>(r).message);
          return finish_pass(self);
        }
        auto& cp = std::get<checkpoint_state>(r);
        if (!cp.held) // another replica pages the log now
          return finish_pass(self);
        s.window_gte = cp.position + 1;
        s.window_lte = now - s.cfg.quiet_seconds;
        if (s.window_cap > 0)
          s.window_lte = std::min(s.window_lte, s.window_cap);
        if (s.window_lte < s.window_gte) {
          s.window_lte = cp.position; // nothing new: just give the lease back
          return finish_pass(self);
        }
        next_page(self);
      },
      [self, pass](caf::error& err) {
        if (self->state.pass != pass)
          return;
        spdlog::warn("reconcile: the checkpoint store did not answer: {}", caf::to_string(err));
        finish_pass(self);
      });
}

// -- the pass ------------------------------------------------------------------------

void finish_pass(self_ptr self) {
  auto& st = self->state;
  if (st.pass == 0)
    return;
  const bool leased = st.window_gte > 0;
  if (leased) {
    // Move the checkpoint only when the whole window was handled; a
    // truncated pass applied the newest events and leaves the older ones
    // (down to the oldest it saw, which may repeat: dedupe) for the next.
    int64_t position = st.window_gte - 1;
    if (st.log_failed == 0 && !st.truncated) {
      position = st.window_lte;
      st.window_cap = 0;
    } else if (st.truncated && st.log_failed == 0) {
      st.window_cap = st.oldest_seen;
    }
    self->request(st.store->get(), timeout(self), advance_atom::value,
                  checkpoint_advance{checkpoint_name, st.cfg.holder, position})
      .then(
        [](advance_result& r) {
          if (!ok(r))
            spdlog::warn("reconcile: cannot move the checkpoint: {}", std::get<failure>(r).message);
          else if (!std::get<checkpoint_advanced>(r).advanced)
            spdlog::warn("reconcile: the checkpoint's lease was lost during the pass; another replica goes on");
        },
        [](caf::error&) {});
  }
  if (st.checked > 0 || !st.fetched.empty())
    spdlog::info("reconcile: pass {}: {} invoice(s) read at the provider, {} reading(s) applied; {} event(s) from "
                 "the log{}",
                 st.passes, st.checked, st.applied, st.fetched.size(),
                 st.log_failed ? " (not all handled: the window is read again next time)" : "");
  st.pass = 0;
  self->delayed_send(self, st.cfg.interval, tick_atom::value);
}

// A claim keeps its invoices from every other claim for the first backoff
// (quiet_seconds) only. Claim no more than the bucket lets this replica read
// within half of it: a bigger claim is still being read when the backoff
// ends, another replica claims the unread rest, and both read it (two reads,
// twice the requests). With the defaults (10/s, 300 s) this is the page.
int32_t claim_limit(const reconciler_config& cfg) {
  const double readable = std::floor(std::max(0.1, cfg.rate) * static_cast<double>(cfg.quiet_seconds) / 2);
  return static_cast<int32_t>(std::max(1.0, std::min(static_cast<double>(cfg.page), readable)));
}

void start_pass(self_ptr self) {
  auto& st = self->state;
  if (st.pass != 0)
    return;
  st.pass = ++st.passes;
  st.queue.clear();
  st.asking = st.applying = st.checked = st.applied = 0;
  st.window_gte = st.window_lte = 0;
  st.starting_after.clear();
  st.pages = 0;
  st.fetched.clear();
  st.log_pending = st.log_failed = 0;
  st.oldest_seen = 0;
  st.truncated = false;
  st.page_waiting = false;
  reconcile_claim claim{st.ctx->clock(), st.cfg.quiet_seconds, claim_limit(st.cfg), st.cfg.quiet_seconds,
                        st.cfg.backoff_max_seconds};
  const uint64_t pass = st.pass;
  self->request(st.store->get(), timeout(self), claim_atom::value, claim)
    .then(
      [self, pass](candidates_result& r) {
        auto& s = self->state;
        if (s.pass != pass)
          return;
        if (!ok(r))
          spdlog::warn("reconcile: cannot claim invoices: {}", std::get<failure>(r).message);
        else
          for (auto& c : std::get<std::vector<reconcile_candidate>>(r))
            s.queue.push_back(std::move(c));
        pump(self);
      },
      [self, pass](caf::error& err) {
        if (self->state.pass != pass)
          return;
        spdlog::warn("reconcile: the claim store did not answer: {}", caf::to_string(err));
        pump(self);
      });
}

caf::behavior reconciler(self_ptr self, context_ptr ctx, registry_ptr registry, billing_api* api,
                         slot_ptr<reconcile_store_actor> store, reconciler_config cfg) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.registry = std::move(registry);
  st.api = api;
  st.store = std::move(store);
  st.cfg = std::move(cfg);
  const double rate = std::max(0.1, st.cfg.rate);
  st.bucket = token_bucket{rate_spec{rate, std::max(1.0, rate)}, steady_ns()};
  self->send(self, tick_atom::value);
  return {
    [self](tick_atom) { start_pass(self); },
    [self](pump_atom, uint64_t pass) {
      auto& s = self->state;
      s.pump_scheduled = false;
      if (s.pass != pass)
        return;
      if (s.page_waiting) {
        s.page_waiting = false;
        return next_page(self);
      }
      pump(self);
    },
    [self](applied_msg& m) {
      auto& s = self->state;
      if (m.pass != s.pass)
        return;
      const bool applied = ok(m.result) && std::get<webhook_reply>(m.result).result == outcome::applied;
      if (m.from_log) {
        if (!ok(m.result)) {
          s.log_failed += 1;
          spdlog::warn("reconcile: an event from the log was not handled: {}", std::get<failure>(m.result).message);
        }
        if (applied)
          s.ctx->stats->reconcile_applied.fetch_add(1, std::memory_order_relaxed);
        if (s.log_pending > 0 && --s.log_pending == 0)
          finish_pass(self);
        return;
      }
      if (applied) {
        ++s.applied;
        s.ctx->stats->reconcile_applied.fetch_add(1, std::memory_order_relaxed);
      } else if (!ok(m.result)) {
        spdlog::warn("reconcile: a reading was not applied: {}", std::get<failure>(m.result).message);
      }
      if (s.applying > 0)
        --s.applying;
      pump(self);
    },
  };
}

} // namespace

caf::actor spawn_reconciler(caf::actor_system& sys, context_ptr ctx, registry_ptr registry, billing_api* api,
                            slot_ptr<reconcile_store_actor> store, reconciler_config cfg) {
  return sys.spawn(reconciler, std::move(ctx), std::move(registry), api, std::move(store), std::move(cfg));
}

} // namespace billing
