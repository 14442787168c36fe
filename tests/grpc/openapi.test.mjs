// docs/openapi.yaml against the running service (label interop): every HTTP
// route, with its successes and its errors (auth, validation, conflicts,
// rate limit, method, size), answered by a real billingd and checked against
// the document with Ajv (JSON Schema) — status documented for the route,
// content type, body schema, and the headers the document promises
// (X-Request-Id, Retry-After, WWW-Authenticate, Allow). A route or status
// the document lacks fails the test, and so does a documented route the test
// never exercised.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { eventBody, newApiKey, request, rng, sendWebhook, setup } from '../integration/lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.resolve(here, '../node/package.json'));
const YAML = require('yaml');
const Ajv = require('ajv');
const addFormats = require('ajv-formats');

const docPath = path.resolve(here, '../../docs/openapi.yaml');
const doc = YAML.parse(readFileSync(docPath, 'utf8'));
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(doc, 'openapi');

const covered = new Set(); // "METHOD /template"
const problems = [];

function resolve(obj) {
  let o = obj;
  while (o && o.$ref) {
    const parts = o.$ref.replace(/^#\//, '').split('/').map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
    o = parts.reduce((x, k) => x?.[k], doc);
  }
  return o;
}

const pointer = (...parts) => 'openapi#/' + parts.map((p) => String(p).replaceAll('~', '~0').replaceAll('/', '~1')).join('/');

// Checks one real answer against the document.
function check(method, template, res, what) {
  const name = `${method} ${template} -> ${res.status} (${what})`;
  console.log(`case openapi: ${name}`);
  const op = doc.paths[template]?.[method.toLowerCase()];
  if (!op) return problems.push(`${name}: the document has no such operation`);
  covered.add(`${method} ${template}`);
  const response = resolve(op.responses[String(res.status)] ?? op.responses.default);
  if (!response) return problems.push(`${name}: status not documented for this operation`);
  const responseRef = op.responses[String(res.status)]?.$ref;
  const headers = response.headers ?? {};
  for (const [h, spec] of Object.entries(headers)) {
    const v = res.headers[h.toLowerCase()];
    if (v === undefined) { problems.push(`${name}: header ${h} missing`); continue; }
    const schema = resolve(spec).schema;
    if (schema) {
      const typed = schema.type === 'integer' ? Number(v) : v;
      const validate = ajv.compile(schema);
      if (!validate(typed)) problems.push(`${name}: header ${h}=${v}: ${ajv.errorsText(validate.errors)}`);
    }
  }
  const content = response.content;
  if (!content) return;
  const type = (res.headers['content-type'] ?? '').split(';')[0].trim();
  if (!content[type]) return problems.push(`${name}: content-type ${type} not documented (${Object.keys(content)})`);
  const where = responseRef
    ? pointer(...responseRef.replace(/^#\//, '').split('/'), 'content', type, 'schema')
    : pointer('paths', template, method.toLowerCase(), 'responses', String(res.status), 'content', type, 'schema');
  const validate = ajv.getSchema(where);
  if (!validate) return problems.push(`${name}: cannot compile ${where}`);
  const body = type === 'application/json' ? res.json : res.text;
  if (!validate(body)) problems.push(`${name}: body ${JSON.stringify(body).slice(0, 200)}: ${ajv.errorsText(validate.errors)}`);
  if (type === 'application/json' && res.status >= 400 && body?.error?.request_id !== res.headers['x-request-id'])
    problems.push(`${name}: error.request_id ${body?.error?.request_id} is not X-Request-Id ${res.headers['x-request-id']}`);
}

let ctx, svc;
const reader = newApiKey('oa-reader', ['invoices:read']);
const writer = newApiKey('oa-writer', ['invoices:write']);
const limited = newApiKey('oa-limited', ['invoices:write', 'invoices:read']);
limited.entry += ' rate=1/s burst=1';

before(async () => {
  ctx = await setup('openapi');
  svc = await ctx.start({
    args: ['--admin-require-key=true', '--body-limit-bytes=16384'],
    env: { BILLING_API_KEYS: [ctx.secrets.apiKeys, reader.entry, writer.entry, limited.entry].join(';') },
  });
});
after(async () => {
  await ctx?.cleanup(false);
});

test('every route of docs/openapi.yaml, success and error answers, matches the document', async () => {
  const b = svc.base;
  const tag = Math.random().toString(36).slice(2, 8);
  const body = { shipment_id: `shp_oa_${tag}`, user_id: 'usr_oa', workflow_id: `wf_oa_${tag}`, amount_cents: 4200, currency: 'usd' };
  const inv = '/v1/invoices';

  // POST /v1/invoices
  const created = await request(`${b}${inv}`, { method: 'POST', body });
  check('POST', inv, created, 'created');
  check('POST', inv, await request(`${b}${inv}`, { method: 'POST', body }), 'repeat');
  check('POST', inv, await request(`${b}${inv}`, { method: 'POST', body: { ...body, amount_cents: 1 } }), 'conflict');
  check('POST', inv, await request(`${b}${inv}`, { method: 'POST', body: { ...body, currency: 'zzz' } }), 'bad currency');
  check('POST', inv, await request(`${b}${inv}`, { method: 'POST', body: '{"a":1,"a":2}' }), 'duplicate key');
  check('POST', inv, await request(`${b}${inv}`, { method: 'POST', body, auth: null }), 'no key');
  check('POST', inv, await request(`${b}${inv}`, { method: 'POST', body, auth: 'bk_' + 'Q'.repeat(43) }), 'unknown key');
  check('POST', inv, await request(`${b}${inv}`, { method: 'POST', body, auth: reader.key }), 'wrong scope');
  check('POST', inv, await request(`${b}${inv}`, { method: 'POST', body: 'x'.repeat(32768) }), 'too large');
  const first = await request(`${b}${inv}`, { method: 'POST', body, auth: limited.key });
  check('POST', inv, first, 'limited key, within its burst');
  const limitedRes = await request(`${b}${inv}`, { method: 'POST', body, auth: limited.key });
  assert.equal(limitedRes.status, 429);
  check('POST', inv, limitedRes, 'rate limited');
  const id = created.json.id;

  // GET /v1/invoices
  check('GET', inv, await request(`${b}${inv}?workflow_id=${body.workflow_id}&limit=5`), 'list');
  check('GET', inv, await request(`${b}${inv}?colour=red`), 'unknown parameter');
  check('GET', inv, await request(`${b}${inv}?workflow_id=x`, { auth: writer.key }), 'wrong scope');
  check('GET', inv, await request(`${b}${inv}?workflow_id=x`, { auth: null }), 'no key');

  // GET /v1/invoices/{id}
  const one = '/v1/invoices/{id}';
  check('GET', one, await request(`${b}${inv}/${id}`, { auth: reader.key }), 'read');
  check('GET', one, await request(`${b}${inv}/not-a-uuid`), 'bad id');
  check('GET', one, await request(`${b}${inv}/00000000-0000-8000-8000-000000000000`), 'unknown');
  check('GET', one, await request(`${b}${inv}/${id}`, { auth: writer.key }), 'wrong scope');
  check('GET', one, await request(`${b}${inv}/${id}`, { method: 'DELETE' }), 'method');

  // POST /v1/simulator/payments/{id}
  const sim = '/v1/simulator/payments/{id}';
  check('POST', sim, await request(`${b}/v1/simulator/payments/${id}`, { method: 'POST', body: { outcome: 'maybe' } }), 'bad outcome');
  check('POST', sim, await request(`${b}/v1/simulator/payments/${id}`, { method: 'POST', body: { outcome: 'succeeded' }, auth: reader.key }), 'wrong scope');
  check('POST', sim, await request(`${b}/v1/simulator/payments/00000000-0000-8000-8000-000000000000`, { method: 'POST', body: { outcome: 'succeeded' } }), 'unknown invoice');
  check('POST', sim, await request(`${b}/v1/simulator/payments/${id}`, { method: 'POST', body: { outcome: 'succeeded' } }), 'paid');

  // POST /v1/invoices with mode checkout: checkout_url instead of client_secret.
  const co = { ...body, shipment_id: `${body.shipment_id}_co`, mode: 'checkout', success_url: 'https://shop.example/ok', cancel_url: 'https://shop.example/back' };
  check('POST', inv, await request(`${b}${inv}`, { method: 'POST', body: co }), 'checkout created');
  check('POST', inv, await request(`${b}${inv}`, { method: 'POST', body: co }), 'checkout repeat');
  check('POST', inv, await request(`${b}${inv}`, { method: 'POST', body: { ...co, success_url: 'nope' } }), 'checkout, bad success_url');

  // POST /v1/invoices/{id}/refunds
  const refunds = '/v1/invoices/{id}/refunds';
  const toRefund = await request(`${b}${inv}`, { method: 'POST', body: { ...body, shipment_id: `${body.shipment_id}_r` } });
  const pendingOne = await request(`${b}${inv}`, { method: 'POST', body: { ...body, shipment_id: `${body.shipment_id}_rp` } });
  const paidRes = await request(`${b}/v1/simulator/payments/${toRefund.json.id}`, { method: 'POST', body: { outcome: 'succeeded' } });
  assert.equal(paidRes.json?.webhook_status, 200, paidRes.text);
  const rf = (rid, rb, headers = {}, more = {}) => request(`${b}${inv}/${rid}/refunds`, { method: 'POST', body: rb, headers, ...more });
  const rkey = { 'idempotency-key': `oa-${tag}` };
  check('POST', refunds, await rf(toRefund.json.id, { amount_cents: 200, reason: 'requested_by_customer' }, rkey), 'partial refund');
  check('POST', refunds, await rf(toRefund.json.id, { amount_cents: 200, reason: 'requested_by_customer' }, rkey), 'repeat');
  check('POST', refunds, await rf(toRefund.json.id, { amount_cents: 201 }, rkey), 'same key, another body');
  check('POST', refunds, await rf(toRefund.json.id, { amount_cents: 4001 }), 'above what is left');
  check('POST', refunds, await rf(toRefund.json.id, { amount_cents: '5' }), 'bad amount');
  check('POST', refunds, await rf(toRefund.json.id, {}, { 'idempotency-key': 'a b' }), 'bad Idempotency-Key');
  check('POST', refunds, await rf(pendingOne.json.id, {}), 'PENDING');
  check('POST', refunds, await rf('00000000-0000-8000-8000-000000000000', {}), 'unknown');
  check('POST', refunds, await rf('nope', {}), 'bad id');
  check('POST', refunds, await rf(toRefund.json.id, {}, {}, { auth: reader.key }), 'wrong scope');
  check('POST', refunds, await rf(toRefund.json.id, {}, {}, { auth: null }), 'no key');
  check('POST', refunds, await request(`${b}${inv}/${toRefund.json.id}/refunds`), 'method');
  const rest = await rf(toRefund.json.id, undefined);
  assert.equal(rest.json?.invoice?.status, 'REFUNDED', rest.text);
  check('POST', refunds, rest, 'the rest');
  check('GET', one, await request(`${b}${inv}/${toRefund.json.id}`, { auth: reader.key }), 'read a REFUNDED invoice');

  // POST /v1/invoices/{id}/cancel
  const cancel = '/v1/invoices/{id}/cancel';
  check('POST', cancel, await request(`${b}${inv}/${id}/cancel`, { method: 'POST' }), 'cancel a PAID invoice');
  const other = await request(`${b}${inv}`, { method: 'POST', body: { ...body, shipment_id: `${body.shipment_id}_2` } });
  check('POST', cancel, await request(`${b}${inv}/${other.json.id}/cancel`, { method: 'POST' }), 'cancel');
  check('POST', cancel, await request(`${b}${inv}/00000000-0000-8000-8000-000000000000/cancel`, { method: 'POST' }), 'unknown');
  check('POST', cancel, await request(`${b}${inv}/nope/cancel`, { method: 'POST' }), 'bad id');
  check('POST', cancel, await request(`${b}${inv}/${id}/cancel`, { method: 'POST', auth: reader.key }), 'wrong scope');
  check('POST', cancel, await request(`${b}${inv}/${id}/cancel`), 'method');

  // POST /webhook
  const third = await request(`${b}${inv}`, { method: 'POST', body: { ...body, shipment_id: `${body.shipment_id}_3` } });
  const payload = eventBody(rng(3), { id: `evt_oa_${tag}`, kind: 'succeeded', created: Math.floor(Date.now() / 1000), inv: third.json });
  check('POST', '/webhook', await sendWebhook(b, payload, ctx.secrets.webhookSecret), 'applied');
  check('POST', '/webhook', await sendWebhook(b, payload, ctx.secrets.webhookSecret), 'duplicate');
  check('POST', '/webhook', await sendWebhook(b, payload, 'whsec_wrong'), 'bad signature');
  check('POST', '/webhook', await request(`${b}/webhook`, { auth: null }), 'method');

  // Probes, on both listeners; /metrics on the admin listener.
  for (const base of [b, svc.admin]) {
    check('GET', '/healthz', await request(`${base}/healthz`, { auth: null }), `healthz ${base === b ? 'api' : 'admin'}`);
    check('GET', '/readyz', await request(`${base}/readyz`, { auth: null }), `readyz ${base === b ? 'api' : 'admin'}`);
  }
  check('GET', '/healthz', await request(`${b}/healthz`, { method: 'POST', auth: null }), 'method');
  check('GET', '/metrics', await request(`${svc.admin}/metrics`), 'admin key');
  check('GET', '/metrics', await request(`${svc.admin}/metrics`, { auth: null }), 'no key');
  check('GET', '/metrics', await request(`${svc.admin}/metrics`, { auth: reader.key }), 'no admin scope');

  const documented = [];
  for (const [p, ops] of Object.entries(doc.paths))
    for (const m of Object.keys(ops)) if (['get', 'post', 'put', 'delete', 'patch'].includes(m)) documented.push(`${m.toUpperCase()} ${p}`);
  for (const d of documented) if (!covered.has(d)) problems.push(`${d}: documented but not exercised`);
  assert.deepEqual(problems, [], problems.join('\n'));
});
