// The fake Stripe's webhook sender: every recorded event of an enabled type
// is queued for the endpoint, signed with the official `stripe` SDK
// (stripe.webhooks.generateTestHeaderString) at delivery time. Tests hold,
// withhold, duplicate and reorder deliveries; in `auto` mode each event is
// delivered as it happens, in order, one at a time (like one Stripe endpoint).
import http from 'node:http';
import https from 'node:https';

// The events billingd's README tells operators to enable on the endpoint.
export const BILLINGD_EVENTS = [
  'payment_intent.succeeded', 'payment_intent.payment_failed', 'payment_intent.canceled', 'payment_intent.processing',
  'charge.refunded', 'refund.updated', 'charge.dispute.created', 'charge.dispute.closed',
  'checkout.session.completed', 'checkout.session.expired',
  'checkout.session.async_payment_succeeded', 'checkout.session.async_payment_failed',
];

export class WebhookSender {
  constructor(stripe, { url, secret, enabled = BILLINGD_EVENTS, mode = 'auto', timeoutMs = 30_000 } = {}) {
    this.stripe = stripe;
    this.url = url;
    this.secret = secret;
    this.enabled = enabled; // '*' or a list
    this.mode = mode; // auto | manual
    this.timeoutMs = timeoutMs;
    this.queue = []; // events waiting (manual mode, or while a delivery is running)
    this.withheld = []; // matched a withhold rule: never sent unless asked
    this.rules = []; // predicates
    this.deliveries = []; // { eventId, type, status, body, error, at }
    this.running = null;
  }

  configure({ url, secret, enabled, mode } = {}) {
    if (url !== undefined) this.url = url;
    if (secret !== undefined) this.secret = secret;
    if (enabled !== undefined) this.enabled = enabled;
    if (mode !== undefined) this.mode = mode;
    if (this.mode === 'auto') this.pump();
  }

  wants(ev) {
    return this.enabled === '*' || this.enabled.includes(ev.type);
  }

  // Events matching `pred` are withheld from now on (reconciliation must find them).
  withhold(pred) {
    this.rules.push(pred);
  }

  onEvent(ev) {
    if (!this.url || !this.wants(ev)) return;
    if (this.rules.some((r) => r(ev))) {
      this.withheld.push(ev);
      return;
    }
    this.queue.push(ev);
    if (this.mode === 'auto') this.pump();
  }

  pump() {
    if (this.running || !this.queue.length) return this.running;
    this.running = (async () => {
      while (this.queue.length && this.mode === 'auto') await this.send(this.queue.shift());
      this.running = null;
    })();
    return this.running;
  }

  // Waits until nothing is queued or being sent (auto mode).
  async idle() {
    while (this.running) await this.running;
  }

  // Sends one event now (also a withheld or already delivered one).
  async send(ev, { secret = this.secret, timestamp } = {}) {
    const payload = JSON.stringify(ev, null, 2);
    const header = this.stripe.webhooks.generateTestHeaderString({ payload, secret, ...(timestamp ? { timestamp } : {}) });
    const res = await post(this.url, payload, { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': header,
      'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)' }, this.timeoutMs);
    const d = { eventId: ev.id, type: ev.type, status: res.status, body: res.text, error: res.error, at: Date.now() };
    this.deliveries.push(d);
    return d;
  }

  // Manual mode: delivers what is queued (and, with `withheld`, what was
  // withheld), in `order` (fifo | reverse | shuffle with rng), each `copies` times.
  async flush({ order = 'fifo', rng = Math.random, copies = 1, withheld = false, filter = () => true } = {}) {
    let list = this.queue.filter(filter);
    this.queue = this.queue.filter((e) => !filter(e));
    if (withheld) {
      list = list.concat(this.withheld.filter(filter));
      this.withheld = this.withheld.filter((e) => !filter(e));
    }
    if (order === 'reverse') list.reverse();
    if (order === 'shuffle')
      for (let i = list.length - 1; i > 0; --i) {
        const j = Math.floor(rng() * (i + 1));
        [list[i], list[j]] = [list[j], list[i]];
      }
    const out = [];
    for (const ev of list) for (let c = 0; c < copies; ++c) out.push(await this.send(ev));
    return out;
  }
}

function post(url, body, headers, timeoutMs) {
  return new Promise((resolve) => {
    const mod = url.startsWith('https:') ? https : http;
    const data = Buffer.from(body);
    const req = mod.request(url, { method: 'POST', headers: { ...headers, 'content-length': data.length } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (e) => resolve({ status: 0, error: e.message }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ status: 0, error: e.message }));
    req.end(data);
  });
}
