// RefundInvoice and Checkout creates over gRPC (label interop), with a
// @grpc/grpc-js client built from our .proto, against billingd with the
// simulated provider and a real PostgreSQL: full and partial refunds, the
// idempotency_key (same request: created=false and the same refund; other
// request: ALREADY_EXISTS), the error codes (NOT_FOUND, FAILED_PRECONDITION,
// INVALID_ARGUMENT with the field in google.rpc.BadRequest), the auth check
// (invoices:write), and CreateInvoice with INVOICE_MODE_CHECKOUT.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { billingClient, codeName, status, unary } from './grpc_lib.mjs';
import { newApiKey, request, setup } from '../integration/lib.mjs';

const keys = {
  reader: newApiKey('reader', ['invoices:read']),
  writer: newApiKey('writer', ['invoices:write']),
  sim: newApiKey('sim', ['simulator']),
};

let ctx, svc, client, all;

before(async () => {
  ctx = await setup('grpc_refunds');
  svc = await ctx.start({
    env: { BILLING_API_KEYS: [ctx.secrets.apiKeys, ...Object.values(keys).map((k) => k.entry)].join(';') },
  });
  client = billingClient(svc.grpcAddress);
  all = ctx.secrets.apiKey;
});

after(async () => {
  client?.close();
  await ctx?.cleanup(false);
});

const tag = Math.random().toString(36).slice(2, 8);
let seq = 0;
function createBody(extra = {}) {
  seq += 1;
  return { shipment_id: `shp_gr_${tag}_${seq}`, user_id: 'usr_gr', workflow_id: `wf_gr_${tag}_${seq}`,
    amount_cents: 2000, currency: 'eur', ...extra };
}
const checkoutBody = (extra = {}) => createBody({ mode: 'INVOICE_MODE_CHECKOUT', success_url: 'https://shop.example/ok',
  cancel_url: 'https://shop.example/back', ...extra });

function expectCode(r, code, what) {
  assert.equal(codeName(r.code), codeName(code), `${what}: got ${codeName(r.code)} ${r.details ?? ''}`);
}

async function paidInvoice() {
  const created = await unary(client, 'CreateInvoice', createBody(), { key: all });
  expectCode(created, status.OK, 'CreateInvoice');
  const id = created.value.invoice_id;
  const r = await request(`${svc.base}/v1/simulator/payments/${id}`, { method: 'POST', body: { outcome: 'succeeded' } });
  assert.equal(r.json?.webhook_status, 200, `simulator: ${r.status} ${r.text}`);
  return id;
}

const refundRows = async (id) => (await ctx.db.query(
  "SELECT payload->>'refunded_cents' AS total FROM outbox WHERE invoice_id = $1 AND signal = 'PaymentRefunded' ORDER BY id", [id]))
  .map((r) => Number(r.total));

describe('billing.v1.BillingService/RefundInvoice', () => {
  test('a full refund: REFUNDED, the refunded total, one PaymentRefunded row', async () => {
    const id = await paidInvoice();
    const r = await unary(client, 'RefundInvoice', { invoice_id: id }, { key: keys.writer.key, requestId: 'refund-full' });
    expectCode(r, status.OK, 'RefundInvoice');
    assert.equal(r.requestId, 'refund-full');
    assert.match(r.value.refund_id, /^re_/);
    assert.equal(r.value.refund_status, 'succeeded');
    assert.equal(r.value.amount_cents, 2000);
    assert.equal(r.value.created, true);
    assert.equal(r.value.invoice.status, 'INVOICE_STATUS_REFUNDED');
    assert.equal(r.value.invoice.refunded_cents, 2000);
    assert.deepEqual(await refundRows(id), [2000]);
    const again = await unary(client, 'RefundInvoice', { invoice_id: id }, { key: keys.writer.key });
    expectCode(again, status.FAILED_PRECONDITION, 'a refund of a REFUNDED invoice without a key');
    const got = await unary(client, 'GetInvoice', { invoice_id: id }, { key: keys.reader.key });
    expectCode(got, status.OK, 'GetInvoice');
    assert.equal(got.value.status, 'INVOICE_STATUS_REFUNDED');
    assert.equal(got.value.invoice.refunded_cents, 2000);
  });

  test('partial, then more than is left, then the rest', async () => {
    const id = await paidInvoice();
    const part = await unary(client, 'RefundInvoice', { invoice_id: id, amount_cents: 750, reason: 'duplicate' }, { key: all });
    expectCode(part, status.OK, 'a partial refund');
    assert.equal(part.value.amount_cents, 750);
    assert.equal(part.value.invoice.status, 'INVOICE_STATUS_PAID', 'partly refunded stays PAID');
    assert.equal(part.value.invoice.refunded_cents, 750);
    const over = await unary(client, 'RefundInvoice', { invoice_id: id, amount_cents: 1251 }, { key: all });
    expectCode(over, status.INVALID_ARGUMENT, 'more than is left');
    assert.deepEqual(over.fields, ['amount_cents']);
    const rest = await unary(client, 'RefundInvoice', { invoice_id: id }, { key: all });
    expectCode(rest, status.OK, 'the rest');
    assert.equal(rest.value.amount_cents, 1250);
    assert.equal(rest.value.invoice.status, 'INVOICE_STATUS_REFUNDED');
    assert.equal(rest.value.invoice.refunded_cents, 2000);
    assert.notEqual(rest.value.refund_id, part.value.refund_id);
    assert.deepEqual(await refundRows(id), [750, 2000]);
  });

  test('idempotency_key: the same request answers the same refund, another is ALREADY_EXISTS', async () => {
    const id = await paidInvoice();
    const req = { invoice_id: id, amount_cents: 400, idempotency_key: `order-${tag}-1` };
    const first = await unary(client, 'RefundInvoice', req, { key: all });
    expectCode(first, status.OK, 'RefundInvoice');
    assert.equal(first.value.created, true);
    const repeat = await unary(client, 'RefundInvoice', req, { key: all });
    expectCode(repeat, status.OK, 'the same request again');
    assert.equal(repeat.value.created, false, 'a repeat says so');
    assert.equal(repeat.value.refund_id, first.value.refund_id);
    assert.equal(repeat.value.invoice.refunded_cents, 400, 'refunded once');
    const other = await unary(client, 'RefundInvoice', { ...req, amount_cents: 401 }, { key: all });
    expectCode(other, status.ALREADY_EXISTS, 'the same key with another amount');
    assert.deepEqual(await refundRows(id), [400], 'one PaymentRefunded row');
    // A full refund with a key, repeated once the invoice is REFUNDED.
    const fullReq = { invoice_id: id, idempotency_key: `order-${tag}-2` };
    const full = await unary(client, 'RefundInvoice', fullReq, { key: all });
    expectCode(full, status.OK, 'the rest, with a key');
    assert.equal(full.value.invoice.status, 'INVOICE_STATUS_REFUNDED');
    const fullAgain = await unary(client, 'RefundInvoice', fullReq, { key: all });
    expectCode(fullAgain, status.OK, 'the rest, repeated after REFUNDED');
    assert.equal(fullAgain.value.created, false);
    assert.equal(fullAgain.value.refund_id, full.value.refund_id);
    assert.deepEqual(await refundRows(id), [400, 2000]);
  });

  test('the error codes', async () => {
    const paid = await paidInvoice();
    const pending = await unary(client, 'CreateInvoice', createBody(), { key: all });
    const cases = [
      [{ invoice_id: '' }, status.INVALID_ARGUMENT, 'invoice_id'],
      [{ invoice_id: 'not-a-uuid' }, status.INVALID_ARGUMENT, 'invoice_id'],
      [{ invoice_id: '00000000-0000-8000-8000-000000000000' }, status.NOT_FOUND, null],
      [{ invoice_id: pending.value.invoice_id }, status.FAILED_PRECONDITION, null],
      [{ invoice_id: pending.value.invoice_id, idempotency_key: 'k-pending' }, status.FAILED_PRECONDITION, null],
      [{ invoice_id: paid, amount_cents: 0 }, status.INVALID_ARGUMENT, 'amount_cents'],
      [{ invoice_id: paid, amount_cents: -1 }, status.INVALID_ARGUMENT, 'amount_cents'],
      [{ invoice_id: paid, amount_cents: 100_000_000 }, status.INVALID_ARGUMENT, 'amount_cents'],
      [{ invoice_id: paid, amount_cents: 2001 }, status.INVALID_ARGUMENT, 'amount_cents'],
      [{ invoice_id: paid, reason: 'because' }, status.INVALID_ARGUMENT, 'reason'],
      [{ invoice_id: paid, idempotency_key: 'a b' }, status.INVALID_ARGUMENT, 'idempotency_key'],
      [{ invoice_id: paid, idempotency_key: 'k'.repeat(201) }, status.INVALID_ARGUMENT, 'idempotency_key'],
    ];
    for (const [req, code, field] of cases) {
      const r = await unary(client, 'RefundInvoice', req, { key: all, requestId: 'refund-matrix' });
      const shown = JSON.stringify(req).slice(0, 90);
      console.log(`case interop: RefundInvoice ${shown} -> ${codeName(r.code)} ${r.details}`);
      expectCode(r, code, `RefundInvoice ${shown}`);
      assert.ok(r.details.endsWith('(request_id refund-matrix)'), `the message names the request id: ${r.details}`);
      if (field) assert.deepEqual(r.fields, [field], `google.rpc.BadRequest names ${field}`);
    }
    const still = await unary(client, 'GetInvoice', { invoice_id: paid }, { key: all });
    assert.equal(still.value.status, 'INVOICE_STATUS_PAID', 'the refused refunds changed nothing');
    assert.equal(still.value.invoice.refunded_cents, 0);
    assert.deepEqual(await refundRows(paid), []);
  });

  test('the auth check: invoices:write', async () => {
    const id = await paidInvoice();
    for (const [who, key, code] of [['no key', undefined, status.UNAUTHENTICATED],
      ['an unknown key', 'bk_' + 'B'.repeat(43), status.UNAUTHENTICATED],
      ['invoices:read', keys.reader.key, status.PERMISSION_DENIED],
      ['simulator', keys.sim.key, status.PERMISSION_DENIED]]) {
      const r = await unary(client, 'RefundInvoice', { invoice_id: id }, { key });
      console.log(`case interop: RefundInvoice with ${who} -> ${codeName(r.code)} ${r.details}`);
      expectCode(r, code, `RefundInvoice with ${who}`);
      if (code === status.PERMISSION_DENIED) assert.match(r.details, /invoices:write/);
    }
    assert.deepEqual(await refundRows(id), [], 'nothing was refunded');
    const ok = await unary(client, 'RefundInvoice', { invoice_id: id }, { key: keys.writer.key });
    expectCode(ok, status.OK, 'RefundInvoice with invoices:write');
  });
});

describe('billing.v1.BillingService/CreateInvoice with INVOICE_MODE_CHECKOUT', () => {
  test('a Checkout Session: checkout_url, no client secret, the session id; GetInvoice answers the URL to writers only', async () => {
    const body = checkoutBody();
    const r = await unary(client, 'CreateInvoice', body, { key: keys.writer.key });
    expectCode(r, status.OK, 'CreateInvoice checkout');
    assert.match(r.value.checkout_url, /^https:\/\/checkout\.simulated\.invalid\/pay\/cs_sim_/);
    assert.equal(r.value.stripe_client_secret, '');
    assert.equal(r.value.created, true);
    assert.equal(r.value.invoice.mode, 'INVOICE_MODE_CHECKOUT');
    assert.match(r.value.invoice.provider_session_id, /^cs_sim_/);
    assert.equal(r.value.invoice.provider_intent_id, '');
    assert.equal(r.value.invoice.status, 'INVOICE_STATUS_PENDING');
    const again = await unary(client, 'CreateInvoice', body, { key: keys.writer.key });
    expectCode(again, status.OK, 'the same create again');
    assert.equal(again.value.created, false);
    assert.equal(again.value.checkout_url, r.value.checkout_url);
    const asIntent = await unary(client, 'CreateInvoice', { ...body, mode: 'INVOICE_MODE_PAYMENT_INTENT', success_url: '', cancel_url: '' },
      { key: keys.writer.key });
    expectCode(asIntent, status.ALREADY_EXISTS, 'the same pair in another mode');
    // Like the client secret: the URL of an unpaid invoice, to a writer only.
    for (const [key, url] of [[all, r.value.checkout_url], [keys.reader.key, '']]) {
      const g = await unary(client, 'GetInvoice', { invoice_id: r.value.invoice_id }, { key });
      expectCode(g, status.OK, 'GetInvoice');
      assert.equal(g.value.stripe_client_secret, '', 'GetInvoice never answers the checkout URL as the secret');
      assert.equal(g.value.checkout_url, url);
      assert.equal(g.value.invoice.mode, 'INVOICE_MODE_CHECKOUT');
    }
    const refund = await unary(client, 'RefundInvoice', { invoice_id: r.value.invoice_id }, { key: all });
    expectCode(refund, status.FAILED_PRECONDITION, 'a PENDING checkout invoice is not refunded');
    // The default mode stays a PaymentIntent.
    const plain = await unary(client, 'CreateInvoice', createBody(), { key: all });
    expectCode(plain, status.OK, 'CreateInvoice');
    assert.equal(plain.value.invoice.mode, 'INVOICE_MODE_PAYMENT_INTENT');
    assert.equal(plain.value.checkout_url, '');
    assert.ok(plain.value.stripe_client_secret.length > 10);
  });

  test('bad checkout creates are INVALID_ARGUMENT naming the field', async () => {
    const cases = [
      [checkoutBody({ success_url: '' }), 'success_url'],
      [checkoutBody({ cancel_url: '' }), 'cancel_url'],
      [checkoutBody({ success_url: 'shop.example/ok' }), 'success_url'],
      [checkoutBody({ cancel_url: 'ftp://shop.example/back' }), 'cancel_url'],
      [checkoutBody({ expires_in_seconds: 1919 }), 'expires_in_seconds'],
      [checkoutBody({ expires_in_seconds: 86281 }), 'expires_in_seconds'],
      [createBody({ success_url: 'https://shop.example/ok' }), 'success_url'],
      [createBody({ mode: 'INVOICE_MODE_PAYMENT_INTENT', cancel_url: 'https://shop.example/back' }), 'cancel_url'],
      [checkoutBody({ mode: 7 }), 'mode'],
    ];
    for (const [req, field] of cases) {
      const r = await unary(client, 'CreateInvoice', req, { key: all });
      const shown = JSON.stringify({ ...req, shipment_id: undefined, workflow_id: undefined, user_id: undefined }).slice(0, 120);
      console.log(`case interop: CreateInvoice ${shown} -> ${codeName(r.code)} ${r.details}`);
      expectCode(r, status.INVALID_ARGUMENT, `CreateInvoice ${shown}`);
      assert.deepEqual(r.fields, [field], `google.rpc.BadRequest names ${field}: ${r.details}`);
      const rows = await ctx.db.query('SELECT count(*)::int AS n FROM invoices WHERE shipment_id = $1', [req.shipment_id]);
      assert.equal(rows[0].n, 0, 'nothing was created');
    }
  });
});
