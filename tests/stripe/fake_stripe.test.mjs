// The fake Stripe against the official `stripe` SDK (interop): the SDK is the
// reference client, so what it accepts and how it reacts (its error classes,
// its retries) says the fake speaks Stripe's wire format. Status rules,
// parameter errors, idempotency, faults, Checkout, Refunds, Events paging and
// signed webhooks, each checked here once so the billingd tests can rely on
// the fake.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startFakeStripe, Stripe } from './fake_stripe.mjs';

let fake;
let stripe;
const KEY = 'sk_test_fake_interop_0123456789';

before(async () => {
  fake = await startFakeStripe({ keys: [KEY, 'sk_live_fake_interop_live'] });
  stripe = fake.sdk(KEY, { maxNetworkRetries: 0 });
});
after(async () => {
  await fake?.stop();
});

const rejects = async (p, check) => {
  try {
    await p;
  } catch (e) {
    check(e);
    return e;
  }
  assert.fail('expected the SDK to throw');
};

test('Bearer auth: no key and a wrong key are 401 with Stripe\'s texts', async () => {
  const wrong = fake.sdk('sk_test_wrong_key_abcd', { maxNetworkRetries: 0 });
  await rejects(wrong.paymentIntents.create({ amount: 1000, currency: 'usd' }), (e) => {
    assert.equal(e.type, 'StripeAuthenticationError');
    assert.equal(e.statusCode, 401);
    assert.match(e.message, /^Invalid API Key provided: sk_test_\*+abcd$/);
  });
  const res = await fetchRaw('POST', '/v1/payment_intents', 'amount=1000&currency=usd', {});
  assert.equal(res.status, 401);
  assert.match(res.json.error.message, /You did not provide an API key/);
  assert.equal(res.json.error.type, 'invalid_request_error');
});

test('PaymentIntents: create, retrieve, confirm, cancel, with Stripe\'s status rules', async () => {
  const pi = await stripe.paymentIntents.create({ amount: 2000, currency: 'usd', automatic_payment_methods: { enabled: true },
    metadata: { invoice_id: 'inv-1' }, description: 'Shipment s1' });
  assert.equal(pi.object, 'payment_intent');
  assert.equal(pi.status, 'requires_payment_method');
  assert.match(pi.client_secret, new RegExp(`^${pi.id}_secret_`));
  assert.deepEqual(pi.automatic_payment_methods, { allow_redirects: 'always', enabled: true });
  assert.equal(pi.livemode, false);
  assert.match(pi.lastResponse.headers['request-id'], /^req_/);
  assert.deepEqual(await stripe.paymentIntents.retrieve(pi.id), pi);

  const paid = await stripe.paymentIntents.confirm(pi.id, { payment_method: 'pm_card_visa' });
  assert.equal(paid.status, 'succeeded');
  assert.equal(paid.amount_received, 2000);
  assert.match(paid.latest_charge, /^ch_/);
  await rejects(stripe.paymentIntents.cancel(pi.id, { cancellation_reason: 'abandoned' }), (e) => {
    assert.equal(e.type, 'StripeInvalidRequestError');
    assert.equal(e.code, 'payment_intent_unexpected_state');
    assert.equal(e.payment_intent.status, 'succeeded');
    assert.match(e.message, /status of succeeded/);
  });

  const other = await stripe.paymentIntents.create({ amount: 500, currency: 'eur' });
  const canceled = await stripe.paymentIntents.cancel(other.id, { cancellation_reason: 'abandoned' });
  assert.equal(canceled.status, 'canceled');
  assert.equal(canceled.cancellation_reason, 'abandoned');
  await rejects(stripe.paymentIntents.cancel(other.id), (e) => assert.equal(e.payment_intent.status, 'canceled'));
  await rejects(stripe.paymentIntents.confirm(other.id, { payment_method: 'pm_card_visa' }), (e) => assert.equal(e.code, 'payment_intent_unexpected_state'));

  const declined = await stripe.paymentIntents.create({ amount: 700, currency: 'gbp' });
  await rejects(stripe.paymentIntents.confirm(declined.id, { payment_method: 'pm_card_chargeDeclinedInsufficientFunds' }), (e) => {
    assert.equal(e.type, 'StripeCardError');
    assert.equal(e.decline_code, 'insufficient_funds');
    assert.equal(e.payment_intent.status, 'requires_payment_method');
  });
  const retried = await stripe.paymentIntents.confirm(declined.id, { payment_method: 'pm_card_visa' });
  assert.equal(retried.status, 'succeeded'); // a failed attempt may be followed by a good one

  const slow = await stripe.paymentIntents.create({ amount: 900, currency: 'usd' });
  fake.state.confirmIntent(slow.id, { payment_method: 'pm_card_processing' });
  await rejects(stripe.paymentIntents.cancel(slow.id), (e) => assert.equal(e.payment_intent.status, 'processing'));
  fake.state.settleIntent(slow.id, 'pm_card_visa');
  assert.equal((await stripe.paymentIntents.retrieve(slow.id)).status, 'succeeded');

  await rejects(stripe.paymentIntents.retrieve('pi_nope'), (e) => {
    assert.equal(e.statusCode, 404);
    assert.equal(e.code, 'resource_missing');
    assert.equal(e.param, 'intent');
  });
  const live = fake.sdk('sk_live_fake_interop_live', { maxNetworkRetries: 0 });
  assert.equal((await live.paymentIntents.create({ amount: 5000, currency: 'usd' })).livemode, true);
});

test('unknown, missing and malformed parameters are 400 invalid_request_error naming the param', async () => {
  const cases = [
    [{ amount: 1000, currency: 'usd', colour: 'red' }, 'colour', /Received unknown parameter: colour/],
    [{ amount: 1000, currency: 'usd', automatic_payment_methods: { enabled: true, magic: true } }, 'automatic_payment_methods[magic]', /unknown parameter/],
    [{ currency: 'usd' }, 'amount', /Missing required param: amount/],
    [{ amount: 1000 }, 'currency', /Missing required param: currency/],
    [{ amount: 'lots', currency: 'usd' }, 'amount', /Invalid integer: lots/],
    [{ amount: 49, currency: 'usd' }, 'amount', /Amount must be at least \$0\.50 usd/],
    [{ amount: 29, currency: 'gbp' }, 'amount', /at least £0\.30 gbp/],
    [{ amount: 100_000_000, currency: 'usd' }, 'amount', /no more than/],
    [{ amount: 1000, currency: 'xyz' }, 'currency', /Invalid currency: xyz/],
    [{ amount: 1000, currency: 'usd', automatic_payment_methods: { enabled: 'maybe' } }, 'automatic_payment_methods[enabled]', /Invalid boolean/],
    [{ amount: 1000, currency: 'usd', metadata: { ['k'.repeat(41)]: 'v' } }, `metadata[${'k'.repeat(41)}]`, /up to 40 characters/],
  ];
  for (const [params, param, message] of cases) {
    await rejects(stripe.paymentIntents.create(params), (e) => {
      assert.equal(e.type, 'StripeInvalidRequestError', JSON.stringify(params));
      assert.equal(e.statusCode, 400);
      assert.equal(e.param, param, JSON.stringify(params));
      assert.match(e.message, message);
    });
  }
  const pi = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' });
  await rejects(stripe.paymentIntents.cancel(pi.id, { cancellation_reason: 'bored' }), (e) => assert.equal(e.param, 'cancellation_reason'));
});

test('Idempotency-Key: replay, other parameters, concurrent use, validation failures not stored', async () => {
  const key = `k-${Date.now()}`;
  const a = await stripe.paymentIntents.create({ amount: 1500, currency: 'usd' }, { idempotencyKey: key });
  const b = await stripe.paymentIntents.create({ amount: 1500, currency: 'usd' }, { idempotencyKey: key });
  assert.equal(b.id, a.id);
  assert.equal(b.lastResponse.headers['idempotent-replayed'], 'true');
  assert.equal(a.lastResponse.headers['idempotent-replayed'], undefined);
  assert.equal(b.lastResponse.headers['original-request'], a.lastResponse.requestId);
  await rejects(stripe.paymentIntents.create({ amount: 1600, currency: 'usd' }, { idempotencyKey: key }), (e) => {
    assert.equal(e.type, 'StripeIdempotencyError');
    assert.equal(e.rawType, 'idempotency_error');
  });

  const k2 = `k2-${Date.now()}`;
  fake.fault({ method: 'POST', path: '/v1/payment_intents', delayMs: 400 });
  const first = stripe.paymentIntents.create({ amount: 1700, currency: 'usd' }, { idempotencyKey: k2 });
  await fake.waitForRequest((r) => r.headers['idempotency-key'] === k2);
  await rejects(stripe.paymentIntents.create({ amount: 1700, currency: 'usd' }, { idempotencyKey: k2 }), (e) => {
    assert.equal(e.statusCode, 409);
    assert.equal(e.code, 'idempotency_key_in_use');
  });
  const done = await first;
  assert.equal((await stripe.paymentIntents.create({ amount: 1700, currency: 'usd' }, { idempotencyKey: k2 })).id, done.id);

  const k3 = `k3-${Date.now()}`;
  await rejects(stripe.paymentIntents.create({ amount: 10, currency: 'usd' }, { idempotencyKey: k3 }), (e) => assert.equal(e.code, 'amount_too_small'));
  const fixed = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' }, { idempotencyKey: k3 }); // not stored: other params allowed
  assert.equal(fixed.status, 'requires_payment_method');

  // A business refusal is stored: the same cancel replays it.
  const pi = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' });
  await stripe.paymentIntents.confirm(pi.id, { payment_method: 'pm_card_visa' });
  const k4 = `k4-${Date.now()}`;
  await rejects(stripe.paymentIntents.cancel(pi.id, {}, { idempotencyKey: k4 }), (e) => assert.equal(e.headers['idempotent-replayed'], undefined));
  await rejects(stripe.paymentIntents.cancel(pi.id, {}, { idempotencyKey: k4 }), (e) => assert.equal(e.headers['idempotent-replayed'], 'true'));
});

test('faults: 500, 429 lock_timeout, Stripe-Should-Retry, drops and lost answers, as the SDK sees them', async () => {
  const retrying = fake.sdk(KEY, { maxNetworkRetries: 2 });
  const count = () => fake.calls('POST', '/v1/payment_intents').length;

  let n = count();
  fake.fault({ method: 'POST', path: '/v1/payment_intents', status: 500, times: 1 });
  fake.fault({ method: 'POST', path: '/v1/payment_intents', status: 429, times: 1 });
  const pi = await retrying.paymentIntents.create({ amount: 1000, currency: 'usd' });
  const sent = fake.calls('POST', '/v1/payment_intents').slice(n);
  assert.deepEqual(sent.map((r) => r.status), [500, 429, 200]);
  assert.equal(new Set(sent.map((r) => r.headers['idempotency-key'])).size, 1, 'one key on every retry');
  assert.match(sent[0].headers['idempotency-key'], /^stripe-node-retry-/);
  assert.ok(fake.state.intents.has(pi.id));

  n = count();
  fake.fault({ method: 'POST', path: '/v1/payment_intents', status: 500, shouldRetry: false });
  await rejects(retrying.paymentIntents.create({ amount: 1000, currency: 'usd' }), (e) => assert.equal(e.type, 'StripeAPIError'));
  assert.equal(count() - n, 1, 'Stripe-Should-Retry: false stops the SDK');

  n = count();
  const intents = fake.state.intents.size;
  fake.fault({ method: 'POST', path: '/v1/payment_intents', status: 500, after: true });
  const lost = await retrying.paymentIntents.create({ amount: 1000, currency: 'usd' });
  const again = fake.calls('POST', '/v1/payment_intents').slice(n);
  assert.deepEqual(again.map((r) => [r.status, r.replayed]), [[500, false], [200, true]]);
  assert.equal(fake.state.intents.size, intents + 1, 'executed once: the retry got the stored answer');
  assert.ok(fake.state.intents.has(lost.id));

  fake.fault({ method: 'POST', path: '/v1/payment_intents', drop: true });
  const dropped = await retrying.paymentIntents.create({ amount: 1000, currency: 'usd' });
  assert.equal(dropped.status, 'requires_payment_method');

  const impatient = fake.sdk(KEY, { maxNetworkRetries: 0, timeout: 200 });
  fake.fault({ method: 'GET', path: `/v1/payment_intents/${pi.id}`, delayMs: 600 });
  await rejects(impatient.paymentIntents.retrieve(pi.id), (e) => assert.equal(e.type, 'StripeConnectionError'));
  assert.equal(fake.faultsLeft(), 0);
});

test('Checkout Sessions: create (30 min to 24 h expiry), retrieve, pay, expire', async () => {
  const now = fake.state.now();
  const base = {
    mode: 'payment', success_url: 'https://shop.example/ok', cancel_url: 'https://shop.example/no', client_reference_id: 'inv-9',
    line_items: [{ price_data: { currency: 'usd', unit_amount: 2500, product_data: { name: 'Shipment s9' } }, quantity: 2 }],
    metadata: { invoice_id: 'inv-9' }, payment_intent_data: { metadata: { invoice_id: 'inv-9' } },
  };
  await rejects(stripe.checkout.sessions.create({ ...base, expires_at: now + 25 * 3600 }), (e) => assert.equal(e.param, 'expires_at'));
  await rejects(stripe.checkout.sessions.create({ ...base, expires_at: now + 60 }), (e) => assert.equal(e.param, 'expires_at'));
  await rejects(stripe.checkout.sessions.create({ ...base, mode: undefined }), (e) => assert.equal(e.param, 'mode'));
  const s = await stripe.checkout.sessions.create({ ...base, expires_at: now + 3600 });
  assert.equal(s.status, 'open');
  assert.equal(s.payment_status, 'unpaid');
  assert.equal(s.payment_intent, null);
  assert.equal(s.amount_total, 5000);
  assert.match(s.url, /^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_test_/);
  assert.deepEqual(await stripe.checkout.sessions.retrieve(s.id), s);

  fake.state.completeSession(s.id, 'paid');
  const paid = await stripe.checkout.sessions.retrieve(s.id);
  assert.equal(paid.status, 'complete');
  assert.equal(paid.payment_status, 'paid');
  const pi = await stripe.paymentIntents.retrieve(paid.payment_intent);
  assert.equal(pi.status, 'succeeded');
  assert.deepEqual(pi.metadata, { invoice_id: 'inv-9' }); // from payment_intent_data
  await rejects(stripe.checkout.sessions.expire(s.id), (e) => assert.match(e.message, /status in \["open"\]/));

  const open = await stripe.checkout.sessions.create(base);
  assert.equal(open.expires_at, open.created + 24 * 3600);
  assert.equal((await stripe.checkout.sessions.expire(open.id)).status, 'expired');

  const lapsing = await stripe.checkout.sessions.create({ ...base, expires_at: fake.state.now() + 1900 });
  fake.state.advance(2000);
  assert.equal((await stripe.checkout.sessions.retrieve(lapsing.id)).status, 'expired');
  const types = fake.state.events.filter((e) => e.data.object.id === lapsing.id).map((e) => e.type);
  assert.deepEqual(types, ['checkout.session.expired']);

  const async = await stripe.checkout.sessions.create(base);
  fake.state.completeSession(async.id, 'pending');
  assert.equal((await stripe.checkout.sessions.retrieve(async.id)).payment_status, 'unpaid');
  fake.state.settleSession(async.id, true);
  assert.equal((await stripe.checkout.sessions.retrieve(async.id)).payment_status, 'paid');
});

test('Refunds: only a succeeded payment, partial then full, amounts checked', async () => {
  const pi = await stripe.paymentIntents.create({ amount: 3000, currency: 'usd' });
  await rejects(stripe.refunds.create({ payment_intent: pi.id }), (e) => assert.match(e.message, /does not have a successful charge/));
  await stripe.paymentIntents.confirm(pi.id, { payment_method: 'pm_card_visa' });
  await rejects(stripe.refunds.create({}), (e) => assert.equal(e.param, 'payment_intent'));
  await rejects(stripe.refunds.create({ payment_intent: pi.id, amount: 3001 }), (e) => assert.equal(e.param, 'amount'));
  await rejects(stripe.refunds.create({ payment_intent: pi.id, reason: 'meh' }), (e) => assert.equal(e.param, 'reason'));
  const part = await stripe.refunds.create({ payment_intent: pi.id, amount: 1000, reason: 'requested_by_customer', metadata: { invoice_id: 'i' } });
  assert.equal(part.status, 'succeeded');
  assert.equal(part.amount, 1000);
  assert.equal(part.payment_intent, pi.id);
  const rest = await stripe.refunds.create({ payment_intent: pi.id });
  assert.equal(rest.amount, 2000);
  await rejects(stripe.refunds.create({ payment_intent: pi.id }), (e) => assert.equal(e.code, 'charge_already_refunded'));
  assert.deepEqual(await stripe.refunds.retrieve(part.id), part);
  const refunded = fake.state.events.filter((e) => e.type === 'charge.refunded' && e.data.object.payment_intent === pi.id);
  assert.deepEqual(refunded.map((e) => [e.data.object.amount_refunded, e.data.object.refunded]), [[1000, false], [3000, true]]);
});

test('Events: every change recorded; list by type, types, created[gte], paged by starting_after', async () => {
  const since = fake.state.now();
  const ids = [];
  for (let i = 0; i < 5; ++i) {
    const pi = await stripe.paymentIntents.create({ amount: 1000 + i, currency: 'usd' });
    await stripe.paymentIntents.confirm(pi.id, { payment_method: 'pm_card_visa' });
    ids.push(pi.id);
  }
  const seen = [];
  let page = await stripe.events.list({ type: 'payment_intent.succeeded', created: { gte: since }, limit: 2 });
  for (;;) {
    assert.ok(page.data.length <= 2);
    seen.push(...page.data);
    if (!page.has_more) break;
    page = await stripe.events.list({ type: 'payment_intent.succeeded', created: { gte: since }, limit: 2, starting_after: page.data.at(-1).id });
  }
  const mine = seen.filter((e) => ids.includes(e.data.object.id));
  assert.equal(mine.length, 5);
  assert.ok(seen.every((e) => e.type === 'payment_intent.succeeded' && e.object === 'event' && e.created >= since));
  assert.equal(new Set(seen.map((e) => e.id)).size, seen.length, 'no event twice across pages');
  const both = await stripe.events.list({ types: ['payment_intent.created', 'charge.succeeded'], limit: 100 });
  assert.ok(both.data.some((e) => e.type === 'charge.succeeded') && both.data.some((e) => e.type === 'payment_intent.created'));
  const wildcard = await stripe.events.list({ type: 'payment_intent.*', limit: 100 });
  assert.ok(wildcard.data.every((e) => e.type.startsWith('payment_intent.')));
  assert.equal((await stripe.events.retrieve(mine[0].id)).id, mine[0].id);
  await rejects(stripe.events.list({ limit: 101 }), (e) => assert.equal(e.param, 'limit'));
  const q = fake.calls('GET', '/v1/events').at(-1).query;
  assert.equal(q, 'limit=101');
});

test('webhooks: signed with the SDK, verifiable; held, withheld, duplicated, reordered', async () => {
  const secret = 'whsec_fake_interop';
  const got = [];
  const verifier = new Stripe('sk_test_unused');
  const receiver = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const ev = verifier.webhooks.constructEvent(body, req.headers['stripe-signature'], secret); // throws if forged
      got.push(ev);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"received":true}');
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  try {
    fake.webhooks.configure({ url: `http://127.0.0.1:${receiver.address().port}/webhook`, secret, mode: 'auto' });
    const pi = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd', metadata: { invoice_id: 'inv-w' } });
    await stripe.paymentIntents.confirm(pi.id, { payment_method: 'pm_card_visa' });
    await fake.webhooks.idle();
    assert.deepEqual(got.map((e) => e.type), ['payment_intent.succeeded']); // created and charge.* are not enabled
    assert.equal(got[0].data.object.metadata.invoice_id, 'inv-w');

    got.length = 0;
    fake.webhooks.configure({ mode: 'manual' });
    fake.webhooks.withhold((ev) => ev.type === 'payment_intent.canceled');
    const a = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' });
    const b = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' });
    await stripe.paymentIntents.confirm(a.id, { payment_method: 'pm_card_visa' });
    await stripe.paymentIntents.cancel(b.id);
    assert.equal(got.length, 0);
    await fake.webhooks.flush({ order: 'reverse', copies: 2 });
    assert.deepEqual(got.map((e) => e.data.object.id), [a.id, a.id]);
    await fake.webhooks.flush({ withheld: true });
    assert.equal(got.at(-1).type, 'payment_intent.canceled');
    assert.equal(got.at(-1).data.object.id, b.id);
  } finally {
    fake.webhooks.configure({ url: null, mode: 'auto' });
    fake.webhooks.rules.length = 0;
    receiver.close();
  }
});

test('every request is recorded with its headers and parameters', async () => {
  const n = fake.requests.length;
  await stripe.paymentIntents.create({ amount: 1234, currency: 'usd', metadata: { a: 'b c' }, expand: ['latest_charge'] });
  const r = fake.requests.at(-1);
  assert.equal(fake.requests.length, n + 1);
  assert.equal(r.method, 'POST');
  assert.equal(r.headers.authorization, `Bearer ${KEY}`);
  assert.equal(r.headers['stripe-version'], '2026-10-28.endive');
  assert.equal(r.headers['content-type'], 'application/x-www-form-urlencoded');
  assert.deepEqual(r.pairs, [['amount', '1234'], ['currency', 'usd'], ['metadata[a]', 'b c'], ['expand[0]', 'latest_charge']]);
  assert.equal(r.body, 'amount=1234&currency=usd&metadata[a]=b%20c&expand[0]=latest_charge');
  assert.equal(r.status, 200);
});

function fetchRaw(method, p, body, headers) {
  return new Promise((resolve, reject) => {
    const https = fake.base.startsWith('https');
    import(https ? 'node:https' : 'node:http').then((mod) => {
      const req = mod.request(fake.base + p, { method, ca: fake.caPem, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode, headers: res.headers, json: JSON.parse(text) });
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  });
}
