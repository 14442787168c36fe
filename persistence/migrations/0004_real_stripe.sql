-- billingd schema, version 4: real Stripe. Checkout invoices (a Checkout
-- Session instead of a PaymentIntent at creation), refunds (the refunded
-- total), the expiry race (postponed expiry while a payment is in flight),
-- and reconciliation (its schedule per invoice, the event log's checkpoint).

ALTER TABLE invoices
  ADD COLUMN mode text NOT NULL DEFAULT 'payment_intent'
    CHECK (mode IN ('payment_intent', 'checkout')),
  -- The Checkout Session of a checkout invoice; its PaymentIntent goes in
  -- provider_intent_id once the customer confirmed.
  ADD COLUMN provider_session_id text UNIQUE CHECK (provider_session_id <> ''),
  -- The payment's refunded total as Stripe reports it (absolute, never summed).
  ADD COLUMN refunded_cents bigint NOT NULL DEFAULT 0
    CHECK (refunded_cents >= 0 AND refunded_cents <= amount_cents),
  -- How often expiry found a payment processing and postponed expires_at.
  ADD COLUMN expiry_retries int NOT NULL DEFAULT 0 CHECK (expiry_retries >= 0),
  -- Reconciliation's schedule (persistence/reconcile_store.cpp). Written by
  -- its claim only, outside the compare-and-set on version: a claim never
  -- conflicts with a transition, and the writer never touches these.
  ADD COLUMN reconcile_after timestamptz,
  ADD COLUMN reconcile_checks int NOT NULL DEFAULT 0;

-- Reconciliation's candidates: unsettled invoices quiet since updated_at.
CREATE INDEX invoices_reconcile_idx ON invoices (updated_at)
  WHERE status IN ('PENDING', 'FAILED');

-- Where reconciliation's pass over Stripe's event log (GET /v1/events) has
-- got to: events created up to `position` (unix seconds) are applied. One
-- replica at a time holds the lease and pages the log.
CREATE TABLE reconcile_checkpoints (
  name         text        PRIMARY KEY CHECK (name <> ''),
  position     bigint      NOT NULL,
  leased_by    text,
  leased_until timestamptz,
  updated_at   timestamptz NOT NULL
);

-- billing_write_batch (migration 0003) with the new invoice columns: the same
-- contract, c_mode/c_session/c_refunded/c_retries after c_fmsg. Its argument
-- list changes, so the old one is dropped (CREATE OR REPLACE would add an
-- overload beside it).
DROP FUNCTION billing_write_batch(
  int[], text[], text[], uuid[], text[], bigint[],
  int[], bigint[], uuid[], text[], text[], text[], bigint[], text[], text[], text[],
  text[], text[], bigint[], bigint[], bigint[], bigint[], bigint[], text[], text[],
  int[], uuid[], text[], text[], bigint[]);

CREATE FUNCTION billing_write_batch(
  e_ord int[], e_id text[], e_type text[], e_invoice uuid[], e_outcome text[], e_received bigint[],
  c_ord int[], c_expected bigint[], c_id uuid[], c_user text[], c_shipment text[],
  c_workflow text[], c_amount bigint[], c_currency text[], c_status text[], c_provider text[],
  c_intent text[], c_sealed text[], c_expires bigint[], c_created bigint[], c_updated bigint[],
  c_paid bigint[], c_last_event bigint[], c_fcode text[], c_fmsg text[],
  c_mode text[], c_session text[], c_refunded bigint[], c_retries int[],
  s_ord int[], s_invoice uuid[], s_signal text[], s_payload text[], s_created bigint[],
  OUT duplicates int[], OUT conflicts int[])
LANGUAGE plpgsql AS $$
BEGIN
  WITH written AS (
    INSERT INTO webhook_events (event_id, type, invoice_id, outcome, received_at)
    SELECT u.id, u.type, u.inv, u.outcome, to_timestamp(u.rec)
    FROM unnest(e_ord, e_id, e_type, e_invoice, e_outcome, e_received)
      AS u(ord, id, type, inv, outcome, rec)
    ORDER BY u.ord
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id)
  SELECT coalesce(array_agg(u.ord), '{}') INTO duplicates
  FROM unnest(e_ord, e_id) AS u(ord, id)
  WHERE u.id NOT IN (SELECT event_id FROM written);

  WITH u AS (
    SELECT * FROM unnest(c_ord, c_expected, c_id, c_user, c_shipment, c_workflow, c_amount,
                         c_currency, c_status, c_provider, c_intent, c_sealed, c_expires,
                         c_created, c_updated, c_paid, c_last_event, c_fcode, c_fmsg,
                         c_mode, c_session, c_refunded, c_retries)
      AS u(ord, expected, id, user_id, shipment_id, workflow_id, amount_cents, currency, status,
           provider, intent, sealed, expires_at, created_at, updated_at, paid_at, last_event_at,
           fcode, fmsg, mode, session, refunded, retries)
    WHERE NOT (u.ord = ANY (duplicates))
  ), inserted AS (
    INSERT INTO invoices (id, user_id, shipment_id, workflow_id, amount_cents, currency, status,
                          version, provider, provider_intent_id, client_secret_sealed, expires_at,
                          created_at, updated_at, paid_at, last_event_at, failure_code,
                          failure_message, mode, provider_session_id, refunded_cents,
                          expiry_retries)
    SELECT id, user_id, shipment_id, workflow_id, amount_cents, currency, status, 1, provider,
           intent, sealed, to_timestamp(expires_at), to_timestamp(created_at),
           to_timestamp(updated_at), to_timestamp(paid_at), to_timestamp(last_event_at), fcode, fmsg,
           mode, session, refunded, retries
    FROM u WHERE u.expected = 0 ORDER BY u.ord
    ON CONFLICT DO NOTHING
    RETURNING id
  ), updated AS (
    UPDATE invoices AS i SET
      status = u.status,
      version = u.expected + 1,
      provider_intent_id = u.intent,
      client_secret_sealed = u.sealed,
      expires_at = to_timestamp(u.expires_at),
      updated_at = to_timestamp(u.updated_at),
      paid_at = to_timestamp(u.paid_at),
      last_event_at = to_timestamp(u.last_event_at),
      failure_code = u.fcode,
      failure_message = u.fmsg,
      provider_session_id = u.session,
      refunded_cents = u.refunded,
      expiry_retries = u.retries
    FROM u
    WHERE u.expected > 0 AND i.id = u.id AND i.version = u.expected
    RETURNING u.ord
  )
  SELECT coalesce(array_agg(u.ord), '{}') INTO conflicts
  FROM u
  WHERE (u.expected = 0 AND u.id NOT IN (SELECT id FROM inserted))
     OR (u.expected > 0 AND u.ord NOT IN (SELECT ord FROM updated));

  IF cardinality(conflicts) > 0 THEN
    DELETE FROM webhook_events
    WHERE event_id IN (SELECT u.id FROM unnest(e_ord, e_id) AS u(ord, id)
                       WHERE u.ord = ANY (conflicts));
  END IF;

  INSERT INTO outbox (invoice_id, signal, payload, created_at)
  SELECT u.inv, u.signal, u.payload::jsonb, to_timestamp(u.created)
  FROM unnest(s_ord, s_invoice, s_signal, s_payload, s_created) AS u(ord, inv, signal, payload, created)
  WHERE NOT (u.ord = ANY (duplicates)) AND NOT (u.ord = ANY (conflicts))
  ORDER BY u.ord;
END
$$;
