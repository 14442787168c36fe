// The auth matrix: every API route × {no key, a malformed header, an unknown
// key, the key's hash presented as the key, a key without the route's scope,
// a key with it}. Refusals are 401 (with WWW-Authenticate: Bearer) or 403
// naming the scope, and write nothing; /webhook is authenticated by its
// signature alone; health is open on both listeners; /metrics lives only on
// the admin listener. The log names the key, never the key itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import * as it from '../integration/lib.mjs';
import { caseRunner, makeKeys, wantError, wantStatus } from './sec_lib.mjs';

const body = (n) => ({ shipment_id: `shp_auth_${n}`, user_id: 'usr_auth', workflow_id: `wf_auth_${n}`, amount_cents: 4200, currency: 'eur' });
const checkoutBody = (n) => ({ ...body(n), mode: 'checkout', success_url: 'https://shop.example/ok', cancel_url: 'https://shop.example/back' });

test('auth matrix on every route', { timeout: 300_000 }, async () => {
  const { keys, config } = makeKeys();
  await it.withService('sec_auth', { env: { BILLING_API_KEYS: config } }, async (ctx) => {
    const svc = await ctx.start();
    const base = svc.base;
    const cases = caseRunner(ctx.db, 'auth');
    const as = (k) => (k === undefined ? null : k);

    // Invoices to act on, made with the writer's key.
    const make = async (n) => {
      const r = await it.request(`${base}/v1/invoices`, { method: 'POST', body: body(n), auth: keys.writer.key });
      assert.equal(r.status, 201, `create: ${r.text}`);
      return r.json;
    };
    const invRead = await make('read');
    const invCancel = await make('cancel');
    const invSim = await make('sim');
    // A PAID invoice to refund: paid through the simulator with its key.
    const invRefund = await make('refund');
    const paid = await it.request(`${base}/v1/simulator/payments/${invRefund.id}`, { method: 'POST', body: { outcome: 'succeeded' }, auth: keys.sim.key });
    assert.equal(paid.json?.webhook_status, 200, `pay the invoice to refund: ${paid.status} ${paid.text}`);

    const unknownKey = it.newApiKey('nobody', it.ALL_SCOPES).key;
    const hashAsKey = createHash('sha256').update(keys.all.key).digest('hex');
    const routes = [
      { name: 'POST /v1/invoices', method: 'POST', path: '/v1/invoices', body: body('new'), scope: 'invoices:write',
        wrong: keys.reader, right: keys.writer, ok: 201, changes: true },
      { name: 'GET /v1/invoices/{id}', method: 'GET', path: `/v1/invoices/${invRead.id}`, scope: 'invoices:read',
        wrong: keys.writer, right: keys.reader, ok: 200,
        more: (res) => (res.json?.client_secret ? ['a read answered the client secret'] : []) },
      { name: 'GET /v1/invoices?shipment_id=', method: 'GET', path: `/v1/invoices?shipment_id=${invRead.shipment_id}`, scope: 'invoices:read',
        wrong: keys.sim, right: keys.reader, ok: 200,
        more: (res) => (res.json?.invoices?.length === 1 ? [] : [`list: ${res.text}`]) },
      { name: 'GET /v1/invoices?workflow_id=', method: 'GET', path: `/v1/invoices?workflow_id=${invRead.workflow_id}`, scope: 'invoices:read',
        wrong: keys.ops, right: keys.reader, ok: 200 },
      { name: 'POST /v1/invoices (mode checkout)', method: 'POST', path: '/v1/invoices', body: checkoutBody('new_checkout'), scope: 'invoices:write',
        wrong: keys.reader, right: keys.writer, ok: 201, changes: true,
        more: (res) => (res.json?.mode === 'checkout' && res.json?.checkout_url ? [] : [`checkout create: ${res.text}`]) },
      { name: 'POST /v1/invoices/{id}/refunds', method: 'POST', path: `/v1/invoices/${invRefund.id}/refunds`, body: {}, scope: 'invoices:write',
        wrong: keys.reader, right: keys.writer, ok: 201, changes: true,
        more: (res) => (res.json?.invoice?.status === 'REFUNDED' && /^re_/.test(res.json?.refund?.id ?? '') ? [] : [`refund: ${res.text}`]) },
      { name: 'POST /v1/invoices/{id}/cancel', method: 'POST', path: `/v1/invoices/${invCancel.id}/cancel`, scope: 'invoices:write',
        wrong: keys.reader, right: keys.writer, ok: 200, changes: true,
        more: (res) => (res.json?.status === 'CANCELLED' ? [] : [`cancel: ${res.text}`]) },
      { name: 'POST /v1/simulator/payments/{id}', method: 'POST', path: `/v1/simulator/payments/${invSim.id}`, body: { outcome: 'succeeded' },
        scope: 'simulator', wrong: keys.writer, right: keys.sim, ok: 200, changes: true,
        more: (res) => (res.json?.webhook_status === 200 ? [] : [`simulator: ${res.text}`]) },
    ];
    const unauth = (res) => {
      const p = [];
      if (!/^Bearer\b/.test(res.headers?.['www-authenticate'] ?? '')) p.push(`WWW-Authenticate ${res.headers?.['www-authenticate']}, want Bearer`);
      return p;
    };
    for (const r of routes) {
      const send = (auth, headers = {}) => () => it.request(`${base}${r.path}`, { method: r.method, body: r.body, auth, headers });
      await cases.run(`${r.name}, no key`, send(null), wantError(401, 'unauthenticated', unauth));
      await cases.run(`${r.name}, Authorization: Basic`, send(null, { authorization: 'Basic YWxhZGRpbjpvcGVuc2VzYW1l' }), wantError(401, 'unauthenticated', unauth));
      await cases.run(`${r.name}, Bearer with no token`, send(null, { authorization: 'Bearer ' }), wantError(401, 'unauthenticated', unauth));
      await cases.run(`${r.name}, an unknown key`, send(unknownKey), wantError(401, 'unauthenticated', unauth));
      await cases.run(`${r.name}, the key's SHA-256 as the key`, send(hashAsKey), wantError(401, 'unauthenticated', unauth));
      await cases.run(`${r.name}, a key without ${r.scope}`, send(r.wrong.key), wantError(403, 'permission_denied', (res) =>
        (res.json?.error?.message?.includes(r.scope) ? [] : [`the 403 does not name ${r.scope}: ${res.text}`])));
      // A case meant to write must write (and every refusal above wrote nothing).
      const wrote = (res, fp) => (r.changes && JSON.stringify(fp.before) === JSON.stringify(fp.after) ? ['the database did not change'] : []);
      await cases.run(`${r.name}, a key with ${r.scope}`, send(r.right.key), (res, fp) => [...wantStatus(r.ok, r.more)(res), ...wrote(res, fp)], { changes: r.changes });
    }

    // The webhook: the signature is the credential, keys change nothing.
    const now = Math.floor(Date.now() / 1000);
    const inv = await make('hook');
    const payload = it.eventBody(it.rng(7), { id: `evt_auth_${randomUUID().slice(0, 8)}`, kind: 'failed', created: now, inv });
    const hook = (sig, auth) => () => it.request(`${base}/webhook`, { method: 'POST', body: payload, auth, headers: sig ? { 'stripe-signature': sig } : {} });
    await cases.run('POST /webhook with a valid key but no signature', hook(undefined, keys.all.key), wantError(400, 'bad_signature'));
    await cases.run('POST /webhook with a valid key and a bad signature', hook(`t=${now},v1=${'0'.repeat(64)}`, keys.all.key), wantError(400, 'bad_signature'));
    await cases.run('POST /webhook signed, no key', hook(it.sign(payload, ctx.secrets.webhookSecret), null),
      wantStatus(200, (res) => (res.json?.outcome === 'applied' ? [] : [`outcome ${res.text}`])), { changes: true });

    // Open routes, and what is not on the API listener.
    for (const path of ['/healthz', '/readyz'])
      await cases.run(`GET ${path} on the API listener, no key`, () => it.request(`${base}${path}`, { auth: null }), wantStatus(200));
    await cases.run('GET /metrics on the API listener', () => it.request(`${base}/metrics`, { auth: keys.all.key }), wantError(404, 'not_found'));
    for (const path of ['/healthz', '/readyz', '/metrics'])
      await cases.run(`GET ${path} on the admin listener, no key (admin_require_key=false)`, () => it.request(`${svc.admin}${path}`, { auth: null }), wantStatus(200));
    await cases.run('GET /v1/invoices/{id} on the admin listener', () => it.request(`${svc.admin}/v1/invoices/${inv.id}`, { auth: keys.all.key }), wantError(404, 'not_found'));

    // The log: one line per API call with the key's name, never a key.
    const lines = svc.lines.join('\n');
    const p = [];
    if (!/POST \/v1\/invoices 201 key=writer /.test(lines)) p.push('no request line naming key=writer for the create');
    if (!/GET \/v1\/invoices\/[0-9a-f-]+ 403 key=writer /.test(lines)) p.push('no request line naming key=writer for its 403');
    if (!/ 401 key=- /.test(lines)) p.push('no request line for a 401');
    for (const k of [...Object.values(keys).map((x) => x.key), unknownKey])
      if (lines.includes(k)) p.push(`a key appears in the log: ${k.slice(0, 8)}…`);
    if (lines.includes(hashAsKey)) p.push('a key hash appears in the log');
    if (p.length) cases.problems.push(`log: ${p.join('; ')}`);

    const m = await it.metrics(base);
    if (!(m.billing_api_unauthenticated_total >= routes.length * 5)) cases.problems.push(`billing_api_unauthenticated_total ${m.billing_api_unauthenticated_total}`);
    if (!(m.billing_api_forbidden_total >= routes.length)) cases.problems.push(`billing_api_forbidden_total ${m.billing_api_forbidden_total}`);
    it.assertNoProblems(cases.problems, 'auth matrix');
  });
});

test('admin_require_key: /metrics needs the admin scope, health stays open', { timeout: 120_000 }, async () => {
  const { keys, config } = makeKeys();
  await it.withService('sec_admin', { env: { BILLING_API_KEYS: config, BILLING_ADMIN_REQUIRE_KEY: 'true' } }, async (ctx) => {
    const svc = await ctx.start();
    const cases = caseRunner(ctx.db, 'admin');
    const get = (path, auth) => () => it.request(`${svc.admin}${path}`, { auth });
    await cases.run('GET /metrics, no key', get('/metrics', null), wantError(401, 'unauthenticated'));
    await cases.run('GET /metrics, an unknown key', get('/metrics', it.newApiKey('x', ['admin']).key), wantError(401, 'unauthenticated'));
    await cases.run('GET /metrics, a key without admin', get('/metrics', keys.reader.key), wantError(403, 'permission_denied'));
    await cases.run('GET /metrics, the admin key', get('/metrics', keys.ops.key), wantStatus(200, (res) => (res.text.includes('billing_invoice_actors') ? [] : ['not the metrics'])));
    await cases.run('GET /healthz, no key', get('/healthz', null), wantStatus(200));
    await cases.run('GET /readyz, no key', get('/readyz', null), wantStatus(200));
    await cases.run('POST /metrics', () => it.request(`${svc.admin}/metrics`, { method: 'POST', auth: keys.ops.key }), wantStatus(405));
    it.assertNoProblems(cases.problems, 'admin listener');
  });
});

test('request ids: kept when well formed, made otherwise, named in errors', { timeout: 120_000 }, async () => {
  await it.withService('sec_reqid', {}, async (ctx) => {
    const svc = await ctx.start();
    const cases = caseRunner(ctx.db, 'request-id');
    const get = (id) => () => it.request(`${svc.base}/v1/invoices/${randomUUID()}`, { headers: id === undefined ? {} : { 'x-request-id': id } });
    const echoes = (want) => (res) => {
      const got = res.headers?.['x-request-id'];
      const p = [];
      if (want ? got !== want : !/^[0-9a-f]{16}$/.test(got ?? '')) p.push(`X-Request-Id ${got}, want ${want ?? 'a fresh one'}`);
      if (res.json?.error?.request_id !== got) p.push(`error.request_id ${res.json?.error?.request_id} != header ${got}`);
      return p;
    };
    await cases.run('a well-formed X-Request-Id is echoed', get('order-svc:1234.abc_D-9'), wantError(404, 'not_found', echoes('order-svc:1234.abc_D-9')));
    await cases.run('no X-Request-Id: one is made', get(undefined), wantError(404, 'not_found', echoes(undefined)));
    await cases.run('X-Request-Id with a space: replaced', get('a b'), wantError(404, 'not_found', echoes(undefined)));
    await cases.run('X-Request-Id of 65 characters: replaced', get('x'.repeat(65)), wantError(404, 'not_found', echoes(undefined)));
    await cases.run('X-Request-Id with a quote: replaced', get('a"b'), wantError(404, 'not_found', echoes(undefined)));
    it.assertNoProblems(cases.problems, 'request ids');
  });
});
