// `buf curl` (from @bufbuild/buf) talks to the running broker using only
// server reflection: no .proto files, no code of ours.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { execFile } = require('node:child_process');
const path = require('node:path');
const { startBroker, API_KEY } = require('./lib/broker');

const BUF = path.join(__dirname, 'node_modules', '.bin', 'buf');

function buf(args) {
  return new Promise((resolve) => {
    execFile(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', ...args],
             { timeout: 60000 }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

test('buf curl through server reflection', async (t) => {
  const broker = await startBroker();
  t.after(() => broker.stop());
  const base = `http://${broker.target}`;

  await t.test('lists the services', async () => {
    const r = await buf(['--list-services', base]);
    assert.strictEqual(r.code, 0, r.stderr);
    assert.match(r.stdout, /^uploadbroker\.v1\.UploadBroker$/m);
    assert.match(r.stdout, /^grpc\.health\.v1\.Health$/m);
  });

  await t.test('lists the methods', async () => {
    const r = await buf(['--list-methods', base]);
    assert.strictEqual(r.code, 0, r.stderr);
    for (const m of ['CreatePostPolicy', 'CreatePresignedPut', 'GetUpload', 'ListUploads', 'Subscribe']) {
      assert.match(r.stdout, new RegExp(`uploadbroker\\.v1\\.UploadBroker/${m}`));
    }
  });

  await t.test('CreatePostPolicy with an API key', async () => {
    const r = await buf(['-H', `authorization: Bearer ${API_KEY}`,
                         '--data', JSON.stringify({ bucket: 'examplebucket', key: 'buf/a.txt' }),
                         `${base}/uploadbroker.v1.UploadBroker/CreatePostPolicy`]);
    assert.strictEqual(r.code, 0, r.stderr);
    const resp = JSON.parse(r.stdout);
    assert.match(resp.uploadId, /^up_[0-9a-f]{32}$/);
    assert.strictEqual(resp.url, 'https://examplebucket.oss-cn-hangzhou.aliyuncs.com/');
    const names = resp.fields.map((f) => f.name);
    assert.strictEqual(names[0], 'key');
    for (const n of ['policy', 'x-oss-signature-version', 'x-oss-credential', 'x-oss-date', 'x-oss-signature', 'callback']) {
      assert.ok(names.includes(n), `missing field ${n}`);
    }
    assert.ok(!names.includes('file'));
    const got = await buf(['-H', `authorization: Bearer ${API_KEY}`, '--data', JSON.stringify({ uploadId: resp.uploadId }),
                           `${base}/uploadbroker.v1.UploadBroker/GetUpload`]);
    assert.strictEqual(got.code, 0, got.stderr);
    assert.strictEqual(JSON.parse(got.stdout).state, 'UPLOAD_STATE_PENDING');
  });

  await t.test('without a key: UNAUTHENTICATED', async () => {
    const r = await buf(['--data', JSON.stringify({ bucket: 'examplebucket', key: 'buf/a.txt' }),
                         `${base}/uploadbroker.v1.UploadBroker/CreatePostPolicy`]);
    assert.notStrictEqual(r.code, 0);
    assert.match(r.stderr, /unauthenticated/);
  });

  await t.test('health check answers SERVING', async () => {
    const r = await buf(['--data', '{}', `${base}/grpc.health.v1.Health/Check`]);
    assert.strictEqual(r.code, 0, r.stderr);
    assert.strictEqual(JSON.parse(r.stdout).status, 'SERVING');
  });
});
