#include "persistence/pg_store.hpp"

#include "persistence/pg_util.hpp"
#include "persistence/statements.hpp"

#include <pqxx/pqxx>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace billing {

using pg_detail::pg_array;
using namespace billing::sql;

namespace {

constexpr int32_t max_list_limit = 1000;
constexpr int32_t max_due_limit = 10000;
constexpr int max_rollback_retries = 2; // deadlock / serialization failure

// ---- rows -> model ----------------------------------------------------------

std::optional<int64_t> opt_int(const pqxx::field& f) {
  if (f.is_null())
    return std::nullopt;
  return f.as<int64_t>();
}

std::string opt_text(const pqxx::field& f) {
  return f.is_null() ? std::string{} : f.as<std::string>();
}

// Columns in the order of BILLING_INVOICE_COLUMNS (statements.hpp). Throws
// on a corrupt row (caught at the boundary as internal).
invoice to_invoice(const pqxx::row& r) {
  invoice inv;
  inv.id = invoice_id{r[0].as<std::string>()};
  inv.user_id = r[1].as<std::string>();
  inv.shipment_id = r[2].as<std::string>();
  inv.workflow_id = r[3].as<std::string>();
  inv.amount_cents = r[4].as<int64_t>();
  inv.currency = r[5].as<std::string>();
  auto status = parse_invoice_status(r[6].as<std::string>());
  if (!status)
    throw std::runtime_error{"invoices.status holds an unknown value"};
  inv.status = *status;
  inv.version = r[7].as<int64_t>();
  inv.provider = r[8].as<std::string>();
  inv.provider_intent_id = intent_id{opt_text(r[9])};
  inv.expires_at = r[10].as<int64_t>();
  inv.created_at = r[11].as<int64_t>();
  inv.updated_at = r[12].as<int64_t>();
  inv.paid_at = opt_int(r[13]);
  inv.last_event_at = opt_int(r[14]);
  inv.failure_code = opt_text(r[15]);
  inv.failure_message = opt_text(r[16]);
  auto mode = parse_invoice_mode(r[17].as<std::string>());
  if (!mode)
    throw std::runtime_error{"invoices.mode holds an unknown value"};
  inv.mode = *mode;
  inv.provider_session_id = session_id{opt_text(r[18])};
  inv.refunded_cents = r[19].as<int64_t>();
  inv.expiry_retries = r[20].as<int32_t>();
  return inv;
}

} // namespace

// ---- the batch ----------------------------------------------------------------

struct pg_store::impl {
  store_options opts;
  std::string conninfo;
  std::unique_ptr<pqxx::connection> conn;

  explicit impl(store_options o)
    : opts(std::move(o)),
      conninfo(pg_detail::connection_string(opts.url, opts.connect_timeout, opts.application_name)) {
  }

  // Runs `cmds` in one transaction. Throws pqxx exceptions; the caller maps them.
  std::vector<write_status> write_once(std::span<const write_command> cmds);
  // write_once for the `live` commands in one statement (billing_write_batch,
  // migration 0003) in autocommit: one round trip, COMMIT included. Only for
  // batches in which no invoice has two changes.
  void write_in_one_round_trip(std::span<const write_command> cmds, std::vector<write_status>& st,
                               const std::vector<char>& live);
  void insert_changes(pqxx::work& tx, std::span<const write_command> cmds,
                      const std::vector<size_t>& idx, std::vector<write_status>& st,
                      std::vector<char>& live);
  void update_changes(pqxx::work& tx, std::span<const write_command> cmds,
                      const std::vector<size_t>& idx, std::vector<write_status>& st,
                      std::vector<char>& live);

  // Handles an exception from a read; drops a broken connection.
  failure read_failure(const std::exception& e, const char* what) {
    auto f = pg_detail::to_failure(e, conn.get());
    if (pg_detail::connection_lost(e, conn.get()))
      conn.reset();
    spdlog::warn("pg_store {}: {}", what, f.message);
    return f;
  }
};

std::vector<write_status> pg_store::impl::write_once(std::span<const write_command> cmds) {
  const size_t n = cmds.size();
  std::vector<write_status> st(n, write_status::committed);
  std::vector<char> live(n, 1); // still to be written
  size_t invalid = 0;

  // Ids that would make a whole statement fail are refused up front. Event
  // records may name a foreign "invoice" (metadata of another integration):
  // those are stored with a NULL invoice_id instead.
  for (size_t i = 0; i < n; ++i) {
    const auto& c = cmds[i];
    if ((c.change && !pg_detail::is_uuid(c.change->next.inv.id.str()))
        || (c.signal && !pg_detail::is_uuid(c.signal->invoice.str()))) {
      st[i] = write_status::unavailable;
      live[i] = 0;
      ++invalid;
    }
  }
  if (invalid > 0)
    spdlog::error("pg_store: refused {} write command(s) whose invoice id is not a uuid", invalid);

  // In-batch duplicate event ids: the first wins, whichever path writes.
  {
    std::unordered_set<std::string_view> seen;
    for (size_t i = 0; i < n; ++i)
      if (live[i] && cmds[i].event && !seen.insert(cmds[i].event->id.str()).second) {
        st[i] = write_status::duplicate_event;
        live[i] = 0;
      }
  }
  // The normal batch (an invoice actor has one write in flight at a time, so
  // each invoice appears once) goes in one round trip; a chain of changes to
  // one invoice needs rounds, one statement per table.
  {
    std::unordered_set<std::string> changed;
    bool chain = false;
    for (size_t i = 0; i < n && !chain; ++i)
      if (live[i] && cmds[i].change)
        chain = !changed.insert(pg_detail::uuid_key(cmds[i].change->next.inv.id.str())).second;
    if (!chain) {
      write_in_one_round_trip(cmds, st, live);
      return st;
    }
  }

  pqxx::work tx{*conn};

  // (a) Events first: a duplicate stops the rest of its command.
  std::vector<char> event_written(n, 0);
  {
    std::unordered_map<std::string_view, size_t> by_id;
    pg_array ids, types, invoices, outcomes, received;
    for (size_t i = 0; i < n; ++i) {
      if (!live[i] || !cmds[i].event)
        continue;
      const auto& ev = *cmds[i].event;
      if (!by_id.emplace(ev.id.str(), i).second) {
        st[i] = write_status::duplicate_event; // earlier in this batch: the first wins
        live[i] = 0;
        continue;
      }
      ids.add(ev.id.str());
      types.add(ev.type);
      if (pg_detail::is_uuid(ev.invoice.str()))
        invoices.add(ev.invoice.str());
      else
        invoices.add_null();
      outcomes.add(to_string(ev.result));
      received.add(ev.received_at);
    }
    if (ids.size() > 0) {
      auto r = tx.exec_prepared(insert_events.name, ids.str(), types.str(), invoices.str(),
                                outcomes.str(), received.str());
      for (const auto& row : r) {
        auto it = by_id.find(std::string_view{row[0].c_str()});
        if (it != by_id.end())
          event_written[it->second] = 1;
      }
      for (const auto& [id, i] : by_id) {
        if (!event_written[i]) {
          st[i] = write_status::duplicate_event;
          live[i] = 0;
        }
      }
    }
  }

  // (b) Invoice changes, in rounds: each round holds at most one change per
  // invoice (UPDATE ... FROM applies only one source row per target row), so
  // several changes to one invoice apply in batch order. One round in the
  // normal case.
  std::vector<size_t> todo;
  for (size_t i = 0; i < n; ++i)
    if (live[i] && cmds[i].change)
      todo.push_back(i);
  while (!todo.empty()) {
    std::unordered_set<std::string> in_round;
    std::vector<size_t> inserts, updates, later;
    for (size_t i : todo) {
      if (!in_round.insert(pg_detail::uuid_key(cmds[i].change->next.inv.id.str())).second)
        later.push_back(i);
      else if (cmds[i].change->expected_version == 0)
        inserts.push_back(i);
      else
        updates.push_back(i);
    }
    insert_changes(tx, cmds, inserts, st, live);
    update_changes(tx, cmds, updates, st, live);
    todo = std::move(later);
  }

  // (c) A change that lost its compare-and-set takes its event row back out,
  // so the retry (after re-reading the invoice) can record it.
  {
    pg_array stale;
    for (size_t i = 0; i < n; ++i)
      if (event_written[i] && st[i] == write_status::version_conflict)
        stale.add(cmds[i].event->id.str());
    if (stale.size() > 0)
      tx.exec_prepared(delete_events.name, stale.str());
  }

  // (d) Outbox rows for the commands that made it.
  {
    pg_array invoices, signals, payloads, created;
    for (size_t i = 0; i < n; ++i) {
      if (!live[i] || !cmds[i].signal)
        continue;
      const auto& s = *cmds[i].signal;
      invoices.add(s.invoice.str());
      signals.add(s.signal);
      payloads.add(s.payload);
      created.add(s.created_at);
    }
    if (invoices.size() > 0)
      tx.exec_prepared(insert_outbox.name, invoices.str(), signals.str(), payloads.str(),
                       created.str());
  }

  tx.commit();
  return st;
}

namespace {

// "{1,5}" -> {1, 5}
std::vector<size_t> parse_int_array(std::string_view text) {
  std::vector<size_t> out;
  size_t v = 0;
  bool in = false;
  for (char ch : text) {
    if (ch >= '0' && ch <= '9') {
      v = v * 10 + static_cast<size_t>(ch - '0');
      in = true;
    } else if (in) {
      out.push_back(v);
      v = 0;
      in = false;
    }
  }
  return out;
}

} // namespace

void pg_store::impl::write_in_one_round_trip(std::span<const write_command> cmds,
                                             std::vector<write_status>& st,
                                             const std::vector<char>& live) {
  pg_array e_ord, e_id, e_type, e_invoice, e_outcome, e_received;
  pg_array c_ord, c_expected, c_id, c_user, c_shipment, c_workflow, c_amount, c_currency, c_status,
    c_provider, c_intent, c_sealed, c_expires, c_created, c_updated, c_paid, c_last_event, c_fcode,
    c_fmsg, c_mode, c_session, c_refunded, c_retries;
  pg_array s_ord, s_invoice, s_signal, s_payload, s_created;
  bool any = false;
  for (size_t i = 0; i < cmds.size(); ++i) {
    if (!live[i])
      continue;
    any = true;
    const auto& c = cmds[i];
    const auto ord = static_cast<int64_t>(i);
    if (c.event) {
      const auto& ev = *c.event;
      e_ord.add(ord);
      e_id.add(ev.id.str());
      e_type.add(ev.type);
      if (pg_detail::is_uuid(ev.invoice.str()))
        e_invoice.add(ev.invoice.str());
      else
        e_invoice.add_null();
      e_outcome.add(to_string(ev.result));
      e_received.add(ev.received_at);
    }
    if (c.change) {
      const auto& ch = *c.change;
      const auto& inv = ch.next.inv;
      c_ord.add(ord);
      c_expected.add(ch.expected_version);
      c_id.add(inv.id.str());
      c_user.add(inv.user_id);
      c_shipment.add(inv.shipment_id);
      c_workflow.add(inv.workflow_id);
      c_amount.add(inv.amount_cents);
      c_currency.add(inv.currency);
      c_status.add(to_string(inv.status));
      c_provider.add(inv.provider);
      c_intent.add_or_null(inv.provider_intent_id.str());
      c_sealed.add_or_null(pg_detail::base64_encode(ch.next.sealed_client_secret));
      c_expires.add(inv.expires_at);
      c_created.add(inv.created_at);
      c_updated.add(inv.updated_at);
      c_paid.add_or_null(inv.paid_at);
      c_last_event.add_or_null(inv.last_event_at);
      c_fcode.add_or_null(inv.failure_code);
      c_fmsg.add_or_null(inv.failure_message);
      c_mode.add(to_string(inv.mode));
      c_session.add_or_null(inv.provider_session_id.str());
      c_refunded.add(inv.refunded_cents);
      c_retries.add(static_cast<int64_t>(inv.expiry_retries));
    }
    if (c.signal) {
      const auto& sg = *c.signal;
      s_ord.add(ord);
      s_invoice.add(sg.invoice.str());
      s_signal.add(sg.signal);
      s_payload.add(sg.payload);
      s_created.add(sg.created_at);
    }
  }
  if (!any)
    return;
  pqxx::nontransaction tx{*conn};
  auto r = tx.exec_prepared(
    write_batch_stmt.name, e_ord.str(), e_id.str(), e_type.str(), e_invoice.str(), e_outcome.str(),
    e_received.str(), c_ord.str(), c_expected.str(), c_id.str(), c_user.str(), c_shipment.str(),
    c_workflow.str(), c_amount.str(), c_currency.str(), c_status.str(), c_provider.str(),
    c_intent.str(), c_sealed.str(), c_expires.str(), c_created.str(), c_updated.str(), c_paid.str(),
    c_last_event.str(), c_fcode.str(), c_fmsg.str(), c_mode.str(), c_session.str(), c_refunded.str(),
    c_retries.str(), s_ord.str(), s_invoice.str(), s_signal.str(), s_payload.str(), s_created.str());
  if (r.size() != 1)
    throw std::runtime_error{"billing_write_batch returned no row"};
  for (size_t i : parse_int_array(r[0][0].c_str()))
    if (i < st.size())
      st[i] = write_status::duplicate_event;
  for (size_t i : parse_int_array(r[0][1].c_str()))
    if (i < st.size())
      st[i] = write_status::version_conflict;
}

void pg_store::impl::insert_changes(pqxx::work& tx, std::span<const write_command> cmds,
                                    const std::vector<size_t>& idx,
                                    std::vector<write_status>& st, std::vector<char>& live) {
  if (idx.empty())
    return;
  pg_array id, user, shipment, workflow, amount, currency, status, provider, intent, sealed,
    expires, created, updated, paid, last_event, fcode, fmsg, mode, session, refunded, retries, ord;
  for (size_t i : idx) {
    const auto& s = cmds[i].change->next;
    const auto& inv = s.inv;
    id.add(inv.id.str());
    user.add(inv.user_id);
    shipment.add(inv.shipment_id);
    workflow.add(inv.workflow_id);
    amount.add(inv.amount_cents);
    currency.add(inv.currency);
    status.add(to_string(inv.status));
    provider.add(inv.provider);
    intent.add_or_null(inv.provider_intent_id.str());
    sealed.add_or_null(pg_detail::base64_encode(s.sealed_client_secret));
    expires.add(inv.expires_at);
    created.add(inv.created_at);
    updated.add(inv.updated_at);
    paid.add_or_null(inv.paid_at);
    last_event.add_or_null(inv.last_event_at);
    fcode.add_or_null(inv.failure_code);
    fmsg.add_or_null(inv.failure_message);
    mode.add(to_string(inv.mode));
    session.add_or_null(inv.provider_session_id.str());
    refunded.add(inv.refunded_cents);
    retries.add(static_cast<int64_t>(inv.expiry_retries));
    ord.add(static_cast<int64_t>(i));
  }
  auto r = tx.exec_prepared(insert_invoices.name, id.str(), user.str(), shipment.str(),
                            workflow.str(), amount.str(), currency.str(), status.str(),
                            provider.str(), intent.str(), sealed.str(), expires.str(),
                            created.str(), updated.str(), paid.str(), last_event.str(),
                            fcode.str(), fmsg.str(), mode.str(), session.str(), refunded.str(),
                            retries.str(), ord.str());
  std::vector<char> done(cmds.size(), 0);
  for (const auto& row : r)
    done[row[0].as<size_t>()] = 1;
  for (size_t i : idx) {
    if (!done[i]) {
      st[i] = write_status::version_conflict;
      live[i] = 0;
    }
  }
}

void pg_store::impl::update_changes(pqxx::work& tx, std::span<const write_command> cmds,
                                    const std::vector<size_t>& idx,
                                    std::vector<write_status>& st, std::vector<char>& live) {
  if (idx.empty())
    return;
  pg_array id, expected, status, intent, sealed, expires, updated, paid, last_event, fcode, fmsg,
    session, refunded, retries, ord;
  for (size_t i : idx) {
    const auto& ch = *cmds[i].change;
    const auto& inv = ch.next.inv;
    id.add(inv.id.str());
    expected.add(ch.expected_version);
    status.add(to_string(inv.status));
    intent.add_or_null(inv.provider_intent_id.str());
    sealed.add_or_null(pg_detail::base64_encode(ch.next.sealed_client_secret));
    expires.add(inv.expires_at);
    updated.add(inv.updated_at);
    paid.add_or_null(inv.paid_at);
    last_event.add_or_null(inv.last_event_at);
    fcode.add_or_null(inv.failure_code);
    fmsg.add_or_null(inv.failure_message);
    session.add_or_null(inv.provider_session_id.str());
    refunded.add(inv.refunded_cents);
    retries.add(static_cast<int64_t>(inv.expiry_retries));
    ord.add(static_cast<int64_t>(i));
  }
  auto r = tx.exec_prepared(update_invoices.name, id.str(), expected.str(), status.str(),
                            intent.str(), sealed.str(), expires.str(), updated.str(), paid.str(),
                            last_event.str(), fcode.str(), fmsg.str(), session.str(), refunded.str(),
                            retries.str(), ord.str());
  std::vector<char> done(cmds.size(), 0);
  for (const auto& row : r)
    done[row[0].as<size_t>()] = 1;
  for (size_t i : idx) {
    if (!done[i]) {
      st[i] = write_status::version_conflict;
      live[i] = 0;
    }
  }
}

// ---- pg_store -------------------------------------------------------------------

pg_store::pg_store(store_options opts) : impl_(std::make_unique<impl>(std::move(opts))) {
}

pg_store::~pg_store() = default;

result<int> pg_store::connect() {
  impl_->conn.reset();
  try {
    auto c = pg_detail::open_connection(impl_->conninfo);
    {
      pqxx::nontransaction tx{*c};
      tx.exec("SET statement_timeout = "
              + std::to_string(impl_->opts.statement_timeout.count()));
      // Plan each execution for its own arrays. A cached generic plan is
      // frozen with the statistics of when it was made: prepared while the
      // invoices table was nearly empty, the batch UPDATE kept scanning the
      // whole table (a burst after 20,000 creates ran at 2,800/s instead of
      // 6,600/s, PostgreSQL's CPU in heapgetpage).
      tx.exec("SET plan_cache_mode = force_custom_plan");
    }
    for (const auto& s : all_statements)
      c->prepare(s.name, s.sql);
    impl_->conn = std::move(c);
    return impl_->conn->backendpid();
  } catch (const std::exception& e) {
    auto f = pg_detail::to_failure(e, nullptr);
    if (f.code != billing_errc::unavailable)
      spdlog::error("pg_store: connect to {}: {}", pg_detail::redact(impl_->opts.url), f.message);
    return f;
  }
}

void pg_store::disconnect() noexcept {
  impl_->conn.reset();
}

bool pg_store::connected() const noexcept {
  return impl_->conn != nullptr && impl_->conn->is_open();
}

int pg_store::backend_pid() const noexcept {
  return connected() ? impl_->conn->backendpid() : 0;
}

std::vector<write_status> pg_store::write_batch(std::span<const write_command> cmds) {
  std::vector<write_status> unavailable(cmds.size(), write_status::unavailable);
  if (cmds.empty())
    return {};
  if (!connected())
    return unavailable;
  for (int attempt = 0;; ++attempt) {
    try {
      return impl_->write_once(cmds);
    } catch (const pqxx::transaction_rollback& e) {
      // Deadlock or serialization failure against another replica's batch:
      // nothing was written, so running the batch again is safe.
      if (!pg_detail::connection_lost(e, impl_->conn.get()) && attempt < max_rollback_retries)
        continue;
      spdlog::warn("pg_store: batch of {} rolled back: {}", cmds.size(),
                   pg_detail::first_line(e.what()));
      if (pg_detail::connection_lost(e, impl_->conn.get()))
        impl_->conn.reset();
      return unavailable;
    } catch (const std::exception& e) {
      auto f = pg_detail::to_failure(e, impl_->conn.get());
      if (f.code == billing_errc::unavailable) {
        spdlog::warn("pg_store: batch of {} failed: {}", cmds.size(), f.message);
        if (pg_detail::connection_lost(e, impl_->conn.get()))
          impl_->conn.reset();
        return unavailable;
      }
      if (cmds.size() == 1) {
        spdlog::error("pg_store: write command refused: {}", f.message);
        return unavailable;
      }
      spdlog::error("pg_store: batch of {} failed ({}); replaying one command per transaction",
                    cmds.size(), f.message);
      break;
    }
  }
  // Isolate the offending command(s): each alone, in order, so in-batch
  // duplicates still resolve first-wins.
  std::vector<write_status> st(cmds.size(), write_status::unavailable);
  for (size_t i = 0; i < cmds.size(); ++i) {
    if (!connected())
      break;
    auto one = write_batch(cmds.subspan(i, 1));
    st[i] = one[0];
  }
  return st;
}

namespace {

// A row of load_invoice / load_invoices.
load_result stored_from_row(const pqxx::row& row) {
  stored_invoice out;
  out.inv = to_invoice(row);
  if (!row[21].is_null()) {
    auto sealed = pg_detail::base64_decode(row[21].c_str());
    if (!sealed)
      return fail(billing_errc::internal, "invoices.client_secret_sealed is not base64");
    out.sealed_client_secret = std::move(*sealed);
  }
  return std::optional<stored_invoice>{std::move(out)};
}

} // namespace

load_result pg_store::load(const invoice_id& id) {
  if (!connected())
    return fail(billing_errc::unavailable, "database unavailable");
  if (!pg_detail::is_uuid(id.str()))
    return std::optional<stored_invoice>{};
  try {
    pqxx::nontransaction tx{*impl_->conn};
    auto r = tx.exec_prepared(load_invoice.name, id.str());
    if (r.empty())
      return std::optional<stored_invoice>{};
    return stored_from_row(r[0]);
  } catch (const std::exception& e) {
    return impl_->read_failure(e, "load");
  }
}

std::vector<load_result> pg_store::load_many(std::span<const invoice_id> ids) {
  // Not found (and not a uuid) unless a row says otherwise.
  std::vector<load_result> out(ids.size(), load_result{std::optional<stored_invoice>{}});
  if (!connected()) {
    std::fill(out.begin(), out.end(), load_result{fail(billing_errc::unavailable, "database unavailable")});
    return out;
  }
  std::unordered_map<std::string, std::vector<size_t>> wanted; // by uuid_key: one id may repeat
  pg_array arr;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!pg_detail::is_uuid(ids[i].str()))
      continue;
    auto& slots = wanted[pg_detail::uuid_key(ids[i].str())];
    if (slots.empty())
      arr.add(ids[i].str());
    slots.push_back(i);
  }
  if (arr.size() == 0)
    return out;
  try {
    pqxx::nontransaction tx{*impl_->conn};
    auto r = tx.exec_prepared(load_invoices.name, arr.str());
    for (const auto& row : r) {
      auto it = wanted.find(pg_detail::uuid_key(row[0].c_str()));
      if (it == wanted.end())
        continue;
      auto one = stored_from_row(row);
      for (size_t i : it->second)
        out[i] = one;
    }
  } catch (const std::exception& e) {
    std::fill(out.begin(), out.end(), load_result{impl_->read_failure(e, "load")});
  }
  return out;
}

find_result pg_store::find_by_intent(const intent_id& id) {
  if (!connected())
    return fail(billing_errc::unavailable, "database unavailable");
  if (id.empty())
    return std::optional<invoice_id>{};
  try {
    pqxx::nontransaction tx{*impl_->conn};
    auto r = tx.exec_prepared(find_by_intent_stmt.name, id.str());
    if (r.empty())
      return std::optional<invoice_id>{};
    return std::optional<invoice_id>{invoice_id{r[0][0].as<std::string>()}};
  } catch (const std::exception& e) {
    return impl_->read_failure(e, "find_by_intent");
  }
}

list_result pg_store::list(const invoice_filter& filter) {
  if (filter.shipment_id.empty() && filter.workflow_id.empty())
    return fail(billing_errc::invalid_argument, "shipment_id or workflow_id is required",
                "shipment_id");
  if (filter.limit < 1)
    return fail(billing_errc::invalid_argument, "limit must be at least 1", "limit");
  if (!connected())
    return fail(billing_errc::unavailable, "database unavailable");
  const int32_t limit = std::min(filter.limit, max_list_limit);
  try {
    pqxx::nontransaction tx{*impl_->conn};
    pqxx::result r;
    if (filter.shipment_id.empty())
      r = tx.exec_prepared(list_by_workflow.name, filter.workflow_id, limit);
    else if (filter.workflow_id.empty())
      r = tx.exec_prepared(list_by_shipment.name, filter.shipment_id, limit);
    else
      r = tx.exec_prepared(list_by_both.name, filter.workflow_id, filter.shipment_id, limit);
    std::vector<invoice> out;
    out.reserve(r.size());
    for (const auto& row : r)
      out.push_back(to_invoice(row));
    return out;
  } catch (const std::exception& e) {
    return impl_->read_failure(e, "list");
  }
}

due_result pg_store::due_for_expiry(unix_seconds now, int32_t limit) {
  if (limit < 1)
    return fail(billing_errc::invalid_argument, "limit must be at least 1", "limit");
  if (!connected())
    return fail(billing_errc::unavailable, "database unavailable");
  try {
    pqxx::nontransaction tx{*impl_->conn};
    auto r = tx.exec_prepared(due_for_expiry_stmt.name, now, std::min(limit, max_due_limit));
    std::vector<invoice_id> out;
    out.reserve(r.size());
    for (const auto& row : r)
      out.emplace_back(row[0].as<std::string>());
    return out;
  } catch (const std::exception& e) {
    return impl_->read_failure(e, "due_for_expiry");
  }
}

result<int64_t> pg_store::prune(std::chrono::seconds event_age, std::chrono::seconds outbox_age,
                                int32_t chunk) {
  if (!connected())
    return fail(billing_errc::unavailable, "database unavailable");
  try {
    pqxx::nontransaction tx{*impl_->conn};
    auto events = tx.exec_prepared(prune_events.name, static_cast<double>(event_age.count()), chunk);
    auto outbox = tx.exec_prepared(prune_outbox.name, static_cast<double>(outbox_age.count()), chunk);
    return static_cast<int64_t>(events.affected_rows() + outbox.affected_rows());
  } catch (const std::exception& e) {
    return impl_->read_failure(e, "prune");
  }
}

} // namespace billing
