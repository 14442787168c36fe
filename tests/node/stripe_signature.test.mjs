// Interop: Stripe's official SDK (the `stripe` npm package) against
// protocol/stripe_signature, through the sigcheck CLI (tests/tools).
// Run by ctest (label interop), which sets BILLING_SIGCHECK; needs `npm ci`
// in tests/node. Random inputs come from a seeded generator: set
// BILLING_INTEROP_SEED to replay a failure (the seed is printed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
let Stripe;
try {
  Stripe = require('stripe');
} catch (e) {
  throw new Error(`the stripe SDK is not installed: run npm ci in tests/node (${e.message})`);
}
const SIGCHECK = process.env.BILLING_SIGCHECK;
if (!SIGCHECK || !existsSync(SIGCHECK)) {
  throw new Error(`BILLING_SIGCHECK must name the built sigcheck tool (got ${SIGCHECK}); run this test through ctest`);
}

const webhooks = new Stripe('sk_test_interop_not_used').webhooks;
const NOW = 1700000000;
const TOLERANCE = 300;
const SEED = Number(process.env.BILLING_INTEROP_SEED ?? 20231114);
console.log(`interop seed: ${SEED} (set BILLING_INTEROP_SEED to replay)`);

// mulberry32: small, seeded, good enough for test data.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(SEED);
const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1)); // inclusive
const pick = (xs) => xs[int(0, xs.length - 1)];

const ALPHABETS = [
  'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-',
  ' \t\n\r"\\/\u0000\u0001\u001f\u007f',
  'äöüßéèêçñÅØÆœ€£¥',
  'Москва東京中文日本語한국어עבריתالعربية',
  '😀🚚📦✓→€\u{1F600}\u{10FFFF}\u0301\u200d\u2028\u2029\ufeff',
];
function randomText(maxLen) {
  const chars = [...pick(ALPHABETS) + pick(ALPHABETS)]; // code points, never lone surrogates
  let s = '';
  for (let n = int(0, maxLen); n > 0; n--) s += pick(chars);
  return s;
}
function randomValue(depth) {
  switch (int(0, depth > 3 ? 3 : 5)) {
    case 0: return randomText(40);
    case 1: return int(-1e9, 1e9) * (random() < 0.3 ? 0.001 : 1);
    case 2: return pick([true, false, null]);
    case 3: return randomText(8);
    case 4: return Array.from({ length: int(0, 5) }, () => randomValue(depth + 1));
    default: return randomObject(depth + 1);
  }
}
function randomObject(depth = 0) {
  const o = {};
  for (let n = int(1, 8); n > 0; n--) o[randomText(12) || 'k'] = randomValue(depth);
  return o;
}
function randomPayload() {
  const event = {
    id: `evt_${randomText(10)}`,
    object: 'event',
    type: pick(['payment_intent.succeeded', 'payment_intent.payment_failed', 'charge.refunded']),
    data: { object: randomObject() },
  };
  const style = int(0, 2);
  return JSON.stringify(event, null, style === 0 ? undefined : style === 1 ? 2 : '\t');
}
function randomSecret() {
  const base62 = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let s = '';
  for (let n = int(16, 48); n > 0; n--) s += pick([...base62]);
  switch (int(0, 9)) {
    case 0: return s;                              // no whsec_ prefix: still just a key
    case 1: return `whsec_${s}${randomText(4)}`;   // non-ASCII key bytes
    default: return `whsec_${s}`;
  }
}

const hex = (s) => Buffer.from(s, 'utf8').toString('hex');

// One sigcheck process per batch: one JSON line in, one out.
function sigcheck(requests) {
  const input = requests.map((r) => JSON.stringify(r)).join('\n') + '\n';
  const run = spawnSync(SIGCHECK, [], { input, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' });
  assert.equal(run.status, 0, `sigcheck failed: ${run.stderr}`);
  const lines = run.stdout.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));
  assert.equal(lines.length, requests.length);
  lines.forEach((l, i) => assert.equal(l.bad_input, undefined, `sigcheck rejected request ${i}: ${l.bad_input}`));
  return lines;
}

// The SDK's verdict and first error line, clock pinned to `now`.
function sdkVerdict(payload, header, secret, now = NOW, tolerance = TOLERANCE) {
  try {
    webhooks.signature.verifyHeader(payload, header, secret, tolerance, undefined, now * 1000);
    return { verdict: 'accept', error: null };
  } catch (e) {
    return { verdict: 'reject', error: e.message.split('\n')[0] };
  }
}

// Our to_string() phrase for each SDK message.
const SDK_TO_OURS = [
  ['No webhook payload was provided.', 'no webhook payload was provided'],
  ['No stripe-signature header value was provided.', 'no stripe-signature header value was provided'],
  ['Unable to extract timestamp and signatures from header', 'unable to extract timestamp and signatures from header'],
  ['No signatures found with expected scheme', 'no signatures found with expected scheme'],
  ['No webhook secret value was provided.', 'no webhook secret configured'],
  ['secureCompare must receive two arguments', 'malformed stripe-signature header'],
  ['No signatures found matching the expected signature', 'no signatures found matching the expected signature for payload'],
  ['Timestamp outside the tolerance zone', 'timestamp outside the tolerance zone'],
];
function oursFor(sdkError) {
  if (sdkError === null) return 'ok';
  const hit = SDK_TO_OURS.find(([prefix]) => sdkError.startsWith(prefix));
  assert.ok(hit, `unmapped SDK error: ${sdkError}`);
  return hit[1];
}

const v1Of = (header) => header.slice(header.lastIndexOf('v1=') + 3);
function flipHexChar(sig, i) {
  const digits = '0123456789abcdef';
  const c = digits[(digits.indexOf(sig[i]) + int(1, 15)) % 16];
  return sig.slice(0, i) + c + sig.slice(i + 1);
}

test('the shared vectors still give the SDK verdicts recorded in them', () => {
  const file = process.env.BILLING_SIGNATURE_VECTORS ?? '../data/stripe-signature-vectors.json';
  const doc = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(doc.vectors.length, 19);
  const ours = sigcheck(doc.vectors.map((v) => ({
    op: 'verify', header: v.header, payload_hex: hex(v.payload), secrets: [v.secret], now: doc.now,
  })));
  doc.vectors.forEach((v, i) => {
    const sdk = sdkVerdict(v.payload, v.header, v.secret, doc.now, doc.tolerance_s);
    assert.equal(sdk.verdict, v.expect, `${v.name}: installed SDK disagrees with the file`);
    assert.equal(sdk.error?.trimEnd() ?? null, v.error_first_line, `${v.name}: SDK error`);
    assert.equal(ours[i].verdict, v.expect, `${v.name}: ours says ${ours[i].error}`);
    assert.equal(ours[i].error, oursFor(sdk.error), `${v.name}: reason`);
  });
});

test('~200 SDK-signed random payloads: accepted; tampered copies rejected', () => {
  const N = 200;
  const cases = [];
  const requests = [];
  for (let i = 0; i < N; i++) {
    const payload = randomPayload();
    const secret = randomSecret();
    const other = randomSecret();
    const t = NOW - int(-1000, TOLERANCE); // up to 1000 s in the future, up to exactly the tolerance in the past
    const header = webhooks.generateTestHeaderString({ payload, secret, timestamp: t });
    // The SDK itself accepts it (and it is valid JSON for constructEvent).
    assert.deepEqual(webhooks.constructEvent(payload, header, secret, TOLERANCE, undefined, NOW * 1000), JSON.parse(payload));

    const bytes = Buffer.from(payload, 'utf8');
    const flipped = Buffer.from(bytes);
    flipped[int(0, flipped.length - 1)] ^= 1 << int(0, 7);
    const sig = v1Of(header);
    const badSig = header.slice(0, header.length - 64) + flipHexChar(sig, int(0, 63));
    const late = t + TOLERANCE + int(1, 100000);

    const base = { op: 'verify', header, payload_hex: bytes.toString('hex'), secrets: [secret], now: NOW };
    const batch = [
      ['valid', base, 'ok'],
      ['rotation, other secret first', { ...base, secrets: [other, secret] }, 'ok'],
      ['rotation, other secret last', { ...base, secrets: [secret, other] }, 'ok'],
      ['body byte flipped', { ...base, payload_hex: flipped.toString('hex') }, 'no signatures found matching the expected signature for payload'],
      ['signature byte flipped', { ...base, header: badSig }, 'no signatures found matching the expected signature for payload'],
      ['timestamp beyond tolerance', { ...base, now: late }, 'timestamp outside the tolerance zone'],
      ['wrong secret', { ...base, secrets: [other] }, 'no signatures found matching the expected signature for payload'],
    ];
    // The SDK agrees with each expectation.
    const sdk = [
      sdkVerdict(payload, header, secret),
      null, null,
      sdkVerdict(flipped, header, secret),
      sdkVerdict(payload, badSig, secret),
      sdkVerdict(payload, header, secret, late),
      sdkVerdict(payload, header, other),
    ];
    batch.forEach(([what, req, expected], k) => {
      if (sdk[k]) assert.equal(oursFor(sdk[k].error), expected, `sample ${i} ${what}: SDK says ${sdk[k].error}`);
      cases.push({ i, what, expected });
      requests.push(req);
    });
  }
  const ours = sigcheck(requests);
  const failures = ours
    .map((r, k) => ({ ...cases[k], got: r.error }))
    .filter((c) => c.got !== c.expected);
  assert.deepEqual(failures.slice(0, 10), [], `${failures.length} of ${ours.length} verdicts differ`);
  assert.equal(ours.filter((r) => r.verdict === 'accept').length, 3 * N);
});

test('our sign_stripe_payload is byte-identical to the SDK and accepted by constructEvent', () => {
  const samples = Array.from({ length: 100 }, () => ({
    payload: randomPayload(), secret: randomSecret(), t: NOW - int(-1000, 1000),
  }));
  const ours = sigcheck(samples.map((s) => ({ op: 'sign', payload_hex: hex(s.payload), secret: s.secret, t: s.t })));
  samples.forEach((s, i) => {
    const header = ours[i].header;
    assert.equal(header, webhooks.generateTestHeaderString({ payload: s.payload, secret: s.secret, timestamp: s.t }));
    const event = webhooks.constructEvent(s.payload, header, s.secret, TOLERANCE, undefined, (s.t + 10) * 1000);
    assert.deepEqual(event, JSON.parse(s.payload));
  });
});

test('odd headers: same verdict and reason as the SDK', () => {
  const payload = randomPayload();
  const secret = randomSecret();
  const sig = v1Of(webhooks.generateTestHeaderString({ payload, secret, timestamp: NOW }));
  const pieces = [
    `t=${NOW}`, `t=${NOW}`, `t=${NOW - 1}`, `t=${NOW + 1}`, `t=${NOW - 301}`, `t= ${NOW}`, `t=\t${NOW}`,
    `t=+${NOW}`, `t=0${NOW}`, `t=${NOW}abc`, `t=${NOW}.5`, `t=${NOW}=9`, 't=-1', 't=-1.5', 't=abc', 't=', 't',
    ' t=1', 'T=1', `v1=${sig}`, `v1=${sig}`, `v1=${sig}=x`, `v1=${sig} `, ` v1=${sig}`, `v1=${sig.toUpperCase()}`,
    `v1=${sig.slice(1)}`, `v1=${sig}0`, `v1=${'0'.repeat(64)}`, 'v1=', 'v1', 'v1==', `v0=${sig}`, 'v0=', 'v2=abc',
    '', 'x', '=', 'a=b=c', `V1=${sig}`,
  ];
  const headers = [];
  for (let i = 0; i < 1500; i++) {
    const items = Array.from({ length: int(0, 5) }, () => pick(pieces));
    headers.push(items.join(','));
  }
  // Edge payloads and secrets, one of each per case below.
  const cases = headers.map((header) => ({
    header,
    payload: random() < 0.03 ? '' : payload,
    secret: random() < 0.03 ? pick(['', ' ', '\n\t']) : secret,
    tolerance: pick([TOLERANCE, TOLERANCE, 0, -5, 1, 301]), // 0 or less: no age check
  }));
  const ours = sigcheck(cases.map((c) => ({
    op: 'verify', header: c.header, payload_hex: hex(c.payload), secrets: [c.secret], now: NOW, tolerance: c.tolerance,
  })));
  const failures = [];
  let accepted = 0;
  cases.forEach((c, i) => {
    const sdk = sdkVerdict(c.payload, c.header, c.secret, NOW, c.tolerance);
    accepted += sdk.verdict === 'accept';
    let expected = oursFor(sdk.error);
    // Known difference: a non-numeric t is NaN to the SDK, which then fails
    // to match "NaN.<body>"; we call it malformed. Both reject.
    if (ours[i].error === 'malformed stripe-signature header' &&
        expected === 'no signatures found matching the expected signature for payload') expected = ours[i].error;
    if (ours[i].verdict !== sdk.verdict || ours[i].error !== expected) {
      failures.push({ header: c.header.replaceAll(sig, 'SIG'), payload: c.payload.length, secret: c.secret.length, tolerance: c.tolerance,
        sdk: sdk.error, ours: ours[i].error });
    }
  });
  assert.deepEqual(failures.slice(0, 10), [], `${failures.length} of ${cases.length} differ`);
  assert.ok(accepted > 50, `only ${accepted} accepted: the generator is too weak to mean much`);
});
