// A signed webhook is authentic, not necessarily about our invoice. Each
// forgery below is signed with the real endpoint secret by Stripe's SDK and
// names our invoice in its metadata; each must be answered 200 (Stripe must
// not retry it), recorded as rejected-mismatch (so a re-delivery is a
// duplicate), logged with the invoice and event ids, counted in metrics, and
// change nothing else: no invoice row, no outbox row.
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
    it.assertNoProblems(cases.problems, 'webhook checks');
  });
});
