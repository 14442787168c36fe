#include "persistence/reader.hpp"

#include "persistence/pg_store.hpp"
#include "persistence/pg_util.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <vector>

namespace billing {

namespace {

using clock = std::chrono::steady_clock;

// Private to the reader: it sends this to itself only.
using load_flush_atom = caf::atom_constant<caf::atom("rflush")>;
using reader_impl = reader_actor::extend<caf::reacts_to<load_flush_atom>>;

struct pending_load {
  invoice_id id;
  caf::typed_response_promise<load_result> promise;
};

struct reader_state {
  static inline const char* name = "billing.reader";

  reader_config cfg;
  std::unique_ptr<pg_store> store;
  std::chrono::milliseconds backoff{0};
  clock::time_point next_attempt{};
  // Loads are batched like the writer's commands: the first one sends a
  // flush marker, and every load already in the mailbox joins its query.
  std::vector<pending_load> loads;
  bool flush_pending = false;
};

using reader_ptr = reader_impl::stateful_pointer<reader_state>;

// Most ids in one query.
constexpr size_t max_load_batch = 256;

// nullopt when the store is usable now, else the failure to answer with.
std::optional<failure> ensure_connected(reader_state& s) {
  if (s.store->connected())
    return std::nullopt;
  if (clock::now() < s.next_attempt)
    return fail(billing_errc::unavailable, "database unavailable");
  auto r = s.store->connect();
  if (ok(r)) {
    if (s.backoff.count() > 0)
      spdlog::info("persistence reader: database connection restored");
    s.backoff = std::chrono::milliseconds{0};
    return std::nullopt;
  }
  if (s.backoff.count() == 0)
    spdlog::warn("persistence reader: cannot connect to {}: {}", pg_detail::redact(s.cfg.url),
                 std::get<failure>(r).message);
  s.backoff = s.backoff.count() == 0 ? s.cfg.backoff_min
                                      : std::min(s.backoff * 2, s.cfg.backoff_max);
  s.next_attempt = clock::now() + s.backoff;
  return std::get<failure>(std::move(r));
}

// After a failure that dropped the connection, the next attempt waits for
// the backoff.
void back_off_if_dropped(reader_state& s) {
  if (!s.store->connected()) {
    s.backoff = s.cfg.backoff_min;
    s.next_attempt = clock::now() + s.backoff;
  }
}

// Runs `op` if the store is usable.
template <class Result, class Op>
Result guarded(reader_state& s, Op op) {
  if (auto f = ensure_connected(s))
    return std::move(*f);
  Result r = op(*s.store);
  back_off_if_dropped(s);
  return r;
}

// Answers the queued loads (at most max_load_batch) with one query.
void flush_loads(reader_ptr self) {
  auto& s = self->state;
  const size_t n = std::min(s.loads.size(), max_load_batch);
  std::vector<invoice_id> ids;
  ids.reserve(n);
  for (size_t i = 0; i < n; ++i)
    ids.push_back(s.loads[i].id);
  std::vector<load_result> results;
  if (auto down = ensure_connected(s)) {
    results.assign(n, load_result{*down});
  } else {
    results = s.store->load_many(ids);
    back_off_if_dropped(s);
  }
  for (size_t i = 0; i < n; ++i)
    s.loads[i].promise.deliver(std::move(results[i]));
  s.loads.erase(s.loads.begin(), s.loads.begin() + static_cast<std::ptrdiff_t>(n));
}

void request_load_flush(reader_ptr self) {
  auto& s = self->state;
  if (s.flush_pending || s.loads.empty())
    return;
  s.flush_pending = true;
  self->send(caf::actor_cast<reader_impl>(self), load_flush_atom::value);
}

reader_impl::behavior_type reader_fun(reader_ptr self, reader_config cfg) {
  auto& s = self->state;
  s.cfg = std::move(cfg);
  s.store = std::make_unique<pg_store>(store_options{
    s.cfg.url, s.cfg.connect_timeout, s.cfg.statement_timeout, s.cfg.application_name});
  ensure_connected(s);
  return {
    [self](load_atom, invoice_id& id) -> caf::result<load_result> {
      auto rp = self->make_response_promise<load_result>();
      self->state.loads.push_back(pending_load{std::move(id), rp});
      request_load_flush(self);
      return rp;
    },
    [self](load_flush_atom) {
      self->state.flush_pending = false;
      flush_loads(self);
      request_load_flush(self); // what is left past max_load_batch
    },
    [self](find_atom, const intent_id& id) {
      return guarded<find_result>(self->state,
                                  [&](pg_store& st) { return st.find_by_intent(id); });
    },
    [self](list_atom, const invoice_filter& f) {
      return guarded<list_result>(self->state, [&](pg_store& st) { return st.list(f); });
    },
    [self](due_atom, unix_seconds now, int32_t limit) {
      return guarded<due_result>(self->state,
                                 [&](pg_store& st) { return st.due_for_expiry(now, limit); });
    },
  };
}

struct dispatcher_state {
  static inline const char* name = "billing.reader_dispatcher";
  std::vector<reader_actor> readers;
  size_t next = 0;

  const reader_actor& pick() {
    return readers[next++ % readers.size()];
  }
};

reader_actor::behavior_type dispatcher_fun(reader_actor::stateful_pointer<dispatcher_state> self,
                                           reader_config cfg) {
  const size_t n = cfg.readers;
  for (size_t i = 0; i < n; ++i)
    self->state.readers.push_back(
      caf::actor_cast<reader_actor>(self->spawn<caf::detached + caf::linked>(reader_fun, cfg)));
  return {
    [self](load_atom a, invoice_id& id) {
      return self->delegate(self->state.pick(), a, std::move(id));
    },
    [self](find_atom a, intent_id& id) {
      return self->delegate(self->state.pick(), a, std::move(id));
    },
    [self](list_atom a, invoice_filter& f) {
      return self->delegate(self->state.pick(), a, std::move(f));
    },
    [self](due_atom a, unix_seconds now, int32_t limit) {
      return self->delegate(self->state.pick(), a, now, limit);
    },
  };
}

} // namespace

reader_actor spawn_reader(caf::actor_system& sys, reader_config cfg) {
  reader_impl h = sys.spawn<caf::detached>(reader_fun, std::move(cfg));
  return h;
}

reader_actor spawn_readers(caf::actor_system& sys, reader_config cfg) {
  if (cfg.readers <= 1)
    return spawn_reader(sys, std::move(cfg));
  return sys.spawn(dispatcher_fun, std::move(cfg));
}

} // namespace billing
