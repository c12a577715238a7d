// Starts a real upload-broker process for interop tests: writes a config into
// a temp dir, launches the binary named by $UB_BROKER_BIN on port 0, waits
// for its --ready_file, and returns the ports plus a stop() function.
'use strict';
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');

// Defaults shared by the interop tests.
const AK = 'LTAI5tInteropAccessKeyId';
const SK = 'InteropAccessKeySecret0123456789';
const STS = { id: 'STS.InteropId', secret: 'InteropStsSecret', token: 'CAIS/interop+token==' };
const API_KEY = 'interop-api-key';

const CALLBACK_URL = 'https://broker.example.com/oss/callback';
const ENDPOINT = 'https://oss-cn-hangzhou.aliyuncs.com';

// Resolves once `file` exists (the binaries publish it by rename, so it is
// complete), woken by fs.watch on its directory rather than by polling;
// rejects when `child` exits first or after a generous two minutes.
function waitReady(child, file, what) {
  return new Promise((resolve, reject) => {
    let watcher;
    const finish = (err) => {
      clearTimeout(timer);
      watcher.close();
      child.off('exit', onExit);
      if (err) reject(err); else resolve();
    };
    const check = () => { if (fs.existsSync(file)) finish(); };
    const onExit = (code) => finish(new Error(`${what} exited with ${code} before becoming ready`));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new Error(`${what} did not become ready within 120s`));
    }, 120e3);
    watcher = fs.watch(path.dirname(file), check);
    child.once('exit', onExit);
    if (child.exitCode !== null) onExit(child.exitCode);
    else check();  // it may have appeared before the watch began
  });
}

function yamlFor(dir, { sts, extraYaml = '', trustedKey, callbackUrl = CALLBACK_URL, endpoint = ENDPOINT }) {
  // trustedKey {url, pem}: the broker also accepts callbacks signed with
  // this key when x-oss-pub-key-url names `url` (test setups). The tests
  // that sign their own callbacks describe objects no bucket holds, so
  // confirmation (a HeadObject per callback) is turned off explicitly.
  const callback = trustedKey
    ? `callback:\n  url: "${callbackUrl}"\n  trusted_key_url: "${trustedKey.url}"\n  trusted_key_file: ${path.join(dir, 'trusted_key.pem')}\n  confirm_completions: false`
    : `callback: {url: "${callbackUrl}"}`;
  // A local endpoint (a stand-in for OSS) is addressed path-style.
  const pathStyle = endpoint === ENDPOINT ? '' : ', path_style: true';
  const creds = sts
    ? `  sts_file: ${path.join(dir, 'sts.json')}`
    : `  access_key_id_file: ${path.join(dir, 'ak')}\n  access_key_secret_file: ${path.join(dir, 'sk')}`;
  // A trusted test key is named by an http:// URL, and a local stand-in
  // for OSS is plain HTTP: both development only.
  const development = trustedKey || endpoint.startsWith('http://');
  return `${development ? 'development: true\n' : ''}listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
${callback}
ledger: {path: ${path.join(dir, 'ledger.db')}}
credentials:
${creds}
buckets:
  - {name: examplebucket, region: oss-cn-hangzhou, endpoint: "${endpoint}"${pathStyle}}
callers:
  - name: interop
    api_key_sha256: ${sha256(API_KEY)}
    buckets: [examplebucket]
    max_ttl: 2h
${extraYaml}`;
}

// Options: sts (STS credentials instead of an AccessKey pair), trustedKey
// (see yamlFor), callbackUrl (callback.url), endpoint (examplebucket's OSS
// endpoint), extraYaml (appended at the top level).
async function startBroker({ sts = false, extraYaml = '', trustedKey, callbackUrl, endpoint } = {}) {
  const bin = process.env.UB_BROKER_BIN;
  if (!bin) throw new Error('UB_BROKER_BIN is not set (run through ctest)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ub-interop-'));
  fs.writeFileSync(path.join(dir, 'ak'), AK);
  fs.writeFileSync(path.join(dir, 'sk'), SK);
  const expiration = new Date(Date.now() + 3600e3).toISOString().replace(/\.\d+Z$/, 'Z');
  fs.writeFileSync(path.join(dir, 'sts.json'), JSON.stringify({
    AccessKeyId: STS.id, AccessKeySecret: STS.secret, SecurityToken: STS.token, Expiration: expiration,
  }));
  if (trustedKey) fs.writeFileSync(path.join(dir, 'trusted_key.pem'), trustedKey.pem);
  fs.writeFileSync(path.join(dir, 'broker.yaml'), yamlFor(dir, { sts, extraYaml, trustedKey, callbackUrl, endpoint }));
  const ready = path.join(dir, 'ready.json');
  const child = spawn(bin, ['--config', path.join(dir, 'broker.yaml'), '--ready_file', ready],
                      { stdio: ['ignore', 'inherit', 'inherit'] });
  await waitReady(child, ready, 'broker');
  const ports = JSON.parse(fs.readFileSync(ready, 'utf8'));
  return {
    dir,
    grpcPort: ports.grpc_port,
    httpPort: ports.http_port,
    target: `127.0.0.1:${ports.grpc_port}`,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { startBroker, waitReady, AK, SK, STS, API_KEY, sha256 };
