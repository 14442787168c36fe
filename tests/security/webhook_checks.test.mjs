// A signed webhook is authentic, not necessarily about our invoice. Each
// forgery below is signed with the real endpoint secret by Stripe's SDK and
// names our invoice in its metadata; each must be answered 200 (Stripe must
// not retry it), recorded as rejected-mismatch (so a re-delivery is a
// duplicate), logged with the invoice and event ids, counted in metrics, and
// change nothing else: no invoice row, no outbox row. The same for refunds
// and disputes of a PAID invoice, and for a Checkout invoice's session events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as it from '../integration/lib.mjs';
import { caseRunner } from './sec_lib.mjs';

test('signed events that are not about the invoice are rejected-mismatch and change nothing', { timeout: 180_000 }, async () => {
  await it.withService('sec_webhook', {}, async (ctx) => {
    const svc = await ctx.start();
    const base = svc.base;
    const secret = ctx.secrets.webhookSecret;
    const r = it.rng(it.seedFor('sec_webhook'));
    const created = await it.request(`${base}/v1/invoices`, {
      method: 'POST', body: { shipment_id: 'shp_forge', user_id: 'usr_forge', workflow_id: 'wf_forge', amount_cents: 5000, currency: 'usd' },
    });
    assert.equal(created.status, 201, created.text);
    const inv = created.json;
    const now = Math.floor(Date.now() / 1000);
    let n = 0;
    const forged = (kind, f) => {
      const id = `evt_forged_${++n}_${r.token(8)}`;
      const e = JSON.parse(it.eventBody(r, { id, kind, created: now - 10, inv }));
      f(e);
      return { id, payload: JSON.stringify(e) };
    };
    const forgeries = [
      ['succeeded for another PaymentIntent', forged('succeeded', (e) => { e.data.object.id = 'pi_3OtherIntent000000000000'; })],
      ['failed for another PaymentIntent', forged('failed', (e) => { e.data.object.id = 'pi_3OtherIntent000000000001'; })],
      ['canceled for another PaymentIntent', forged('canceled', (e) => { e.data.object.id = 'pi_3OtherIntent000000000002'; })],
      ['succeeded without amount', forged('succeeded', (e) => { delete e.data.object.amount; })],
      ['succeeded with amount null', forged('succeeded', (e) => { e.data.object.amount = null; })],
      ['succeeded without currency', forged('succeeded', (e) => { delete e.data.object.currency; })],
      ['succeeded with livemode true on a test-mode billingd', forged('succeeded', (e) => { e.livemode = true; })],
      ['succeeded for another amount', forged('succeeded', (e) => { e.data.object.amount = 1; })],
      ['succeeded in another currency', forged('succeeded', (e) => { e.data.object.currency = 'eur'; })],
    ];
    const cases = caseRunner(ctx.db, 'webhook');
    const mismatches = () => it.metrics(base).then((m) => m['billing_webhook_outcomes_total{outcome="rejected-mismatch"}'] ?? 0);
    for (const [name, { id, payload }] of forgeries) {
      const counted = await mismatches();
      await cases.run(name, () => it.sendWebhook(base, payload, secret), async (res, { before, after }) => {
        const p = [];
        if (res.status !== 200 || res.json?.outcome !== 'rejected-mismatch') p.push(`answer ${res.status} ${res.text}, want 200 rejected-mismatch`);
        const [rec] = await ctx.db.query('SELECT outcome, invoice_id::text FROM webhook_events WHERE event_id = $1', [id]);
        if (rec?.outcome !== 'rejected-mismatch' || rec?.invoice_id !== inv.id) p.push(`webhook_events row ${JSON.stringify(rec)}`);
        // Exactly one more webhook_events row; invoices and outbox untouched.
        if (after.webhook_events !== before.webhook_events + 1) p.push(`webhook_events ${before.webhook_events} -> ${after.webhook_events}`);
        for (const k of ['invoices', 'outbox', 'invoices_md5', 'outbox_md5'])
          if (before[k] !== after[k]) p.push(`${k} changed`);
        if ((await mismatches()) !== counted + 1) p.push('billing_webhook_outcomes_total{outcome="rejected-mismatch"} did not grow by one');
        if (!svc.lines.some((l) => l.includes(inv.id) && l.includes(id) && /warn/.test(l) && l.includes('rejected')))
          p.push('no warning naming the invoice and the event');
        return p;
      }, { changes: true });
      // A re-delivery is a duplicate and changes nothing at all.
      await cases.run(`${name}, delivered again`, () => it.sendWebhook(base, payload, secret), (res) =>
        (res.status === 200 && res.json?.outcome === 'ignored-duplicate' ? [] : [`answer ${res.status} ${res.text}`]));
    }
    const [row] = await ctx.db.query('SELECT status FROM invoices WHERE id = $1', [inv.id]);
    assert.equal(row.status, 'PENDING', 'a forged event moved the invoice');

    // Control: the genuine event pays it (so the checks above could fail).
    const genuine = it.eventBody(r, { id: `evt_genuine_${r.token(8)}`, kind: 'succeeded', created: now, inv });
    await cases.run('the genuine succeeded event', () => it.sendWebhook(base, genuine, secret), (res) =>
      (res.json?.outcome === 'applied' && res.json?.status === 'PAID' ? [] : [`answer ${res.status} ${res.text}`]), { changes: true });

    // Now PAID: a signed refund or dispute of another payment naming our
    // invoice is not about it either (it would refund or freeze nothing of ours).
    const chargeEvent = (type, f) => {
      const id = `evt_forged_ch_${++n}_${r.token(8)}`;
      const o = type === 'charge.refunded'
        ? { id: `ch_3${r.token(23)}`, object: 'charge', amount: inv.amount_cents, amount_refunded: inv.amount_cents, refunded: true,
            currency: inv.currency, livemode: false, paid: true, status: 'succeeded', payment_intent: inv.provider_intent_id,
            metadata: { invoice_id: inv.id } }
        : { id: `dp_1${r.token(23)}`, object: 'dispute', amount: inv.amount_cents, charge: `ch_3${r.token(23)}`, currency: inv.currency,
            livemode: false, payment_intent: inv.provider_intent_id, reason: 'fraudulent', status: 'needs_response', metadata: {} };
      const e = { id, object: 'event', api_version: '2026-10-28.endive', created: now, livemode: false, pending_webhooks: 1,
        request: { id: null, idempotency_key: null }, type, data: { object: o } };
      f(e.data.object);
      return { id, payload: JSON.stringify(e) };
    };
    // A dispute names no invoice (no metadata): routed by its PaymentIntent,
    // another one is nobody's invoice.
    const paidForgeries = [
      ['charge.refunded of another PaymentIntent naming our invoice', 'rejected-mismatch', chargeEvent('charge.refunded', (o) => { o.payment_intent = 'pi_3OtherIntent000000000003'; })],
      ['charge.refunded in another currency', 'rejected-mismatch', chargeEvent('charge.refunded', (o) => { o.currency = 'eur'; })],
      ['charge.refunded of another amount', 'rejected-mismatch', chargeEvent('charge.refunded', (o) => { o.amount = 99; o.amount_refunded = 99; })],
      ['charge.dispute.created of another PaymentIntent', 'ignored-unknown-invoice', chargeEvent('charge.dispute.created', (o) => { o.payment_intent = 'pi_3OtherIntent000000000004'; })],
    ];
    for (const [name, want, { id, payload }] of paidForgeries)
      await cases.run(name, () => it.sendWebhook(base, payload, secret), async (res, { before, after }) => {
        const p = [];
        if (res.status !== 200 || res.json?.outcome !== want) p.push(`answer ${res.status} ${res.text}, want 200 ${want}`);
        const [rec] = await ctx.db.query('SELECT outcome FROM webhook_events WHERE event_id = $1', [id]);
        if (rec?.outcome !== want) p.push(`webhook_events row ${JSON.stringify(rec)}`);
        for (const k of ['invoices', 'outbox', 'invoices_md5', 'outbox_md5'])
          if (before[k] !== after[k]) p.push(`${k} changed`);
        return p;
      }, { changes: true });
    const [still] = await ctx.db.query('SELECT status, refunded_cents FROM invoices WHERE id = $1', [inv.id]);
    assert.deepEqual(still, { status: 'PAID', refunded_cents: 0 }, 'a forged refund or dispute moved the invoice');
    it.assertNoProblems(cases.problems, 'webhook checks');
  });
});

// The same for a Checkout invoice: its events are matched by the session.
// A signed session event naming our invoice but another session, or our
// session with another amount, currency or mode, is not about it.
test('signed Checkout events that are not about the invoice are rejected-mismatch and change nothing', { timeout: 180_000 }, async () => {
  await it.withService('sec_webhook_checkout', {}, async (ctx) => {
    const svc = await ctx.start();
    const base = svc.base;
    const secret = ctx.secrets.webhookSecret;
    const r = it.rng(it.seedFor('sec_webhook_checkout'));
    const created = await it.request(`${base}/v1/invoices`, {
      method: 'POST',
      body: { shipment_id: 'shp_forge_co', user_id: 'usr_forge', workflow_id: 'wf_forge_co', amount_cents: 5000, currency: 'usd',
        mode: 'checkout', success_url: 'https://shop.example/ok', cancel_url: 'https://shop.example/cart' },
    });
    assert.equal(created.status, 201, created.text);
    const inv = created.json;
    assert.ok(inv.provider_session_id, created.text);
    const now = Math.floor(Date.now() / 1000);
    let n = 0;
    const sessionEvent = (type, f = () => {}) => {
      const id = `evt_forged_co_${++n}_${r.token(8)}`;
      const e = {
        id, object: 'event', api_version: '2026-10-28.endive', created: now - 10, livemode: false, pending_webhooks: 1,
        request: { id: null, idempotency_key: null }, type,
        data: { object: {
          id: inv.provider_session_id, object: 'checkout.session', amount_total: 5000, currency: 'usd', livemode: false,
          mode: 'payment', status: 'complete', payment_status: 'paid', payment_intent: `pi_3Paid${r.token(16)}`,
          client_reference_id: inv.id, metadata: { invoice_id: inv.id },
        } },
      };
      f(e);
      return { id, payload: JSON.stringify(e) };
    };
    const forgeries = [
      ['completed for another session naming our invoice', sessionEvent('checkout.session.completed', (e) => { e.data.object.id = `cs_test_a1Other${r.token(20)}`; })],
      ['expired for another session naming our invoice', sessionEvent('checkout.session.expired', (e) => {
        Object.assign(e.data.object, { id: `cs_test_a1Other${r.token(20)}`, status: 'expired', payment_status: 'unpaid', payment_intent: null });
      })],
      ['completed for our session, another amount', sessionEvent('checkout.session.completed', (e) => { e.data.object.amount_total = 1; })],
      ['completed for our session, another currency', sessionEvent('checkout.session.completed', (e) => { e.data.object.currency = 'eur'; })],
      ['completed for our session, livemode true', sessionEvent('checkout.session.completed', (e) => { e.livemode = true; e.data.object.livemode = true; })],
      ['async_payment_succeeded for another session', sessionEvent('checkout.session.async_payment_succeeded', (e) => { e.data.object.id = `cs_test_a1Other${r.token(20)}`; })],
    ];
    const cases = caseRunner(ctx.db, 'webhook-checkout');
    for (const [name, { id, payload }] of forgeries) {
      await cases.run(name, () => it.sendWebhook(base, payload, secret), async (res, { before, after }) => {
        const p = [];
        if (res.status !== 200 || res.json?.outcome !== 'rejected-mismatch') p.push(`answer ${res.status} ${res.text}, want 200 rejected-mismatch`);
        const [rec] = await ctx.db.query('SELECT outcome FROM webhook_events WHERE event_id = $1', [id]);
        if (rec?.outcome !== 'rejected-mismatch') p.push(`webhook_events row ${JSON.stringify(rec)}`);
        for (const k of ['invoices', 'outbox', 'invoices_md5', 'outbox_md5'])
          if (before[k] !== after[k]) p.push(`${k} changed`);
        return p;
      }, { changes: true });
    }
    const [row] = await ctx.db.query('SELECT status, provider_intent_id FROM invoices WHERE id = $1', [inv.id]);
    assert.deepEqual(row, { status: 'PENDING', provider_intent_id: null }, 'a forged event moved the invoice or taught it an intent');

    // Control: the genuine completion pays it and teaches it the intent.
    const genuine = sessionEvent('checkout.session.completed');
    await cases.run('the genuine checkout.session.completed', () => it.sendWebhook(base, genuine.payload, secret), (res) =>
      (res.json?.outcome === 'applied' && res.json?.status === 'PAID' ? [] : [`answer ${res.status} ${res.text}`]), { changes: true });
    const [paid] = await ctx.db.query('SELECT status, provider_intent_id FROM invoices WHERE id = $1', [inv.id]);
    assert.equal(paid.status, 'PAID');
    assert.equal(paid.provider_intent_id, JSON.parse(genuine.payload).data.object.payment_intent);
    it.assertNoProblems(cases.problems, 'checkout webhook checks');
  });
});
