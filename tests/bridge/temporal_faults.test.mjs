// Interop (label interop): the fake Temporal frontend (Temporal's own
// protobufs, @grpc/grpc-js) fails the first K calls, is down for a while,
// then is slower than billingd's deadline. Everything is delivered once it
// recovers; repeats carry the same request id; per-invoice order holds;
// webhooks are answered 200 throughout (delivery never blocks the edges).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createInvoices, metrics, rng, seedFor, sleep, withService } from '../integration/lib.mjs';
import { RemoteFakeTemporal } from './fake_temporal.mjs';
import { allDelivered, checkSignals, outboxRows, payThroughWebhooks, simpleSteps, summary, temporalArgs,
  twoStepSteps, waitOutbox } from './bridge_lib.mjs';

test('fails first K calls, is down, is slow: every signal delivered once it recovers, never under two ids', async () => {
  const r = rng(seedFor('temporal_faults'));
  const fake = await new RemoteFakeTemporal().start();
  try {
    await withService('bridge_faults', { args: temporalArgs(fake) }, async (ctx) => {
      const svc = await ctx.start();
      const secret = ctx.secrets.webhookSecret;
      let expected = 0;

      // 1. The first K calls fail (UNAVAILABLE): retried with backoff.
      const K = 25;
      await fake.set({ failNext: K });
      const a = await createInvoices(svc.base, 40, r, { tag: 'k' });
      await payThroughWebhooks(svc.base, r, secret, [...simpleSteps(a.slice(0, 30)), ...twoStepSteps(a.slice(30))]);
      expected += 50;
      let rows = await waitOutbox(ctx.db, allDelivered(expected), 60_000, 'phase 1 (first K fail) delivered');
      await fake.sync();
      assert.deepEqual(checkSignals(rows, fake.records), []);
      assert.equal(fake.failed, K, 'the injected failures happened');
      console.log(`phase 1: ${K} calls failed, ${fake.records.length} signals received for ${expected} rows`);

      // 2. Down for a while: nothing arrives, webhooks still answer 200 at once.
      await fake.down();
      const b = await createInvoices(svc.base, 40, r, { tag: 'down' });
      const answers = await payThroughWebhooks(svc.base, r, secret, [...simpleSteps(b.slice(0, 30)), ...twoStepSteps(b.slice(30))]);
      expected += 50;
      const webhookMs = summary(answers.map((x) => x.answeredAt - x.sentAt));
      console.log('phase 2: webhook answer times while Temporal is down (ms):', webhookMs);
      assert.ok(webhookMs.p99 < 5_000, `webhooks slowed down while Temporal was down: ${JSON.stringify(webhookMs)}`);
      await sleep(3_000);
      rows = await outboxRows(ctx.db);
      assert.equal(rows.filter((x) => !x.delivered).length, 50, 'nothing delivered while down');
      const m = await metrics(svc.base);
      assert.ok(m['billing_bridge_retried_total{sink="temporal",signal="PaymentConfirmed"}'] > 0, 'retries are counted');
      await fake.up();
      rows = await waitOutbox(ctx.db, allDelivered(expected), 60_000, 'phase 2 (down) delivered after recovery');
      await fake.sync();
      assert.deepEqual(checkSignals(rows, fake.records), []);

      // 3. Slow: answers after billingd's 2 s deadline. The frontend applied
      // (recorded) the signal, billingd saw DEADLINE_EXCEEDED and repeats it
      // with the same request id until an answer arrives in time.
      await fake.set({ delayMs: 2_600 });
      const c = await createInvoices(svc.base, 20, r, { tag: 'slow' });
      await payThroughWebhooks(svc.base, r, secret, simpleSteps(c));
      expected += 20;
      await fake.waitFor(() => fake.records.filter((x) => c.some((inv) => inv.workflow_id === x.workflowId)).length >= 40,
        30_000, 'each slow signal sent at least twice');
      rows = await outboxRows(ctx.db);
      assert.equal(rows.filter((x) => !x.delivered).length, 20, 'a timed-out call is not marked delivered');
      await fake.set({ delayMs: 0 });
      rows = await waitOutbox(ctx.db, allDelivered(expected), 60_000, 'phase 3 (slow) delivered');
      await fake.sync();

      assert.deepEqual(checkSignals(rows, fake.records), []);
      assert.deepEqual(fake.problems, []);
      assert.equal(fake.distinct(), expected, 'one distinct request id per outbox row');
      const repeats = fake.records.length - fake.distinct();
      assert.ok(repeats >= 20, 'the slow phase produced repeats (same request id)');
      console.log(`total: ${expected} rows, ${fake.records.length} signals received, ${repeats} repeats (same request id), ` +
        `${fake.calls} calls, attempts per row ${JSON.stringify(summary(rows.map((x) => x.attempts)))}`);
    });
  } finally {
    await fake.stop();
  }
});
