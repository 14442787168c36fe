// Interop (label interop): billingd's Temporal sink against a fake
// WorkflowService built from Temporal's published protobufs
// (@temporalio/proto) served by @grpc/grpc-js. Real billingd, real
// PostgreSQL, transitions driven by signed Stripe-format webhooks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInvoices, metrics, removeDir, rng, seedFor, tempDir, withService } from '../integration/lib.mjs';
import { RemoteFakeTemporal, temporal } from './fake_temporal.mjs';
import { allDelivered, checkSignals, DEFAULT_NAMES, outboxRetry, payThroughWebhooks, simpleSteps, summary,
  temporalArgs, twoStepSteps, waitOutbox } from './bridge_lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.resolve(here, '../node/package.json'));

test('our protocol/temporal/*.proto subset has upstream names, numbers and types', async () => {
  const loader = require('@grpc/proto-loader');
  const protoDir = path.resolve(here, '../../protocol');
  const def = loader.loadSync(['temporal/api/workflowservice/v1/service.proto'], { includeDirs: [protoDir] });
  const root = require('@temporalio/proto/protos/root');
  const method = def['temporal.api.workflowservice.v1.WorkflowService'].SignalWorkflowExecution;
  assert.equal(method.path, '/temporal.api.workflowservice.v1.WorkflowService/SignalWorkflowExecution');
  const upstreamMethod = root.lookupService('temporal.api.workflowservice.v1.WorkflowService').methods.SignalWorkflowExecution;
  assert.equal(upstreamMethod.requestType, 'SignalWorkflowExecutionRequest');
  assert.equal(upstreamMethod.responseType, 'SignalWorkflowExecutionResponse');
  let compared = 0;
  for (const [name, entry] of Object.entries(def)) {
    if (entry.format !== 'Protocol Buffer 3 DescriptorProto' || name.endsWith('Entry')) continue;
    const upstream = root.lookupType(name);
    for (const f of entry.type.field) {
      const u = upstream.fieldsById[f.number];
      assert.ok(u, `${name}.${f.name} = ${f.number}: no such field number upstream`);
      // proto-loader keeps snake_case names; protobufjs camel-cases them.
      const camel = f.name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
      assert.equal(u.name, camel, `${name} field ${f.number}: ours ${f.name}, upstream ${u.name}`);
      const ours = f.typeName ? f.typeName.split('.').pop() : f.type.replace('TYPE_', '').toLowerCase();
      const theirs = u.map ? `${upstream.name}.${u.name}`.split('.').pop() : u.type.split('.').pop();
      if (!u.map) assert.equal(ours, theirs, `${name}.${f.name}: type ${ours}, upstream ${theirs}`);
      assert.equal(f.label === 'LABEL_REPEATED', u.repeated || u.map, `${name}.${f.name}: repeated/map differs`);
      compared++;
    }
  }
  assert.ok(compared >= 12, `compared only ${compared} fields`);
});

test('each transition reaches the workflow as exactly one distinct Temporal signal', async () => {
  const r = rng(seedFor('temporal_signals'));
  const fake = await new RemoteFakeTemporal({ namespace: 'billing-test' }).start();
  const names = { ...DEFAULT_NAMES, PaymentConfirmed: 'OrderPaid' };
  const args = temporalArgs(fake, ['--temporal-namespace=billing-test', '--temporal-api-key=test-api-key',
    '--signal-payment-confirmed=OrderPaid']);
  try {
    await withService('bridge_signals', { args }, async (ctx) => {
      const svc = await ctx.start();
      const invoices = await createInvoices(svc.base, 60, r, { tag: 'sig' });
      const steps = [
        ...simpleSteps(invoices.slice(0, 20), 'succeeded'),
        ...twoStepSteps(invoices.slice(20, 40)),
        ...simpleSteps(invoices.slice(40), 'canceled'),
      ];
      await payThroughWebhooks(svc.base, r, ctx.secrets.webhookSecret, steps);
      const rows = await waitOutbox(ctx.db, allDelivered(80), 30_000, '80 signals delivered');
      await fake.sync();
      assert.equal(rows.length, 80);
      await fake.waitFor(() => fake.distinct() === 80, 10_000, '80 distinct signals');
      assert.deepEqual(fake.problems, []);
      const problems = checkSignals(rows, fake.records, { names });
      assert.deepEqual(problems, []);
      for (const rec of fake.records) {
        assert.equal(rec.namespace, 'billing-test');
        assert.equal(rec.runId, '');
        assert.match(rec.identity, /^billingd@/);
        assert.equal(rec.authorization, 'Bearer test-api-key');
        assert.equal(rec.namespaceHeader, 'billing-test', 'temporal-namespace metadata on every call');
      }
      // Healthy receiver: no repeats at all.
      assert.equal(fake.records.length, 80, 'a healthy frontend got no repeats');
      const counts = {};
      for (const rec of fake.records) counts[rec.signalName] = (counts[rec.signalName] ?? 0) + 1;
      assert.deepEqual(counts, { OrderPaid: 40, PaymentFailed: 20, PaymentCancelled: 20 });
      const m = await metrics(svc.base);
      assert.equal(m['billing_bridge_delivered_total{sink="temporal",signal="OrderPaid"}'], 40);
      assert.equal(m['billing_bridge_delivered_total{sink="temporal",signal="PaymentFailed"}'], 20);
      assert.equal(m['billing_bridge_commit_to_signal_seconds_count{sink="temporal"}'], 80);
      console.log('commit-to-signal latency (ms, database clock):', summary(rows.map((x) => x.latency_ms)));
    });
  } finally {
    await fake.stop();
  }
});

test('NOT_FOUND kills the row (and holds back its successors); outbox retry re-drives them in order', async () => {
  const r = rng(seedFor('temporal_not_found'));
  const fake = await new RemoteFakeTemporal().start();
  try {
    await withService('bridge_notfound', { args: temporalArgs(fake) }, async (ctx) => {
      const svc = await ctx.start();
      const invoices = await createInvoices(svc.base, 6, r, { tag: 'gone' });
      const lost = invoices[0];
      await fake.set({ gone: [lost.workflow_id] });
      // The lost workflow gets failed -> succeeded: the first dies at once
      // (permanent), the second is held back behind it.
      await payThroughWebhooks(svc.base, r, ctx.secrets.webhookSecret,
        [...twoStepSteps([lost]), ...simpleSteps(invoices.slice(1))]);
      let rows = await waitOutbox(ctx.db, (xs) => xs.length === 7 && xs.every((x) => x.delivered || x.dead), 20_000,
        'all settled');
      await fake.sync();
      const dead = rows.filter((x) => x.dead);
      assert.deepEqual(dead.map((x) => x.signal), ['PaymentFailed', 'PaymentConfirmed']);
      assert.match(dead[0].last_error, /permanent: temporal NOT_FOUND/);
      assert.equal(dead[0].attempts, 1, 'a permanent failure is not retried');
      assert.match(dead[1].last_error, new RegExp(`held back: an earlier signal of this invoice is dead \\(outbox id ${dead[0].id}\\)`));
      assert.deepEqual(checkSignals(rows, fake.records, { requireAll: false }), []);
      // Without an API key too, every call names its namespace (the NOT_FOUND ones included).
      assert.deepEqual(fake.problems, []);
      for (const rec of fake.records) assert.equal(rec.namespaceHeader, rec.namespace);
      await new Promise((res) => setTimeout(res, 5_500)); // the gauges refresh every 5 s
      let m = await metrics(svc.base);
      assert.equal(m['billing_bridge_dead_total{sink="temporal",signal="PaymentFailed"}'], 1);
      assert.equal(m['billing_bridge_dead_rows{sink="temporal"}'], 2);
      assert.equal(m['billing_bridge_held_back_total{sink="temporal"}'], 1);

      // The workflow exists again: re-drive the first dead row; its held-back
      // successor comes along, and they arrive in order.
      await fake.set({ gone: [] });
      const out = outboxRetry(ctx.env.billingd, ctx.opts, ['--id', String(dead[0].id)]);
      assert.match(out, /re-drove 2 dead outbox row\(s\)/);
      rows = await waitOutbox(ctx.db, allDelivered(7), 20_000, 're-driven rows delivered');
      await fake.sync();
      assert.deepEqual(checkSignals(rows, fake.records), []);
      const lostSignals = fake.records.filter((x) => x.workflowId === lost.workflow_id).map((x) => x.signalName);
      assert.deepEqual(lostSignals, ['PaymentFailed', 'PaymentConfirmed']);
      await new Promise((res) => setTimeout(res, 5_500));
      m = await metrics(svc.base);
      assert.equal(m['billing_bridge_dead_rows{sink="temporal"}'], 0);
      assert.equal(m['billing_bridge_backlog{sink="temporal"}'], 0);
    });
  } finally {
    await fake.stop();
  }
});

test('TLS with a custom CA and an API key, as for Temporal Cloud', async () => {
  const r = rng(seedFor('temporal_tls'));
  const dir = tempDir('bridge-tls-');
  try {
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert], { encoding: 'utf8' });
    assert.equal(gen.status, 0, gen.stderr);
    const fake = await new RemoteFakeTemporal({ tls: { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') } }).start();
    try {
      const args = ['--sink=temporal', `--temporal-address=localhost:${fake.port}`, '--temporal-tls=true',
        `--temporal-tls-ca-path=${cert}`, '--bridge-timeout-ms=2000', '--bridge-retry-min-ms=100', '--bridge-retry-max-ms=500'];
      await withService('bridge_tls', { args, env: { BILLING_TEMPORAL_API_KEY: 'cloud-key-123' } }, async (ctx) => {
        const svc = await ctx.start();
        const invoices = await createInvoices(svc.base, 5, r, { tag: 'tls' });
        await payThroughWebhooks(svc.base, r, ctx.secrets.webhookSecret, simpleSteps(invoices));
        const rows = await waitOutbox(ctx.db, allDelivered(5), 30_000, 'delivered over TLS');
        await fake.sync();
        assert.deepEqual(checkSignals(rows, fake.records), []);
        for (const rec of fake.records) assert.equal(rec.authorization, 'Bearer cloud-key-123');
        // billingd config never prints the key.
        const cfg = spawnSync(ctx.env.billingd, ['config'], { env: { ...process.env, BILLING_DATABASE_URL: ctx.opts.dbUrl,
          BILLING_WEBHOOK_SECRETS: 'whsec_x', BILLING_SECRET_KEY: '00', BILLING_TEMPORAL_API_KEY: 'cloud-key-123' }, encoding: 'utf8' });
        assert.match(cfg.stdout, /temporal_api_key = \(redacted\)/);
        assert.doesNotMatch(cfg.stdout + svc.lines.join('\n'), /cloud-key-123/);
      });
    } finally {
      await fake.stop();
    }
  } finally {
    removeDir(dir);
  }
});

test('sink=none keeps signals in the outbox and shows them as backlog', async () => {
  const r = rng(seedFor('sink_none'));
  await withService('bridge_none', {}, async (ctx) => {
    const svc = await ctx.start();
    const invoices = await createInvoices(svc.base, 3, r, { tag: 'none' });
    await payThroughWebhooks(svc.base, r, ctx.secrets.webhookSecret, simpleSteps(invoices));
    await new Promise((res) => setTimeout(res, 5_500));
    const m = await metrics(svc.base);
    assert.equal(m['billing_bridge_backlog{sink="none"}'], 3);
    assert.ok(m['billing_bridge_oldest_undelivered_seconds{sink="none"}'] > 0);
    const [c] = await ctx.db.query('SELECT count(*)::int AS n FROM outbox WHERE delivered_at IS NULL');
    assert.equal(c.n, 3);
  });
});

// Keep the import used for readers: the fake's types are Temporal's own.
assert.ok(temporal.temporal.api.workflowservice.v1.SignalWorkflowExecutionRequest);
