#pragma once
// The outbox queue's SQL, declared once, prepared by name on each connection
// of outbox_store. Internal to persistence/. Predicates on undelivered rows
// repeat the partial indexes' WHERE clauses (0001, 0002) so they apply; rows
// are addressed by `id = ANY (array)` so an update is an index probe per row
// whatever the table's size or statistics.

namespace billing::sql::outbox {

struct statement {
  const char* name;
  const char* sql;
};

// The oldest undelivered row of each invoice, when due; SKIP LOCKED so two
// replicas claiming at once take different rows; the lease is next_attempt_at.
// "Oldest undelivered" is a correlated min() so it is always answered by
// outbox_undelivered_invoice_idx, one probe per candidate (an anti-join may
// be planned as a scan of every undelivered row per candidate).
// The workflow id comes from the invoice (NULL if it vanished: settled dead).
inline constexpr statement claim{"billing_outbox_claim", R"sql(
WITH due AS (
  SELECT o.id FROM outbox o
  WHERE o.delivered_at IS NULL AND o.dead_at IS NULL AND o.next_attempt_at <= now()
    AND o.id = (SELECT min(e.id) FROM outbox e
                WHERE e.invoice_id = o.invoice_id AND e.delivered_at IS NULL)
  ORDER BY o.next_attempt_at
  LIMIT $1
  FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox o
SET attempts = o.attempts + 1, next_attempt_at = now() + $2::bigint * interval '1 millisecond'
WHERE o.id = ANY (ARRAY(SELECT id FROM due))
RETURNING o.id, o.invoice_id::text, (SELECT i.workflow_id FROM invoices i WHERE i.id = o.invoice_id),
  o.signal, o.payload::text, o.attempts,
  (extract(epoch FROM now() - o.enqueued_at) * 1000)::bigint,
  extract(epoch FROM o.created_at)::bigint)sql"};

inline constexpr statement delivered{"billing_outbox_delivered", R"sql(
UPDATE outbox o SET delivered_at = clock_timestamp(), dead_at = NULL
WHERE o.id = ANY ($1::bigint[]) AND o.delivered_at IS NULL
RETURNING (extract(epoch FROM o.delivered_at - o.enqueued_at) * 1000)::bigint)sql"};

inline constexpr statement retry{"billing_outbox_retry", R"sql(
UPDATE outbox o
SET next_attempt_at = now() + u.delay_ms * interval '1 millisecond', last_error = u.err
FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS u(id, delay_ms, err)
WHERE o.id = u.id AND o.id = ANY ($1::bigint[]) AND o.delivered_at IS NULL AND o.dead_at IS NULL)sql"};

inline constexpr statement dead{"billing_outbox_dead", R"sql(
UPDATE outbox o SET dead_at = now(), last_error = u.err
FROM unnest($1::bigint[], $2::text[]) AS u(id, err)
WHERE o.id = u.id AND o.id = ANY ($1::bigint[]) AND o.delivered_at IS NULL AND o.dead_at IS NULL
RETURNING o.id)sql"};

// Live rows behind a dead row of their invoice die too, naming it. Two
// forms: for the invoices of some rows ($1), and for every invoice with a
// dead row (driven by outbox_dead_idx, so cheap when there are none).
#define BILLING_OUTBOX_HOLD_BACK(SCOPE)                                                     \
  "UPDATE outbox o SET dead_at = now(), last_error = 'held back: an earlier signal of "   \
  "this invoice is dead (outbox id ' || h.dead_id || ')' "                                \
  "FROM (SELECT l.id, (SELECT min(e.id) FROM outbox e WHERE e.invoice_id = l.invoice_id " \
  "  AND e.id < l.id AND e.dead_at IS NOT NULL AND e.delivered_at IS NULL) AS dead_id "   \
  "  FROM outbox l WHERE l.delivered_at IS NULL AND l.dead_at IS NULL " SCOPE ") h "      \
  "WHERE o.id = h.id AND h.dead_id IS NOT NULL RETURNING o.id"

inline constexpr statement hold_back_for{"billing_outbox_hold_back_for", BILLING_OUTBOX_HOLD_BACK(
  "AND l.invoice_id IN (SELECT x.invoice_id FROM outbox x WHERE x.id = ANY($1::bigint[]))")};
inline constexpr statement hold_back_all{"billing_outbox_hold_back_all", BILLING_OUTBOX_HOLD_BACK(
  "AND l.invoice_id IN (SELECT d.invoice_id FROM outbox d "
  "WHERE d.dead_at IS NOT NULL AND d.delivered_at IS NULL)")};
#undef BILLING_OUTBOX_HOLD_BACK

inline constexpr statement stats{"billing_outbox_stats", R"sql(
SELECT
  (SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND dead_at IS NULL),
  (SELECT count(*) FROM outbox WHERE dead_at IS NOT NULL AND delivered_at IS NULL),
  (SELECT (extract(epoch FROM now() - min(enqueued_at)) * 1000)::bigint
   FROM outbox WHERE delivered_at IS NULL AND dead_at IS NULL))sql"};

// Re-drive: due now, attempts and the horizon start afresh.
#define BILLING_OUTBOX_REDRIVE(SCOPE)                                                        \
  "UPDATE outbox o SET dead_at = NULL, attempts = 0, next_attempt_at = now(), "              \
  "enqueued_at = clock_timestamp() WHERE o.dead_at IS NOT NULL AND o.delivered_at IS NULL " \
  SCOPE " RETURNING o.id"

inline constexpr statement redrive_ids{"billing_outbox_redrive_ids", BILLING_OUTBOX_REDRIVE(
  "AND EXISTS (SELECT 1 FROM outbox x WHERE x.id = ANY($1::bigint[]) "
  "AND x.invoice_id = o.invoice_id AND x.id <= o.id)")};
inline constexpr statement redrive_all{"billing_outbox_redrive_all", BILLING_OUTBOX_REDRIVE("")};
#undef BILLING_OUTBOX_REDRIVE

inline constexpr statement all_statements[] = {
  claim, delivered, retry, dead, hold_back_for, hold_back_all, stats, redrive_ids, redrive_all,
};

} // namespace billing::sql::outbox
