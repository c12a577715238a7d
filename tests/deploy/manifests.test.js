// Every kustomize overlay in deploy/k8s renders offline, every object it
// yields validates against the Kubernetes API schemas (kubernetes-models),
// and what the manifests tell the broker (flags, environment, config, ports,
// probe paths) is what the broker binary accepts.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const YAML = require('yaml');

const root = path.resolve(__dirname, '../..');
const overlays = ['deploy/k8s/base', 'deploy/k8s/sqlite', 'deploy/k8s/postgres', 'deploy/k8s/cnpg'];
const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });

function render(dir) {
  const out = execFileSync('kubectl', ['kustomize', path.join(root, dir)], { encoding: 'utf8' });
  return YAML.parseAllDocuments(out).map((d) => d.toJS());
}

// The kubernetes-models class for an object, or null for a custom resource.
function modelFor(obj) {
  const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/')
                                                        : [null, obj.apiVersion];
  const dir = group ? `${group}/${version}` : version;
  try {
    return require(`kubernetes-models/${dir}/${obj.kind}`)[obj.kind];
  } catch (e) {
    if (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') return null;
    throw e;
  }
}

const skip = kubectl.status === 0 ? false : 'kubectl is not installed';

for (const dir of overlays) {
  test(`${dir} renders and every object validates`, { skip }, () => {
    const objects = render(dir);
    assert.ok(objects.length > 0);
    for (const obj of objects) {
      const Model = modelFor(obj);
      if (Model === null) {
        // CloudNativePG's Cluster has no schema here: check what the docs
        // promise of it.
        assert.equal(obj.apiVersion, 'postgresql.cnpg.io/v1', `no schema for ${obj.kind}`);
        assert.equal(obj.kind, 'Cluster');
        assert.equal(obj.spec.instances, 3);
        assert.ok(obj.spec.minSyncReplicas >= 1, 'synchronous replication');
        assert.equal(`${obj.metadata.name}-app`, 'upload-broker-db-app');
        continue;
      }
      assert.doesNotThrow(() => new Model(obj).validate(), `${obj.kind}/${obj.metadata.name}`);
    }
  });
}

function workload(objects) {
  return objects.find((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
}

test('the postgres overlay is highly available', { skip }, () => {
  const objects = render('deploy/k8s/postgres');
  const d = workload(objects);
  assert.equal(d.kind, 'Deployment');
  assert.ok(d.spec.replicas >= 3);
  assert.equal(d.spec.strategy.rollingUpdate.maxUnavailable, 0);
  const pdb = objects.find((o) => o.kind === 'PodDisruptionBudget');
  assert.equal(pdb.spec.minAvailable, 2);
  assert.deepEqual(pdb.spec.selector.matchLabels, d.spec.selector.matchLabels);
  const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler');
  assert.equal(hpa.spec.scaleTargetRef.name, d.metadata.name);
  assert.ok(hpa.spec.minReplicas >= 3);
  const pod = d.spec.template.spec;
  assert.ok(pod.topologySpreadConstraints.some((c) => c.topologyKey === 'kubernetes.io/hostname'));
  assert.equal(pod.automountServiceAccountToken, false);
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
  for (const np of policies) {
    assert.deepEqual(np.spec.podSelector.matchLabels, d.spec.selector.matchLabels);
  }
  assert.ok(policies.some((np) => np.spec.egress.some((e) => (e.ports || []).some((p) => p.port === 5432))));
});

test('the base selects only the broker on its own, and no pod gets a service account token', { skip }, () => {
  const base = render('deploy/k8s/base');
  const pdb = base.find((o) => o.kind === 'PodDisruptionBudget');
  assert.equal(pdb.spec.selector.matchLabels['app.kubernetes.io/name'], 'upload-broker');
  assert.equal(base.find((o) => o.kind === 'Service').spec.selector['app.kubernetes.io/name'],
               'upload-broker');
  const np = base.find((o) => o.kind === 'NetworkPolicy');
  assert.equal(np.spec.podSelector.matchLabels['app.kubernetes.io/name'], 'upload-broker');
  assert.deepEqual(np.spec.policyTypes, ['Ingress', 'Egress']);
  for (const dir of ['deploy/k8s/sqlite', 'deploy/k8s/postgres']) {
    assert.equal(workload(render(dir)).spec.template.spec.automountServiceAccountToken, false, dir);
  }
});

test('every workload names its image by a version tag', { skip }, () => {
  for (const dir of ['deploy/k8s/sqlite', 'deploy/k8s/postgres']) {
    const image = workload(render(dir)).spec.template.spec.containers[0].image;
    assert.match(image, /:\d+\.\d+\.\d+$/, `${dir}: ${image}`);
  }
});

// Runs the broker with the manifest's args and environment, the config from
// its ConfigMap and every mounted secret path moved into a temp dir. The
// PostgreSQL DSN points nowhere, so a broker that accepted everything else
// stops at the database: that proves the flags, the environment and the
// config are all understood.
for (const dir of ['deploy/k8s/sqlite', 'deploy/k8s/postgres']) {
  test(`${dir}: the broker accepts the manifest's flags, environment and config`, { skip }, () => {
    const objects = render(dir);
    const d = workload(objects);
    const c = d.spec.template.spec.containers[0];
    const cm = objects.find((o) => o.kind === 'ConfigMap');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ub-manifests-'));
    const move = (p) => p.replace(/^\/(run|var|etc)\//, `${tmp}/$1/`);
    const mkfile = (p, text) => {
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, text);
    };
    mkfile(move('/run/secrets/oss/access_key_id'), 'LTAI5tManifestTest');
    mkfile(move('/run/secrets/oss/access_key_secret'), 'manifest-test-secret');
    mkfile(move('/run/secrets/postgres/uri'), 'postgresql://ub:pw@/db?host=/nonexistent-socket-dir');
    fs.mkdirSync(move('/var/lib/upload-broker/'), { recursive: true });
    let config = cm.data['broker.yaml'].replace(/(\/(?:run|var|etc)\/[^\s"}]+)/g, (m) => move(m));
    config = config.replace(/0\.0\.0\.0:\d+/g, '127.0.0.1:0');
    const configPath = move(c.args[c.args.indexOf('--config') + 1]);
    mkfile(configPath, config);
    const args = c.args.map((a) => (a.startsWith('/') ? move(a) : a));
    const env = { ...process.env };
    for (const e of c.env || []) env[e.name] = e.value.startsWith('/') ? move(e.value) : e.value;
    const run = spawnSync(process.env.UB_BROKER_BIN, args, { env, encoding: 'utf8', timeout: 20000 });
    const out = run.stdout + run.stderr;
    assert.doesNotMatch(out, /Unknown command line flag/);
    if (dir.endsWith('postgres')) {
      assert.equal(run.status, 2, out);
      assert.match(out, /ledger\.postgres: PostgreSQL unreachable/);
      assert.doesNotMatch(out, /pw@/, 'the DSN leaked into the log');
    } else {
      // SQLite starts: stop it once it served.
      assert.match(out, /listening/, out);
    }
    // Ports and probes: the config's listeners are the container's ports.
    const ports = Object.fromEntries(c.ports.map((p) => [p.name, p.containerPort]));
    assert.match(cm.data['broker.yaml'], new RegExp(`grpc: "0\\.0\\.0\\.0:${ports.grpc}"`));
    assert.match(cm.data['broker.yaml'], new RegExp(`http: "0\\.0\\.0\\.0:${ports.http}"`));
    // /metrics lives on the admin listener, which Prometheus is pointed at
    // and the NetworkPolicy opens to the monitoring namespace only.
    assert.match(cm.data['broker.yaml'], new RegExp(`admin: "0\\.0\\.0\\.0:${ports.admin}"`));
    // ...and never on the public callback port.
    assert.doesNotMatch(cm.data['broker.yaml'], /metrics_on_public_port/);
    if (!dir.endsWith('postgres')) assert.match(out, /admin listening on port/, out);
    const annotations = d.spec.template.metadata.annotations || {};
    assert.equal(annotations['prometheus.io/scrape'], 'true');
    assert.equal(annotations['prometheus.io/port'], String(ports.admin));
    assert.equal(annotations['prometheus.io/path'], '/metrics');
    const np = objects.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name.endsWith('upload-broker'));
    const admin = np.spec.ingress.filter((r) => r.ports.some((p) => p.port === 'admin'));
    assert.equal(admin.length, 1);
    assert.equal(admin[0].from[0].namespaceSelector.matchLabels['kubernetes.io/metadata.name'], 'monitoring');
    assert.ok(np.spec.ingress.every((r) => r === admin[0] || r.ports.every((p) => p.port !== 'admin')));
    // The pod outlives the broker's bounded drain (30 s) plus any preStop pause.
    const pause = (c.lifecycle && c.lifecycle.preStop && c.lifecycle.preStop.sleep)
      ? c.lifecycle.preStop.sleep.seconds : 0;
    assert.ok(d.spec.template.spec.terminationGracePeriodSeconds >= 30 + pause);
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    assert.equal(c.startupProbe.grpc.port, ports.grpc);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
}
