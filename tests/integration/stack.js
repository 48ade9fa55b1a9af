// stack.js — the whole picture on loopback for a test: the real nginx with the shipped
// examples/nginx/wxauth-site.conf, `wxauth gate`, `wxauth provider` and a tiny upstream app that
// echoes what reached it. Used by the integration and browser tests of the gate.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const h = require('./harness');

const NGINX = '/usr/sbin/nginx';
const SNIPPET = path.join(__dirname, '../../examples/nginx/wxauth-site.conf');

const { freePort, upOrExit, onFreshPorts } = h;

// nodes: 2 runs two providers and two gates sharing one Redis (redis: a store URL), behind
// nginx upstreams: the site's gate upstream has both gates, and the gates reach "WeChat"
// through an nginx upstream of both providers, so consecutive requests alternate nodes.
//
// Ports for nginx and the gates are picked before those servers bind them, so another process
// can take one in between (another test's server: freePort picks below the ephemeral range,
// so no listen(0) and no outgoing connection does). nginx then keeps its other ports open while it retries the taken one for ~2.5 s
// and exits, and a gate exits at once: a port that answers is not proof. So each server is
// watched until it has bound everything (the gate's "listening on", nginx's pid file, which it
// writes after binding all its ports), and the whole stack is started again on fresh ports
// when one of them could not bind.
// On a shared Redis every attempt gets a key prefix of its own, so that a retried start does not
// find the apps and users of the attempt before it (two test users of the same name).
function startStack(opts = {}) {
  if (!opts.redis && h.freshStore()) opts = { ...opts, redis: h.freshStore() }; // a Redis suite run
  let attempt = 0;
  return onFreshPorts(() => {
    attempt++;
    if (!opts.redis) return startStackOnce(opts);
    const redis = /[?&]prefix=/.test(opts.redis) ? opts.redis.replace(/([?&]prefix=[^&]*)/, `$1s${attempt}:`)
      : `${opts.redis}${opts.redis.includes('?') ? '&' : '?'}prefix=wx:s${attempt}:`;
    return startStackOnce({ ...opts, redis });
  });
}

async function startStackOnce({ gateArgs = [], nodes = 1, redis } = {}) {
  const [site, appPort] = [await freePort(), await freePort()];
  const gatePorts = [];
  for (let i = 0; i < nodes; i++) gatePorts.push(await freePort());
  const wechatPort = nodes > 1 ? await freePort() : 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxauth-nginx-'));
  // The upstream app: echoes what reached it.
  const app = http.createServer((req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  }).listen(appPort, '127.0.0.1');
  const d = h.makeDb({ domains: [`localhost:${site}`], openAccount: 'acme', db: redis });
  const store = redis ? ['--store', redis, '--listen', '127.0.0.1:0'] : null;
  const ps = [];
  for (let i = 0; i < nodes; i++) ps.push(await h.startProvider(d.db, [], store ? { args: store } : {}));
  const p = ps[0];
  const wechat = nodes > 1 ? `http://127.0.0.1:${wechatPort}` : p.base;
  const gates = gatePorts.map((port) => h.spawnServer(h.BIN, ['gate', '--listen', `127.0.0.1:${port}`,
    '--public-url', `http://localhost:${site}`, '--open-base', wechat, '--api-base', wechat, '--desktop', 'pass',
    '--cookie-secret', 'd'.repeat(64), ...(redis ? ['--store', redis] : []), ...gateArgs],
  { env: { ...process.env, WXAUTH_APPID: d.appid, WXAUTH_SECRET: d.secret }, stdio: ['ignore', 'pipe', 'ignore'] }));
  for (const g of gates) {
    g.out = '';
    g.stdout.on('data', (b) => { g.out += b; });
  }
  let conf = fs.readFileSync(SNIPPET, 'utf8').replaceAll('127.0.0.1:8080', `127.0.0.1:${site}`)
    .replaceAll('127.0.0.1:9000', `127.0.0.1:${appPort}`)
    .replace('server 127.0.0.1:8710;', gatePorts.map((port) => `server 127.0.0.1:${port};`).join(' '));
  if (nodes > 1) {
    conf += `
upstream wechat_nodes { ${ps.map((x) => `server 127.0.0.1:${x.port};`).join(' ')} keepalive 8; }
server {
    listen 127.0.0.1:${wechatPort};
    location / { proxy_pass http://wechat_nodes; proxy_http_version 1.1; proxy_set_header Connection "";
                 proxy_set_header Host $http_host; }
}
`;
  }
  fs.writeFileSync(path.join(dir, 'site.conf'), conf);
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `daemon off; master_process off; worker_processes 1;
pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 256; }
http { access_log off; client_body_temp_path ${dir}/t1; proxy_temp_path ${dir}/t2; fastcgi_temp_path ${dir}/t3;
  uwsgi_temp_path ${dir}/t4; scgi_temp_path ${dir}/t5; include ${dir}/site.conf; }
`);
  const ng = h.spawnServer(NGINX, ['-c', path.join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
  const stop = async () => {
    for (const c of [ng, ...gates]) if (c.exitCode === null && !c.signalCode) { const e = new Promise((r) => c.once('exit', r)); c.kill('SIGTERM'); await e; }
    await new Promise((r) => app.close(r));
    for (const x of ps) await x.stop();
  };
  const up = [await upOrExit(ng, () => fs.existsSync(path.join(dir, 'nginx.pid')))];
  for (const g of gates) up.push(await upOrExit(g, () => g.out.includes('listening on')));
  if (up.includes(false)) {
    const log = fs.existsSync(path.join(dir, 'error.log')) ? fs.readFileSync(path.join(dir, 'error.log'), 'utf8') : '';
    await stop();
    throw Object.assign(new Error(`nginx or a gate could not bind its port: ${log.trim().split('\n').pop() || 'gate exited'}`), { portTaken: true });
  }
  return { d, p, ps, wechat, site: `http://localhost:${site}`, gates: gatePorts.map((port) => `http://127.0.0.1:${port}`), stop };
}

module.exports = { startStack, NGINX };
