// SDK parity (integration): the official `stripe` SDK and billingd drive the
// same fake Stripe for every call billingd makes: PaymentIntents (create,
// retrieve, cancel), Checkout Sessions (create, retrieve, expire), refunds
// (expand[0]=charge) and the event log (GET /v1/events). billingd's requests
// must carry the same parameter names in the same order (byte-identical
// bodies and query strings for the same values), the same headers
// (Authorization shape, Stripe-Version, Content-Type, Idempotency-Key on
// every POST and none on a GET), the SDK's replay of billingd's POST with
// billingd's key must be Stripe's replay of the same object, and both must
// behave the same under faults (one key across retries, Stripe-Should-Retry
// honoured, 4xx not retried, one refund after a 500). The calls without an
// HTTP route in billingd (retrieving an intent or a session, reading the
// event log) are made by stripe_probe through billingd's Stripe client.
//
// The SDK writes parameters in the order of the object it is given (its
// stringifyRequestData), so the order compared is the one the SDK calls below
// are written in: the order protocol/stripe_api.hpp documents. What the byte
// comparison proves is the rest: names, nesting, array indices, escaping, no
// parameter missing or extra.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { withStripe, invoice, create, until, assertNoSecrets, allLogs, it } from './stripe_lib.mjs';

const probePath = process.env.STRIPE_PROBE;
const probeLogs = []; // checked for secrets with billingd's

function probe(fake, key, ...args) {
  assert.ok(probePath && existsSync(probePath), `STRIPE_PROBE must name the built stripe_probe (got ${probePath}); run through ctest`);
  return new Promise((resolve, reject) => {
    execFile(probePath, [fake.base, key, fake.caFile, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`stripe_probe ${args.join(' ')}: ${err.message}\n${stderr}`));
      // The client's log lines come first; the answer is the last line.
      else {
        const lines = stdout.trim().split('\n');
        probeLogs.push(...stderr.split('\n'), ...lines.slice(0, -1));
        resolve({ json: JSON.parse(lines.at(-1)), log: stderr + stdout });
      }
    });
  });
}

const SAME = ['authorization', 'stripe-version', 'content-type', 'accept'];
function compareHeaders(ours, theirs, what) {
  for (const h of SAME) assert.equal(ours.headers[h], theirs.headers[h], `${what}: header ${h}`);
  assert.equal('idempotency-key' in ours.headers, 'idempotency-key' in theirs.headers, `${what}: Idempotency-Key presence`);
  assert.equal('content-length' in ours.headers, 'content-length' in theirs.headers, `${what}: Content-Length presence`);
  assert.match(ours.headers.authorization, /^Bearer sk_test_\w+$/);
}
const names = (r) => r.pairs.map(([k]) => k);

test('billingd sends what the SDK sends: create, retrieve, cancel', { timeout: 120_000 }, async () => {
  await withStripe('stripe_parity', {}, async (ctx) => {
    const { fake } = ctx;
    const sdk = fake.sdk(ctx.secretKey, { maxNetworkRetries: 2 });
    const svc = await ctx.start();

    // create: billingd first, then the SDK with the same values and key.
    const body = invoice('parity', 1);
    const res = await create(svc, body);
    assert.equal(res.status, 201, res.text);
    const ours = fake.calls('POST', '/v1/payment_intents').at(-1);
    const p = Object.fromEntries(ours.pairs);
    const params = {
      amount: Number(p.amount), currency: p.currency, automatic_payment_methods: { enabled: true }, description: p.description,
      metadata: { invoice_id: p['metadata[invoice_id]'], workflow_id: p['metadata[workflow_id]'], shipment_id: p['metadata[shipment_id]'] },
    };
    assert.deepEqual(params.metadata, { invoice_id: res.json.id, workflow_id: body.workflow_id, shipment_id: body.shipment_id });
    const replay = await sdk.paymentIntents.create(params, { idempotencyKey: ours.headers['idempotency-key'] });
    const theirs = fake.calls('POST', '/v1/payment_intents').at(-1);
    assert.equal(theirs.body, ours.body, 'byte-identical body for the same values');
    assert.deepEqual(names(theirs), names(ours));
    assert.equal(theirs.replayed, true, 'the fake saw the same parameters under the same key');
    assert.equal(replay.id, res.json.provider_intent_id);
    compareHeaders(ours, theirs, 'create');
    // The SDK's own key for a POST, like ours, is present on every POST.
    const fresh = await sdk.paymentIntents.create({ ...params, metadata: { ...params.metadata, invoice_id: 'sdk-own' } });
    assert.match(fake.calls('POST', '/v1/payment_intents').at(-1).headers['idempotency-key'], /^stripe-node-retry-/);

    // retrieve: billingd's client (through stripe_probe) and the SDK.
    const got = await probe(fake, ctx.secretKey, 'get', fresh.id);
    assert.equal(got.json.id, fresh.id);
    assert.equal(got.json.status, 'requires_payment_method');
    assert.equal(got.json.amount_cents, params.amount);
    assert.equal(got.json.currency, 'usd');
    const oursGet = fake.calls('GET', `/v1/payment_intents/${fresh.id}`).at(-1);
    await sdk.paymentIntents.retrieve(fresh.id);
    const theirsGet = fake.calls('GET', `/v1/payment_intents/${fresh.id}`).at(-1);
    assert.equal(oursGet.target, theirsGet.target);
    assert.equal(oursGet.body, '');
    assert.equal(theirsGet.body, '');
    assert.equal(oursGet.headers['idempotency-key'], undefined);
    compareHeaders(oursGet, theirsGet, 'retrieve');

    // cancel: billingd by API, the SDK on another intent with the same params.
    const cancel = await it.request(`${svc.base}/v1/invoices/${res.json.id}/cancel`, { method: 'POST' });
    assert.equal(cancel.status, 200, cancel.text);
    const oursCancel = fake.calls('POST', `/v1/payment_intents/${res.json.provider_intent_id}/cancel`).at(-1);
    await sdk.paymentIntents.cancel(fresh.id, { cancellation_reason: 'abandoned' });
    const theirsCancel = fake.calls('POST', `/v1/payment_intents/${fresh.id}/cancel`).at(-1);
    assert.equal(oursCancel.body, theirsCancel.body);
    compareHeaders(oursCancel, theirsCancel, 'cancel');
    // Canceling again: both get Stripe's unexpected-state answer; billingd's
    // client turns it into the intent's real status.
    const twice = await probe(fake, ctx.secretKey, 'cancel', fresh.id, 'inv-parity');
    assert.equal(twice.json.status, 'canceled');
    await assert.rejects(sdk.paymentIntents.cancel(fresh.id), (e) => e.code === 'payment_intent_unexpected_state');
    assert.ok(probeLogs.some((l) => /stripe GET \/v1\/payment_intents\/pi_\w+ -> 200/.test(l)), probeLogs.join('\n'));
    assertNoSecrets(ctx, [...allLogs(ctx), ...probeLogs]);
  });
});

test('idempotency under faults: the SDK and billingd retry alike', { timeout: 120_000 }, async () => {
  await withStripe('stripe_parity_faults', {}, async (ctx) => {
    const { fake } = ctx;
    const sdk = fake.sdk(ctx.secretKey, { maxNetworkRetries: 2 });
    const svc = await ctx.start();
    const pattern = async (run) => {
      const n = fake.calls('POST', '/v1/payment_intents').length;
      await run().catch(() => {});
      return fake.calls('POST', '/v1/payment_intents').slice(n).map((r) => ({ status: r.status, key: r.headers['idempotency-key'], body: r.body, replayed: r.replayed }));
    };
    const cases = [
      ['500 then 409 then success', [{ status: 500 }, { status: 409, code: 'idempotency_key_in_use' }]],
      ['429 lock_timeout', [{ status: 429 }]],
      ['500 with Stripe-Should-Retry: false', [{ status: 500, shouldRetry: false }]],
      ['a dropped connection', [{ drop: true }]],
      ['an answer lost after Stripe executed', [{ status: 502, after: true }]],
    ];
    let i = 0;
    for (const [name, faults] of cases) {
      const inject = () => faults.forEach((f) => fake.fault({ method: 'POST', path: '/v1/payment_intents', ...f }));
      inject();
      const b = await pattern(() => create(svc, invoice('pf', ++i)));
      inject();
      const s = await pattern(() => sdk.paymentIntents.create({ amount: 1000, currency: 'usd', metadata: { n: String(i) } }));
      assert.deepEqual(b.map((x) => [x.status, x.replayed]), s.map((x) => [x.status, x.replayed]), `${name}: same attempts and answers`);
      for (const run of [b, s]) {
        assert.equal(new Set(run.map((x) => x.key)).size, 1, `${name}: one Idempotency-Key across the retries`);
        assert.equal(new Set(run.map((x) => x.body)).size, 1, `${name}: the same body on every retry`);
      }
      console.log(`parity: ${name}: ${b.map((x) => x.status).join(' -> ')}`);
    }
    // A 4xx is not retried by either.
    const b = await pattern(() => create(svc, invoice('pf', 99, { amount_cents: 10 })));
    const s = await pattern(() => sdk.paymentIntents.create({ amount: 10, currency: 'usd' }));
    assert.deepEqual(b.map((x) => x.status), [400]);
    assert.deepEqual(s.map((x) => x.status), [400]);
    assertNoSecrets(ctx, allLogs(ctx));
  });
});

// Requests to the fake since `n` (an index into fake.requests), matching
// method and path: a test's own calls, not the reconciler's meanwhile.
const since = (fake, n, method, p) => fake.calls(method, p).filter((r) => r.seq >= n);
const paramsOf = (r) => Object.fromEntries(r.pairs);
// billingd's POST replayed by the SDK with billingd's key: Stripe's replay.
function assertReplay(ours, theirs, what) {
  assert.equal(theirs.body, ours.body, `${what}: byte-identical body for the same values`);
  assert.deepEqual(names(theirs), names(ours), `${what}: parameter names and order`);
  assert.equal(theirs.headers['idempotency-key'], ours.headers['idempotency-key'], `${what}: the same key`);
  assert.equal(theirs.replayed, true, `${what}: the fake saw the same parameters under the same key`);
  assert.equal(theirs.status, ours.status, `${what}: the same answer replayed`);
  compareHeaders(ours, theirs, what);
}
const post = (svc, path, body, headers = {}) => it.request(`${svc.base}${path}`, { method: 'POST', body, headers });

test('billingd sends what the SDK sends: Checkout Sessions create, retrieve, expire', { timeout: 120_000 }, async () => {
  await withStripe('stripe_parity_checkout', {}, async (ctx) => {
    const { fake } = ctx;
    const sdk = fake.sdk(ctx.secretKey, { maxNetworkRetries: 2 });
    const svc = await ctx.start();

    // create: billingd by API (mode checkout), then the SDK with the values
    // billingd sent and its key.
    const urls = { mode: 'checkout', success_url: 'https://shop.example/paid?inv={CHECKOUT_SESSION_ID}&n=%C3%A9+1', cancel_url: 'https://shop.example/cart?from=checkout&lang=fr-CA' };
    const body = invoice('pco', 1, urls);
    let n = fake.requests.length;
    const res = await create(svc, body);
    assert.equal(res.status, 201, res.text);
    const [ours] = since(fake, n, 'POST', '/v1/checkout/sessions');
    assert.ok(ours, 'billingd created a Checkout Session');
    const p = paramsOf(ours);
    const metadata = { invoice_id: res.json.id, workflow_id: body.workflow_id, shipment_id: body.shipment_id };
    const params = {
      mode: 'payment',
      line_items: [{ price_data: { currency: 'usd', unit_amount: body.amount_cents, product_data: { name: `Shipment ${body.shipment_id}` } }, quantity: 1 }],
      success_url: urls.success_url,
      cancel_url: urls.cancel_url,
      client_reference_id: res.json.id,
      expires_at: Number(p.expires_at), // billingd's, derived from the invoice
      metadata,
      payment_intent_data: { description: `Shipment ${body.shipment_id} (invoice ${res.json.id})`, metadata },
    };
    n = fake.requests.length;
    const replay = await sdk.checkout.sessions.create(params, { idempotencyKey: ours.headers['idempotency-key'] });
    const [theirs] = since(fake, n, 'POST', '/v1/checkout/sessions');
    assertReplay(ours, theirs, 'create session');
    assert.equal(replay.id, res.json.provider_session_id);
    assert.equal(replay.url, res.json.checkout_url);
    // The SDK's own create (its own key) makes another session: the
    // replay above was idempotency, not a coincidence of the fake.
    const fresh = await sdk.checkout.sessions.create({ ...params, client_reference_id: 'sdk-own' });
    assert.notEqual(fresh.id, replay.id);
    assert.match(fake.calls('POST', '/v1/checkout/sessions').at(-1).headers['idempotency-key'], /^stripe-node-retry-/);

    // retrieve: billingd's client (stripe_probe) and the SDK.
    n = fake.requests.length;
    const got = await probe(fake, ctx.secretKey, 'session-get', replay.id);
    const sdkGot = await sdk.checkout.sessions.retrieve(replay.id);
    const [oursGet, theirsGet] = since(fake, n, 'GET', `/v1/checkout/sessions/${replay.id}`);
    assert.ok(oursGet && theirsGet, 'one retrieve each');
    assert.equal(oursGet.target, theirsGet.target);
    assert.equal(oursGet.body, '');
    assert.equal(theirsGet.body, '');
    assert.equal(oursGet.headers['idempotency-key'], undefined);
    compareHeaders(oursGet, theirsGet, 'retrieve session');
    assert.deepEqual(
      { id: got.json.id, status: got.json.status, url: got.json.url, amount: got.json.amount_cents, currency: got.json.currency, expires_at: got.json.expires_at },
      { id: sdkGot.id, status: sdkGot.status, url: sdkGot.url, amount: sdkGot.amount_total, currency: sdkGot.currency, expires_at: sdkGot.expires_at });

    // expire: billingd by cancelling the checkout invoice, then the SDK's
    // replay with billingd's key (the same expired session back) and the
    // SDK's own expire of its own session.
    n = fake.requests.length;
    const cancel = await post(svc, `/v1/invoices/${res.json.id}/cancel`);
    assert.equal(cancel.status, 200, cancel.text);
    assert.equal(cancel.json.status, 'CANCELLED');
    const expirePath = `/v1/checkout/sessions/${replay.id}/expire`;
    const [oursExpire] = since(fake, n, 'POST', expirePath);
    assert.ok(oursExpire, 'billingd expired the session');
    assert.equal(oursExpire.status, 200);
    n = fake.requests.length;
    const expired = await sdk.checkout.sessions.expire(replay.id, {}, { idempotencyKey: oursExpire.headers['idempotency-key'] });
    const [theirsExpire] = since(fake, n, 'POST', expirePath);
    assertReplay(oursExpire, theirsExpire, 'expire session');
    assert.equal(oursExpire.body, '');
    assert.equal(expired.id, replay.id);
    assert.equal(expired.status, 'expired');
    await sdk.checkout.sessions.expire(fresh.id);
    const ownExpire = fake.calls('POST', `/v1/checkout/sessions/${fresh.id}/expire`).at(-1);
    assert.equal(ownExpire.status, 200);
    assert.equal(ownExpire.body, oursExpire.body);
    compareHeaders(oursExpire, ownExpire, 'expire (the SDK\'s own key)');
    assertNoSecrets(ctx, [...allLogs(ctx), ...probeLogs]);
  });
});

// The event types the reconciler asks for (protocol/stripe_api.hpp webhook_event_types).
const EVENT_TYPES = [
  'payment_intent.succeeded', 'payment_intent.payment_failed', 'payment_intent.canceled',
  'payment_intent.processing', 'charge.refunded', 'refund.updated', 'charge.dispute.created',
  'charge.dispute.closed', 'checkout.session.completed', 'checkout.session.expired',
  'checkout.session.async_payment_succeeded', 'checkout.session.async_payment_failed',
];

test('billingd sends what the SDK sends: refunds (expand[0]=charge) and the event log', { timeout: 120_000 }, async () => {
  await withStripe('stripe_parity_refunds', {}, async (ctx) => {
    const { fake } = ctx;
    const sdk = fake.sdk(ctx.secretKey, { maxNetworkRetries: 2 });
    const svc = await ctx.start();
    const inv = (await create(svc, invoice('prf', 1, { amount_cents: 5000 }))).json;
    fake.state.confirmIntent(inv.provider_intent_id, { payment_method: 'pm_card_visa' });
    await fake.webhooks.idle();
    await until(async () => (await it.request(`${svc.base}/v1/invoices/${inv.id}`)).json?.status === 'PAID', 'PAID');
    const refundPath = `/v1/invoices/${inv.id}/refunds`;

    // A partial refund with a reason and the caller's key, then the rest
    // (no amount, no reason, no key): each replayed by the SDK.
    const cases = [
      ['partial refund', { amount_cents: 2000, reason: 'requested_by_customer' }, { 'idempotency-key': 'rf-parity-1' },
        { payment_intent: inv.provider_intent_id, amount: 2000, reason: 'requested_by_customer', metadata: { invoice_id: inv.id }, expand: ['charge'] }],
      ['the rest', {}, {},
        { payment_intent: inv.provider_intent_id, metadata: { invoice_id: inv.id }, expand: ['charge'] }],
    ];
    for (const [what, req, headers, params] of cases) {
      let n = fake.requests.length;
      const res = await post(svc, refundPath, req, headers);
      assert.equal(res.status, 201, `${what}: ${res.text}`);
      const [ours] = since(fake, n, 'POST', '/v1/refunds');
      assert.ok(ours, `${what}: billingd asked Stripe`);
      n = fake.requests.length;
      const replay = await sdk.refunds.create(params, { idempotencyKey: ours.headers['idempotency-key'] });
      const [theirs] = since(fake, n, 'POST', '/v1/refunds');
      assertReplay(ours, theirs, what);
      assert.equal(replay.id, res.json.refund.id, `${what}: the same refund`);
      assert.equal(replay.charge.amount_refunded, res.json.invoice.refunded_cents, `${what}: the charge expanded`);
    }
    assert.equal(fake.state.refunds.size, 2, 'two refunds, none made by the replays');
    assert.equal(fake.state.charges.get(fake.state.intents.get(inv.provider_intent_id).latest_charge).amount_refunded, 5000);

    // The event log: several types (types[i]), both created bounds,
    // starting_after and a limit; then one type (type=) without bounds.
    const all = [...fake.state.events].reverse(); // newest first, as listed
    const chosen = all.filter((e) => EVENT_TYPES.includes(e.type));
    assert.ok(chosen.length >= 3, `events to page through: ${all.map((e) => e.type)}`);
    const gte = Math.min(...all.map((e) => e.created)) - 60;
    const lte = Math.max(...all.map((e) => e.created)) + 3600; // unique: tells our call from the reconciler's
    const queries = [
      ['several types, bounds, starting_after', { types: EVENT_TYPES, gte, lte, after: chosen[0].id, limit: 2 },
        { limit: 2, types: EVENT_TYPES, created: { gte, lte }, starting_after: chosen[0].id }],
      ['one type', { types: ['charge.refunded'], gte: 0, lte: 0, after: '-', limit: 100 },
        { limit: 100, type: 'charge.refunded' }],
    ];
    for (const [what, q, params] of queries) {
      const n = fake.requests.length;
      const page = await probe(fake, ctx.secretKey, 'events', q.types.join(','), String(q.gte), String(q.lte), q.after, String(q.limit));
      assert.equal(page.json.error, undefined, JSON.stringify(page.json));
      const sdkPage = await sdk.events.list(params);
      const mine = (r) => r.params.limit === String(q.limit) && (q.lte ? r.params.created?.lte === String(q.lte) : !r.params.created);
      const [ours, theirs, ...more] = since(fake, n, 'GET', '/v1/events').filter(mine);
      assert.ok(ours && theirs && more.length === 0, `${what}: one list each`);
      assert.equal(ours.query, theirs.query, `${what}: the same query string`);
      assert.equal(ours.target, theirs.target);
      assert.deepEqual(names(ours), names(theirs));
      assert.equal(ours.body, '');
      assert.equal(ours.headers['idempotency-key'], undefined);
      compareHeaders(ours, theirs, `list events: ${what}`);
      assert.equal(ours.status, 200);
      assert.deepEqual(page.json.events.map((e) => e.id), sdkPage.data.map((e) => e.id), `${what}: the same page`);
      assert.equal(page.json.has_more, sdkPage.has_more);
      console.log(`parity: GET /v1/events?${ours.query.slice(0, 120)}${ours.query.length > 120 ? '…' : ''}`);
    }
    // The reconciler's own first read of the log (at start), and the SDK with
    // its values.
    const byBillingd = (r) => r.path === '/v1/events' && /^billingd/.test(r.headers['user-agent'] ?? '');
    const rec = await fake.waitForRequest(byBillingd);
    assert.ok(Array.isArray(rec.params.types) && rec.params.created?.gte !== undefined, `the reconciler's query: ${rec.query}`);
    const recParams = {
      limit: Number(rec.params.limit), types: rec.params.types,
      created: { gte: Number(rec.params.created.gte), ...(rec.params.created.lte ? { lte: Number(rec.params.created.lte) } : {}) },
      ...(rec.params.starting_after ? { starting_after: rec.params.starting_after } : {}),
    };
    assert.deepEqual(recParams.types, EVENT_TYPES);
    const n = fake.requests.length;
    await sdk.events.list(recParams);
    const [sdkRec] = since(fake, n, 'GET', '/v1/events').filter((r) => !byBillingd(r));
    assert.equal(rec.query, sdkRec.query, 'the reconciler\'s query string');
    compareHeaders(rec, sdkRec, 'list events: the reconciler');
    // The first page asked for two after the newest: the page is those two.
    assert.deepEqual((await sdk.events.list(queries[0][2])).data.map((e) => e.id), chosen.slice(1, 3).map((e) => e.id));
    assertNoSecrets(ctx, [...allLogs(ctx), ...probeLogs]);
  });
});

test('refunds under a 500: one key across the retries and one refund, for billingd and the SDK alike', { timeout: 120_000 }, async () => {
  await withStripe('stripe_parity_refund_faults', {}, async (ctx) => {
    const { fake } = ctx;
    const sdk = fake.sdk(ctx.secretKey, { maxNetworkRetries: 2 });
    const svc = await ctx.start();
    const inv = (await create(svc, invoice('prff', 1, { amount_cents: 6000 }))).json;
    fake.state.confirmIntent(inv.provider_intent_id, { payment_method: 'pm_card_visa' });
    await fake.webhooks.idle();
    await until(async () => (await it.request(`${svc.base}/v1/invoices/${inv.id}`)).json?.status === 'PAID', 'PAID');
    // The SDK's payment, unknown to billingd.
    const pi = await sdk.paymentIntents.create({ amount: 6000, currency: 'usd', automatic_payment_methods: { enabled: true } });
    fake.state.confirmIntent(pi.id, { payment_method: 'pm_card_visa' });
    const refundsOf = (intent) => [...fake.state.refunds.values()].filter((r) => r.payment_intent === intent);

    const pattern = async (run) => {
      const n = fake.requests.length;
      const out = await run();
      const attempts = since(fake, n, 'POST', '/v1/refunds').map((r) => ({ status: r.status, key: r.headers['idempotency-key'], body: r.body, replayed: r.replayed }));
      return { out, attempts };
    };
    const cases = [
      ['a 500 before Stripe executed', { status: 500 }, 'retried, executed once'],
      ['a 500 after Stripe executed (the answer lost)', { status: 500, after: true }, 'retried, the stored refund replayed'],
    ];
    let i = 0;
    const answers = [];
    for (const [name, fault] of cases) {
      ++i;
      const before = [refundsOf(inv.provider_intent_id).length, refundsOf(pi.id).length];
      fake.fault({ method: 'POST', path: '/v1/refunds', ...fault });
      const b = await pattern(() => post(svc, `/v1/invoices/${inv.id}/refunds`, { amount_cents: 1000 }, { 'idempotency-key': `rf-fault-${i}` }));
      fake.fault({ method: 'POST', path: '/v1/refunds', ...fault });
      const s = await pattern(() => sdk.refunds.create({ payment_intent: pi.id, amount: 1000, metadata: { n: String(i) }, expand: ['charge'] }));
      assert.ok([200, 201].includes(b.out.status), `${name}: ${b.out.text}`);
      answers.push([name, b.out.status]);
      assert.equal(b.out.json.refund.amount_cents, 1000);
      assert.equal(s.out.amount, 1000);
      assert.deepEqual(b.attempts.map((x) => [x.status, x.replayed]), s.attempts.map((x) => [x.status, x.replayed]), `${name}: same attempts and answers`);
      assert.equal(b.attempts.length, 2, `${name}: one retry`);
      for (const run of [b, s]) {
        assert.equal(new Set(run.attempts.map((x) => x.key)).size, 1, `${name}: one Idempotency-Key across the retries`);
        assert.equal(new Set(run.attempts.map((x) => x.body)).size, 1, `${name}: the same body on every retry`);
      }
      assert.deepEqual([refundsOf(inv.provider_intent_id).length, refundsOf(pi.id).length], [before[0] + 1, before[1] + 1], `${name}: one refund each`);
      assert.equal(b.out.json.refund.id, refundsOf(inv.provider_intent_id).at(-1).id);
      assert.equal(s.out.id, refundsOf(pi.id).at(-1).id);
      console.log(`parity: refund, ${name}: ${b.attempts.map((x) => x.status + (x.replayed ? ' (replayed)' : '')).join(' -> ')}`);
    }
    const after = (await it.request(`${svc.base}/v1/invoices/${inv.id}`)).json;
    assert.equal(after.refunded_cents, 2000);
    // Each was the caller's first request with its key: 201 (a new refund),
    // not 200 (a repeat), also when billingd's own retry after a lost answer
    // was Stripe's replay of its first attempt.
    assert.deepEqual(answers.map(([, status]) => status), [201, 201], JSON.stringify(answers));
    assert.equal(after.status, 'PAID');
    assertNoSecrets(ctx, [...allLogs(ctx), ...probeLogs]);
  });
});
