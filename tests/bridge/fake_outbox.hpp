#pragma once
// Test doubles for the bridge actor: an in-memory outbox actor with the
// store's claim rule (oldest undelivered row per invoice, leased) and a
// scriptable sink that records every delivery and can hold its answers.

#include "protocol/messages.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace billing::test {

using steady = std::chrono::steady_clock;

inline int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now().time_since_epoch()).count();
}

struct fake_row {
  outbox_item item;
  bool delivered = false;
  bool dead = false;
  int64_t due_ms = 0;
  int64_t enqueued_ms = 0;
  std::string error;
};

// Shared between the fake actor and the test thread (which locks mu).
struct fake_outbox_db {
  std::mutex mu;
  std::vector<fake_row> rows;
  int64_t next_id = 1;
  int exchanges = 0;

  void add(const std::string& invoice, const std::string& signal = "PaymentConfirmed") {
    std::lock_guard lock{mu};
    fake_row r;
    r.item.id = next_id++;
    r.item.invoice = invoice_id{invoice};
    r.item.workflow_id = "wf-" + invoice;
    r.item.signal = signal;
    r.item.payload = R"({"invoice_id":")" + invoice + R"("})";
    r.enqueued_ms = now_ms();
    rows.push_back(std::move(r));
  }
  template <class F>
  auto with(F f) {
    std::lock_guard lock{mu};
    return f(rows);
  }
};

inline outbox_actor::behavior_type fake_outbox(outbox_actor::pointer, std::shared_ptr<fake_outbox_db> db) {
  return {
    [db](claim_atom, const std::vector<outbox_outcome>& outcomes, int32_t limit, int64_t lease) {
      std::lock_guard lock{db->mu};
      ++db->exchanges;
      exchange_reply out;
      const auto now = now_ms();
      for (auto& o : outcomes) {
        auto it = std::find_if(db->rows.begin(), db->rows.end(), [&](auto& r) { return r.item.id == o.id; });
        if (it == db->rows.end() || it->delivered)
          continue;
        if (o.kind == settle_kind::delivered) {
          it->delivered = true;
          out.settled.latency_ms.push_back(1);
        } else if (o.kind == settle_kind::retry) {
          it->due_ms = now + o.delay_ms;
          it->error = o.error;
        } else {
          it->dead = true;
          it->error = o.error;
        }
      }
      for (auto& r : db->rows) {
        if (static_cast<int32_t>(out.claimed.size()) >= limit)
          break;
        if (r.delivered || r.dead || r.due_ms > now)
          continue;
        bool earlier = std::any_of(db->rows.begin(), db->rows.end(), [&](auto& e) {
          return e.item.invoice == r.item.invoice && e.item.id < r.item.id && !e.delivered;
        });
        if (earlier)
          continue;
        ++r.item.attempts;
        r.item.age_ms = now - r.enqueued_ms;
        r.due_ms = now + lease;
        out.claimed.push_back(r.item);
      }
      return exchange_result{std::move(out)};
    },
    [db](stats_atom) {
      std::lock_guard lock{db->mu};
      outbox_stats s;
      for (auto& r : db->rows) {
        s.backlog += !r.delivered && !r.dead;
        s.dead += r.dead;
      }
      return outbox_stats_result{s};
    },
    [](redrive_atom, const redrive_request&) { return redrive_result{int64_t{0}}; },
  };
}

// The sink double: `verdict(delivery)` decides each answer, given after
// `delay`; with `hold` set, answers wait for release(0).
struct fake_sink_state {
  std::mutex mu;
  std::vector<signal_delivery> seen;
  std::function<delivery_verdict(const signal_delivery&)> verdict = [](auto&) {
    return delivery_verdict::delivered;
  };
  bool hold = false;
  std::chrono::milliseconds delay{0};
  size_t in_flight = 0;
  size_t max_in_flight = 0;
  std::map<std::string, int> in_flight_by_invoice;
  bool same_invoice_overlap = false;
};

using release_atom = caf::atom_constant<caf::atom("release")>;
// release(key): answer that held delivery; release(0): all, and stop holding.
using fake_sink_actor = sink_actor::extend<caf::reacts_to<release_atom, uint64_t>>;

struct fake_sink_actor_state {
  uint64_t next = 0;
  std::map<uint64_t, std::pair<signal_delivery, caf::typed_response_promise<delivery_result>>> held;
};

inline void answer(fake_sink_state& st, const signal_delivery& d,
                   caf::typed_response_promise<delivery_result>& rp) {
  delivery_verdict v;
  {
    std::lock_guard lock{st.mu};
    --st.in_flight;
    --st.in_flight_by_invoice[d.invoice.str()];
    v = st.verdict(d);
  }
  rp.deliver(delivery_result{v, std::string{to_string(v)}});
}

inline fake_sink_actor::behavior_type
fake_sink(fake_sink_actor::stateful_pointer<fake_sink_actor_state> self, std::shared_ptr<fake_sink_state> st) {
  return {
    [self, st](deliver_atom, const signal_delivery& d) -> caf::result<delivery_result> {
      auto rp = self->make_response_promise<delivery_result>();
      bool hold;
      std::chrono::milliseconds delay;
      {
        std::lock_guard lock{st->mu};
        st->seen.push_back(d);
        st->max_in_flight = std::max(st->max_in_flight, ++st->in_flight);
        if (++st->in_flight_by_invoice[d.invoice.str()] > 1)
          st->same_invoice_overlap = true;
        hold = st->hold;
        delay = st->delay;
      }
      if (!hold && delay.count() == 0) {
        answer(*st, d, rp);
        return rp;
      }
      auto key = ++self->state.next;
      self->state.held.emplace(key, std::make_pair(d, rp));
      if (!hold)
        self->delayed_send(self, delay, release_atom::value, key);
      return rp;
    },
    [self, st](release_atom, uint64_t key) {
      auto& held = self->state.held;
      if (key != 0) {
        auto it = held.find(key);
        if (it != held.end()) {
          answer(*st, it->second.first, it->second.second);
          held.erase(it);
        }
        return;
      }
      {
        std::lock_guard lock{st->mu};
        st->hold = false;
      }
      for (auto& [k, v] : held)
        answer(*st, v.first, v.second);
      held.clear();
    },
  };
}

} // namespace billing::test
