#include "actors/supervisor.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>

namespace billing {

namespace detail {

using clock = std::chrono::steady_clock;

struct supervised_child {
  std::string name;
  std::function<caf::actor()> spawn; // spawns one and publishes it in the slot
  std::atomic<bool> up{false};
  std::atomic<bool> stopped{false};  // by stop(): no longer counts as down
  std::atomic<uint64_t> restarts{0};
  // Written by add() before the supervisor actor hears of the child, then
  // by the supervisor actor only.
  caf::actor current;
  clock::time_point started{};
  std::chrono::milliseconds next_delay{0};
  uint64_t gen = 0; // tags restart timers: delayed_send cannot be cancelled
  std::vector<caf::response_promise> stop_waiters;
};

// Shared by the facade (any thread, under mu) and the supervisor actor.
struct supervisor_core {
  restart_policy policy;
  mutable std::mutex mu;
  std::vector<std::shared_ptr<supervised_child>> children; // appended only
  std::atomic<bool> stopping{false};

  std::shared_ptr<supervised_child> at(size_t i) const {
    std::lock_guard lock{mu};
    return children.at(i);
  }
};

} // namespace detail

namespace {

using detail::clock;
using detail::supervised_child;
using detail::supervisor_core;

// Private to the supervisor: sent by its facade and to itself.
using sup_add_atom = caf::atom_constant<caf::atom("supadd")>;
using sup_restart_atom = caf::atom_constant<caf::atom("suprestart")>;
using sup_stop_atom = caf::atom_constant<caf::atom("supstop")>;

struct supervisor_state {
  static inline const char* name = "billing.supervisor";
  std::shared_ptr<supervisor_core> core;
};

using self_ptr = caf::stateful_actor<supervisor_state>*;

void finish_stop(supervised_child& c) {
  for (auto& w : c.stop_waiters)
    w.deliver(true);
  c.stop_waiters.clear();
}

void on_down(self_ptr self, const caf::down_msg& msg) {
  auto& core = *self->state.core;
  std::shared_ptr<supervised_child> c;
  size_t index = 0;
  {
    std::lock_guard lock{core.mu};
    for (size_t i = 0; i < core.children.size() && !c; ++i)
      if (core.children[i]->current && core.children[i]->current.address() == msg.source) {
        c = core.children[i];
        index = i;
      }
  }
  if (!c)
    return; // an instance already replaced
  c->up = false;
  c->current = caf::actor{};
  if (c->stopped || core.stopping) {
    finish_stop(*c);
    return;
  }
  // A normal exit is a deliberate quit(): not restarted, and down from now on.
  if (msg.reason == caf::exit_reason::normal) {
    spdlog::error("{} stopped (normal exit); not restarted", c->name);
    return;
  }
  auto reason = self->system().render(msg.reason);
  auto& p = core.policy;
  if (c->next_delay.count() == 0 || clock::now() - c->started >= p.stable_after)
    c->next_delay = p.backoff_min;
  auto wait = c->next_delay;
  c->next_delay = std::min(wait * 2, p.backoff_max);
  spdlog::warn("{} died ({}); restarting in {} ms", c->name, reason, wait.count());
  self->delayed_send(self, wait, sup_restart_atom::value, index, ++c->gen);
}

caf::behavior supervisor_fun(self_ptr self, std::shared_ptr<supervisor_core> core) {
  self->state.core = std::move(core);
  self->set_down_handler([self](caf::down_msg& msg) { on_down(self, msg); });
  return {
    // A child spawned by add(). Monitoring one that is already dead
    // delivers its DOWN at once, so no death goes unseen.
    [self](sup_add_atom, size_t index) {
      self->monitor(self->state.core->at(index)->current);
    },
    [self](sup_restart_atom, size_t index, uint64_t gen) {
      auto c = self->state.core->at(index);
      if (gen != c->gen || c->stopped || self->state.core->stopping)
        return;
      c->current = c->spawn();
      c->started = clock::now();
      self->monitor(c->current);
      ++c->restarts;
      c->up = true;
      spdlog::info("{} restarted", c->name);
    },
    // Answers once the child has exited (at once if it is not running).
    [self](sup_stop_atom, size_t index) {
      auto c = self->state.core->at(index);
      c->stopped = true;
      ++c->gen; // a restart already scheduled does not happen
      auto rp = self->make_response_promise();
      if (!c->up) {
        rp.deliver(true);
        return rp;
      }
      c->stop_waiters.push_back(rp);
      self->send_exit(c->current, caf::exit_reason::user_shutdown);
      return rp;
    },
  };
}

} // namespace

supervisor::supervisor(caf::actor_system& sys, restart_policy policy)
  : sys_(sys), core_(std::make_shared<supervisor_core>()) {
  policy.backoff_min = std::max(policy.backoff_min, std::chrono::milliseconds{1});
  policy.backoff_max = std::max(policy.backoff_max, policy.backoff_min);
  core_->policy = policy;
  actor_ = sys.spawn(supervisor_fun, core_);
}

supervisor::~supervisor() {
  stop();
}

void supervisor::add(std::string name, std::function<caf::actor()> spawn) {
  auto c = std::make_shared<supervised_child>();
  c->name = std::move(name);
  c->spawn = std::move(spawn);
  c->current = c->spawn();
  c->started = clock::now();
  c->up = true;
  size_t index = 0;
  {
    std::lock_guard lock{core_->mu};
    index = core_->children.size();
    core_->children.push_back(c);
  }
  caf::anon_send(actor_, sup_add_atom::value, index);
}

bool supervisor::all_up() const {
  std::lock_guard lock{core_->mu};
  return std::all_of(core_->children.begin(), core_->children.end(),
                     [](const auto& c) { return c->up || c->stopped; });
}

std::vector<std::string> supervisor::down() const {
  std::vector<std::string> names;
  std::lock_guard lock{core_->mu};
  for (auto& c : core_->children)
    if (!c->up && !c->stopped)
      names.push_back(c->name);
  return names;
}

uint64_t supervisor::restarts(std::string_view name) const {
  std::lock_guard lock{core_->mu};
  for (auto& c : core_->children)
    if (c->name == name)
      return c->restarts;
  return 0;
}

void supervisor::stop(const std::string& name) {
  if (!actor_)
    return;
  std::optional<size_t> index;
  {
    std::lock_guard lock{core_->mu};
    for (size_t i = 0; i < core_->children.size(); ++i)
      if (core_->children[i]->name == name)
        index = i;
  }
  if (!index) {
    spdlog::error("supervisor: no child named {}", name);
    return;
  }
  caf::scoped_actor self{sys_};
  self->request(actor_, core_->policy.stop_timeout, sup_stop_atom::value, *index)
    .receive([](bool) {},
             [&](caf::error& err) {
               spdlog::warn("{} did not stop in time: {}", name, sys_.render(err));
             });
}

void supervisor::stop() {
  if (!actor_)
    return;
  core_->stopping = true; // from here on nothing restarts
  size_t n = 0;
  {
    std::lock_guard lock{core_->mu};
    n = core_->children.size();
  }
  for (size_t i = n; i-- > 0;) {
    auto c = core_->at(i);
    if (!c->stopped)
      stop(c->name);
  }
  caf::scoped_actor self{sys_};
  self->send_exit(actor_, caf::exit_reason::user_shutdown);
  self->wait_for(actor_);
  actor_ = caf::actor{};
}

} // namespace billing
