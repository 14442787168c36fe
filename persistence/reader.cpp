#include "persistence/reader.hpp"

#include "persistence/pg_store.hpp"
#include "persistence/guarded_store.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>
#include <memory>
#include <optional>
#include <vector>

namespace billing {

namespace {

// Private to the reader: it sends this to itself only.
using load_flush_atom = caf::atom_constant<caf::atom("rflush")>;
using reader_impl = reader_actor::extend<caf::reacts_to<load_flush_atom>>;

struct pending_load {
  invoice_id id;
  caf::typed_response_promise<load_result> promise;
};

struct reader_state {
  static inline const char* name = "billing.reader";

  std::optional<pg_detail::guarded_store<pg_store>> db;
  // Loads are batched like the writer's commands: the first one sends a
  // flush marker, and every load already in the mailbox joins its query.
  std::vector<pending_load> loads;
  bool flush_pending = false;

  // Runs in on_exit(), however the reader stops: a load still queued is
  // answered (CAF 0.17 has no broken_promise; its invoice actor would wait
  // forever).
  ~reader_state() {
    for (auto& l : loads)
      l.promise.deliver(load_result{fail(billing_errc::unavailable, "the reader stopped")});
  }
};

using reader_ptr = reader_impl::stateful_pointer<reader_state>;

// Most ids in one query.
constexpr size_t max_load_batch = 256;

// Answers the queued loads (at most max_load_batch) with one query.
void flush_loads(reader_ptr self) {
  auto& s = self->state;
  const size_t n = std::min(s.loads.size(), max_load_batch);
  std::vector<invoice_id> ids;
  ids.reserve(n);
  for (size_t i = 0; i < n; ++i)
    ids.push_back(s.loads[i].id);
  std::vector<load_result> results;
  if (auto down = s.db->ensure_connected()) {
    results.assign(n, load_result{*down});
  } else {
    results = s.db->store().load_many(ids);
    s.db->after_use();
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
  auto store = std::make_unique<pg_store>(
    store_options{cfg.url, cfg.connect_timeout, cfg.statement_timeout, cfg.application_name});
  auto& db = self->state.db.emplace(std::move(store), "persistence reader", cfg.url,
                                    cfg.backoff_min, cfg.backoff_max);
  db.ensure_connected();
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
      return self->state.db->run<find_result>([&](pg_store& st) { return st.find_by_intent(id); });
    },
    [self](list_atom, const invoice_filter& f) {
      return self->state.db->run<list_result>([&](pg_store& st) { return st.list(f); });
    },
    [self](due_atom, unix_seconds now, int32_t limit) {
      return self->state.db->run<due_result>([&](pg_store& st) { return st.due_for_expiry(now, limit); });
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
