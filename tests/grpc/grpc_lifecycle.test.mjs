// The gRPC edge's lifecycle and what surrounds both edges (label interop):
// drain on SIGTERM (open streams end UNAVAILABLE, billingd exits 0), TLS on
// the API listeners with a certificate made now by the openssl CLI, and the
// JSON log of a full workload (HTTP and gRPC: create, simulator payment,
// webhooks, cancel) holding no secret: not the webhook secret, the sealing
// key, any API key, any client secret answered, nor a card field of the
// webhooks.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { billingClient, codeName, healthCheck, healthClient, status, unary, watch } from './grpc_lib.mjs';
import {
  eventBody, newApiKey, removeDir, request, rng, sendWebhook, setup, tempDir,
} from '../integration/lib.mjs';

let ctx;
before(async () => {
  ctx = await setup('grpc_life');
});
after(async () => {
  await ctx?.cleanup(false);
});

let n = 0;
const tag = Math.random().toString(36).slice(2, 8);
function createBody() {
  n += 1;
  return { shipment_id: `shp_l_${tag}_${n}`, user_id: 'usr_l', workflow_id: `wf_l_${tag}_${n}`, amount_cents: 990 + n, currency: 'eur' };
}

describe('the gRPC edge over its lifetime', () => {
  test('SIGTERM: open streams end UNAVAILABLE, billingd exits 0', async () => {
    const svc = await ctx.start();
    const client = billingClient(svc.grpcAddress);
    const key = ctx.secrets.apiKey;
    const created = await unary(client, 'CreateInvoice', createBody(), { key });
    assert.equal(created.code, 0, created.details);
    const h = healthClient(svc.grpcAddress);
    assert.equal((await healthCheck(h, '')).status, 'SERVING');
    const w = watch(client, created.value.invoice_id, { key });
    await w.until((m) => m.length >= 1, 10_000, 'the first message');
    svc.proc.kill('SIGTERM');
    const end = await w.ended;
    assert.equal(codeName(end.code), 'UNAVAILABLE', `the stream ends UNAVAILABLE: ${end.details}`);
    assert.match(end.details, /stopping/);
    const exit = await svc.exited;
    assert.equal(exit.code, 0, svc.logTail());
    client.close();
    h.close();
  });

  test('TLS on the HTTP and gRPC listeners, with a certificate made now', async () => {
    const dir = tempDir('billing-tls-');
    try {
      const cert = path.join(dir, 'cert.pem');
      const keyFile = path.join(dir, 'key.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', keyFile, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1',
        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'pipe' });
      const ca = readFileSync(cert);
      const svc = await ctx.start({ args: [`--tls-cert-path=${cert}`, `--tls-key-path=${keyFile}`] });
      assert.ok(svc.lines.some((l) => /billingd grpc listening on .* \(TLS/.test(l)), 'the gRPC line says TLS');
      assert.ok(svc.base.startsWith('https://'), `the HTTP line says https: ${svc.base}`);
      const key = ctx.secrets.apiKey;

      const tls = billingClient(svc.grpcAddress, { ca });
      const r = await unary(tls, 'CreateInvoice', createBody(), { key });
      assert.equal(r.code, 0, `CreateInvoice over TLS: ${r.details}`);
      tls.close();
      const plain = billingClient(svc.grpcAddress);
      const refused = await unary(plain, 'CreateInvoice', createBody(), { key, deadlineMs: 3_000 });
      assert.equal(codeName(refused.code), 'UNAVAILABLE', 'a plaintext client gets no answer');
      plain.close();

      const got = await request(`${svc.base}/v1/invoices/${r.value.invoice_id}`, { ca });
      assert.equal(got.status, 200, `GET over HTTPS: ${got.status} ${got.text ?? got.error}`);
      assert.equal(got.json.id, r.value.invoice_id);
      const untrusted = await request(`${svc.base}/v1/invoices/${r.value.invoice_id}`, {});
      assert.equal(untrusted.status, 0, 'a client that does not trust the certificate does not get through');
      const cleartext = await request(`http://127.0.0.1:${svc.port}/healthz`, {});
      assert.notEqual(cleartext.status, 200, 'plain HTTP on the TLS port is not served');
      await svc.stop();
    } finally {
      removeDir(dir);
    }
  });

  test('log_format=json: one object a line with request ids, and no secret in any line of a full workload', async () => {
    const reader = newApiKey('jsonreader', ['invoices:read']);
    const svc = await ctx.start({
      args: ['--log-format=json', '--log-level=debug'],
      env: { BILLING_API_KEYS: `${ctx.secrets.apiKeys};${reader.entry}` },
    });
    const key = ctx.secrets.apiKey;
    const client = billingClient(svc.grpcAddress);
    const clientSecrets = [];
    const r = rng(7);

    // gRPC: create, read, watch until PAID (simulator), cancel another.
    const g1 = await unary(client, 'CreateInvoice', createBody(), { key, requestId: 'json-grpc-1' });
    assert.equal(g1.code, 0, g1.details);
    clientSecrets.push(g1.value.stripe_client_secret);
    const g2 = await unary(client, 'CreateInvoice', createBody(), { key });
    clientSecrets.push(g2.value.stripe_client_secret);
    const got = await unary(client, 'GetInvoice', { invoice_id: g1.value.invoice_id }, { key });
    if (got.value?.stripe_client_secret) clientSecrets.push(got.value.stripe_client_secret);
    const w = watch(client, g1.value.invoice_id, { key: reader.key });
    await w.until((m) => m.length >= 1, 10_000, 'first');
    const paid = await request(`${svc.base}/v1/simulator/payments/${g1.value.invoice_id}`, { method: 'POST', body: { outcome: 'succeeded' } });
    assert.equal(paid.status, 200, paid.text);
    await w.ended;
    const c = await unary(client, 'CancelInvoice', { invoice_id: g2.value.invoice_id }, { key });
    assert.equal(c.code, 0, c.details);
    await unary(client, 'GetInvoice', { invoice_id: 'nope' }, { key, requestId: 'json-grpc-bad' });
    await unary(client, 'GetInvoice', { invoice_id: g1.value.invoice_id }, { key: 'bk_' + 'Z'.repeat(43) });

    // HTTP: create, a signed webhook with card details, a failed payment, cancel.
    const h1 = await request(`${svc.base}/v1/invoices`, { method: 'POST', body: createBody(), headers: { 'x-request-id': 'json-http-1' } });
    assert.equal(h1.status, 201, h1.text);
    clientSecrets.push(h1.json.client_secret);
    const payload = eventBody(r, { id: `evt_json_${tag}`, kind: 'failed', created: Math.floor(Date.now() / 1000), inv: h1.json });
    const card = JSON.parse(payload).data.object.charges.data[0];
    const wh = await sendWebhook(svc.base, payload, ctx.secrets.webhookSecret);
    assert.equal(wh.status, 200, wh.text);
    const forged = await sendWebhook(svc.base, payload, 'whsec_not_ours_' + tag);
    assert.equal(forged.status, 400);
    const hc = await request(`${svc.base}/v1/invoices/${h1.json.id}/cancel`, { method: 'POST' });
    assert.equal(hc.status, 200, hc.text);
    client.close();
    await svc.stop();

    const secrets = {
      webhook_secret: ctx.secrets.webhookSecret,
      secret_key: ctx.secrets.secretKey,
      api_key: ctx.secrets.apiKey,
      reader_key: reader.key,
      card_fingerprint: card.payment_method_details.card.fingerprint,
      card_email: card.billing_details.email,
      payment_method: card.payment_method,
    };
    clientSecrets.forEach((s, i) => { secrets[`client_secret_${i}`] = s; });
    for (const [name, value] of Object.entries(secrets)) assert.ok(value && value.length >= 8, `${name} is known`);
    const lines = svc.lines.filter((l) => l.trim());
    assert.ok(lines.length > 10, `a log to read (${lines.length} lines)`);
    const objects = [];
    for (const l of lines) {
      for (const [name, value] of Object.entries(secrets))
        assert.ok(!l.includes(value), `the ${name} appears in a log line: ${l.slice(0, 300)}`);
      let o;
      assert.doesNotThrow(() => { o = JSON.parse(l); }, `not a JSON object: ${l.slice(0, 200)}`);
      assert.equal(typeof o.time, 'string');
      assert.match(o.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.ok(['trace', 'debug', 'info', 'warning', 'error', 'critical'].includes(o.level), o.level);
      assert.equal(typeof o.message, 'string');
      objects.push(o);
    }
    for (const id of ['json-grpc-1', 'json-grpc-bad', 'json-http-1'])
      assert.ok(objects.some((o) => o.request_id === id), `a line carries request_id ${id}`);
    assert.ok(objects.some((o) => o.request_id === 'json-grpc-1' && o.invoice_id === g1.value.invoice_id),
      'the create line names its invoice');
    console.log(`json log: ${objects.length} lines, none holds any of ${Object.keys(secrets).length} secrets`);
  });
});

export { status };
