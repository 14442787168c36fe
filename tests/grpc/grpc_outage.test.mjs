// The gRPC edge during a database outage (label interop): billingd on a
// private PostgreSQL cluster that is stopped and started again. While it is
// down a create is UNAVAILABLE with billingd's fixed message (no database or
// library text) and grpc.health.v1 says NOT_SERVING (for "" and the service,
// as /readyz says 503); once it is back, health is SERVING again and creates
// work.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { billingClient, codeName, healthCheck, healthClient, unary } from './grpc_lib.mjs';
import * as it from '../integration/lib.mjs';

async function until(what, fn, timeoutMs = 60_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) assert.fail(`${what} not reached within ${timeoutMs} ms`);
    await it.sleep(200);
  }
}

test('database down: health NOT_SERVING and UNAVAILABLE; back: SERVING and served', { timeout: 300_000 }, async () => {
  const env = it.requireEnv();
  const dir = it.tempDir('billing-grpc-outage-');
  const port = await it.freePort();
  let svc, client, health;
  let failed = true;
  try {
    const url = await it.pgScript(env.repo, 'start', dir, String(port));
    const opts = { dbUrl: url, ...it.newSecrets() };
    it.migrate(env.billingd, opts);
    svc = await it.startBillingd(env.billingd, opts, { name: 'billingd (grpc outage)' });
    client = billingClient(svc.grpcAddress);
    health = healthClient(svc.grpcAddress);
    const key = opts.apiKey;
    const tag = Math.random().toString(36).slice(2, 8);
    let n = 0;
    const body = () => ({ shipment_id: `shp_o_${tag}_${++n}`, user_id: 'usr_o', workflow_id: `wf_o_${tag}_${n}`, amount_cents: 700 + n, currency: 'usd' });

    const ok = await unary(client, 'CreateInvoice', body(), { key });
    assert.equal(ok.code, 0, ok.details);
    assert.equal((await healthCheck(health, '')).status, 'SERVING');

    await it.pgScript(env.repo, 'stop', dir);
    // Readiness is the writers' connection state: billingd learns of the
    // outage from its next commit (a payment of the live invoice), and
    // health follows /readyz.
    const paid = await it.request(`${svc.base}/v1/simulator/payments/${ok.value.invoice_id}`,
      { method: 'POST', body: { outcome: 'succeeded' }, timeoutMs: 30_000 });
    assert.ok(paid.status !== 200 || paid.json.webhook_status === 503,
      `no payment is confirmed while the database is down: ${paid.status} ${paid.text}`);
    const down = await unary(client, 'CreateInvoice', body(), { key, requestId: 'outage-1', deadlineMs: 30_000 });
    console.log(`case interop: CreateInvoice with the database down -> ${codeName(down.code)} ${down.details}`);
    assert.equal(codeName(down.code), 'UNAVAILABLE', down.details);
    assert.equal(down.details, 'billingd cannot reach its database right now; retry later (request_id outage-1)');
    await until('health NOT_SERVING', async () => (await healthCheck(health, '')).status === 'NOT_SERVING');
    assert.equal((await healthCheck(health, 'billing.v1.BillingService')).status, 'NOT_SERVING');
    assert.equal((await it.request(`${svc.base}/readyz`, { auth: null })).status, 503, 'and /readyz agrees');

    await it.pgScript(env.repo, 'start', dir, String(port));
    await until('health SERVING again', async () => (await healthCheck(health, '')).status === 'SERVING');
    let again;
    await until('a create served again', async () => {
      again = await unary(client, 'CreateInvoice', body(), { key });
      return again.code === 0;
    });
    failed = false;
  } finally {
    client?.close();
    health?.close();
    if (svc) {
      if (failed) console.log(svc.logTail(40));
      await svc.stop().catch(() => {});
    }
    await it.pgScript(env.repo, 'stop', dir).catch(() => {});
    it.removeDir(dir);
  }
});
