// SDK parity (integration): the official `stripe` SDK and billingd drive the
// same fake Stripe for create, retrieve and cancel; billingd's requests must
// carry the same parameter names (byte-identical bodies for the same values),
// the same headers (Authorization shape, Stripe-Version, Content-Type,
// Idempotency-Key on every POST and none on a GET), and behave the same under
// faults (one key across retries, Stripe-Should-Retry honoured, 4xx not
// retried). Retrieve has no HTTP route in billingd: stripe_probe makes that
// call through billingd's Stripe client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { withStripe, invoice, create, assertNoSecrets, allLogs, it } from './stripe_lib.mjs';

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
