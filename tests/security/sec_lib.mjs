// Shared by the security tier: a table runner that takes the database's
// fingerprint (row counts and digests of invoices, webhook_events, outbox)
// before and after every case and fails the case if it changed when it should
// not, plus the keys every test configures. Each case's answer is printed, so
// the run's output lists every case with its answer.
import * as it from '../integration/lib.mjs';

// One key per scope, one with every scope, one with every scope but one.
export function makeKeys() {
  const keys = {
    writer: it.newApiKey('writer', ['invoices:write']),
    reader: it.newApiKey('reader', ['invoices:read']),
    sim: it.newApiKey('sim', ['simulator']),
    ops: it.newApiKey('ops', ['admin']),
    all: it.newApiKey('all', it.ALL_SCOPES),
  };
  return { keys, config: Object.values(keys).map((k) => k.entry).join(';') };
}

// Runs cases against `db`; collect problems and assert once at the end.
export function caseRunner(db, tier) {
  const problems = [];
  const answers = [];
  return {
    problems,
    answers,
    // send() -> response-like {status, headers, json, text}; expect(res) -> [problems];
    // changes: true when the case is meant to write (its own expect checks what).
    async run(name, send, expect, { changes = false } = {}) {
      const before = await db.fingerprint();
      let res;
      try {
        res = await send();
      } catch (e) {
        res = { status: 0, error: e.message };
      }
      const after = await db.fingerprint();
      const p = [...(await expect(res, { before, after }))];
      if (!changes && JSON.stringify(before) !== JSON.stringify(after))
        p.push(`the database changed: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
      const summary = `${res.status}${res.json?.error?.code ? ' ' + res.json.error.code : res.json?.outcome ? ' ' + res.json.outcome : ''}`;
      answers.push(`${tier}: ${name} -> ${summary}`);
      console.log(`case ${tier}: ${name} -> ${summary}${p.length ? '  FAILED: ' + p.join('; ') : ''}`);
      if (p.length) problems.push(`${name}: ${p.join('; ')}`);
      return res;
    },
  };
}

// Checks of an error answer: status, error.code, and optionally more.
export function wantError(status, code, more = () => []) {
  return (res) => {
    const p = [];
    if (res.status !== status) p.push(`status ${res.status}, want ${status} (${res.text ?? res.error})`);
    else if (res.json?.error?.code !== code) p.push(`error.code ${res.json?.error?.code}, want ${code} (${res.text})`);
    if (res.status >= 400 && res.json?.error && typeof res.json.error.request_id !== 'string')
      p.push(`no error.request_id in ${res.text}`);
    p.push(...more(res));
    return p;
  };
}

export function wantStatus(status, more = () => []) {
  return (res) => [...(res.status === status ? [] : [`status ${res.status}, want ${status} (${res.text ?? res.error})`]), ...more(res)];
}
