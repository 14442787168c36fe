#pragma once
// Every SQL statement billingd runs at run time, declared once, prepared by
// name on each new connection (pg_store::connect). Internal to persistence/.
//
// Writes take whole columns as array parameters and unnest them, so a batch
// costs one round trip per table whatever its size. Times cross as unix
// seconds: to_timestamp() in, extract(epoch ...)::bigint out.

namespace billing::sql {

struct statement {
  const char* name;
  const char* sql;
};

inline constexpr statement insert_events{"billing_insert_events", R"sql(
INSERT INTO webhook_events (event_id, type, invoice_id, outcome, received_at)
SELECT u.event_id, u.type, u.invoice_id, u.outcome, to_timestamp(u.received_at)
FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::bigint[])
  AS u(event_id, type, invoice_id, outcome, received_at)
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id)sql"};

inline constexpr statement delete_events{"billing_delete_events", R"sql(
DELETE FROM webhook_events WHERE event_id = ANY($1::text[]))sql"};

// ON CONFLICT DO NOTHING without a target: a clash on the id, on
// (workflow_id, shipment_id), on provider_intent_id or on
// provider_session_id skips the row. The join maps inserted ids back to the
// caller's positions ($22).
inline constexpr statement insert_invoices{"billing_insert_invoices", R"sql(
WITH u AS (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                       $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                       $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[],
                       $15::bigint[], $16::text[], $17::text[], $18::text[], $19::text[],
                       $20::bigint[], $21::int[], $22::int[])
    AS u(id, user_id, shipment_id, workflow_id, amount_cents, currency, status, provider,
         provider_intent_id, client_secret_sealed, expires_at, created_at, updated_at,
         paid_at, last_event_at, failure_code, failure_message, mode, provider_session_id,
         refunded_cents, expiry_retries, ord)
), ins AS (
  INSERT INTO invoices (id, user_id, shipment_id, workflow_id, amount_cents, currency,
                        status, version, provider, provider_intent_id, client_secret_sealed,
                        expires_at, created_at, updated_at, paid_at, last_event_at,
                        failure_code, failure_message, mode, provider_session_id,
                        refunded_cents, expiry_retries)
  SELECT id, user_id, shipment_id, workflow_id, amount_cents, currency, status, 1, provider,
         provider_intent_id, client_secret_sealed, to_timestamp(expires_at),
         to_timestamp(created_at), to_timestamp(updated_at), to_timestamp(paid_at),
         to_timestamp(last_event_at), failure_code, failure_message, mode, provider_session_id,
         refunded_cents, expiry_retries
  FROM u ORDER BY ord
  ON CONFLICT DO NOTHING
  RETURNING id
)
SELECT u.ord FROM ins JOIN u USING (id))sql"};

// Compare-and-set on version. Identity columns (user, shipment, workflow,
// amount, currency, provider, mode, created_at) are written by the insert
// only; reconciliation's schedule columns by its claim only.
inline constexpr statement update_invoices{"billing_update_invoices", R"sql(
UPDATE invoices AS i SET
  status = u.status,
  version = u.expected_version + 1,
  provider_intent_id = u.provider_intent_id,
  client_secret_sealed = u.client_secret_sealed,
  expires_at = to_timestamp(u.expires_at),
  updated_at = to_timestamp(u.updated_at),
  paid_at = to_timestamp(u.paid_at),
  last_event_at = to_timestamp(u.last_event_at),
  failure_code = u.failure_code,
  failure_message = u.failure_message,
  provider_session_id = u.provider_session_id,
  refunded_cents = u.refunded_cents,
  expiry_retries = u.expiry_retries
FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[],
            $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::text[],
            $13::bigint[], $14::int[], $15::int[])
  AS u(id, expected_version, status, provider_intent_id, client_secret_sealed, expires_at,
       updated_at, paid_at, last_event_at, failure_code, failure_message, provider_session_id,
       refunded_cents, expiry_retries, ord)
WHERE i.id = u.id AND i.version = u.expected_version
RETURNING u.ord)sql"};

inline constexpr statement insert_outbox{"billing_insert_outbox", R"sql(
INSERT INTO outbox (invoice_id, signal, payload, created_at)
SELECT u.invoice_id, u.signal, u.payload::jsonb, to_timestamp(u.created_at)
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY
  AS u(invoice_id, signal, payload, created_at, ord)
ORDER BY u.ord)sql"};

// A whole batch in one statement (the function is migration 0004's).
inline constexpr statement write_batch_stmt{"billing_write_batch_fn",
  "SELECT duplicates::text, conflicts::text FROM billing_write_batch("
  "$1::int[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::bigint[], "
  "$7::int[], $8::bigint[], $9::uuid[], $10::text[], $11::text[], $12::text[], $13::bigint[], "
  "$14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::bigint[], $20::bigint[], "
  "$21::bigint[], $22::bigint[], $23::bigint[], $24::text[], $25::text[], "
  "$26::text[], $27::text[], $28::bigint[], $29::int[], "
  "$30::int[], $31::uuid[], $32::text[], $33::text[], $34::bigint[])"};

#define BILLING_INVOICE_COLUMNS                                                          \
  "id::text, user_id, shipment_id, workflow_id, amount_cents, currency, status, version, " \
  "provider, provider_intent_id, extract(epoch FROM expires_at)::bigint, "              \
  "extract(epoch FROM created_at)::bigint, extract(epoch FROM updated_at)::bigint, "    \
  "extract(epoch FROM paid_at)::bigint, extract(epoch FROM last_event_at)::bigint, "    \
  "failure_code, failure_message, mode, provider_session_id, refunded_cents, expiry_retries"

inline constexpr statement load_invoice{"billing_load_invoice",
  "SELECT " BILLING_INVOICE_COLUMNS ", client_secret_sealed FROM invoices WHERE id = $1::uuid"};

// Hydration of many invoice actors at once (a burst reaching cold invoices).
inline constexpr statement load_invoices{"billing_load_invoices",
  "SELECT " BILLING_INVOICE_COLUMNS ", client_secret_sealed FROM invoices WHERE id = ANY($1::uuid[])"};

inline constexpr statement find_by_intent_stmt{"billing_find_by_intent",
  "SELECT id::text FROM invoices WHERE provider_intent_id = $1"};

inline constexpr statement list_by_shipment{"billing_list_by_shipment",
  "SELECT " BILLING_INVOICE_COLUMNS " FROM invoices WHERE shipment_id = $1"
  " ORDER BY created_at DESC, id DESC LIMIT $2"};

inline constexpr statement list_by_workflow{"billing_list_by_workflow",
  "SELECT " BILLING_INVOICE_COLUMNS " FROM invoices WHERE workflow_id = $1"
  " ORDER BY created_at DESC, id DESC LIMIT $2"};

inline constexpr statement list_by_both{"billing_list_by_both",
  "SELECT " BILLING_INVOICE_COLUMNS " FROM invoices WHERE workflow_id = $1 AND shipment_id = $2"
  " ORDER BY created_at DESC, id DESC LIMIT $3"};

// The predicate repeats invoices_expiry_idx's WHERE clause so the partial
// index applies.
inline constexpr statement due_for_expiry_stmt{"billing_due_for_expiry",
  "SELECT id::text FROM invoices WHERE status IN ('PENDING', 'FAILED')"
  " AND expires_at <= to_timestamp($1) ORDER BY expires_at LIMIT $2"};

#undef BILLING_INVOICE_COLUMNS

// Retention, a chunk at a time (the BRIN indexes of migration 0003 find the
// old rows). Event ids older than Stripe retries (3 days) cannot come back.
inline constexpr statement prune_events{"billing_prune_events",
  "DELETE FROM webhook_events WHERE ctid = ANY (ARRAY(SELECT ctid FROM webhook_events"
  " WHERE received_at < now() - make_interval(secs => $1) LIMIT $2))"};
inline constexpr statement prune_outbox{"billing_prune_outbox",
  "DELETE FROM outbox WHERE ctid = ANY (ARRAY(SELECT ctid FROM outbox"
  " WHERE created_at < now() - make_interval(secs => $1) AND delivered_at IS NOT NULL LIMIT $2))"};

inline constexpr statement all_statements[] = {
  write_batch_stmt, insert_events, delete_events, insert_invoices, update_invoices, insert_outbox, load_invoice,
  load_invoices,
  find_by_intent_stmt, list_by_shipment, list_by_workflow, list_by_both, due_for_expiry_stmt,
  prune_events, prune_outbox,
};

} // namespace billing::sql
