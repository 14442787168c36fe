-- billingd schema, version 3: a batch of transitions in one round trip, only
-- the indexes a query uses, and retention.

-- No query looks outbox rows up by invoice without `delivered_at IS NULL`
-- (outbox_statements.hpp): outbox_undelivered_invoice_idx (0002) answers all
-- of them, so this index only cost an insert per transition.
DROP INDEX IF EXISTS outbox_invoice_idx;

-- Retention (persistence/pruner): old webhook_events and delivered outbox
-- rows are deleted by age. Rows arrive in time order, so a BRIN index finds
-- old ones for the price of a few pages, and costs next to nothing per insert.
CREATE INDEX webhook_events_received_brin ON webhook_events USING brin (received_at);
CREATE INDEX outbox_created_brin ON outbox USING brin (created_at);

-- One batch of the group-commit writer (persistence/pg_store.cpp) in one
-- statement, so that in autocommit the batch costs one round trip, COMMIT
-- included. The contract is pg_store::write_batch's, for batches in which
-- no invoice has two changes (the writer takes that path only then; chains
-- go through the statement-per-table path):
--   e_*: the event rows, in-batch duplicates already removed by the caller;
--        a command whose event id is already recorded is a duplicate and
--        nothing else of it is written;
--   c_*: the invoice changes; c_expected 0 inserts (a clash on the id, on
--        (workflow_id, shipment_id) or on provider_intent_id is a conflict),
--        otherwise compare-and-set on version; a conflicted command takes its
--        event row back out, so a retry can record it;
--   s_*: the outbox rows of the commands that made it.
-- Returns the positions (the callers' *_ord) that are duplicates and those
-- that conflicted; every other command committed.
CREATE FUNCTION billing_write_batch(
  e_ord int[], e_id text[], e_type text[], e_invoice uuid[], e_outcome text[], e_received bigint[],
  c_ord int[], c_expected bigint[], c_id uuid[], c_user text[], c_shipment text[],
  c_workflow text[], c_amount bigint[], c_currency text[], c_status text[], c_provider text[],
  c_intent text[], c_sealed text[], c_expires bigint[], c_created bigint[], c_updated bigint[],
  c_paid bigint[], c_last_event bigint[], c_fcode text[], c_fmsg text[],
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
                         c_created, c_updated, c_paid, c_last_event, c_fcode, c_fmsg)
      AS u(ord, expected, id, user_id, shipment_id, workflow_id, amount_cents, currency, status,
           provider, intent, sealed, expires_at, created_at, updated_at, paid_at, last_event_at,
           fcode, fmsg)
    WHERE NOT (u.ord = ANY (duplicates))
  ), inserted AS (
    INSERT INTO invoices (id, user_id, shipment_id, workflow_id, amount_cents, currency, status,
                          version, provider, provider_intent_id, client_secret_sealed, expires_at,
                          created_at, updated_at, paid_at, last_event_at, failure_code,
                          failure_message)
    SELECT id, user_id, shipment_id, workflow_id, amount_cents, currency, status, 1, provider,
           intent, sealed, to_timestamp(expires_at), to_timestamp(created_at),
           to_timestamp(updated_at), to_timestamp(paid_at), to_timestamp(last_event_at), fcode, fmsg
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
      failure_message = u.fmsg
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
