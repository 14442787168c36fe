// Integration (label integration): the HTTP callback sink against a local
// receiver that verifies Billing-Signature with Stripe's own verifier (the
// `stripe` SDK's constructEvent: same scheme, same code) and by hand.
// 2xx delivered; 503, 429 and timeouts retried; a permanent 4xx goes dead and
// is re-drivable with `billingd outbox retry --all-dead`.
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { test } from 'node:test';
import { createInvoices, metrics, rng, seedFor, sleep, stripe, withService } from '../integration/lib.mjs';
import { allDelivered, outboxRetry, payThroughWebhooks, requestIdFor, simpleSteps, twoStepSteps,
  waitOutbox } from './bridge_lib.mjs';

const SECRET = 'cbsec_' + 'k'.repeat(32);

// The receiver: records every verified callback; behaviour per workflow id.
class Receiver {
  constructor() {
    this.records = [];
    this.problems = [];
    this.statusFor = () => 200; // (body, attemptNo) -> status or 'hang'
    this.attempts = new Map();
  }
  async start() {
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => this.handle(req, res, Buffer.concat(chunks).toString('utf8')));
    });
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = this.server.address().port;
    return this;
  }
  handle(req, res, raw) {
    const header = req.headers['billing-signature'];
    let event;
    try {
      // Stripe's verifier, as a receiver that already handles Stripe webhooks would call it.
      event = stripe.webhooks.constructEvent(raw, header, SECRET);
    } catch (e) {
      this.problems.push(`signature rejected by stripe.webhooks.constructEvent: ${e.message}`);
      res.writeHead(400).end();
      return;
    }
    // And by hand: v1 = hex HMAC-SHA256(secret, `${t}.${body}`).
    const t = /t=(\d+)/.exec(header)?.[1];
    const v1 = /v1=([0-9a-f]{64})/.exec(header)?.[1];
    const want = createHmac('sha256', SECRET).update(`${t}.${raw}`).digest();
    if (!v1 || !timingSafeEqual(Buffer.from(v1, 'hex'), want)) this.problems.push(`manual HMAC check failed for ${header}`);
    if (req.headers['idempotency-key'] !== event.id) this.problems.push(`Idempotency-Key ${req.headers['idempotency-key']} != id ${event.id}`);
    if (req.url !== `/hooks/${event.type}`) this.problems.push(`posted to ${req.url} for ${event.type}`);
    const n = (this.attempts.get(event.id) ?? 0) + 1;
    this.attempts.set(event.id, n);
    const status = this.statusFor(event, n);
    if (status === 'hang') return; // never answers: billingd times out
    if (status >= 200 && status < 300) this.records.push({ at: Date.now(), event, headers: req.headers });
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ status }));
  }
  async stop() {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

test('HTTP callbacks: signed like Stripe, retried on 5xx/429/timeouts, dead on 4xx and re-drivable', async () => {
  const r = rng(seedFor('http_callback'));
  const rx = await new Receiver().start();
  const args = ['--sink=http', `--callback-url=http://127.0.0.1:${rx.port}/hooks/{signal}`, '--bridge-timeout-ms=1000',
    '--bridge-retry-min-ms=100', '--bridge-retry-max-ms=800', '--bridge-scan-interval-ms=500'];
  try {
    await withService('bridge_http', { args, env: { BILLING_CALLBACK_SECRET: SECRET } }, async (ctx) => {
      const svc = await ctx.start();
      const invoices = await createInvoices(svc.base, 24, r, { tag: 'cb' });
      const [flaky, limited, slow, refused] = [invoices.slice(0, 4), invoices.slice(4, 8), invoices.slice(8, 10), invoices.slice(10, 12)];
      const kind = new Map();
      for (const [list, k] of [[flaky, 'flaky'], [limited, 'limited'], [slow, 'slow'], [refused, 'refused']])
        for (const inv of list) kind.set(inv.workflow_id, k);
      let refuse = true;
      rx.statusFor = (ev, n) => {
        switch (kind.get(ev.workflow_id)) {
          case 'flaky': return n <= 2 ? 503 : 200;
          case 'limited': return n === 1 ? 429 : 200;
          case 'slow': return n === 1 ? 'hang' : 204;
          case 'refused': return refuse ? 404 : 200;
          default: return 200;
        }
      };
      await payThroughWebhooks(svc.base, r, ctx.secrets.webhookSecret,
        [...simpleSteps(invoices.slice(0, 20)), ...twoStepSteps(invoices.slice(20))]);
      const total = 28;
      let rows = await waitOutbox(ctx.db, (xs) => xs.length === total && xs.every((x) => x.delivered || x.dead), 30_000, 'all settled');
      const dead = rows.filter((x) => x.dead);
      assert.deepEqual(dead.map((x) => x.workflow_id).sort(), refused.map((x) => x.workflow_id).sort());
      for (const d of dead) {
        assert.match(d.last_error, /permanent: http status 404/);
        assert.equal(d.attempts, 1);
      }
      await sleep(5_500);
      const m = await metrics(svc.base);
      assert.equal(m['billing_bridge_dead_total{sink="http",signal="PaymentConfirmed"}'], 2);
      assert.equal(m['billing_bridge_dead_rows{sink="http"}'], 2);
      assert.ok(m['billing_bridge_retried_total{sink="http",signal="PaymentConfirmed"}'] >= 4 * 2 + 4 + 2);

      refuse = false;
      assert.match(outboxRetry(ctx.env.billingd, ctx.opts, ['--all-dead']), /re-drove 2 dead outbox row\(s\)/);
      rows = await waitOutbox(ctx.db, allDelivered(total), 20_000, 'all delivered after the re-drive');

      assert.deepEqual(rx.problems, []);
      // Each row accepted once (the receiver dedupes on id; billingd sent none twice after a 2xx).
      const byId = new Map();
      for (const rec of rx.records) byId.set(rec.event.id, (byId.get(rec.event.id) ?? 0) + 1);
      assert.equal(byId.size, total);
      for (const row of rows) {
        const id = requestIdFor(row.id, row.invoice_id);
        assert.equal(byId.get(id), 1, `row ${row.id}`);
        const ev = rx.records.find((x) => x.event.id === id).event;
        assert.equal(ev.type, row.signal);
        assert.equal(ev.workflow_id, row.workflow_id);
        assert.equal(ev.invoice_id, row.invoice_id);
        assert.equal(ev.outbox_id, row.id);
        assert.deepEqual(ev.data, row.payload);
      }
      // Per-invoice order for the two-step invoices.
      for (const inv of invoices.slice(20)) {
        const types = rx.records.filter((x) => x.event.workflow_id === inv.workflow_id).map((x) => x.event.type);
        assert.deepEqual(types, ['PaymentFailed', 'PaymentConfirmed']);
      }
    });
  } finally {
    await rx.stop();
  }
});
