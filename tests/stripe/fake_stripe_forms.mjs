// The fake Stripe's request side: form bodies and query strings with
// bracketed keys parsed as Stripe's servers parse them, parameter checks
// against a per-endpoint schema with Stripe's own error texts, and the error
// JSON. No I/O.

// An error answer: status and Stripe's error object.
export class StripeError extends Error {
  constructor(status, error, { headers = {}, intent } = {}) {
    super(error.message);
    this.status = status;
    this.error = error;
    this.headers = headers;
    if (intent) this.error.payment_intent = intent;
  }
  body() {
    return { error: this.error };
  }
}

export function invalid(message, { param, code, status = 400, type = 'invalid_request_error', ...rest } = {}) {
  const error = { message, type };
  if (code) {
    error.code = code;
    error.doc_url = `https://stripe.com/docs/error-codes/${code.replace(/_/g, '-')}`;
  }
  if (param) error.param = param;
  return new StripeError(status, { ...error, ...rest });
}

function decode(s) {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s; // a malformed escape stays as it is
  }
}

// "a[b][0]=x&c=y" -> { a: { b: ['x'] }, c: 'y' }, plus the flat pairs in order.
// Numeric segments make arrays; a key both scalar and nested is a 400.
export function parseForm(text) {
  const pairs = [];
  const root = {};
  if (!text) return { params: root, pairs };
  for (const part of text.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = decode(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? '' : decode(part.slice(eq + 1));
    pairs.push([key, value]);
    const m = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
    if (!m) throw invalid(`Invalid parameter name: ${key}`, { param: key });
    const path = [m[1], ...[...m[2].matchAll(/\[([^[\]]*)\]/g)].map((x) => x[1])];
    let node = root;
    for (let i = 0; i < path.length; ++i) {
      let seg = path[i];
      const last = i === path.length - 1;
      if (seg === '') seg = Array.isArray(node) ? String(node.length) : String(Object.keys(node).length); // a[]=x
      if (last) {
        if (node[seg] !== undefined && typeof node[seg] === 'object')
          throw invalid(`Invalid hash`, { param: path.slice(0, i + 1).join('.') });
        node[seg] = value;
      } else {
        const wantArray = /^\d+$/.test(path[i + 1] ?? '') || path[i + 1] === '';
        if (node[seg] === undefined) node[seg] = wantArray ? [] : {};
        else if (typeof node[seg] !== 'object')
          throw invalid(`Invalid hash`, { param: path.slice(0, i + 1).join('.') });
        node = node[seg];
      }
    }
  }
  return { params: root, pairs };
}

// Param name as Stripe writes it in messages: a[b][c].
function pname(path) {
  return path.length ? path[0] + path.slice(1).map((s) => `[${s}]`).join('') : '';
}

// Schema: 'string' | 'integer' | 'boolean' | 'metadata' | 'timestamp' |
// [schema] (array) | { key: schema } (hash) | { $enum: [...] }.
// Returns a copy with converted values; throws Stripe's 400 for the first
// unknown or malformed parameter.
export function check(params, schema, path = []) {
  if (typeof schema === 'string' || schema.$enum) return scalar(params, schema, path);
  if (Array.isArray(schema)) {
    if (typeof params !== 'object' || params === null)
      throw invalid(`Invalid array`, { param: pname(path) });
    return Object.keys(params).map((k) => check(params[k], schema[0], [...path, k]));
  }
  if (typeof params !== 'object' || params === null || Array.isArray(params))
    throw invalid(`Invalid object`, { param: pname(path) });
  const out = {};
  for (const [k, v] of Object.entries(params)) {
    if (!(k in schema)) throw invalid(`Received unknown parameter: ${pname([...path, k])}`, { param: pname([...path, k]) });
    out[k] = check(v, schema[k], [...path, k]);
  }
  return out;
}

function scalar(v, schema, path) {
  const name = pname(path);
  if (schema === 'metadata') {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`Invalid object`, { param: name });
    const keys = Object.keys(v);
    if (keys.length > 50) throw invalid('You can specify up to 50 keys for metadata.', { param: name });
    for (const k of keys) {
      if (k.length > 40) throw invalid(`Metadata keys can be up to 40 characters long.`, { param: `${name}[${k}]` });
      if (typeof v[k] !== 'string') throw invalid(`Invalid string`, { param: `${name}[${k}]` });
      if (v[k].length > 500) throw invalid(`Metadata values can be up to 500 characters long.`, { param: `${name}[${k}]` });
    }
    return { ...v };
  }
  if (typeof v !== 'string') throw invalid(`Invalid ${schema.$enum ? 'string' : schema}`, { param: name });
  switch (schema) {
    case 'string':
      return v;
    case 'integer':
    case 'timestamp':
      if (!/^-?\d+$/.test(v)) throw invalid(`Invalid integer: ${v}`, { param: name });
      return Number(v);
    case 'boolean':
      if (v !== 'true' && v !== 'false') throw invalid(`Invalid boolean: ${v}`, { param: name });
      return v === 'true';
    default:
      if (schema.$enum) {
        if (!schema.$enum.includes(v))
          throw invalid(`Invalid ${path.at(-1)}: must be one of ${schema.$enum.join(', ')}`, { param: name });
        return v;
      }
      throw new Error(`bad schema ${JSON.stringify(schema)}`);
  }
}

export function required(params, ...names) {
  for (const n of names) {
    if (params[n] === undefined || params[n] === '') throw invalid(`Missing required param: ${n}.`, { param: n });
  }
}

// Minimum charge amounts (https://stripe.com/docs/currencies#minimum-and-maximum-charge-amounts),
// in the currency's minor unit, for the currencies the tests use; others: 50.
const MIN_AMOUNT = { usd: 50, eur: 50, gbp: 30, chf: 50, cad: 50, aud: 50, jpy: 50, sek: 300, dkk: 250, nok: 300 };
const SYMBOL = { usd: '$', eur: '€', gbp: '£', jpy: '¥' };
const ZERO_DECIMAL = new Set(['jpy', 'krw', 'vnd', 'clp', 'xof', 'xaf', 'bif', 'djf', 'gnf', 'kmf', 'mga', 'pyg', 'rwf', 'ugx', 'vuv', 'xpf']);
export const CURRENCIES = new Set(['usd', 'eur', 'gbp', 'chf', 'cad', 'aud', 'jpy', 'sek', 'dkk', 'nok', 'pln', 'czk', 'nzd', 'sgd', 'hkd', 'mxn', 'brl', 'inr']);

function money(amount, currency) {
  const major = ZERO_DECIMAL.has(currency) ? String(amount) : (amount / 100).toFixed(2);
  return `${SYMBOL[currency] ?? ''}${major}`;
}

export function checkCurrency(currency, param = 'currency') {
  if (!CURRENCIES.has(currency))
    throw invalid(`Invalid currency: ${currency}. Stripe currently supports these currencies: ${[...CURRENCIES].join(', ')}`, { param });
}

export function checkAmount(amount, currency, param = 'amount') {
  const min = MIN_AMOUNT[currency] ?? 50;
  if (amount < min)
    throw invalid(`Amount must be at least ${money(min, currency)} ${currency}`, { param, code: 'amount_too_small' });
  if (amount > 99_999_999)
    throw invalid(`Amount must be no more than ${money(99_999_999, currency)}`, { param, code: 'amount_too_large' });
}

// Stripe's 401 texts; the key is masked as Stripe masks it.
export function maskKey(key) {
  const m = /^(sk|rk|pk)_(test|live)_/.exec(key);
  const prefix = m ? m[0] : '';
  return prefix + '*'.repeat(Math.max(0, key.length - prefix.length - 4)) + key.slice(-4);
}

export function unauthenticated(provided) {
  if (!provided)
    return new StripeError(401, {
      message: "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
      type: 'invalid_request_error',
    });
  return new StripeError(401, { message: `Invalid API Key provided: ${maskKey(provided)}`, type: 'invalid_request_error' });
}
