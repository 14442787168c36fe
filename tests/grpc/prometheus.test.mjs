// /metrics as operators read it (label interop): `promtool check metrics`
// (Debian's prometheus package) accepts billingd's real exposition, and a
// real Prometheus, scraping the admin listener every second, sees the
// request counters and latency histograms move during a burst of gRPC and
// HTTP calls.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { billingClient, unary } from './grpc_lib.mjs';
import { freePort, pool, removeDir, request, setup, sleep, tempDir } from '../integration/lib.mjs';

let ctx, svc, client, dir, prom;

before(async () => {
  ctx = await setup('prom');
  svc = await ctx.start();
  client = billingClient(svc.grpcAddress);
  dir = tempDir('billing-prom-');
});
after(async () => {
  client?.close();
  if (prom && prom.exitCode === null) {
    prom.kill('SIGTERM');
    await new Promise((r) => prom.once('exit', r));
  }
  if (dir) removeDir(dir);
  await ctx?.cleanup(false);
});

const tag = Math.random().toString(36).slice(2, 8);
let n = 0;
const body = () => {
  n += 1;
  return { shipment_id: `shp_p_${tag}_${n}`, user_id: 'usr_p', workflow_id: `wf_p_${tag}_${n}`, amount_cents: 500 + n, currency: 'usd' };
};

async function traffic(count) {
  await pool(Array.from({ length: count }, (_, i) => i), 8, async (i) => {
    if (i % 2 === 0) {
      const r = await unary(client, 'CreateInvoice', body(), { key: ctx.secrets.apiKey });
      assert.equal(r.code, 0, r.details);
    } else {
      const r = await request(`${svc.base}/v1/invoices`, { method: 'POST', body: body() });
      assert.equal(r.status, 201, r.text);
    }
  });
}

test('promtool check metrics accepts the real exposition', async () => {
  await traffic(20);
  await request(`${svc.base}/v1/invoices/not-a-uuid`); // a 4xx series too
  const r = await request(`${svc.admin}/metrics`);
  assert.equal(r.status, 200);
  const file = path.join(dir, 'metrics.txt');
  writeFileSync(file, r.text);
  const check = spawnSync('promtool', ['check', 'metrics'], { input: r.text, encoding: 'utf8' });
  assert.equal(check.error, undefined, `promtool: ${check.error?.message} (install the Debian package prometheus)`);
  assert.equal(check.status, 0, `promtool check metrics (${file}):\n${check.stdout}${check.stderr}`);
  for (const name of ['billing_http_request_duration_seconds_bucket', 'billing_grpc_request_duration_seconds_bucket',
    'billing_webhook_events_total', 'billing_api_rate_limited_total'])
    assert.ok(r.text.includes(`# TYPE ${name.replace(/_bucket$/, '')} `), `${name} is exposed`);
});

async function query(base, q) {
  const r = await request(`${base}/api/v1/query?query=${encodeURIComponent(q)}`, { auth: null });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 'success');
  return r.json.data.result;
}

async function valueOf(base, q) {
  const res = await query(base, q);
  return res.length ? Number(res[0].value[1]) : undefined;
}

async function until(what, fn, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`prometheus: ${what} not seen within ${timeoutMs} ms`);
    await sleep(250);
  }
}

test('a real Prometheus scraping the admin listener sees the counters move during a burst', async () => {
  const port = await freePort();
  const adminPort = new URL(svc.admin).port;
  const config = path.join(dir, 'prometheus.yml');
  writeFileSync(config, [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 900ms',
    'scrape_configs:',
    '  - job_name: billingd',
    '    static_configs:',
    `      - targets: ['127.0.0.1:${adminPort}']`,
    '',
  ].join('\n'));
  const check = spawnSync('promtool', ['check', 'config', config], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  prom = spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'tsdb')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'inherit', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  await until('ready', async () => (await request(`${base}/-/ready`, { auth: null })).status === 200);
  await until('the billingd target up', async () => (await valueOf(base, 'up{job="billingd"}')) === 1);

  const grpcCount = 'sum(billing_grpc_request_duration_seconds_count{job="billingd",method="CreateInvoice",code="OK"})';
  const httpCount = 'sum(billing_http_request_duration_seconds_count{job="billingd",route="/v1/invoices",method="POST",status_class="2xx"})';
  const before = {
    grpc: await until('the gRPC series', async () => valueOf(base, grpcCount).then((v) => (v === undefined ? 0 : v + 1))) - 1,
    http: (await valueOf(base, httpCount)) ?? 0,
  };
  // The burst: 200 creates, half over gRPC, half over HTTP.
  await traffic(200);
  const after = await until('the burst in the scraped counters', async () => {
    const g = await valueOf(base, grpcCount);
    const h = await valueOf(base, httpCount);
    return g >= before.grpc + 100 && h >= before.http + 100 ? { g, h } : null;
  });
  console.log(`prometheus saw CreateInvoice OK ${before.grpc} -> ${after.g} (gRPC), POST /v1/invoices 2xx ${before.http} -> ${after.h} (HTTP)`);
  const p99 = await valueOf(base,
    'histogram_quantile(0.99, sum by (le) (rate(billing_grpc_request_duration_seconds_bucket{job="billingd",method="CreateInvoice"}[30s])))');
  assert.ok(Number.isFinite(p99) && p99 > 0, `a p99 from the histogram: ${p99}`);
  console.log(`prometheus: CreateInvoice p99 over 30 s: ${(p99 * 1000).toFixed(1)} ms`);
});
