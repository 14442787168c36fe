// Bad input changes nothing: a table of malformed requests to the invoice API
// and the webhook, each with the expected status (and error.field where the
// API names one), and a fingerprint of the database (row counts of invoices,
// webhook_events and outbox, and a digest of every invoice row) taken before
// and after each request. Then 409 for a conflicting create and 200 for an
// identical repeat.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as it from './lib.mjs';

const valid = (n) => ({ shipment_id: `shp_bad_${n}`, user_id: 'usr_bad', workflow_id: `wf_bad_${n}`, amount_cents: 1999, currency: 'usd' });
const without = (k) => { const b = valid(`no_${k}`); delete b[k]; return b; };
const withField = (n, k, v) => ({ ...valid(n), [k]: v });

// [name, body (object → JSON, string → raw), status, error.field (undefined: none expected)]
const createCases = [
  ['malformed JSON', '{"shipment_id":"s","user_id":', 400, undefined],
  ['JSON array', JSON.stringify([valid('arr')]), 400, undefined],
  ['JSON string', '"hello"', 400, undefined],
  ['empty body', '', 400, undefined],
  ['amount_cents as a string', withField('a1', 'amount_cents', '100'), 400, 'amount_cents'],
  ['amount_cents fractional', withField('a2', 'amount_cents', 12.5), 400, 'amount_cents'],
  ['amount_cents negative', withField('a3', 'amount_cents', -100), 400, 'amount_cents'],
  ['amount_cents zero', withField('a4', 'amount_cents', 0), 400, 'amount_cents'],
  ['amount_cents above 99,999,999', withField('a5', 'amount_cents', 100_000_000), 400, 'amount_cents'],
  ['amount_cents huge', '{"shipment_id":"shp_bad_a6","user_id":"usr_bad","workflow_id":"wf_bad_a6","amount_cents":18446744073709551616,"currency":"usd"}', 400, 'amount_cents'],
  ['amount_cents 2^64-1', '{"shipment_id":"shp_bad_a7","user_id":"usr_bad","workflow_id":"wf_bad_a7","amount_cents":18446744073709551615,"currency":"usd"}', 400, 'amount_cents'],
  ['amount_cents 1e3', '{"shipment_id":"shp_bad_a8","user_id":"usr_bad","workflow_id":"wf_bad_a8","amount_cents":1e3,"currency":"usd"}', 400, 'amount_cents'],
  ['amount_cents boolean', withField('a9', 'amount_cents', true), 400, 'amount_cents'],
  ['currency a number', withField('c1', 'currency', 123), 400, 'currency'],
  ['currency "us"', withField('c2', 'currency', 'us'), 400, 'currency'],
  ['currency "usdd"', withField('c3', 'currency', 'usdd'), 400, 'currency'],
  ['currency "u$d"', withField('c4', 'currency', 'u$d'), 400, 'currency'],
  ['currency empty', withField('c5', 'currency', ''), 400, 'currency'],
  ['currency non-ASCII', withField('c6', 'currency', 'üsd'), 400, 'currency'],
  ['currency "xyz" (not ISO 4217)', withField('c7', 'currency', 'xyz'), 400, 'currency'],
  ['currency "dem" (withdrawn)', withField('c8', 'currency', 'dem'), 400, 'currency'],
  ['currency "xau" (gold, no minor unit)', withField('c9', 'currency', 'xau'), 400, 'currency'],
  ['amount_cents twice (the last would win)', '{"shipment_id":"shp_bad_d1","user_id":"usr_bad","workflow_id":"wf_bad_d1","amount_cents":1,"amount_cents":99999999,"currency":"usd"}', 400, 'amount_cents'],
  ['currency twice', '{"shipment_id":"shp_bad_d2","user_id":"usr_bad","workflow_id":"wf_bad_d2","amount_cents":100,"currency":"usd","currency":"eur"}', 400, 'currency'],
  ['shipment_id twice', '{"shipment_id":"a","shipment_id":"b","user_id":"usr_bad","workflow_id":"wf_bad_d3","amount_cents":100,"currency":"usd"}', 400, 'shipment_id'],
  ...['shipment_id', 'user_id', 'workflow_id', 'amount_cents', 'currency'].map((k) => [`missing ${k}`, without(k), 400, k]),
  ...['shipment_id', 'user_id', 'workflow_id', 'amount_cents', 'currency'].map((k) => [`${k} null`, withField(`n_${k}`, k, null), 400, k]),
  ...['shipment_id', 'user_id', 'workflow_id'].map((k) => [`${k} empty`, withField(`e_${k}`, k, ''), 400, k]),
  ...['shipment_id', 'user_id', 'workflow_id'].map((k) => [`${k} a number`, withField(`t_${k}`, k, 42), 400, k]),
  ...['shipment_id', 'user_id', 'workflow_id'].map((k) => [`${k} with a control character`, withField(`x_${k}`, k, `id\u0001${k}`), 400, k]),
  ['shipment_id with a newline', withField('nl', 'shipment_id', 'shp\nbad'), 400, 'shipment_id'],
  ['workflow_id with DEL', withField('del', 'workflow_id', 'wf\u007fbad'), 400, 'workflow_id'],
  ['user_id with NUL', withField('nul', 'user_id', 'usr\u0000bad'), 400, 'user_id'],
  ['shipment_id of 201 bytes', withField('long', 'shipment_id', 's'.repeat(201)), 400, 'shipment_id'],
  ['workflow_id of 201 bytes (multi-byte)', withField('long2', 'workflow_id', 'é'.repeat(100) + 'x'), 400, 'workflow_id'],
  ['expires_in_seconds a string', withField('x1', 'expires_in_seconds', '3600'), 400, 'expires_in_seconds'],
  ['expires_in_seconds negative', withField('x2', 'expires_in_seconds', -1), 400, 'expires_in_seconds'],
];

test('bad input: every malformed request is refused and writes nothing', { timeout: 300_000 }, async () => {
  await it.withService('bad_input', {}, async (ctx) => {
    const svc = await ctx.start();
    const base = svc.base;
    const secret = ctx.secrets.webhookSecret;
    const r = it.rng(it.seedFor('bad_input'));

    // A real invoice: the webhook bodies below target it, so if any of them
    // were accepted its row, webhook_events and outbox would change.
    const created = await it.request(`${base}/v1/invoices`, { method: 'POST', body: valid('base') });
    assert.equal(created.status, 201, `create the baseline invoice: ${created.status} ${created.text}`);
    const inv = created.json;

    const failures = [];
    let checked = 0;
    async function check(name, send, wantStatus, wantField, extra) {
      ++checked;
      const before = await ctx.db.fingerprint();
      const res = await send();
      const after = await ctx.db.fingerprint();
      const problems = [];
      if (res.status !== wantStatus) problems.push(`status ${res.status}, want ${wantStatus} (${res.text ?? res.error})`);
      if (wantStatus >= 400 && wantStatus !== 413) {
        if (!res.json?.error?.code || typeof res.json.error.message !== 'string')
          problems.push(`body is not {"error":{"code","message"}}: ${res.text}`);
        else if (wantField !== undefined && res.json.error.field !== wantField)
          problems.push(`error.field ${JSON.stringify(res.json.error.field)}, want ${JSON.stringify(wantField)} (${res.text})`);
      }
      if (extra) problems.push(...extra(res));
      if (JSON.stringify(before) !== JSON.stringify(after))
        problems.push(`the database changed: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
      if (problems.length) failures.push(`${name}: ${problems.join('; ')}`);
      return res;
    }
    const post = (path, body, headers) => () => it.request(`${base}${path}`, { method: 'POST', body, headers });

    for (const [name, body, status, field] of createCases)
      await check(`POST /v1/invoices, ${name}`, post('/v1/invoices', body), status, field);

    // Oversized: 2 MB (the limit is 1 MiB).
    // Over a raw socket: billingd answers 413 from the header alone and
    // closes, so a client still writing the body would see EPIPE instead.
    const big = JSON.stringify({ ...valid('big'), pad: 'x'.repeat(2 * 1024 * 1024) });
    await check('POST /v1/invoices, 2 MB body', async () => {
      const head = `POST /v1/invoices HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ${ctx.secrets.apiKey}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(big)}\r\n\r\n`;
      return it.parseRawResponse(await it.rawExchange(svc.port, head + big.slice(0, 65536)));
    }, 413);

    const unknown = randomUUID();
    await check('GET an unknown invoice', () => it.request(`${base}/v1/invoices/${unknown}`), 404);
    await check('GET a malformed invoice id', () => it.request(`${base}/v1/invoices/not-a-uuid`), 400, 'id');
    await check('GET an upper-case invoice id', () => it.request(`${base}/v1/invoices/${inv.id.toUpperCase()}`), 400, 'id');
    await check('cancel an unknown invoice', post(`/v1/invoices/${unknown}/cancel`), 404);
    await check('cancel a malformed invoice id', post('/v1/invoices/%00%01/cancel'), 400, 'id');
    await check('unknown route', () => it.request(`${base}/v1/nothing-here`), 404);
    await check('unknown route under /v1/invoices', () => it.request(`${base}/v1/invoices/${inv.id}/refund`, { method: 'POST' }), 404);
    await check('list without a filter', () => it.request(`${base}/v1/invoices`), 400, 'shipment_id');
    await check('list with limit=0', () => it.request(`${base}/v1/invoices?shipment_id=x&limit=0`), 400, 'limit');
    await check('list with limit=abc', () => it.request(`${base}/v1/invoices?shipment_id=x&limit=abc`), 400, 'limit');
    await check('list with shipment_id=%FF (not UTF-8)', () => it.request(`${base}/v1/invoices?shipment_id=%FF`), 400, 'shipment_id');
    await check('list with shipment_id=%E2%82 (truncated UTF-8)', () => it.request(`${base}/v1/invoices?shipment_id=%E2%82`), 400, 'shipment_id');
    await check('list with shipment_id=%C0%AF (overlong)', () => it.request(`${base}/v1/invoices?shipment_id=%C0%AF`), 400, 'shipment_id');
    await check('list with shipment_id=%ED%A0%80 (surrogate)', () => it.request(`${base}/v1/invoices?shipment_id=%ED%A0%80`), 400, 'shipment_id');
    await check('list with broken percent-encoding', () => it.request(`${base}/v1/invoices?shipment_id=%G1`), 400, 'shipment_id');
    await check('list with shipment_id twice', () => it.request(`${base}/v1/invoices?shipment_id=a&shipment_id=b`), 400, 'shipment_id');
    await check('list with an unknown parameter', () => it.request(`${base}/v1/invoices?shipment_id=a&status=PAID`), 400, 'status');
    await check('list with a NUL in workflow_id', () => it.request(`${base}/v1/invoices?workflow_id=a%00b`), 400, 'workflow_id');
    const allow = (want) => (res) => (res.headers?.allow?.includes(want) ? [] : [`Allow header ${res.headers?.allow}, want it to include ${want}`]);
    await check('DELETE /v1/invoices', () => it.request(`${base}/v1/invoices`, { method: 'DELETE' }), 405, undefined, allow('POST'));
    await check('PUT /v1/invoices/{id}', () => it.request(`${base}/v1/invoices/${inv.id}`, { method: 'PUT', body: valid('put') }), 405, undefined, allow('GET'));
    await check('GET /v1/invoices/{id}/cancel', () => it.request(`${base}/v1/invoices/${inv.id}/cancel`), 405, undefined, allow('POST'));
    await check('GET /webhook', () => it.request(`${base}/webhook`), 405, undefined, allow('POST'));

    // Webhooks: a real event for the baseline invoice, badly signed.
    const now = Math.floor(Date.now() / 1000);
    const body = it.eventBody(r, { id: 'evt_bad_1', kind: 'succeeded', created: now - 5, inv });
    const hook = (payload, sig) => post('/webhook', payload, sig === undefined ? {} : { 'stripe-signature': sig });
    const SIG = 'Stripe-Signature';
    await check('webhook without Stripe-Signature', hook(body), 400, SIG);
    await check('webhook with an empty Stripe-Signature', hook(body, ''), 400, SIG);
    await check('webhook with a garbage signature', hook(body, `t=${now},v1=${'ab'.repeat(32)}`), 400, SIG);
    await check('webhook with a malformed header', hook(body, 'v1=,t='), 400, SIG);
    await check('webhook signed 400 s ago', hook(body, it.sign(body, secret, now - 400)), 400, SIG);
    // (A timestamp in the future is accepted, as stripe-node accepts it: only age is bounded.)
    await check('webhook signed with another secret', hook(body, it.sign(body, 'whsec_' + 'A'.repeat(32))), 400, SIG);
    await check('webhook whose body changed after signing', hook(body.replace('"amount":', '"amount": '), it.sign(body, secret)), 400, SIG);
    const notJson = 'this is not JSON at all';
    await check('signed non-JSON body', hook(notJson, it.sign(notJson, secret)), 400);
    const ev = JSON.parse(body);
    const variant = (f) => { const e = structuredClone(ev); f(e); return JSON.stringify(e); };
    for (const [name, payload, field] of [
      ['without id', variant((e) => delete e.id), 'id'],
      ['with an empty id', variant((e) => { e.id = ''; }), 'id'],
      ['without type', variant((e) => delete e.type), 'type'],
      ['without data', variant((e) => delete e.data), 'data'],
      ['without data.object', variant((e) => { delete e.data.object; }), 'data.object'],
      ['with data.object an array', variant((e) => { e.data.object = []; }), 'data.object'],
      ['with id a number', variant((e) => { e.id = 42; }), 'id'],
      ['that is a JSON array', JSON.stringify([ev]), undefined],
      ['that is truncated', body.slice(0, body.length - 10), undefined],
      ['with created a string', variant((e) => { e.created = String(e.created); }), 'created'],
      ['with a negative created', variant((e) => { e.created = -1; }), 'created'],
      ['with data.object.amount a string', variant((e) => { e.data.object.amount = String(e.data.object.amount); }), 'data.object.amount'],
      ['with a duplicated id key', body.replace('{"id":"evt_bad_1",', '{"id":"evt_bad_1","id":"evt_bad_2",'), 'id'],
    ])
      await check(`signed event ${name}`, hook(payload, it.sign(payload, secret)), 400, field);

    const hugeEvent = variant((e) => { e.data.object.description = 'x'.repeat(2 * 1024 * 1024); });
    await check('signed 2 MB webhook', async () => {
      const head = `POST /webhook HTTP/1.1\r\nHost: t\r\nStripe-Signature: ${it.sign(hugeEvent, secret)}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(hugeEvent)}\r\n\r\n`;
      return it.parseRawResponse(await it.rawExchange(svc.port, head + hugeEvent.slice(0, 65536)));
    }, 413);

    // Well-formed events that must be recorded (so a re-delivery is a
    // duplicate) but change no invoice and write no outbox row.
    async function recordedOnly(name, payload, wantOutcome) {
      ++checked;
      const before = await ctx.db.fingerprint();
      const res = await it.request(`${base}/webhook`, { method: 'POST', body: payload, headers: { 'stripe-signature': it.sign(payload, secret) } });
      const after = await ctx.db.fingerprint();
      const p = [];
      if (res.status !== 200 || res.json?.outcome !== wantOutcome) p.push(`answer ${res.status} ${res.text}, want 200 ${wantOutcome}`);
      const want = { ...before, webhook_events: before.webhook_events + 1, webhook_events_md5: after.webhook_events_md5 };
      if (JSON.stringify(after) !== JSON.stringify(want) || after.webhook_events_md5 === before.webhook_events_md5) p.push(`the database: ${JSON.stringify(before)} -> ${JSON.stringify(after)}, want only one more webhook_events row`);
      const [rec] = await ctx.db.query('SELECT outcome FROM webhook_events WHERE event_id = $1', [JSON.parse(payload).id]);
      if (rec?.outcome !== wantOutcome) p.push(`webhook_events.outcome ${rec?.outcome}, want ${wantOutcome}`);
      if (p.length) failures.push(`${name}: ${p.join('; ')}`);
    }
    await recordedOnly('succeeded with another amount', variant((e) => { e.id = 'evt_bad_amount'; e.data.object.amount += 1; }), 'rejected-mismatch');
    await recordedOnly('succeeded with another currency', variant((e) => { e.id = 'evt_bad_currency'; e.data.object.currency = 'jpy'; }), 'rejected-mismatch');
    await recordedOnly('succeeded for an unknown invoice', variant((e) => {
      e.id = 'evt_bad_unknown';
      e.data.object.id = 'pi_3Unknown000000000000000';
      e.data.object.metadata.invoice_id = randomUUID();
    }), 'ignored-unknown-invoice');

    const inv2 = await it.request(`${base}/v1/invoices/${inv.id}`);
    if (inv2.json?.status !== 'PENDING') failures.push(`the baseline invoice moved: ${inv2.text}`);

    // Idempotent create: identical repeat 200 with the same invoice and
    // client secret; the same key with another amount/currency/user 409.
    await check('identical create repeated', post('/v1/invoices', valid('base')), 200, undefined, (res) => {
      const p = [];
      if (res.json?.id !== inv.id) p.push(`id ${res.json?.id}, want ${inv.id}`);
      if (res.json?.client_secret !== inv.client_secret) p.push('a different client_secret');
      return p;
    });
    await check('create with the same key, another amount', post('/v1/invoices', { ...valid('base'), amount_cents: 2000 }), 409);
    await check('create with the same key, another currency', post('/v1/invoices', { ...valid('base'), currency: 'eur' }), 409);
    await check('create with the same key, another user', post('/v1/invoices', { ...valid('base'), user_id: 'usr_other' }), 409);

    // Boundaries that are valid: accepted, stored as documented.
    for (const [name, body, check2] of [
      ['amount_cents 1', { ...valid('min'), amount_cents: 1 }, (j) => j.amount_cents === 1],
      ['amount_cents 99,999,999', { ...valid('max'), amount_cents: 99_999_999 }, (j) => j.amount_cents === 99_999_999],
      ['currency "USD" (stored lower case)', { ...valid('upper'), currency: 'USD' }, (j) => j.currency === 'usd'],
      ['ids of 200 bytes', { ...valid('long_ok'), shipment_id: 's'.repeat(200), workflow_id: 'w'.repeat(198) + 'é' }, (j) => j.shipment_id.length === 200 && j.workflow_id.endsWith('é')],
      ['ids with Unicode', { ...valid('uni'), shipment_id: 'shp_東京_📦', user_id: 'usr_Zoë' }, (j) => j.shipment_id === 'shp_東京_📦' && j.user_id === 'usr_Zoë'],
    ]) {
      ++checked;
      const res = await it.request(`${base}/v1/invoices`, { method: 'POST', body });
      if (res.status !== 201 || !check2(res.json ?? {})) failures.push(`POST /v1/invoices, ${name}: ${res.status} ${res.text}, want 201 with the value kept`);
    }

    console.log(`checked ${checked} requests; ${failures.length} failed`);
    it.assertNoProblems(failures, 'bad input');
    const stopped = await svc.stop('SIGTERM');
    assert.deepEqual(stopped, { code: 0, signal: null });
  });
});
