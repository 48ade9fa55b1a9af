// stack.js — the whole picture on loopback for a test: the real nginx with the shipped
// examples/nginx/wxauth-site.conf, `wxauth gate`, `wxauth provider` and a tiny upstream app that
// echoes what reached it. Used by the integration and browser tests of the gate.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const net = require('node:net');
const { spawn } = require('node:child_process');
const h = require('./harness');

const NGINX = '/usr/sbin/nginx';
const SNIPPET = path.join(__dirname, '../../examples/nginx/wxauth-site.conf');

const { freePort } = h;

function waitPort(port, ms = 5000) {
  const until = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tryOnce = () => {
      const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(); });
      s.on('error', () => (Date.now() > until ? reject(new Error(`port ${port} not open`)) : setTimeout(tryOnce, 50)));
    };
    tryOnce();
  });
}

async function startStack({ gateArgs = [] } = {}) {
  const [site, gatePort, appPort] = [await freePort(), await freePort(), await freePort()];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxauth-nginx-'));
  // The upstream app: echoes what reached it.
  const app = http.createServer((req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  }).listen(appPort, '127.0.0.1');
  const d = h.makeDb({ domains: [`localhost:${site}`], openAccount: 'acme' });
  const p = await h.startProvider(d.db);
  const g = spawn(h.BIN, ['gate', '--listen', `127.0.0.1:${gatePort}`, '--public-url', `http://localhost:${site}`,
    '--open-base', p.base, '--api-base', p.base, '--desktop', 'pass', ...gateArgs], { env: { ...process.env, WXAUTH_APPID: d.appid, WXAUTH_SECRET: d.secret }, stdio: 'ignore' });
  const conf = fs.readFileSync(SNIPPET, 'utf8').replaceAll('127.0.0.1:8080', `127.0.0.1:${site}`)
    .replaceAll('127.0.0.1:8710', `127.0.0.1:${gatePort}`).replaceAll('127.0.0.1:9000', `127.0.0.1:${appPort}`);
  fs.writeFileSync(path.join(dir, 'site.conf'), conf);
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `daemon off; master_process off; worker_processes 1;
pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 256; }
http { access_log off; client_body_temp_path ${dir}/t1; proxy_temp_path ${dir}/t2; fastcgi_temp_path ${dir}/t3;
  uwsgi_temp_path ${dir}/t4; scgi_temp_path ${dir}/t5; include ${dir}/site.conf; }
`);
  const ng = spawn(NGINX, ['-c', path.join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
  await waitPort(gatePort);
  await waitPort(site);
  const stop = async () => {
    for (const c of [ng, g]) if (c.exitCode === null) { const e = new Promise((r) => c.once('exit', r)); c.kill('SIGTERM'); await e; }
    await new Promise((r) => app.close(r));
    await p.stop();
  };
  return { d, p, site: `http://localhost:${site}`, stop };
}

module.exports = { startStack, NGINX };
