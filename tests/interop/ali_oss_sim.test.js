// The real ali-oss SDK and a plain browser-style form upload against oss-sim
// and the broker, wired together as scripts/run.sh does: oss-sim signs its
// callbacks with its own key, which the broker fetches at startup from
// oss-sim's /sim_pub_key.pem (callback.trusted_key_url). Each upload must be
// accepted by oss-sim, call the broker back, and complete the broker's intent.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const OSS = require('ali-oss');
const { connect } = require('./lib/grpc_client');
const { waitReady } = require('./lib/broker');

const AK = 'LTAI5tSimInteropId';
const SK = 'SimInteropSecret0123456789';
const API_KEY = 'sim-interop-api-key';
const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');
const md5Hex = (b) => crypto.createHash('md5').update(b).digest('hex').toUpperCase();

// The broker's callback URL must name its HTTP port before the broker has
// bound one. Rather than pick a "free" port and hope nothing takes it before
// the broker binds it, the test holds a listener on port 0 from the start
// and relays each connection to the broker's port once it is known.
function relay() {
  let target = null;
  const server = net.createServer((inbound) => {
    const outbound = net.connect(target, '127.0.0.1');
    inbound.pipe(outbound).pipe(inbound);
    inbound.on('error', () => outbound.destroy());
    outbound.on('error', () => inbound.destroy());
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({
      port: server.address().port,
      setTarget(port) { target = port; },
      close() { return new Promise((r) => server.close(r)); },
    }));
  });
}

async function spawnReady(bin, args, readyFile) {
  const child = spawn(bin, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  await waitReady(child, readyFile, bin);
  return { child, ready: JSON.parse(fs.readFileSync(readyFile, 'utf8')) };
}

async function stop(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

let dir; let sim; let broker; let simPort; let client; let callbackRelay;

test.before(async () => {
  const brokerBin = process.env.UB_BROKER_BIN;
  if (!brokerBin) throw new Error('UB_BROKER_BIN is not set (run through ctest)');
  const simBin = process.env.UB_OSS_SIM_BIN || path.join(path.dirname(brokerBin), 'oss-sim');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ub-sim-interop-'));
  sim = await spawnReady(simBin, [
    '--listen', '127.0.0.1:0', '--data_dir', path.join(dir, 'sim'), '--key_file', path.join(dir, 'sim_key.pem'),
    '--access_key_id', AK, '--access_key_secret', SK, '--ready_file', path.join(dir, 'sim.ready'),
  ], path.join(dir, 'sim.ready'));
  simPort = sim.ready.port;
  callbackRelay = await relay();
  const callbackPort = callbackRelay.port;
  fs.writeFileSync(path.join(dir, 'ak'), AK);
  fs.writeFileSync(path.join(dir, 'sk'), SK);
  fs.writeFileSync(path.join(dir, 'broker.yaml'), `development: true
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
callback:
  url: "http://127.0.0.1:${callbackPort}/oss/callback"
  trusted_key_url: "http://127.0.0.1:${simPort}/sim_pub_key.pem"
ledger: {path: ${path.join(dir, 'ledger.db')}}
credentials: {access_key_id_file: ${path.join(dir, 'ak')}, access_key_secret_file: ${path.join(dir, 'sk')}}
buckets:
  - {name: devbucket, region: cn-hangzhou, endpoint: "http://127.0.0.1:${simPort}", path_style: true}
callers:
  - name: interop
    api_key_sha256: ${sha256(API_KEY)}
    buckets: [devbucket]
    key_prefixes: [uploads/]
`);
  broker = await spawnReady(brokerBin, ['--config', path.join(dir, 'broker.yaml'), '--ready_file', path.join(dir, 'broker.ready')],
    path.join(dir, 'broker.ready'));
  callbackRelay.setTarget(broker.ready.http_port);
  client = connect(`127.0.0.1:${broker.ready.grpc_port}`, API_KEY);
});

test.after(async () => {
  if (client) client.close();
  if (broker) await stop(broker.child);
  if (sim) await stop(sim.child);
  if (callbackRelay) await callbackRelay.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

// The broker's callback parameter for a fresh PUT intent on `key`, as
// ali-oss's `callback` option wants it.
async function brokerCallbackFor(key, contentType) {
  const resp = await client.CreatePresignedPut({ bucket: 'devbucket', key, content_type: contentType });
  const header = resp.headers.find((h) => h.name.toLowerCase() === 'x-oss-callback');
  const cb = JSON.parse(Buffer.from(header.value, 'base64').toString('utf8'));
  return { uploadId: resp.upload_id, callback: { url: cb.callbackUrl, body: cb.callbackBody, contentType: cb.callbackBodyType } };
}

async function expectCompleted(uploadId, key, data, contentType) {
  const u = await client.GetUpload({ upload_id: uploadId });
  assert.strictEqual(u.state, 'UPLOAD_STATE_COMPLETED');
  assert.strictEqual(u.completion.key, key);
  assert.strictEqual(u.completion.size, String(data.length));
  assert.strictEqual(u.completion.etag.toUpperCase(), md5Hex(data));
  assert.strictEqual(u.completion.content_type, contentType);
}

for (const v4 of [false, true]) {
  test(`ali-oss put with a callback option (${v4 ? 'V4' : 'V1'} Authorization header)`, async () => {
    const key = `uploads/sdk-${v4 ? 'v4' : 'v1'} 文件.txt`;
    const data = Buffer.from(`hello from ali-oss ${v4 ? 'v4' : 'v1'}\n`);
    const { uploadId, callback } = await brokerCallbackFor(key, 'text/plain');
    const oss = new OSS({
      endpoint: `http://127.0.0.1:${simPort}`, bucket: 'devbucket', region: 'oss-cn-hangzhou',
      accessKeyId: AK, accessKeySecret: SK, sldEnable: true, authorizationV4: v4, secure: false,
    });
    const result = await oss.put(key, data, { headers: { 'Content-Type': 'text/plain' }, callback });
    assert.strictEqual(result.res.status, 200);
    assert.strictEqual(result.data.upload_id, uploadId); // the broker's answer, relayed by oss-sim
    await expectCompleted(uploadId, key, data, 'text/plain');
    const head = await oss.head(key);
    assert.strictEqual(head.res.headers.etag, `"${md5Hex(data)}"`);
  });
}

test('a form upload built from a broker-issued policy', async () => {
  const key = 'uploads/form.bin';
  const data = crypto.randomBytes(70000);
  const policy = await client.CreatePostPolicy({ bucket: 'devbucket', key, content_types: ['application/octet-stream'] });
  const form = new FormData();
  for (const f of policy.fields) form.append(f.name, f.value);
  form.append('file', new Blob([data], { type: 'application/octet-stream' }), 'form.bin');
  const res = await fetch(policy.url, { method: 'POST', body: form });
  const text = await res.text();
  assert.strictEqual(res.status, 200, text);
  assert.strictEqual(JSON.parse(text).upload_id, policy.upload_id);
  await expectCompleted(policy.upload_id, key, data, 'application/octet-stream');
});
