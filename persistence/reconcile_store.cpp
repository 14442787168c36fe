#include "persistence/reconcile_store.hpp"

#include "persistence/pg_util.hpp"

#include <pqxx/pqxx>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace billing {

namespace {

struct statement {
  const char* name;
  const char* sql;
};

// The predicate matches invoices_reconcile_idx (migration 0004). SKIP
// LOCKED: a row another replica is claiming (or a writer is moving) is left
// to it; the UPDATE of the same statement pushes reconcile_after past the
// backoff, so the next claim anywhere skips it until then.
constexpr statement claim_stmt{"billing_reconcile_claim", R"sql(
WITH due AS (
  SELECT id FROM invoices
  WHERE status IN ('PENDING', 'FAILED')
    AND updated_at <= to_timestamp($1) - make_interval(secs => $2::double precision)
    AND (reconcile_after IS NULL OR reconcile_after <= to_timestamp($1))
    AND (provider_intent_id IS NOT NULL OR provider_session_id IS NOT NULL)
  ORDER BY coalesce(reconcile_after, updated_at)
  LIMIT $3
  FOR UPDATE SKIP LOCKED
)
UPDATE invoices AS i SET
  reconcile_after = to_timestamp($1) + make_interval(secs =>
    least($5::double precision, $4::double precision * power(2, least(i.reconcile_checks, 30)))),
  reconcile_checks = i.reconcile_checks + 1
FROM due WHERE i.id = due.id
RETURNING i.id::text, i.status, i.mode, coalesce(i.provider_intent_id, ''),
          coalesce(i.provider_session_id, ''))sql"};

constexpr statement lease_stmt{"billing_reconcile_lease", R"sql(
INSERT INTO reconcile_checkpoints AS c (name, position, leased_by, leased_until, updated_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4::double precision), now())
ON CONFLICT (name) DO UPDATE SET
  leased_by = EXCLUDED.leased_by, leased_until = EXCLUDED.leased_until
WHERE c.leased_until IS NULL OR c.leased_until < now() OR c.leased_by = EXCLUDED.leased_by
RETURNING c.position)sql"};

constexpr statement advance_stmt{"billing_reconcile_advance", R"sql(
UPDATE reconcile_checkpoints SET
  position = greatest(position, $3), leased_by = NULL, leased_until = NULL, updated_at = now()
WHERE name = $1 AND leased_by = $2)sql"};

constexpr statement all_statements[] = {claim_stmt, lease_stmt, advance_stmt};

constexpr int32_t max_claim = 1'000;

} // namespace

struct reconcile_store::impl {
  reconcile_store_options opts;
  std::string conninfo;
  std::unique_ptr<pqxx::connection> conn;

  explicit impl(reconcile_store_options o)
    : opts(std::move(o)),
      conninfo(pg_detail::connection_string(opts.url, opts.connect_timeout, opts.application_name)) {}

  template <class T, class F>
  result<T> run(const char* what, F fn) {
    return pg_detail::run_guarded<T>(conn, "reconcile store", what, std::move(fn));
  }
};

reconcile_store::reconcile_store(reconcile_store_options opts) : impl_(std::make_unique<impl>(std::move(opts))) {}

reconcile_store::~reconcile_store() = default;

result<int> reconcile_store::connect() {
  impl_->conn.reset();
  try {
    auto c = pg_detail::open_connection(impl_->conninfo);
    {
      pqxx::nontransaction tx{*c};
      tx.exec("SET statement_timeout = " + std::to_string(impl_->opts.statement_timeout.count()));
    }
    for (const auto& s : all_statements)
      c->prepare(s.name, s.sql);
    impl_->conn = std::move(c);
    return impl_->conn->backendpid();
  } catch (const std::exception& e) {
    return pg_detail::to_failure(e, nullptr);
  }
}

bool reconcile_store::connected() const noexcept {
  return impl_->conn != nullptr && impl_->conn->is_open();
}

candidates_result reconcile_store::claim(const reconcile_claim& c) {
  if (c.limit < 1)
    return std::vector<reconcile_candidate>{};
  return impl_->run<std::vector<reconcile_candidate>>("claim", [&](pqxx::connection& conn) {
    pqxx::nontransaction tx{conn};
    auto r = tx.exec_prepared(claim_stmt.name, c.now, static_cast<double>(c.quiet_seconds),
                              std::min(c.limit, max_claim), static_cast<double>(std::max<int64_t>(c.backoff_first, 1)),
                              static_cast<double>(std::max<int64_t>(c.backoff_max, 1)));
    std::vector<reconcile_candidate> out;
    out.reserve(r.size());
    for (const auto& row : r) {
      reconcile_candidate cand;
      cand.id = invoice_id{row[0].as<std::string>()};
      auto status = parse_invoice_status(row[1].as<std::string>());
      auto mode = parse_invoice_mode(row[2].as<std::string>());
      if (!status || !mode)
        throw std::runtime_error{"invoices.status or mode holds an unknown value"};
      cand.status = *status;
      cand.mode = *mode;
      cand.intent = intent_id{row[3].as<std::string>()};
      cand.session = session_id{row[4].as<std::string>()};
      out.push_back(std::move(cand));
    }
    return out;
  });
}

checkpoint_result reconcile_store::lease(const checkpoint_lease& l) {
  return impl_->run<checkpoint_state>("lease", [&](pqxx::connection& conn) {
    pqxx::nontransaction tx{conn};
    auto r = tx.exec_prepared(lease_stmt.name, l.name, l.initial_position, l.holder,
                              static_cast<double>(std::max<int64_t>(l.lease_seconds, 1)));
    if (r.empty())
      return checkpoint_state{false, 0};
    return checkpoint_state{true, r[0][0].as<int64_t>()};
  });
}

advance_result reconcile_store::advance(const checkpoint_advance& a) {
  return impl_->run<checkpoint_advanced>("advance", [&](pqxx::connection& conn) {
    pqxx::nontransaction tx{conn};
    auto r = tx.exec_prepared(advance_stmt.name, a.name, a.holder, a.position);
    return checkpoint_advanced{r.affected_rows() == 1};
  });
}

} // namespace billing
