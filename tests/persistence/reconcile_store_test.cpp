// persistence/reconcile_store against PostgreSQL: which invoices a claim
// takes and how it pushes them back (the backoff), two stores claiming at
// once (SKIP LOCKED: every due invoice exactly once), the event log's leased
// checkpoint, and a database that goes away.
#include "persistence/pg_store.hpp"
#include "persistence/reconcile_store.hpp"

#include "test_db.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace billing;
using namespace billing::test;

namespace {

using statuses = std::vector<write_status>;

constexpr unix_seconds t0 = 1'800'000'000; // the claims' "now"; invoices are older

// An invoice in `status`, last changed `age` seconds before t0.
stored_invoice make(invoice_status status, int64_t age, bool intent = true, bool session = false) {
  auto s = sample_invoice();
  s.inv.status = status;
  s.inv.updated_at = t0 - age;
  s.inv.created_at = s.inv.updated_at - 10;
  s.inv.expires_at = t0 + 86'400;
  s.inv.provider = "stripe";
  if (intent)
    s.inv.provider_intent_id = intent_id{"pi_" + s.inv.id.str().substr(0, 8)};
  if (session) {
    s.inv.mode = invoice_mode::checkout;
    s.inv.provider_session_id = session_id{"cs_" + s.inv.id.str().substr(0, 8)};
  }
  if (status == invoice_status::paid || status == invoice_status::refunded)
    s.inv.paid_at = s.inv.updated_at;
  if (status == invoice_status::refunded)
    s.inv.refunded_cents = s.inv.amount_cents;
  return s;
}

void insert(pg_store& store, const std::vector<stored_invoice>& all) {
  for (size_t i = 0; i < all.size(); i += 100) {
    std::vector<write_command> cmds;
    for (size_t j = i; j < std::min(all.size(), i + 100); ++j)
      cmds.push_back(create_cmd(all[j]));
    REQUIRE(store.write_batch(cmds) == statuses(cmds.size(), write_status::committed));
  }
}

std::set<std::string> ids_of(const std::vector<reconcile_candidate>& cs) {
  std::set<std::string> out;
  for (const auto& c : cs)
    out.insert(c.id.str());
  return out;
}

std::vector<reconcile_candidate> claim_ok(reconcile_store& st, const reconcile_claim& c) {
  auto r = st.claim(c);
  REQUIRE(ok(r));
  return std::get<std::vector<reconcile_candidate>>(r);
}

// reconcile_after in unix seconds (-1: unset).
int64_t after_of(const scratch_db& db, const stored_invoice& s) {
  return db.scalar("SELECT coalesce(extract(epoch FROM reconcile_after)::bigint, -1) FROM invoices WHERE id = '"
                   + s.inv.id.str() + "'");
}

int64_t checks_of(const scratch_db& db, const stored_invoice& s) {
  return db.scalar("SELECT reconcile_checks FROM invoices WHERE id = '" + s.inv.id.str() + "'");
}

// The compare-and-set columns and the transition's time, as one string.
std::string cas_columns(const scratch_db& db, const stored_invoice& s) {
  auto c = db.connect();
  pqxx::nontransaction tx{*c};
  auto r = tx.exec_params("SELECT status || '/' || version || '/' || extract(epoch FROM updated_at)::bigint "
                          "FROM invoices WHERE id = $1",
                          s.inv.id.str());
  return r[0][0].as<std::string>();
}

std::string expected_cas(const stored_invoice& s) {
  return std::string{to_string(s.inv.status)} + "/" + std::to_string(s.inv.version) + "/"
         + std::to_string(s.inv.updated_at);
}

} // namespace

TEST_CASE("claim: unsettled, quiet, due invoices with a provider object, the longest waiting first, pushed back by "
          "a doubling backoff",
          "[reconcile]") {
  scratch_db db;
  pg_store writer{store_options{.url = db.url()}};
  REQUIRE(ok(writer.connect()));
  reconcile_store st{reconcile_store_options{.url = db.url()}};
  REQUIRE(ok(st.connect()));
  CHECK(st.connected());

  auto p_old = make(invoice_status::pending, 1'000);
  auto f_mid = make(invoice_status::failed, 900);
  auto s_chk = make(invoice_status::pending, 800, false, true); // checkout, no intent yet
  auto p_new = make(invoice_status::pending, 400);
  // Changed "later" than t0: not quiet long enough until the claims' clock
  // passes t0 + 1800 (the backoff loop below ends at t0 + 1400).
  auto recent = make(invoice_status::pending, -1'500);
  auto no_obj = make(invoice_status::pending, 1'000, false);    // nothing to ask Stripe about
  auto paid = make(invoice_status::paid, 1'000);
  auto cancelled = make(invoice_status::cancelled, 1'000);
  auto refunded = make(invoice_status::refunded, 1'000);
  auto disputed = make(invoice_status::disputed, 1'000);
  auto not_due = make(invoice_status::pending, 2'000); // its next check lies ahead: t0 + 1850
  std::vector<stored_invoice> all{p_old, f_mid,     s_chk,    p_new,    recent, no_obj,
                                  paid,  cancelled, refunded, disputed, not_due};
  insert(writer, all);
  {
    auto c = db.connect();
    pqxx::nontransaction tx{*c};
    tx.exec_params("UPDATE invoices SET reconcile_after = to_timestamp($1) WHERE id = $2", t0 + 1'850,
                   not_due.inv.id.str());
  }
  const std::set<std::string> eligible{p_old.inv.id.str(), f_mid.inv.id.str(), s_chk.inv.id.str(),
                                       p_new.inv.id.str()};

  const reconcile_claim base{.now = t0, .quiet_seconds = 300, .limit = 2, .backoff_first = 60, .backoff_max = 500};

  // `limit` honoured, and the two that waited longest come first.
  auto first = claim_ok(st, base);
  CHECK(ids_of(first) == std::set<std::string>{p_old.inv.id.str(), f_mid.inv.id.str()});
  for (const auto& c : first) {
    if (c.id == p_old.inv.id) {
      CHECK(c.status == invoice_status::pending);
      CHECK(c.mode == invoice_mode::payment_intent);
      CHECK(c.intent == p_old.inv.provider_intent_id);
      CHECK(c.session.empty());
    } else {
      CHECK(c.status == invoice_status::failed);
    }
  }

  auto c2 = base;
  c2.limit = 100;
  auto second = claim_ok(st, c2);
  CHECK(ids_of(second) == std::set<std::string>{s_chk.inv.id.str(), p_new.inv.id.str()});
  for (const auto& c : second)
    if (c.id == s_chk.inv.id) {
      CHECK(c.mode == invoice_mode::checkout);
      CHECK(c.session == s_chk.inv.provider_session_id);
      CHECK(c.intent.empty());
    }

  // Right after, nothing is due: every claimed one waits out its backoff.
  CHECK(claim_ok(st, c2).empty());
  for (const auto& s : {p_old, f_mid, s_chk, p_new}) {
    CHECK(after_of(db, s) == t0 + 60);
    CHECK(checks_of(db, s) == 1);
  }

  // The backoff doubles with every check up to backoff_max; one second early
  // nothing is due, on time all four are.
  unix_seconds now = t0;
  int64_t wait = 60;
  for (int k = 1; k <= 5; ++k) {
    now += wait;
    auto early = c2;
    early.now = now - 1;
    CHECK(claim_ok(st, early).empty());
    auto due = c2;
    due.now = now;
    CHECK(ids_of(claim_ok(st, due)) == eligible);
    wait = std::min<int64_t>(500, 60 << k);
    for (const auto& s : {p_old, f_mid, s_chk, p_new}) {
      CHECK(after_of(db, s) == now + wait);
      CHECK(checks_of(db, s) == k + 1);
    }
  }
  CHECK(wait == 500); // the cap was reached: 60, 120, 240, 480, 500 (not 960)

  // The rest was never touched; the not-due one is claimed once its time comes.
  for (const auto& s : {recent, no_obj, paid, cancelled, refunded, disputed})
    CHECK(checks_of(db, s) == 0);
  CHECK(checks_of(db, not_due) == 0);
  auto later = c2;
  later.now = now + wait;
  auto last = claim_ok(st, later);
  CHECK(ids_of(last).count(not_due.inv.id.str()) == 1);
  CHECK(ids_of(last).count(recent.inv.id.str()) == 1); // quiet long enough by now
  for (const auto& s : {no_obj, paid, cancelled, refunded, disputed})
    CHECK(ids_of(last).count(s.inv.id.str()) == 0);

  // Claims never touch status, version or updated_at: a writer's
  // compare-and-set on the version it read before still succeeds.
  for (const auto& s : all)
    CHECK(cas_columns(db, s) == expected_cas(s));
  auto pay = update_cmd(p_old, invoice_status::paid);
  pay.change->next.inv.paid_at = t0;
  auto fail_again = update_cmd(f_mid, invoice_status::cancelled);
  std::vector<write_command> cas{pay, fail_again};
  CHECK(writer.write_batch(cas) == statuses{write_status::committed, write_status::committed});

  // Settled now: never claimed again.
  auto much_later = c2;
  much_later.now = now + 100'000;
  auto after_settle = ids_of(claim_ok(st, much_later));
  CHECK(after_settle.count(p_old.inv.id.str()) == 0);
  CHECK(after_settle.count(f_mid.inv.id.str()) == 0);
  CHECK(after_settle.count(p_new.inv.id.str()) == 1);
}

TEST_CASE("two stores claiming at once never claim one invoice twice within its backoff", "[reconcile]") {
  scratch_db db;
  pg_store writer{store_options{.url = db.url()}};
  REQUIRE(ok(writer.connect()));
  constexpr int n = 500;
  std::vector<stored_invoice> all;
  for (int i = 0; i < n; ++i)
    all.push_back(make(i % 3 == 0 ? invoice_status::failed : invoice_status::pending, 1'000 + i));
  insert(writer, all);
  std::set<std::string> every;
  for (const auto& s : all)
    every.insert(s.inv.id.str());

  reconcile_store a{reconcile_store_options{.url = db.url(), .application_name = "reconcile-test-a"}};
  reconcile_store b{reconcile_store_options{.url = db.url(), .application_name = "reconcile-test-b"}};
  REQUIRE(ok(a.connect()));
  REQUIRE(ok(b.connect()));

  // backoff 1 s, capped at 1 s: round r claims at t0 + r, when all are due again.
  constexpr int rounds = 10;
  int rounds_both_claimed = 0;
  for (int round = 0; round < rounds; ++round) {
    const reconcile_claim c{.now = t0 + round, .quiet_seconds = 300, .limit = 50, .backoff_first = 1,
                            .backoff_max = 1};
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    struct outcome_of {
      std::vector<std::string> ids;
      int failures = 0;
      size_t largest = 0;
    };
    outcome_of got_a, got_b;
    auto run = [&](reconcile_store& st, outcome_of& out) {
      ready.fetch_add(1);
      while (!go.load())
        std::this_thread::yield();
      // Until a claim finds nothing: the other store holds (or took) the rest.
      for (int i = 0; i < 100; ++i) {
        auto r = st.claim(c);
        if (!ok(r)) {
          ++out.failures;
          return;
        }
        auto& cs = std::get<std::vector<reconcile_candidate>>(r);
        if (cs.empty())
          return;
        out.largest = std::max(out.largest, cs.size());
        for (auto& x : cs)
          out.ids.push_back(x.id.str());
      }
    };
    std::thread ta{run, std::ref(a), std::ref(got_a)};
    std::thread tb{run, std::ref(b), std::ref(got_b)};
    while (ready.load() < 2)
      std::this_thread::yield();
    go.store(true);
    ta.join();
    tb.join();

    INFO("round " << round << ": a claimed " << got_a.ids.size() << ", b " << got_b.ids.size());
    CHECK(got_a.failures == 0);
    CHECK(got_b.failures == 0);
    CHECK(got_a.largest <= 50);
    CHECK(got_b.largest <= 50);
    std::map<std::string, int> seen;
    for (const auto* got : {&got_a, &got_b})
      for (const auto& id : got->ids)
        ++seen[id];
    std::set<std::string> claimed;
    int twice = 0;
    for (const auto& [id, k] : seen) {
      claimed.insert(id);
      twice += k > 1 ? 1 : 0;
    }
    CHECK(twice == 0);
    CHECK(claimed == every);
    CHECK(got_a.ids.size() + got_b.ids.size() == static_cast<size_t>(n));
    CHECK(db.scalar("SELECT count(*) FROM invoices WHERE reconcile_checks = " + std::to_string(round + 1)) == n);
    if (!got_a.ids.empty() && !got_b.ids.empty())
      ++rounds_both_claimed;

    // Within the backoff neither store gets any of them again.
    CHECK(claim_ok(a, c).empty());
    CHECK(claim_ok(b, c).empty());
  }
  // The two really raced (otherwise this test proves nothing about SKIP LOCKED).
  CHECK(rounds_both_claimed > 0);
}

TEST_CASE("the event log's checkpoint: one holder at a time, taken over after the lease, only forward",
          "[reconcile]") {
  scratch_db db;
  reconcile_store a{reconcile_store_options{.url = db.url()}};
  reconcile_store b{reconcile_store_options{.url = db.url()}};
  REQUIRE(ok(a.connect()));
  REQUIRE(ok(b.connect()));
  const std::string name = "stripe_events";

  auto lease = [&](reconcile_store& st, const std::string& holder, int64_t initial, int64_t seconds) {
    auto r = st.lease(checkpoint_lease{name, holder, initial, seconds});
    REQUIRE(ok(r));
    return std::get<checkpoint_state>(r);
  };
  auto advance = [&](reconcile_store& st, const std::string& holder, int64_t position) {
    auto r = st.advance(checkpoint_advance{name, holder, position});
    REQUIRE(ok(r));
    return std::get<checkpoint_advanced>(r).advanced;
  };
  auto position = [&] { return db.scalar("SELECT position FROM reconcile_checkpoints WHERE name = 'stripe_events'"); };

  // A new checkpoint starts at A's initial position; B is refused while A's lease runs.
  auto la = lease(a, "a", 1'000, 60);
  CHECK(la.held);
  CHECK(la.position == 1'000);
  auto lb = lease(b, "b", 5'000, 60);
  CHECK_FALSE(lb.held);
  CHECK_FALSE(advance(b, "b", 9'000)); // not B's to move
  CHECK(position() == 1'000);

  // A renews with a short lease; once it runs out B gets it, at A's position.
  la = lease(a, "a", 1'000, 1);
  CHECK(la.held);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  checkpoint_state got{};
  int refusals = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    got = lease(b, "b", 5'000, 60);
    if (got.held)
      break;
    ++refusals;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(got.held);
  CHECK(got.position == 1'000);
  CHECK_FALSE(lease(a, "a", 1'000, 60).held); // A lost it

  // A's advance after losing the lease changes nothing.
  CHECK_FALSE(advance(a, "a", 2'000));
  CHECK(position() == 1'000);
  CHECK(db.scalar("SELECT count(*) FROM reconcile_checkpoints WHERE leased_by = 'b'") == 1);

  // B's advance moves it and ends the lease, so A can take it at once.
  CHECK(advance(b, "b", 1'500));
  CHECK(position() == 1'500);
  la = lease(a, "a", 1'000, 60);
  CHECK(la.held);
  CHECK(la.position == 1'500);
  // Never backwards, even from the holder.
  CHECK(advance(a, "a", 1'200));
  CHECK(position() == 1'500);
  CHECK(lease(b, "b", 0, 60).held);
  CHECK(advance(b, "b", 1'600));
  CHECK(position() == 1'600);
  CHECK(db.scalar("SELECT count(*) FROM reconcile_checkpoints") == 1);
}

TEST_CASE("reconcile store: a lost or unreachable database is a value, and connect() recovers", "[reconcile]") {
  scratch_db db;
  pg_store writer{store_options{.url = db.url()}};
  REQUIRE(ok(writer.connect()));
  insert(writer, {make(invoice_status::pending, 1'000)});
  reconcile_store st{reconcile_store_options{.url = db.url(), .application_name = "reconcile-test-victim"}};
  REQUIRE(ok(st.connect()));
  const reconcile_claim c{.now = t0, .quiet_seconds = 300, .limit = 10, .backoff_first = 60, .backoff_max = 500};
  const checkpoint_lease l{"stripe_events", "x", 0, 60};

  REQUIRE(db.terminate("reconcile-test-victim") == 1);
  auto r = st.claim(c);
  REQUIRE_FALSE(ok(r));
  CHECK(std::get<failure>(r).code == billing_errc::unavailable);
  CHECK_FALSE(st.connected());
  auto lr = st.lease(l);
  REQUIRE_FALSE(ok(lr));
  CHECK(std::get<failure>(lr).code == billing_errc::unavailable);
  auto ar = st.advance(checkpoint_advance{"stripe_events", "x", 1});
  REQUIRE_FALSE(ok(ar));
  CHECK(std::get<failure>(ar).code == billing_errc::unavailable);
  // Nothing was claimed by the failed call.
  CHECK(db.scalar("SELECT sum(reconcile_checks) FROM invoices") == 0);

  REQUIRE(ok(st.connect()));
  CHECK(st.connected());
  CHECK(claim_ok(st, c).size() == 1);

  // The lease finds the break too.
  REQUIRE(db.terminate("reconcile-test-victim") == 1);
  lr = st.lease(l);
  REQUIRE_FALSE(ok(lr));
  CHECK(std::get<failure>(lr).code == billing_errc::unavailable);
  REQUIRE(ok(st.connect()));
  auto held = st.lease(l);
  REQUIRE(ok(held));
  CHECK(std::get<checkpoint_state>(held).held);

  reconcile_store nowhere{reconcile_store_options{.url = "postgresql://postgres@127.0.0.1:1/billing"}};
  auto cn = nowhere.connect();
  REQUIRE_FALSE(ok(cn));
  CHECK(std::get<failure>(cn).code == billing_errc::unavailable);
  CHECK_FALSE(nowhere.connected());
  CHECK(std::get<failure>(nowhere.claim(c)).code == billing_errc::unavailable);
  CHECK(std::get<failure>(nowhere.lease(l)).code == billing_errc::unavailable);
}
