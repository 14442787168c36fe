// Memory an anonymous (or any) caller could fill, and input that must not
// reach PostgreSQL: no actor stays behind for an invoice that does not exist
// (billing_invoice_actors stays flat while 50,000 random ids are asked for),
// and malformed query values and path ids are refused 400 naming the
// parameter, with no library text in any answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as it from '../integration/lib.mjs';
import { caseRunner, wantError } from './sec_lib.mjs';

const CONCURRENCY = 64;

test('no actor for what does not exist: 50,000 random ids leave billing_invoice_actors flat', { timeout: 400_000 }, async () => {
  await it.withService('sec_actors', {}, async (ctx) => {
    const svc = await ctx.start();
    const ag = it.agent(CONCURRENCY);
    const actors = async () => (await it.metrics(svc.base)).billing_invoice_actors;
    const start = await actors();
    const before = await ctx.db.fingerprint();
    let peak = start;
    let answered = 0;
    const statuses = {};
    const ids = Array.from({ length: 50_000 }, () => randomUUID());
    await it.pool(ids, CONCURRENCY, async (id, i) => {
      const cancel = i % 10 === 9;
      const res = await it.request(`${svc.base}/v1/invoices/${id}${cancel ? '/cancel' : ''}`, { method: cancel ? 'POST' : 'GET', agent: ag });
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      if (++answered % 2_000 === 0) peak = Math.max(peak, await actors());
    });
    console.log(`case actors: 50,000 GET/cancel of random ids -> ${JSON.stringify(statuses)}; live actors peak ${peak} (start ${start})`);
    assert.deepEqual(Object.keys(statuses), ['404'], `every answer must be 404: ${JSON.stringify(statuses)}`);
    // At most one actor per request in flight, never one per id asked for.
    assert.ok(peak <= start + CONCURRENCY + 16, `billing_invoice_actors reached ${peak} while ids were requested`);
    let now = await actors();
    for (let k = 0; k < 100 && now > start; ++k) {
      await it.sleep(50);
      now = await actors();
    }
    assert.equal(now, start, 'actors for invoices that do not exist stayed alive');
    assert.deepEqual(await ctx.db.fingerprint(), before, 'reading ids that do not exist wrote something');

    // Events for unknown invoices are recorded (so a re-delivery is a duplicate), and leave no actor.
    const r = it.rng(11);
    const unknown = Array.from({ length: 2_000 }, (_, i) => {
      const inv = { id: randomUUID(), provider_intent_id: `pi_3Unknown${r.token(16)}`, amount_cents: 100, currency: 'usd', workflow_id: 'w', shipment_id: 's' };
      const id = `evt_unknown_${i}_${r.token(8)}`;
      return { id, body: it.eventBody(r, { id, kind: 'succeeded', created: Math.floor(Date.now() / 1000), inv }) };
    });
    const results = await it.burst(svc.base, unknown, ctx.secrets.webhookSecret, { concurrency: CONCURRENCY, ag });
    console.log(`case actors: 2,000 signed events for unknown invoices -> ${JSON.stringify(it.tally(results))}`);
    assert.deepEqual(Object.keys(it.tally(results)), ['200 ignored-unknown-invoice']);
    now = await actors();
    for (let k = 0; k < 100 && now > start; ++k) {
      await it.sleep(50);
      now = await actors();
    }
    assert.equal(now, start, 'actors for unknown invoices stayed alive after their events');
    ag.destroy();
  });
});

test('hostile ids and query values are refused before any database', { timeout: 120_000 }, async () => {
  await it.withService('sec_input', {}, async (ctx) => {
    const svc = await ctx.start();
    const cases = caseRunner(ctx.db, 'input');
    const get = (path) => () => it.request(`${svc.base}${path}`);
    const noLeak = (res) => (/pqxx|postgres|syntax|caf::|std::|exception/i.test(res.text ?? '') ? [`library text in ${res.text}`] : []);
    for (const [name, path, field] of [
      ['shipment_id=%FF', '/v1/invoices?shipment_id=%FF', 'shipment_id'],
      ['workflow_id=%C3%28 (invalid UTF-8)', '/v1/invoices?workflow_id=%C3%28', 'workflow_id'],
      ['workflow_id=%F4%90%80%80 (above U+10FFFF)', '/v1/invoices?workflow_id=%F4%90%80%80', 'workflow_id'],
      ['shipment_id=%00', '/v1/invoices?shipment_id=%00', 'shipment_id'],
      ['shipment_id of 201 bytes', `/v1/invoices?shipment_id=${'s'.repeat(201)}`, 'shipment_id'],
      ['shipment_id=%', '/v1/invoices?shipment_id=%', 'shipment_id'],
      ['limit=-1', '/v1/invoices?shipment_id=a&limit=-1', 'limit'],
      ['limit=1e3', '/v1/invoices?shipment_id=a&limit=1e3', 'limit'],
      ['limit given twice', '/v1/invoices?shipment_id=a&limit=1&limit=2', 'limit'],
      ['an unknown parameter', '/v1/invoices?shipment_id=a&sql=1', 'sql'],
      ['an invoice id with a quote', "/v1/invoices/1'%20OR%20'1'='1", 'id'],
      ['an invoice id in upper case', `/v1/invoices/${randomUUID().toUpperCase()}`, 'id'],
      ['an invoice id with %00', '/v1/invoices/%00', 'id'],
      ['an invoice id with a trailing slash', `/v1/invoices/${randomUUID()}/`, undefined],
    ])
      await cases.run(`GET ${name}`, get(path), field === undefined ? wantError(404, 'not_found', noLeak)
        : wantError(400, 'invalid_argument', (res) => [...noLeak(res), ...(res.json?.error?.field === field ? [] : [`field ${res.json?.error?.field}, want ${field}`])]));
    it.assertNoProblems(cases.problems, 'hostile input');
  });
});
