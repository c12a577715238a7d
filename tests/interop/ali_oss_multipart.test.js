// Multipart uploads checked against the official ali-oss SDK (6.23.0), with
// oss-sim and the broker running as processes:
//   * ali-oss's signatureUrlV4 recomputes the broker's presigned UploadPart
//     and CompleteMultipartUpload URLs byte for byte (clock frozen at the
//     broker's signing time), and the requests then succeed against oss-sim,
//     ending in one completion of the broker's intent;
//   * ali-oss's own multipartUpload, with a callback and the simulator's
//     credentials, runs against oss-sim, so the simulator's multipart is
//     checked against the real SDK.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const FakeTimers = require('@sinonjs/fake-timers');
const OSS = require('ali-oss');
const { connect } = require('./lib/grpc_client');
const { waitReady } = require('./lib/broker');

const AK = 'LTAI5tSimMultipartId';
const SK = 'SimMultipartSecret0123456789';
const API_KEY = 'multipart-interop-api-key';
const BUCKET = 'devbucket';
const PART = 100 * 1024;
const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');

// The broker's callback URL must name its HTTP port before the broker has
// bound one: the test holds a listener on port 0 from the start and relays
// each connection to the broker's port once it is known (as in
// ali_oss_sim.test.js).
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

// Sends exactly the given headers (no Content-Type of its own).
function send(method, url, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { ...headers, 'Content-Length': String(body.length) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function parseQuery(search) {
  const map = {};
  for (const part of search.replace(/^\?/, '').split('&').filter(Boolean)) {
    const i = part.indexOf('=');
    map[decodeURIComponent(i < 0 ? part : part.slice(0, i))] = decodeURIComponent(i < 0 ? '' : part.slice(i + 1));
  }
  return map;
}

function parseOssDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  assert.ok(m, `bad x-oss-date ${s}`);
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

async function withFrozenClock(at, fn) {
  const clock = FakeTimers.install({ now: at, toFake: ['Date'] });
  try {
    return await fn();
  } finally {
    clock.uninstall();
  }
}

const headerMap = (headers) => Object.fromEntries(headers.map((h) => [h.name, h.value]));

let dir; let sim; let broker; let simPort; let client; let callbackRelay;

test.before(async () => {
  const brokerBin = process.env.UB_BROKER_BIN;
  if (!brokerBin) throw new Error('UB_BROKER_BIN is not set (run through ctest)');
  const simBin = process.env.UB_OSS_SIM_BIN || path.join(path.dirname(brokerBin), 'oss-sim');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ub-multipart-interop-'));
  sim = await spawnReady(simBin, [
    '--listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'sim'), '--key-file', path.join(dir, 'sim_key.pem'),
    '--access-key-id', AK, '--access-key-secret', SK, '--ready-file', path.join(dir, 'sim.ready'),
  ], path.join(dir, 'sim.ready'));
  simPort = sim.ready.port;
  callbackRelay = await relay();
  fs.writeFileSync(path.join(dir, 'ak'), AK);
  fs.writeFileSync(path.join(dir, 'sk'), SK);
  fs.writeFileSync(path.join(dir, 'broker.yaml'), `development: true
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
callback:
  url: "http://127.0.0.1:${callbackRelay.port}/oss/callback"
  trusted_key_url: "http://127.0.0.1:${simPort}/sim_pub_key.pem"
ledger: {path: ${path.join(dir, 'ledger.db')}}
credentials: {access_key_id_file: ${path.join(dir, 'ak')}, access_key_secret_file: ${path.join(dir, 'sk')}}
buckets:
  - {name: ${BUCKET}, region: cn-hangzhou, endpoint: "http://127.0.0.1:${simPort}", path_style: true}
callers:
  - name: interop
    api_key_sha256: ${sha256(API_KEY)}
    buckets: [${BUCKET}]
    key_prefixes: [uploads/]
`);
  broker = await spawnReady(brokerBin, ['--config', path.join(dir, 'broker.yaml'), '--ready-file', path.join(dir, 'broker.ready')],
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

function signingClient() {
  return new OSS({
    endpoint: `http://127.0.0.1:${simPort}`, bucket: BUCKET, region: 'oss-cn-hangzhou',
    accessKeyId: AK, accessKeySecret: SK, sldEnable: true, secure: false,
  });
}

// ali-oss signatureUrlV4 for the broker's presigned `url`, at its x-oss-date.
async function expectSameV4Signature(method, url, headers, key, additional) {
  const q = parseQuery(url.search);
  const date = parseOssDate(q['x-oss-date']);
  const queries = {};
  for (const [k, v] of Object.entries(q)) if (!k.startsWith('x-oss-')) queries[k] = v;
  const aliUrl = await withFrozenClock(date, () =>
    signingClient().signatureUrlV4(method, Number(q['x-oss-expires']), { headers, queries }, key, additional));
  const aq = parseQuery(new URL(aliUrl).search);
  assert.deepStrictEqual(q, aq, `${method} ${key}: the broker's query differs from ali-oss signatureUrlV4`);
}

test('ali-oss recomputes the broker-signed parts and completion, and they work', async () => {
  const key = 'uploads/multipart 视频.mp4';
  const data = crypto.randomBytes(2 * PART + 4321);
  const created = await client.CreateMultipartUpload({
    bucket: BUCKET, key, content_type: 'video/mp4', total_size: data.length, part_size: PART,
  });
  assert.strictEqual(created.plan.part_count, 3);
  const uploadId = created.plan.oss_upload_id;
  const signed = await client.SignUploadParts({ upload_id: created.upload_id });
  assert.strictEqual(signed.parts.length, 3);
  for (const p of signed.parts) {
    const url = new URL(p.url);
    const q = parseQuery(url.search);
    assert.strictEqual(q.partNumber, String(p.part_number));
    assert.strictEqual(q.uploadId, uploadId);
    assert.strictEqual(q['x-oss-additional-headers'], 'content-length');
    const headers = headerMap(p.headers);
    assert.deepStrictEqual(headers, { 'Content-Length': p.size });
    await expectSameV4Signature('PUT', url, headers, key, ['content-length']);
    const offset = Number(p.offset);
    const res = await send('PUT', p.url, {}, data.subarray(offset, offset + Number(p.size)));
    assert.strictEqual(res.status, 200, res.body);
  }
  const listed = await client.ListUploadedParts({ upload_id: created.upload_id });
  assert.deepStrictEqual(listed.parts.map((p) => p.size), [String(PART), String(PART), '4321']);

  const complete = await client.CompleteMultipartUpload({ upload_id: created.upload_id });
  assert.strictEqual(complete.method, 'POST');
  const headers = headerMap(complete.headers);
  assert.ok(headers['x-oss-callback'], 'the completion carries no x-oss-callback');
  assert.strictEqual(headers['x-oss-complete-all'], 'yes');
  const url = new URL(complete.url);
  await expectSameV4Signature('POST', url, headers, key, undefined);
  const res = await send('POST', complete.url, headers, Buffer.alloc(0));
  assert.strictEqual(res.status, 200, res.body);
  assert.strictEqual(JSON.parse(res.body).upload_id, created.upload_id);
  const u = await client.GetUpload({ upload_id: created.upload_id });
  assert.strictEqual(u.state, 'UPLOAD_STATE_COMPLETED');
  assert.strictEqual(u.completion.operation, 'CompleteMultipartUpload');
  assert.strictEqual(u.completion.part_count, 3);
  assert.strictEqual(u.completion.size, String(data.length));
});

test('ali-oss multipartUpload with a callback against oss-sim', async () => {
  const key = 'uploads/sdk-multipart.bin';
  const data = crypto.randomBytes(3 * PART + 17);
  // A presigned PUT intent supplies the broker's callback parameter.
  const put = await client.CreatePresignedPut({ bucket: BUCKET, key, content_type: 'application/octet-stream' });
  const header = put.headers.find((h) => h.name.toLowerCase() === 'x-oss-callback');
  const cb = JSON.parse(Buffer.from(header.value, 'base64').toString('utf8'));
  const oss = new OSS({
    endpoint: `http://127.0.0.1:${simPort}`, bucket: BUCKET, region: 'oss-cn-hangzhou',
    accessKeyId: AK, accessKeySecret: SK, sldEnable: true, secure: false,
  });
  const result = await oss.multipartUpload(key, data, {
    partSize: PART, mime: 'application/octet-stream',
    callback: { url: cb.callbackUrl, body: cb.callbackBody, contentType: cb.callbackBodyType },
  });
  assert.strictEqual(result.res.status, 200);
  assert.strictEqual(result.data.upload_id, put.upload_id); // the broker's answer, relayed by oss-sim
  const u = await client.GetUpload({ upload_id: put.upload_id });
  assert.strictEqual(u.state, 'UPLOAD_STATE_COMPLETED');
  assert.strictEqual(u.completion.operation, 'CompleteMultipartUpload');
  assert.strictEqual(u.completion.part_count, 4);
  assert.strictEqual(u.completion.size, String(data.length));
  const got = await oss.get(key);
  assert.ok(Buffer.compare(got.content, data) === 0, 'the stored object differs from what was uploaded');
});
