// The writer and the reader pool under actors/supervisor, killed while
// requests are in flight, against a real PostgreSQL: every caller gets an
// answer, the supervisor brings them back, and nothing answered committed
// is lost or doubled.

#include "actors/supervisor.hpp"
#include "persistence/pg_store.hpp"
#include "persistence/reader.hpp"
#include "persistence/writer.hpp"

#include "actor_support.hpp"
#include "test_db.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <thread>

using namespace billing;
using namespace billing::test;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 10'000ms) {
  auto end = steady::now() + timeout;
  while (steady::now() < end) {
    if (pred())
      return true;
    std::this_thread::sleep_for(1ms);
  }
  return pred();
}

// A transition as an invoice actor sends it: new invoice + event + signal.
write_command full_cmd(int i) {
  auto s = sample_invoice();
  auto c = create_cmd(s);
  c.event = sample_event("evt_s_" + std::to_string(i) + "_" + s.inv.id.str(), s.inv.id);
  c.signal = sample_signal(s.inv.id);
  return c;
}

constexpr int committed = static_cast<int>(write_status::committed);
constexpr int unavailable = static_cast<int>(write_status::unavailable);
constexpr int bounced = -1; // the request itself failed: the writer was gone

// Loads `ids` (each `rounds` times) and reports (index, code) per answer:
// 0 loaded, 1 failure{unavailable} (answered by the reader, which held the
// load when it died), 3 bounced by CAF (sec::request_receiver_down: in its
// mailbox, or sent after it died), 2 anything else. With `kill`, kills the
// reader right behind its loads.
caf::behavior load_client(caf::event_based_actor* self, reader_actor reader,
                          std::vector<invoice_id> ids, int rounds, caf::actor report,
                          bool kill) {
  int n = 0;
  for (int r = 0; r < rounds; ++r)
    for (auto& id : ids) {
      int i = n++;
      self->request(reader, 60s, load_atom::value, id)
        .then(
          [self, report, i](load_result& res) {
            int code = 0;
            if (!ok(res))
              code = std::get<failure>(res).code == billing_errc::unavailable ? 1 : 2;
            else if (!std::get<0>(res))
              code = 2;
            self->send(report, i, code);
          },
          [self, report, i](caf::error& e) {
            self->send(report, i, e == caf::sec::request_receiver_down ? 3 : 2);
          });
    }
  if (kill)
    self->send_exit(reader, caf::exit_reason::kill);
  return {[](stop_atom) {}};
}

} // namespace

TEST_CASE("a killed writer is restarted; committed writes are in the database exactly once",
          "[writer][supervision]") {
  scratch_db db;
  auto stats = std::make_shared<persistence_stats>();
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  {
    supervisor sup{sys, restart_policy{.backoff_min = 300ms}};
    auto writer = sup.supervise<writer_actor>("writer 0", [&] {
      return spawn_writer(sys, writer_config{.url = db.url()}, stats);
    });
    REQUIRE(eventually([&] { return stats->db_up(); }));
    caf::scoped_actor self{sys};
    constexpr int total = 3'000;
    std::map<std::string, write_command> by_id;
    std::vector<write_command> cmds;
    for (int i = 0; i < total; ++i) {
      auto c = full_cmd(i);
      by_id.emplace(c.change->next.inv.id.str(), c);
      cmds.push_back(std::move(c));
    }
    spawn_clients(sys, writer->get(), std::move(cmds), 50, caf::actor_cast<caf::actor>(self));
    // Kill it mid-stream: some batches committed, the rest queued or in the mailbox.
    REQUIRE(eventually([&] { return stats->committed.load() >= 200; }));
    caf::anon_send_exit(writer->get(), caf::exit_reason::kill);
    const auto killed = steady::now();
    REQUIRE(eventually([&] { return !sup.all_up(); }, 2'000ms)); // until the 300 ms backoff ends
    std::map<int, size_t> by_status;
    std::set<std::string> done;
    std::vector<std::string> retry;
    for (int i = 0; i < total; ++i) {
      bool timed_out = false;
      self->receive(
        [&](const invoice_id& id, int st) {
          ++by_status[st];
          if (st == committed)
            done.insert(id.str());
          else
            retry.push_back(id.str());
        },
        caf::after(30s) >> [&] { timed_out = true; });
      if (timed_out)
        FAIL("only " << i << " of " << total << " writes were answered");
    }
    CHECK(steady::now() - killed < 5s);
    WARN("committed " << by_status[committed] << ", unavailable " << by_status[unavailable]
                      << ", bounced " << by_status[bounced]);
    CHECK(by_status[committed] + by_status[unavailable] + by_status[bounced] == total);
    CHECK(by_status[committed] >= 200);
    CHECK(by_status[unavailable] + by_status[bounced] > 0);
    // Back, on the same stats: the dead writer withdrew itself.
    REQUIRE(eventually([&] { return sup.all_up() && stats->db_up(); }));
    CHECK(stats->writers == 1);
    CHECK(stats->writers_up == 1);
    CHECK(stats->queued == 0);
    // Everything answered committed is there once; nothing else is.
    auto in_db = [&](const std::string& table, const std::string& column) {
      std::set<std::string> ids;
      auto conn = db.connect();
      pqxx::nontransaction tx{*conn};
      for (auto row : tx.exec("SELECT " + column + "::text FROM " + table))
        ids.insert(row[0].as<std::string>());
      return ids;
    };
    CHECK(in_db("invoices", "id") == done);
    CHECK(db.scalar("SELECT count(*) FROM webhook_events") == static_cast<int64_t>(done.size()));
    CHECK(db.scalar("SELECT count(*) FROM outbox") == static_cast<int64_t>(done.size()));
    // The restarted writer takes the rest.
    std::vector<write_command> again;
    for (auto& id : retry)
      again.push_back(by_id.at(id));
    spawn_clients(sys, writer->get(), std::move(again), 10, caf::actor_cast<caf::actor>(self));
    size_t retried_ok = 0;
    for (size_t i = 0; i < retry.size(); ++i)
      self->receive([&](const invoice_id&, int st) { retried_ok += st == committed; },
                    caf::after(30s) >> [&] { FAIL("a retried write was not answered"); });
    CHECK(retried_ok == retry.size());
    CHECK(db.scalar("SELECT count(*) FROM invoices") == total);
    CHECK(db.scalar("SELECT count(*) FROM webhook_events") == total);
    CHECK(db.scalar("SELECT count(*) FROM outbox") == total);
    CHECK(db.scalar("SELECT count(*) FROM (SELECT invoice_id FROM outbox GROUP BY invoice_id "
                    "HAVING count(*) > 1) d") == 0);
    sup.stop();
    CHECK(stats->writers == 0);
  }
}

TEST_CASE("a killed reader pool is restarted; every load in flight is answered",
          "[reader][supervision]") {
  scratch_db db;
  std::vector<invoice_id> ids;
  {
    pg_store store{store_options{.url = db.url()}};
    REQUIRE(ok(store.connect()));
    std::vector<write_command> cmds;
    for (int i = 0; i < 50; ++i) {
      auto s = sample_invoice();
      ids.push_back(s.inv.id);
      cmds.push_back(create_cmd(s));
    }
    REQUIRE(store.write_batch(cmds) == std::vector<write_status>(50, write_status::committed));
  }
  // One reader: the slot holds it. Two: the slot holds the dispatcher, and
  // the linked readers die with it.
  size_t pool = GENERATE(size_t{1}, size_t{2});
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  {
    supervisor sup{sys, restart_policy{.backoff_min = 300ms}};
    auto reader = sup.supervise<reader_actor>("reader", [&] {
      return spawn_readers(sys, reader_config{.url = db.url(), .readers = pool});
    });
    caf::scoped_actor self{sys};
    constexpr int rounds = 400; // 20,000 loads
    const int total = rounds * static_cast<int>(ids.size());
    std::map<int, int> by_code;
    int got = 0;
    auto take = [&] {
      bool timed_out = false;
      self->receive([&](int, int code) { ++by_code[code]; },
                    caf::after(30s) >> [&] { timed_out = true; });
      if (timed_out)
        FAIL("only " << got << " of " << total << " loads were answered");
      ++got;
    };
    // Served before the kill...
    auto warm = sys.spawn(load_client, reader->get(), ids, 1, caf::actor_cast<caf::actor>(self),
                          false);
    while (got < static_cast<int>(ids.size()))
      take();
    REQUIRE(by_code[0] == static_cast<int>(ids.size()));
    caf::anon_send_exit(warm, caf::exit_reason::user_shutdown);
    by_code.clear();
    got = 0;
    // ...then killed right behind 20,000 loads: those it holds and those
    // still in its mailbox are all answered.
    const auto killed = steady::now();
    auto client = sys.spawn(load_client, reader->get(), ids, rounds,
                            caf::actor_cast<caf::actor>(self), true);
    REQUIRE(eventually([&] { return !sup.all_up(); }, 2'000ms));
    while (got < total)
      take();
    CHECK(steady::now() - killed < 5s);
    WARN(pool << " reader(s): loaded " << by_code[0] << ", answered unavailable by the reader "
              << by_code[1] << ", bounced " << by_code[3]);
    CHECK(by_code[2] == 0);
    CHECK(by_code[1] + by_code[3] > 0); // the kill found loads in flight
    CHECK(by_code[0] + by_code[1] + by_code[3] == total);
    REQUIRE(eventually([&] { return sup.all_up(); }));
    caf::anon_send_exit(client, caf::exit_reason::user_shutdown);
    // Loads after the restart are served.
    by_code.clear();
    got = 0;
    auto after = sys.spawn(load_client, reader->get(), ids, 2, caf::actor_cast<caf::actor>(self),
                           false);
    while (got < 2 * static_cast<int>(ids.size()))
      take();
    CHECK(by_code[0] == 2 * static_cast<int>(ids.size()));
    caf::anon_send_exit(after, caf::exit_reason::user_shutdown);
    sup.stop();
  }
}
