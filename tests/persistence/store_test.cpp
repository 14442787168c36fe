#include "persistence/pg_store.hpp"

#include "test_db.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

using namespace billing;
using namespace billing::test;

namespace {

using statuses = std::vector<write_status>;

stored_invoice load_ok(pg_store& store, const invoice_id& id) {
  auto r = store.load(id);
  REQUIRE(ok(r));
  auto& found = std::get<0>(r);
  REQUIRE(found.has_value());
  return *found;
}

int64_t count(const scratch_db& db, const std::string& table, const std::string& where = "true") {
  return db.scalar("SELECT count(*) FROM " + table + " WHERE " + where);
}

std::string inv_is(const stored_invoice& s) {
  return "invoice_id = '" + s.inv.id.str() + "'";
}

} // namespace

TEST_CASE("insert and load round-trip every invoice field", "[store]") {
  scratch_db db;
  pg_store store{store_options{.url = db.url()}};
  REQUIRE(ok(store.connect()));
  CHECK(store.connected());
  CHECK(store.backend_pid() > 0);

  auto full = sample_invoice(true);
  auto minimal = sample_invoice(false);
  std::vector<write_command> cmds{create_cmd(full), create_cmd(minimal)};
  CHECK(store.write_batch(cmds) == statuses{write_status::committed, write_status::committed});

  auto a = load_ok(store, full.inv.id);
  CHECK(a.inv == full.inv);
  CHECK(a.sealed_client_secret == full.sealed_client_secret);
  auto b = load_ok(store, minimal.inv.id);
  CHECK(b.inv == minimal.inv);
  CHECK(b.sealed_client_secret.empty());
  CHECK_FALSE(b.inv.paid_at.has_value());
  CHECK_FALSE(b.inv.last_event_at.has_value());
  CHECK(b.inv.provider_intent_id.empty());
  // The secret is stored sealed and base64-encoded, never as given.
  CHECK(db.scalar("SELECT count(*) FROM invoices WHERE client_secret_sealed IS NOT NULL AND "
                  "length(decode(client_secret_sealed, 'base64')) = 11")
        == 1);
  CHECK(count(db, "invoices", "client_secret_sealed IS NULL") == 1);
  CHECK(count(db, "invoices", "provider_intent_id IS NULL AND failure_code IS NULL") == 1);
}

TEST_CASE("compare-and-set: a stale version fails only its own command", "[store]") {
  scratch_db db;
  pg_store store{store_options{.url = db.url()}};
  REQUIRE(ok(store.connect()));
  auto x = sample_invoice(), y = sample_invoice(), z = sample_invoice();
  std::vector<write_command> create{create_cmd(x), create_cmd(y)};
  REQUIRE(store.write_batch(create) == statuses{write_status::committed, write_status::committed});

  auto paid = update_cmd(x, invoice_status::paid);
  paid.change->next.inv.paid_at = 1'700'000'100;
  paid.change->next.inv.provider_intent_id = intent_id{"pi_x"};
  paid.change->next.sealed_client_secret = "sealed-x";
  paid.event = sample_event("evt_paid_x", x.inv.id);
  paid.signal = sample_signal(x.inv.id);
  auto stale = update_cmd(y, invoice_status::failed);
  stale.change->expected_version = 7; // someone else moved it
  stale.signal = sample_signal(y.inv.id, "PaymentFailed");
  std::vector<write_command> batch{paid, stale, create_cmd(z)};
  CHECK(store.write_batch(batch)
        == statuses{write_status::committed, write_status::version_conflict,
                    write_status::committed});

  auto x2 = load_ok(store, x.inv.id);
  CHECK(x2.inv.status == invoice_status::paid);
  CHECK(x2.inv.version == 2);
  CHECK(x2.inv.paid_at == std::optional<unix_seconds>{1'700'000'100});
  CHECK(x2.inv.provider_intent_id == intent_id{"pi_x"});
  CHECK(x2.sealed_client_secret == "sealed-x");
  CHECK(x2.inv.updated_at == x.inv.updated_at + 1);
  CHECK(x2.inv.created_at == x.inv.created_at); // identity columns untouched
  auto y2 = load_ok(store, y.inv.id);
  CHECK(y2.inv == y.inv);
  CHECK(count(db, "outbox", inv_is(x)) == 1);
  CHECK(count(db, "outbox", inv_is(y)) == 0);
  CHECK(count(db, "webhook_events") == 1);

  // The same update again: x is at version 2 now.
  std::vector<write_command> again{paid};
  again[0].event = sample_event("evt_paid_x_again", x.inv.id);
  CHECK(store.write_batch(again) == statuses{write_status::version_conflict});
  CHECK(count(db, "webhook_events", "event_id = 'evt_paid_x_again'") == 0);
  CHECK(count(db, "outbox", inv_is(x)) == 1);
}

TEST_CASE("a duplicate event writes nothing of its command, across batches", "[store]") {
  scratch_db db;
  pg_store store{store_options{.url = db.url()}};
  REQUIRE(ok(store.connect()));
  auto x = sample_invoice();
  std::vector<write_command> create{create_cmd(x)};
  REQUIRE(store.write_batch(create) == statuses{write_status::committed});

  auto first = update_cmd(x, invoice_status::paid);
  first.event = sample_event("evt_1", x.inv.id);
  first.signal = sample_signal(x.inv.id);
  std::vector<write_command> b1{first};
  REQUIRE(store.write_batch(b1) == statuses{write_status::committed});

  // Redelivered, built from the new state so only the event can stop it.
  auto x2 = load_ok(store, x.inv.id);
  auto redelivery = update_cmd(x2, invoice_status::refunded);
  redelivery.event = sample_event("evt_1", x.inv.id);
  redelivery.signal = sample_signal(x.inv.id, "PaymentRefunded");
  auto other = sample_invoice();
  std::vector<write_command> b2{redelivery, create_cmd(other)};
  CHECK(store.write_batch(b2) == statuses{write_status::duplicate_event, write_status::committed});
  CHECK(load_ok(store, x.inv.id).inv == x2.inv);
  CHECK(count(db, "outbox", inv_is(x)) == 1);
  CHECK(count(db, "webhook_events") == 1);
}

TEST_CASE("a duplicate event within one batch: the first wins", "[store]") {
  scratch_db db;
  pg_store store{store_options{.url = db.url()}};
  REQUIRE(ok(store.connect()));
  auto x = sample_invoice(), y = sample_invoice();
  std::vector<write_command> create{create_cmd(x), create_cmd(y)};
  REQUIRE(store.write_batch(create) == statuses{write_status::committed, write_status::committed});

  auto a = update_cmd(x, invoice_status::paid);
  a.event = sample_event("evt_same", x.inv.id);
  a.signal = sample_signal(x.inv.id);
  auto b = update_cmd(y, invoice_status::paid); // another invoice, same event id
  b.event = sample_event("evt_same", y.inv.id);
  b.signal = sample_signal(y.inv.id);
  std::vector<write_command> batch{a, b};
  CHECK(store.write_batch(batch) == statuses{write_status::committed, write_status::duplicate_event});
  CHECK(load_ok(store, x.inv.id).inv.status == invoice_status::paid);
  CHECK(load_ok(store, y.inv.id).inv == y.inv);
  CHECK(count(db, "outbox", inv_is(x)) == 1);
  CHECK(count(db, "outbox", inv_is(y)) == 0);
  CHECK(count(db, "webhook_events", "event_id = 'evt_same' AND " + inv_is(x)) == 1);
}

TEST_CASE("event-only commands record ignored outcomes", "[store]") {
  scratch_db db;
  pg_store store{store_options{.url = db.url()}};
  REQUIRE(ok(store.connect()));
  auto x = sample_invoice();
  std::vector<write_command> create{create_cmd(x)};
  REQUIRE(store.write_batch(create) == statuses{write_status::committed});

  std::vector<write_command> batch;
  const outcome outcomes[] = {outcome::ignored_stale, outcome::ignored_no_effect,
                              outcome::rejected_mismatch, outcome::rejected_invalid_state};
  for (size_t i = 0; i < std::size(outcomes); ++i) {
    write_command c;
    c.event = sample_event("evt_ignored_" + std::to_string(i), x.inv.id, outcomes[i]);
    batch.push_back(c);
  }
  write_command unknown; // routing found no invoice
  unknown.event = sample_event("evt_unknown", invoice_id{}, outcome::ignored_unknown_invoice);
  batch.push_back(unknown);
  write_command foreign; // metadata of another integration on the same Stripe account
  foreign.event = sample_event("evt_foreign", invoice_id{"order-123"}, outcome::ignored_unknown_invoice);
  batch.push_back(foreign);
  CHECK(store.write_batch(batch) == statuses(batch.size(), write_status::committed));

  auto conn = db.connect();
  pqxx::nontransaction tx{*conn};
  auto rows = tx.exec("SELECT event_id, outcome, invoice_id::text, type, "
                      "extract(epoch FROM received_at)::bigint FROM webhook_events ORDER BY event_id");
  REQUIRE(rows.size() == batch.size());
  for (const auto& row : rows) {
    auto id = row[0].as<std::string>();
    auto o = parse_outcome(row[1].as<std::string>());
    REQUIRE(o);
    if (id.starts_with("evt_ignored_")) {
      CHECK(*o == outcomes[std::stoul(id.substr(12))]);
      CHECK(row[2].as<std::string>() == x.inv.id.str());
    } else {
      CHECK(*o == outcome::ignored_unknown_invoice);
      CHECK(row[2].is_null());
    }
    CHECK(row[3].as<std::string>() == "payment_intent.succeeded");
    CHECK(row[4].as<int64_t>() == 1'700'000'500);
  }
  CHECK(load_ok(store, x.inv.id).inv == x.inv);
  CHECK(count(db, "outbox") == 0);

  // Each is recorded once: a redelivery is a duplicate.
  CHECK(store.write_batch(std::span{batch}.first(1)) == statuses{write_status::duplicate_event});
}

TEST_CASE("a lost compare-and-set takes its event back out, so a retry can record it", "[store]") {
  scratch_db db;
  pg_store store{store_options{.url = db.url()}};
  REQUIRE(ok(store.connect()));
  auto x = sample_invoice();
  std::vector<write_command> create{create_cmd(x)};
  REQUIRE(store.write_batch(create) == statuses{write_status::committed});
  std::vector<write_command> other{update_cmd(x, invoice_status::failed)}; // another replica
  REQUIRE(store.write_batch(other) == statuses{write_status::committed});

  auto late = update_cmd(x, invoice_status::paid); // built from version 1
  late.event = sample_event("evt_pay", x.inv.id);
  late.signal = sample_signal(x.inv.id);
  std::vector<write_command> b1{late};
  CHECK(store.write_batch(b1) == statuses{write_status::version_conflict});
  CHECK(count(db, "webhook_events") == 0);
  CHECK(count(db, "outbox") == 0);

  auto fresh = load_ok(store, x.inv.id); // the invoice actor re-reads and retries
  auto retry = update_cmd(fresh, invoice_status::paid);
  retry.event = sample_event("evt_pay", x.inv.id);
  retry.signal = sample_signal(x.inv.id);
  std::vector<write_command> b2{retry};
  CHECK(store.write_batch(b2) == statuses{write_status::committed});
  CHECK(count(db, "webhook_events") == 1);
  CHECK(count(db, "outbox") == 1);
  CHECK(load_ok(store, x.inv.id).inv.version == 3);
}

TEST_CASE("outbox rows are written exactly once per committed command", "[store]") {
  scratch_db db;
  pg_store store{store_options{.url = db.url()}};
  REQUIRE(ok(store.connect()));
  std::vector<stored_invoice> invs;
  std::vector<write_command> create;
  for (int i = 0; i < 50; ++i) {
    invs.push_back(sample_invoice());
    create.push_back(create_cmd(invs.back()));
  }
  REQUIRE(store.write_batch(create) == statuses(50, write_status::committed));

  std::vector<write_command> batch;
  statuses expected;
  for (int i = 0; i < 50; ++i) {
    auto c = update_cmd(invs[i], invoice_status::paid);
    c.event = sample_event("evt_o_" + std::to_string(i % 40), invs[i].inv.id); // 10 in-batch dups
    c.signal = sample_signal(invs[i].inv.id);
    if (i % 7 == 3)
      c.change->expected_version = 99; // conflicts
    expected.push_back(i >= 40 ? write_status::duplicate_event
                       : i % 7 == 3 ? write_status::version_conflict
                                    : write_status::committed);
    batch.push_back(c);
  }
  auto got = store.write_batch(batch);
  CHECK(got == expected);
  auto committed = std::count(got.begin(), got.end(), write_status::committed);
  CHECK(count(db, "outbox") == committed);
  CHECK(count(db, "webhook_events") == committed);
  CHECK(db.scalar("SELECT count(*) FROM (SELECT invoice_id FROM outbox GROUP BY invoice_id "
                  "HAVING count(*) > 1) d")
        == 0);
  for (int i = 0; i < 50; ++i)
    CHECK(count(db, "outbox", inv_is(invs[i])) == (expected[i] == write_status::committed ? 1 : 0));
  // Payload is stored as JSON, rows come out in batch order.
  CHECK(db.scalar("SELECT count(*) FROM outbox WHERE payload->>'status' = 'PAID' AND attempts = 0 "
                  "AND delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= now()")
        == committed);
}

TEST_CASE("a second invoice for the same (workflow, shipment) or intent is a version_conflict",
          "[store]") {
  scratch_db db;
  pg_store store{store_options{.url = db.url()}};
  REQUIRE(ok(store.connect()));
  auto x = sample_invoice(true);
  std::vector<write_command> b1{create_cmd(x)};
  REQUIRE(store.write_batch(b1) == statuses{write_status::committed});

  auto same_key = sample_invoice(); // a new id, same idempotency key
  same_key.inv.workflow_id = x.inv.workflow_id;
  same_key.inv.shipment_id = x.inv.shipment_id;
  auto same_intent = sample_invoice();
  same_intent.inv.provider_intent_id = x.inv.provider_intent_id;
  auto same_id = sample_invoice();
  same_id.inv.id = x.inv.id;
  auto fine = sample_invoice();
  std::vector<write_command> b2{create_cmd(same_key), create_cmd(same_intent), create_cmd(same_id),
                                create_cmd(fine)};
  b2[0].signal = sample_signal(same_key.inv.id);
  CHECK(store.write_batch(b2)
        == statuses{write_status::version_conflict, write_status::version_conflict,
                    write_status::version_conflict, write_status::committed});
  CHECK(count(db, "invoices") == 2);
  CHECK(count(db, "outbox") == 0);

  // Within one batch: the first of two creates for one key wins.
  auto p = sample_invoice(), q = sample_invoice();
  q.inv.workflow_id = p.inv.workflow_id;
  q.inv.shipment_id = p.inv.shipment_id;
  std::vector<write_command> b3{create_cmd(p), create_cmd(q)};
  CHECK(store.write_batch(b3) == statuses{write_status::committed, write_status::version_conflict});
  CHECK(load_ok(store, p.inv.id).inv == p.inv);
  CHECK_FALSE(std::get<0>(store.load(q.inv.id)).has_value());
}

TEST_CASE("several changes to one invoice in one batch apply in batch order", "[store]") {
  scratch_db db;
  pg_store store{store_options{.url = db.url()}};
  REQUIRE(ok(store.connect()));
  auto x = sample_invoice();
  auto failed = update_cmd(x, invoice_status::failed); // v1 -> v2
  auto x2 = failed.change->next;
  auto paid = update_cmd(x2, invoice_status::paid);    // v2 -> v3
  auto racing = update_cmd(x2, invoice_status::cancelled); // also from v2: loses
  std::vector<write_command> batch{create_cmd(x), failed, paid, racing};
  CHECK(store.write_batch(batch)
        == statuses{write_status::committed, write_status::committed, write_status::committed,
                    write_status::version_conflict});
  auto got = load_ok(store, x.inv.id);
  CHECK(got.inv.status == invoice_status::paid);
  CHECK(got.inv.version == 3);
}

TEST_CASE("a command the database rejects does not sink its batch", "[store]") {
  scratch_db db;
  pg_store store{store_options{.url = db.url()}};
  REQUIRE(ok(store.connect()));
  auto good1 = sample_invoice(), bad = sample_invoice(), good2 = sample_invoice();
  bad.inv.currency = "USD"; // CHECK (currency ~ '^[a-z]{3}$')
  auto bad_id = sample_invoice();
  bad_id.inv.id = invoice_id{"not-a-uuid"};
  std::vector<write_command> batch{create_cmd(good1), create_cmd(bad), create_cmd(bad_id),
                                   create_cmd(good2)};
  batch[0].event = sample_event("evt_g1", good1.inv.id);
  batch[1].event = sample_event("evt_bad", bad.inv.id);
  batch[3].signal = sample_signal(good2.inv.id);
  CHECK(store.write_batch(batch)
        == statuses{write_status::committed, write_status::unavailable, write_status::unavailable,
                    write_status::committed});
  CHECK(store.connected());
  CHECK(count(db, "invoices") == 2);
  CHECK(count(db, "webhook_events") == 1);
  CHECK(count(db, "outbox") == 1);

  write_command bad_json;
  bad_json.signal = sample_signal(good1.inv.id);
  bad_json.signal->payload = "{not json";
  std::vector<write_command> b2{bad_json};
  CHECK(store.write_batch(b2) == statuses{write_status::unavailable});
  CHECK(store.connected());
}

TEST_CASE("a broken connection answers unavailable and connect() recovers", "[store]") {
  scratch_db db;
  pg_store store{store_options{.url = db.url(), .application_name = "store-test-victim"}};
  REQUIRE(ok(store.connect()));
  REQUIRE(db.terminate("store-test-victim") == 1);

  auto x = sample_invoice();
  std::vector<write_command> batch{create_cmd(x)};
  CHECK(store.write_batch(batch) == statuses{write_status::unavailable});
  CHECK_FALSE(store.connected());
  auto r = store.load(x.inv.id);
  REQUIRE_FALSE(ok(r));
  CHECK(std::get<failure>(r).code == billing_errc::unavailable);

  REQUIRE(ok(store.connect()));
  CHECK(store.write_batch(batch) == statuses{write_status::committed});

  // A read finds the break too.
  REQUIRE(db.terminate("store-test-victim") == 1);
  auto l = store.load(x.inv.id);
  REQUIRE_FALSE(ok(l));
  CHECK(std::get<failure>(l).code == billing_errc::unavailable);
  CHECK_FALSE(store.connected());
  REQUIRE(ok(store.connect()));
  CHECK(ok(store.load(x.inv.id)));
}

TEST_CASE("an unreachable database is a value, not an exception", "[store]") {
  pg_store store{store_options{.url = "postgresql://postgres@127.0.0.1:1/billing"}};
  auto c = store.connect();
  REQUIRE_FALSE(ok(c));
  CHECK(std::get<failure>(c).code == billing_errc::unavailable);
  CHECK_FALSE(store.connected());
  std::vector<write_command> batch{create_cmd(sample_invoice())};
  CHECK(store.write_batch(batch) == statuses{write_status::unavailable});
  CHECK(std::get<failure>(store.list(invoice_filter{"s", "", 1})).code == billing_errc::unavailable);
  CHECK(std::get<failure>(store.due_for_expiry(0, 1)).code == billing_errc::unavailable);
}
