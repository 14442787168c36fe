#include "persistence/writer.hpp"

#include "persistence/pg_store.hpp"
#include "persistence/pg_util.hpp"

#include <caf/actor_cast.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <iterator>
#include <vector>

namespace billing {

namespace {

// Private to the writer: it sends these to itself only.
using flush_atom = caf::atom_constant<caf::atom("wflush")>;
using retry_atom = caf::atom_constant<caf::atom("wretry")>;

using writer_impl = writer_actor::extend<caf::reacts_to<flush_atom>,
                                         caf::reacts_to<retry_atom, uint64_t>>;

using clock = std::chrono::steady_clock;

struct queued_write {
  write_command cmd;
  caf::typed_response_promise<write_status> promise;
};

struct writer_state {
  static inline const char* name = "billing.writer";

  writer_config cfg;
  std::shared_ptr<persistence_stats> stats;
  std::unique_ptr<pg_store> store;
  std::deque<queued_write> queue; // received, not yet answered
  bool flush_pending = false;     // a flush marker is in the mailbox
  // This writer's share of the shared gauges, so it can update and (on
  // exit) withdraw them without knowing the other writers.
  bool up = false;
  size_t reported_queued = 0;
  // Reconnect backoff. retry_gen tags retry timers: delayed_send cannot be
  // cancelled, so a timer whose generation is not current is ignored.
  std::chrono::milliseconds backoff{0};
  clock::time_point next_attempt{};
  uint64_t retry_gen = 0;

  // Runs in on_exit(), however the writer stops (an exit message, a kill,
  // an exception): CAF 0.17 has no broken_promise, so a write still queued
  // would leave its invoice actor waiting forever. Nothing queued here was
  // committed (a batch is committed and answered in one handler), so
  // `unavailable` is the truth. Also withdraws this writer from the gauges,
  // so a restarted one does not count twice.
  ~writer_state();
};

using self_ptr = writer_impl::stateful_pointer<writer_state>;

writer_state::~writer_state() {
  if (!stats)
    return;
  if (!queue.empty())
    spdlog::warn("persistence writer: stopping with {} write(s) not committed; answering "
                 "unavailable",
                 queue.size());
  for (auto& w : queue) {
    ++stats->unavailable;
    w.promise.deliver(write_status::unavailable);
  }
  stats->queued -= reported_queued;
  if (up)
    --stats->writers_up;
  --stats->writers;
}

void count(persistence_stats& s, write_status st) {
  switch (st) {
    case write_status::committed: ++s.committed; break;
    case write_status::duplicate_event: ++s.duplicates; break;
    case write_status::version_conflict: ++s.conflicts; break;
    case write_status::unavailable: ++s.unavailable; break;
    case write_status::overloaded: ++s.overloaded; break;
  }
}

void set_up(self_ptr self, bool up) {
  auto& s = self->state;
  if (s.up == up)
    return;
  s.up = up;
  if (up)
    ++s.stats->writers_up;
  else
    --s.stats->writers_up;
}

void report_queued(self_ptr self) {
  auto& s = self->state;
  auto n = s.queue.size();
  if (n >= s.reported_queued)
    s.stats->queued += n - s.reported_queued;
  else
    s.stats->queued -= s.reported_queued - n;
  s.reported_queued = n;
}

void answer(self_ptr self, queued_write& w, write_status st) {
  count(*self->state.stats, st);
  w.promise.deliver(st);
}

void arm_retry(self_ptr self) {
  auto& s = self->state;
  s.next_attempt = clock::now() + s.backoff;
  self->delayed_send(caf::actor_cast<writer_impl>(self), s.backoff, retry_atom::value,
                     ++s.retry_gen);
}

// The connection is gone: schedule the first reconnect attempt.
void went_down(self_ptr self) {
  auto& s = self->state;
  if (s.up)
    spdlog::warn("persistence writer: database connection lost; answering unavailable and "
                 "reconnecting");
  set_up(self, false);
  s.backoff = s.cfg.backoff_min;
  arm_retry(self);
}

// Blocks for at most connect_timeout. On failure doubles the backoff.
bool try_connect(self_ptr self) {
  auto& s = self->state;
  auto r = s.store->connect();
  if (ok(r)) {
    if (!s.up && s.backoff.count() > 0)
      spdlog::info("persistence writer: database connection restored");
    set_up(self, true);
    s.backoff = std::chrono::milliseconds{0};
    s.next_attempt = clock::time_point{};
    return true;
  }
  if (s.backoff.count() == 0)
    spdlog::warn("persistence writer: cannot connect to {}: {}", pg_detail::redact(s.cfg.url),
                 std::get<failure>(r).message);
  set_up(self, false);
  s.backoff = s.backoff.count() == 0 ? s.cfg.backoff_min
                                      : std::min(s.backoff * 2, s.cfg.backoff_max);
  arm_retry(self);
  return false;
}

void fail_queue(self_ptr self, write_status st) {
  auto& s = self->state;
  for (auto& w : s.queue)
    answer(self, w, st);
  s.queue.clear();
  report_queued(self);
}

// Commits the oldest max_batch queued commands and answers them.
void commit_one_batch(self_ptr self) {
  auto& s = self->state;
  if (!s.store->connected() && (clock::now() < s.next_attempt || !try_connect(self))) {
    fail_queue(self, write_status::unavailable);
    return;
  }
  const size_t n = std::min(s.queue.size(), s.cfg.max_batch);
  std::vector<write_command> cmds;
  cmds.reserve(n);
  for (size_t i = 0; i < n; ++i)
    cmds.push_back(std::move(s.queue[i].cmd));
  auto statuses = s.store->write_batch(cmds);
  auto& stats = *s.stats;
  ++stats.batches;
  stats.commands += n;
  if (n > stats.max_batch_seen.load())
    stats.max_batch_seen = n;
  bool signals = false;
  // Out of the queue (and the gauge) before the answers, so that whoever
  // got an answer never sees its write still counted as queued.
  std::vector<queued_write> batch{std::make_move_iterator(s.queue.begin()),
                                  std::make_move_iterator(s.queue.begin() + static_cast<std::ptrdiff_t>(n))};
  s.queue.erase(s.queue.begin(), s.queue.begin() + static_cast<std::ptrdiff_t>(n));
  report_queued(self);
  for (size_t i = 0; i < n; ++i) {
    signals = signals || (statuses[i] == write_status::committed && cmds[i].signal);
    answer(self, batch[i], statuses[i]);
  }
  if (signals && s.cfg.listener) {
    if (auto bridge = s.cfg.listener())
      caf::anon_send(bridge, nudge_atom::value);
  }
  if (!s.store->connected()) {
    went_down(self);
    fail_queue(self, write_status::unavailable);
  }
}

void request_flush(self_ptr self) {
  auto& s = self->state;
  if (s.flush_pending || s.queue.empty())
    return;
  s.flush_pending = true;
  // Behind every write already in the mailbox: they join this batch.
  self->send(caf::actor_cast<writer_impl>(self), flush_atom::value);
}

writer_impl::behavior_type writer_fun(self_ptr self, writer_config cfg,
                                      std::shared_ptr<persistence_stats> stats) {
  auto& s = self->state;
  s.cfg = std::move(cfg);
  s.cfg.max_batch = std::max<size_t>(s.cfg.max_batch, 1);
  s.cfg.max_pending = std::max(s.cfg.max_pending, s.cfg.max_batch);
  s.stats = std::move(stats);
  s.store = std::make_unique<pg_store>(store_options{
    s.cfg.url, s.cfg.connect_timeout, s.cfg.statement_timeout, s.cfg.application_name});
  try_connect(self);

  self->set_exit_handler([self](const caf::exit_msg& msg) {
    // The last flush: whatever was received gets its answer before we go.
    while (!self->state.queue.empty())
      commit_one_batch(self);
    self->quit(msg.reason); // ~writer_state withdraws it from the gauges
  });

  return {
    [self](write_atom, write_command& cmd) -> caf::result<write_status> {
      auto& s = self->state;
      if (!s.store->connected() && clock::now() < s.next_attempt) {
        ++s.stats->unavailable;
        return write_status::unavailable;
      }
      if (s.queue.size() >= s.cfg.max_pending) {
        ++s.stats->overloaded;
        return write_status::overloaded;
      }
      auto rp = self->make_response_promise<write_status>();
      s.queue.push_back(queued_write{std::move(cmd), rp});
      report_queued(self);
      request_flush(self);
      return rp;
    },
    [self](flush_atom) {
      self->state.flush_pending = false;
      if (self->state.queue.empty())
        return;
      commit_one_batch(self);
      // Writes that arrived during the commit are taken in before the next
      // marker, so the next batch is everything that queued meanwhile.
      request_flush(self);
    },
    [self](retry_atom, uint64_t gen) {
      auto& s = self->state;
      if (gen != s.retry_gen || s.store->connected())
        return;
      if (try_connect(self))
        request_flush(self);
    },
  };
}

} // namespace

writer_actor spawn_writer(caf::actor_system& sys, writer_config cfg,
                          std::shared_ptr<persistence_stats> stats) {
  if (!stats)
    stats = std::make_shared<persistence_stats>();
  // Counted before it runs, so db_up() stays false until every writer of a
  // pool has connected, not just the first to start.
  ++stats->writers;
  writer_impl h = sys.spawn<caf::detached>(writer_fun, std::move(cfg), std::move(stats));
  return h;
}

std::vector<writer_actor> spawn_writers(caf::actor_system& sys, const writer_config& cfg,
                                        size_t count, std::shared_ptr<persistence_stats> stats) {
  if (!stats)
    stats = std::make_shared<persistence_stats>();
  std::vector<writer_actor> writers;
  for (size_t i = 0; i < std::max<size_t>(count, 1); ++i)
    writers.push_back(spawn_writer(sys, pooled_writer_config(cfg, i, count), stats));
  return writers;
}

writer_config pooled_writer_config(const writer_config& cfg, size_t index, size_t count) {
  auto c = cfg;
  if (count > 1)
    c.application_name += "-" + std::to_string(index + 1);
  return c;
}

} // namespace billing
