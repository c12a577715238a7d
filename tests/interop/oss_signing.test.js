// Node plays OSS against the running broker, with none of the broker's code:
//
//  * Callbacks. Node's own crypto (createSign('RSA-MD5')) and URL decoding
//    (decodeURIComponent) sign each callback as OSS does (oss-protocol.md
//    §5.2): RSA-MD5 over url_decode(path) + raw query + "\n" + raw body, with
//    a key generated here that the broker trusts through explicit config. The
//    callback URL has a percent-encoded path and a query; bodies are JSON and
//    form-encoded, filled in from the broker's own callback template as OSS
//    fills it. Valid callbacks complete their upload; tampered ones are refused
//    and write nothing.
//  * HeadObject. The reconciler's signed HeadObject goes to a Node server
//    standing in for OSS, which recomputes the V4 signature with ali-oss's
//    signer and only then reports the object.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const http = require('node:http');
const FakeTimers = require('@sinonjs/fake-timers');
const OSS = require('ali-oss');
const signUtils = require('ali-oss/lib/common/signUtils');
const { startBroker, AK, SK, API_KEY } = require('./lib/broker');
const { connect } = require('./lib/grpc_client');

const BUCKET = 'examplebucket';
// OSS posts to the path and query of callbackUrl, which must be
// percent-encoded: here a non-ASCII segment, a space, and an encoded '/'
// and space in the query.
const CALLBACK_URL = 'https://broker.example.com/oss/%E5%9B%9E%E8%B0%83%20v1/done?src=oss&tag=a%2Fb%20c';
// The trusted key is given as a file, so the broker never fetches this URL.
const KEY_URL = 'http://127.0.0.1:9/interop_oss_pub_key.pem';
// 1024 bits: OSS's own key is 512, which some crypto stacks now refuse.
const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 });
const PUBLIC_PEM = publicKey.export({ type: 'spki', format: 'pem' });

// The callback parameter the broker attached to an authorization.
function callbackParam(resp) {
  const field = resp.fields.find((f) => f.name === 'callback');
  assert.ok(field, 'no callback form field');
  return JSON.parse(Buffer.from(field.value, 'base64').toString('utf8'));
}

// What OSS knows about a stored object, by system variable name.
function objectVars(key) {
  return {
    bucket: BUCKET, object: key, etag: 'D8E8FCA2DC0F896FD7CB4CB0031BA249', size: 5, mimeType: 'image/png',
    'imageInfo.height': '', 'imageInfo.width': '', 'imageInfo.format': '', crc64: '4080797498435271281',
    contentMd5: '2Oj8otwPiW/Xy0ywAxuiSQ==', clientIp: '203.0.113.7', reqId: 'REQNODE1', operation: 'PostObject',
  };
}

const PLACEHOLDER = /\$\{([^}]+)\}/g;

// A JSON callbackBody as OSS fills it: each ${name} replaced by the value
// "in JSON format" (the template leaves placeholders unquoted).
function fillJson(template, vars) {
  return template.replace(PLACEHOLDER, (_, name) => {
    assert.ok(name in vars, `the template names \${${name}}, which this test does not fill`);
    return JSON.stringify(vars[name]);
  });
}

// The same callback with a form-encoded body, as OSS sends one for a
// callbackBodyType of application/x-www-form-urlencoded: the constant
// upload_id, then each of the template's variables, URL-encoded.
function fillForm(template, uploadId, vars) {
  const names = [...template.matchAll(PLACEHOLDER)].map((m) => m[1]);
  return [`upload_id=${uploadId}`, ...names.map((n) => `${n}=${encodeURIComponent(String(vars[n]))}`)].join('&');
}

// Splits a URL as OSS does before signing: the path as sent (still
// percent-encoded) and the raw query with its '?'.
function pathAndQuery(url) {
  const u = new URL(url);
  return { path: u.pathname, query: u.search };
}

function ossSign(stringToSign) {
  return crypto.createSign('RSA-MD5').update(stringToSign, 'utf8').sign(privateKey, 'base64');
}

// POSTs a callback to the broker with OSS's headers: `target` is the path and
// query as sent, `signature` the Authorization value (base64).
function postCallback(httpPort, { target, body, contentType, signature }) {
  const payload = Buffer.from(body, 'utf8');
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: httpPort, path: target, method: 'POST',
      headers: {
        host: 'broker.example.com',
        'content-type': contentType,
        'content-length': payload.length,
        'content-md5': crypto.createHash('md5').update(payload).digest('base64'),
        date: new Date().toUTCString(),
        'user-agent': 'aliyun-oss-callback',
        authorization: signature,
        'x-oss-bucket': BUCKET,
        'x-oss-pub-key-url': Buffer.from(KEY_URL).toString('base64'),
        'x-oss-request-id': 'REQNODE1',
        'x-oss-signature-version': '1.0',
        'x-oss-tag': 'CALLBACK',
      },
    }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.setTimeout(30000, () => req.destroy(new Error('no answer from the broker within 30s')));
    req.on('error', reject);
    req.end(payload);
  });
}

// Signs and sends one callback exactly as OSS would for `callbackUrl`.
function ossCallback(httpPort, callbackUrl, body, contentType) {
  const { path, query } = pathAndQuery(callbackUrl);
  const signature = ossSign(`${decodeURIComponent(path)}${query}\n${body}`);
  return postCallback(httpPort, { target: `${path}${query}`, body, contentType, signature });
}

async function expectCompleted(api, uploadId, key) {
  const up = await api.GetUpload({ upload_id: uploadId });
  assert.strictEqual(up.state, 'UPLOAD_STATE_COMPLETED');
  const c = up.completion;
  assert.strictEqual(c.key, key);
  assert.strictEqual(c.size, '5');
  assert.strictEqual(c.etag, 'D8E8FCA2DC0F896FD7CB4CB0031BA249');
  assert.strictEqual(c.content_type, 'image/png');
  assert.strictEqual(c.crc64, '4080797498435271281');
  assert.strictEqual(c.client_ip, '203.0.113.7');
  assert.strictEqual(c.source, 'COMPLETION_SOURCE_CALLBACK');
}

function expectAnswer(reply, uploadId, key) {
  assert.strictEqual(reply.status, 200, reply.body);
  assert.deepStrictEqual(JSON.parse(reply.body), {
    upload_id: uploadId, bucket: BUCKET, key, size: 5, etag: 'D8E8FCA2DC0F896FD7CB4CB0031BA249',
  });
}

test('callbacks signed by Node as OSS signs them', async (t) => {
  const broker = await startBroker({ trustedKey: { url: KEY_URL, pem: PUBLIC_PEM }, callbackUrl: CALLBACK_URL });
  t.after(() => broker.stop());
  const api = connect(broker.target, API_KEY);
  t.after(() => api.close());

  const issue = async (key) => {
    const resp = await api.CreatePostPolicy({ bucket: BUCKET, key });
    const cb = callbackParam(resp);
    assert.strictEqual(cb.callbackUrl, CALLBACK_URL);
    return { id: resp.upload_id, cb };
  };

  await t.test('JSON body, percent-encoded path and a query', async () => {
    const key = 'uploads/json/猫 1+1.png';
    const { id, cb } = await issue(key);
    assert.strictEqual(cb.callbackBodyType, 'application/json');
    const body = fillJson(cb.callbackBody, objectVars(key));
    assert.strictEqual(JSON.parse(body).upload_id, id);
    expectAnswer(await ossCallback(broker.httpPort, cb.callbackUrl, body, 'application/json'), id, key);
    await expectCompleted(api, id, key);
  });

  await t.test('a form-encoded body, which the broker never asks for, is refused', async () => {
    const key = 'uploads/form/照片 2+2&x=y.png';
    const { id, cb } = await issue(key);
    const body = fillForm(cb.callbackBody, id, objectVars(key));
    assert.match(body, /&object=uploads%2Fform%2F%E7%85%A7%E7%89%87%202%2B2%26x%3Dy\.png&/);
    const reply = await ossCallback(broker.httpPort, cb.callbackUrl, body, 'application/x-www-form-urlencoded');
    assert.strictEqual(reply.status, 415, reply.body);
    assert.strictEqual(JSON.parse(reply.body).error, 'content_type');
    assert.strictEqual((await api.GetUpload({ upload_id: id })).state, 'UPLOAD_STATE_PENDING');
  });

  await t.test('tampered callbacks are refused and write nothing', async () => {
    const key = 'uploads/tamper/t.png';
    const { id, cb } = await issue(key);
    const body = fillJson(cb.callbackBody, objectVars(key));
    const { path, query } = pathAndQuery(cb.callbackUrl);
    const target = `${path}${query}`;
    const signature = ossSign(`${decodeURIComponent(path)}${query}\n${body}`);
    const refused = async (what, request) => {
      const reply = await postCallback(broker.httpPort, { target, body, contentType: 'application/json', signature, ...request });
      assert.strictEqual(reply.status, 401, `${what}: ${reply.body}`);
      assert.strictEqual(JSON.parse(reply.body).error, 'signature', what);
      const up = await api.GetUpload({ upload_id: id });
      assert.strictEqual(up.state, 'UPLOAD_STATE_PENDING', what);
    };

    // The body changed after signing: a larger size.
    const bigger = body.replace('"size":5', '"size":6');
    assert.notStrictEqual(bigger, body);
    await refused('body changed', { body: bigger });
    // The same query meaning in other bytes: the raw query is signed.
    await refused('query re-encoded', { target: target.replace('tag=a%2Fb', 'tag=a/b') });
    // Signed over the path as sent, not decoded: what a signer that skips
    // the decoding produces.
    await refused('path not decoded', { signature: ossSign(`${path}${query}\n${body}`) });
    // Signed by a key nobody trusts.
    const { privateKey: stranger } = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 });
    const forged = crypto.createSign('RSA-MD5').update(`${decodeURIComponent(path)}${query}\n${body}`).sign(stranger, 'base64');
    await refused('unknown key', { signature: forged });

    // The untampered callback is accepted: the refusals were the tampering.
    expectAnswer(await postCallback(broker.httpPort, { target, body, contentType: 'application/json', signature }), id, key);
    await expectCompleted(api, id, key);
  });
});

// Splits a query without URLSearchParams (which turns '+' into a space).
function parseQuery(search) {
  const map = {};
  for (const part of search.replace(/^\?/, '').split('&').filter(Boolean)) {
    const i = part.indexOf('=');
    const k = decodeURIComponent(i < 0 ? part : part.slice(0, i));
    assert.ok(!(k in map), `duplicate query parameter ${k}`);
    map[k] = decodeURIComponent(i < 0 ? '' : part.slice(i + 1));
  }
  return map;
}

// x-oss-signature of a presigned request, as ali-oss's signer computes it
// from the request's own query and headers.
function aliOssSignature(method, key, q, headers) {
  const additional = signUtils.fixAdditionalHeaders(
    q['x-oss-additional-headers'] === undefined ? undefined : q['x-oss-additional-headers'].split(';'));
  const queries = Object.fromEntries(Object.entries(q).filter(([k]) => k !== 'x-oss-signature'));
  const signed = {};
  for (const [name, value] of Object.entries(headers)) {
    if (additional.includes(name) || name === 'content-type' || name === 'content-md5' || name.startsWith('x-oss-')) {
      signed[name] = value;
    }
  }
  const region = q['x-oss-credential'].split('/')[2];
  const date = q['x-oss-date'];
  const canonical = signUtils.getCanonicalRequest(method, { headers: signed, queries }, BUCKET, key, additional);
  const stringToSign = signUtils.getStringToSign(region, date, canonical);
  return { signature: signUtils.getSignatureV4(SK, date.split('T')[0], region, stringToSign), canonical };
}

test("the reconciler's HeadObject is signed as ali-oss signs it", async (t) => {
  const key = 'uploads/reconcile/用户 42/照片+1.png';
  const object = { size: 9, etag: '5EB63BBBE01EEED093CB22BB8F5ACDC3', crc64: '11798366220786563924',
                   md5: 'XrY7u+Ae7tCTyyK7j1rNww==' };
  // OSS stand-in: answers a HeadObject for `key` only when ali-oss computes
  // the same signature; anything else gets 403, as OSS answers a bad one.
  const requests = [];
  let seen;
  const firstRequest = new Promise((resolve) => { seen = resolve; });
  const oss = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://oss.invalid');
    const q = parseQuery(u.search);
    const prefix = `/${BUCKET}/`;
    const got = u.pathname.startsWith(prefix) ? decodeURIComponent(u.pathname.slice(prefix.length)) : null;
    const ali = got === null || !q['x-oss-credential'] ? null : aliOssSignature(req.method, got, q, req.headers);
    const valid = req.method === 'HEAD' && got === key && ali !== null && q['x-oss-signature'] === ali.signature;
    requests.push({ method: req.method, url: req.url, key: got, q, ali, valid });
    seen();
    if (!valid) {
      res.writeHead(403, { 'x-oss-request-id': 'HEAD403' });
      res.end();
      return;
    }
    res.writeHead(200, {
      'Content-Length': String(object.size), ETag: `"${object.etag}"`, 'Content-Type': 'image/png',
      'x-oss-hash-crc64ecma': object.crc64, 'Content-MD5': object.md5, 'Last-Modified': new Date().toUTCString(),
      'x-oss-request-id': 'HEAD200',
    });
    res.end();
  });
  await new Promise((r) => oss.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => { oss.closeAllConnections(); oss.close(r); }));

  // Intents are overdue one second after they were issued (TTL 1s, grace
  // 1ms); the reconciler looks every second.
  const broker = await startBroker({
    endpoint: `http://127.0.0.1:${oss.address().port}`,
    extraYaml: 'reconcile: {enabled: true, interval: 1s, grace: 1ms}\n',
  });
  t.after(() => broker.stop());
  const api = connect(broker.target, API_KEY);
  t.after(() => api.close());

  // The request and the completion are awaited as events, not polled for.
  const call = api.raw.Subscribe({ start: 'START_POSITION_EARLIEST' }, api.metadata());
  t.after(() => call.cancel());
  call.on('error', () => {});
  const event = new Promise((resolve) => call.on('data', (resp) => resolve(resp.event)));
  const within = (promise, what) => {
    let timer;
    const expired = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing within 60s; OSS stand-in saw ` +
                                                JSON.stringify(requests, null, 1))), 60000);
    });
    return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
  };

  const put = await api.CreatePresignedPut({ bucket: BUCKET, key, content_type: 'image/png', ttl_seconds: 1 });
  await within(firstRequest, 'HeadObject');
  const head = requests[0];
  assert.strictEqual(head.method, 'HEAD');
  assert.strictEqual(head.key, key);
  assert.ok(head.valid, `x-oss-signature ${head.q['x-oss-signature']} differs from ali-oss's; ` +
                        `its canonical request:\n${head.ali && head.ali.canonical}`);

  // The public signer gives the same query when its clock reads x-oss-date.
  const q = head.q;
  const m = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(q['x-oss-date']);
  assert.ok(m, `bad x-oss-date ${q['x-oss-date']}`);
  const signedAt = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  const client = new OSS({ accessKeyId: AK, accessKeySecret: SK, bucket: BUCKET, region: 'oss-cn-hangzhou', secure: true });
  const clock = FakeTimers.install({ now: signedAt, toFake: ['Date'] });
  let aliUrl;
  try {
    aliUrl = await client.signatureUrlV4('HEAD', Number(q['x-oss-expires']), { headers: {} }, key);
  } finally {
    clock.uninstall();
  }
  assert.deepStrictEqual(q, parseQuery(new URL(aliUrl).search));

  // OSS answered, so the reconciler completes the intent from the answer.
  const e = await within(event, 'UploadCompleted');
  assert.deepStrictEqual(requests.filter((r) => !r.valid), [], 'the broker sent a request OSS would refuse');
  assert.strictEqual(e.type, 'EVENT_TYPE_UPLOAD_COMPLETED');
  const up = e.upload_completed.upload;
  assert.strictEqual(up.upload_id, put.upload_id);
  assert.strictEqual(up.state, 'UPLOAD_STATE_COMPLETED');
  assert.strictEqual(up.completion.source, 'COMPLETION_SOURCE_RECONCILED');
  assert.strictEqual(up.completion.key, key);
  assert.strictEqual(up.completion.size, String(object.size));
  assert.strictEqual(up.completion.etag, object.etag);
  assert.strictEqual(up.completion.crc64, object.crc64);
  assert.strictEqual(up.completion.content_md5, object.md5);
});
