// billingd with provider=stripe against the fake Stripe (integration: real
// PostgreSQL, the real binary, HTTPS with a certificate made for the run).
// Creates and cancels through Stripe's API, injected 500s and 429s, a crash
// between the Stripe call and the commit, Stripe refusing an amount or the
// key, the configuration rules, and no secret in any request or log line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { withStripe, invoice, create, until, assertNoSecrets, allLogs, it } from './stripe_lib.mjs';

test('create and cancel go through Stripe; webhooks from the fake move the invoice', { timeout: 120_000 }, async () => {
  await withStripe('stripe_basic', {}, async (ctx) => {
    const svc = await ctx.start();
    assert.match(svc.lines.join('\n'), /provider: Stripe at https:\/\/127\.0\.0\.1:\d+ \(test mode/);
    const body = invoice('basic', 1);
    const res = await create(svc, body);
    assert.equal(res.status, 201, res.text);
    const pi = ctx.fake.state.intents.get(res.json.provider_intent_id);
    assert.ok(pi, 'the intent exists at the fake');
    assert.equal(res.json.client_secret, pi.client_secret);
    assert.equal(pi.amount, body.amount_cents);
    assert.equal(pi.currency, 'usd');
    assert.deepEqual(pi.metadata, { invoice_id: res.json.id, workflow_id: body.workflow_id, shipment_id: body.shipment_id });
    assert.deepEqual(pi.automatic_payment_methods, { allow_redirects: 'always', enabled: true });
    assert.equal(pi.description, `Shipment ${body.shipment_id} (invoice ${res.json.id})`);
    const [call] = ctx.fake.calls('POST', '/v1/payment_intents');
    assert.equal(call.headers['idempotency-key'], `billingd:${res.json.id}:create_intent`);

    // A repeat is answered from billingd's row: no second call.
    const again = await create(svc, body);
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.provider_intent_id, pi.id);
    assert.equal(ctx.fake.calls('POST', '/v1/payment_intents').length, 1);

    // The customer pays; Stripe's signed webhook moves the invoice.
    ctx.fake.state.confirmIntent(pi.id, { payment_method: 'pm_card_visa' });
    await ctx.fake.webhooks.idle();
    const paid = await until(async () => {
      const r = await it.request(`${svc.base}/v1/invoices/${res.json.id}`);
      return r.json?.status === 'PAID' && r;
    }, 'the invoice to be PAID');
    assert.equal(paid.json.status, 'PAID');
    assert.ok(ctx.fake.webhooks.deliveries.every((d) => d.status === 200), JSON.stringify(ctx.fake.webhooks.deliveries));

    // Cancel by API: cancelled at Stripe first.
    const other = await create(svc, invoice('basic', 2));
    assert.equal(other.status, 201, other.text);
    const cancel = await it.request(`${svc.base}/v1/invoices/${other.json.id}/cancel`, { method: 'POST' });
    assert.equal(cancel.status, 200, cancel.text);
    assert.equal(cancel.json.status, 'CANCELLED');
    const [c] = ctx.fake.calls('POST', `/v1/payment_intents/${other.json.provider_intent_id}/cancel`);
    assert.equal(c.body, 'cancellation_reason=abandoned');
    assert.equal(c.headers['idempotency-key'], `billingd:${other.json.id}:cancel_intent`);
    assert.equal(ctx.fake.state.intents.get(other.json.provider_intent_id).status, 'canceled');

    // A PAID invoice is not cancelled (billingd refuses before asking Stripe).
    const late = await it.request(`${svc.base}/v1/invoices/${res.json.id}/cancel`, { method: 'POST' });
    assert.equal(late.status, 409, late.text);

    const lines = allLogs(ctx);
    assert.ok(lines.some((l) => /stripe POST \/v1\/payment_intents -> 200 \(req_\w+, attempt 1, \d+ ms\)/.test(l)), 'a log line per Stripe call');
    assertNoSecrets(ctx, lines);
  });
});

test('injected 500s and 429s: retried with one key, exactly one intent and one invoice', { timeout: 120_000 }, async () => {
  await withStripe('stripe_faults', {}, async (ctx) => {
    const svc = await ctx.start();
    ctx.fake.fault({ method: 'POST', path: '/v1/payment_intents', status: 500, times: 1 });
    ctx.fake.fault({ method: 'POST', path: '/v1/payment_intents', status: 429, times: 1 });
    const res = await create(svc, invoice('faults', 1));
    assert.equal(res.status, 201, res.text);
    const calls = ctx.fake.calls('POST', '/v1/payment_intents');
    assert.deepEqual(calls.map((c) => c.status), [500, 429, 200]);
    assert.equal(new Set(calls.map((c) => c.headers['idempotency-key'])).size, 1);
    assert.equal(new Set(calls.map((c) => c.body)).size, 1);
    assert.equal(ctx.fake.state.intents.size, 1);
    assert.equal((await ctx.db.counts()).invoices, 1);

    // A 500 after Stripe executed (the answer was lost): the retry gets the
    // stored answer, still one intent.
    ctx.fake.fault({ method: 'POST', path: '/v1/payment_intents', status: 500, after: true });
    const lost = await create(svc, invoice('faults', 2));
    assert.equal(lost.status, 201, lost.text);
    const tail = ctx.fake.calls('POST', '/v1/payment_intents').slice(3);
    assert.deepEqual(tail.map((c) => [c.status, c.replayed]), [[500, false], [200, true]]);
    assert.equal(ctx.fake.state.intents.size, 2);

    // Stripe down for longer than the retries: 503 + Retry-After, nothing written.
    const before = await ctx.db.fingerprint();
    ctx.fake.fault({ method: 'POST', path: '/v1/payment_intents', status: 503, times: 10 });
    const third = invoice('faults', 3);
    const down = await create(svc, third);
    assert.equal(down.status, 503, down.text);
    assert.ok(down.headers['retry-after'], 'Retry-After on 503');
    assert.equal(ctx.fake.calls('POST', '/v1/payment_intents').length - 5, 3, '1 + stripe_max_retries attempts');
    assert.deepEqual(await ctx.db.fingerprint(), before);
    ctx.fake.clearFaults();
    // Stripe-Should-Retry: false is honoured.
    ctx.fake.fault({ method: 'POST', path: '/v1/payment_intents', status: 500, shouldRetry: false });
    const n = ctx.fake.calls('POST', '/v1/payment_intents').length;
    assert.equal((await create(svc, invoice('faults', 4))).status, 503);
    assert.equal(ctx.fake.calls('POST', '/v1/payment_intents').length - n, 1);
    // The caller retries later: same invoice, same key, now it works.
    const later = await create(svc, third);
    assert.equal(later.status, 201, later.text);
    assert.equal(ctx.fake.calls('POST', '/v1/payment_intents').at(-1).headers['idempotency-key'], `billingd:${later.json.id}:create_intent`);
    assertNoSecrets(ctx, allLogs(ctx));
  });
});

test('kill -9 between the Stripe call and the commit: the next create returns the same intent', { timeout: 180_000 }, async () => {
  await withStripe('stripe_crash', {}, async (ctx) => {
    let svc = await ctx.start();
    const body = invoice('crash', 1);
    // Stripe executes at once, then answers slowly: billingd is killed
    // while the answer is on its way (the intent exists, the row does not).
    ctx.fake.fault({ method: 'POST', path: '/v1/payment_intents', after: true, delayMs: 3_000 });
    const pending = create(svc, body);
    const first = await ctx.fake.waitForRequest((r) => r.path === '/v1/payment_intents' && r.method === 'POST');
    await until(() => ctx.fake.state.intents.size === 1, 'the fake to have created the intent');
    svc.proc.kill('SIGKILL');
    const exit = await svc.exited;
    assert.equal(exit.signal, 'SIGKILL');
    const lost = await pending;
    assert.equal(lost.status, 0, 'the caller saw no answer');
    assert.equal((await ctx.db.counts()).invoices, 0, 'nothing committed');

    svc = await ctx.start();
    const res = await create(svc, body);
    assert.equal(res.status, 201, res.text);
    const [pi] = [...ctx.fake.state.intents.values()];
    assert.equal(res.json.provider_intent_id, pi.id);
    assert.equal(res.json.client_secret, pi.client_secret);
    assert.equal(ctx.fake.state.intents.size, 1, 'one intent at Stripe');
    assert.equal((await ctx.db.counts()).invoices, 1, 'one invoice');
    const second = ctx.fake.calls('POST', '/v1/payment_intents').at(-1);
    assert.equal(second.replayed, true, 'Stripe answered from its idempotency store');
    assert.equal(second.headers['idempotency-key'], first.headers['idempotency-key']);
    assert.equal(second.body, first.body);
    assertNoSecrets(ctx, allLogs(ctx));
  });
});

test('Stripe refuses: an invalid amount is a 400 with Stripe\'s message; a bad key is a 500, logged once, no storm', { timeout: 120_000 }, async () => {
  await withStripe('stripe_refusals', {}, async (ctx) => {
    const svc = await ctx.start();
    const small = await create(svc, invoice('refuse', 1, { amount_cents: 49 }));
    assert.equal(small.status, 400, small.text);
    assert.equal(small.json.error.message, 'Amount must be at least $0.50 usd');
    assert.equal(small.json.error.field, 'amount');
    assert.equal(ctx.fake.calls('POST', '/v1/payment_intents').length, 1, 'not retried');
    assert.equal((await ctx.db.counts()).invoices, 0);
    assert.equal((await create(svc, invoice('refuse', 2, { amount_cents: 29, currency: 'gbp' }))).json.error.message, 'Amount must be at least £0.30 gbp');
    await svc.stop();

    // Another key: Stripe answers 401 to every call.
    const wrong = await ctx.start({ env: { BILLING_STRIPE_SECRET_KEY: 'sk_test_51RevokedKeyXYZ' } });
    // Creates only: the reconciler's own first pass (GET /v1/events) may run meanwhile.
    const creates = () => ctx.fake.calls('POST', '/v1/payment_intents').length;
    const before = creates();
    for (let i = 0; i < 5; ++i) {
      const r = await create(wrong, invoice('refuse', 10 + i));
      assert.equal(r.status, 500, r.text);
      assert.doesNotMatch(r.text, /sk_test|Invalid API Key/);
    }
    assert.equal(creates() - before, 5, 'one request per call: no retries');
    const loud = wrong.lines.filter((l) => l.includes('STRIPE REFUSED THE SECRET KEY'));
    assert.equal(loud.length, 1, `one loud line, got:\n${loud.join('\n')}`);
    assert.match(loud[0], /\b(error|critical)\b/);
    assert.ok(!wrong.lines.join('\n').includes('RevokedKeyXYZ'), 'the refused key is not logged');
    assertNoSecrets(ctx, allLogs(ctx));
  });
});

test('configuration: provider=stripe needs a key with a known prefix and an acceptable API base', () => {
  const { billingd } = it.requireEnv();
  const base = { ...process.env, BILLING_DATABASE_URL: 'postgresql://u:pw@127.0.0.1:1/x', BILLING_WEBHOOK_SECRETS: 'whsec_x', BILLING_SECRET_KEY: '0'.repeat(64), BILLING_PROVIDER: 'stripe' };
  const run = (env, ...args) => spawnSync(billingd, ['config', ...args], { env: { ...base, ...env }, encoding: 'utf8' });
  let r = run({});
  assert.notEqual(r.status, 0);
  assert.match(r.stderr + r.stdout, /provider=stripe needs stripe_secret_key \(BILLING_STRIPE_SECRET_KEY or BILLING_STRIPE_SECRET_KEY_FILE\)/);
  r = run({ BILLING_STRIPE_SECRET_KEY: 'pk_test_abc' });
  assert.match(r.stderr + r.stdout, /stripe_secret_key must start with sk_test_, sk_live_, rk_test_ or rk_live_/);
  assert.doesNotMatch(r.stderr + r.stdout, /pk_test_abc/);
  r = run({ BILLING_STRIPE_SECRET_KEY: 'sk_live_51SecretLive', BILLING_STRIPE_API_BASE: 'http://stripe.internal' });
  assert.match(r.stderr + r.stdout, /stripe_api_base uses http:\/\/ to a host that is not loopback/);
  r = run({ BILLING_STRIPE_SECRET_KEY: 'sk_live_51SecretLive' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^stripe_secret_key = \(redacted\) \(live mode\)$/m);
  assert.match(r.stdout, /^stripe_api_base = https:\/\/api\.stripe\.com$/m);
  assert.doesNotMatch(r.stdout, /51SecretLive/);
  r = run({ BILLING_PROVIDER: 'simulated' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^provider = simulated$/m);
  r = run({ BILLING_PROVIDER: 'paypal' });
  assert.match(r.stderr + r.stdout, /provider must be stripe or simulated/);
});
