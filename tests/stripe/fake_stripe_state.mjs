// The fake Stripe's objects and Stripe's rules for them: PaymentIntents (and
// their Charges), Checkout Sessions, Refunds, Disputes, and the Event
// recorded for every state change. No I/O: fake_stripe.mjs routes requests
// here; tests drive what a customer would do (confirm, pay a session,
// dispute) through the same methods.
import { randomBytes } from 'node:crypto';
import { check, required, invalid, checkAmount, checkCurrency, CURRENCIES } from './fake_stripe_forms.mjs';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export function rid(prefix, n = 24) {
  const b = randomBytes(n);
  let s = '';
  for (let i = 0; i < n; ++i) s += ALNUM[b[i] % ALNUM.length];
  return prefix + s;
}

const clone = (x) => JSON.parse(JSON.stringify(x));
const business = (e) => Object.assign(e, { executed: true }); // Stripe stores these answers under the key

const PI_CREATE = {
  amount: 'integer', currency: 'string', description: 'string', metadata: 'metadata',
  automatic_payment_methods: { enabled: 'boolean', allow_redirects: { $enum: ['always', 'never'] } },
  payment_method_types: ['string'], expand: ['string'], confirm: 'boolean', payment_method: 'string',
  capture_method: { $enum: ['automatic', 'automatic_async', 'manual'] }, customer: 'string', receipt_email: 'string',
  statement_descriptor: 'string', statement_descriptor_suffix: 'string', return_url: 'string',
};
const PI_CANCEL = {
  cancellation_reason: { $enum: ['duplicate', 'fraudulent', 'requested_by_customer', 'abandoned'] },
  expand: ['string'],
};
const PI_CONFIRM = { payment_method: 'string', return_url: 'string', expand: ['string'] };
const CANCELLABLE = ['requires_payment_method', 'requires_capture', 'requires_confirmation', 'requires_action'];
const CONFIRMABLE = ['requires_payment_method', 'requires_confirmation', 'requires_action'];

const SESSION_CREATE = {
  mode: { $enum: ['payment', 'setup', 'subscription'] },
  line_items: [{
    price_data: { currency: 'string', unit_amount: 'integer', product_data: { name: 'string', description: 'string' } },
    price: 'string', quantity: 'integer',
  }],
  success_url: 'string', cancel_url: 'string', client_reference_id: 'string', expires_at: 'timestamp',
  metadata: 'metadata', customer_email: 'string', expand: ['string'], payment_method_types: ['string'],
  payment_intent_data: { metadata: 'metadata', description: 'string', capture_method: 'string' },
};
const REFUND_CREATE = {
  payment_intent: 'string', charge: 'string', amount: 'integer', metadata: 'metadata', expand: ['string'],
  reason: { $enum: ['duplicate', 'fraudulent', 'requested_by_customer'] },
};

// What a card number does when a PaymentIntent is confirmed with it
// (Stripe's test payment methods; pm_card_processing is the fake's own).
const TEST_METHODS = {
  pm_card_visa: { outcome: 'succeeded' },
  pm_card_mastercard: { outcome: 'succeeded' },
  pm_card_chargeDeclined: { outcome: 'failed', code: 'card_declined', decline_code: 'generic_decline', message: 'Your card was declined.' },
  pm_card_chargeDeclinedInsufficientFunds: { outcome: 'failed', code: 'card_declined', decline_code: 'insufficient_funds', message: 'Your card has insufficient funds.' },
  pm_card_authenticationRequired: { outcome: 'requires_action' },
  pm_card_processing: { outcome: 'processing' },
};

export class FakeState {
  constructor({ clock } = {}) {
    this.offset = 0;
    this.clock = clock ?? (() => Math.floor(Date.now() / 1000) + this.offset);
    this.intents = new Map();
    this.charges = new Map();
    this.sessions = new Map();
    this.refunds = new Map();
    this.disputes = new Map();
    this.sessionIntentData = new Map(); // payment_intent_data of each session, for the intent made at payment
    this.events = []; // oldest first
    this.listeners = new Set();
  }
  now() {
    return this.clock();
  }
  advance(seconds) {
    this.offset += seconds;
    this.sweepSessions();
  }

  // -- events -------------------------------------------------------------------
  emit(type, object, ctx = {}, previous) {
    const ev = {
      id: rid('evt_', 24),
      object: 'event',
      api_version: ctx.version ?? '2026-10-28.endive',
      created: this.now(),
      data: previous ? { object: clone(object), previous_attributes: previous } : { object: clone(object) },
      livemode: object.livemode ?? false,
      pending_webhooks: 1,
      request: { id: ctx.requestId ?? null, idempotency_key: ctx.idempotencyKey ?? null },
      type,
    };
    this.events.push(ev);
    for (const f of this.listeners) f(ev);
    return ev;
  }

  // -- PaymentIntents -----------------------------------------------------------
  intent(id) {
    const pi = this.intents.get(id);
    if (!pi) throw invalid(`No such payment_intent: '${id}'`, { param: 'intent', code: 'resource_missing', status: 404 });
    return pi;
  }
  createIntent(raw, ctx) {
    const p = check(raw, PI_CREATE);
    required(p, 'amount', 'currency');
    checkCurrency(p.currency);
    checkAmount(p.amount, p.currency);
    const id = rid('pi_3', 24);
    const pi = {
      id, object: 'payment_intent', amount: p.amount, amount_capturable: 0, amount_details: { tip: {} }, amount_received: 0,
      application: null, application_fee_amount: null,
      automatic_payment_methods: p.automatic_payment_methods?.enabled
        ? { allow_redirects: p.automatic_payment_methods.allow_redirects ?? 'always', enabled: true } : null,
      canceled_at: null, cancellation_reason: null, capture_method: p.capture_method ?? 'automatic_async',
      client_secret: `${id}_secret_${rid('', 25)}`, confirmation_method: 'automatic', created: this.now(),
      currency: p.currency, customer: p.customer ?? null, description: p.description ?? null, last_payment_error: null,
      latest_charge: null, livemode: ctx.livemode, metadata: p.metadata ?? {}, next_action: null, payment_method: null,
      payment_method_types: p.payment_method_types ?? ['card', 'link'], processing: null, receipt_email: p.receipt_email ?? null,
      status: 'requires_payment_method',
    };
    this.intents.set(id, pi);
    this.emit('payment_intent.created', pi, ctx);
    if (p.confirm && p.payment_method) return this.confirmIntent(id, { payment_method: p.payment_method }, ctx);
    return pi;
  }
  cancelIntent(id, raw, ctx) {
    const pi = this.intent(id);
    const p = check(raw, PI_CANCEL);
    if (!CANCELLABLE.includes(pi.status))
      throw business(invalid(`You cannot cancel this PaymentIntent because it has a status of ${pi.status}. Only a PaymentIntent with one of the following statuses may be canceled: ${CANCELLABLE.join(', ')}, processing.`,
        { code: 'payment_intent_unexpected_state', payment_intent: clone(pi) }));
    const previous = { status: pi.status };
    Object.assign(pi, { status: 'canceled', canceled_at: this.now(), cancellation_reason: p.cancellation_reason ?? null, next_action: null });
    this.emit('payment_intent.canceled', pi, ctx, previous);
    return pi;
  }
  // A customer confirming with a payment method (the front end's
  // stripe.confirmPayment; POST /v1/payment_intents/{id}/confirm).
  confirmIntent(id, raw, ctx = {}) {
    const pi = this.intent(id);
    const p = check(raw, PI_CONFIRM);
    if (!CONFIRMABLE.includes(pi.status))
      throw business(invalid(`You cannot confirm this PaymentIntent because it has a status of ${pi.status}.`,
        { code: 'payment_intent_unexpected_state', payment_intent: clone(pi) }));
    const how = TEST_METHODS[p.payment_method ?? 'pm_card_visa'];
    if (!how) throw invalid(`No such PaymentMethod: '${p.payment_method}'`, { param: 'payment_method', code: 'resource_missing', status: 404 });
    pi.payment_method = rid('pm_1', 24);
    return this.settle(pi, how, ctx);
  }
  // The outcome of a payment that was processing or needed an action.
  settleIntent(id, outcome, ctx = {}) {
    const pi = this.intent(id);
    if (!['processing', 'requires_action', 'requires_payment_method', 'requires_confirmation'].includes(pi.status))
      throw new Error(`fake: intent ${id} is ${pi.status}; cannot settle it ${outcome}`);
    return this.settle(pi, typeof outcome === 'string' ? (TEST_METHODS[outcome] ?? { outcome }) : outcome, ctx);
  }
  settle(pi, how, ctx) {
    const previous = { status: pi.status };
    if (how.outcome === 'processing') {
      Object.assign(pi, { status: 'processing', processing: { type: 'card' } });
      this.emit('payment_intent.processing', pi, ctx, previous);
      return pi;
    }
    if (how.outcome === 'requires_action') {
      Object.assign(pi, { status: 'requires_action', next_action: { type: 'use_stripe_sdk' } });
      this.emit('payment_intent.requires_action', pi, ctx, previous);
      return pi;
    }
    const charge = this.newCharge(pi, how);
    pi.latest_charge = charge.id;
    if (how.outcome === 'succeeded') {
      Object.assign(pi, { status: 'succeeded', amount_received: pi.amount, processing: null, next_action: null, last_payment_error: null });
      this.emit('charge.succeeded', charge, ctx);
      this.emit('payment_intent.succeeded', pi, ctx, previous);
      return pi;
    }
    Object.assign(pi, {
      status: 'requires_payment_method', processing: null, next_action: null,
      last_payment_error: { charge: charge.id, code: how.code, decline_code: how.decline_code, message: how.message, type: 'card_error' },
    });
    this.emit('charge.failed', charge, ctx);
    this.emit('payment_intent.payment_failed', pi, ctx, previous);
    const e = invalid(how.message, { type: 'card_error', code: how.code, decline_code: how.decline_code, status: 402, charge: charge.id });
    e.error.payment_intent = clone(pi);
    throw business(e);
  }
  newCharge(pi, how) {
    const ok = how.outcome === 'succeeded';
    const ch = {
      id: rid('ch_3', 24), object: 'charge', amount: pi.amount, amount_captured: ok ? pi.amount : 0, amount_refunded: 0,
      balance_transaction: ok ? rid('txn_3', 24) : null, captured: ok, created: this.now(), currency: pi.currency,
      description: pi.description, disputed: false, failure_code: ok ? null : how.code, failure_message: ok ? null : how.message,
      livemode: pi.livemode, metadata: clone(pi.metadata), paid: ok, payment_intent: pi.id, payment_method: pi.payment_method,
      refunded: false, status: ok ? 'succeeded' : 'failed',
    };
    this.charges.set(ch.id, ch);
    return ch;
  }
  dispute(intentId, ctx = {}) {
    const pi = this.intent(intentId);
    const ch = this.charges.get(pi.latest_charge);
    if (!ch || ch.status !== 'succeeded') throw new Error(`fake: intent ${intentId} has no successful charge to dispute`);
    const dp = {
      id: rid('dp_1', 24), object: 'dispute', amount: ch.amount, charge: ch.id, created: this.now(), currency: ch.currency,
      livemode: ch.livemode, metadata: {}, payment_intent: pi.id, reason: 'fraudulent', status: 'needs_response',
    };
    ch.disputed = true;
    this.disputes.set(dp.id, dp);
    this.emit('charge.dispute.created', dp, ctx);
    return dp;
  }

  // -- Refunds ------------------------------------------------------------------
  createRefund(raw, ctx) {
    const p = check(raw, REFUND_CREATE);
    if (!p.payment_intent && !p.charge)
      throw invalid('One of the following params should be provided for this request: payment_intent or charge.', { param: 'payment_intent' });
    let ch;
    if (p.payment_intent) {
      const pi = this.intent(p.payment_intent);
      ch = this.charges.get(pi.latest_charge);
      if (pi.status !== 'succeeded' || !ch || ch.status !== 'succeeded')
        throw business(invalid(`This PaymentIntent (${pi.id}) does not have a successful charge to refund.`, { param: 'payment_intent' }));
    } else {
      ch = this.charges.get(p.charge);
      if (!ch) throw invalid(`No such charge: '${p.charge}'`, { param: 'charge', code: 'resource_missing', status: 404 });
    }
    const remaining = ch.amount_captured - ch.amount_refunded;
    if (remaining <= 0) throw business(invalid(`Charge ${ch.id} has already been refunded.`, { code: 'charge_already_refunded' }));
    const amount = p.amount ?? remaining;
    if (amount <= 0) throw invalid(`Invalid positive integer`, { param: 'amount' });
    if (amount > remaining)
      throw business(invalid(`Refund amount (${amount}) is greater than unrefunded amount on charge (${remaining})`, { param: 'amount' }));
    const re = {
      id: rid('re_3', 24), object: 'refund', amount, balance_transaction: rid('txn_3', 24), charge: ch.id, created: this.now(),
      currency: ch.currency, metadata: p.metadata ?? {}, payment_intent: ch.payment_intent, reason: p.reason ?? null,
      status: 'succeeded',
    };
    this.refunds.set(re.id, re);
    const previous = { amount_refunded: ch.amount_refunded, refunded: ch.refunded };
    ch.amount_refunded += amount;
    ch.refunded = ch.amount_refunded === ch.amount_captured;
    this.emit('refund.created', re, ctx);
    this.emit('charge.refunded', ch, ctx, previous);
    // expand[]=charge: the charge as it is after the refund, inline.
    if (p.expand?.includes('charge')) return { ...clone(re), charge: clone(ch) };
    return re;
  }
  refund(id) {
    const re = this.refunds.get(id);
    if (!re) throw invalid(`No such refund: '${id}'`, { param: 'id', code: 'resource_missing', status: 404 });
    return re;
  }

  // -- Checkout Sessions ----------------------------------------------------------
  session(id) {
    this.sweepSessions();
    const s = this.sessions.get(id);
    if (!s) throw invalid(`No such checkout.session: '${id}'`, { param: 'session', code: 'resource_missing', status: 404 });
    return s;
  }
  createSession(raw, ctx) {
    const p = check(raw, SESSION_CREATE);
    required(p, 'mode');
    if (p.mode !== 'payment') throw invalid(`The fake supports only mode=payment`, { param: 'mode' });
    if (!p.line_items?.length) throw invalid('Missing required param: line_items.', { param: 'line_items' });
    if (!p.success_url) throw invalid('Missing required param: success_url.', { param: 'success_url' });
    let total = 0;
    let currency;
    p.line_items.forEach((li, i) => {
      const at = `line_items[${i}]`;
      if (!li.price_data) throw invalid(`Missing required param: ${at}[price_data].`, { param: `${at}[price_data]` });
      required(li.price_data, 'currency', 'unit_amount');
      if (!li.price_data.product_data?.name)
        throw invalid(`Missing required param: ${at}[price_data][product_data][name].`, { param: `${at}[price_data][product_data][name]` });
      checkCurrency(li.price_data.currency, `${at}[price_data][currency]`);
      if (currency && li.price_data.currency !== currency) throw invalid('All line items must use the same currency.', { param: `${at}[price_data][currency]` });
      currency = li.price_data.currency;
      total += li.price_data.unit_amount * (li.quantity ?? 1);
    });
    checkAmount(total, currency, 'line_items');
    const now = this.now();
    if (p.expires_at !== undefined) {
      if (p.expires_at > now + 24 * 3600)
        throw invalid('The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.', { param: 'expires_at' });
      if (p.expires_at < now + 30 * 60)
        throw invalid('The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.', { param: 'expires_at' });
    }
    const id = rid(ctx.livemode ? 'cs_live_a1' : 'cs_test_a1', 56);
    const s = {
      id, object: 'checkout.session', amount_subtotal: total, amount_total: total, cancel_url: p.cancel_url ?? null,
      client_reference_id: p.client_reference_id ?? null, created: now, currency, customer_email: p.customer_email ?? null,
      expires_at: p.expires_at ?? now + 24 * 3600, livemode: ctx.livemode, metadata: p.metadata ?? {}, mode: 'payment',
      payment_intent: null, payment_status: 'unpaid', status: 'open', success_url: p.success_url,
      url: `https://checkout.stripe.com/c/pay/${id}`,
    };
    this.sessionIntentData.set(id, p.payment_intent_data ?? {});
    this.sessions.set(id, s);
    return s;
  }
  expireSession(id, ctx) {
    const s = this.session(id);
    if (s.status !== 'open')
      throw business(invalid(`Only Checkout Sessions with a status in ["open"] can be expired.`, {}));
    this.expire(s, ctx);
    return s;
  }
  expire(s, ctx = {}) {
    const previous = { status: s.status };
    Object.assign(s, { status: 'expired', url: null });
    this.emit('checkout.session.expired', s, ctx, previous);
  }
  // Sessions past expires_at expire as Stripe's own sweep would expire them.
  sweepSessions() {
    const now = this.now();
    for (const s of this.sessions.values()) if (s.status === 'open' && s.expires_at <= now) this.expire(s);
  }
  // The customer pays on Checkout's page: outcome 'paid' (card), or 'pending'
  // (an async method: paid later by settleSession).
  completeSession(id, outcome = 'paid', ctx = {}) {
    const s = this.session(id);
    if (s.status !== 'open') throw new Error(`fake: session ${id} is ${s.status}; cannot complete it`);
    const data = this.sessionIntentData.get(id);
    const pi = this.createIntent({ amount: String(s.amount_total), currency: s.currency,
      ...(data.description ? { description: data.description } : {}),
      ...(data.metadata ? { metadata: data.metadata } : {}) }, { ...ctx, livemode: s.livemode });
    s.payment_intent = pi.id;
    if (outcome === 'paid') this.settle(pi, TEST_METHODS.pm_card_visa, ctx);
    else this.settle(pi, TEST_METHODS.pm_card_processing, ctx);
    const previous = { status: s.status, payment_status: s.payment_status };
    Object.assign(s, { status: 'complete', payment_status: outcome === 'paid' ? 'paid' : 'unpaid', url: null });
    this.emit('checkout.session.completed', s, ctx, previous);
    return s;
  }
  settleSession(id, succeeded, ctx = {}) {
    const s = this.session(id);
    if (s.status !== 'complete' || s.payment_status !== 'unpaid') throw new Error(`fake: session ${id} is not awaiting an async payment`);
    try {
      this.settleIntent(s.payment_intent, succeeded ? 'pm_card_visa' : 'pm_card_chargeDeclined', ctx);
    } catch (e) {
      if (!(e.error?.type === 'card_error')) throw e;
    }
    const previous = { payment_status: s.payment_status };
    if (succeeded) s.payment_status = 'paid';
    this.emit(succeeded ? 'checkout.session.async_payment_succeeded' : 'checkout.session.async_payment_failed', s, ctx, previous);
    return s;
  }

  // -- Events ---------------------------------------------------------------------
  event(id) {
    const ev = this.events.find((e) => e.id === id);
    if (!ev) throw invalid(`No such event: '${id}'`, { param: 'id', code: 'resource_missing', status: 404 });
    return ev;
  }
  // GET /v1/events: newest first, filtered, paged by starting_after.
  listEvents(raw) {
    const p = check(raw, {
      type: 'string', types: ['string'], limit: 'integer', starting_after: 'string', ending_before: 'string',
      created: { gt: 'integer', gte: 'integer', lt: 'integer', lte: 'integer' }, delivery_success: 'boolean',
    });
    const limit = p.limit ?? 10;
    if (limit < 1 || limit > 100) throw invalid('This value must be greater than or equal to 1 and less than or equal to 100.', { param: 'limit' });
    if (p.type && p.types) throw invalid('You may only specify one of these parameters: type, types.', { param: 'types' });
    if (p.types && p.types.length > 20) throw invalid('You may specify up to 20 event types.', { param: 'types' });
    const typeOk = (t) => {
      if (p.types) return p.types.includes(t);
      if (!p.type) return true;
      if (p.type.endsWith('*')) return t.startsWith(p.type.slice(0, -1));
      return t === p.type;
    };
    const c = p.created ?? {};
    let list = [...this.events].reverse().filter((e) => typeOk(e.type)
      && (c.gt === undefined || e.created > c.gt) && (c.gte === undefined || e.created >= c.gte)
      && (c.lt === undefined || e.created < c.lt) && (c.lte === undefined || e.created <= c.lte));
    if (p.starting_after) {
      const i = list.findIndex((e) => e.id === p.starting_after);
      if (i < 0 && !this.events.some((e) => e.id === p.starting_after))
        throw invalid(`No such event: '${p.starting_after}'`, { param: 'starting_after', code: 'resource_missing', status: 404 });
      list = i < 0 ? [] : list.slice(i + 1);
    } else if (p.ending_before) {
      const i = list.findIndex((e) => e.id === p.ending_before);
      list = i < 0 ? [] : list.slice(Math.max(0, i - limit), i);
    }
    return { object: 'list', data: list.slice(0, limit), has_more: list.length > limit, url: '/v1/events' };
  }
}

export { CURRENCIES };
