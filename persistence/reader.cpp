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

struct reader_state {
  static inline const char* name = "billing.reader";

  reader_config cfg;
  std::unique_ptr<pg_store> store;
  std::chrono::milliseconds backoff{0};
  clock::time_point next_attempt{};
};

using reader_ptr = reader_actor::stateful_pointer<reader_state>;

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

// Runs `op` if the store is usable; after a failure that dropped the
// connection, the next attempt waits for the backoff.
template <class Result, class Op>
Result guarded(reader_state& s, Op op) {
  if (auto f = ensure_connected(s))
    return std::move(*f);
  Result r = op(*s.store);
  if (!s.store->connected()) {
    s.backoff = s.cfg.backoff_min;
    s.next_attempt = clock::now() + s.backoff;
  }
  return r;
}

reader_actor::behavior_type reader_fun(reader_ptr self, reader_config cfg) {
  auto& s = self->state;
  s.cfg = std::move(cfg);
  s.store = std::make_unique<pg_store>(store_options{
    s.cfg.url, s.cfg.connect_timeout, s.cfg.statement_timeout, s.cfg.application_name});
  ensure_connected(s);
  return {
    [self](load_atom, const invoice_id& id) {
      return guarded<load_result>(self->state, [&](pg_store& st) { return st.load(id); });
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
    self->state.readers.push_back(self->spawn<caf::detached + caf::linked>(reader_fun, cfg));
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
  return sys.spawn<caf::detached>(reader_fun, std::move(cfg));
}

reader_actor spawn_readers(caf::actor_system& sys, reader_config cfg) {
  if (cfg.readers <= 1)
    return spawn_reader(sys, std::move(cfg));
  return sys.spawn(dispatcher_fun, std::move(cfg));
}

} // namespace billing
