// The broker's webhook push target against a receiver that checks it with
// independent libraries: the Standard Webhooks signature with the npm
// `standardwebhooks` package (against each of two configured secrets:
// rotation), each body as a CloudEvent with the npm `cloudevents` package.
// Uploads are completed by OSS-style signed callbacks (a key the broker
// trusts through explicit test config). The receiver answers 500 to its
// first request: the same event comes again, with the same webhook-id,
// after the first retry delay of the documented schedule (5 s +-20 %).
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { startBroker } = require('./lib/broker');
const { connect } = require('./lib/grpc_client');
const { startReceiver } = require('./lib/webhook_receiver');
const { API_KEY } = require('./lib/broker');

const KEY_URL = 'http://127.0.0.1:9/interop_sim_pub_key.pem';
const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const PUBLIC_PEM = publicKey.export({ type: 'spki', format: 'pem' });

function sendCallback(httpPort, body) {
  const p = '/oss/callback';
  const signature = crypto.sign('md5', Buffer.from(`${p}\n${body}`), privateKey).toString('base64');
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: httpPort, path: p, method: 'POST',
      headers: {
        'content-type': 'application/json', 'content-length': Buffer.byteLength(body),
        authorization: signature, 'x-oss-pub-key-url': Buffer.from(KEY_URL).toString('base64'),
      },
    }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', reject);
    req.end(body);
  });
}

async function completeUpload(api, broker, key) {
  const policy = await api.CreatePostPolicy({ bucket: 'examplebucket', key, metadata: { via: 'webhook' } });
  const body = JSON.stringify({
    upload_id: policy.upload_id, bucket: 'examplebucket', object: key,
    size: 5, etag: '"5EB63BBBE01EEED093CB22BB8F5ACDC3"', mimeType: 'image/png',
  });
  assert.strictEqual(await sendCallback(broker.httpPort, body), 200);
  return policy.upload_id;
}

test('webhook deliveries verify with standardwebhooks and parse with cloudevents', async (t) => {
  const secrets = ['whsec_' + crypto.randomBytes(32).toString('base64'),
                   'whsec_' + crypto.randomBytes(24).toString('base64')];
  const rx = await startReceiver({ secrets, answer: (i) => (i === 0 ? 500 : 200) });
  t.after(() => rx.close());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ub-webhook-secrets-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const files = secrets.map((s, i) => {
    const f = path.join(dir, `whsec-${i}`);
    fs.writeFileSync(f, s + '\n');
    return f;
  });
  const broker = await startBroker({
    trustedKey: { url: KEY_URL, pem: PUBLIC_PEM },
    extraYaml: `deliveries:
  source: "urn:upload-broker:interop"
  targets:
    - name: receiver
      caller: interop
      filter: {types: [completed]}
      ack_deadline: 20s
      webhook:
        url: "${rx.url}"
        secret_files: [${files.join(', ')}]
        timeout: 5s
        allow_private_addresses: true
`,
  });
  t.after(() => broker.stop());
  const api = connect(broker.target, API_KEY);
  t.after(() => api.close());

  // The driver creates the target's subscription when the broker starts;
  // give it a moment so the first upload comes after it.
  await new Promise((r) => setTimeout(r, 500));
  const sent = [];
  for (const k of ['a', 'b', 'c']) sent.push(await completeUpload(api, broker, `in/${k}.png`));

  const distinct = () => new Set(rx.requests.filter((r) => r.events.length).map((r) => r.headers['webhook-id'])).size;
  await rx.until(() => distinct() === 3, 30000, 'three distinct events');
  const firstId = rx.requests[0].headers['webhook-id'];
  await rx.until(() => rx.requests.slice(1).some((r) => r.headers['webhook-id'] === firstId), 15000,
                 'the retry of the event answered 500');

  for (const r of rx.requests) {
    assert.deepStrictEqual(r.verified, [true, true], 'each secret verifies the signature');
    assert.strictEqual(r.parseError, undefined);
    assert.match(r.headers['content-type'], /^application\/cloudevents\+json/);
    assert.strictEqual(r.headers['webhook-signature'].split(' ').length, 2);
  }
  // The first request got a 500: the same event came again, same id, after ~5 s.
  const retry = rx.requests.find((r, i) => i > 0 && r.headers['webhook-id'] === firstId);
  assert.ok(retry, 'the failed event was sent again with the same webhook-id');
  const waited = retry.at - rx.requests[0].at;
  assert.ok(waited >= 3500 && waited < 9000, `retried after ${waited} ms`);
  assert.strictEqual(retry.body, rx.requests[0].body, 'the same CloudEvent');

  const ok = rx.requests.slice(1);
  const byId = new Map(ok.map((r) => [r.headers['webhook-id'], r.events[0]]));
  assert.deepStrictEqual([...byId.keys()].sort(), sent.map((id) => `${id}.completed`).sort());
  for (const [id, ce] of byId) {
    assert.strictEqual(ce.specversion, '1.0');
    assert.strictEqual(ce.id, id);
    assert.strictEqual(ce.source, 'urn:upload-broker:interop');
    assert.strictEqual(ce.type, 'com.uploadbroker.upload.completed');
    assert.match(ce.subject, /^in\/[abc]\.png$/);
    assert.strictEqual(ce.datacontenttype, 'application/json');
    assert.match(ce.sequence, /^\d+$/);
    assert.ok(!Number.isNaN(Date.parse(ce.time)));
    assert.strictEqual(ce.data.cursor, ce.sequence);
    assert.strictEqual(ce.data.uploadCompleted.upload.metadata.via, 'webhook');
  }
  // First attempts in cursor order.
  const firsts = [];
  for (const r of rx.requests) {
    const seq = Number(r.events[0].sequence);
    if (!firsts.includes(seq)) firsts.push(seq);
  }
  assert.deepStrictEqual(firsts, [...firsts].sort((a, b) => a - b));
});
