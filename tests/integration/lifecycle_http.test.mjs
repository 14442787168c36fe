// The happy path over HTTP, through the payment simulator (which signs and
// POSTs a Stripe-format webhook to billingd's own /webhook): create, a failed
// attempt, a successful one → PAID; cancelling a paid invoice → 409; another
// invoice cancelled → CANCELLED with a PaymentCancelled outbox row; SIGTERM →
// exit code 0. And the simulator must work when billingd picked its own port
// (--http-port=0, as every test here starts it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as it from './lib.mjs';

test('lifecycle over HTTP: simulator payments, cancel, clean shutdown', { timeout: 180_000 }, async () => {
  await it.withService('lifecycle_http', {}, async (ctx) => {
    // A fixed port, so the simulator's default self_url reaches this billingd
    // (with --http-port=0 it does not: see the next test).
    const svc = await ctx.start({ port: await it.freePort(20000, 10000) });
    const base = svc.base;
    const post = (path, body) => it.request(`${base}${path}`, { method: 'POST', body });
    const get = (path) => it.request(`${base}${path}`);

    const health = await get('/healthz');
    assert.equal(health.status, 200, `GET /healthz: ${health.status} ${health.text}`);
    const ready = await get('/readyz');
    assert.equal(ready.status, 200, `GET /readyz: ${ready.status} ${ready.text}`);

    // Invoice A: failed, then succeeded.
    const bodyA = { shipment_id: 'shp_life_a', user_id: 'usr_life', workflow_id: 'wf_life_a', amount_cents: 4250, currency: 'EUR' };
    const a = await post('/v1/invoices', bodyA);
    assert.equal(a.status, 201, `create A: ${a.status} ${a.text}`);
    assert.equal(a.json.status, 'PENDING');
    assert.equal(a.json.currency, 'eur', 'currency is stored lower case');
    assert.equal(a.json.amount_cents, 4250);
    assert.match(a.json.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.ok(a.json.client_secret, 'the create answer carries the client secret');
    const id = a.json.id;

    const gotA = await get(`/v1/invoices/${id}`);
    assert.equal(gotA.status, 200);
    assert.equal(gotA.json.status, 'PENDING');
    assert.equal(gotA.json.client_secret, undefined, 'GET must never return the client secret');

    const pay = async (invoice, outcome) => {
      const res = await post(`/v1/simulator/payments/${invoice}`, { outcome });
      assert.equal(res.status, 200, `simulate ${outcome} on ${invoice}: ${res.status} ${res.text ?? res.error}\n${svc.logTail(15)}`);
      assert.equal(res.json.webhook_status, 200, `the simulator's webhook was not answered 200: ${res.text}`);
      return res.json;
    };
    const failed = await pay(id, 'failed');
    assert.equal(failed.webhook_response?.outcome, 'applied', `failed: ${JSON.stringify(failed)}`);
    assert.equal((await get(`/v1/invoices/${id}`)).json.status, 'FAILED');
    const paid = await pay(id, 'succeeded');
    assert.equal(paid.webhook_response?.outcome, 'applied', `succeeded: ${JSON.stringify(paid)}`);
    const afterPay = await get(`/v1/invoices/${id}`);
    assert.equal(afterPay.json.status, 'PAID', `after the payment: ${afterPay.text}`);
    assert.ok(afterPay.json.paid_at, 'a PAID invoice has paid_at');

    const late = await pay(id, 'failed');
    assert.equal(late.webhook_response?.outcome, 'ignored-stale', `a failure after PAID: ${JSON.stringify(late)}`);
    assert.equal((await get(`/v1/invoices/${id}`)).json.status, 'PAID');

    const cancelPaid = await post(`/v1/invoices/${id}/cancel`);
    assert.equal(cancelPaid.status, 409, `cancel a PAID invoice: ${cancelPaid.status} ${cancelPaid.text}`);
    assert.equal((await get(`/v1/invoices/${id}`)).json.status, 'PAID');

    // Invoice B: cancelled through the API (twice: the repeat is harmless).
    const b = await post('/v1/invoices', { ...bodyA, shipment_id: 'shp_life_b', amount_cents: 990 });
    assert.equal(b.status, 201, `create B: ${b.status} ${b.text}`);
    const idB = b.json.id;
    const cancel = await post(`/v1/invoices/${idB}/cancel`);
    assert.equal(cancel.status, 200, `cancel B: ${cancel.status} ${cancel.text}`);
    assert.equal(cancel.json.status, 'CANCELLED');
    const again = await post(`/v1/invoices/${idB}/cancel`);
    assert.equal(again.status, 200, `cancel B again: ${again.status} ${again.text}`);
    assert.equal((await get(`/v1/invoices/${idB}`)).json.status, 'CANCELLED');

    // Invoice C: the customer abandons the payment (Stripe cancels the intent).
    const c = await post('/v1/invoices', { ...bodyA, shipment_id: 'shp_life_c', workflow_id: 'wf_life_c' });
    assert.equal(c.status, 201, `create C: ${c.status} ${c.text}`);
    const idC = c.json.id;
    const canceled = await pay(idC, 'canceled');
    assert.equal(canceled.webhook_response?.outcome, 'applied', `canceled: ${JSON.stringify(canceled)}`);
    assert.equal((await get(`/v1/invoices/${idC}`)).json.status, 'CANCELLED');
    const lateFail = await pay(idC, 'failed');
    assert.equal(lateFail.webhook_response?.outcome, 'ignored-stale', `a failure after CANCELLED: ${JSON.stringify(lateFail)}`);

    const list = await get(`/v1/invoices?workflow_id=wf_life_a`);
    assert.equal(list.status, 200);
    assert.deepEqual(list.json.invoices.map((x) => x.id).sort(), [id, idB].sort());
    const byShipment = await get(`/v1/invoices?shipment_id=shp_life_c`);
    assert.deepEqual(byShipment.json.invoices.map((x) => x.id), [idC]);

    // The durable record.
    const outbox = await ctx.db.outboxByInvoice();
    assert.deepEqual((outbox.get(id) ?? []).map((x) => x.signal), ['PaymentFailed', 'PaymentConfirmed'], 'outbox rows of A');
    assert.deepEqual((outbox.get(idB) ?? []).map((x) => x.signal), ['PaymentCancelled'], 'outbox rows of B');
    assert.deepEqual((outbox.get(idC) ?? []).map((x) => x.signal), ['PaymentCancelled'], 'outbox rows of C');
    const events = await ctx.db.query(`SELECT type, outcome FROM webhook_events WHERE invoice_id = $1 ORDER BY received_at, type`, [id]);
    assert.deepEqual(events.map((e) => e.outcome).sort(), ['applied', 'applied', 'ignored-stale']);
    const rows = await ctx.db.statuses();
    assert.equal(rows.get(id).status, 'PAID');
    assert.equal(rows.get(idB).status, 'CANCELLED');
    assert.equal(rows.get(idC).status, 'CANCELLED');

    const stopped = await svc.stop('SIGTERM');
    assert.deepEqual(stopped, { code: 0, signal: null }, `billingd did not exit 0 on SIGTERM:\n${svc.logTail()}`);
    assert.ok(svc.lines.some((l) => l.includes('billingd stopped')), 'billingd logs that it stopped');
  });
});

test('the simulator delivers to the bound port when started with --http-port=0', { timeout: 120_000 }, async () => {
  await it.withService('lifecycle_port0', {}, async (ctx) => {
    const svc = await ctx.start(); // --http-port=0
    const created = await it.request(`${svc.base}/v1/invoices`, {
      method: 'POST',
      body: { shipment_id: 'shp_p0', user_id: 'usr_p0', workflow_id: 'wf_p0', amount_cents: 100, currency: 'usd' },
    });
    assert.equal(created.status, 201, `create: ${created.status} ${created.text}`);
    const res = await it.request(`${svc.base}/v1/simulator/payments/${created.json.id}`, { method: 'POST', body: { outcome: 'succeeded' } });
    assert.equal(res.status, 200,
      `POST /v1/simulator/payments/{id} on a billingd listening on port ${svc.port} (started with --http-port=0 and no self_url): ` +
      `${res.status} ${res.text}\n${svc.logTail(5)}`);
    assert.equal(res.json.webhook_status, 200, `the simulator's webhook: ${res.text}`);
    const got = await it.request(`${svc.base}/v1/invoices/${created.json.id}`);
    assert.equal(got.json?.status, 'PAID', `after the simulated payment: ${got.text}`);
    const stopped = await svc.stop('SIGTERM');
    assert.deepEqual(stopped, { code: 0, signal: null });
  });
});
