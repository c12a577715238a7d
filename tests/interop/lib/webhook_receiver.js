// A webhook receiver for interop tests: a plain node:http server that checks
// every request the way a real receiver would, with independent libraries:
// the Standard Webhooks signature with the npm `standardwebhooks` package,
// the CloudEvent with the npm `cloudevents` package. `answer(index, req)`
// picks the status of each request (default 200); every request is kept.
'use strict';
const http = require('node:http');
const { Webhook } = require('standardwebhooks');
const { HTTP } = require('cloudevents');

function startReceiver({ secrets, answer = () => 200 }) {
  const verifiers = secrets.map((s) => new Webhook(s));
  const requests = [];
  const waiters = [];
  const notify = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i].check()) { waiters[i].resolve(); waiters.splice(i, 1); }
    }
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const record = { headers: req.headers, body, at: Date.now(), verified: [], events: [] };
      // Every configured secret must verify the request on its own.
      for (const v of verifiers) {
        try { v.verify(body, req.headers); record.verified.push(true); } catch (e) { record.verified.push(String(e)); }
      }
      try {
        const parsed = HTTP.toEvent({ headers: req.headers, body });
        record.events = Array.isArray(parsed) ? parsed : [parsed];
      } catch (e) { record.parseError = String(e); }
      const index = requests.length;
      requests.push(record);
      const status = answer(index, record);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end('{}');
      notify();
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        url: `http://127.0.0.1:${server.address().port}/hooks/uploads`,
        requests,
        // Resolves once check() holds (checked after every request).
        until(check, ms = 60000, what = 'condition') {
          if (check()) return Promise.resolve();
          return new Promise((res2, rej) => {
            const timer = setTimeout(() => rej(new Error(`${what} not met within ${ms} ms (${requests.length} requests)`)), ms);
            waiters.push({ check, resolve: () => { clearTimeout(timer); res2(); } });
          });
        },
        close() { server.closeAllConnections(); return new Promise((r) => server.close(r)); },
      });
    });
  });
}

module.exports = { startReceiver };
