-- billingd schema, version 1. Applied once, inside a transaction, by
-- persistence/migrations.cpp; recorded in schema_migrations. Never edit a
-- migration that has shipped: add the next numbered file instead.

CREATE TABLE invoices (
  id                   uuid        PRIMARY KEY,
  user_id              text        NOT NULL CHECK (user_id <> ''),
  shipment_id          text        NOT NULL CHECK (shipment_id <> ''),
  workflow_id          text        NOT NULL CHECK (workflow_id <> ''),
  amount_cents         bigint      NOT NULL CHECK (amount_cents > 0),
  currency             text        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
  status               text        NOT NULL CHECK (status IN
                         ('PENDING', 'PAID', 'FAILED', 'CANCELLED', 'REFUNDED', 'DISPUTED')),
  version              bigint      NOT NULL CHECK (version > 0),
  provider             text        NOT NULL CHECK (provider <> ''),
  provider_intent_id   text        UNIQUE CHECK (provider_intent_id <> ''),
  -- base64 of the secret_box-sealed client secret; never the secret itself.
  client_secret_sealed text,
  expires_at           timestamptz NOT NULL,
  created_at           timestamptz NOT NULL,
  updated_at           timestamptz NOT NULL,
  paid_at              timestamptz,
  last_event_at        timestamptz,
  failure_code         text,
  failure_message      text,
  CONSTRAINT invoices_workflow_shipment_key UNIQUE (workflow_id, shipment_id)
);

-- The expiry sweeper: due_for_expiry() repeats this predicate verbatim.
CREATE INDEX invoices_expiry_idx ON invoices (expires_at)
  WHERE status IN ('PENDING', 'FAILED');
-- list(shipment_id); workflow_id lookups use the unique key above.
CREATE INDEX invoices_shipment_idx ON invoices (shipment_id, created_at);

CREATE TABLE webhook_events (
  event_id    text        PRIMARY KEY CHECK (event_id <> ''),
  type        text        NOT NULL,
  invoice_id  uuid,
  outcome     text        NOT NULL CHECK (outcome IN
                ('applied', 'ignored-duplicate', 'ignored-stale', 'ignored-no-effect',
                 'ignored-unknown-invoice', 'rejected-mismatch', 'rejected-invalid-state')),
  received_at timestamptz NOT NULL
);

CREATE TABLE outbox (
  id              bigserial   PRIMARY KEY,
  invoice_id      uuid        NOT NULL,
  signal          text        NOT NULL CHECK (signal <> ''),
  payload         jsonb       NOT NULL,
  created_at      timestamptz NOT NULL,
  delivered_at    timestamptz,
  attempts        int         NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error      text,
  dead_at         timestamptz
);

-- The workflow bridge's work queue: only undelivered, live rows.
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at)
  WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX outbox_invoice_idx ON outbox (invoice_id);
