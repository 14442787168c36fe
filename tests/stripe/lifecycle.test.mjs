// billingd with provider=stripe against the fake Stripe, the lifecycle past
// the create (integration: real PostgreSQL, the real binary, HTTPS):
// expiry (cancelled at Stripe first, following Stripe when it took the money,
// postponed while a payment is in flight), reconciliation of webhooks Stripe
// never delivered (both sources, then the late webhook: one transition, one
// outbox row), Checkout end to end, full and partial refunds. Every test ends
// with the secrecy checks (stripe_lib: assertNoSecrets).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withStripe, invoice, create, until, assertNoSecrets, allLogs, it } from './stripe_lib.mjs';

const get = (svc, id) => it.request(`${svc.base}/v1/invoices/${id}`);
const statusOf = async (svc, id) => (await get(svc, id)).json?.status;
const post = (svc, path, body, headers = {}) => it.request(`${svc.base}${path}`, { method: 'POST', body, headers });

// Events of the fake about one PaymentIntent (or the Checkout Session that made it).
const about = (...ids) => (ev) => {
  const o = ev.data.object;
  return ids.includes(o.id) || ids.includes(o.payment_intent);
};

async function outboxOf(db, id) {
  return db.query('SELECT signal, payload FROM outbox WHERE invoice_id = $1 ORDER BY id', [id]);
}

async function transitionsOf(db, id) {
  const [r] = await db.query('SELECT status, version FROM invoices WHERE id = $1', [id]);
  return r;
}

// Every delivery of these events was answered 200 (an authentic event is
// never refused, whatever it says) with one of `outcomes`.
function assertDelivered(deliveries, outcomes) {
  assert.ok(deliveries.length > 0, 'no delivery');
  for (const d of deliveries) {
    assert.equal(d.status, 200, `${d.type} ${d.eventId}: ${d.status} ${d.body ?? d.error}`);
    const outcome = JSON.parse(d.body).outcome;
    assert.ok(outcomes.includes(outcome), `${d.type} ${d.eventId}: outcome ${outcome}, want one of ${outcomes}`);
  }
}

test('expiry: cancelled at Stripe first; a payment Stripe took is followed (PAID); one in flight postpones', { timeout: 180_000 }, async () => {
  await withStripe('stripe_expiry', {}, async (ctx) => {
    let svc = await ctx.start();
    const made = [];
    for (let i = 1; i <= 3; ++i) {
      const r = await create(svc, invoice('exp', i, { expires_in_seconds: 60 }));
      assert.equal(r.status, 201, r.text);
      made.push(r.json);
    }
    const [cancelled, paid, processing] = made;
    // The customer paid `paid`, but Stripe's webhooks for it never arrive;
    // `processing` is a payment still in flight.
    ctx.fake.webhooks.withhold(about(paid.provider_intent_id, processing.provider_intent_id));
    ctx.fake.state.confirmIntent(paid.provider_intent_id, { payment_method: 'pm_card_visa' });
    ctx.fake.state.confirmIntent(processing.provider_intent_id, { payment_method: 'pm_card_processing' });
    assert.equal(await statusOf(svc, paid.id), 'PENDING', 'billingd cannot know of the payment yet');

    // Time passes (the invoices' expiry is moved into the past while billingd is down).
    await svc.stop();
    await ctx.db.query(`UPDATE invoices SET expires_at = now() - interval '1 second' WHERE id = ANY($1::uuid[])`,
      [made.map((m) => m.id)]);
    svc = await ctx.start({ args: ['--sweep-interval-seconds=1', '--expiry-retry-seconds=600'] });

    await until(async () => (await statusOf(svc, cancelled.id)) === 'CANCELLED', 'the unpaid invoice to be CANCELLED');
    await until(async () => (await statusOf(svc, paid.id)) === 'PAID', 'the paid invoice to follow Stripe');
    await until(async () => (await ctx.db.query('SELECT expiry_retries FROM invoices WHERE id = $1', [processing.id]))[0].expiry_retries >= 1,
      'the expiry of the invoice in flight to be postponed');

    // Cancelled at Stripe, with the invoice's key, before CANCELLED.
    const [c] = ctx.fake.calls('POST', `/v1/payment_intents/${cancelled.provider_intent_id}/cancel`);
    assert.equal(c.body, 'cancellation_reason=abandoned');
    assert.equal(c.headers['idempotency-key'], `billingd:${cancelled.id}:cancel_intent`);
    assert.equal(ctx.fake.state.intents.get(cancelled.provider_intent_id).status, 'canceled');
    assert.deepEqual((await outboxOf(ctx.db, cancelled.id)).map((r) => r.signal), ['PaymentCancelled']);

    // Stripe refused the cancel (the intent succeeded): PAID with Stripe's amount, never CANCELLED.
    assert.equal(ctx.fake.calls('POST', `/v1/payment_intents/${paid.provider_intent_id}/cancel`).length, 1);
    const paidRow = await get(svc, paid.id);
    assert.equal(paidRow.json.amount_cents, paid.amount_cents);
    const paidSignals = await outboxOf(ctx.db, paid.id);
    assert.deepEqual(paidSignals.map((r) => r.signal), ['PaymentConfirmed']);
    assert.equal(ctx.fake.state.intents.get(paid.provider_intent_id).status, 'succeeded');
    assert.ok(allLogs(ctx).some((l) => l.includes(`invoice ${paid.id}: cancel raced a successful payment`)));

    // In flight: still PENDING, expiry moved by expiry_retry_seconds, nothing signalled.
    const [p] = await ctx.db.query('SELECT status, expires_at > now() + interval \'500 seconds\' AS later FROM invoices WHERE id = $1', [processing.id]);
    assert.deepEqual(p, { status: 'PENDING', later: true });
    assert.deepEqual(await outboxOf(ctx.db, processing.id), []);
    assert.ok(allLogs(ctx).some((l) => l.includes(`invoice ${processing.id}: expiry postponed`)));

    // The withheld webhooks arrive late: the paid invoice does not move again.
    const before = await transitionsOf(ctx.db, paid.id);
    assertDelivered(await ctx.fake.webhooks.flush({ withheld: true, filter: about(paid.provider_intent_id) }),
      ['ignored-no-effect', 'ignored-stale', 'ignored-duplicate']);
    assert.deepEqual(await transitionsOf(ctx.db, paid.id), before);
    assert.equal((await outboxOf(ctx.db, paid.id)).length, 1);

    // The payment in flight settles: the webhook pays the invoice.
    ctx.fake.webhooks.configure({ mode: 'auto' });
    ctx.fake.webhooks.rules.length = 0;
    assertDelivered(await ctx.fake.webhooks.flush({ withheld: true, filter: about(processing.provider_intent_id) }),
      ['applied', 'ignored-no-effect']);
    ctx.fake.state.settleIntent(processing.provider_intent_id, 'pm_card_visa');
    await ctx.fake.webhooks.idle();
    await until(async () => (await statusOf(svc, processing.id)) === 'PAID', 'the settled payment to be PAID');
    assertNoSecrets(ctx, allLogs(ctx));
  });
});

test('a payment Stripe reports for a CANCELLED invoice is recorded, alerted, counted and followed (PAID)', { timeout: 120_000 }, async () => {
  await withStripe('stripe_after_cancel', {}, async (ctx) => {
    const svc = await ctx.start();
    const r = await create(svc, invoice('late', 1));
    assert.equal(r.status, 201, r.text);
    const cancel = await post(svc, `/v1/invoices/${r.json.id}/cancel`);
    assert.equal(cancel.status, 200, cancel.text);
    await ctx.fake.webhooks.idle();
    // Stripe says the intent succeeded anyway (sent as Stripe sends it).
    const pi = ctx.fake.state.intents.get(r.json.provider_intent_id);
    const ev = ctx.fake.state.emit('payment_intent.succeeded', { ...pi, status: 'succeeded', amount_received: pi.amount });
    await ctx.fake.webhooks.idle();
    const d = ctx.fake.webhooks.deliveries.find((x) => x.eventId === ev.id);
    assert.equal(d?.status, 200, JSON.stringify(d));
    const [row] = await ctx.db.query('SELECT outcome FROM webhook_events WHERE event_id = $1', [ev.id]);
    assert.ok(row, 'the event is recorded');
    // Money was taken: the invoice says so (it can be refunded) and the
    // workflow, told it was cancelled, is told it was paid after all.
    assert.equal(await statusOf(svc, r.json.id), 'PAID');
    assert.deepEqual((await outboxOf(ctx.db, r.json.id)).map((o) => o.signal), ['PaymentCancelled', 'PaymentConfirmed']);
    assert.ok(allLogs(ctx).some((l) => / error ALERT /.test(l) && l.includes(r.json.id) && l.includes(ev.id)),
      'an alert line naming the invoice and the event');
    const m = await it.metrics(svc.base);
    assert.equal(m.billing_payments_after_cancel_total, 1);
    // Delivered again: recorded once, counted once.
    await ctx.fake.webhooks.send(ev);
    assert.equal((await it.metrics(svc.base)).billing_payments_after_cancel_total, 1);
    assert.equal((await outboxOf(ctx.db, r.json.id)).length, 2);
    assertNoSecrets(ctx, allLogs(ctx));
  });
});

test('reconciliation: withheld webhooks are recovered from the intent and from the event log; the late webhook changes nothing', { timeout: 180_000 }, async () => {
  await withStripe('stripe_reconcile', {}, async (ctx) => {
    const svc = await ctx.start({ args: ['--reconcile-interval-seconds=1', '--reconcile-quiet-seconds=1'] });
    // A payment whose webhooks Stripe never delivered.
    const a = (await create(svc, invoice('rec', 1))).json;
    ctx.fake.webhooks.withhold(about(a.provider_intent_id));
    ctx.fake.state.confirmIntent(a.provider_intent_id, { payment_method: 'pm_card_visa' });
    await until(async () => (await statusOf(svc, a.id)) === 'PAID', 'reconciliation to find the payment', 30_000);
    assert.ok(ctx.fake.calls('GET', `/v1/payment_intents/${a.provider_intent_id}`).length
      + ctx.fake.calls('GET', '/v1/events').length > 0, 'reconciliation asked Stripe');
    assert.deepEqual((await outboxOf(ctx.db, a.id)).map((r) => r.signal), ['PaymentConfirmed']);

    // A refund made in Stripe's Dashboard, its webhook withheld: only the
    // event log can tell billingd (reconciliation of invoices reads only
    // PENDING/FAILED ones).
    const b = (await create(svc, invoice('rec', 2))).json;
    ctx.fake.state.confirmIntent(b.provider_intent_id, { payment_method: 'pm_card_visa' });
    await ctx.fake.webhooks.idle();
    await until(async () => (await statusOf(svc, b.id)) === 'PAID', 'the paid webhook');
    ctx.fake.webhooks.withhold(about(b.provider_intent_id));
    ctx.fake.state.createRefund({ payment_intent: b.provider_intent_id }, {});
    await until(async () => (await statusOf(svc, b.id)) === 'REFUNDED', 'the event log to bring the refund', 30_000);
    assert.ok(ctx.fake.calls('GET', '/v1/events').some((r) => /created\[gte\]=\d+/.test(r.target) && /limit=100/.test(r.target)),
      'GET /v1/events paged with created[gte] and limit=100');
    const [cp] = await ctx.db.query('SELECT count(*)::int AS n FROM reconcile_checkpoints');
    assert.equal(cp.n, 1, 'the checkpoint is stored');
    assert.deepEqual((await outboxOf(ctx.db, b.id)).map((r) => r.signal), ['PaymentConfirmed', 'PaymentRefunded']);

    // Now Stripe delivers everything it held back, twice and in reverse.
    const before = [await transitionsOf(ctx.db, a.id), await transitionsOf(ctx.db, b.id)];
    const late = await ctx.fake.webhooks.flush({ withheld: true, order: 'reverse', copies: 2 });
    assertDelivered(late, ['ignored-no-effect', 'ignored-stale', 'ignored-duplicate']);
    assert.deepEqual([await transitionsOf(ctx.db, a.id), await transitionsOf(ctx.db, b.id)], before);
    assert.equal((await outboxOf(ctx.db, a.id)).length, 1);
    assert.equal((await outboxOf(ctx.db, b.id)).length, 2);
    const m = await it.metrics(svc.base);
    assert.ok(Object.entries(m).some(([k, v]) => /reconcil/.test(k) && v > 0), 'reconciliation shows in /metrics');
    assertNoSecrets(ctx, allLogs(ctx));
  });
});

test('Checkout end to end: the session URL, paid, paid later, failed later, cancelled (session expired)', { timeout: 180_000 }, async () => {
  await withStripe('stripe_checkout', {}, async (ctx) => {
    // A default lifetime shorter than Stripe's 30 minutes: sessions are held inside Stripe's window.
    const svc = await ctx.start({ args: ['--invoice-expiry-seconds=600'] });
    const urls = { mode: 'checkout', success_url: 'https://shop.example/paid?inv={CHECKOUT_SESSION_ID}', cancel_url: 'https://shop.example/cart' };
    const bodies = new Map();
    const make = async (i) => {
      bodies.set(i, invoice('co', i, urls));
      const r = await create(svc, bodies.get(i));
      assert.equal(r.status, 201, r.text);
      return r.json;
    };
    const a = await make(1);
    assert.equal(a.mode, 'checkout');
    const s = ctx.fake.state.sessions.get(a.provider_session_id);
    assert.ok(s, 'the session exists at the fake');
    assert.equal(a.checkout_url, s.url);
    assert.equal(a.client_secret, undefined, 'no client secret for a Checkout invoice');
    assert.equal(s.amount_total, a.amount_cents);
    assert.equal(s.success_url, urls.success_url);
    assert.equal(s.metadata.invoice_id, a.id);
    assert.equal(s.client_reference_id, a.id);
    assert.ok(s.expires_at - s.created >= 30 * 60 && s.expires_at - s.created <= 24 * 3600, `expires_at ${s.expires_at - s.created} s`);
    const [call] = ctx.fake.calls('POST', '/v1/checkout/sessions');
    assert.equal(call.headers['idempotency-key'], `billingd:${a.id}:create_checkout_session`);
    assert.equal(ctx.fake.state.sessionIntentData.get(s.id).metadata.invoice_id, a.id, 'the intent Checkout makes names the invoice');

    // A repeat answers the same session: no second one.
    const again = await create(svc, bodies.get(1));
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.provider_session_id, a.provider_session_id);
    assert.equal(ctx.fake.calls('POST', '/v1/checkout/sessions').length, 1);

    // Paid by card on Checkout's page.
    ctx.fake.state.completeSession(a.provider_session_id, 'paid');
    await ctx.fake.webhooks.idle();
    await until(async () => (await statusOf(svc, a.id)) === 'PAID', 'the Checkout invoice to be PAID');
    const paidA = (await get(svc, a.id)).json;
    assert.equal(paidA.provider_intent_id, ctx.fake.state.sessions.get(a.provider_session_id).payment_intent, 'the intent learned');
    assert.deepEqual((await outboxOf(ctx.db, a.id)).map((r) => r.signal), ['PaymentConfirmed']);

    // An asynchronous method: PENDING until it settles, then PAID.
    const b = await make(2);
    ctx.fake.state.completeSession(b.provider_session_id, 'pending');
    await ctx.fake.webhooks.idle();
    assert.equal(await statusOf(svc, b.id), 'PENDING');
    ctx.fake.state.settleSession(b.provider_session_id, true);
    await ctx.fake.webhooks.idle();
    await until(async () => (await statusOf(svc, b.id)) === 'PAID', 'the async payment to be PAID');

    // ... or fails: FAILED.
    const c = await make(3);
    ctx.fake.state.completeSession(c.provider_session_id, 'pending');
    ctx.fake.state.settleSession(c.provider_session_id, false);
    await ctx.fake.webhooks.idle();
    await until(async () => (await statusOf(svc, c.id)) === 'FAILED', 'the failed async payment to be FAILED');

    // Cancel by API: the session is expired at Stripe first.
    const d = await make(4);
    const cancel = await post(svc, `/v1/invoices/${d.id}/cancel`);
    assert.equal(cancel.status, 200, cancel.text);
    assert.equal(cancel.json.status, 'CANCELLED');
    const [x] = ctx.fake.calls('POST', `/v1/checkout/sessions/${d.provider_session_id}/expire`);
    assert.equal(x.headers['idempotency-key'], `billingd:${d.id}:expire_checkout_session`);
    assert.equal(ctx.fake.state.sessions.get(d.provider_session_id).status, 'expired');
    await ctx.fake.webhooks.idle();
    assert.deepEqual((await outboxOf(ctx.db, d.id)).map((r) => r.signal), ['PaymentCancelled']);

    // Stripe unavailable for a Checkout create: 503 with Retry-After; the
    // row stays PENDING without a session (nobody has a URL), and the retry
    // with the same body makes the session.
    ctx.fake.fault({ method: 'POST', path: '/v1/checkout/sessions', status: 500, times: 3 });
    bodies.set(5, invoice('co', 5, urls));
    const down = await create(svc, bodies.get(5));
    assert.equal(down.status, 503, down.text);
    assert.ok(down.headers['retry-after'], 'Retry-After');
    const [kept] = await ctx.db.query('SELECT status, provider_session_id FROM invoices WHERE workflow_id = $1', [bodies.get(5).workflow_id]);
    assert.deepEqual(kept, { status: 'PENDING', provider_session_id: null });
    const retried = await create(svc, bodies.get(5));
    assert.equal(retried.status, 200, retried.text);
    assert.ok(ctx.fake.state.sessions.get(retried.json.provider_session_id), 'the session exists after the retry');
    assert.equal(retried.json.checkout_url, ctx.fake.state.sessions.get(retried.json.provider_session_id).url);
    const keys = new Set(ctx.fake.calls('POST', '/v1/checkout/sessions').filter((r) => r.headers['idempotency-key'].includes(retried.json.id))
      .map((r) => r.headers['idempotency-key']));
    assert.deepEqual([...keys], [`billingd:${retried.json.id}:create_checkout_session`], 'one key across every attempt');

    // Every webhook of the run was answered 200; each invoice signalled once.
    assert.ok(ctx.fake.webhooks.deliveries.every((w) => w.status === 200), JSON.stringify(ctx.fake.webhooks.deliveries.filter((w) => w.status !== 200)));
    for (const inv of [a, b, c, d]) assert.equal((await outboxOf(ctx.db, inv.id)).length, 1, `one signal for ${inv.id}`);
    assertNoSecrets(ctx, allLogs(ctx));
  });
});

test('refunds: partial then the rest, the caller\'s Idempotency-Key, what cannot be refunded, and the webhooks that confirm them', { timeout: 180_000 }, async () => {
  await withStripe('stripe_refunds', {}, async (ctx) => {
    const svc = await ctx.start();
    const inv = (await create(svc, invoice('ref', 1, { amount_cents: 5000 }))).json;
    const refund = (body, key) => post(svc, `/v1/invoices/${inv.id}/refunds`, body, key ? { 'idempotency-key': key } : {});

    // Not paid yet: nothing to refund, nothing asked of Stripe.
    const early = await refund({});
    assert.equal(early.status, 409, early.text);
    assert.equal(ctx.fake.calls('POST', '/v1/refunds').length, 0);

    ctx.fake.state.confirmIntent(inv.provider_intent_id, { payment_method: 'pm_card_visa' });
    await ctx.fake.webhooks.idle();
    await until(async () => (await statusOf(svc, inv.id)) === 'PAID', 'PAID');

    const part = await refund({ amount_cents: 2000, reason: 'requested_by_customer' }, 'rf-1');
    assert.equal(part.status, 201, part.text);
    assert.equal(part.json.refund.amount_cents, 2000);
    assert.equal(part.json.invoice.status, 'PAID');
    assert.equal(part.json.invoice.refunded_cents, 2000);
    const [sent] = ctx.fake.calls('POST', '/v1/refunds');
    assert.equal(sent.headers['idempotency-key'], `billingd:${inv.id}:create_refund:k:rf-1`);
    assert.match(sent.body, new RegExp(`payment_intent=${inv.provider_intent_id}`));
    assert.match(sent.body, /amount=2000/);
    assert.match(sent.body, /reason=requested_by_customer/);

    // The same request again: the same refund, no second one at Stripe.
    const repeat = await refund({ amount_cents: 2000, reason: 'requested_by_customer' }, 'rf-1');
    assert.equal(repeat.status, 200, repeat.text);
    assert.equal(repeat.json.refund.id, part.json.refund.id);
    assert.equal(ctx.fake.state.refunds.size, 1);
    // The same key with another body is the caller's mistake.
    const other = await refund({ amount_cents: 100 }, 'rf-1');
    assert.equal(other.status, 409, other.text);
    assert.equal(ctx.fake.state.refunds.size, 1);
    // More than is left: Stripe's refusal as a 400.
    const big = await refund({ amount_cents: 4000 }, 'rf-big');
    assert.equal(big.status, 400, big.text);
    assert.ok(big.json.error.field, big.text);

    // The rest (no amount): REFUNDED.
    const rest = await refund({}, 'rf-2');
    assert.equal(rest.status, 201, rest.text);
    assert.equal(rest.json.refund.amount_cents, 3000);
    assert.equal(rest.json.invoice.status, 'REFUNDED');
    assert.equal(rest.json.invoice.refunded_cents, 5000);
    const done = await refund({}, 'rf-3');
    assert.equal(done.status, 409, done.text);

    // Stripe's charge.refunded webhooks confirm what billingd already has.
    await ctx.fake.webhooks.idle();
    const hooks = ctx.fake.webhooks.deliveries.filter((d) => d.type === 'charge.refunded');
    assert.equal(hooks.length, 2);
    assertDelivered(hooks, ['ignored-no-effect', 'ignored-stale']);
    const signals = await outboxOf(ctx.db, inv.id);
    assert.deepEqual(signals.map((r) => r.signal), ['PaymentConfirmed', 'PaymentRefunded', 'PaymentRefunded']);
    assert.deepEqual(signals.slice(1).map((r) => (typeof r.payload === "string" ? JSON.parse(r.payload) : r.payload).refunded_cents), [2000, 5000]);
    const row = (await get(svc, inv.id)).json;
    assert.equal(row.status, 'REFUNDED');
    assert.equal(row.refunded_cents, 5000);

    // A refund made in Stripe's Dashboard: its charge.refunded webhook
    // records it; refund.updated is recorded and changes nothing.
    const dash = (await create(svc, invoice('ref', 3, { amount_cents: 1200 }))).json;
    ctx.fake.state.confirmIntent(dash.provider_intent_id, { payment_method: 'pm_card_visa' });
    await ctx.fake.webhooks.idle();
    await until(async () => (await statusOf(svc, dash.id)) === 'PAID', 'PAID');
    const re = ctx.fake.state.createRefund({ payment_intent: dash.provider_intent_id, amount: '500' }, {});
    await ctx.fake.webhooks.idle();
    await until(async () => (await get(svc, dash.id)).json?.refunded_cents === 500, 'the Dashboard refund recorded');
    assert.equal(await statusOf(svc, dash.id), 'PAID');
    const upd = ctx.fake.state.emit('refund.updated', { ...re, status: 'succeeded' });
    await ctx.fake.webhooks.idle();
    const [u] = await ctx.db.query('SELECT outcome FROM webhook_events WHERE event_id = $1', [upd.id]);
    assert.ok(u, 'refund.updated is recorded');
    assert.deepEqual((await outboxOf(ctx.db, dash.id)).map((r) => r.signal), ['PaymentConfirmed', 'PaymentRefunded']);

    // A dispute on a paid invoice still works.
    const disputed = (await create(svc, invoice('ref', 2))).json;
    ctx.fake.state.confirmIntent(disputed.provider_intent_id, { payment_method: 'pm_card_visa' });
    ctx.fake.state.dispute(disputed.provider_intent_id);
    await ctx.fake.webhooks.idle();
    await until(async () => (await statusOf(svc, disputed.id)) === 'DISPUTED', 'DISPUTED');
    assertNoSecrets(ctx, allLogs(ctx));
  });
});
