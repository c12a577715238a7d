// A Node subscriber (@grpc/grpc-js + @grpc/proto-loader, no code of ours)
// follows the running broker's Subscribe stream: it receives the uploads
// completed by OSS callbacks, disconnects, resumes after the last cursor it
// saw, and ends up with every event exactly once, in order. The first stream
// uses the original one-event-per-message format (`event`); the resumed one
// opts in to several events per message (`events`). Callbacks are
// signed like OSS signs them, with a key the broker trusts through explicit
// config (callback.trusted_key_url/_file).
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const http = require('node:http');
const { startBroker, API_KEY } = require('./lib/broker');
const { connect, grpc } = require('./lib/grpc_client');

const KEY_URL = 'http://127.0.0.1:9/interop_sim_pub_key.pem';
const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const PUBLIC_PEM = publicKey.export({ type: 'spki', format: 'pem' });

// What OSS does after a successful PostObject: POST the callback body,
// signed (RSA, PKCS#1 v1.5, MD5) over `path + "\n" + body`.
function sendCallback(httpPort, body) {
  const path = '/oss/callback';
  const signature = crypto.sign('md5', Buffer.from(`${path}\n${body}`), privateKey).toString('base64');
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: httpPort, path, method: 'POST',
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        authorization: signature,
        'x-oss-pub-key-url': Buffer.from(KEY_URL).toString('base64'),
      },
    }, (res) => {
      let data = '';
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function completeUpload(api, broker, key) {
  const policy = await api.CreatePostPolicy({ bucket: 'examplebucket', key, metadata: { via: 'interop' } });
  const body = JSON.stringify({
    upload_id: policy.upload_id, bucket: 'examplebucket', object: key,
    size: 5, etag: '"5EB63BBBE01EEED093CB22BB8F5ACDC3"', mimeType: 'image/png',
  });
  const reply = await sendCallback(broker.httpPort, body);
  assert.strictEqual(reply.status, 200, reply.body);
  return policy.upload_id;
}

// Opens a stream and collects its events; `started` resolves with the
// cursor the broker starts after (initial metadata ub-start-cursor).
function subscribe(api, request) {
  const call = api.raw.Subscribe(request, api.metadata());
  const events = [];
  const messages = [];  // per message: { single: used `event`, count }
  const waiters = [];
  const notify = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (events.length >= waiters[i].n) { waiters[i].resolve(); waiters.splice(i, 1); }
    }
  };
  // Settles on the broker's initial metadata, or fails if the stream ends
  // first or nothing arrives within 60 s: no wait here is unbounded.
  const started = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no initial metadata within 60s')), 60e3);
    call.on('metadata', (md) => { clearTimeout(timer); resolve(md.get('ub-start-cursor')[0]); });
    call.on('error', (err) => { clearTimeout(timer); reject(err); });
  });
  started.catch(() => {});  // a stream that later fails on purpose is not an unhandled rejection
  const ended = new Promise((resolve) => {
    call.on('error', (err) => resolve(err));
    call.on('end', () => resolve(null));
  });
  call.on('data', (resp) => {
    const got = (resp.event ? [resp.event] : []).concat(resp.events || []);
    messages.push({ single: !!resp.event, count: got.length });
    events.push(...got);
    notify();
  });
  return {
    call, events, messages, started, ended,
    received(n, ms = 60000) {
      if (events.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`got ${events.length} of ${n} events`)), ms);
        waiters.push({ n, resolve: () => { clearTimeout(timer); resolve(); } });
      });
    },
  };
}

test('grpc-js subscriber resumes with its cursor and sees every event once', async (t) => {
  const broker = await startBroker({ trustedKey: { url: KEY_URL, pem: PUBLIC_PEM } });
  t.after(() => broker.stop());
  const api = connect(broker.target, API_KEY);
  t.after(() => api.close());

  const sent = [];
  const first = subscribe(api, { start: 'START_POSITION_LATEST' });
  assert.strictEqual(await first.started, '0');
  for (const k of ['a', 'b', 'c']) sent.push(await completeUpload(api, broker, `in/${k}.png`));
  await first.received(3);
  const lastCursor = first.events[first.events.length - 1].cursor;
  assert.strictEqual(lastCursor, '3');

  // Disconnect; uploads keep completing meanwhile.
  first.call.cancel();
  const err = await first.ended;
  assert.strictEqual(err && err.code, grpc.status.CANCELLED);
  for (const k of ['d', 'e']) sent.push(await completeUpload(api, broker, `in/${k}.png`));

  // Resume after the last cursor seen: the missed events, then live ones.
  const second = subscribe(api, {
    start: 'START_POSITION_AFTER_CURSOR', after_cursor: lastCursor, max_events_per_message: 50,
  });
  assert.strictEqual(await second.started, lastCursor);
  await second.received(2);
  // The backlog (d, e) came in one message; the old format, one per message.
  assert.deepStrictEqual(second.messages, [{ single: false, count: 2 }]);
  assert.deepStrictEqual(first.messages, Array(3).fill({ single: true, count: 1 }));
  sent.push(await completeUpload(api, broker, 'in/f.png'));
  await second.received(3);

  const all = [...first.events, ...second.events];
  assert.deepStrictEqual(all.map((e) => e.cursor), ['1', '2', '3', '4', '5', '6']);
  assert.deepStrictEqual(all.map((e) => e.upload_completed.upload.upload_id), sent);
  for (const e of all) {
    assert.strictEqual(e.type, 'EVENT_TYPE_UPLOAD_COMPLETED');
    assert.strictEqual(e.upload_completed.upload.state, 'UPLOAD_STATE_COMPLETED');
    assert.strictEqual(e.upload_completed.upload.metadata.via, 'interop');
  }

  // A cursor beyond the newest is refused, naming the field.
  const beyond = subscribe(api, { start: 'START_POSITION_AFTER_CURSOR', after_cursor: '99' });
  const bad = await beyond.ended;
  assert.strictEqual(bad && bad.code, grpc.status.INVALID_ARGUMENT);
  assert.match(bad.details, /after_cursor/);

  // SIGTERM drains: the open stream ends with UNAVAILABLE, so a client
  // knows to resume (elsewhere) from its cursor.
  await broker.stop();
  const drained = await second.ended;
  assert.strictEqual(drained && drained.code, grpc.status.UNAVAILABLE);
  assert.strictEqual(second.events.length, 3);
});
