// Database outage: billingd runs against a private PostgreSQL cluster that is
// stopped in the middle of a webhook burst. While it is down every webhook
// gets 503 with Retry-After (never 200), billingd stays up (/healthz 200) and
// reports itself not ready (/readyz 503). PostgreSQL is started again (same
// directory, same port); every delivery that did not get 200 is re-sent until
// it does (bounded). Then every invoice is in the state its history implies,
// each event is recorded once with one outbox row per applied event, and no
// event answered 200 at any time is missing from webhook_events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as it from './lib.mjs';

const INVOICES = Number(process.env.BILLING_IT_INVOICES ?? 200);
const DELIVERIES = Number(process.env.BILLING_IT_DELIVERIES ?? 2000);
const CONCURRENCY = 32;
const STOP_AT = Math.round(DELIVERIES * 0.25); // answers before PostgreSQL is stopped
const PHASE1 = Math.round(DELIVERIES * 0.6);   // deliveries sent around the stop
const PROBES = 200;                             // fresh deliveries sent while it is down
const MAX_ROUNDS = 30;

test('database outage: 503 + Retry-After while PostgreSQL is down, full recovery after', { timeout: 540_000 }, async () => {
  const env = it.requireEnv();
  const r = it.rng(it.seedFor('database_outage'));
  const dir = it.tempDir('billing-it-outage-');
  const port = await it.freePort();
  let svc;
  let db;
  let failed = true;
  try {
    const url = await it.pgScript(env.repo, 'start', dir, String(port));
    console.log(`private cluster in ${dir} on port ${port}: ${url}`);
    const opts = { dbUrl: url, ...it.newSecrets() };
    it.migrate(env.billingd, opts);
    svc = await it.startBillingd(env.billingd, opts, { name: 'billingd (outage)' });

    const invoices = await it.createInvoices(svc.base, INVOICES, r, { tag: 'do', concurrency: 16 });
    const w = it.makeWorkload(r, invoices, DELIVERIES);
    const status = new Array(w.deliveries.length); // last answer per delivery
    const everOk = new Map(); // event id -> outcome of a 200 answer
    const record = (i, res) => {
      status[i] = res;
      if (res.status === 200) everOk.set(w.deliveries[i].id, res.outcome);
    };

    // Phase 1: a burst; PostgreSQL is stopped once STOP_AT answers came back.
    let answered = 0;
    let stopping = null;
    let stopDoneAt = Infinity;
    const phase1 = w.deliveries.slice(0, PHASE1);
    const t0 = Date.now();
    const res1 = await it.burst(svc.base, phase1, opts.webhookSecret, {
      concurrency: CONCURRENCY,
      onResult: (res) => {
        if (++answered === STOP_AT)
          stopping = it.pgScript(env.repo, 'stop', dir).then(() => {
            stopDoneAt = Date.now();
          });
      },
    });
    res1.forEach((res, i) => record(i, res));
    assert.ok(stopping, 'the stop was triggered');
    await stopping;
    console.log(`phase 1: ${PHASE1} deliveries in ${Date.now() - t0} ms, PostgreSQL stopped after ${STOP_AT} answers ` +
      `(stop finished at +${stopDoneAt - t0} ms); answers ${JSON.stringify(it.tally(res1))}`);
    const wrong1 = res1.filter((x) => x.status !== 200 && x.status !== 503);
    assert.equal(wrong1.length, 0, `phase 1 answers other than 200/503: ${wrong1.slice(0, 5).map((x) => `${x.status} ${x.error}`).join('; ')}`);
    const lateOk = res1.filter((x) => x.sentAt > stopDoneAt && x.status === 200);
    assert.equal(lateOk.length, 0, `${lateOk.length} webhooks sent after PostgreSQL had stopped were answered 200`);
    for (const x of res1.filter((x) => x.status === 503))
      assert.ok(x.retryAfter, `a 503 without Retry-After: ${x.error}`);

    // Phase 2: PostgreSQL is down. Fresh events only: none can be durable.
    const sentIds = new Set(phase1.map((e) => e.id));
    const probeIdx = [];
    for (let i = PHASE1; i < w.deliveries.length && probeIdx.length < PROBES; ++i)
      if (!sentIds.has(w.deliveries[i].id)) probeIdx.push(i);
    const res2 = await it.burst(svc.base, probeIdx.map((i) => w.deliveries[i]), opts.webhookSecret, { concurrency: CONCURRENCY });
    res2.forEach((res, k) => record(probeIdx[k], res));
    console.log(`phase 2 (database down): ${probeIdx.length} fresh deliveries; answers ${JSON.stringify(it.tally(res2))}`);
    const notRefused = res2.filter((x) => x.status !== 503 || !x.retryAfter);
    assert.equal(notRefused.length, 0, `while PostgreSQL was down, webhooks must get 503 + Retry-After; got ` +
      notRefused.slice(0, 5).map((x) => `${x.status} retry-after=${x.retryAfter} ${x.outcome ?? x.error ?? ''}`).join('; '));

    // The client learns that it should retry, not what PostgreSQL or libpqxx said.
    const leaky = res2.filter((x) => {
      let e;
      try { e = JSON.parse(x.error).error; } catch { return true; }
      return typeof e?.request_id !== 'string' || /pqxx|postgres|connection|socket|caf|sec::|errno/i.test(e?.message ?? '');
    });
    assert.equal(leaky.length, 0, `503 bodies must carry a request id and no library text: ${leaky.slice(0, 3).map((x) => x.error).join(' | ')}`);

    const health = await it.request(`${svc.base}/healthz`);
    assert.equal(health.status, 200, `GET /healthz while the database is down: ${health.status} ${health.text ?? health.error}`);
    let ready;
    for (let k = 0; k < 30; ++k) {
      ready = await it.request(`${svc.base}/readyz`);
      if (ready.status === 503) break;
      await it.sleep(500);
    }
    assert.equal(ready.status, 503, `GET /readyz while the database is down: ${ready.status} ${ready.text ?? ready.error}`);
    assert.equal(svc.proc.exitCode, null, `billingd exited while the database was down:\n${svc.logTail()}`);

    // Phase 3: PostgreSQL back (same directory, same port); re-send what is owed.
    await it.pgScript(env.repo, 'start', dir, String(port));
    const t3 = Date.now();
    // Durability of every 200 given so far, checked before anything is re-sent.
    db = await new it.Db(url).open();
    const early = await db.webhookEvents();
    const lostEarly = [...everOk].filter(([id]) => !early.has(id));
    assert.equal(lostEarly.length, 0, `${lostEarly.length} events answered 200 around the outage are not in webhook_events: ` +
      lostEarly.slice(0, 5).map(([id, o]) => `${id} (${o})`).join(', '));
    for (const [id, o] of everOk)
      if (o !== 'ignored-duplicate') assert.equal(early.get(id).outcome, o, `event ${id} answered ${o}, recorded ${early.get(id).outcome}`);
    let rounds = 0;
    for (; rounds < MAX_ROUNDS; ++rounds) {
      const owed = [];
      for (let i = 0; i < w.deliveries.length; ++i) if (status[i]?.status !== 200) owed.push(i);
      if (!owed.length) break;
      const res3 = await it.burst(svc.base, owed.map((i) => w.deliveries[i]), opts.webhookSecret, { concurrency: CONCURRENCY });
      res3.forEach((res, k) => record(owed[k], res));
      const wrong = res3.filter((x) => x.status !== 200 && x.status !== 503);
      assert.equal(wrong.length, 0, `after the restart, answers other than 200/503: ${wrong.slice(0, 5).map((x) => `${x.status} ${x.error}`).join('; ')}`);
      console.log(`phase 3 round ${rounds + 1}: re-sent ${owed.length}; answers ${JSON.stringify(it.tally(res3))}`);
      const wait = Math.max(...res3.filter((x) => x.status === 503).map((x) => Number(x.retryAfter) || 1), 0);
      if (wait) await it.sleep(wait * 1000);
    }
    const owed = status.filter((x) => x?.status !== 200).length;
    assert.equal(owed, 0, `${owed} deliveries still not answered 200 after ${MAX_ROUNDS} rounds (${(Date.now() - t3) / 1000} s) since PostgreSQL came back:\n${svc.logTail()}`);
    console.log(`recovered: every delivery answered 200 within ${rounds} round(s), ${Date.now() - t3} ms after the restart`);
    ready = await it.request(`${svc.base}/readyz`);
    assert.equal(ready.status, 200, `GET /readyz after recovery: ${ready.status} ${ready.text}`);

    const v = await it.verifyFinal(db, w);
    console.log(`recorded outcomes: ${JSON.stringify(v.outcomes)}`);
    const missing = [...everOk.keys()].filter((id) => !v.recorded.has(id));
    assert.equal(missing.length, 0, `${missing.length} events answered 200 are missing from webhook_events: ${missing.slice(0, 5).join(', ')}`);
    it.assertNoProblems(v.problems, 'database after the outage');

    const stopped = await svc.stop('SIGTERM');
    assert.deepEqual(stopped, { code: 0, signal: null }, `billingd did not exit 0 on SIGTERM: ${JSON.stringify(stopped)}`);
    failed = false;
  } finally {
    if (svc && failed) console.log(`--- billingd log tail (full log ${svc.saveLog('database_outage')}) ---\n${svc.logTail(40)}`);
    if (svc && svc.proc.exitCode === null && svc.proc.signalCode === null) {
      svc.proc.kill('SIGKILL');
      await svc.exited;
    }
    if (db) await db.close();
    await it.pgScript(env.repo, 'stop', dir).catch((e) => console.log(e.message));
    if (!failed) it.removeDir(dir);
    else console.log(`cluster directory kept for inspection: ${dir}`);
  }
});
