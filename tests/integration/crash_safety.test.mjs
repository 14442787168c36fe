// Crash safety: a burst of 3,000 deliveries over 300 invoices; billingd is
// SIGKILLed once ~40% have been answered, restarted on the same database, and
// every delivery is sent again. Afterwards: final states as the histories
// imply, each event recorded once, exactly one outbox row per applied event
// (no doubles from the replay), and every delivery answered 200 before the
// kill is in webhook_events (a 2xx is durable).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as it from './lib.mjs';

const INVOICES = Number(process.env.BILLING_IT_INVOICES ?? 300);
const DELIVERIES = Number(process.env.BILLING_IT_DELIVERIES ?? 3000);
const CONCURRENCY = 64;
const KILL_AT = Math.round(DELIVERIES * 0.4);

test('crash safety: SIGKILL mid-burst, restart, replay everything', { timeout: 540_000 }, async () => {
  await it.withService('crash_safety', {}, async (ctx) => {
    const r = it.rng(it.seedFor('crash_safety'));
    let svc = await ctx.start();
    const invoices = await it.createInvoices(svc.base, INVOICES, r, { tag: 'cs', concurrency: 16 });
    const w = it.makeWorkload(r, invoices, DELIVERIES);

    // Phase 1: the burst, killed after KILL_AT answers.
    let answered = 0;
    let killed = false;
    const t0 = Date.now();
    const first = await it.burst(svc.base, w.deliveries, ctx.secrets.webhookSecret, {
      concurrency: CONCURRENCY,
      stop: () => killed,
      onResult: (res, i, ev) => {
        if (killed) return;
        if (++answered >= KILL_AT) {
          killed = true;
          svc.proc.kill('SIGKILL');
        }
      },
    });
    const exit = await svc.exited;
    // Every 200 of phase 1, including any that was on the wire when the kill landed.
    const okBeforeKill = w.deliveries.map((ev, i) => ({ ev, res: first[i] })).filter((p) => p.res?.status === 200);
    assert.equal(exit.signal, 'SIGKILL', `billingd should have died of SIGKILL: ${JSON.stringify(exit)}`);
    console.log(`phase 1: killed billingd after ${answered} answers (${Date.now() - t0} ms); ` +
      `${okBeforeKill.length} answered 200 before the kill; answers ${JSON.stringify(it.tally(first))}`);
    const lost = first.filter((x) => x && x.status !== 200 && x.status !== 0);
    assert.equal(lost.length, 0, `before the kill, deliveries got non-200 answers: ${lost.slice(0, 5).map((x) => `${x.status} ${x.error}`).join('; ')}`);

    // Durability of 2xx: checked right after the crash, before any replay.
    const afterCrash = await ctx.db.webhookEvents();
    const missing = okBeforeKill.filter(({ ev }) => !afterCrash.has(ev.id));
    assert.equal(missing.length, 0, `${missing.length} deliveries answered 200 before the SIGKILL are not in webhook_events, e.g. ` +
      missing.slice(0, 5).map(({ ev, res }) => `${ev.id} (${res.outcome})`).join(', '));
    for (const { ev, res } of okBeforeKill) {
      const rec = afterCrash.get(ev.id);
      if (res.outcome !== 'ignored-duplicate')
        assert.equal(rec.outcome, res.outcome, `event ${ev.id} answered ${res.outcome} but recorded ${rec.outcome}`);
    }
    const counts = await ctx.db.counts();
    const answeredIds = new Set(okBeforeKill.map(({ ev }) => ev.id));
    const silent = [...afterCrash.keys()].filter((id) => !answeredIds.has(id)).length;
    console.log(`after the crash: ${JSON.stringify(counts)}; ${silent} event(s) committed but not answered 200 before the kill`);

    // Phase 2: restart on the same database and replay every delivery.
    svc = await ctx.start();
    const t1 = Date.now();
    const second = await it.burst(svc.base, w.deliveries, ctx.secrets.webhookSecret, { concurrency: CONCURRENCY });
    const wall = (Date.now() - t1) / 1000;
    console.log(`phase 2: replayed ${DELIVERIES} deliveries in ${wall.toFixed(2)} s (${(DELIVERIES / wall).toFixed(0)}/s); ` +
      `answers ${JSON.stringify(it.tally(second))}`);
    const bad = second.filter((x) => x?.status !== 200);
    assert.equal(bad.length, 0, `${bad.length} replayed deliveries did not get 200, e.g. ${bad.slice(0, 5).map((x) => `${x?.status} ${x?.error}`).join('; ')}`);

    const v = await it.verifyFinal(ctx.db, w);
    console.log(`recorded outcomes: ${JSON.stringify(v.outcomes)}`);
    it.assertNoProblems(v.problems, 'database after crash and replay');
    const pairs = [
      ...okBeforeKill,
      ...w.deliveries.map((ev, i) => ({ ev, res: second[i] })),
    ];
    it.assertNoProblems(it.verifyAnswers(pairs, v.recorded, { exact: false }), 'webhook answers');

    const stopped = await svc.stop('SIGTERM');
    assert.deepEqual(stopped, { code: 0, signal: null }, `billingd did not exit 0 on SIGTERM: ${JSON.stringify(stopped)}`);
  });
});

// SIGTERM in the middle of a burst: billingd stops accepting, answers what is
// in flight, flushes the last batch and exits 0; every 200 it gave is durable;
// a restart and a replay then converge as above.
test('graceful shutdown: SIGTERM mid-burst exits 0 and keeps every 2xx', { timeout: 300_000 }, async () => {
  await it.withService('crash_sigterm', {}, async (ctx) => {
    const r = it.rng(it.seedFor('crash_sigterm'));
    let svc = await ctx.start();
    const invoices = await it.createInvoices(svc.base, 100, r, { tag: 'st', concurrency: 16 });
    const w = it.makeWorkload(r, invoices, 1000);
    let answered = 0;
    let stopping = null;
    const first = await it.burst(svc.base, w.deliveries, ctx.secrets.webhookSecret, {
      concurrency: CONCURRENCY,
      stop: () => stopping !== null,
      onResult: () => {
        if (++answered === 400) stopping = svc.stop('SIGTERM');
      },
    });
    const exit = await stopping;
    console.log(`SIGTERM after 400 answers: exit ${JSON.stringify(exit)}; answers ${JSON.stringify(it.tally(first))}`);
    assert.deepEqual(exit, { code: 0, signal: null }, `billingd did not exit 0 on SIGTERM under load:\n${svc.logTail()}`);
    const recorded = await ctx.db.webhookEvents();
    const ok = w.deliveries.map((ev, i) => ({ ev, res: first[i] })).filter((p) => p.res?.status === 200);
    const missing = ok.filter(({ ev }) => !recorded.has(ev.id));
    assert.equal(missing.length, 0, `${missing.length} deliveries answered 200 before/while shutting down are not in webhook_events`);

    svc = await ctx.start();
    const second = await it.burst(svc.base, w.deliveries, ctx.secrets.webhookSecret, { concurrency: CONCURRENCY });
    const bad = second.filter((x) => x?.status !== 200);
    assert.equal(bad.length, 0, `${bad.length} replayed deliveries did not get 200`);
    const v = await it.verifyFinal(ctx.db, w);
    it.assertNoProblems(v.problems, 'database after SIGTERM and replay');
    it.assertNoProblems(it.verifyAnswers([...ok, ...w.deliveries.map((ev, i) => ({ ev, res: second[i] }))], v.recorded, { exact: false }), 'webhook answers');
    assert.deepEqual(await svc.stop('SIGTERM'), { code: 0, signal: null });
  });
});
