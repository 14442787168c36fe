// form_vectors.json (what stripe_form_test.cpp checks billingd's encoder
// against) re-derived with the installed `stripe` SDK: if the SDK's encoding
// changes, this fails and the vectors must be regenerated and the encoder
// checked again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeDir = path.resolve(here, '../node');
const require = createRequire(path.join(nodeDir, 'package.json'));
// The SDK's own encoder (not exported: loaded by its file path; main is
// <sdk>/cjs/stripe.cjs.node.js).
const cjs = path.dirname(require.resolve('stripe'));
const utils = require(path.join(cjs, 'utils.js'));
const { version } = JSON.parse(readFileSync(path.join(cjs, '..', 'package.json'), 'utf8'));

test('form vectors are what the installed SDK writes', () => {
  const v = JSON.parse(readFileSync(path.join(here, 'form_vectors.json'), 'utf8'));
  assert.equal(v.sdk, `stripe-node ${version}`, 'vectors made with another SDK version: regenerate them');
  assert.ok(v.vectors.length >= 20);
  for (const c of v.vectors) assert.equal(utils.queryStringifyRequestData(c.params), c.encoded, c.name);
});
