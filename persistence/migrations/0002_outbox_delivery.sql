-- billingd schema, version 2: what the workflow bridge needs to deliver the
-- outbox (persistence/outbox_store.cpp holds the queries).

-- When the row entered the delivery queue: set by the database as the
-- transition's transaction inserts it (so latency is measured on one clock,
-- in milliseconds), and again when an operator re-drives a dead row. The
-- retry horizon counts from here; commit-to-signal latency is
-- delivered_at - enqueued_at.
ALTER TABLE outbox ADD COLUMN enqueued_at timestamptz;
UPDATE outbox SET enqueued_at = created_at;
ALTER TABLE outbox ALTER COLUMN enqueued_at SET DEFAULT clock_timestamp();
ALTER TABLE outbox ALTER COLUMN enqueued_at SET NOT NULL;

-- Per-invoice order: a row is claimable only when no earlier row of its
-- invoice is undelivered. This index answers that question.
CREATE INDEX outbox_undelivered_invoice_idx ON outbox (invoice_id, id)
  WHERE delivered_at IS NULL;

-- Dead rows, for the metrics and `billingd outbox retry --all-dead`.
CREATE INDEX outbox_dead_idx ON outbox (id)
  WHERE dead_at IS NOT NULL AND delivered_at IS NULL;
