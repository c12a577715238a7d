#!/usr/bin/env node
// A small local webhook receiver for scripts/run.sh: prints each CloudEvent
// the broker delivers after checking its Standard Webhooks signature with
// the npm `standardwebhooks` package (installed for the interop tests).
//   node scripts/dev_webhook_receiver.js PORT SECRET_FILE
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { Webhook } = require(path.join(__dirname, '../tests/interop/node_modules/standardwebhooks'));

const [port, secretFile] = process.argv.slice(2);
const wh = new Webhook(fs.readFileSync(secretFile, 'utf8').trim());
http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    try {
      const ce = wh.verify(body, req.headers);
      console.log(`webhook ${req.headers['webhook-id']} (signature ok): ${ce.type} ${ce.subject} sequence ${ce.sequence}`);
      res.writeHead(204).end();
    } catch (e) {
      console.log(`webhook refused: ${e.message}`);
      res.writeHead(401).end();
    }
  });
}).listen(Number(port), '127.0.0.1', () => console.log(`webhook receiver on http://127.0.0.1:${port}/hooks/uploads`));
