// Integration (label integration): kill -9 billingd in the middle of
// delivering 1,000 signals to the fake Temporal frontend, restart it: every
// signal is delivered, none under two request ids. Then the commit-to-signal
// latency under a burst of 1,000 invoices paid through webhooks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createInvoices, rng, seedFor, sleep, withService } from '../integration/lib.mjs';
import { RemoteFakeTemporal } from './fake_temporal.mjs';
import { allDelivered, checkSignals, outboxRows, payThroughWebhooks, requestIdFor, simpleSteps, summary,
  temporalArgs, waitOutbox } from './bridge_lib.mjs';

const N = 1000;

test('kill -9 while delivering 1,000 signals; after a restart every signal is delivered', async () => {
  const r = rng(seedFor('bridge_crash'));
  const fake = await new RemoteFakeTemporal().start();
  // Slow enough that the kill lands mid-delivery: 8 in flight, 25 ms each.
  const args = temporalArgs(fake, ['--bridge-concurrency=8']);
  try {
    await withService('bridge_crash', { args }, async (ctx) => {
      let svc = await ctx.start();
      // Commit all 1,000 transitions while the frontend refuses everything,
      // so the whole backlog is in the outbox when delivery starts.
      await fake.set({ failNext: 1e9 });
      const invoices = await createInvoices(svc.base, N, r, { tag: 'crash', concurrency: 32 });
      await payThroughWebhooks(svc.base, r, ctx.secrets.webhookSecret, simpleSteps(invoices), { concurrency: 64 });
      assert.equal((await outboxRows(ctx.db)).length, N);
      await fake.set({ failNext: 0, delayMs: 25 });
      await fake.waitFor(() => fake.distinct() >= 300, 60_000, '300 signals delivered');
      svc.proc.kill('SIGKILL');
      const { signal } = await svc.exited;
      assert.equal(signal, 'SIGKILL');
      const atKill = await outboxRows(ctx.db);
      const deliveredAtKill = atKill.filter((x) => x.delivered).length;
      const received = fake.distinct();
      console.log(`killed: ${received} distinct signals received, ${deliveredAtKill} rows marked delivered`);
      assert.ok(deliveredAtKill < N, 'the kill landed before the end');

      await fake.set({ delayMs: 0 });
      svc = await ctx.start();
      const rows = await waitOutbox(ctx.db, allDelivered(N), 120_000, 'all 1,000 delivered after the restart');
      await fake.waitFor(() => fake.distinct() === N, 10_000, '1,000 distinct signals');
      assert.deepEqual(checkSignals(rows, fake.records), []);
      assert.deepEqual(fake.problems, []);
      // Nothing delivered twice with different request ids: one id per
      // (workflow, signal, payload), and that id is the row's.
      const ids = new Map();
      for (const rec of fake.records) {
        const key = JSON.stringify([rec.workflowId, rec.signalName, rec.data]);
        if (!ids.has(key)) ids.set(key, new Set());
        ids.get(key).add(rec.requestId);
      }
      assert.equal(ids.size, N);
      for (const [key, set] of ids) assert.equal(set.size, 1, `${key} arrived under ${set.size} request ids`);
      for (const row of rows) assert.ok(ids.get(JSON.stringify([row.workflow_id, row.signal, row.payload]))?.has(requestIdFor(row.id, row.invoice_id)));
      console.log(`after restart: ${fake.records.length} signals received for ${N} rows ` +
        `(${fake.records.length - N} repeats, all with the row's request id)`);
    });
  } finally {
    await fake.stop();
  }
});

test('commit-to-signal latency under a burst of 1,000 invoices paid through webhooks', async () => {
  const r = rng(seedFor('bridge_latency'));
  const fake = await new RemoteFakeTemporal().start();
  try {
    await withService('bridge_latency', { args: temporalArgs(fake, ['--bridge-timeout-ms=10000']) }, async (ctx) => {
      const svc = await ctx.start();
      // Unloaded: 50 payments one after another, after 10 to warm up (the
      // first gRPC calls and the fake's JIT cost ~100 ms each).
      const quiet = await createInvoices(svc.base, 60, r, { tag: 'quiet' });
      const quietAnswers = [];
      for (const inv of quiet) {
        const [a] = await payThroughWebhooks(svc.base, r, ctx.secrets.webhookSecret, simpleSteps([inv]));
        await fake.waitFor(() => fake.records.some((rec) => rec.data.invoice_id === inv.id), 10_000, 'the signal');
        quietAnswers.push(a);
      }
      quietAnswers.splice(0, 10);
      const quietIds = new Set(quietAnswers.map((a) => a.invoice));
      const quietRows = (await waitOutbox(ctx.db, allDelivered(60), 10_000, 'quiet rows delivered'))
        .filter((x) => quietIds.has(x.invoice_id));
      const quietAt = new Map(fake.records.map((rec) => [rec.data.invoice_id, rec.at]));
      console.log('one at a time: commit-to-signal, database clock (ms):', summary(quietRows.map((x) => x.latency_ms)));
      console.log('one at a time: webhook answered -> signal received (ms):',
        summary(quietAnswers.map((a) => quietAt.get(a.invoice) - a.answeredAt)));

      const invoices = await createInvoices(svc.base, N, r, { tag: 'lat', concurrency: 32 });
      await sleep(500);
      const t0 = Date.now();
      const answers = await payThroughWebhooks(svc.base, r, ctx.secrets.webhookSecret, simpleSteps(invoices), { concurrency: 64 });
      const burstMs = Date.now() - t0;
      const all = await waitOutbox(ctx.db, allDelivered(N + 60), 60_000, 'all delivered');
      await fake.waitFor(() => fake.distinct() === N + 60, 10_000, '1,060 distinct signals');
      assert.deepEqual(checkSignals(all, fake.records), []);
      const burstIds = new Set(invoices.map((inv) => inv.id));
      const rows = all.filter((x) => burstIds.has(x.invoice_id));
      // Database clock: outbox row inserted (in the commit) -> delivery recorded.
      const db = summary(rows.map((x) => x.latency_ms));
      // Outside view: webhook answered 200 (after the commit) -> the frontend received the signal.
      const firstAt = new Map();
      for (const rec of fake.records) if (!firstAt.has(rec.data.invoice_id)) firstAt.set(rec.data.invoice_id, rec.at);
      const outside = summary(answers.map((a) => firstAt.get(a.invoice) - a.answeredAt));
      console.log(`burst: ${N} webhooks in ${burstMs} ms (${Math.round(N / (burstMs / 1000))}/s), 64 concurrent`);
      console.log('commit-to-signal, database clock (ms):', db);
      console.log('webhook answered -> signal received (ms):', outside);
      assert.ok(db.p99 < 10_000, `p99 ${db.p99} ms`);
    });
  } finally {
    await fake.stop();
  }
});
