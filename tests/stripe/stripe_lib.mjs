// Helpers of the billingd-against-the-fake tests: a fake Stripe over HTTPS
// (certificate made now) with billingd wired to it, and the secrecy checks
// every such test ends with.
import assert from 'node:assert/strict';
import * as it from '../integration/lib.mjs';
import { startFakeStripe } from './fake_stripe.mjs';

export { it };

// A fresh database and a fake Stripe; billingd is started by ctx.start()
// (as many times as a test needs) with --provider=stripe on the fake, and
// the fake's webhooks go to the last billingd started.
export async function withStripe(name, { args = [], env = {}, key, webhookMode = 'auto' } = {}, body) {
  const secretKey = key ?? `sk_test_51Fake${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  const fake = await startFakeStripe({ keys: [secretKey] });
  const ctx = await it.setup(name, { args, env, stripe: { base: fake.base, key: secretKey, caFile: fake.caFile } });
  const start = ctx.start.bind(ctx);
  ctx.start = async (extra) => {
    const svc = await start(extra);
    fake.webhooks.configure({ url: `${svc.base}/webhook`, secret: ctx.secrets.webhookSecret, mode: webhookMode });
    return svc;
  };
  ctx.fake = fake;
  ctx.secretKey = secretKey;
  let failed = true;
  try {
    await body(ctx);
    failed = false;
  } finally {
    if (failed) {
      console.log(`--- fake stripe: last requests ---\n${fake.requests.slice(-15).map((r) =>
        `${r.method} ${r.target} -> ${r.status}${r.replayed ? ' (replayed)' : ''} key=${r.headers['idempotency-key'] ?? '-'}`).join('\n')}`);
    }
    await ctx.cleanup(failed);
    await fake.stop();
  }
}

export function invoice(tag, i, over = {}) {
  return {
    shipment_id: `shp_${tag}_${i}`,
    user_id: `usr_${tag}`,
    workflow_id: `wf_${tag}_${i}_${Date.now().toString(36)}`,
    amount_cents: 2500 + i,
    currency: 'usd',
    ...over,
  };
}

export const create = (svc, body) => it.request(`${svc.base}/v1/invoices`, { method: 'POST', body });

// Waits until `pred()` holds (polling), or fails with `what`.
export async function until(pred, what, timeoutMs = 20_000) {
  const t0 = Date.now();
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await it.sleep(25);
  }
}

// No request to the fake carries the secret key anywhere but its
// Authorization header, a client secret or card data; no log line carries
// the key, a client secret or card data.
export function assertNoSecrets(ctx, logs) {
  const key = ctx.secretKey;
  for (const r of ctx.fake.requests) {
    const { authorization, ...rest } = r.headers;
    const elsewhere = [r.target, r.body, JSON.stringify(rest)].join('\n');
    assert.ok(!elsewhere.includes(key), `request ${r.method} ${r.target} carries the secret key outside Authorization`);
    if (authorization !== undefined && r.apiKey === key) assert.equal(authorization, `Bearer ${key}`);
  }
  const secrets = [...ctx.fake.state.intents.values()].map((pi) => pi.client_secret);
  for (const r of ctx.fake.requests) {
    const sent = [r.target, r.body, JSON.stringify(r.headers)].join('\n');
    for (const s of secrets) assert.ok(!sent.includes(s), `request ${r.method} ${r.target} carries a client secret`);
    assert.ok(!/4242424242424242|\bcvc\b|card\[number\]/.test(sent), `request ${r.method} ${r.target} carries card data`);
  }
  const text = logs.join('\n');
  assert.ok(!text.includes(key), 'a billingd log line carries the Stripe secret key');
  assert.ok(!text.includes(key.slice(8)), 'a billingd log line carries the body of the Stripe secret key');
  for (const s of secrets) {
    assert.ok(!text.includes(s), `a billingd log line carries a client secret (${s.slice(0, 12)}…)`);
    assert.ok(!text.includes(s.slice(s.indexOf('_secret_'))), 'a billingd log line carries the secret part of a client secret');
  }
  assert.ok(!/4242424242424242|pm_card_/.test(text), 'a billingd log line carries card data');
}

export function allLogs(ctx) {
  return ctx.servers.flatMap((s) => s.lines);
}
