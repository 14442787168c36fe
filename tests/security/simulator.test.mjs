// The simulator cannot forge payments: its route needs the simulator scope,
// and `billingd serve` refuses the simulated provider on a non-loopback
// address unless BILLING_ALLOW_SIMULATED=true, saying why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as it from '../integration/lib.mjs';
import { caseRunner, makeKeys, wantError, wantStatus } from './sec_lib.mjs';

test('serve refuses the simulated provider on a non-loopback address', { timeout: 120_000 }, async () => {
  const env = it.requireEnv();
  const db = await it.createDatabase(env.adminUrl, 'sec_sim_refuse');
  try {
    const opts = { dbUrl: db.url, ...it.newSecrets() };
    it.migrate(env.billingd, opts);
    for (const address of ['0.0.0.0', '::', '10.1.2.3']) {
      const r = spawnSync(env.billingd, ['serve', '--http-port=0', '--admin-port=0', `--http-address=${address}`],
        { env: it.billingdEnv({}, opts), encoding: 'utf8', timeout: 30_000 });
      const out = r.stdout + r.stderr;
      console.log(`case simulator: serve --http-address=${address} (simulated) -> exit ${r.status}`);
      assert.equal(r.status, 2, `serve on ${address} with the simulated provider must refuse (exit 2), got ${r.status}:\n${out}`);
      assert.match(out, /simulated provider serves only on a loopback address/, out);
      assert.match(out, /BILLING_ALLOW_SIMULATED=true/, out);
      assert.doesNotMatch(out, /billingd listening/, out);
    }
    // Loopback needs no permission; elsewhere it does, and then it serves.
    for (const [address, allow] of [['127.0.0.2', undefined], ['0.0.0.0', 'true']]) {
      const svc = await it.startBillingd(env.billingd, opts, {
        args: [`--http-address=${address}`], env: allow ? { BILLING_ALLOW_SIMULATED: allow } : {}, name: `billingd on ${address}`,
      });
      console.log(`case simulator: serve --http-address=${address}${allow ? ' BILLING_ALLOW_SIMULATED=true' : ''} -> listening`);
      const stopped = await svc.stop();
      assert.deepEqual(stopped, { code: 0, signal: null });
    }
  } finally {
    await db.drop();
  }
});

test('the simulator route needs the simulator scope and writes nothing when refused', { timeout: 120_000 }, async () => {
  const { keys, config } = makeKeys();
  await it.withService('sec_sim', { env: { BILLING_API_KEYS: config } }, async (ctx) => {
    const svc = await ctx.start();
    const cases = caseRunner(ctx.db, 'simulator');
    const created = await it.request(`${svc.base}/v1/invoices`, {
      method: 'POST', auth: keys.writer.key,
      body: { shipment_id: 'shp_sim', user_id: 'usr_sim', workflow_id: 'wf_sim', amount_cents: 700, currency: 'usd' },
    });
    assert.equal(created.status, 201, created.text);
    const pay = (auth, id = created.json.id, body = { outcome: 'succeeded' }) => () =>
      it.request(`${svc.base}/v1/simulator/payments/${id}`, { method: 'POST', body, auth });
    await cases.run('pay without a key', pay(null), wantError(401, 'unauthenticated'));
    for (const k of ['writer', 'reader', 'ops'])
      await cases.run(`pay with the ${k} key (no simulator scope)`, pay(keys[k].key), wantError(403, 'permission_denied'));
    await cases.run('pay with an invalid outcome', pay(keys.sim.key, created.json.id, { outcome: 'refunded' }), wantError(400, 'invalid_argument'));
    await cases.run('pay with outcome given twice', () => it.request(`${svc.base}/v1/simulator/payments/${created.json.id}`,
      { method: 'POST', body: '{"outcome":"failed","outcome":"succeeded"}', auth: keys.sim.key }), wantError(400, 'invalid_argument'));
    await cases.run('pay a malformed id', pay(keys.sim.key, 'not-a-uuid'), wantError(400, 'invalid_argument'));
    await cases.run('pay an unknown invoice', pay(keys.sim.key, '00000000-0000-4000-8000-000000000000'), wantError(404, 'not_found'));
    await cases.run('pay with the simulator key', pay(keys.sim.key), wantStatus(200, (res) =>
      (res.json?.webhook_response?.outcome === 'applied' ? [] : [`${res.text}`])), { changes: true });
    const [row] = await ctx.db.query('SELECT status FROM invoices WHERE id = $1', [created.json.id]);
    assert.equal(row.status, 'PAID');
    it.assertNoProblems(cases.problems, 'simulator');
  });
});
