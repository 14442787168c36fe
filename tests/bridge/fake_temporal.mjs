// A fake Temporal frontend built from Temporal's own definitions: the
// compiled protobufs of `@temporalio/proto` (Temporal's published package)
// decode and encode every message, `@grpc/grpc-js` serves
// temporal.api.workflowservice.v1.WorkflowService/SignalWorkflowExecution.
// Each request is decoded with Temporal's types and recorded. Faults on
// demand: fail the next K calls, be down (no listener), be slow, answer
// NOT_FOUND for workflows that do not exist.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.resolve(here, '../node/package.json'));
export const grpc = require('@grpc/grpc-js');
export const temporal = require('@temporalio/proto');

const wf = temporal.temporal.api.workflowservice.v1;
export const METHOD = '/temporal.api.workflowservice.v1.WorkflowService/SignalWorkflowExecution';

const definition = {
  SignalWorkflowExecution: {
    path: METHOD,
    requestStream: false,
    responseStream: false,
    requestSerialize: (m) => Buffer.from(wf.SignalWorkflowExecutionRequest.encode(m).finish()),
    requestDeserialize: (b) => wf.SignalWorkflowExecutionRequest.decode(b),
    responseSerialize: (m) => Buffer.from(wf.SignalWorkflowExecutionResponse.encode(m).finish()),
    responseDeserialize: (b) => wf.SignalWorkflowExecutionResponse.decode(b),
  },
};

const text = (bytes) => Buffer.from(bytes ?? []).toString('utf8');

export class FakeTemporal {
  // tls: {key, cert} (PEM) to serve TLS instead of plaintext.
  constructor({ namespace = 'default', log = false, tls = null } = {}) {
    this.namespace = namespace;
    this.tls = tls;
    this.log = log;
    this.records = [];      // accepted signals, decoded (see record())
    this.calls = 0;         // every call that reached us
    this.failNext = 0;      // answer the next K calls UNAVAILABLE
    this.failed = 0;
    this.delayMs = 0;       // answer (after recording) this late
    this.gone = () => false; // workflow id -> NOT_FOUND?
    this.notFound = 0;
    this.problems = [];     // malformed requests
    this.server = null;
    this.port = 0;
    this.waiters = new Set();
  }

  get address() {
    return `127.0.0.1:${this.port}`;
  }

  async start(port = 0) {
    const server = new grpc.Server();
    server.addService(definition, { SignalWorkflowExecution: (call, cb) => this.handle(call, cb) });
    this.port = await new Promise((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, this.credentials(), (err, p) => (err ? reject(err) : resolve(p))));
    this.server = server;
    return this;
  }

  credentials() {
    if (!this.tls) return grpc.ServerCredentials.createInsecure();
    return grpc.ServerCredentials.createSsl(null,
      [{ private_key: Buffer.from(this.tls.key), cert_chain: Buffer.from(this.tls.cert) }], false);
  }

  // Down: the port stops listening and open connections are cut.
  async down() {
    if (!this.server) return;
    this.server.forceShutdown();
    this.server = null;
  }

  // Up again on the same port.
  async up() {
    if (!this.server) await this.start(this.port);
  }

  async stop() {
    await this.down();
  }

  handle(call, callback) {
    this.calls++;
    const req = call.request;
    // The SDKs name the namespace of every namespace-scoped call in metadata
    // (Temporal Cloud routes API-key calls by it): so must billingd.
    const namespaceHeader = call.metadata.get('temporal-namespace')[0] ?? null;
    if (namespaceHeader !== req.namespace)
      this.problems.push(`request ${req.requestId}: temporal-namespace metadata ${JSON.stringify(namespaceHeader)}, ` +
        `the request's namespace is ${JSON.stringify(req.namespace)}`);
    if (this.failNext > 0) {
      this.failNext--;
      this.failed++;
      return callback({ code: grpc.status.UNAVAILABLE, details: 'injected: frontend unavailable' });
    }
    const workflowId = req.workflowExecution?.workflowId ?? '';
    if (req.namespace !== this.namespace)
      return callback({ code: grpc.status.NOT_FOUND, details: `Namespace ${req.namespace} is not found.` });
    if (this.gone(workflowId)) {
      this.notFound++;
      return callback({ code: grpc.status.NOT_FOUND, details: 'workflow execution not found' });
    }
    const payloads = req.input?.payloads ?? [];
    const rec = {
      at: Date.now(),
      namespace: req.namespace,
      workflowId,
      runId: req.workflowExecution?.runId ?? '',
      signalName: req.signalName,
      identity: req.identity,
      requestId: req.requestId,
      payloadCount: payloads.length,
      encoding: text(payloads[0]?.metadata?.encoding),
      data: null,
      authorization: call.metadata.get('authorization')[0] ?? null,
      namespaceHeader,
    };
    try {
      rec.data = JSON.parse(text(payloads[0]?.data));
    } catch (e) {
      this.problems.push(`request ${rec.requestId}: payload is not JSON: ${e.message}`);
    }
    if (rec.payloadCount !== 1) this.problems.push(`request ${rec.requestId}: ${rec.payloadCount} payloads, expected 1`);
    if (rec.encoding !== 'json/plain') this.problems.push(`request ${rec.requestId}: encoding ${rec.encoding}`);
    this.records.push(rec);
    if (this.log) console.log(`fake temporal: ${rec.signalName} -> ${workflowId} (${rec.requestId})`);
    for (const w of this.waiters) w();
    const answer = () => callback(null, wf.SignalWorkflowExecutionResponse.create({}));
    if (this.delayMs > 0) setTimeout(answer, this.delayMs);
    else answer();
  }

  // Distinct request ids seen.
  distinct() {
    return new Set(this.records.map((r) => r.requestId)).size;
  }

  // Resolves when pred() holds (checked on each record and every 200 ms).
  async waitFor(pred, timeoutMs, what = 'condition') {
    if (pred()) return;
    await new Promise((resolve, reject) => {
      const check = () => {
        if (pred()) done(resolve);
      };
      const timer = setTimeout(() => done(reject, new Error(`fake temporal: ${what} not reached within ${timeoutMs} ms ` +
        `(${this.records.length} records, ${this.distinct()} distinct, ${this.calls} calls)`)), timeoutMs);
      const tick = setInterval(check, 200);
      const done = (f, v) => {
        clearTimeout(timer);
        clearInterval(tick);
        this.waiters.delete(check);
        f(v);
      };
      this.waiters.add(check);
    });
  }
}

// ---- the fake in a process of its own ------------------------------------------
// So its answers do not wait behind the test's own work (signing and sending
// webhook bursts in the same event loop would distort latencies). The parent
// holds a RemoteFakeTemporal with the same reading API (records, calls,
// distinct(), waitFor()) and sets faults with set({failNext, delayMs, gone}).

import { fork } from 'node:child_process';

const selfPath = fileURLToPath(import.meta.url);

export class RemoteFakeTemporal {
  constructor(opts = {}) {
    this.opts = opts;
    this.records = [];
    this.calls = 0;
    this.failed = 0;
    this.notFound = 0;
    this.problems = [];
    this.port = 0;
    this.waiters = new Set();
    this.pending = new Map();
    this.nextId = 0;
  }

  get address() {
    return `127.0.0.1:${this.port}`;
  }

  async start() {
    this.child = fork(selfPath, ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m) => this.onMessage(m));
    this.child.on('exit', () => {
      for (const [, p] of this.pending) p.reject(new Error('fake temporal process exited'));
      this.pending.clear();
    });
    this.port = await this.command('start', this.opts);
    return this;
  }

  onMessage(m) {
    if (m.type === 'records') {
      this.records.push(...m.recs);
      for (const w of this.waiters) w();
    } else if (m.type === 'counts') {
      Object.assign(this, m.counts);
    } else if (m.type === 'reply') {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error) p?.reject(new Error(m.error));
      else p?.resolve(m.result);
    }
  }

  command(cmd, arg) {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, cmd, arg });
    });
  }

  set(faults) {
    return this.command('set', faults);
  }
  // Resolves once every record the child made so far is in this.records
  // (it flushes before each reply, and IPC keeps order).
  sync() {
    return this.command('set', {});
  }
  down() {
    return this.command('down');
  }
  up() {
    return this.command('up');
  }
  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    await this.command('down').catch(() => {});
    this.child.kill('SIGKILL');
  }
  distinct() {
    return new Set(this.records.map((r) => r.requestId)).size;
  }
}
RemoteFakeTemporal.prototype.waitFor = FakeTemporal.prototype.waitFor;

async function childMain() {
  let fake = null;
  let gone = new Set();
  let outbox = [];
  let flushTimer = null;
  const sendCounts = () =>
    process.send({ type: 'counts', counts: { calls: fake.calls, failed: fake.failed, notFound: fake.notFound, problems: fake.problems } });
  const flush = () => {
    flushTimer = null;
    if (outbox.length) process.send({ type: 'records', recs: outbox });
    outbox = [];
    if (fake) sendCounts(); // so sync() brings the problems up to date too
  };
  process.on('message', async (m) => {
    try {
      let result;
      switch (m.cmd) {
        case 'start':
          fake = new FakeTemporal(m.arg ?? {});
          fake.gone = (wf) => gone.has(wf);
          // Records go to the parent in batches, every 10 ms at most.
          fake.waiters.add(() => {
            outbox.push(fake.records.at(-1));
            if (!flushTimer) flushTimer = setTimeout(flush, 10);
          });
          await fake.start();
          result = fake.port;
          break;
        case 'set':
          if (m.arg.failNext !== undefined) fake.failNext = m.arg.failNext;
          if (m.arg.delayMs !== undefined) fake.delayMs = m.arg.delayMs;
          if (m.arg.gone !== undefined) gone = new Set(m.arg.gone);
          break;
        case 'down':
          await fake.down();
          break;
        case 'up':
          await fake.up();
          break;
      }
      flush();
      process.send({ type: 'reply', id: m.id, result });
    } catch (e) {
      process.send({ type: 'reply', id: m.id, error: e.message });
    }
  });
  // Counters and problems, a few times a second.
  setInterval(() => {
    if (fake) sendCounts();
  }, 100).unref();
  process.on('disconnect', () => process.exit(0));
}

if (process.argv[1] === selfPath && process.argv.includes('--child')) childMain();
