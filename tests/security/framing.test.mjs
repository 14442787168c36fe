// Request smuggling over raw sockets against the real billingd: each message
// with ambiguous or malformed framing is answered (400, or 431 for an
// oversized head) with Connection: close, the connection is closed, and a
// request hidden behind it on the same connection — a cancel of a PENDING
// invoice, with a valid key — is never executed. A control case shows the
// same cancel, behind a well-formed request, is executed: the check can fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as it from '../integration/lib.mjs';
import { caseRunner } from './sec_lib.mjs';

test('malformed framing is refused, closed, and nothing behind it runs', { timeout: 180_000 }, async () => {
  await it.withService('sec_framing', {}, async (ctx) => {
    const svc = await ctx.start({ args: ['--max-requests-per-connection=5'] });
    const key = ctx.secrets.apiKey;
    const make = async (n) => {
      const r = await it.request(`${svc.base}/v1/invoices`, {
        method: 'POST', body: { shipment_id: `shp_fr_${n}`, user_id: 'usr_fr', workflow_id: 'wf_fr', amount_cents: 900, currency: 'usd' },
      });
      assert.equal(r.status, 201, r.text);
      return r.json;
    };
    const victim = await make('victim');
    const smuggled = `POST /v1/invoices/${victim.id}/cancel HTTP/1.1\r\nHost: billingd\r\nAuthorization: Bearer ${key}\r\nContent-Length: 0\r\n\r\n`;
    const auth = `Authorization: Bearer ${key}\r\n`;
    const hook = 'POST /webhook HTTP/1.1\r\nHost: billingd\r\n';
    const list = `GET /v1/invoices?shipment_id=x HTTP/1.1\r\nHost: billingd\r\n${auth}`;
    // [name, bytes before the smuggled request, status]
    const framings = [
      ['Transfer-Encoding: chunked, identity with Content-Length: 0 (the reported smuggle)',
        `${hook}Transfer-Encoding: chunked, identity\r\nContent-Length: 0\r\n\r\n`, 400],
      ['Transfer-Encoding: identity', `${hook}Transfer-Encoding: identity\r\n\r\n`, 400],
      ['Transfer-Encoding: gzip, chunked', `${hook}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, 400],
      ['Transfer-Encoding: xchunked', `${hook}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 400],
      ['Transfer-Encoding: chunked;foo', `${hook}Transfer-Encoding: chunked;foo\r\n\r\n0\r\n\r\n`, 400],
      ['an empty Transfer-Encoding', `${hook}Transfer-Encoding: \r\nContent-Length: 0\r\n\r\n`, 400],
      ['two Transfer-Encoding fields', `${hook}Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
      ['Transfer-Encoding: chunked and Content-Length', `${hook}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`, 400],
      ['Content-Length and Transfer-Encoding: chunked (CL first)', `${hook}Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
      ['two equal Content-Length fields', `${hook}Content-Length: 0\r\nContent-Length: 0\r\n\r\n`, 400],
      ['two different Content-Length fields', `${hook}Content-Length: 0\r\nContent-Length: 44\r\n\r\n`, 400],
      ['Content-Length: 0, 0', `${hook}Content-Length: 0, 0\r\n\r\n`, 400],
      ['Content-Length: +0', `${hook}Content-Length: +0\r\n\r\n`, 400],
      ['HTTP/1.1 without Host', `GET /v1/invoices?shipment_id=x HTTP/1.1\r\n${auth}\r\n`, 400],
      ['two Host fields', `${list}Host: other\r\n\r\n`, 400],
      ['obs-fold (a folded header line)', `${list}X-Folded: a\r\n b\r\n\r\n`, 400],
      ['obs-fold hiding Transfer-Encoding', `${hook}X-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n`, 400],
      ['NUL in a header value', `${list}X-Bad: a\u0000b\r\n\r\n`, 400],
      ['a control character in a header name', `${list}X-B\u0001ad: 1\r\n\r\n`, 400],
      ['a bare LF line ending', `GET /healthz HTTP/1.1\nHost: billingd\n\n`, 400],
      ['Transfer-Encoding on HTTP/1.0', `POST /webhook HTTP/1.0\r\nHost: billingd\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
      ['a request line of 20 KB', `GET /v1/invoices?shipment_id=${'x'.repeat(20_000)} HTTP/1.1\r\nHost: billingd\r\n\r\n`, 431],
      ['a header of 20 KB', `${list}X-Big: ${'y'.repeat(20_000)}\r\n\r\n`, 431],
      ['a garbage request line', 'HELLO\r\n\r\n', 400],
    ];
    const cases = caseRunner(ctx.db, 'framing');
    for (const [name, bytes, status] of framings) {
      await cases.run(name, async () => {
        const raw = await it.rawExchange(svc.port, bytes + smuggled);
        const all = it.parseRawResponses(raw.text);
        return { ...(all[0] ?? { status: 0, error: raw.text.slice(0, 120) }), all, closed: raw.closed };
      }, (res) => {
        const p = [];
        if (res.status !== status) p.push(`status ${res.status}, want ${status}`);
        if (res.status && res.headers['connection']?.toLowerCase() !== 'close') p.push(`Connection: ${res.headers['connection']}, want close`);
        if (!res.closed) p.push('the connection stayed open');
        if (res.all?.length > 1) p.push(`${res.all.length} responses: the smuggled request was answered (${res.all[1].status})`);
        return p;
      });
    }
    const [row] = await ctx.db.query('SELECT status FROM invoices WHERE id = $1', [victim.id]);
    assert.equal(row.status, 'PENDING', 'a smuggled cancel ran');

    // Control: behind a well-formed request, the same cancel runs.
    const control = await make('control');
    const controlCancel = smuggled.replace(victim.id, control.id);
    await cases.run('control: a well-formed chunked webhook, then the cancel', async () => {
      const raw = await it.rawExchange(svc.port, `${hook}Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n` + controlCancel + 'GET /healthz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n');
      return { all: it.parseRawResponses(raw.text), status: 200 };
    }, (res) => {
      const got = res.all.map((x) => x.status).join(',');
      return got === '400,200,200' ? [] : [`answers ${got}, want 400 (no signature),200 (cancel),200`];
    }, { changes: true });
    const [ctl] = await ctx.db.query('SELECT status FROM invoices WHERE id = $1', [control.id]);
    assert.equal(ctl.status, 'CANCELLED', 'the control cancel did not run: the smuggling check cannot fail');

    // max_requests_per_connection=5: the fifth answer closes, a sixth is not run.
    const other = await make('cap');
    await cases.run('six pipelined requests with max_requests_per_connection=5', async () => {
      const ping = 'GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n';
      const raw = await it.rawExchange(svc.port, ping.repeat(5) + smuggled.replace(victim.id, other.id));
      const all = it.parseRawResponses(raw.text);
      return { all, closed: raw.closed, status: all.length };
    }, (res) => {
      const p = [];
      if (res.all.length !== 5) p.push(`${res.all.length} answers, want 5`);
      if (res.all[4]?.headers.connection !== 'close') p.push('the fifth answer does not close');
      if (!res.closed) p.push('the connection stayed open');
      return p;
    });
    const [capRow] = await ctx.db.query('SELECT status FROM invoices WHERE id = $1', [other.id]);
    assert.equal(capRow.status, 'PENDING', 'the request past max_requests_per_connection ran');
    const m = await it.metrics(svc.base);
    assert.ok(m.billing_http_rejected_framing_total >= 19, `billing_http_rejected_framing_total ${m.billing_http_rejected_framing_total}`);
    it.assertNoProblems(cases.problems, 'framing');
  });
});

test('max_buffered_bytes: past it 503 and close; others keep working', { timeout: 120_000 }, async () => {
  await it.withService('sec_buffer', {}, async (ctx) => {
    const svc = await ctx.start({ args: ['--max-buffered-bytes=262144'] });
    const net = await import('node:net');
    // Open connections each holding 100 KB of an unfinished 1 MB body.
    const held = [];
    for (let i = 0; i < 2; ++i) {
      const s = net.connect(svc.port, '127.0.0.1');
      s.on('error', () => {});
      await new Promise((res) => s.on('connect', res));
      s.write(`POST /webhook HTTP/1.1\r\nHost: b\r\nContent-Length: 1000000\r\n\r\n${'x'.repeat(100_000)}`);
      held.push(s);
    }
    let m;
    for (let k = 0; k < 100; ++k) {
      m = await it.metrics(svc.base);
      if (m.billing_http_buffered_bytes >= 200_000) break;
      await it.sleep(50);
    }
    assert.ok(m.billing_http_buffered_bytes >= 200_000, `buffered ${m.billing_http_buffered_bytes}`);
    const third = await it.rawExchange(svc.port, `POST /webhook HTTP/1.1\r\nHost: b\r\nContent-Length: 1000000\r\n\r\n${'x'.repeat(100_000)}`);
    const res = it.parseRawResponse(third);
    console.log(`case framing: a third 100 KB partial body past max_buffered_bytes=262144 -> ${res.status}`);
    assert.equal(res.status, 503, third.text.slice(0, 200));
    assert.equal(res.headers['retry-after'], '1');
    assert.ok(third.closed);
    const ok = await it.request(`${svc.base}/healthz`);
    assert.equal(ok.status, 200, 'a small request still works');
    for (const s of held) s.destroy();
    for (let k = 0; k < 100; ++k) {
      m = await it.metrics(svc.base);
      if (m.billing_http_buffered_bytes === 0) break;
      await it.sleep(50);
    }
    assert.equal(m.billing_http_buffered_bytes, 0, `the bytes held by closed connections are released: ${JSON.stringify(m)}`);
    assert.ok(m.billing_http_rejected_buffer_total >= 1);
  });
});
