#include "persistence/migrations.hpp"
#include "persistence/writer.hpp"

#include "actor_support.hpp"
#include "test_db.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <thread>

using namespace billing;
using namespace billing::test;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

write_status write_one(caf::scoped_actor& self, const writer_actor& w, write_command cmd) {
  int got = -2;
  self->request(w, std::chrono::seconds{30}, write_atom::value, std::move(cmd))
    .receive([&](write_status s) { got = static_cast<int>(s); },
             [&](caf::error& e) { FAIL("write request failed: " << self->system().render(e)); });
  REQUIRE(got >= 0);
  return static_cast<write_status>(got);
}

// A transition as an invoice actor sends it: new invoice + event + signal.
write_command full_cmd(int i) {
  auto s = sample_invoice();
  auto c = create_cmd(s);
  c.event = sample_event("evt_w_" + std::to_string(i) + "_" + s.inv.id.str(), s.inv.id);
  c.signal = sample_signal(s.inv.id);
  return c;
}

// Collects `n` reports from write_client; fails on a silent requester.
std::map<int, size_t> collect(caf::scoped_actor& self, size_t n,
                              const std::function<void(const invoice_id&, int)>& each = {}) {
  std::map<int, size_t> by_status;
  for (size_t i = 0; i < n; ++i) {
    bool timed_out = false;
    self->receive(
      [&](const invoice_id& id, int st) {
        ++by_status[st];
        if (each)
          each(id, st);
      },
      caf::after(std::chrono::seconds{30}) >> [&] { timed_out = true; });
    if (timed_out)
      FAIL("only " << i << " of " << n << " writes were answered");
  }
  return by_status;
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

constexpr int committed = static_cast<int>(write_status::committed);
constexpr int unavailable = static_cast<int>(write_status::unavailable);
constexpr int overloaded = static_cast<int>(write_status::overloaded);

} // namespace

TEST_CASE("writer: 2,000 concurrent writes all commit, in batches", "[writer]") {
  scratch_db db;
  auto stats = std::make_shared<persistence_stats>();
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  {
    caf::scoped_actor self{sys};
    auto writer = spawn_writer(sys, writer_config{.url = db.url()}, stats);
    std::vector<write_command> cmds;
    for (int i = 0; i < 2000; ++i)
      cmds.push_back(full_cmd(i));
    auto start = steady::now();
    spawn_clients(sys, writer, std::move(cmds), 100, caf::actor_cast<caf::actor>(self));
    auto got = collect(self, 2000);
    auto elapsed = std::chrono::duration<double>(steady::now() - start).count();
    CHECK(got[committed] == 2000);
    WARN("2000 writes in " << elapsed << " s; " << stats->batches << " batches, mean "
                           << stats->mean_batch_size() << ", max " << stats->max_batch_seen);
    CHECK(stats->committed == 2000);
    CHECK(stats->commands == 2000);
    CHECK(stats->mean_batch_size() > 1.0);
    CHECK(stats->max_batch_seen <= 256);
    CHECK(stats->queued == 0);
    CHECK(stats->db_up());
    CHECK(db.scalar("SELECT count(*) FROM invoices") == 2000);
    CHECK(db.scalar("SELECT count(*) FROM webhook_events") == 2000);
    CHECK(db.scalar("SELECT count(*) FROM outbox") == 2000);
    caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
  }
}

TEST_CASE("writers: several connections share one set of stats", "[writer]") {
  scratch_db db;
  auto stats = std::make_shared<persistence_stats>();
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  {
    caf::scoped_actor self{sys};
    auto writers = spawn_writers(sys, writer_config{.url = db.url()}, 2, stats);
    REQUIRE(writers.size() == 2);
    CHECK(stats->writers == 2); // counted at spawn: not ready until both connect
    auto deadline = steady::now() + 10s;
    while (stats->writers_up < 2 && steady::now() < deadline)
      std::this_thread::sleep_for(10ms);
    CHECK(stats->writers_up == 2);
    CHECK(stats->db_up());
    CHECK(db.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name IN "
                    "('billingd-writer-1', 'billingd-writer-2') AND datname = current_database()") == 2);
    for (size_t w = 0; w < writers.size(); ++w) {
      std::vector<write_command> cmds;
      for (int i = 0; i < 500; ++i)
        cmds.push_back(full_cmd(static_cast<int>(w) * 500 + i));
      spawn_clients(sys, writers[w], std::move(cmds), 50, caf::actor_cast<caf::actor>(self));
    }
    auto got = collect(self, 1000);
    CHECK(got[committed] == 1000);
    CHECK(stats->committed == 1000);
    CHECK(stats->queued == 0);
    CHECK(db.scalar("SELECT count(*) FROM outbox") == 1000);
    // One writer stopping takes its share of the gauges with it.
    self->send_exit(writers[1], caf::exit_reason::user_shutdown);
    self->wait_for(writers[1]);
    CHECK(stats->writers == 1);
    CHECK(stats->writers_up == 1);
    CHECK(stats->db_up());
    caf::anon_send_exit(writers[0], caf::exit_reason::user_shutdown);
  }
}

TEST_CASE("writer: a reply means the row is committed", "[writer]") {
  scratch_db db;
  auto stats = std::make_shared<persistence_stats>();
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  {
    caf::scoped_actor self{sys};
    auto writer = spawn_writer(sys, writer_config{.url = db.url()}, stats);
    auto observer = db.connect(); // another connection sees only committed rows
    pqxx::nontransaction tx{*observer};
    std::vector<write_command> cmds;
    for (int i = 0; i < 400; ++i)
      cmds.push_back(full_cmd(i));
    spawn_clients(sys, writer, std::move(cmds), 40, caf::actor_cast<caf::actor>(self));
    size_t visible = 0;
    auto got = collect(self, 400, [&](const invoice_id& id, int st) {
      if (st != committed)
        return;
      auto r = tx.exec_params("SELECT (SELECT count(*) FROM invoices WHERE id = $1::uuid)"
                              " + (SELECT count(*) FROM outbox WHERE invoice_id = $1::uuid)",
                              id.str());
      if (r[0][0].as<int>() == 2)
        ++visible;
    });
    CHECK(got[committed] == 400);
    CHECK(visible == 400);
    // And one at a time, from a blocking requester.
    for (int i = 0; i < 20; ++i) {
      auto c = full_cmd(1000 + i);
      auto id = c.change->next.inv.id;
      REQUIRE(write_one(self, writer, c) == write_status::committed);
      CHECK(tx.exec_params("SELECT count(*) FROM invoices WHERE id = $1::uuid", id.str())[0][0]
              .as<int>()
            == 1);
    }
    caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
  }
}

TEST_CASE("writer: conflicts and duplicates are answered per command", "[writer]") {
  scratch_db db;
  auto stats = std::make_shared<persistence_stats>();
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  {
    caf::scoped_actor self{sys};
    auto writer = spawn_writer(sys, writer_config{.url = db.url()}, stats);
    auto c = full_cmd(1);
    CHECK(write_one(self, writer, c) == write_status::committed);
    CHECK(write_one(self, writer, c) == write_status::duplicate_event);
    c.event.reset();
    CHECK(write_one(self, writer, c) == write_status::version_conflict);
    CHECK(stats->committed == 1);
    CHECK(stats->duplicates == 1);
    CHECK(stats->conflicts == 1);
    caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
  }
}

TEST_CASE("writer: an exit message first commits everything sent before it", "[writer]") {
  scratch_db db;
  auto stats = std::make_shared<persistence_stats>();
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  {
    caf::scoped_actor self{sys};
    auto writer = spawn_writer(sys, writer_config{.url = db.url(), .max_batch = 16}, stats);
    std::vector<write_command> cmds;
    for (int i = 0; i < 300; ++i)
      cmds.push_back(full_cmd(i));
    spawn_clients(sys, writer, std::move(cmds), 30, caf::actor_cast<caf::actor>(self), true);
    for (int i = 0; i < 30; ++i)
      self->receive([](const std::string&) {},
                    caf::after(std::chrono::seconds{30}) >> [] { FAIL("a client did not start"); });
    caf::anon_send_exit(writer, caf::exit_reason::user_shutdown); // behind all 300 writes
    auto got = collect(self, 300);
    CHECK(got[committed] == 300);
  }
  CHECK(db.scalar("SELECT count(*) FROM outbox") == 300);
}

TEST_CASE("writer: past max_pending, writes are answered overloaded at once", "[writer]") {
  scratch_db db;
  auto stats = std::make_shared<persistence_stats>();
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  {
    caf::scoped_actor self{sys};
    auto writer = spawn_writer(
      sys, writer_config{.url = db.url(), .max_batch = 1, .max_pending = 4}, stats);
    std::vector<write_command> cmds;
    for (int i = 0; i < 300; ++i)
      cmds.push_back(full_cmd(i));
    spawn_clients(sys, writer, std::move(cmds), 30, caf::actor_cast<caf::actor>(self));
    auto got = collect(self, 300);
    CHECK(got[committed] + got[overloaded] == 300);
    CHECK(got[overloaded] > 0);
    CHECK(stats->overloaded == got[overloaded]);
    CHECK(stats->max_batch_seen == 1);
    CHECK(db.scalar("SELECT count(*) FROM invoices") == static_cast<int64_t>(got[committed]));
    caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
  }
}

TEST_CASE("writer: database down, every write is answered unavailable at once", "[writer]") {
  auto stats = std::make_shared<persistence_stats>();
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  {
    caf::scoped_actor self{sys};
    auto writer = spawn_writer(
      sys, writer_config{.url = "postgresql://postgres@127.0.0.1:1/billing"}, stats);
    std::vector<write_command> cmds;
    for (int i = 0; i < 500; ++i)
      cmds.push_back(full_cmd(i));
    auto start = steady::now();
    spawn_clients(sys, writer, std::move(cmds), 50, caf::actor_cast<caf::actor>(self));
    auto got = collect(self, 500);
    auto elapsed = steady::now() - start;
    CHECK(got[unavailable] == 500);
    CHECK(elapsed < 1s);
    for (int i = 0; i < 10; ++i) { // keeps answering while it retries
      auto t0 = steady::now();
      CHECK(write_one(self, writer, full_cmd(i)) == write_status::unavailable);
      CHECK(steady::now() - t0 < 1s);
      std::this_thread::sleep_for(30ms);
    }
    CHECK_FALSE(stats->db_up());
    CHECK(stats->unavailable == 510);
    CHECK(stats->committed == 0);
    caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
  }
}

TEST_CASE("writer: recovers from a killed connection without a restart", "[writer]") {
  scratch_db db;
  auto stats = std::make_shared<persistence_stats>();
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  {
    caf::scoped_actor self{sys};
    auto writer = spawn_writer(
      sys, writer_config{.url = db.url(), .application_name = "writer-test-victim"}, stats);
    REQUIRE(write_one(self, writer, full_cmd(0)) == write_status::committed);
    REQUIRE(db.terminate("writer-test-victim") == 1);

    auto lost = full_cmd(1);
    auto lost_id = lost.change->next.inv.id;
    CHECK(write_one(self, writer, lost) == write_status::unavailable);
    // (db_up went false here; the 50 ms retry timer may already have restored it.)

    auto deadline = steady::now() + 5s;
    write_status st = write_status::unavailable;
    for (int i = 2; st != write_status::committed && steady::now() < deadline; ++i) {
      std::this_thread::sleep_for(20ms);
      st = write_one(self, writer, full_cmd(i));
    }
    CHECK(st == write_status::committed);
    CHECK(stats->db_up());
    CHECK(stats->unavailable >= 1);
    CHECK(db.scalar("SELECT count(*) FROM invoices WHERE id = '" + lost_id.str() + "'") == 0);
    caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
  }
}

TEST_CASE("writer: survives a database server stop and start", "[writer][restart]") {
  // A private cluster, so stopping it disturbs nobody else.
  base_url(); // this tier needs PostgreSQL; say so clearly when it is missing
  const int port = free_port();
  const std::string dir = std::string{BILLING_TEST_WORK_DIR} + "/pg-private-"
                          + std::to_string(::getpid());
  const std::string pg = std::string{BILLING_SOURCE_DIR} + "/scripts/pg";
  auto start_pg = [&] {
    return std::system((pg + " start " + dir + " " + std::to_string(port) + " >/dev/null").c_str());
  };
  auto stop_pg = [&] { return std::system((pg + " stop " + dir).c_str()); };
  REQUIRE(start_pg() == 0);
  struct cleanup {
    std::function<void()> f;
    ~cleanup() { f(); }
  } guard{[&] {
    stop_pg();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }};
  const std::string url = "postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/billing";
  REQUIRE(ok(migrate(url)));

  auto stats = std::make_shared<persistence_stats>();
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  {
    caf::scoped_actor self{sys};
    auto writer = spawn_writer(sys, writer_config{.url = url}, stats);
    REQUIRE(write_one(self, writer, full_cmd(0)) == write_status::committed);

    REQUIRE(stop_pg() == 0);
    for (int i = 0; i < 20; ++i) {
      auto t0 = steady::now();
      CHECK(write_one(self, writer, full_cmd(100 + i)) == write_status::unavailable);
      CHECK(steady::now() - t0 < 1s);
      std::this_thread::sleep_for(25ms);
    }
    CHECK_FALSE(stats->db_up());

    REQUIRE(start_pg() == 0);
    auto deadline = steady::now() + 10s;
    while (!stats->db_up() && steady::now() < deadline) // the retry timer reconnects
      std::this_thread::sleep_for(20ms);
    CHECK(stats->db_up());
    CHECK(write_one(self, writer, full_cmd(1)) == write_status::committed);
    caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
  }
  pqxx::connection c{url};
  pqxx::nontransaction tx{c};
  CHECK(tx.exec("SELECT count(*) FROM invoices")[0][0].as<int>() == 2);
}
