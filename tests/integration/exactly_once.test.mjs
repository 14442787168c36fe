// Exactly once under a concurrent burst: 1,000 invoices, 10,000 webhook
// deliveries (mixed histories, 10% re-deliveries, shuffled) from 64
// keep-alive connections at once. Afterwards every invoice is in the state its
// history implies, each event id is recorded once, each `applied` event left
// exactly one outbox row, every delivery got 200, and the writer batched
// (billing_commit_batch_size_mean > 1.5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as it from './lib.mjs';

const INVOICES = Number(process.env.BILLING_IT_INVOICES ?? 1000);
const DELIVERIES = Number(process.env.BILLING_IT_DELIVERIES ?? 10_000);
const CONCURRENCY = 64;

test(`exactly once: ${DELIVERIES} concurrent webhook deliveries over ${INVOICES} invoices`, { timeout: 540_000 }, async () => {
  await it.withService('exactly_once', {}, async (ctx) => {
    const r = it.rng(it.seedFor('exactly_once'));
    const svc = await ctx.start();
    const ag = it.agent(CONCURRENCY);

    let t = Date.now();
    const invoices = await it.createInvoices(svc.base, INVOICES, r, { tag: 'eo', concurrency: 16, ag });
    console.log(`created ${invoices.length} invoices in ${Date.now() - t} ms`);

    const w = it.makeWorkload(r, invoices, DELIVERIES);
    const before = await it.metrics(svc.base);
    t = Date.now();
    const results = await it.burst(svc.base, w.deliveries, ctx.secrets.webhookSecret, { concurrency: CONCURRENCY, ag });
    const wall = (Date.now() - t) / 1000;
    const after = await it.metrics(svc.base);
    ag.destroy();
    const batches = after.billing_commit_batches_total - before.billing_commit_batches_total;
    const commands = after.billing_commit_commands_total - before.billing_commit_commands_total;
    console.log(`burst: ${DELIVERIES} deliveries (${w.events.length} distinct events) from ${CONCURRENCY} connections ` +
      `in ${wall.toFixed(2)} s = ${(DELIVERIES / wall).toFixed(0)} deliveries/s`);
    console.log(`answers: ${JSON.stringify(it.tally(results))}`);
    console.log(`group commit: billing_commit_batch_size_mean ${after.billing_commit_batch_size_mean}, ` +
      `max ${after.billing_commit_batch_size_max}, during the burst ${commands} commands in ${batches} transactions ` +
      `(mean ${(commands / Math.max(batches, 1)).toFixed(2)})`);

    const bad = results.map((x, i) => [x, i]).filter(([x]) => x?.status !== 200);
    assert.equal(bad.length, 0, `${bad.length} deliveries did not get 200, e.g. ` +
      bad.slice(0, 5).map(([x, i]) => `${w.deliveries[i].id}: ${x?.status} ${x?.error ?? ''}`).join('; '));

    const v = await it.verifyFinal(ctx.db, w);
    console.log(`recorded outcomes: ${JSON.stringify(v.outcomes)}`);
    it.assertNoProblems(v.problems, 'database after the burst');
    const pairs = w.deliveries.map((ev, i) => ({ ev, res: results[i] }));
    it.assertNoProblems(it.verifyAnswers(pairs, v.recorded, { exact: true }), 'webhook answers');

    assert.ok(after.billing_commit_batch_size_mean > 1.5,
      `group commit did not batch: billing_commit_batch_size_mean = ${after.billing_commit_batch_size_mean} (want > 1.5)`);

    const stopped = await svc.stop('SIGTERM');
    assert.deepEqual(stopped, { code: 0, signal: null }, `billingd did not exit 0 on SIGTERM: ${JSON.stringify(stopped)}`);
  });
});
