// Helpers of the workflow-bridge tests (tests/bridge/*.test.mjs). The
// generic ones (databases, billingd, webhooks) come from
// tests/integration/lib.mjs; these add what the bridge needs: paying
// invoices through signed webhooks, the outbox as the oracle, the request
// id derivation, and the check every test ends with.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { agent, billingdEnv, eventBody, pool, sendWebhook, sleep } from '../integration/lib.mjs';

export const DEFAULT_NAMES = {
  PaymentConfirmed: 'PaymentConfirmed',
  PaymentFailed: 'PaymentFailed',
  PaymentCancelled: 'PaymentCancelled',
  PaymentRefunded: 'PaymentRefunded',
  PaymentDisputed: 'PaymentDisputed',
};

// protocol/outbox.cpp outbox_request_id(), independently: a UUID v8 of SHA-256.
export function requestIdFor(outboxId, invoiceId) {
  const key = `billingd/outbox/v1\n${Buffer.byteLength(invoiceId)}:${invoiceId}${outboxId}`;
  const d = createHash('sha256').update(key).digest();
  d[6] = (d[6] & 0x0f) | 0x80;
  d[8] = (d[8] & 0x3f) | 0x80;
  const h = d.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

// Sends one signed webhook per (invoice, kind) step, each invoice's steps in
// order, invoices concurrently. steps: [{inv, kind, created}].
export async function payThroughWebhooks(base, r, secret, steps, { concurrency = 32 } = {}) {
  const ag = agent(concurrency);
  const byInvoice = new Map();
  for (const s of steps) {
    if (!byInvoice.has(s.inv.id)) byInvoice.set(s.inv.id, []);
    byInvoice.get(s.inv.id).push(s);
  }
  const answers = [];
  await pool([...byInvoice.values()], concurrency, async (list) => {
    for (const s of list) {
      const id = `evt_3${r.token(24)}`;
      const body = eventBody(r, { id, kind: s.kind, created: s.created, inv: s.inv });
      const sentAt = Date.now();
      const res = await sendWebhook(base, body, secret, ag, 30_000);
      assert.equal(res.status, 200, `webhook ${s.kind} for ${s.inv.id}: ${res.status} ${res.text ?? res.error}`);
      answers.push({ invoice: s.inv.id, kind: s.kind, outcome: res.json?.outcome, sentAt, answeredAt: Date.now() });
    }
  });
  ag.destroy();
  return answers;
}

// One step per invoice: `kind` for all (default succeeded).
export function simpleSteps(invoices, kind = 'succeeded') {
  const t = Math.floor(Date.now() / 1000) - 60;
  return invoices.map((inv) => ({ inv, kind, created: t }));
}

// failed, then succeeded: two signals per invoice, in that order.
export function twoStepSteps(invoices) {
  const t = Math.floor(Date.now() / 1000) - 120;
  return invoices.flatMap((inv) => [{ inv, kind: 'failed', created: t }, { inv, kind: 'succeeded', created: t + 30 }]);
}

export async function outboxRows(db) {
  return db.query(`SELECT o.id::bigint AS id, o.invoice_id::text AS invoice_id, i.workflow_id, o.signal, o.payload,
      o.delivered_at IS NOT NULL AS delivered, o.dead_at IS NOT NULL AS dead, o.attempts, o.last_error,
      (extract(epoch FROM o.delivered_at - o.enqueued_at) * 1000)::float8 AS latency_ms
    FROM outbox o JOIN invoices i ON i.id = o.invoice_id ORDER BY o.id`);
}

export async function waitOutbox(db, pred, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let rows = [];
  while (Date.now() < deadline) {
    rows = await outboxRows(db);
    if (pred(rows)) return rows;
    await sleep(250);
  }
  const delivered = rows.filter((x) => x.delivered).length;
  const dead = rows.filter((x) => x.dead).length;
  assert.fail(`${what}: not reached within ${timeoutMs} ms (${rows.length} rows, ${delivered} delivered, ${dead} dead; ` +
    `e.g. ${JSON.stringify(rows.find((x) => !x.delivered && !x.dead) ?? rows.find((x) => x.dead) ?? {})})`);
}

export const allDelivered = (n) => (rows) => rows.length >= n && rows.every((x) => x.delivered);

// Every record is one outbox row's signal (request id derived from the row,
// right workflow, name and payload); repeats only with the same request id and
// identical contents; every delivered row was received; per workflow the
// signals arrived in outbox order. Returns problems (empty when all is well).
export function checkSignals(rows, records, { names = DEFAULT_NAMES, requireAll = true } = {}) {
  const problems = [];
  const byRequest = new Map(rows.map((row) => [requestIdFor(row.id, row.invoice_id), row]));
  const seen = new Map();
  for (const rec of records) {
    const row = byRequest.get(rec.requestId);
    if (!row) {
      problems.push(`signal ${rec.signalName} to ${rec.workflowId} with request id ${rec.requestId} matches no outbox row`);
      continue;
    }
    if (rec.workflowId !== row.workflow_id) problems.push(`row ${row.id}: workflow ${rec.workflowId}, expected ${row.workflow_id}`);
    if (rec.signalName !== names[row.signal]) problems.push(`row ${row.id}: signal ${rec.signalName}, expected ${names[row.signal]}`);
    try {
      assert.deepEqual(rec.data, row.payload);
    } catch {
      problems.push(`row ${row.id}: payload ${JSON.stringify(rec.data)}, expected ${JSON.stringify(row.payload)}`);
    }
    if (!seen.has(rec.requestId)) seen.set(rec.requestId, { row, first: rec, count: 0 });
    const s = seen.get(rec.requestId);
    s.count++;
    if (JSON.stringify([rec.workflowId, rec.signalName, rec.data]) !== JSON.stringify([s.first.workflowId, s.first.signalName, s.first.data]))
      problems.push(`request id ${rec.requestId} carried two different signals`);
  }
  for (const row of rows) {
    if (row.delivered && !seen.has(requestIdFor(row.id, row.invoice_id)))
      problems.push(`row ${row.id} (${row.signal} for ${row.workflow_id}) is marked delivered but never reached the receiver`);
    if (requireAll && !row.delivered) problems.push(`row ${row.id} (${row.signal}) is not delivered (dead: ${row.dead}, ${row.last_error})`);
  }
  // Per-invoice order: first arrivals per workflow follow the outbox ids.
  const lastId = new Map();
  const firstSeen = new Set();
  for (const rec of records) {
    const row = byRequest.get(rec.requestId);
    if (!row || firstSeen.has(rec.requestId)) continue;
    firstSeen.add(rec.requestId);
    const prev = lastId.get(row.invoice_id);
    if (prev !== undefined && prev > row.id) problems.push(`invoice ${row.invoice_id}: row ${row.id} arrived after row ${prev}`);
    lastId.set(row.invoice_id, row.id);
  }
  return problems;
}

export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function summary(values) {
  const s = [...values].sort((a, b) => a - b);
  const f = (x) => Math.round(x * 10) / 10;
  return { n: s.length, p50: f(percentile(s, 50)), p90: f(percentile(s, 90)), p99: f(percentile(s, 99)), max: f(s.at(-1)) };
}

// `billingd outbox retry ...` against the test database.
export function outboxRetry(billingd, opts, args) {
  const r = spawnSync(billingd, ['outbox', 'retry', ...args], { env: billingdEnv({}, opts), encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `billingd outbox retry ${args.join(' ')}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

// Settings for billingd talking to the fake Temporal.
export function temporalArgs(fake, extra = []) {
  return ['--sink=temporal', `--temporal-address=${fake.address}`, '--bridge-timeout-ms=2000',
    '--bridge-retry-min-ms=100', '--bridge-retry-max-ms=1000', '--bridge-scan-interval-ms=500', ...extra];
}
