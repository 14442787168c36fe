// A fake Stripe API for tests, on node:http(s) without a framework. It speaks
// Stripe's wire format: form-encoded requests with bracketed keys, Bearer
// auth (401 with Stripe's error JSON), Stripe-Version, Idempotency-Key as
// Stripe documents it (same key + same parameters: the stored answer with
// `Idempotent-Replayed: true`; same key + other parameters: 400
// idempotency_error; while the first is running: 409; answers to requests
// that failed validation are not stored), Stripe's error JSON with `param`,
// and Stripe's status rules (fake_stripe_state.mjs). It records every request,
// injects faults the test asks for, and sends signed webhooks
// (fake_stripe_webhooks.mjs).
//
// In a test:
//   const fake = await startFakeStripe({ keys: ['sk_test_x'], webhook: { url, secret } });
//   fake.base, fake.caFile (HTTPS with a certificate made now by the openssl CLI)
//   fake.fault({ method: 'POST', path: '/v1/payment_intents', status: 500, times: 2 })
//   fake.requests, fake.state.confirmIntent(id, { payment_method: 'pm_card_visa' })
//   await fake.stop()
// Standalone: node fake_stripe.mjs [--port=N] [--http] [--key=sk_test_...]
//   [--webhook-url=URL --webhook-secret=whsec_...]; control API under /_fake/.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StripeError, invalid, parseForm, unauthenticated } from './fake_stripe_forms.mjs';
import { FakeState, rid } from './fake_stripe_state.mjs';
import { WebhookSender } from './fake_stripe_webhooks.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.resolve(here, '../node/package.json'));
export const Stripe = require('stripe');

export const API_VERSION = '2026-10-28.endive';

// A self-signed certificate for 127.0.0.1 and localhost, made by the openssl CLI.
export function makeCertificate(dir) {
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=fake-stripe',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'pipe' });
  return { keyFile: key, certFile: cert, key: readFileSync(key), cert: readFileSync(cert) };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function sortedJson(x) {
  if (Array.isArray(x)) return `[${x.map(sortedJson).join(',')}]`;
  if (x && typeof x === 'object') return `{${Object.keys(x).sort().map((k) => `${JSON.stringify(k)}:${sortedJson(x[k])}`).join(',')}}`;
  return JSON.stringify(x);
}

export async function startFakeStripe({ keys = ['sk_test_fake_' + randomBytes(12).toString('hex')], tls = true, port = 0,
  webhook = {}, log = false } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fake-stripe-'));
  const cert = tls ? makeCertificate(dir) : null;
  const state = new FakeState();
  const stripe = new Stripe(keys[0]);
  const webhooks = new WebhookSender(stripe, webhook);
  state.listeners.add((ev) => webhooks.onEvent(ev));
  const requests = []; // every request, in arrival order
  const faults = []; // { match, ...action, times }
  const idem = new Map(); // `${apiKey}\n${key}` -> { fingerprint, done: {status, headers, body} | null }
  const sockets = new Set();
  const arrivals = new Set(); // waiters for requests

  function matchFault(rec) {
    for (const f of faults) {
      if (f.times <= 0) continue;
      if (f.method && f.method !== rec.method) continue;
      if (f.path && !(f.path instanceof RegExp ? f.path.test(rec.path) : rec.path === f.path)) continue;
      f.times -= 1;
      return f;
    }
    return null;
  }

  // The API proper: a JSON object for the route, or a StripeError.
  function route(rec, ctx) {
    const { method, path: p, params } = rec;
    let m;
    if (method === 'POST' && p === '/v1/payment_intents') return state.createIntent(params, ctx);
    if ((m = /^\/v1\/payment_intents\/([^/]+)$/.exec(p)) && method === 'GET') return state.intent(m[1]);
    if ((m = /^\/v1\/payment_intents\/([^/]+)\/cancel$/.exec(p)) && method === 'POST') return state.cancelIntent(m[1], params, ctx);
    if ((m = /^\/v1\/payment_intents\/([^/]+)\/confirm$/.exec(p)) && method === 'POST') return state.confirmIntent(m[1], params, ctx);
    if (method === 'POST' && p === '/v1/checkout/sessions') return state.createSession(params, ctx);
    if ((m = /^\/v1\/checkout\/sessions\/([^/]+)$/.exec(p)) && method === 'GET') return state.session(m[1]);
    if ((m = /^\/v1\/checkout\/sessions\/([^/]+)\/expire$/.exec(p)) && method === 'POST') return state.expireSession(m[1], ctx);
    if (method === 'POST' && p === '/v1/refunds') return state.createRefund(params, ctx);
    if ((m = /^\/v1\/refunds\/([^/]+)$/.exec(p)) && method === 'GET') return state.refund(m[1]);
    if (method === 'GET' && p === '/v1/events') return state.listEvents(params);
    if ((m = /^\/v1\/events\/([^/]+)$/.exec(p)) && method === 'GET') return state.event(m[1]);
    throw invalid(`Unrecognized request URL (${method}: ${p}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`, { status: 404 });
  }

  function send(res, status, body, headers) {
    const text = JSON.stringify(body, null, 2) + '\n';
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  async function api(req, res, rec) {
    const auth = req.headers.authorization ?? '';
    let key = '';
    if (auth.startsWith('Bearer ')) key = auth.slice(7).trim();
    else if (auth.startsWith('Basic ')) key = Buffer.from(auth.slice(6), 'base64').toString().split(':')[0];
    rec.apiKey = key;
    const requestId = rid('req_', 14);
    rec.requestId = requestId;
    const base = { 'request-id': requestId, 'stripe-version': req.headers['stripe-version'] ?? API_VERSION };
    const answer = (status, body, headers = {}) => {
      rec.status = status;
      rec.done = true;
      send(res, status, body, { ...base, ...headers });
    };
    const fail = (e, headers = {}) => answer(e.status, e.body(), { ...e.headers, ...headers });
    if (!keys.includes(key)) return fail(unauthenticated(key));
    const version = req.headers['stripe-version'];
    if (version !== undefined && !/^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$/.test(version))
      return fail(invalid(`Invalid Stripe API version: ${version}`, { param: 'Stripe-Version' }));
    const ctx = { livemode: key.includes('_live_'), version: version ?? API_VERSION, requestId };

    const fault = matchFault(rec);
    rec.fault = fault ? { ...fault, times: undefined } : null;
    const injected = (f) => {
      if (f.drop) {
        rec.status = 0;
        rec.done = true;
        req.socket.destroy();
        return true;
      }
      if (f.status) {
        const lock = f.status === 429;
        const error = {
          type: f.type ?? (f.status >= 500 ? 'api_error' : 'invalid_request_error'),
          message: f.message ?? (lock ? 'This object cannot be accessed right now because another API request or Stripe process is currently accessing it. If you see this error intermittently, retry the request. If you see this error frequently and are making multiple concurrent requests to a single object, make your requests serially or at a lower rate.' : 'An unknown error occurred'),
        };
        const code = f.code ?? (lock ? 'lock_timeout' : undefined);
        if (code) error.code = code;
        const e = new StripeError(f.status, error);
        // Stripe advises a retry of a lock timeout (the SDKs retry a 429 only then).
        const advice = f.shouldRetry ?? (code === 'lock_timeout' ? true : undefined);
        fail(e, advice !== undefined ? { 'stripe-should-retry': String(advice) } : {});
        return true;
      }
      return false;
    };
    // Idempotency (POST only, as Stripe: GET and DELETE are idempotent anyway).
    const idemKey = req.headers['idempotency-key'];
    rec.idempotencyKey = idemKey ?? null;
    let slot = null;
    if (req.method === 'POST' && idemKey !== undefined) {
      if (idemKey.length > 255) return fail(invalid('Idempotency keys must be at most 255 characters long.', { param: 'Idempotency-Key' }));
      const fingerprint = createHash('sha256').update(`${rec.method} ${rec.path}\n${sortedJson(rec.params)}`).digest('hex');
      const id = `${key}\n${idemKey}`;
      const prior = idem.get(id);
      if (prior && !prior.done)
        return fail(invalid(`There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): ${idemKey}. Please try again later.`,
          { status: 409, code: 'idempotency_key_in_use' }));
      if (prior && prior.fingerprint !== fingerprint)
        return fail(new StripeError(400, { type: 'idempotency_error', message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idemKey}' if you meant to execute a different request.` }));
      if (prior) {
        rec.replayed = true;
        return answer(prior.done.status, prior.done.body, { ...prior.done.headers, 'idempotent-replayed': 'true', 'original-request': prior.done.requestId, 'idempotency-key': idemKey });
      }
      slot = { fingerprint, done: null };
      idem.set(id, slot);
    }
    // Before execution: a slow start holds the key (a concurrent use is 409);
    // an injected error or drop stores nothing, as when Stripe never began.
    if (fault && !fault.after) {
      if (fault.delayMs) await sleep(fault.delayMs);
      if (fault.drop || fault.status) {
        if (slot) idem.delete(`${key}\n${idemKey}`);
        injected(fault);
        return;
      }
    }
    ctx.idempotencyKey = idemKey;
    let status = 200;
    let body;
    let headers = {};
    let store = true;
    try {
      body = route(rec, ctx);
    } catch (e) {
      if (!(e instanceof StripeError)) throw e;
      ({ status } = e);
      body = e.body();
      headers = e.headers;
      store = !!e.executed; // validation failures are not stored: a retry may fix them
    }
    if (slot) {
      if (store) slot.done = { status, body, headers: { ...headers, 'idempotency-key': idemKey }, requestId };
      else idem.delete(`${key}\n${idemKey}`);
    }
    if (fault && fault.after) {
      // Executed (and stored), but this answer is slow, lost or replaced.
      if (fault.delayMs) await sleep(fault.delayMs);
      if (injected(fault)) return;
    }
    answer(status, body, idemKey !== undefined ? { ...headers, 'idempotency-key': idemKey } : headers);
  }

  // The control API, for a fake run as its own process (tests in-process use
  // the methods below).
  async function control(req, res, rec, body) {
    const p = rec.path.slice('/_fake'.length);
    const ok = (x) => send(res, 200, x ?? { ok: true });
    let m;
    try {
      const j = body ? JSON.parse(body) : {};
      if (req.method === 'GET' && p === '/requests') return ok(requests.filter((r) => !r.path.startsWith('/_fake')));
      if (req.method === 'GET' && p === '/events') return ok(state.events);
      if (req.method === 'POST' && p === '/faults') return ok(fake.fault(j));
      if (req.method === 'DELETE' && p === '/faults') return ok(fake.clearFaults());
      if (req.method === 'POST' && p === '/clock') return ok(state.advance(j.advance ?? 0));
      if (req.method === 'POST' && (m = /^\/payment_intents\/([^/]+)\/(confirm|settle|dispute)$/.exec(p))) {
        if (m[2] === 'dispute') return ok(state.dispute(m[1]));
        try {
          return ok(m[2] === 'confirm' ? state.confirmIntent(m[1], { payment_method: j.payment_method ?? 'pm_card_visa' }) : state.settleIntent(m[1], j.outcome));
        } catch (e) {
          if (e instanceof StripeError) return ok(e.body());
          throw e;
        }
      }
      if (req.method === 'POST' && (m = /^\/checkout\/sessions\/([^/]+)\/(complete|settle)$/.exec(p)))
        return ok(m[2] === 'complete' ? state.completeSession(m[1], j.outcome) : state.settleSession(m[1], j.succeeded !== false));
      if (req.method === 'POST' && p === '/webhooks') return ok(webhooks.configure(j));
      if (req.method === 'POST' && p === '/webhooks/flush') return ok(await webhooks.flush(j));
      return send(res, 404, { error: `no control route ${req.method} ${p}` });
    } catch (e) {
      return send(res, 500, { error: e.message });
    }
  }

  const handler = (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const url = new URL(req.url, 'http://fake');
      const rec = {
        seq: requests.length, at: Date.now(), method: req.method, path: url.pathname, query: url.search.slice(1),
        target: req.url, headers: { ...req.headers }, body: raw, params: {}, pairs: [], status: null, done: false,
        replayed: false,
      };
      requests.push(rec);
      for (const w of arrivals) w(rec);
      try {
        if (url.pathname.startsWith('/_fake/')) return await control(req, res, rec, raw);
        const form = req.method === 'GET' ? rec.query : raw;
        try {
          const parsed = parseForm(form);
          rec.params = parsed.params;
          rec.pairs = parsed.pairs;
        } catch (e) {
          if (!(e instanceof StripeError)) throw e;
          rec.status = e.status;
          rec.done = true;
          return send(res, e.status, e.body(), { 'request-id': rid('req_', 14) });
        }
        await api(req, res, rec);
        if (log) console.log(`fake stripe: ${rec.method} ${rec.target} -> ${rec.status}${rec.replayed ? ' (replayed)' : ''}`);
      } catch (e) {
        console.log(`fake stripe: ${req.method} ${req.url} threw: ${e.stack}`);
        if (!res.headersSent) send(res, 500, { error: { type: 'api_error', message: 'fake stripe bug: ' + e.message } });
      }
    });
  };
  const server = tls ? https.createServer({ key: cert.key, cert: cert.cert }, handler) : http.createServer(handler);
  server.on(tls ? 'secureConnection' : 'connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const bound = server.address().port;

  const fake = {
    base: `${tls ? 'https' : 'http'}://127.0.0.1:${bound}`,
    port: bound,
    caFile: cert?.certFile ?? null,
    caPem: cert?.cert ?? null,
    keys,
    state,
    webhooks,
    requests,
    // Adds a fault rule: { method?, path? (string or RegExp), times = 1, status?, type?, code?,
    // message?, shouldRetry?, delayMs?, drop?, after? } — `after`: the request is executed
    // (and its answer stored under its idempotency key) before the fault applies.
    fault(rule) {
      faults.push({ times: 1, ...rule });
      return { queued: faults.filter((f) => f.times > 0).length };
    },
    clearFaults() {
      faults.length = 0;
    },
    faultsLeft: () => faults.reduce((n, f) => n + Math.max(0, f.times), 0),
    // API requests (not the control API) matching method and path.
    calls(method, p) {
      return requests.filter((r) => !r.path.startsWith('/_fake') && (!method || r.method === method)
        && (!p || (p instanceof RegExp ? p.test(r.path) : r.path === p)));
    },
    // Resolves with the first request (already here or arriving) that pred accepts.
    waitForRequest(pred, timeoutMs = 30_000) {
      const hit = requests.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          arrivals.delete(w);
          reject(new Error(`fake stripe: no matching request within ${timeoutMs} ms`));
        }, timeoutMs);
        const w = (rec) => {
          if (!pred(rec)) return;
          clearTimeout(timer);
          arrivals.delete(w);
          resolve(rec);
        };
        arrivals.add(w);
      });
    },
    // An official SDK client for this fake (the reference for the wire format).
    sdk(key = keys[0], options = {}) {
      const agent = tls ? new https.Agent({ ca: cert.cert, keepAlive: true }) : new http.Agent({ keepAlive: true });
      return new Stripe(key, { host: '127.0.0.1', port: bound, protocol: tls ? 'https' : 'http', httpAgent: agent, ...options });
    },
    async stop() {
      await webhooks.idle().catch(() => {});
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return fake;
}

// Standalone.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name, dflt) => process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))?.split('=').slice(1).join('=') ?? dflt;
  const fake = await startFakeStripe({
    port: Number(arg('port', 0)),
    tls: !process.argv.includes('--http'),
    keys: [arg('key', 'sk_test_fake_standalone')],
    webhook: { url: arg('webhook-url'), secret: arg('webhook-secret') },
    log: true,
  });
  console.log(`fake stripe listening on ${fake.base} (key ${fake.keys[0]}${fake.caFile ? `, CA ${fake.caFile}` : ''})`);
  process.on('SIGINT', () => fake.stop().then(() => process.exit(0)));
  process.on('SIGTERM', () => fake.stop().then(() => process.exit(0)));
}
