#include "persistence/outbox_store.hpp"

#include "persistence/outbox_statements.hpp"
#include "persistence/pg_util.hpp"

#include <pqxx/pqxx>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace billing {

using pg_detail::pg_array;
namespace q = billing::sql::outbox;

namespace {

constexpr size_t max_error_length = 1000; // last_error is for people, not archives
constexpr int32_t max_claim = 10'000;

std::string clip(const std::string& s) {
  return s.size() <= max_error_length ? s : s.substr(0, max_error_length);
}

} // namespace

struct outbox_store::impl {
  outbox_store_options opts;
  std::string conninfo;
  std::unique_ptr<pqxx::connection> conn;

  explicit impl(outbox_store_options o)
    : opts(std::move(o)),
      conninfo(pg_detail::connection_string(opts.url, opts.connect_timeout, opts.application_name)) {
  }

  template <class T, class F>
  result<T> run(const char* what, F fn) {
    return pg_detail::run_guarded<T>(conn, "outbox store", what, std::move(fn));
  }
};

outbox_store::outbox_store(outbox_store_options opts)
  : impl_(std::make_unique<impl>(std::move(opts))) {
}

outbox_store::~outbox_store() = default;

result<int> outbox_store::connect() {
  impl_->conn.reset();
  try {
    auto c = pg_detail::open_connection(impl_->conninfo);
    {
      pqxx::nontransaction tx{*c};
      tx.exec("SET statement_timeout = " + std::to_string(impl_->opts.statement_timeout.count()));
      // Claims and settles need no fsync of their own: a claim lost in a
      // crash only frees its row early, a lost "delivered" mark only sends
      // the signal once more with the same request id (harmless). Without the
      // fsync they stay off the commit-to-signal path. Re-drives stay durable.
      tx.exec("SET synchronous_commit = off");
    }
    for (const auto& s : q::all_statements)
      c->prepare(s.name, s.sql);
    impl_->conn = std::move(c);
    return impl_->conn->backendpid();
  } catch (const std::exception& e) {
    return pg_detail::to_failure(e, nullptr);
  }
}

bool outbox_store::connected() const noexcept {
  return impl_->conn != nullptr && impl_->conn->is_open();
}

namespace {

std::vector<outbox_item> claim_in(pqxx::work& tx, int32_t limit, std::chrono::milliseconds lease) {
  std::vector<outbox_item> out;
  if (limit < 1)
    return out;
  auto r = tx.exec_prepared(q::claim.name, std::min(limit, max_claim),
                            static_cast<int64_t>(lease.count()));
  out.reserve(r.size());
  for (const auto& row : r) {
    outbox_item it;
    it.id = row[0].as<int64_t>();
    it.invoice = invoice_id{row[1].as<std::string>()};
    it.workflow_id = row[2].is_null() ? std::string{} : row[2].as<std::string>();
    it.signal = row[3].as<std::string>();
    it.payload = row[4].as<std::string>();
    it.attempts = row[5].as<int32_t>();
    it.age_ms = row[6].as<int64_t>();
    it.created_at = row[7].as<int64_t>();
    out.push_back(std::move(it));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

settle_summary settle_in(pqxx::work& tx, std::span<const outbox_outcome> outcomes) {
  settle_summary out;
  if (outcomes.empty())
    return out;
  pg_array delivered, retry_ids, retry_delays, retry_errors, dead_ids, dead_errors;
  for (const auto& o : outcomes) {
    switch (o.kind) {
      case settle_kind::delivered: delivered.add(o.id); break;
      case settle_kind::retry:
        retry_ids.add(o.id);
        retry_delays.add(std::max<int64_t>(o.delay_ms, 0));
        retry_errors.add(clip(o.error));
        break;
      case settle_kind::dead:
        dead_ids.add(o.id);
        dead_errors.add(clip(o.error));
        break;
    }
  }
  if (delivered.size() > 0)
    for (const auto& row : tx.exec_prepared(q::delivered.name, delivered.str()))
      out.latency_ms.push_back(row[0].as<int64_t>());
  if (retry_ids.size() > 0)
    tx.exec_prepared(q::retry.name, retry_ids.str(), retry_delays.str(), retry_errors.str());
  if (dead_ids.size() > 0) {
    auto died = tx.exec_prepared(q::dead.name, dead_ids.str(), dead_errors.str());
    if (!died.empty())
      out.held_back = static_cast<int64_t>(tx.exec_prepared(q::hold_back_for.name, dead_ids.str()).size());
  }
  return out;
}

} // namespace

claim_result outbox_store::claim(int32_t limit, std::chrono::milliseconds lease) {
  return impl_->run<std::vector<outbox_item>>("claim", [&](pqxx::connection& c) {
    pqxx::work tx{c};
    auto out = claim_in(tx, limit, lease);
    tx.commit();
    return out;
  });
}

settle_result outbox_store::settle(std::span<const outbox_outcome> outcomes) {
  return impl_->run<settle_summary>("settle", [&](pqxx::connection& c) {
    pqxx::work tx{c};
    auto out = settle_in(tx, outcomes);
    tx.commit();
    return out;
  });
}

exchange_result outbox_store::exchange(std::span<const outbox_outcome> outcomes, int32_t limit,
                                       std::chrono::milliseconds lease) {
  return impl_->run<exchange_reply>("exchange", [&](pqxx::connection& c) {
    pqxx::work tx{c};
    exchange_reply out;
    // Settle first: a row delivered here frees its invoice's next row for the claim.
    out.settled = settle_in(tx, outcomes);
    out.claimed = claim_in(tx, limit, lease);
    tx.commit();
    return out;
  });
}

outbox_stats_result outbox_store::stats() {
  return impl_->run<outbox_stats>("stats", [&](pqxx::connection& c) {
    pqxx::work tx{c};
    outbox_stats s;
    s.held_back = static_cast<int64_t>(tx.exec_prepared(q::hold_back_all.name).size());
    auto r = tx.exec_prepared(q::stats.name);
    tx.commit();
    s.backlog = r[0][0].as<int64_t>();
    s.dead = r[0][1].as<int64_t>();
    s.oldest_ms = r[0][2].is_null() ? -1 : r[0][2].as<int64_t>();
    return s;
  });
}

redrive_result outbox_store::redrive(const redrive_request& req) {
  if (!req.all_dead && req.ids.empty())
    return fail(billing_errc::invalid_argument, "name outbox ids or all dead rows", "id");
  return impl_->run<int64_t>("redrive", [&](pqxx::connection& c) {
    pqxx::work tx{c};
    tx.exec("SET LOCAL synchronous_commit = on");
    pqxx::result r;
    if (req.all_dead) {
      r = tx.exec_prepared(q::redrive_all.name);
    } else {
      pg_array ids;
      for (auto id : req.ids)
        ids.add(id);
      r = tx.exec_prepared(q::redrive_ids.name, ids.str());
    }
    tx.commit();
    return static_cast<int64_t>(r.size());
  });
}

} // namespace billing
