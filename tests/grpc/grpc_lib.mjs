// Helpers for the gRPC interop tests (label interop): a client of
// billing.v1.BillingService built by @grpc/proto-loader from our own
// protocol/billing/v1/billing.proto, the standard health client
// (grpc-health-check), a reflection client (grpc.reflection.v1alpha, the
// .proto shipped by @grpc/reflection) and a decoder for the
// google.rpc.Status in `grpc-status-details-bin` (our vendored subset of
// googleapis, loaded with protobufjs). The rest (database, billingd, keys)
// comes from tests/integration/lib.mjs.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '../..');
const nodeDir = path.resolve(here, '../node');
const require = createRequire(path.join(nodeDir, 'package.json'));

function load(name) {
  try {
    return require(name);
  } catch (e) {
    throw new Error(`the npm package '${name}' is not installed: run \`npm ci\` in ${nodeDir} (${e.message})`);
  }
}
export const grpc = load('@grpc/grpc-js');
const protoLoader = load('@grpc/proto-loader');
const health = load('grpc-health-check');
const protobuf = load('protobufjs');

const protoDir = path.join(repo, 'protocol');
const loaderOptions = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

const billingDef = protoLoader.loadSync(path.join(protoDir, 'billing/v1/billing.proto'), {
  ...loaderOptions, includeDirs: [protoDir],
});
export const billingPkg = grpc.loadPackageDefinition(billingDef).billing.v1;
export const BillingService = billingPkg.BillingService;

const reflectionProto = path.join(path.dirname(require.resolve('@grpc/reflection/package.json')),
  'build/proto/grpc/reflection/v1alpha/reflection.proto');
const reflectionDef = protoLoader.loadSync(reflectionProto, loaderOptions);
const ReflectionClient = grpc.loadPackageDefinition(reflectionDef).grpc.reflection.v1alpha.ServerReflection;

const HealthClient = grpc.makeGenericClientConstructor(health.service, 'Health');

const rpcRoot = protobuf.loadSync([path.join(protoDir, 'google/rpc/status.proto'),
  path.join(protoDir, 'google/rpc/error_details.proto')]);
const RpcStatus = rpcRoot.lookupType('google.rpc.Status');
const BadRequest = rpcRoot.lookupType('google.rpc.BadRequest');

export function credentials(ca) {
  return ca ? grpc.credentials.createSsl(Buffer.from(ca)) : grpc.credentials.createInsecure();
}

export function billingClient(address, { ca } = {}) {
  return new BillingService(address, credentials(ca));
}
export function healthClient(address, { ca } = {}) {
  return new HealthClient(address, credentials(ca));
}
export function reflectionClient(address) {
  return new ReflectionClient(address, grpc.credentials.createInsecure());
}

function metadataFor({ key, requestId, extra = {} }) {
  const md = new grpc.Metadata();
  if (key) md.set('authorization', `Bearer ${key}`);
  if (requestId !== undefined) md.set('x-request-id', requestId);
  for (const [k, v] of Object.entries(extra)) md.set(k, v);
  return md;
}

// The google.rpc.BadRequest field violations of an error, or [].
export function badRequestFields(trailers) {
  const raw = trailers?.get('grpc-status-details-bin')?.[0];
  if (!raw) return [];
  const st = RpcStatus.decode(Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'base64'));
  const out = [];
  for (const any of st.details) {
    if (any.type_url !== 'type.googleapis.com/google.rpc.BadRequest' && any.typeUrl !== 'type.googleapis.com/google.rpc.BadRequest') continue;
    const br = BadRequest.decode(any.value);
    for (const v of br.field_violations ?? br.fieldViolations ?? []) out.push(v.field);
  }
  return out;
}

// One unary call; never rejects. Resolves {code, value, details, headers,
// trailers, requestId, fields (BadRequest)}; code 0 is OK.
export function unary(client, method, request, { key, requestId, deadlineMs = 10_000, extra } = {}) {
  return new Promise((resolve) => {
    let headers = null;
    const call = client[method](request, metadataFor({ key, requestId, extra }),
      { deadline: Date.now() + deadlineMs }, (err, value) => {
        if (err) {
          const trailers = err.metadata;
          resolve({
            code: err.code, details: err.details, headers, trailers,
            requestId: headers?.get('x-request-id')?.[0] ?? trailers?.get('x-request-id')?.[0],
            fields: badRequestFields(trailers),
          });
        } else {
          resolve({ code: 0, value, headers, requestId: headers?.get('x-request-id')?.[0] });
        }
      });
    call.on('metadata', (md) => { headers = md; });
  });
}

// A WatchInvoice stream: collects messages; `ended` resolves {code, details}.
export function watch(client, invoiceId, { key, deadlineMs = 60_000, requestId } = {}) {
  const messages = [];
  const waiters = new Set();
  const call = client.WatchInvoice({ invoice_id: invoiceId }, metadataFor({ key, requestId }),
    { deadline: Date.now() + deadlineMs });
  call.on('data', (m) => {
    messages.push(m);
    for (const w of waiters) w();
  });
  const ended = new Promise((resolve) => {
    let done = false;
    const finish = (v) => {
      if (!done) {
        done = true;
        resolve(v);
        for (const w of waiters) w();
      }
    };
    call.on('error', (e) => finish({ code: e.code, details: e.details }));
    call.on('status', (s) => finish({ code: s.code, details: s.details }));
  });
  return {
    call,
    messages,
    ended,
    // Resolves once pred(messages) holds; rejects after timeoutMs.
    until(pred, timeoutMs = 20_000, what = 'condition') {
      if (pred(messages)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`watch ${invoiceId}: ${what} not seen within ${timeoutMs} ms; got [${messages.map((m) => m.status).join(', ')}]`));
        }, timeoutMs);
        const check = () => {
          if (pred(messages)) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
      });
    },
  };
}

export function healthCheck(client, service, { deadlineMs = 5_000 } = {}) {
  return new Promise((resolve) => {
    client.check({ service }, { deadline: Date.now() + deadlineMs }, (err, res) =>
      resolve(err ? { code: err.code, details: err.details } : { code: 0, status: res.status }));
  });
}

// Reflection: the services the server lists, and the file descriptor
// bytes that define `symbol`.
export function reflect(client, request) {
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo();
    call.on('data', (res) => {
      resolve(res);
      call.end();
    });
    call.on('error', reject);
    call.write(request);
  });
}

export const status = grpc.status;
export const codeName = (c) => Object.keys(grpc.status).find((k) => grpc.status[k] === c) ?? String(c);
