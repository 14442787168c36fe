// Refunds and Checkout over HTTP with the simulated provider (label
// integration). Bad refund bodies and headers and bad Checkout creates are
// 400 naming the field and write nothing (fingerprint before and after);
// refunds of an invoice that is not PAID are 409; an amount above what is
// left is 400 (amount_cents). Then the money: a full refund (REFUNDED, one
// PaymentRefunded outbox row with refunded_cents), a partial one then the
// rest, and the Idempotency-Key (same key and body: 200 with the same
// refund and no second row; same key, other body: 409). A good Checkout
// create answers its checkout_url once, to the creator; reads never do.
// No answer is a 500; every error is {"error":{code,message[,field]}}.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as it from './lib.mjs';

const tag = randomUUID().slice(0, 8);
const body = (n, extra = {}) => ({ shipment_id: `shp_rf_${tag}_${n}`, user_id: 'usr_rf', workflow_id: `wf_rf_${tag}_${n}`,
  amount_cents: 1999, currency: 'usd', ...extra });
const checkout = (n, extra = {}) => body(n, { mode: 'checkout', success_url: 'https://shop.example/paid?x=1',
  cancel_url: 'http://shop.example/cancelled', ...extra });

test('refunds and Checkout over HTTP: bad input, states, amounts, idempotency', { timeout: 300_000 }, async () => {
  const reader = it.newApiKey('rf-reader', ['invoices:read']);
  const writer = it.newApiKey('rf-writer', ['invoices:write']);
  await it.withService('refunds_http', {}, async (ctx) => {
    const svc = await ctx.start({ env: { BILLING_API_KEYS: [ctx.secrets.apiKeys, reader.entry, writer.entry].join(';') } });
    const base = svc.base;
    const failures = [];
    let checked = 0;

    const post = (path, b, headers, auth) => () => it.request(`${base}${path}`, { method: 'POST', body: b, headers, auth });
    const create = async (b) => {
      const r = await it.request(`${base}/v1/invoices`, { method: 'POST', body: b });
      assert.equal(r.status, 201, `create: ${r.status} ${r.text}`);
      return r.json;
    };
    const pay = async (id) => {
      const r = await it.request(`${base}/v1/simulator/payments/${id}`, { method: 'POST', body: { outcome: 'succeeded' } });
      assert.equal(r.status, 200, `simulator: ${r.status} ${r.text}`);
      assert.equal(r.json.webhook_status, 200, `simulator's webhook: ${r.text}`);
    };
    const outbox = async (id) => (await ctx.db.query('SELECT signal, payload FROM outbox WHERE invoice_id = $1 ORDER BY id', [id]))
      .map((r) => ({ signal: r.signal, payload: typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload }));
    const refund = (id, b, key) => post(`/v1/invoices/${id}/refunds`, b, key === undefined ? {} : { 'idempotency-key': key });

    // One request: the status, the error body (with `field` when named),
    // never a 500, and (unless `changes`) the database untouched.
    async function check(name, send, wantStatus, wantField, { extra, changes = false } = {}) {
      ++checked;
      const before = await ctx.db.fingerprint();
      const res = await send();
      const after = await ctx.db.fingerprint();
      const p = [];
      if (res.status !== wantStatus) p.push(`status ${res.status}, want ${wantStatus} (${res.text ?? res.error})`);
      if (res.status >= 500) p.push(`a ${res.status}: ${res.text}`);
      if (res.status >= 400) {
        if (!res.json?.error?.code || typeof res.json.error.message !== 'string') p.push(`body is not {"error":{"code","message"}}: ${res.text}`);
        else if (wantField !== undefined && res.json.error.field !== wantField)
          p.push(`error.field ${JSON.stringify(res.json.error.field)}, want ${JSON.stringify(wantField)} (${res.text})`);
      }
      if (extra) p.push(...extra(res, { before, after }));
      if (!changes && JSON.stringify(before) !== JSON.stringify(after)) p.push(`the database changed: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
      console.log(`case refunds: ${name} -> ${res.status}${res.json?.error ? ` ${res.json.error.code} field=${res.json.error.field}` : ''}${p.length ? '  FAILED: ' + p.join('; ') : ''}`);
      if (p.length) failures.push(`${name}: ${p.join('; ')}`);
      return res;
    }

    // ---- bad refund bodies and headers, on a PAID invoice ------------------
    const paid = await create(body('paid'));
    await pay(paid.id);
    const path = `/v1/invoices/${paid.id}/refunds`;
    const badBodies = [
      ['amount_cents 0', { amount_cents: 0 }, 'amount_cents'],
      ['amount_cents -1', { amount_cents: -1 }, 'amount_cents'],
      ['amount_cents "5"', { amount_cents: '5' }, 'amount_cents'],
      ['amount_cents 1.5', { amount_cents: 1.5 }, 'amount_cents'],
      ['amount_cents true', { amount_cents: true }, 'amount_cents'],
      ['amount_cents 100,000,000', { amount_cents: 100_000_000 }, 'amount_cents'],
      ['amount_cents 2^64', '{"amount_cents":18446744073709551616}', 'amount_cents'],
      ['amount_cents 2^64-1', '{"amount_cents":18446744073709551615}', 'amount_cents'],
      ['amount_cents 1e3', '{"amount_cents":1e3}', 'amount_cents'],
      ['reason unknown', { reason: 'changed_my_mind' }, 'reason'],
      ['reason a number', { reason: 42 }, 'reason'],
      ['reason in upper case', { reason: 'DUPLICATE' }, 'reason'],
      ['an unknown field', { amount_cents: 5, amount: 5 }, 'amount'],
      ['an unknown field with a control character', '{"a\\u0001b":1}', '?'],
      ['amount_cents twice', '{"amount_cents":1,"amount_cents":1999}', 'amount_cents'],
      ['reason twice', '{"reason":"duplicate","reason":"fraudulent"}', 'reason'],
      ['malformed JSON', '{"amount_cents":', undefined],
      ['a JSON array', '[{"amount_cents":5}]', undefined],
      ['a JSON string', '"all of it"', undefined],
      ['a JSON number', '5', undefined],
    ];
    for (const [name, b, field] of badBodies) await check(`refund, ${name}`, post(path, b), 400, field);
    // Not an object: no field to name; the error says so.
    await check('refund, body null', post(path, 'null'), 400, undefined, {
      extra: (res) => (res.json?.error?.field === undefined && /object/.test(res.json?.error?.message ?? '') ? [] : [`want no field and a message about an object: ${res.text}`]),
    });
    const KEY = 'Idempotency-Key';
    for (const [name, key] of [
      ['with a space', 'a b'],
      ['with a tab', 'a\tb'],
      ['of 201 characters', 'k'.repeat(201)],
      ['with a non-ASCII byte', 'caf\u00e9'],
    ])
      await check(`refund, Idempotency-Key ${name}`, refund(paid.id, {}, key), 400, KEY);
    await check('refund, Idempotency-Key sent twice', refund(paid.id, {}, ['k-one', 'k-two']), 400, KEY);
    // Above what is left: refused by billingd before the provider is asked.
    await check('refund of 2000 cents on a 1999-cent invoice', post(path, { amount_cents: 2000 }), 400, 'amount_cents');
    await check('refund of 99,999,999 cents on a 1999-cent invoice', post(path, { amount_cents: 99_999_999 }), 400, 'amount_cents');

    // ---- routes and states ----------------------------------------------------
    const unknown = randomUUID();
    await check('refund an unknown invoice', post(`/v1/invoices/${unknown}/refunds`, {}), 404);
    await check('refund a malformed invoice id', post('/v1/invoices/not-a-uuid/refunds', {}), 400, 'id');
    await check('refund an upper-case invoice id', post(`/v1/invoices/${paid.id.toUpperCase()}/refunds`, {}), 400, 'id');
    await check('GET /v1/invoices/{id}/refunds', () => it.request(`${base}${path}`), 405, undefined, {
      extra: (res) => (res.headers?.allow?.includes('POST') ? [] : [`Allow ${res.headers?.allow}, want POST`]),
    });
    await check('refund with a read-only key', post(path, {}, {}, reader.key), 403, 'scope', {
      extra: (res) => (res.json?.error?.message?.includes('invoices:write') ? [] : [`the 403 does not name invoices:write: ${res.text}`]),
    });
    const pending = await create(body('pending'));
    await check('refund a PENDING invoice', refund(pending.id, {}), 409);
    await check('refund a PENDING invoice with an Idempotency-Key', refund(pending.id, { amount_cents: 5 }, 'k-pending'), 409);
    const failed = await create(body('failed'));
    const fr = await it.request(`${base}/v1/simulator/payments/${failed.id}`, { method: 'POST', body: { outcome: 'failed' } });
    assert.equal(fr.json?.webhook_status, 200, fr.text);
    await check('refund a FAILED invoice', refund(failed.id, {}), 409);
    const cancelled = await create(body('cancelled'));
    assert.equal((await it.request(`${base}/v1/invoices/${cancelled.id}/cancel`, { method: 'POST' })).status, 200);
    await check('refund a CANCELLED invoice', refund(cancelled.id, {}), 409);

    // ---- money: full, partial then the rest ------------------------------------
    const refundAnswer = (want) => (res) => {
      const p = [];
      const j = res.json ?? {};
      if (!/^re_/.test(j.refund?.id ?? '')) p.push(`refund.id ${j.refund?.id}`);
      if (j.refund?.status !== 'succeeded') p.push(`refund.status ${j.refund?.status}`);
      if (j.refund?.amount_cents !== want.amount) p.push(`refund.amount_cents ${j.refund?.amount_cents}, want ${want.amount}`);
      if (j.invoice?.status !== want.status) p.push(`invoice.status ${j.invoice?.status}, want ${want.status}`);
      if (j.invoice?.refunded_cents !== want.total) p.push(`invoice.refunded_cents ${j.invoice?.refunded_cents}, want ${want.total}`);
      return p;
    };
    const rowsAre = async (id, want, what) => {
      const rows = await outbox(id);
      const got = rows.map((r) => `${r.signal}:${r.payload.refunded_cents ?? '-'}:${r.payload.status}`);
      if (JSON.stringify(got) !== JSON.stringify(want)) failures.push(`${what}: outbox rows ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    };

    await check('full refund (empty body)', refund(paid.id, undefined), 201, undefined, { changes: true, extra: refundAnswer({ amount: 1999, status: 'REFUNDED', total: 1999 }) });
    await rowsAre(paid.id, ['PaymentConfirmed:-:PAID', 'PaymentRefunded:1999:REFUNDED'], 'full refund');
    await check('refund a REFUNDED invoice', refund(paid.id, {}), 409);
    const read = await it.request(`${base}/v1/invoices/${paid.id}`, { auth: reader.key });
    if (read.json?.status !== 'REFUNDED' || read.json?.refunded_cents !== 1999) failures.push(`GET after the full refund: ${read.text}`);

    const part = await create(body('partial'));
    await pay(part.id);
    await check('partial refund of 500', refund(part.id, { amount_cents: 500, reason: 'requested_by_customer' }), 201, undefined,
      { changes: true, extra: refundAnswer({ amount: 500, status: 'PAID', total: 500 }) });
    await check('refund of 1500 when 1499 are left', refund(part.id, { amount_cents: 1500 }), 400, 'amount_cents');
    await check('the rest ({"amount_cents": null})', refund(part.id, { amount_cents: null }), 201, undefined,
      { changes: true, extra: refundAnswer({ amount: 1499, status: 'REFUNDED', total: 1999 }) });
    await rowsAre(part.id, ['PaymentConfirmed:-:PAID', 'PaymentRefunded:500:PAID', 'PaymentRefunded:1999:REFUNDED'], 'partial then rest');

    // ---- Idempotency-Key ----------------------------------------------------------
    const oneRowMore = (res, { before, after }) => (after.outbox === before.outbox + 1 ? [] : [`outbox ${before.outbox} -> ${after.outbox}, want one more row`]);
    const noRowMore = (res, { before, after }) => (after.outbox === before.outbox ? [] : [`outbox ${before.outbox} -> ${after.outbox}, want no new row`]);
    const both = (...fs) => (res, fp) => fs.flatMap((f) => f(res, fp));

    const full = await create(body('idem_full'));
    await pay(full.id);
    const first = await check('full refund with Idempotency-Key', refund(full.id, {}, `k-full-${tag}`), 201, undefined,
      { changes: true, extra: both(refundAnswer({ amount: 1999, status: 'REFUNDED', total: 1999 }), oneRowMore) });
    await check('the same key and body again (invoice now REFUNDED)', refund(full.id, {}, `k-full-${tag}`), 200, undefined, {
      changes: true, // none expected; noRowMore and the refund id say what matters
      extra: both(refundAnswer({ amount: 1999, status: 'REFUNDED', total: 1999 }), noRowMore,
        (res) => (res.json?.refund?.id === first.json?.refund?.id ? [] : [`refund id ${res.json?.refund?.id}, want ${first.json?.refund?.id}`])),
    });
    await check('the same key, another body (invoice REFUNDED)', refund(full.id, { amount_cents: 5 }, `k-full-${tag}`), 409);
    await check('a new key on a REFUNDED invoice', refund(full.id, {}, `k-full-new-${tag}`), 409, undefined, {
      extra: (res) => (res.json?.error?.code === 'invalid_state' && /REFUNDED/.test(res.json?.error?.message ?? '') ? [] : [`want invalid_state naming REFUNDED: ${res.text}`]),
    });

    const half = await create(body('idem_part'));
    await pay(half.id);
    const p1 = await check('partial refund of 300 with Idempotency-Key', refund(half.id, { amount_cents: 300 }, `k-part-${tag}`), 201, undefined,
      { changes: true, extra: both(refundAnswer({ amount: 300, status: 'PAID', total: 300 }), oneRowMore) });
    await check('the same key and body again (invoice still PAID)', refund(half.id, { amount_cents: 300 }, `k-part-${tag}`), 200, undefined, {
      changes: true,
      extra: both(refundAnswer({ amount: 300, status: 'PAID', total: 300 }), noRowMore,
        (res) => (res.json?.refund?.id === p1.json?.refund?.id ? [] : [`refund id ${res.json?.refund?.id}, want ${p1.json?.refund?.id}`])),
    });
    await check('the same key, another amount', refund(half.id, { amount_cents: 400 }, `k-part-${tag}`), 409, undefined);
    await check('the same key, another reason', refund(half.id, { amount_cents: 300, reason: 'fraudulent' }, `k-part-${tag}`), 409, undefined);
    await check('another key: a second refund', refund(half.id, { amount_cents: 200 }, `k-part2-${tag}`), 201, undefined,
      { changes: true, extra: both(refundAnswer({ amount: 200, status: 'PAID', total: 500 }), oneRowMore) });
    await rowsAre(half.id, ['PaymentConfirmed:-:PAID', 'PaymentRefunded:300:PAID', 'PaymentRefunded:500:PAID'], 'idempotent partial refunds');

    // ---- Checkout creates -----------------------------------------------------------
    const longUrl = 'https://shop.example/' + 'x'.repeat(2048 - 'https://shop.example/'.length + 1);
    const checkoutCases = [
      ['mode checkout without success_url', (() => { const b = checkout('c1'); delete b.success_url; return b; })(), 'success_url'],
      ['mode checkout without cancel_url', (() => { const b = checkout('c2'); delete b.cancel_url; return b; })(), 'cancel_url'],
      ['mode checkout, success_url null', checkout('c3', { success_url: null }), 'success_url'],
      ['mode checkout, success_url empty', checkout('c4', { success_url: '' }), 'success_url'],
      ['mode checkout, success_url not a URL', checkout('c5', { success_url: 'shop.example/paid' }), 'success_url'],
      ['mode checkout, success_url ftp://', checkout('c6', { success_url: 'ftp://shop.example/paid' }), 'success_url'],
      ['mode checkout, success_url "https://" alone', checkout('c7', { success_url: 'https://' }), 'success_url'],
      ['mode checkout, success_url with a space', checkout('c8', { success_url: 'https://shop.example/a b' }), 'success_url'],
      ['mode checkout, success_url of 2049 bytes', checkout('c9', { success_url: longUrl }), 'success_url'],
      ['mode checkout, success_url a number', checkout('c10', { success_url: 42 }), 'success_url'],
      ['mode checkout, cancel_url javascript:', checkout('c11', { cancel_url: 'javascript:alert(1)' }), 'cancel_url'],
      ['success_url without mode', (() => { const b = checkout('c12'); delete b.mode; return b; })(), 'success_url'],
      ['cancel_url with mode payment_intent', (() => { const b = checkout('c13', { mode: 'payment_intent' }); delete b.success_url; return b; })(), 'cancel_url'],
      ['mode "card"', checkout('c14', { mode: 'card' }), 'mode'],
      ['mode a number', checkout('c15', { mode: 2 }), 'mode'],
      ['mode "CHECKOUT"', checkout('c16', { mode: 'CHECKOUT' }), 'mode'],
      ['mode twice', '{"mode":"checkout","mode":"payment_intent"}', 'mode'],
      ['checkout, expires_in_seconds 1919 (below 32 min)', checkout('c17', { expires_in_seconds: 1919 }), 'expires_in_seconds'],
      ['checkout, expires_in_seconds 1800', checkout('c18', { expires_in_seconds: 1800 }), 'expires_in_seconds'],
      ['checkout, expires_in_seconds 86281 (above 23 h 58 min)', checkout('c19', { expires_in_seconds: 86281 }), 'expires_in_seconds'],
      ['checkout, expires_in_seconds 86400', checkout('c20', { expires_in_seconds: 86400 }), 'expires_in_seconds'],
      ['checkout, expires_in_seconds 60 (fine without checkout)', checkout('c21', { expires_in_seconds: 60 }), 'expires_in_seconds'],
    ];
    for (const [name, b, field] of checkoutCases) await check(`POST /v1/invoices, ${name}`, post('/v1/invoices', b), 400, field);

    const isCheckout = (res) => {
      const j = res.json ?? {};
      const p = [];
      if (j.mode !== 'checkout') p.push(`mode ${j.mode}`);
      if (!/^https:\/\/checkout\.simulated\.invalid\/pay\/cs_sim_/.test(j.checkout_url ?? '')) p.push(`checkout_url ${j.checkout_url}`);
      if (!/^cs_sim_/.test(j.provider_session_id ?? '')) p.push(`provider_session_id ${j.provider_session_id}`);
      if ('client_secret' in j) p.push('a client_secret in a checkout answer');
      if (j.refunded_cents !== 0) p.push(`refunded_cents ${j.refunded_cents}`);
      return p;
    };
    const co = await check('POST /v1/invoices, mode checkout', post('/v1/invoices', checkout('good')), 201, undefined, { changes: true, extra: isCheckout });
    await check('the same checkout create again', post('/v1/invoices', checkout('good')), 200, undefined, {
      extra: (res) => [...isCheckout(res), ...(res.json?.checkout_url === co.json?.checkout_url && res.json?.id === co.json?.id ? [] : ['another invoice or URL'])],
    });
    await check('the same pair as a PaymentIntent invoice', post('/v1/invoices', (() => { const b = checkout('good'); delete b.mode; delete b.success_url; delete b.cancel_url; return b; })()), 409);
    for (const [who, auth] of [['a read-only key', reader.key], ['a key with every scope', undefined]]) {
      await check(`GET a checkout invoice with ${who}`, () => it.request(`${base}/v1/invoices/${co.json.id}`, { auth }), 200, undefined, {
        extra: (res) => ('checkout_url' in (res.json ?? {}) || 'client_secret' in (res.json ?? {}) ? [`a read answered a secret: ${res.text}`]
          : res.json?.mode === 'checkout' && res.json?.provider_session_id === co.json.provider_session_id ? [] : [`read: ${res.text}`]),
      });
    }
    await check('list a checkout invoice', () => it.request(`${base}/v1/invoices?shipment_id=${co.json.shipment_id}`, { auth: reader.key }), 200, undefined, {
      extra: (res) => (JSON.stringify(res.json ?? {}).includes('checkout_url') ? ['a list answered checkout_url'] : []),
    });
    for (const [name, secs] of [['1920', 1920], ['86280', 86280]])
      await check(`checkout, expires_in_seconds ${name} (the bound)`, post('/v1/invoices', checkout(`bound_${secs}`, { expires_in_seconds: secs })), 201, undefined, {
        changes: true,
        extra: (res) => {
          const got = (Date.parse(res.json?.expires_at) - Date.parse(res.json?.created_at)) / 1000;
          return Math.abs(got - secs) <= 1 ? [] : [`expires_at - created_at = ${got}, want ${secs}`];
        },
      });
    // A checkout invoice is paid on Stripe's page: the simulator pays
    // PaymentIntents only, so it refuses, and a PENDING one is not refunded.
    await check('simulate a payment of a checkout invoice', post(`/v1/simulator/payments/${co.json.id}`, { outcome: 'succeeded' }), 409);
    await check('refund a PENDING checkout invoice', refund(co.json.id, {}), 409);

    console.log(`checked ${checked} requests; ${failures.length} failed`);
    it.assertNoProblems(failures, 'refunds and checkout over HTTP');
    const stopped = await svc.stop('SIGTERM');
    assert.deepEqual(stopped, { code: 0, signal: null });
  });
});
