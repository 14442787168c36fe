#include "bench/verify.hpp"

#include "protocol/state_machine.hpp"

#include <pqxx/pqxx>

#include <algorithm>
#include <map>
#include <optional>
#include <tuple>
#include <unordered_map>

namespace billing::bench {

namespace {

// A PostgreSQL array literal of simple tokens (uuids, evt_ ids): no quoting needed.
std::string array_literal(const std::vector<std::string>& items, size_t from, size_t to) {
  std::string s = "{";
  for (size_t i = from; i < to; ++i) {
    if (i > from)
      s += ',';
    s += items[i];
  }
  s += '}';
  return s;
}

struct recorded_event {
  std::string invoice; // empty when NULL
  std::string outcome;
};

struct invoice_row {
  std::string status;
  int64_t version = 0;
  std::optional<int64_t> paid_at;
  std::optional<int64_t> last_event_at;
  std::string failure_code;
  std::string intent;
  int64_t amount_cents = 0;
  std::string currency;
};

struct outbox_summary {
  uint64_t rows = 0;
  std::string newest_signal;
};

std::optional<int64_t> opt_int(const pqxx::field& f) {
  if (f.is_null())
    return std::nullopt;
  return f.as<int64_t>();
}

std::string show(const std::optional<int64_t>& v) {
  return v ? std::to_string(*v) : std::string{"null"};
}

} // namespace

invoice_event expected_event(const plan& p, const plan_event& e, const std::string& id) {
  const auto& inv = p.invoices[e.invoice];
  invoice_event ev;
  switch (e.outcome) {
    case simulated_outcome::succeeded: ev.kind = event_kind::payment_succeeded; break;
    case simulated_outcome::failed: ev.kind = event_kind::payment_failed; break;
    case simulated_outcome::canceled: ev.kind = event_kind::payment_canceled; break;
  }
  ev.id = event_id{id};
  ev.created = e.created;
  ev.amount_cents = inv.amount_cents;
  ev.currency = inv.currency;
  ev.intent = intent_id{inv.intent};
  if (e.outcome == simulated_outcome::failed) {
    ev.failure_code = "card_declined";
    ev.failure_message = "Your card has insufficient funds.";
  }
  return ev;
}

verify_report verify_run(const plan& p, const pass_states& sent, const verify_options& o) {
  verify_report rep;
  // Invoice problems (expected vs actual) are shown before event problems.
  std::vector<std::string> invoice_problems, event_problems;
  auto problem = [&](std::string s) {
    ++rep.problem_count;
    if (event_problems.size() < o.max_problems)
      event_problems.push_back(std::move(s));
  };
  auto invoice_problem = [&](std::string s) {
    ++rep.problem_count;
    if (invoice_problems.size() < o.max_problems)
      invoice_problems.push_back(std::move(s));
  };
  std::unordered_map<std::string, uint32_t> event_index;
  event_index.reserve(p.events.size() * 2);
  for (uint32_t i = 0; i < p.events.size(); ++i)
    event_index.emplace(p.events[i].id, i);
  std::unordered_map<std::string, uint32_t> invoice_index;
  invoice_index.reserve(p.invoices.size() * 2);
  std::vector<std::string> invoice_ids;
  for (uint32_t i = 0; i < p.invoices.size(); ++i) {
    invoice_index.emplace(p.invoices[i].id, i);
    invoice_ids.push_back(p.invoices[i].id);
  }

  std::unordered_map<std::string, recorded_event> recorded;     // every row of the run's invoices
  std::unordered_map<std::string, invoice_row> rows;
  std::unordered_map<std::string, outbox_summary> outbox;
  try {
    pqxx::connection conn{o.database_url};
    pqxx::read_transaction tx{conn};
    constexpr size_t chunk = 50'000;
    for (size_t from = 0; from < invoice_ids.size(); from += chunk) {
      auto arr = array_literal(invoice_ids, from, std::min(invoice_ids.size(), from + chunk));
      for (const auto& r : tx.exec_params(
             "SELECT event_id, invoice_id::text, outcome FROM webhook_events "
             "WHERE invoice_id = ANY($1::uuid[])",
             arr))
        recorded[r[0].as<std::string>()] = recorded_event{r[1].is_null() ? "" : r[1].as<std::string>(),
                                                          r[2].as<std::string>()};
      for (const auto& r : tx.exec_params(
             "SELECT id::text, status, version, extract(epoch FROM paid_at)::bigint, "
             "extract(epoch FROM last_event_at)::bigint, coalesce(failure_code, ''), "
             "coalesce(provider_intent_id, ''), amount_cents, currency "
             "FROM invoices WHERE id = ANY($1::uuid[])",
             arr))
        rows[r[0].as<std::string>()] =
          invoice_row{r[1].as<std::string>(), r[2].as<int64_t>(), opt_int(r[3]), opt_int(r[4]),
                      r[5].as<std::string>(), r[6].as<std::string>(), r[7].as<int64_t>(), r[8].as<std::string>()};
      for (const auto& r : tx.exec_params(
             "SELECT invoice_id::text, count(*), (array_agg(signal ORDER BY id DESC))[1] "
             "FROM outbox WHERE invoice_id = ANY($1::uuid[]) GROUP BY 1",
             arr))
        outbox[r[0].as<std::string>()] = outbox_summary{r[1].as<uint64_t>(), r[2].as<std::string>()};
    }

    // Sent events not found under their invoice: recorded elsewhere (wrong
    // or no invoice) or not at all.
    std::vector<std::string> missing;
    for (size_t pass = 0; pass < sent.size(); ++pass)
      for (size_t e = 0; e < sent[pass].size(); ++e)
        if (sent[pass][e] != delivery_state::not_sent) {
          auto id = event_id_for_pass(p.events[e].id, pass);
          if (!recorded.contains(id))
            missing.push_back(std::move(id));
        }
    std::unordered_map<std::string, recorded_event> elsewhere;
    for (size_t from = 0; from < missing.size(); from += chunk) {
      for (const auto& r : tx.exec_params(
             "SELECT event_id, invoice_id::text, outcome FROM webhook_events WHERE event_id = ANY($1::text[])",
             array_literal(missing, from, std::min(missing.size(), from + chunk))))
        elsewhere[r[0].as<std::string>()] = recorded_event{r[1].is_null() ? "" : r[1].as<std::string>(),
                                                           r[2].as<std::string>()};
    }
    tx.commit();

    // Per sent event: durable if acknowledged, recorded against its invoice.
    for (size_t pass = 0; pass < sent.size(); ++pass)
      for (size_t e = 0; e < sent[pass].size(); ++e) {
        auto state = sent[pass][e];
        if (state == delivery_state::not_sent)
          continue;
        ++rep.events_sent;
        bool acked = state == delivery_state::acknowledged;
        if (acked)
          ++rep.events_acknowledged;
        auto id = event_id_for_pass(p.events[e].id, pass);
        const auto& inv = p.invoices[p.events[e].invoice];
        if (auto it = recorded.find(id); it != recorded.end()) {
          ++rep.events_recorded;
          if (!acked)
            ++rep.unacknowledged_recorded;
          continue;
        }
        if (auto it = elsewhere.find(id); it != elsewhere.end()) {
          ++rep.events_recorded;
          problem("event " + id + " of invoice " + inv.id + " was recorded against invoice '"
                  + it->second.invoice + "' with outcome " + it->second.outcome);
          continue;
        }
        if (acked) {
          ++rep.lost;
          problem("event " + id + " (invoice " + inv.id + ") was answered 2xx but is not in webhook_events");
        } else {
          ++rep.unacknowledged_missing;
        }
      }
    if (rep.unacknowledged_missing > 0 && !o.allow_unacknowledged)
      problem(std::to_string(rep.unacknowledged_missing)
              + " event(s) never got a 2xx and are not recorded: the histories were not delivered "
                "completely (use --retries, or --allow-unacked for an overload run)");

    // Per invoice: replay what was recorded, compare, count transitions.
    std::vector<std::vector<std::pair<std::string, const recorded_event*>>> per_invoice(p.invoices.size());
    for (auto& [id, r] : recorded) {
      auto inv = invoice_index.find(r.invoice);
      if (inv == invoice_index.end())
        continue;
      per_invoice[inv->second].emplace_back(id, &r);
    }
    std::map<std::string, uint64_t> statuses;
    for (uint32_t i = 0; i < p.invoices.size(); ++i) {
      const auto& pi = p.invoices[i];
      ++rep.invoices_checked;
      auto row = rows.find(pi.id);
      if (row == rows.end()) {
        ++rep.invoices_mismatched;
        invoice_problem("invoice " + pi.id + " (workflow " + pi.workflow_id + ") does not exist");
        continue;
      }
      const auto& actual = row->second;
      ++statuses[actual.status];

      struct replayed {
        int64_t created;
        uint64_t pass;
        uint32_t index;
        std::string id;
      };
      std::vector<replayed> evs;
      uint64_t applied = 0;
      bool bad_outcome = false;
      for (auto& [id, r] : per_invoice[i]) {
        if (r->outcome == "applied")
          ++applied;
        if (r->outcome != "applied" && r->outcome != "ignored-stale" && r->outcome != "ignored-no-effect") {
          bad_outcome = true;
          problem("invoice " + pi.id + ": event " + id + " recorded with outcome " + r->outcome);
        }
        auto split = split_pass(id);
        auto base = split ? event_index.find(split->first) : event_index.end();
        if (base == event_index.end()) {
          bad_outcome = true;
          problem("invoice " + pi.id + ": event " + id + " is not one of this plan's events");
          continue;
        }
        evs.push_back(replayed{p.events[base->second].created, split->second, base->second, id});
      }
      std::sort(evs.begin(), evs.end(), [](const replayed& a, const replayed& b) {
        return std::tie(a.created, a.pass, a.index) < std::tie(b.created, b.pass, b.index);
      });
      invoice expected;
      expected.id = invoice_id{pi.id};
      expected.amount_cents = pi.amount_cents;
      expected.currency = pi.currency;
      expected.provider_intent_id = intent_id{pi.intent};
      expected.status = invoice_status::pending;
      std::string history;
      for (auto& r : evs) {
        auto ev = expected_event(p, p.events[r.index], r.id);
        auto d = apply(expected, ev, ev.created, provider_mode::test);
        if (d.result == outcome::applied)
          expected = std::move(d.next);
        if (!history.empty())
          history += ' ';
        history += std::string{event_type_for(p.events[r.index].outcome)}.substr(15) + "@" + std::to_string(r.created);
      }
      rep.transitions += applied;
      auto box = outbox.find(pi.id);
      uint64_t box_rows = box == outbox.end() ? 0 : box->second.rows;
      rep.outbox_rows += box_rows;

      std::string what;
      auto want_status = std::string{to_string(expected.status)};
      if (actual.status != want_status)
        what += " status " + actual.status + " (expected " + want_status + ")";
      if (actual.paid_at != expected.paid_at)
        what += " paid_at " + show(actual.paid_at) + " (expected " + show(expected.paid_at) + ")";
      if (actual.last_event_at != expected.last_event_at)
        what += " last_event_at " + show(actual.last_event_at) + " (expected " + show(expected.last_event_at) + ")";
      if (expected.status == invoice_status::failed && actual.failure_code != expected.failure_code)
        what += " failure_code '" + actual.failure_code + "' (expected '" + expected.failure_code + "')";
      if (actual.intent != pi.intent)
        what += " provider_intent_id " + actual.intent + " (expected " + pi.intent + ")";
      if (actual.amount_cents != pi.amount_cents || actual.currency != pi.currency)
        what += " amount " + std::to_string(actual.amount_cents) + " " + actual.currency;
      if (box_rows != applied || actual.version != o.base_version + static_cast<int64_t>(applied))
        what += " outbox rows " + std::to_string(box_rows) + ", applied events " + std::to_string(applied)
                + ", version " + std::to_string(actual.version) + " (expected one outbox row and one version per transition)";
      if (applied > 0) {
        auto sig = signal_for(expected.status);
        std::string want_signal = sig ? std::string{default_signal_name(*sig)} : "";
        if (box != outbox.end() && box->second.newest_signal != want_signal)
          what += " newest outbox signal " + box->second.newest_signal + " (expected " + want_signal + ")";
      }
      if (!what.empty() || bad_outcome) {
        ++rep.invoices_mismatched;
        if (!what.empty())
          invoice_problem("invoice " + pi.id + " (workflow " + pi.workflow_id + "):" + what + "; recorded history ["
                          + history + "]");
      }
    }
    for (auto& [s, n] : statuses)
      rep.final_status.emplace_back(s, n);
  } catch (const std::exception& e) {
    rep.error = true;
    problem(std::string{"cannot verify: "} + e.what());
  }
  for (auto* list : {&invoice_problems, &event_problems})
    for (auto& s : *list)
      if (rep.problems.size() < o.max_problems)
        rep.problems.push_back(std::move(s));
  rep.pass = !rep.error && rep.problem_count == 0;
  return rep;
}

} // namespace billing::bench
