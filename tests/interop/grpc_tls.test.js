// Independent clients reach the broker over TLS and mutual TLS: `buf curl`
// (Go's TLS, server reflection) and @grpc/grpc-js (Node's TLS). The
// certificates are made here with the openssl CLI: a CA, a server
// certificate for 127.0.0.1, and a client certificate whose URI SAN names
// the interop caller, so it authenticates without an API key.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { execFile, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startBroker, API_KEY } = require('./lib/broker');
const { grpc } = require('./lib/grpc_client');
const protoLoader = require('@grpc/proto-loader');

const BUF = path.join(__dirname, 'node_modules', '.bin', 'buf');
const CLIENT_URI = 'spiffe://example.org/interop';
const PROTO_ROOT = process.env.UB_PROTO_DIR || path.resolve(__dirname, '../../proto');

function openssl(args) {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

// A CA in `dir` named `name`, and a function issuing leaf certificates.
function makeCa(dir, name) {
  const ca = { cert: path.join(dir, `${name}-ca.pem`), key: path.join(dir, `${name}-ca.key`) };
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
           '-keyout', ca.key, '-out', ca.cert, '-days', '1', '-subj', `/CN=${name} test CA`]);
  ca.issue = (leaf, san, client) => {
    const out = { cert: path.join(dir, `${leaf}.pem`), key: path.join(dir, `${leaf}.key`) };
    const ext = path.join(dir, `${leaf}.ext`);
    fs.writeFileSync(ext, `basicConstraints=critical,CA:FALSE\nextendedKeyUsage=${client ? 'clientAuth' : 'serverAuth'}\nsubjectAltName=${san}\n`);
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
             '-keyout', out.key, '-out', path.join(dir, `${leaf}.csr`), '-subj', `/CN=${leaf}`]);
    openssl(['x509', '-req', '-in', path.join(dir, `${leaf}.csr`), '-CA', ca.cert, '-CAkey', ca.key,
             '-set_serial', '7', '-days', '1', '-extfile', ext, '-out', out.cert]);
    return out;
  };
  return ca;
}

function buf(args) {
  return new Promise((resolve) => {
    execFile(BUF, ['curl', '--protocol', 'grpc', ...args], { timeout: 60000 },
             (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

function grpcJsClient(target, credentials) {
  const def = protoLoader.loadSync('uploadbroker/v1/upload_broker.proto', {
    includeDirs: [PROTO_ROOT], keepCase: true, longs: String, enums: String, defaults: true,
  });
  const Service = grpc.loadPackageDefinition(def).uploadbroker.v1.UploadBroker;
  return new Service(target, credentials);
}

function createPolicy(client, apiKey, key) {
  const md = new grpc.Metadata();
  if (apiKey) md.set('authorization', `Bearer ${apiKey}`);
  return new Promise((resolve, reject) => {
    client.CreatePostPolicy({ bucket: 'examplebucket', key }, md, { deadline: Date.now() + 10000 },
                            (err, resp) => (err ? reject(err) : resolve(resp)));
  });
}

test('TLS and mutual TLS with buf curl and grpc-js', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ub-interop-tls-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const ca = makeCa(dir, 'main');
  const rogue = makeCa(dir, 'rogue');
  const server = ca.issue('server', 'IP:127.0.0.1,DNS:localhost', false);
  const client = ca.issue('client', `URI:${CLIENT_URI}`, true);
  const forged = rogue.issue('forged', `URI:${CLIENT_URI}`, true);

  // extraYaml continues the interop caller's entry, then adds the tls section.
  const broker = await startBroker({
    extraYaml: `    client_cert_uri: "${CLIENT_URI}"\n` +
      `tls:\n  grpc: {cert_file: ${server.cert}, key_file: ${server.key}, client_ca_file: ${ca.cert}}\n`,
  });
  t.after(() => broker.stop());
  const base = `https://127.0.0.1:${broker.grpcPort}`;
  const policy = `${base}/uploadbroker.v1.UploadBroker/CreatePostPolicy`;
  const data = JSON.stringify({ bucket: 'examplebucket', key: 'tls/a.txt' });

  await t.test('buf curl: reflection and an API key over TLS', async () => {
    const list = await buf(['--cacert', ca.cert, '--list-methods', base]);
    assert.strictEqual(list.code, 0, list.stderr);
    assert.match(list.stdout, /uploadbroker\.v1\.UploadBroker\/CreatePostPolicy/);
    const r = await buf(['--cacert', ca.cert, '-H', `authorization: Bearer ${API_KEY}`, '--data', data, policy]);
    assert.strictEqual(r.code, 0, r.stderr);
    assert.match(JSON.parse(r.stdout).uploadId, /^up_[0-9a-f]{32}$/);
  });

  await t.test('buf curl: client certificate instead of an API key', async () => {
    const r = await buf(['--cacert', ca.cert, '--cert', client.cert, '--key', client.key, '--data', data, policy]);
    assert.strictEqual(r.code, 0, r.stderr);
    assert.match(JSON.parse(r.stdout).uploadId, /^up_[0-9a-f]{32}$/);
  });

  await t.test('buf curl: untrusted server CA and plaintext are refused', async () => {
    const wrongCa = await buf(['--cacert', rogue.cert, '-H', `authorization: Bearer ${API_KEY}`, '--data', data, policy]);
    // buf reports the failed handshake as a failed reflection lookup.
    assert.notStrictEqual(wrongCa.code, 0);
    assert.strictEqual(wrongCa.stdout, '');
    const plain = await buf(['--http2-prior-knowledge', '-H', `authorization: Bearer ${API_KEY}`, '--data', data,
                             `http://127.0.0.1:${broker.grpcPort}/uploadbroker.v1.UploadBroker/CreatePostPolicy`]);
    assert.notStrictEqual(plain.code, 0);
  });

  await t.test('grpc-js: TLS with an API key, mutual TLS without one', async () => {
    const caPem = fs.readFileSync(ca.cert);
    const tls = grpcJsClient(broker.target, grpc.credentials.createSsl(caPem));
    t.after(() => tls.close());
    const byKey = await createPolicy(tls, API_KEY, 'tls/b.txt');
    assert.match(byKey.upload_id, /^up_[0-9a-f]{32}$/);
    await assert.rejects(createPolicy(tls, '', 'tls/b.txt'), (err) => err.code === grpc.status.UNAUTHENTICATED);

    const mtls = grpcJsClient(broker.target, grpc.credentials.createSsl(
      caPem, fs.readFileSync(client.key), fs.readFileSync(client.cert)));
    t.after(() => mtls.close());
    const byCert = await createPolicy(mtls, '', 'tls/c.txt');
    assert.match(byCert.upload_id, /^up_[0-9a-f]{32}$/);
  });

  await t.test('grpc-js: a client certificate from another CA is refused', async () => {
    const bad = grpcJsClient(broker.target, grpc.credentials.createSsl(
      fs.readFileSync(ca.cert), fs.readFileSync(forged.key), fs.readFileSync(forged.cert)));
    t.after(() => bad.close());
    await assert.rejects(createPolicy(bad, '', 'tls/d.txt'), (err) => err.code === grpc.status.UNAVAILABLE);
  });
});
