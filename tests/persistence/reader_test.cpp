#include "persistence/pg_store.hpp"
#include "persistence/reader.hpp"

#include "test_db.hpp"

#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

using namespace billing;
using namespace billing::test;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

template <class Result, class... Ts>
Result ask(caf::scoped_actor& self, const reader_actor& r, Ts... xs) {
  std::optional<Result> out;
  self->request(r, std::chrono::seconds{30}, xs...)
    .receive([&](Result& x) { out = std::move(x); },
             [&](caf::error& e) { FAIL("read request failed: " << self->system().render(e)); });
  REQUIRE(out.has_value());
  return std::move(*out);
}

// Six invoices on one shipment; returns them as written.
std::vector<stored_invoice> seed(const scratch_db& db) {
  pg_store store{store_options{.url = db.url()}};
  REQUIRE(ok(store.connect()));
  std::vector<stored_invoice> invs;
  std::vector<write_command> cmds;
  for (int i = 0; i < 6; ++i) {
    auto s = sample_invoice(true);
    s.inv.shipment_id = "ship-R";
    s.inv.created_at += i;
    s.inv.expires_at = 1'700'000'000 + i;
    invs.push_back(s);
    cmds.push_back(create_cmd(s));
  }
  REQUIRE(store.write_batch(cmds) == std::vector<write_status>(6, write_status::committed));
  return invs;
}

} // namespace

TEST_CASE("reader: load, find, list and due through the actor", "[reader]") {
  scratch_db db;
  auto invs = seed(db);
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  for (size_t readers : {size_t{1}, size_t{3}}) {
    caf::scoped_actor self{sys};
    auto reader = spawn_readers(sys, reader_config{.url = db.url(), .readers = readers});
    for (const auto& s : invs) {
      auto l = ask<load_result>(self, reader, load_atom::value, s.inv.id);
      REQUIRE(ok(l));
      REQUIRE(std::get<0>(l).has_value());
      CHECK(std::get<0>(l)->inv == s.inv);
      CHECK(std::get<0>(l)->sealed_client_secret == s.sealed_client_secret);
      auto f = ask<find_result>(self, reader, find_atom::value, s.inv.provider_intent_id);
      REQUIRE(ok(f));
      CHECK(std::get<0>(f) == std::optional<invoice_id>{s.inv.id});
    }
    auto missing = ask<load_result>(self, reader, load_atom::value, invoice_id{new_uuid()});
    REQUIRE(ok(missing));
    CHECK_FALSE(std::get<0>(missing).has_value());
    auto list = ask<list_result>(self, reader, list_atom::value, invoice_filter{"ship-R", "", 4});
    REQUIRE(ok(list));
    REQUIRE(std::get<0>(list).size() == 4);
    CHECK(std::get<0>(list).front() == invs[5].inv);
    auto due = ask<due_result>(self, reader, due_atom::value, unix_seconds{1'700'000'002}, int32_t{10});
    REQUIRE(ok(due));
    CHECK(std::get<0>(due) == std::vector<invoice_id>{invs[0].inv.id, invs[1].inv.id, invs[2].inv.id});
    caf::anon_send_exit(reader, caf::exit_reason::user_shutdown);
  }
}

TEST_CASE("reader: many concurrent reads through the dispatcher", "[reader]") {
  scratch_db db;
  auto invs = seed(db);
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  {
    caf::scoped_actor self{sys};
    auto reader = spawn_readers(sys, reader_config{.url = db.url(), .readers = 3});
    auto report = caf::actor_cast<caf::actor>(self);
    for (int c = 0; c < 20; ++c) {
      sys.spawn([reader, report, invs](caf::event_based_actor* client) -> caf::behavior {
        auto left = std::make_shared<int>(10);
        for (int i = 0; i < 10; ++i)
          client->request(reader, std::chrono::seconds{30}, load_atom::value,
                          invs[static_cast<size_t>(i) % invs.size()].inv.id)
            .then([client, report, left](load_result& r) {
              client->send(report, ok(r) && std::get<0>(r).has_value());
              if (--*left == 0)
                client->quit();
            });
        return {[](stop_atom) {}};
      });
    }
    int good = 0;
    for (int i = 0; i < 200; ++i)
      self->receive([&](bool b) { good += b ? 1 : 0; },
                    caf::after(std::chrono::seconds{30}) >> [&] { FAIL("a read was not answered"); });
    CHECK(good == 200);
    caf::anon_send_exit(reader, caf::exit_reason::user_shutdown);
  }
}

TEST_CASE("reader: database down answers unavailable at once", "[reader]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  {
    caf::scoped_actor self{sys};
    auto reader = spawn_readers(
      sys, reader_config{.url = "postgresql://postgres@127.0.0.1:1/billing", .readers = 2});
    auto t0 = steady::now();
    for (int i = 0; i < 50; ++i) {
      auto l = ask<load_result>(self, reader, load_atom::value, invoice_id{new_uuid()});
      REQUIRE_FALSE(ok(l));
      CHECK(std::get<failure>(l).code == billing_errc::unavailable);
      auto d = ask<due_result>(self, reader, due_atom::value, unix_seconds{0}, int32_t{10});
      REQUIRE_FALSE(ok(d));
      CHECK(std::get<failure>(d).code == billing_errc::unavailable);
    }
    CHECK(steady::now() - t0 < 1s);
    caf::anon_send_exit(reader, caf::exit_reason::user_shutdown);
  }
}

TEST_CASE("reader: recovers from a killed connection", "[reader]") {
  scratch_db db;
  auto invs = seed(db);
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  {
    caf::scoped_actor self{sys};
    auto reader = spawn_reader(
      sys, reader_config{.url = db.url(), .application_name = "reader-test-victim"});
    REQUIRE(ok(ask<load_result>(self, reader, load_atom::value, invs[0].inv.id)));
    REQUIRE(db.terminate("reader-test-victim") == 1);
    auto lost = ask<load_result>(self, reader, load_atom::value, invs[0].inv.id);
    REQUIRE_FALSE(ok(lost));
    CHECK(std::get<failure>(lost).code == billing_errc::unavailable);
    auto deadline = steady::now() + 5s;
    bool back = false;
    while (!back && steady::now() < deadline) {
      std::this_thread::sleep_for(20ms);
      back = ok(ask<load_result>(self, reader, load_atom::value, invs[0].inv.id));
    }
    CHECK(back);
    caf::anon_send_exit(reader, caf::exit_reason::user_shutdown);
  }
}
