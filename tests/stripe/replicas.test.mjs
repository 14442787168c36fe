// Two billingd replicas on one database and one (fake) Stripe, reconciling
// together (integration: real PostgreSQL, the real binary, HTTPS): every
// withheld payment found once, each intent read once (the claim's backoff),
// the event log paged by one replica at a time (the checkpoint's lease), the
// request rate within rate x replicas plus the buckets' burst, and the late
// webhooks changing nothing. Ends with the secrecy checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withStripe, invoice, create, until, assertNoSecrets, allLogs, it } from './stripe_lib.mjs';

const N = 40;
const RATE = 5; // --reconcile-rate, per replica
const REPLICAS = 2;
// --reconcile-quiet-seconds: also an invoice's first backoff. A pass claims
// RATE x QUIET / 2 = 10 invoices, more than a bucket's burst, so the reads
// wait for tokens and the rate limit is what paces them.
const QUIET = 4;

// The most requests in any window of `ms` milliseconds (times sorted).
function busiest(times, ms) {
  let most = 0;
  for (let i = 0, j = 0; i < times.length; ++i) {
    while (times[i] - times[j] >= ms) ++j;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

test('two replicas reconcile withheld payments together: one read per intent, one pager of the event log, the rate held, the late webhooks ignored', { timeout: 120_000 }, async () => {
  await withStripe('stripe_replicas', {}, async (ctx) => {
    // The payments happen while billingd reconciles nothing, their webhooks
    // withheld (an endpoint down for longer than Stripe retries).
    const maker = await ctx.start({ args: ['--reconcile-interval-seconds=0'] });
    const made = [];
    for (let i = 1; i <= N; ++i) {
      const r = await create(maker, invoice('rep', i));
      assert.equal(r.status, 201, r.text);
      made.push(r.json);
    }
    ctx.fake.webhooks.withhold(() => true);
    for (const inv of made) ctx.fake.state.confirmIntent(inv.provider_intent_id, { payment_method: 'pm_card_visa' });
    const newest = Math.max(...ctx.fake.state.events.map((e) => e.created));
    await maker.stop();
    // The replicas start their checkpoint at "now" (--reconcile-lookback-seconds=0),
    // after these events: only the invoices' own reads can find the payments,
    // so every one of them is a retrieve the claim has to share out.
    await until(() => Math.floor(Date.now() / 1000) > newest, 'the clock to pass the payments\' events', 5_000);

    // Replica B talks to Stripe with a key of its own: the fake tells the replicas apart by it.
    const keyB = `sk_test_51FakeB${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
    ctx.fake.keys.push(keyB);
    const args = ['--reconcile-interval-seconds=1', `--reconcile-quiet-seconds=${QUIET}`, `--reconcile-rate=${RATE}`,
      '--reconcile-lookback-seconds=0'];
    const since = ctx.fake.requests.length;
    const [a, b] = await Promise.all([ctx.start({ args }), ctx.start({ args, env: { BILLING_STRIPE_SECRET_KEY: keyB } })]);
    const replicaOf = (r) => (r.apiKey === ctx.secretKey ? 'a' : r.apiKey === keyB ? 'b' : '?');

    const ids = made.map((m) => m.id);
    const paidCount = async () => (await ctx.db.query(
      "SELECT count(*)::int AS n FROM invoices WHERE id = ANY($1::uuid[]) AND status = 'PAID'", [ids]))[0].n;
    await until(async () => (await paidCount()) === N, `all ${N} invoices PAID by reconciliation`, 40_000);
    // Three more passes' pages of the event log (over QUIET s), so a second
    // read of an intent (had a claim allowed one) would have happened by now.
    const settled = ctx.fake.requests.length;
    await until(() => ctx.fake.requests.slice(settled).filter((r) => r.path === '/v1/events').length >= 3,
      'three more reconciliation passes', 20_000);

    // Exactly one PaymentConfirmed each, nothing else.
    const outbox = await ctx.db.query('SELECT invoice_id::text AS id, signal FROM outbox WHERE invoice_id = ANY($1::uuid[])', [ids]);
    for (const id of ids)
      assert.deepEqual(outbox.filter((r) => r.id === id).map((r) => r.signal), ['PaymentConfirmed'], `outbox of ${id}`);

    const calls = ctx.fake.requests.slice(since).filter((r) => !r.path.startsWith('/_fake'));
    for (const r of calls) assert.notEqual(replicaOf(r), '?', `${r.method} ${r.target} with an unknown key`);
    const reads = calls.filter((r) => r.method === 'GET' && /^\/v1\/payment_intents\/[^/]+$/.test(r.path));
    const pages = calls.filter((r) => r.method === 'GET' && r.path === '/v1/events');

    // Each intent read exactly once. What the claim guarantees: once claimed,
    // an invoice is claimed again (by any replica) only after its backoff
    // (QUIET s); a read of a succeeded intent makes the invoice PAID within
    // milliseconds, and a PAID invoice is never claimed. So a second read
    // means a replica read an invoice inside another claim's window.
    const byIntent = new Map();
    for (const r of reads) {
      const id = r.path.split('/').pop();
      if (!byIntent.has(id)) byIntent.set(id, []);
      byIntent.get(id).push(`${replicaOf(r)}@${r.at}`);
    }
    for (const inv of made) {
      const got = byIntent.get(inv.provider_intent_id) ?? [];
      assert.equal(got.length, 1, `intent ${inv.provider_intent_id} read ${got.length} times: ${got.join(', ')}`);
    }
    assert.equal(reads.length, N);
    const readsBy = { a: reads.filter((r) => replicaOf(r) === 'a').length, b: reads.filter((r) => replicaOf(r) === 'b').length };
    assert.ok(readsBy.a > 0 && readsBy.b > 0, `both replicas reconcile: ${JSON.stringify(readsBy)}`);

    // The event log: one pager at a time. Each pass pages the window after the
    // checkpoint; with the lease the windows of all passes of both replicas
    // follow each other without overlap (had two paged at once, both would
    // have read from the same checkpoint).
    const firstPages = pages.filter((r) => r.params.starting_after === undefined)
      .map((r) => ({ who: replicaOf(r), at: r.at, gte: Number(r.params.created?.gte), lte: Number(r.params.created?.lte) }));
    assert.ok(firstPages.length >= 2, `the event log was paged (${firstPages.length} passes)`);
    for (const [i, w] of firstPages.entries()) {
      assert.ok(Number.isInteger(w.gte) && Number.isInteger(w.lte) && w.gte <= w.lte, `window ${JSON.stringify(w)}`);
      if (i > 0) {
        const prev = firstPages[i - 1];
        assert.equal(w.gte, prev.lte + 1, `window ${JSON.stringify(w)} does not follow ${JSON.stringify(prev)}`);
      }
    }
    const pagersBy = { a: firstPages.filter((w) => w.who === 'a').length, b: firstPages.filter((w) => w.who === 'b').length };

    // The rate: every provider request of reconciliation takes a token of its
    // replica's bucket (RATE a second, burst RATE): in any T seconds a replica
    // sends at most RATE + RATE x T, so the fake sees at most REPLICAS x that
    // (plus one request per replica: arrival times at the fake jitter around
    // the moment the token was taken).
    const times = (rs) => rs.map((r) => r.at).sort((x, y) => x - y);
    const all = times([...reads, ...pages]);
    const perSecond = busiest(all, 1_000);
    const spanS = (all.at(-1) - all[0]) / 1_000;
    const limit1s = REPLICAS * (RATE + RATE + 1);
    assert.ok(perSecond <= limit1s, `${perSecond} requests in one second > ${limit1s}`);
    assert.ok(all.length <= REPLICAS * (RATE * spanS + RATE + 1),
      `${all.length} requests in ${spanS.toFixed(1)} s > ${REPLICAS} x (${RATE}/s + burst)`);
    const own = {};
    for (const who of ['a', 'b']) {
      const t = times([...reads, ...pages].filter((r) => replicaOf(r) === who));
      own[who] = { n: t.length, s1: busiest(t, 1_000), s3: busiest(t, 3_000) };
      assert.ok(own[who].s1 <= RATE + RATE + 1, `replica ${who}: ${own[who].s1} requests in one second`);
      assert.ok(own[who].s3 <= 3 * RATE + RATE + 1, `replica ${who}: ${own[who].s3} requests in three seconds`);
    }
    const readTimes = times(reads);
    console.log(`replicas: ${N} intents read once each (a ${readsBy.a}, b ${readsBy.b}); event log paged in ${firstPages.length} `
      + `passes (a ${pagersBy.a}, b ${pagersBy.b}); reconciliation requests: ${all.length} in ${spanS.toFixed(1)} s, `
      + `busiest second ${perSecond} (limit ${limit1s}); per replica ${JSON.stringify(own)} (limits ${2 * RATE + 1}/1 s, `
      + `${4 * RATE + 1}/3 s); reads ${reads.length} in ${((readTimes.at(-1) - readTimes[0]) / 1000).toFixed(1)} s`);

    // Now Stripe delivers what it held back: no second transition, no second outbox row.
    const before = await ctx.db.query('SELECT id::text, status, version FROM invoices WHERE id = ANY($1::uuid[]) ORDER BY id', [ids]);
    const late = await ctx.fake.webhooks.flush({ withheld: true });
    assert.ok(late.length >= N, `${late.length} late webhooks`);
    for (const d of late) {
      assert.equal(d.status, 200, `${d.type} ${d.eventId}: ${d.status} ${d.body ?? d.error}`);
      const { outcome } = JSON.parse(d.body);
      assert.ok(['ignored-no-effect', 'ignored-stale', 'ignored-duplicate'].includes(outcome), `${d.type} ${d.eventId}: ${outcome}`);
    }
    const after = await ctx.db.query('SELECT id::text, status, version FROM invoices WHERE id = ANY($1::uuid[]) ORDER BY id', [ids]);
    assert.deepEqual(after, before);
    const outboxAfter = await ctx.db.query('SELECT count(*)::int AS n FROM outbox WHERE invoice_id = ANY($1::uuid[])', [ids]);
    assert.equal(outboxAfter[0].n, N);

    await Promise.all([a.stop(), b.stop()]);
    const logs = allLogs(ctx);
    assertNoSecrets(ctx, logs);
    for (const r of ctx.fake.requests) {
      const { authorization, ...rest } = r.headers;
      assert.ok(![r.target, r.body, JSON.stringify(rest)].join('\n').includes(keyB), `${r.method} ${r.target} carries B's key outside Authorization`);
      if (r.apiKey === keyB) assert.equal(authorization, `Bearer ${keyB}`);
    }
    assert.ok(!logs.join('\n').includes(keyB.slice(8)), 'a billingd log line carries B\'s secret key');
  });
});
