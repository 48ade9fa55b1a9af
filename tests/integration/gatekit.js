// gatekit.js — starting `wxauth gate` beside a provider and walking a login through it, for
// the gate's integration tests.
'use strict';
const assert = require('node:assert');
const h = require('./harness');

const { freePort } = h;

// A gate given no store gets a fresh one on the suite's Redis (harness.freshStore), else its
// default (memory).
function startGate(args, env) {
  const own = h.freshStore();
  if (own && !args.includes('--store') && !args.includes('--db')) args = [...args, '--store', own];
  return new Promise((resolve, reject) => {
    const child = h.spawnServer(h.BIN, ['gate', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    const timer = setTimeout(() => reject(new Error('gate did not start: ' + err)), 10000);
    child.stderr.on('data', (d) => { err += d; });
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[0-9.]+:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ base: m[1], logs: () => err, stop: () => new Promise((r) => { child.once('exit', r); child.kill('SIGTERM'); }) });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (out.includes('listening')) return;
      // Its port taken between freePort() and the gate's bind: onFreshPorts tries again.
      reject(Object.assign(new Error(`gate exited ${code}: ${err}`), { portTaken: /cannot listen on/.test(err) }));
    });
  });
}

// A provider and a gate on port (else a free one: taken meanwhile, setup tries fresh ones), fn
// run with both, both stopped whatever happens.
async function setup(fn, extra = [], { port: fixed } = {}) {
  const { d, p, g, site } = await h.onFreshPorts(async () => {
    const port = fixed || await freePort();
    const d = h.makeDb({ domains: [`localhost:${port}`], openAccount: 'acme' });
    const p = await h.startProvider(d.db);
    try {
      const g = await startGate(['--listen', `127.0.0.1:${port}`, '--public-url', `http://localhost:${port}`,
        '--open-base', p.base, '--api-base', p.base, '--desktop', 'pass', ...extra],
      { WXAUTH_APPID: d.appid, WXAUTH_SECRET: d.secret });
      return { d, p, g, site: `http://localhost:${port}` };
    } catch (e) {
      await p.stop();
      if (fixed) e.portTaken = false;
      throw e;
    }
  });
  try {
    await fn({ d, p, g, site });
  } finally {
    await g.stop();
    await p.stop();
  }
}

async function signIn(b, p, user) {
  const r = await b.post(`${p.base}/sandbox/login`, { user });
  assert.strictEqual(r.status, 303);
}

// start -> provider authorize -> (consent) -> callback; returns the callback response and URL.
async function login(b, p, site, { rd = '/orders/7', scope = 'snsapi_base', action = 'allow' } = {}) {
  const start = await b.go(`${site}/wxauth/start?rd=${encodeURIComponent(rd)}&scope=${scope}`);
  assert.strictEqual(start.status, 302);
  assert.match(start.location, new RegExp(`^${p.base}/connect/oauth2/authorize\\?appid=wx[0-9a-f]{16}&redirect_uri=http%3A%2F%2Flocalhost%3A\\d+%2Fwxauth%2Fcallback&response_type=code&scope=${scope}&state=[0-9A-Za-z]+&connect_redirect=1#wechat_redirect$`));
  let r = await b.go(start.location);
  if (r.status === 200) {
    const f = h.parseForm(r.body);
    r = await b.post(p.base + f.action, { ...f.fields, action });
  }
  assert.strictEqual(r.status, 302);
  return { url: r.location, res: await b.go(r.location) };
}


module.exports = { startGate, setup, signIn, login };
