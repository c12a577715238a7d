// Durable subscriptions from clients that have none of our code: buf curl
// finds the new methods through server reflection and creates a
// subscription with them; a @grpc/grpc-js consumer (the Node example of
// docs/deliveries.md) reads events from Consume, acknowledges them, and a
// second consumer gets only what the first left unacknowledged.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const http = require('node:http');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { startBroker, API_KEY } = require('./lib/broker');
const { connect } = require('./lib/grpc_client');

const BUF = path.join(__dirname, 'node_modules', '.bin', 'buf');
const KEY_URL = 'http://127.0.0.1:9/interop_sim_pub_key.pem';
const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const PUBLIC_PEM = publicKey.export({ type: 'spki', format: 'pem' });

function buf(args) {
  return new Promise((resolve) => {
    execFile(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', ...args],
             { timeout: 60000 }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

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
  const policy = await api.CreatePostPolicy({ bucket: 'examplebucket', key });
  const body = JSON.stringify({ upload_id: policy.upload_id, bucket: 'examplebucket', object: key,
                                size: 5, etag: '"E"', mimeType: 'image/png' });
  assert.strictEqual(await sendCallback(broker.httpPort, body), 200);
  return policy.upload_id;
}

// Opens Consume and hands each delivery to `onDelivery(delivery, call)`.
function consume(api, subscription, onDelivery) {
  const call = api.raw.Consume(api.metadata());
  call.write({ subscription, max_in_flight: 10 });
  const ended = new Promise((resolve) => {
    call.on('error', resolve);
    call.on('end', () => resolve(null));
  });
  call.on('data', (resp) => { for (const d of resp.deliveries) onDelivery(d, call); });
  return { call, ended };
}

function waitFor(cond, what, ms = 30000) {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() - start > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

test('Consume from buf curl and grpc-js', async (t) => {
  const broker = await startBroker({ trustedKey: { url: KEY_URL, pem: PUBLIC_PEM } });
  t.after(() => broker.stop());
  const api = connect(broker.target, API_KEY);
  t.after(() => api.close());
  const base = `http://${broker.target}`;

  await t.test('reflection lists the subscription methods', async () => {
    const r = await buf(['--list-methods', base]);
    assert.strictEqual(r.code, 0, r.stderr);
    for (const m of ['CreateSubscription', 'GetSubscription', 'ListSubscriptions', 'DeleteSubscription',
                     'Consume', 'ListDeadLetters', 'RedriveDeadLetters']) {
      assert.match(r.stdout, new RegExp(`uploadbroker\\.v1\\.UploadBroker/${m}$`, 'm'));
    }
  });

  await t.test('buf curl creates a subscription; another caller\'s name stays unknown', async () => {
    const r = await buf(['-H', `authorization: Bearer ${API_KEY}`, '--data', JSON.stringify({ name: 'node' }),
                         `${base}/uploadbroker.v1.UploadBroker/CreateSubscription`]);
    assert.strictEqual(r.code, 0, r.stderr);
    const resp = JSON.parse(r.stdout);
    assert.strictEqual(resp.subscription.name, 'node');
    assert.strictEqual(resp.subscription.ackDeadlineSeconds, 60);
    assert.strictEqual(resp.created, true);
    const bad = await buf(['-H', `authorization: Bearer ${API_KEY}`, '--data', JSON.stringify({ name: 'a/b' }),
                           `${base}/uploadbroker.v1.UploadBroker/CreateSubscription`]);
    assert.notStrictEqual(bad.code, 0);
    assert.match(bad.stderr, /invalid_argument/);
  });

  await t.test('grpc-js consumes, acks, and the next consumer gets only the unacked', async () => {
    const ids = [];
    for (const k of ['a', 'b', 'c']) ids.push(await completeUpload(api, broker, `node/${k}.png`));
    const seen = [];
    const first = consume(api, 'node', (d, call) => {
      seen.push(d);
      // Process, then acknowledge; leave the last one unacknowledged.
      if (d.cursor !== '3') call.write({ ack_cursors: [d.cursor] });
    });
    await waitFor(() => seen.length === 3, 'three deliveries');
    assert.deepStrictEqual(seen.map((d) => d.cursor), ['1', '2', '3']);
    assert.deepStrictEqual(seen.map((d) => d.cloud_event_id), ids.map((id) => `${id}.completed`));
    for (const d of seen) {
      assert.strictEqual(d.attempt, 1);
      assert.strictEqual(d.cloud_event_type, 'com.uploadbroker.upload.completed');
      assert.strictEqual(d.event.cursor, d.cursor);
    }
    first.call.cancel();
    await first.ended;

    const again = [];
    const second = consume(api, 'node', (d, call) => {
      again.push(d);
      call.write({ ack_cursors: [d.cursor] });
    });
    await waitFor(() => again.length === 1, 'the redelivery');
    assert.strictEqual(again[0].cursor, '3');
    assert.strictEqual(again[0].attempt, 2);
    second.call.end();
    const err = await second.ended;
    assert.strictEqual(err, null);
  });
});
