// Shared helpers for the integration tests (label `integration`): a fresh
// database per test file, billingd started and stopped as a child process,
// Stripe-format webhook bodies signed with the official `stripe` SDK, a
// keep-alive HTTP client with bounded concurrency, the lifecycle oracle and
// the database checks every burst test ends with.
//
// The tests run under ctest, which sets BILLINGD, PG_BIN and REPO; scripts/test
// exports BILLING_TEST_DATABASE_URL (a throwaway PostgreSQL 15 cluster). The
// npm packages (stripe, pg) live in tests/node: `npm ci` there.
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFile } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeDir = path.resolve(here, '../node');
const require = createRequire(path.join(nodeDir, 'package.json'));

function load(name) {
  try {
    return require(name);
  } catch (e) {
    throw new Error(`the npm package '${name}' is not installed: run \`npm ci\` in ${nodeDir} (${e.message})`);
  }
}
const Stripe = load('stripe');
const pg = load('pg');
// bigint counts as JS numbers (they stay far below 2^53 here).
pg.types.setTypeParser(20, (v) => Number(v));

export const stripe = new Stripe('sk_test_integration_not_used');

// ---- environment -----------------------------------------------------------

// Throws (the test fails, never skips) when the environment is incomplete.
export function requireEnv() {
  const adminUrl = process.env.BILLING_TEST_DATABASE_URL;
  if (!adminUrl)
    throw new Error('BILLING_TEST_DATABASE_URL is not set: the integration tests need a real PostgreSQL 15 ' +
      '(scripts/test starts one and exports it; by hand: BILLING_TEST_DATABASE_URL=$(scripts/pg start DIR PORT))');
  const billingd = process.env.BILLINGD;
  if (!billingd || !existsSync(billingd))
    throw new Error(`BILLINGD must name the built billingd binary (got ${billingd}); run this test through ctest`);
  const repo = process.env.REPO || path.resolve(here, '../..');
  const pgBin = process.env.PG_BIN || '/usr/lib/postgresql/15/bin';
  return { adminUrl, billingd, repo, pgBin };
}

// ---- seeded randomness -----------------------------------------------------

// mulberry32: small, seeded, good enough for test data.
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)); // inclusive
  next.pick = (xs) => xs[next.int(0, xs.length - 1)];
  next.shuffle = (xs) => {
    for (let i = xs.length - 1; i > 0; --i) {
      const j = next.int(0, i);
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  };
  next.token = (n) => {
    const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    let s = '';
    for (let i = 0; i < n; ++i) s += abc[next.int(0, abc.length - 1)];
    return s;
  };
  return next;
}

export function seedFor(name) {
  const seed = Number(process.env.BILLING_IT_SEED ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`${name}: seed ${seed} (set BILLING_IT_SEED=${seed} to replay)`);
  return seed;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- PostgreSQL ------------------------------------------------------------

export function dbUrl(adminUrl, database) {
  const u = new URL(adminUrl);
  u.pathname = '/' + database;
  return u.toString();
}

export async function withClient(url, fn) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

// A fresh database on the test cluster; returns its URL and a drop().
export async function createDatabase(adminUrl, name) {
  const database = `it_${name}_${process.pid}_${randomBytes(3).toString('hex')}`.toLowerCase();
  await withClient(adminUrl, (c) => c.query(`CREATE DATABASE ${database}`));
  const url = dbUrl(adminUrl, database);
  return {
    name: database,
    url,
    drop: () => withClient(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)),
  };
}

// Connection to the database under test, with the queries the checks use.
export class Db {
  constructor(url) {
    this.url = url;
    this.client = null;
  }
  async open() {
    this.client = new pg.Client({ connectionString: this.url });
    this.client.on('error', (e) => console.log(`database connection error: ${e.message}`));
    await this.client.connect();
    return this;
  }
  async close() {
    if (this.client) await this.client.end().catch(() => {});
    this.client = null;
  }
  async query(sql, params) {
    return (await this.client.query(sql, params)).rows;
  }
  async counts() {
    const [r] = await this.query(`SELECT
      (SELECT count(*) FROM invoices) AS invoices,
      (SELECT count(*) FROM webhook_events) AS webhook_events,
      (SELECT count(*) FROM outbox) AS outbox`);
    return r;
  }
  // Counts plus a digest of every row of invoices, webhook_events and
  // outbox: any change shows.
  async fingerprint() {
    const c = await this.counts();
    const [d] = await this.query(`SELECT
      (SELECT md5(coalesce(string_agg(i::text, '|' ORDER BY i.id), '')) FROM invoices i) AS invoices_md5,
      (SELECT md5(coalesce(string_agg(w::text, '|' ORDER BY w.event_id), '')) FROM webhook_events w) AS webhook_events_md5,
      (SELECT md5(coalesce(string_agg(o::text, '|' ORDER BY o.id), '')) FROM outbox o) AS outbox_md5`);
    return { ...c, ...d };
  }
  async statuses() {
    const rows = await this.query('SELECT id::text, status, version, failure_code, failure_message FROM invoices');
    return new Map(rows.map((r) => [r.id, r]));
  }
  async webhookEvents() {
    const rows = await this.query('SELECT event_id, type, invoice_id::text, outcome FROM webhook_events');
    return new Map(rows.map((r) => [r.event_id, r]));
  }
  async outboxByInvoice() {
    const rows = await this.query('SELECT id, invoice_id::text, signal, payload FROM outbox ORDER BY id');
    const m = new Map();
    for (const r of rows) {
      if (!m.has(r.invoice_id)) m.set(r.invoice_id, []);
      m.get(r.invoice_id).push(r);
    }
    return m;
  }
}

// ---- billingd --------------------------------------------------------------

// The admin listener (/metrics) of each billingd started here, by API base URL.
const adminFor = new Map();

const children = new Set();
process.on('exit', () => {
  for (const p of children) {
    try { p.kill('SIGKILL'); } catch {}
  }
});

export function billingdEnv(env, { dbUrl: url, webhookSecret, secretKey, apiKeys }) {
  return {
    ...process.env,
    BILLING_DATABASE_URL: url,
    BILLING_WEBHOOK_SECRETS: webhookSecret,
    BILLING_SECRET_KEY: secretKey,
    BILLING_API_KEYS: apiKeys ?? '',
    ...env,
  };
}

// An API key as `billingd keys new` makes them, and its configuration entry.
export function newApiKey(name, scopes) {
  const key = 'bk_' + randomBytes(32).toString('base64url');
  const sha256 = createHash('sha256').update(key).digest('hex');
  return { name, key, scopes, entry: `name=${name} sha256=${sha256} scopes=${scopes.join(',')}` };
}

export const ALL_SCOPES = ['invoices:write', 'invoices:read', 'simulator', 'admin'];

// The key request() sends when the caller names none (auth: undefined); the
// last newSecrets() sets it. auth: null sends no Authorization header.
let defaultApiKey;

export function newSecrets() {
  const key = newApiKey('it', ALL_SCOPES);
  defaultApiKey = key.key;
  return {
    webhookSecret: 'whsec_' + randomBytes(24).toString('base64url'),
    secretKey: randomBytes(32).toString('hex'),
    apiKey: key.key,
    apiKeys: key.entry,
  };
}

export function migrate(billingd, opts) {
  const r = spawnSync(billingd, ['migrate'], { env: billingdEnv({}, opts), encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `billingd migrate failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout + r.stderr;
}

// Spawns `billingd serve --http-port=0` (or `port`), with the admin and gRPC
// listeners on free ports too, and waits for its listening lines.
export async function startBillingd(billingd, opts, { args = [], env = {}, name = 'billingd', port: fixedPort = 0 } = {}) {
  const proc = spawn(billingd, ['serve', `--http-port=${fixedPort}`, '--admin-port=0', '--grpc-port=0', '--log-level=info', ...args], {
    env: billingdEnv(env, opts),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  const lines = [];
  let partial = '';
  const listeners = new Set();
  const onData = (chunk) => {
    const text = partial + chunk.toString('utf8');
    const parts = text.split('\n');
    partial = parts.pop();
    for (const l of parts) {
      lines.push(l);
      for (const f of listeners) f(l);
    }
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      children.delete(proc);
      if (partial) lines.push(partial);
      resolve({ code, signal });
    });
  });

  let adminPort, grpcPort, scheme = 'http';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(reject, new Error(`${name} did not print its listening line within 30 s:\n${lines.slice(-30).join('\n')}`)), 30_000);
    const check = (l) => {
      const a = /billingd admin listening on http:\/\/[^:]+:(\d+)/.exec(l);
      if (a) adminPort = Number(a[1]);
      const g = /billingd grpc listening on \S+:(\d+)/.exec(l);
      if (g) grpcPort = Number(g[1]);
      const m = /billingd listening on (https?):\/\/[0-9.]+:(\d+)/.exec(l);
      if (m) {
        scheme = m[1];
        done(resolve, Number(m[2]));
      }
    };
    function done(f, v) {
      clearTimeout(timer);
      listeners.delete(check);
      f(v);
    }
    for (const l of lines) check(l);
    listeners.add(check);
    exited.then(({ code, signal }) =>
      done(reject, new Error(`${name} exited (code ${code}, signal ${signal}) before listening:\n${lines.slice(-30).join('\n')}`)));
  });

  const base = `${scheme}://127.0.0.1:${port}`;
  const admin = `http://127.0.0.1:${adminPort}`;
  adminFor.set(base, admin);
  return {
    proc,
    port,
    base,
    admin,
    grpcPort,                        // the gRPC edge (billing.v1.BillingService)
    grpcAddress: `127.0.0.1:${grpcPort}`,
    lines,
    exited,
    logTail: (n = 40) => lines.slice(-n).join('\n'),
    // Saves the whole log to a file under the temp dir; returns the path.
    saveLog(tag) {
      const file = path.join(os.tmpdir(), `billingd-${tag}-${process.pid}-${proc.pid}.log`);
      writeFileSync(file, lines.join('\n') + '\n');
      return file;
    },
    async stop(signal = 'SIGTERM', timeoutMs = 30_000) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      let timer;
      const r = await Promise.race([exited, new Promise((res) => { timer = setTimeout(() => res(null), timeoutMs); })]);
      clearTimeout(timer);
      if (r === null) {
        proc.kill('SIGKILL');
        throw new Error(`${name} did not exit within ${timeoutMs} ms of ${signal}:\n${lines.slice(-30).join('\n')}`);
      }
      return r;
    },
  };
}

// ---- HTTP ------------------------------------------------------------------

export function agent(maxSockets = 64) {
  return new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
}

// One request; resolves {status, headers, text, json} or {status: 0, error}
// when the connection failed (never rejects). https URLs trust `ca` (PEM).
export function request(url, { method = 'GET', body, headers = {}, agent: ag, timeoutMs = 30_000, auth, ca } = {}) {
  return new Promise((resolve) => {
    const data = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const h = { ...headers };
    const key = auth === undefined ? defaultApiKey : auth;
    if (key && !Object.keys(h).some((k) => k.toLowerCase() === 'authorization')) h.authorization = `Bearer ${key}`;
    if (data !== undefined) {
      h['content-length'] = data.length;
      if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
    }
    let settled = false;
    const finish = (v) => {
      if (!settled) {
        settled = true;
        resolve(v);
      }
    };
    const tls = String(url).startsWith('https:');
    const req = (tls ? https : http).request(url, { method, headers: h, agent: ag ?? false, ...(tls && ca ? { ca } : {}) }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch {}
        finish({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', (e) => finish({ status: 0, error: e.message }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', (e) => finish({ status: 0, error: e.message }));
    if (data !== undefined) req.write(data);
    req.end();
  });
}

// Runs fn(item, index) over items with at most `concurrency` in flight.
// stop(): when it returns true no further item starts.
export async function pool(items, concurrency, fn, { stop = () => false } = {}) {
  let next = 0;
  const worker = async () => {
    while (next < items.length && !stop()) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

// /metrics of the billingd serving `base` (its admin listener), or of an
// admin URL itself.
export async function metrics(base) {
  const r = await request(`${adminFor.get(base) ?? base}/metrics`);
  assert.equal(r.status, 200, `GET /metrics: ${r.status} ${r.text ?? r.error}`);
  const m = {};
  for (const line of r.text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [k, v] = line.split(/\s+/);
    m[k] = Number(v);
  }
  return m;
}

// ---- invoices ----------------------------------------------------------------

export function invoiceBody(r, i, tag) {
  return {
    shipment_id: `shp_${tag}_${i}`,
    user_id: `usr_${r.token(8)}`,
    workflow_id: `wf_${tag}_${i}_${r.token(6)}`,
    amount_cents: r.int(100, 250_000),
    currency: r.pick(['usd', 'usd', 'usd', 'eur', 'gbp']),
  };
}

// Creates n invoices over HTTP (bounded concurrency); returns their views.
export async function createInvoices(base, n, r, { tag = 'it', concurrency = 16, ag } = {}) {
  const bodies = Array.from({ length: n }, (_, i) => invoiceBody(r, i, tag));
  const out = new Array(n);
  await pool(bodies, concurrency, async (body, i) => {
    const res = await request(`${base}/v1/invoices`, { method: 'POST', body, agent: ag });
    assert.equal(res.status, 201, `create invoice ${i}: ${res.status} ${res.text ?? res.error}`);
    assert.ok(res.json?.provider_intent_id, `create invoice ${i}: no provider_intent_id in ${res.text}`);
    out[i] = res.json;
  });
  return out;
}

// ---- Stripe-format events -------------------------------------------------------

export const EVENT_TYPES = {
  succeeded: 'payment_intent.succeeded',
  failed: 'payment_intent.payment_failed',
  canceled: 'payment_intent.canceled',
};

function charge(r, inv, kind, created) {
  const chId = `ch_3${r.token(23)}`;
  const pmId = `pm_1${r.token(23)}`;
  const ok = kind === 'succeeded';
  return {
    id: chId,
    object: 'charge',
    amount: inv.amount_cents,
    amount_captured: ok ? inv.amount_cents : 0,
    amount_refunded: 0,
    application: null,
    application_fee: null,
    application_fee_amount: null,
    balance_transaction: ok ? `txn_3${r.token(23)}` : null,
    billing_details: {
      address: { city: 'Berlin', country: 'DE', line1: 'Friedrichstraße 68', line2: null, postal_code: '10117', state: null },
      email: `customer.${r.token(6).toLowerCase()}@example.com`,
      name: 'Jenny Rosen',
      phone: null,
    },
    calculated_statement_descriptor: 'BILLINGD SHIPMENTS',
    captured: ok,
    created,
    currency: inv.currency,
    customer: `cus_${r.token(14)}`,
    description: `Shipment ${inv.shipment_id}`,
    disputed: false,
    failure_balance_transaction: null,
    failure_code: ok ? null : 'card_declined',
    failure_message: ok ? null : 'Your card was declined.',
    fraud_details: {},
    livemode: false,
    metadata: { invoice_id: inv.id, workflow_id: inv.workflow_id, shipment_id: inv.shipment_id },
    outcome: ok
      ? { network_status: 'approved_by_network', reason: null, risk_level: 'normal', risk_score: r.int(0, 60), seller_message: 'Payment complete.', type: 'authorized' }
      : { network_status: 'declined_by_network', reason: 'generic_decline', risk_level: 'normal', risk_score: r.int(0, 60), seller_message: 'The bank did not return any further details with this decline.', type: 'issuer_declined' },
    paid: ok,
    payment_intent: inv.provider_intent_id,
    payment_method: pmId,
    payment_method_details: {
      card: {
        amount_authorized: ok ? inv.amount_cents : null,
        brand: 'visa',
        checks: { address_line1_check: 'pass', address_postal_code_check: 'pass', cvc_check: 'pass' },
        country: 'US',
        exp_month: r.int(1, 12),
        exp_year: r.int(2027, 2032),
        extended_authorization: { status: 'disabled' },
        fingerprint: r.token(16),
        funding: 'credit',
        incremental_authorization: { status: 'unavailable' },
        installments: null,
        last4: ok ? '4242' : '0002',
        mandate: null,
        multicapture: { status: 'unavailable' },
        network: 'visa',
        network_token: { used: false },
        overcapture: { maximum_amount_capturable: inv.amount_cents, status: 'unavailable' },
        three_d_secure: null,
        wallet: null,
      },
      type: 'card',
    },
    receipt_email: null,
    receipt_number: null,
    receipt_url: ok ? `https://pay.stripe.com/receipts/payment/${r.token(60)}` : null,
    refunded: false,
    review: null,
    shipping: null,
    source_transfer: null,
    statement_descriptor: null,
    statement_descriptor_suffix: null,
    status: ok ? 'succeeded' : 'failed',
    transfer_data: null,
    transfer_group: null,
  };
}

// A realistic (2–5 KB) Stripe event body for `inv` (a create response).
// kind: succeeded | failed | canceled.
export const DECLINES = [
  { code: 'card_declined', decline_code: 'generic_decline', message: 'Your card was declined.' },
  { code: 'card_declined', decline_code: 'insufficient_funds', message: 'Your card has insufficient funds.' },
  { code: 'expired_card', decline_code: 'expired_card', message: 'Your card has expired.' },
  { code: 'incorrect_cvc', decline_code: 'incorrect_cvc', message: "Your card's security code is incorrect." },
  { code: 'processing_error', decline_code: 'processing_error', message: 'An error occurred while processing your card. Try again in a little bit.' },
];

export function eventBody(r, { id, kind, created, inv, amount, currency, decline = DECLINES[0] }) {
  const ch = kind === 'canceled' ? null : charge(r, inv, kind, created);
  const status = kind === 'succeeded' ? 'succeeded' : kind === 'failed' ? 'requires_payment_method' : 'canceled';
  const obj = {
    id: inv.provider_intent_id,
    object: 'payment_intent',
    amount: amount ?? inv.amount_cents,
    amount_capturable: 0,
    amount_details: { tip: {} },
    amount_received: kind === 'succeeded' ? (amount ?? inv.amount_cents) : 0,
    application: null,
    application_fee_amount: null,
    automatic_payment_methods: { allow_redirects: 'always', enabled: true },
    canceled_at: kind === 'canceled' ? created : null,
    cancellation_reason: kind === 'canceled' ? 'requested_by_customer' : null,
    capture_method: 'automatic',
    charges: { object: 'list', data: ch ? [ch] : [], has_more: false, total_count: ch ? 1 : 0, url: `/v1/charges?payment_intent=${inv.provider_intent_id}` },
    client_secret: `${inv.provider_intent_id}_secret_${r.token(24)}`,
    confirmation_method: 'automatic',
    created: created - 60,
    currency: currency ?? inv.currency,
    customer: null,
    description: `Shipment ${inv.shipment_id}`,
    invoice: null,
    last_payment_error: null,
    latest_charge: ch ? ch.id : null,
    livemode: false,
    metadata: { invoice_id: inv.id, workflow_id: inv.workflow_id, shipment_id: inv.shipment_id },
    next_action: null,
    on_behalf_of: null,
    payment_method: ch ? ch.payment_method : null,
    payment_method_configuration_details: { id: `pmc_${r.token(24)}`, parent: null },
    payment_method_options: {
      card: { installments: null, mandate_options: null, network: null, request_three_d_secure: 'automatic', capture_method: null, setup_future_usage: null },
      link: { persistent_token: null },
      us_bank_account: { financial_connections: { permissions: ['payment_method'], prefetch: [] }, mandate_options: {}, verification_method: 'automatic' },
    },
    payment_method_types: ['card', 'link'],
    processing: null,
    receipt_email: null,
    review: null,
    setup_future_usage: null,
    shipping: {
      address: { city: 'Hamburg', country: 'DE', line1: 'Am Sandtorkai 50', line2: `Hof ${r.int(1, 9)}`, postal_code: '20457', state: null },
      carrier: 'DHL', name: 'Jenny Rosen', phone: '+49 40 1234567', tracking_number: `JJD${r.int(100000000, 999999999)}`,
    },
    source: null,
    statement_descriptor: null,
    statement_descriptor_suffix: null,
    status,
    transfer_data: null,
    transfer_group: null,
  };
  if (kind === 'failed') {
    ch.failure_code = decline.code;
    ch.failure_message = decline.message;
    obj.last_payment_error = {
      charge: ch.id,
      code: decline.code,
      decline_code: decline.decline_code,
      doc_url: `https://stripe.com/docs/error-codes/${decline.code.replaceAll('_', '-')}`,
      message: decline.message,
      payment_method: { id: ch.payment_method, object: 'payment_method', type: 'card', livemode: false, created },
      type: 'card_error',
    };
  }
  return JSON.stringify({
    id,
    object: 'event',
    api_version: '2024-06-20',
    created,
    data: { object: obj },
    livemode: false,
    pending_webhooks: r.int(1, 3),
    request: { id: kind === 'canceled' ? `req_${r.token(14)}` : null, idempotency_key: kind === 'canceled' ? randomUUID() : null },
    type: EVENT_TYPES[kind],
  });
}

export function sign(payload, secret, timestamp) {
  return stripe.webhooks.generateTestHeaderString({ payload, secret, ...(timestamp !== undefined ? { timestamp } : {}) });
}

// POSTs a signed webhook (signed now, as Stripe signs each delivery).
export function sendWebhook(base, payload, secret, ag, timeoutMs) {
  return request(`${base}/webhook`, {
    method: 'POST',
    body: payload,
    headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': sign(payload, secret), 'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)' },
    agent: ag,
    auth: null, // Stripe sends no API key: the signature is the credential
    timeoutMs,
  });
}

// ---- the oracle --------------------------------------------------------------

// One event applied to a status, as the lifecycle says (provider events only).
// Returns [nextStatus, outcome].
export function step(status, kind) {
  switch (kind) {
    case 'succeeded':
      if (status === 'PENDING' || status === 'FAILED' || status === 'CANCELLED') return ['PAID', 'applied'];
      return [status, status === 'PAID' ? 'ignored-no-effect' : 'ignored-stale'];
    case 'failed':
      if (status === 'PENDING' || status === 'FAILED') return ['FAILED', 'applied'];
      return [status, 'ignored-stale'];
    case 'canceled':
      if (status === 'PENDING' || status === 'FAILED') return ['CANCELLED', 'applied'];
      return [status, status === 'CANCELLED' ? 'ignored-no-effect' : 'ignored-stale'];
  }
  throw new Error(`unknown event kind ${kind}`);
}

// The final status a payment history implies, whatever the delivery order.
export function impliedStatus(kinds) {
  if (kinds.includes('succeeded')) return 'PAID';
  if (kinds.includes('canceled')) return 'CANCELLED';
  if (kinds.includes('failed')) return 'FAILED';
  return 'PENDING';
}

export const SIGNAL_FOR = { PAID: 'PaymentConfirmed', FAILED: 'PaymentFailed', CANCELLED: 'PaymentCancelled' };

// ---- burst workloads -----------------------------------------------------------

// Histories for `invoices` (create responses) totalling `deliveries`
// deliveries, of which ~10% re-deliver an event id already in the list; the
// delivery list is shuffled. A history is some failed attempts, then
// optionally one succeeded or canceled, with increasing `created`.
export function makeWorkload(r, invoices, deliveries, { redeliveryShare = 0.1 } = {}) {
  const unique = Math.round(deliveries * (1 - redeliveryShare));
  assert.ok(unique >= invoices.length, 'at least one event per invoice');
  // Lengths >= 1 summing to `unique`.
  const lengths = invoices.map(() => 1);
  for (let left = unique - invoices.length; left > 0; --left) lengths[r.int(0, invoices.length - 1)]++;
  const t0 = Math.floor(Date.now() / 1000) - 3600;
  const events = [];
  const histories = invoices.map((inv, k) => {
    const roll = r();
    const terminal = roll < 0.5 ? 'succeeded' : roll < 0.75 ? 'canceled' : null;
    const n = lengths[k];
    const kinds = Array.from({ length: n }, (_, i) => (i === n - 1 && terminal ? terminal : 'failed'));
    const evs = kinds.map((kind, i) => {
      const id = `evt_3${r.token(24)}`;
      const created = t0 + k % 600 + i * 7;
      const decline = r.pick(DECLINES);
      const ev = { id, kind, type: EVENT_TYPES[kind], created, invoice: inv.id, decline, body: eventBody(r, { id, kind, created, inv, decline }) };
      events.push(ev);
      return ev;
    });
    return { invoice: inv, kinds, events: evs, expected: impliedStatus(kinds) };
  });
  const list = events.slice();
  for (let i = unique; i < deliveries; ++i) list.push(r.pick(events));
  r.shuffle(list);
  return { histories, events, deliveries: list };
}

// Sends `list` (events) as webhooks; results[i] = {status, outcome, retryAfter, error}.
export async function burst(base, list, secret, { concurrency = 64, ag, stop, onResult, timeoutMs = 30_000 } = {}) {
  const results = new Array(list.length);
  const own = !ag;
  ag = ag ?? agent(concurrency);
  await pool(list, concurrency, async (ev, i) => {
    const sentAt = Date.now();
    const res = await sendWebhook(base, ev.body, secret, ag, timeoutMs);
    const out = {
      status: res.status,
      outcome: res.json?.outcome,
      invoiceStatus: res.json?.status,
      retryAfter: res.headers?.['retry-after'],
      error: res.error ?? (res.status !== 200 ? res.text : undefined),
      sentAt,
      answeredAt: Date.now(),
    };
    results[i] = out;
    onResult?.(out, i, ev);
  }, { stop });
  if (own) ag.destroy();
  return results;
}

export function tally(results) {
  const t = {};
  for (const x of results) {
    if (!x) { t.unsent = (t.unsent ?? 0) + 1; continue; }
    const k = x.status === 200 ? `200 ${x.outcome}` : `${x.status}`;
    t[k] = (t[k] ?? 0) + 1;
  }
  return t;
}

// ---- the checks every burst test ends with ---------------------------------------

// Final states, each event recorded once, one outbox row per applied event,
// the last outbox signal of each invoice matching its final state.
export async function verifyFinal(db, workload) {
  const problems = [];
  const statuses = await db.statuses();
  const recorded = await db.webhookEvents();
  const outbox = await db.outboxByInvoice();
  const byInvoice = new Map(workload.histories.map((h) => [h.invoice.id, h]));

  for (const h of workload.histories) {
    const row = statuses.get(h.invoice.id);
    if (!row) problems.push(`invoice ${h.invoice.id}: missing from invoices`);
    else if (row.status !== h.expected)
      problems.push(`invoice ${h.invoice.id}: status ${row.status}, history [${h.kinds.join(',')}] implies ${h.expected}`);
    else if (h.expected === 'FAILED') {
      // FAILED records the latest attempt (by `created`), whatever the delivery order.
      const latest = h.events.filter((e) => e.kind === 'failed').at(-1).decline;
      if (row.failure_code !== latest.code || row.failure_message !== latest.message)
        problems.push(`invoice ${h.invoice.id}: FAILED with failure ${row.failure_code}/${JSON.stringify(row.failure_message)}, ` +
          `the latest attempt says ${latest.code}/${JSON.stringify(latest.message)}`);
    }
  }
  const sent = new Set(workload.events.map((e) => e.id));
  for (const e of workload.events) {
    const rec = recorded.get(e.id);
    if (!rec) problems.push(`event ${e.id} (${e.type}) missing from webhook_events`);
    else {
      if (rec.invoice_id !== e.invoice) problems.push(`event ${e.id}: webhook_events.invoice_id ${rec.invoice_id}, expected ${e.invoice}`);
      if (rec.type !== e.type) problems.push(`event ${e.id}: webhook_events.type ${rec.type}, expected ${e.type}`);
    }
  }
  for (const id of recorded.keys()) if (!sent.has(id)) problems.push(`webhook_events has an event never sent: ${id}`);
  if (recorded.size !== sent.size) problems.push(`webhook_events holds ${recorded.size} rows for ${sent.size} distinct events`);

  const applied = new Map();
  for (const rec of recorded.values()) if (rec.outcome === 'applied') applied.set(rec.invoice_id, (applied.get(rec.invoice_id) ?? 0) + 1);
  for (const h of workload.histories) {
    const id = h.invoice.id;
    const rows = outbox.get(id) ?? [];
    const a = applied.get(id) ?? 0;
    if (rows.length !== a) problems.push(`invoice ${id}: ${rows.length} outbox rows for ${a} applied events (history [${h.kinds.join(',')}])`);
    if (h.expected !== 'PENDING') {
      const last = rows.at(-1);
      if (!last) problems.push(`invoice ${id}: no outbox row although ${h.expected}`);
      else if (last.signal !== SIGNAL_FOR[h.expected]) problems.push(`invoice ${id}: last outbox signal ${last.signal}, expected ${SIGNAL_FOR[h.expected]}`);
    }
  }
  for (const id of outbox.keys()) if (!byInvoice.has(id)) problems.push(`outbox row for an unknown invoice ${id}`);
  // Compare-and-set: each applied transition bumps `version` once, so
  // version - applied is the same for every invoice (the versions of creation).
  const offsets = new Map();
  for (const h of workload.histories) {
    const row = statuses.get(h.invoice.id);
    if (!row) continue;
    const k = Number(row.version) - (applied.get(h.invoice.id) ?? 0);
    if (!offsets.has(k)) offsets.set(k, []);
    offsets.get(k).push(h.invoice.id);
  }
  if (offsets.size > 1)
    problems.push(`version - applied differs between invoices: ${[...offsets].map(([k, ids]) => `${k} for ${ids.length} (e.g. ${ids[0]})`).join(', ')}`);
  const outcomes = {};
  for (const rec of recorded.values()) outcomes[rec.outcome] = (outcomes[rec.outcome] ?? 0) + 1;
  return { problems, outcomes, statuses, recorded, outbox };
}

// Outcomes the 200 answers reported, per event: at most one (exactly one when
// `exact`) non-duplicate answer per event, equal to the recorded outcome.
export function verifyAnswers(pairs, recorded, { exact }) {
  const problems = [];
  const first = new Map();
  for (const { ev, res } of pairs) {
    if (!res || res.status !== 200) continue;
    if (res.outcome === 'ignored-duplicate') continue;
    if (first.has(ev.id)) problems.push(`event ${ev.id}: two non-duplicate answers (${first.get(ev.id)}, ${res.outcome})`);
    else first.set(ev.id, res.outcome);
  }
  for (const [id, outcome] of first) {
    const rec = recorded.get(id);
    if (rec && rec.outcome !== outcome) problems.push(`event ${id}: answered ${outcome}, recorded ${rec.outcome}`);
  }
  if (exact) for (const id of recorded.keys()) if (!first.has(id)) problems.push(`event ${id}: every answer said ignored-duplicate`);
  return problems;
}

export function assertNoProblems(problems, what) {
  if (problems.length)
    assert.fail(`${what}: ${problems.length} problem(s):\n  ${problems.slice(0, 30).join('\n  ')}${problems.length > 30 ? `\n  … and ${problems.length - 30} more` : ''}`);
}

// ---- a private cluster (database_outage) ---------------------------------------------

export function pgScript(repo, ...args) {
  return new Promise((resolve, reject) => {
    execFile(path.join(repo, 'scripts/pg'), args, { timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`scripts/pg ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

export function tempDir(prefix) {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true });
}

// A TCP port nobody listens on now (best effort).
export async function freePort(lo = 55600, span = 3000) {
  const net = await import('node:net');
  for (let tries = 0; tries < 50; ++tries) {
    const port = lo + Math.floor(Math.random() * span);
    const free = await new Promise((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port found');
}

// What makes billingd use a (fake) Stripe: `stripe` = { base, key, caFile? }
// (tests/stripe/fake_stripe.mjs gives all three). The key goes in the
// environment, never on the command line.
export function stripeOptions(stripe) {
  if (!stripe) return { args: [], env: {} };
  const args = ['--provider=stripe', `--stripe-api-base=${stripe.base}`];
  if (stripe.caFile) args.push(`--stripe-ca-path=${stripe.caFile}`);
  return { args, env: { BILLING_STRIPE_SECRET_KEY: stripe.key } };
}

// Common scaffold: fresh database, migrated, billingd serving (on a fake
// Stripe with `stripe`, see stripeOptions). Returns a context with cleanup();
// on test failure dumps the billingd log tail.
export async function setup(name, { args: ownArgs = [], env: ownEnv = {}, stripe } = {}) {
  const viaStripe = stripeOptions(stripe);
  const args = [...viaStripe.args, ...ownArgs];
  const extraEnv = { ...viaStripe.env, ...ownEnv };
  const env = requireEnv();
  const database = await createDatabase(env.adminUrl, name);
  const secrets = newSecrets();
  const opts = { dbUrl: database.url, ...secrets };
  migrate(env.billingd, opts);
  const db = await new Db(database.url).open();
  const ctx = {
    env, database, secrets, opts, db, servers: [],
    async start(extra = {}) {
      const s = await startBillingd(env.billingd, opts, { args: [...args, ...(extra.args ?? [])], env: { ...extraEnv, ...(extra.env ?? {}) }, port: extra.port });
      ctx.servers.push(s);
      return s;
    },
    async cleanup(failed) {
      for (const s of ctx.servers) {
        if (failed) {
          console.log(`--- billingd log tail (pid ${s.proc.pid}; full log ${s.saveLog(name)}) ---\n${s.logTail(40)}`);
        }
        if (s.proc.exitCode === null && s.proc.signalCode === null) {
          s.proc.kill('SIGKILL');
          await s.exited;
        }
      }
      await db.close();
      await database.drop().catch((e) => console.log(`drop database ${database.name}: ${e.message}`));
    },
  };
  return ctx;
}

// Runs body(ctx) with setup/cleanup around it.
export async function withService(name, options, body) {
  const ctx = await setup(name, options);
  let failed = true;
  try {
    await body(ctx);
    failed = false;
  } finally {
    await ctx.cleanup(failed);
  }
}

// ---- raw sockets (framing tests) ------------------------------------------------

// Writes `bytes` to a fresh connection (errors after the server answered and
// closed are ignored), then reads until the server closes or `timeoutMs`
// passes. Resolves { text, closed } (closed: the server ended the connection).
export async function rawExchange(port, bytes, { timeoutMs = 5_000 } = {}) {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const chunks = [];
    let done = false;
    const sock = net.connect(port, '127.0.0.1');
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('connect', () => sock.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'latin1')));
    sock.on('data', (d) => chunks.push(d));
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    sock.on('error', () => {}); // EPIPE/ECONNRESET after the answer: the answer is what counts
  });
}

// The HTTP responses in a raw byte stream: [{ status, headers, body }] (bodies
// by Content-Length, as billingd always sends them).
export function parseRawResponses(text) {
  const out = [];
  let rest = text;
  while (rest.startsWith('HTTP/')) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n');
    const headers = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const len = Number(headers['content-length'] ?? 0);
    const body = rest.slice(end + 4, end + 4 + len);
    let json;
    try { json = JSON.parse(body); } catch {}
    out.push({ status: Number(statusLine.split(' ')[1]), headers, text: body, json });
    rest = rest.slice(end + 4 + len);
  }
  return out;
}

// The first response of a rawExchange, shaped like request()'s answers.
export function parseRawResponse({ text }) {
  return parseRawResponses(text)[0] ?? { status: 0, error: `no HTTP response in ${JSON.stringify(text.slice(0, 200))}` };
}
