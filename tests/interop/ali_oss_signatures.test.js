// The official ali-oss SDK (6.23.0) independently recomputes the signatures of
// authorizations issued by a running upload-broker, and they must match
// exactly: PostObject policies (V1 and V4), presigned PUT URLs (V1 and V4),
// each with a static AccessKey pair and again with STS credentials.
//
// Entry points, in order of preference:
//   * public client methods: calculatePostSignature, signPostObjectPolicyV4,
//     signatureUrlV4 and signatureUrl (the last two read the clock, which is
//     frozen with @sinonjs/fake-timers at the broker's signing time);
//   * ali-oss/lib/common/signUtils where a public method cannot take the
//     broker's inputs (getCredential, _signatureForURL, buildCanonicalString,
//     getCanonicalRequest; the canonical strings also go into failure messages).
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const FakeTimers = require('@sinonjs/fake-timers');
const OSS = require('ali-oss');
const signUtils = require('ali-oss/lib/common/signUtils');
const { policy2Str } = require('ali-oss/lib/common/utils/policy2Str');
const { encodeString } = require('ali-oss/lib/common/utils/encodeString');
const dateFormat = require('dateformat');
const { startBroker, AK, SK, STS, API_KEY } = require('./lib/broker');
const { connect } = require('./lib/grpc_client');

const BUCKET = 'examplebucket';
const REGION = 'oss-cn-hangzhou';
const STD_REGION = 'cn-hangzhou';
const HOST = `${BUCKET}.${REGION}.aliyuncs.com`;
const CALLBACK_URL = 'https://broker.example.com/oss/callback';
// Every authorization here asks for no ttl_seconds and the config sets no
// default_ttl, so each is valid for the documented default, 15 minutes.
const DEFAULT_TTL = 900;

const UNICODE_KEY = 'uploads/用户 42/照片+1.jpg';
// JSON escapes (" and \), RFC 3986 sub-delims that encodeURIComponent leaves
// alone but OSS V4 encodes (!'()*), a literal '%20', and an astral character.
const AWKWARD_KEY = "uploads/a\"b\\c~*(d)!e'f;g=h&i%20 😀.txt";

const MODES = [
  { label: 'AccessKey pair', sts: false, id: AK, secret: SK, token: undefined },
  { label: 'STS', sts: true, id: STS.id, secret: STS.secret, token: STS.token },
];

function ossClient(mode) {
  const opts = { accessKeyId: mode.id, accessKeySecret: mode.secret, bucket: BUCKET, region: REGION, secure: true };
  if (mode.token) opts.stsToken = mode.token;
  return new OSS(opts);
}

const b64decode = (s) => Buffer.from(s, 'base64').toString('utf8');

function fieldMap(fields) {
  const m = {};
  for (const f of fields) {
    assert.ok(!(f.name in m), `duplicate form field ${f.name}`);
    m[f.name] = f.value;
  }
  return m;
}

function headerMap(headers) {
  const m = {};
  for (const h of headers) m[h.name] = h.value;
  return m;
}

// Splits a query string without URLSearchParams (which would turn '+' into a
// space). Returns the decoded map and the raw pairs.
function parseQuery(search) {
  const map = {};
  const raw = [];
  for (const part of search.replace(/^\?/, '').split('&').filter(Boolean)) {
    const i = part.indexOf('=');
    const k = i < 0 ? part : part.slice(0, i);
    const v = i < 0 ? '' : part.slice(i + 1);
    raw.push([k, v]);
    const dk = decodeURIComponent(k);
    assert.ok(!(dk in map), `duplicate query parameter ${dk}`);
    map[dk] = decodeURIComponent(v);
  }
  return { map, raw };
}

// 'yyyymmddTHHMMSSZ' -> Date.
function parseOssDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  assert.ok(m, `bad x-oss-date ${s}`);
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

function assertRecentDate(d) {
  assert.ok(Math.abs(d.getTime() - Date.now()) < 5 * 60e3, `signing time ${d.toISOString()} is not now`);
}

// The callback parameter must be base64 JSON pointing at the broker, with a
// JSON body template that carries the upload id.
function assertCallback(b64, uploadId) {
  assert.match(b64, /^[A-Za-z0-9+/]+={0,2}$/, 'callback is not standard base64');
  assert.strictEqual(Buffer.from(b64decode(b64), 'utf8').toString('base64'), b64, 'callback base64 does not round-trip');
  const cb = JSON.parse(b64decode(b64));
  assert.strictEqual(cb.callbackUrl, CALLBACK_URL);
  assert.strictEqual(cb.callbackBodyType, 'application/json');
  assert.strictEqual(typeof cb.callbackBody, 'string');
  assert.match(uploadId, /^up_[0-9a-f]{32}$/);
  assert.ok(cb.callbackBody.includes(`"upload_id":"${uploadId}"`),
            `callbackBody lacks the upload id ${uploadId}: ${cb.callbackBody}`);
  assert.ok(cb.callbackBody.includes('${object}'), `callbackBody lacks \${object}: ${cb.callbackBody}`);
}

// Decodes the policy and checks what every broker policy must contain.
function checkPolicyCommon(resp, f, mode, { key, prefix }) {
  assert.strictEqual(resp.url, `https://${HOST}/`);
  assert.strictEqual(resp.fields[0].name, 'key', 'key must be the first form field');
  assert.ok(!('file' in f), 'the broker must not send a file field');
  const policyText = b64decode(f.policy);
  assert.strictEqual(Buffer.from(policyText, 'utf8').toString('base64'), f.policy, 'policy base64 does not round-trip');
  assert.strictEqual(resp.policy_json, policyText, 'policy_json differs from the signed policy');
  const policy = JSON.parse(policyText);
  assert.deepStrictEqual(Object.keys(policy).sort(), ['conditions', 'expiration']);
  assert.match(policy.expiration, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.ok(Array.isArray(policy.conditions));
  const conds = policy.conditions;
  const has = (c) => conds.some((x) => JSON.stringify(x) === JSON.stringify(c));
  assert.ok(has({ bucket: BUCKET }), 'no bucket condition');
  if (prefix !== undefined) {
    assert.strictEqual(resp.key_is_prefix, true);
    assert.strictEqual(resp.key, prefix);
    assert.strictEqual(f.key, prefix);
    assert.ok(has(['starts-with', '$key', prefix]), `no starts-with condition for ${prefix}`);
  } else {
    assert.strictEqual(resp.key_is_prefix, false);
    assert.strictEqual(resp.key, key);
    assert.strictEqual(f.key, key);
    assert.ok(has(['eq', '$key', key]) || has({ key }), `no exact key condition for ${key}`);
  }
  // The callback is pinned by an exact-match condition on its base64 value.
  assert.ok('callback' in f, 'no callback form field');
  assertCallback(f.callback, resp.upload_id);
  assert.ok(has({ callback: f.callback }), 'callback form field is not pinned as {"callback": value} in the policy');
  if (mode.sts) {
    assert.strictEqual(f['x-oss-security-token'], mode.token);
    assert.ok(has({ 'x-oss-security-token': mode.token }), 'x-oss-security-token not pinned in the policy');
  } else {
    assert.ok(!('x-oss-security-token' in f));
    assert.ok(!conds.some((c) => c && !Array.isArray(c) && 'x-oss-security-token' in c));
  }
  return { policy, policyText, has };
}

async function postV1(ctx, req, expect) {
  const { rpc, client, mode } = ctx;
  const before = Date.now();
  const resp = await rpc.CreatePostPolicy({ bucket: BUCKET, signature_version: 'SIGNATURE_VERSION_V1', ...req });
  const after = Date.now();
  const f = fieldMap(resp.fields);
  const { policy, has } = checkPolicyCommon(resp, f, mode, expect);
  // Issued between `before` and `after`, valid for the default TTL.
  const expiration = new Date(policy.expiration).getTime();
  assert.ok(expiration >= before + DEFAULT_TTL * 1000 && expiration <= after + DEFAULT_TTL * 1000,
            `policy expiration ${policy.expiration} is not ${DEFAULT_TTL}s after the request`);
  for (const n of ['x-oss-signature-version', 'x-oss-credential', 'x-oss-date', 'x-oss-signature']) {
    assert.ok(!(n in f), `V1 form has V4 field ${n}`);
    assert.ok(!policy.conditions.some((c) => c && !Array.isArray(c) && n in c), `V1 policy has V4 condition ${n}`);
  }
  assert.ok(!has({ 'x-oss-signature-version': 'OSS4-HMAC-SHA256' }));

  // ali-oss re-serialises the policy object with JSON.stringify: identical
  // base64 proves the broker's serialisation is byte-identical.
  const calc = client.calculatePostSignature(policy);
  assert.strictEqual(calc.policy, f.policy, 'policy base64 differs from ali-oss JSON.stringify serialisation');
  assert.strictEqual(calc.OSSAccessKeyId, f.OSSAccessKeyId);
  assert.strictEqual(f.OSSAccessKeyId, mode.id);
  assert.strictEqual(calc.Signature, f.Signature, 'V1 POST Signature differs from ali-oss calculatePostSignature');
  // The string form goes through JSON.parse + JSON.stringify too.
  assert.strictEqual(client.calculatePostSignature(resp.policy_json).Signature, f.Signature);
  return resp;
}

async function postV4(ctx, req, expect) {
  const { rpc, client, mode } = ctx;
  const resp = await rpc.CreatePostPolicy({ bucket: BUCKET, ...req });
  const f = fieldMap(resp.fields);
  const { policy, has } = checkPolicyCommon(resp, f, mode, expect);
  assert.ok(!('OSSAccessKeyId' in f) && !('Signature' in f), 'V4 form has V1 fields');

  assert.strictEqual(f['x-oss-signature-version'], 'OSS4-HMAC-SHA256');
  const date = parseOssDate(f['x-oss-date']);
  assertRecentDate(date);
  // The x-oss-date is exactly what ali-oss formats for that instant.
  assert.strictEqual(dateFormat(date, "UTC:yyyymmdd'T'HHMMss'Z'"), f['x-oss-date']);
  const credential = signUtils.getCredential(f['x-oss-date'].split('T')[0], STD_REGION, mode.id);
  assert.strictEqual(f['x-oss-credential'], credential);
  for (const n of ['x-oss-signature-version', 'x-oss-credential', 'x-oss-date']) {
    assert.ok(has({ [n]: f[n] }), `policy lacks the condition {"${n}": form value}`);
  }
  // x-oss-date is the signing time truncated to the second.
  const validity = new Date(policy.expiration).getTime() - date.getTime();
  assert.ok(validity >= DEFAULT_TTL * 1000 && validity < (DEFAULT_TTL + 1) * 1000,
            `policy expiration ${policy.expiration} is not ${DEFAULT_TTL}s after x-oss-date ${f['x-oss-date']}`);

  assert.strictEqual(Buffer.from(policy2Str(policy), 'utf8').toString('base64'), f.policy,
                     'policy base64 differs from ali-oss policy2Str serialisation');
  const sig = client.signPostObjectPolicyV4(policy, date);
  assert.match(f['x-oss-signature'], /^[0-9a-f]{64}$/);
  assert.strictEqual(sig, f['x-oss-signature'], 'V4 POST x-oss-signature differs from ali-oss signPostObjectPolicyV4');
  return resp;
}

async function withFrozenClock(at, fn) {
  const clock = FakeTimers.install({ now: at, toFake: ['Date'] });
  try {
    return await fn();
  } finally {
    clock.uninstall();
  }
}

async function putV4(ctx, req) {
  const { rpc, client, mode } = ctx;
  const resp = await rpc.CreatePresignedPut({ bucket: BUCKET, ...req });
  assert.strictEqual(resp.method, 'PUT');
  const headers = headerMap(resp.headers);
  assert.strictEqual(headers['Content-Type'], req.content_type);
  if (req.content_length) assert.strictEqual(headers['Content-Length'], String(req.content_length));
  assertCallback(headers['x-oss-callback'], resp.upload_id);

  const url = new URL(resp.url);
  assert.strictEqual(url.protocol, 'https:');
  assert.strictEqual(url.host, HOST);
  assert.strictEqual(decodeURIComponent(url.pathname), `/${req.key}`);
  const { map: q, raw } = parseQuery(url.search);
  // Every query component is written in the canonical (RFC 3986) encoding.
  for (const [k, v] of raw) {
    assert.strictEqual(k, encodeString(decodeURIComponent(k)));
    assert.strictEqual(v, encodeString(decodeURIComponent(v)), `query value of ${k} is not canonically encoded`);
  }
  assert.strictEqual(q['x-oss-signature-version'], 'OSS4-HMAC-SHA256');
  const date = parseOssDate(q['x-oss-date']);
  assertRecentDate(date);
  assert.strictEqual(q['x-oss-credential'], signUtils.getCredential(q['x-oss-date'].split('T')[0], STD_REGION, mode.id));
  assert.match(q['x-oss-expires'], /^[1-9]\d*$/);
  const expires = Number(q['x-oss-expires']);
  assert.strictEqual(expires, DEFAULT_TTL, 'x-oss-expires is not the default validity');
  assert.strictEqual(Number(resp.expires_at.seconds), Math.floor(date.getTime() / 1000) + expires,
                     'expires_at is not x-oss-date + x-oss-expires');
  assert.strictEqual(q['x-oss-security-token'], mode.token);
  assert.ok(!('callback' in q) && !('callback-var' in q), 'callback must travel in the header only');
  const additional = q['x-oss-additional-headers'] === undefined ? undefined : q['x-oss-additional-headers'].split(';');
  if (req.content_length) assert.deepStrictEqual(additional, ['content-length']);

  const aliUrl = await withFrozenClock(date, () =>
    client.signatureUrlV4('PUT', expires, { headers }, req.key, additional));
  const ali = new URL(aliUrl);
  const { map: aq } = parseQuery(ali.search);

  // For the failure message: both canonical requests as ali-oss builds them.
  const queriesFor = (m) => Object.fromEntries(Object.entries(m).filter(([k]) => k !== 'x-oss-signature'));
  const canonical = (m) => signUtils.getCanonicalRequest('PUT', { headers, queries: queriesFor(m) }, BUCKET, req.key,
                                                         signUtils.fixAdditionalHeaders(additional));
  const detail = `\n--- broker URL query, canonicalised by ali-oss:\n${canonical(q)}\n--- ali-oss:\n${canonical(aq)}`;

  assert.deepStrictEqual(q, aq, `V4 presigned query parameters differ from ali-oss signatureUrlV4${detail}`);
  assert.strictEqual(q['x-oss-signature'], aq['x-oss-signature'], `V4 presigned x-oss-signature differs${detail}`);
  assert.strictEqual(url.host, ali.host);
  assert.strictEqual(decodeURIComponent(url.pathname), decodeURIComponent(ali.pathname));
  return { resp, url, ali };
}

async function putV1(ctx, req) {
  const { rpc, client, mode } = ctx;
  const before = Math.floor(Date.now() / 1000);
  const resp = await rpc.CreatePresignedPut({ bucket: BUCKET, signature_version: 'SIGNATURE_VERSION_V1', ...req });
  const after = Math.floor(Date.now() / 1000);
  assert.strictEqual(resp.method, 'PUT');
  const headers = headerMap(resp.headers);
  assert.strictEqual(headers['Content-Type'], req.content_type);
  assertCallback(headers['x-oss-callback'], resp.upload_id);
  for (const name of Object.keys(headers)) {
    assert.ok(['Content-Type', 'Content-MD5', 'Content-Length'].includes(name) || name.startsWith('x-oss-'),
              `unexpected header ${name}`);
  }

  const url = new URL(resp.url);
  assert.strictEqual(url.host, HOST);
  assert.strictEqual(decodeURIComponent(url.pathname), `/${req.key}`);
  const { map: q } = parseQuery(url.search);
  const expected = ['Expires', 'OSSAccessKeyId', 'Signature', ...(mode.sts ? ['security-token'] : [])];
  assert.deepStrictEqual(Object.keys(q).sort(), expected.sort());
  assert.strictEqual(q.OSSAccessKeyId, mode.id);
  assert.strictEqual(q['security-token'], mode.token);
  assert.match(q.Expires, /^[1-9]\d*$/);
  const expires = Number(q.Expires);
  assert.strictEqual(Number(resp.expires_at.seconds), expires);
  assert.ok(expires >= before + DEFAULT_TTL && expires <= after + DEFAULT_TTL,
            `Expires ${expires} is not ${DEFAULT_TTL}s after the request (${before}..${after})`);

  // 1) signUtils._signatureForURL with the broker's Expires, Content-Type, the
  //    x-oss-* headers (CanonicalizedOSSHeaders) and, for STS, the
  //    security-token sub-resource.
  const options = { method: 'PUT' };
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase().startsWith('x-oss-') || /^content-(type|md5)$/i.test(k)) options[k] = v;
  }
  if (mode.sts) options['security-token'] = mode.token;
  const resource = client._getResource({ bucket: BUCKET, object: req.key });
  assert.strictEqual(resource, `/${BUCKET}/${req.key}`);
  const { Signature } = signUtils._signatureForURL(mode.secret, { ...options }, resource, expires);

  const ossHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (k !== 'Content-Length') ossHeaders[k] = v;
  const canonical = signUtils.buildCanonicalString('PUT', resource,
    { headers: ossHeaders, parameters: mode.sts ? { 'security-token': mode.token } : undefined }, String(expires));
  assert.strictEqual(q.Signature, Signature,
                     `V1 presigned Signature differs from ali-oss; ali-oss string to sign:\n${canonical}`);
  assert.strictEqual(signUtils.computeSignature(mode.secret, canonical), Signature,
                     'test bug: buildCanonicalString disagrees with _signatureForURL');

  // 2) The public (deprecated) client.signatureUrl with the clock frozen so
  //    that its Expires equals the broker's: the whole query must agree.
  const aliUrl = await withFrozenClock((expires - DEFAULT_TTL) * 1000, () =>
    client.signatureUrl(req.key, { ...options, expires: DEFAULT_TTL }));
  const ali = new URL(aliUrl);
  const { map: aq } = parseQuery(ali.search);
  assert.deepStrictEqual(q, aq, `V1 presigned query differs from ali-oss signatureUrl; string to sign:\n${canonical}`);
  assert.strictEqual(url.host, ali.host);
  assert.strictEqual(decodeURIComponent(url.pathname), decodeURIComponent(ali.pathname));
  return { resp, url, ali };
}

for (const mode of MODES) {
  test(`ali-oss recomputes broker signatures (${mode.label})`, async (t) => {
    const broker = await startBroker({ sts: mode.sts });
    t.after(() => broker.stop());
    const rpc = connect(broker.target, API_KEY);
    t.after(() => rpc.close());
    const ctx = { rpc, client: ossClient(mode), mode };

    await t.test('1. POST V1, exact key: calculatePostSignature', async () => {
      await postV1(ctx, { key: 'uploads/interop/v1.txt' }, { key: 'uploads/interop/v1.txt' });
    });

    await t.test('2. POST V4 (default), exact key: signPostObjectPolicyV4', async () => {
      await postV4(ctx, { key: 'uploads/interop/v4.txt' }, { key: 'uploads/interop/v4.txt' });
      // Explicit V4 gives the same shape.
      await postV4(ctx, { key: 'uploads/interop/v4b.txt', signature_version: 'SIGNATURE_VERSION_V4' },
                   { key: 'uploads/interop/v4b.txt' });
    });

    await t.test('3a. POST key_prefix (starts-with), V1 and V4', async () => {
      await postV1(ctx, { key_prefix: 'uploads/batch-7/' }, { prefix: 'uploads/batch-7/' });
      await postV4(ctx, { key_prefix: 'uploads/batch-7/' }, { prefix: 'uploads/batch-7/' });
    });

    await t.test('3b. POST Unicode key, V1 and V4', async () => {
      await postV1(ctx, { key: UNICODE_KEY }, { key: UNICODE_KEY });
      await postV4(ctx, { key: UNICODE_KEY }, { key: UNICODE_KEY });
    });

    await t.test('3c. POST key needing JSON escapes and an astral character, V1 and V4', async () => {
      await postV1(ctx, { key: AWKWARD_KEY }, { key: AWKWARD_KEY });
      await postV4(ctx, { key: AWKWARD_KEY }, { key: AWKWARD_KEY });
    });

    await t.test('4. presigned PUT V4, content type + length, Unicode key: signatureUrlV4', async () => {
      const { url, ali } = await putV4(ctx, { key: UNICODE_KEY, content_type: 'image/jpeg', content_length: 1234 });
      // For this key both encoders agree, so the paths match byte for byte.
      assert.strictEqual(url.pathname, ali.pathname);
      assert.strictEqual(url.pathname, '/uploads/%E7%94%A8%E6%88%B7%2042/%E7%85%A7%E7%89%87%2B1.jpg');
      // Without a content length: no additional headers.
      const r2 = await putV4(ctx, { key: UNICODE_KEY, content_type: 'text/plain; charset=utf-8' });
      assert.ok(!new URL(r2.resp.url).search.includes('x-oss-additional-headers'));
      await putV4(ctx, { key: AWKWARD_KEY, content_type: 'application/octet-stream', content_length: 1 });
    });

    await t.test('5. presigned PUT V1, content type, Unicode key: _signatureForURL / signatureUrl', async () => {
      const { url, ali } = await putV1(ctx, { key: UNICODE_KEY, content_type: 'image/jpeg' });
      assert.strictEqual(url.pathname, ali.pathname);
      await putV1(ctx, { key: AWKWARD_KEY, content_type: 'text/plain; charset=utf-8' });
    });
  });
}
