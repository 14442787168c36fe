// The actor tier: invoice actors that hold nothing go at once, the
// passivation race loses no request, and a dead invoice actor answers its
// callers and is replaced by a fresh one.

#include "actor_fixture.hpp"

#include <catch2/catch.hpp>

#include <barrier>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

using namespace billing;
using namespace billing::test;
using namespace std::chrono_literals;

namespace {

void raise_max(std::atomic<int64_t>& max, int64_t v) {
  auto seen = max.load();
  while (v > seen && !max.compare_exchange_weak(seen, v)) {
  }
}

} // namespace

TEST_CASE("reads and events for invoices that do not exist leave no actor behind",
          "[actors][passivation]") {
  fixture f;
  constexpr size_t total = 50'000;
  constexpr size_t concurrency = 64;
  std::atomic<size_t> issued{0};
  std::atomic<size_t> answered{0};
  std::atomic<size_t> wrong{0};
  std::atomic<int64_t> max_live{0};
  std::mutex mu;
  std::condition_variable cv;
  const auto t = f.now->load();

  // Each answer issues the next request, so at most `concurrency` are in
  // flight; every 8th is a provider event, the others are reads.
  std::function<void()> issue;
  auto done = [&](bool right) {
    if (!right)
      ++wrong;
    raise_max(max_live, f.registry->live_actors());
    issue();
    // Last: once all are counted, no callback touches this test's locals.
    std::lock_guard lock{mu};
    if (++answered == total)
      cv.notify_all();
  };
  issue = [&] {
    auto i = issued.fetch_add(1);
    if (i >= total)
      return;
    auto id = derive_invoice_id("wf_nobody", "shp_" + std::to_string(i));
    if (i % 8 == 7) {
      auto in = f.make_event(event_kind::payment_succeeded, "evt_nobody_" + std::to_string(i), t);
      f.gateway->handle_event(id, in, [&done](webhook_result r) {
        done(ok(r) && std::get<webhook_reply>(r).result == outcome::ignored_unknown_invoice);
      });
    } else {
      f.gateway->get_invoice(id, [&done](invoice_result r) {
        done(!ok(r) && std::get<failure>(r).code == billing_errc::not_found);
      });
    }
  };
  for (size_t i = 0; i < concurrency; ++i)
    issue();
  {
    std::unique_lock lock{mu};
    auto deadline = std::chrono::steady_clock::now() + 180s;
    while (answered.load() < total && std::chrono::steady_clock::now() < deadline) {
      cv.wait_for(lock, 1ms);
      raise_max(max_live, f.registry->live_actors());
    }
  }
  REQUIRE(answered.load() == total);
  CHECK(wrong.load() == 0);
  WARN("most invoice actors alive at once: " << max_live.load() << " (" << concurrency
                                             << " requests in flight)");
  // In flight, plus the few that answered and whose idle report the shard
  // has not read yet.
  CHECK(max_live.load() <= static_cast<int64_t>(concurrency + 16));
  CHECK(eventually([&] { return f.registry->live_actors() == 0; }));
  std::lock_guard lock{f.db->mtx};
  CHECK(f.db->invoices.empty());
  CHECK(f.db->events.size() == total / 8);
}

TEST_CASE("get, create and events racing on the same few ids lose no request",
          "[actors][passivation]") {
  fixture f;
  constexpr int rounds = 120;
  constexpr int threads = 4;
  constexpr int ids = 3;
  constexpr int steps = 6;
  std::barrier sync{threads};
  std::mutex mu;
  std::vector<std::string> errors;
  std::map<std::string, std::string> secrets; // invoice id -> client secret
  auto error = [&](std::string what) {
    std::lock_guard lock{mu};
    errors.push_back(std::move(what));
  };
  // Waits for one answer; a lost request would surface as a timeout.
  auto wait = [](auto call, auto& out) {
    using T = std::decay_t<decltype(out)>;
    auto p = std::make_shared<std::promise<T>>();
    auto fut = p->get_future();
    call([p](T r) { p->set_value(std::move(r)); });
    if (fut.wait_for(10s) != std::future_status::ready)
      return false;
    out = fut.get();
    return true;
  };
  auto worker = [&](int n) {
    std::mt19937 rng{static_cast<unsigned>(n) * 7919u};
    for (int r = 0; r < rounds; ++r) {
      sync.arrive_and_wait(); // every thread on the same fresh ids at once
      const std::string wf = "wf_race_" + std::to_string(r);
      for (int s = 0; s < steps; ++s) {
        const std::string shp = "shp_" + std::to_string(rng() % ids);
        const auto id = derive_invoice_id(wf, shp);
        const auto where = wf + "/" + shp;
        switch (rng() % 3) {
          case 0: {
            invoice_result got;
            if (!wait([&](auto cb) { f.gateway->get_invoice(id, cb); }, got))
              error("get " + where + ": no answer");
            else if (!ok(got) && std::get<failure>(got).code != billing_errc::not_found)
              error("get " + where + ": " + std::get<failure>(got).message);
            break;
          }
          case 1: {
            invoice_result got;
            if (!wait([&](auto cb) { f.gateway->create_invoice(request(shp, 12'500, wf), cb); }, got)) {
              error("create " + where + ": no answer");
            } else if (!ok(got)) {
              error("create " + where + ": " + std::get<failure>(got).message);
            } else {
              std::lock_guard lock{mu};
              auto& secret = std::get<invoice_view>(got).client_secret;
              auto [it, fresh] = secrets.emplace(id.str(), secret);
              if (!fresh && it->second != secret)
                errors.push_back("create " + where + ": another client secret");
            }
            break;
          }
          default: {
            webhook_result got;
            auto in = f.make_event(event_kind::payment_failed,
                                   "evt_race_" + std::to_string(n) + "_" + std::to_string(r) + "_"
                                     + std::to_string(s),
                                   f.now->load());
            if (!wait([&](auto cb) { f.gateway->handle_event(id, in, cb); }, got))
              error("event " + where + ": no answer");
            else if (!ok(got))
              error("event " + where + ": " + std::get<failure>(got).message);
            break;
          }
        }
      }
    }
  };
  std::vector<std::thread> pool;
  for (int n = 0; n < threads; ++n)
    pool.emplace_back(worker, n);
  for (auto& th : pool)
    th.join();
  INFO((errors.empty() ? std::string{} : errors.front()));
  CHECK(errors.empty());
  REQUIRE_FALSE(secrets.empty());
  std::lock_guard lock{f.db->mtx};
  for (auto& [id, secret] : secrets) {
    REQUIRE(f.db->invoices.count(id) == 1);
    CHECK(f.db->invoices.at(id).inv.version >= 1);
  }
}

TEST_CASE("an invoice actor that dies answers its callers and is replaced", "[actors][supervision]") {
  fixture f{60s, 30'000ms};
  auto created = f.create(request());
  REQUIRE(ok(created));
  auto id = std::get<invoice_view>(created).inv.id;
  REQUIRE(f.registry->live_actors() == 1);
  {
    std::lock_guard lock{f.gate->mtx};
    f.gate->hold = true; // the next write waits: its request stays in progress
  }
  constexpr int gets = 20;
  caf::scoped_actor self{*f.sys};
  // The event, then `gets` reads, straight through the registry; each
  // answer (0 answered, 1 unavailable, 2 anything else) comes back here.
  auto report = caf::actor_cast<caf::actor>(self);
  auto code_of = [](const failure* f) {
    return f == nullptr ? 0 : f->code == billing_errc::unavailable ? 1 : 2;
  };
  f.registry->send(id, event_atom::value, f.make_event(event_kind::payment_failed, "evt_k", f.now->load()),
                   event_reply{[report, code_of](webhook_result r) {
                     caf::anon_send(report, 0, code_of(std::get_if<failure>(&r)));
                   }});
  for (int i = 1; i <= gets; ++i)
    f.registry->send(id, get_atom::value, invoice_reply{[report, code_of, i](invoice_result r) {
                       caf::anon_send(report, i, code_of(std::get_if<failure>(&r)));
                     }});
  REQUIRE(eventually([&] {
    std::lock_guard lock{f.gate->mtx};
    return f.gate->requesters.size() == 1;
  }));
  caf::strong_actor_ptr victim;
  {
    std::lock_guard lock{f.gate->mtx};
    victim = f.gate->requesters.front();
  }
  // It crashes (an exception) in the middle of its work: right after the
  // held write is answered.
  f.ctx->fault_hook = [](const char* where, const invoice_id&) {
    if (std::string_view{where} == "invoice.after_write")
      throw std::runtime_error("injected fault");
  };
  victim.reset();
  const auto killed = std::chrono::steady_clock::now();
  {
    std::lock_guard lock{f.gate->mtx};
    f.gate->hold = false;
    f.gate->requesters.clear();
  }
  caf::anon_send(caf::actor_cast<holding_writer_actor>(f.ctx->writers.front()->get()), stop_atom::value);
  std::map<int, int> answers;
  for (int n = 0; n <= gets; ++n) {
    bool timed_out = false;
    self->receive([&](int i, int code) { answers[i] = code; },
                  caf::after(5s) >> [&] { timed_out = true; });
    if (timed_out)
      for (auto& [i, code] : answers)
        UNSCOPED_INFO("answered " << i << " code " << code);
    REQUIRE_FALSE(timed_out);
  }
  CHECK(std::chrono::steady_clock::now() - killed < 2s);
  REQUIRE(answers.size() == gets + 1);
  for (auto& [i, code] : answers) {
    INFO("request " << i);
    CHECK(code == 1);
  }
  f.ctx->fault_hook = nullptr;
  // The registry forgot it; the next request gets a fresh actor from the store.
  CHECK(eventually([&] { return f.registry->live_actors() == 0; }));
  {
    std::lock_guard lock{f.gate->mtx};
    f.gate->hold = false;
  }
  auto again = f.get(id);
  REQUIRE(ok(again));
  CHECK(std::get<invoice_view>(again).inv.status == invoice_status::pending);
  CHECK(f.registry->live_actors() == 1);
  auto retried = f.event(id, event_kind::payment_failed, "evt_k", f.now->load());
  REQUIRE(ok(retried));
  std::lock_guard lock{f.db->mtx};
  CHECK(f.db->events.count("evt_k") == 1);
}

TEST_CASE("messages wait while a write is in flight: the mailbox is the queue", "[actors]") {
  fixture f{60s, 30'000ms};
  auto created = f.create(request());
  REQUIRE(ok(created));
  auto id = std::get<invoice_view>(created).inv.id;
  {
    std::lock_guard lock{f.gate->mtx};
    f.gate->hold = true;
  }
  std::promise<webhook_result> ev_done;
  std::promise<invoice_result> get_done;
  f.registry->send(id, event_atom::value, f.make_event(event_kind::payment_failed, "evt_q", f.now->load()),
                   event_reply{[&](webhook_result r) { ev_done.set_value(std::move(r)); }});
  REQUIRE(eventually([&] {
    std::lock_guard lock{f.gate->mtx};
    return f.gate->requesters.size() == 1;
  }));
  f.registry->send(id, get_atom::value, invoice_reply{[&](invoice_result r) { get_done.set_value(std::move(r)); }});
  auto get_future = get_done.get_future();
  // The get is not answered while the event's write is held...
  CHECK(get_future.wait_for(300ms) == std::future_status::timeout);
  {
    std::lock_guard lock{f.gate->mtx};
    f.gate->hold = false;
    f.gate->requesters.clear();
  }
  caf::anon_send(caf::actor_cast<holding_writer_actor>(f.ctx->writers.front()->get()), stop_atom::value);
  // ...and is answered after it, with the state the write left.
  REQUIRE(get_future.wait_for(5s) == std::future_status::ready);
  CHECK(ev_done.get_future().wait_for(5s) == std::future_status::ready);
}

TEST_CASE("the registry under many threads: routing races retirement, nothing is lost", "[actors][passivation]") {
  // Ids without a row retire after every message, so each send below races
  // a retirement of the same id on another thread.
  fixture f;
  constexpr int threads = 8;
  constexpr int per_thread = 5'000;
  std::vector<invoice_id> ids;
  for (int i = 0; i < 4; ++i)
    ids.push_back(derive_invoice_id("wf_hammer", "shp_" + std::to_string(i)));
  std::atomic<int> answered{0}, wrong{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i)
        f.registry->send(ids[static_cast<size_t>(t + i) % ids.size()], get_atom::value,
                         invoice_reply{[&](invoice_result r) {
                           if (ok(r) || std::get<failure>(r).code != billing_errc::not_found)
                             ++wrong;
                           ++answered;
                         }});
    });
  for (auto& th : pool)
    th.join();
  CHECK(eventually([&] { return answered.load() == threads * per_thread; }, 20s));
  CHECK(wrong == 0);
  CHECK(eventually([&] { return f.registry->live_actors() == 0; }));
}
