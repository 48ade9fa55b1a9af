// harness.js — starts the real wxauth binary for a test: a temporary database with apps and
// users made through the CLI, the provider on a free loopback port, and HTTP helpers.
'use strict';
const { spawn, spawnSync, execFileSync } = require('node:child_process');
const net = require('node:net');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { after } = require('node:test');

const BIN = process.env.WXAUTH_BIN || path.join(__dirname, '../../build/wxauth');
const ADMIN = 'test-admin-token-0123456789';

// A test's skip option: why it cannot run on this machine (a program it starts is missing), or
// false. Under make check (WXAUTH_NO_SKIP=1: scripts/bootstrap check installed every tool) no
// test skips, so a missing tool fails the test instead of passing for green.
function needs(...programs) {
  if (process.env.WXAUTH_NO_SKIP === '1') return false;
  const missing = programs.find((p) => !fs.existsSync(p));
  return missing ? `${path.basename(missing)} is not installed` : false;
}

// spawnServer: child_process.spawn for the servers a test starts (provider, gate, Redis,
// nginx, the example app). Each is remembered until it exits; whatever a test left running
// (one that threw between starting a server and the try that stops it) is killed when the
// file's tests end and named on stderr, so a failed test fails and the file still exits,
// instead of its open pipes keeping node alive until ctest's timeout.
const running = new Set();
function spawnServer(cmd, args, opts) {
  const child = spawn(cmd, args, opts);
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}
// Only in a test file's process (on-redis.js loads this file too, to start its Redis).
if (require.main && /\.test\.js$/.test(require.main.filename)) after(async () => {
  const left = [...running];
  for (const c of left) {
    console.error(`harness: killing ${path.basename(c.spawnfile)} (pid ${c.pid}), left running by a test`);
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  }
});

function cli(args, opts = {}) {
  return execFileSync(BIN, args, { encoding: 'utf8', ...opts });
}

function cliJson(args) {
  return JSON.parse(cli([...args, '--json']));
}

// The suites run on Redis too (on-redis.js sets WXAUTH_TEST_REDIS to its server's URL): then
// every database, gate and stack that a test does not give a store gets a key prefix of its own
// on that Redis, as fresh as a new SQLite file. null when the suite runs on SQLite.
let storeCount = 0;
function freshStore() {
  const base = process.env.WXAUTH_TEST_REDIS;
  return base ? `${base}?prefix=t${process.pid}_${++storeCount}:` : null;
}

// A fresh database directory with one app (domain localhost:<cbPort or 9000>) and users.
// Extra options: httpsOnly, website, snapshot (list of user indexes made snapshot users).
// db: a store URL (redis://...) instead of a fresh SQLite file.
function makeDb({ domains = ['localhost:9000'], openAccount, menu = [], users = ['小明😀'],
  httpsOnly, website, snapshot = [], db: url } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxauth-test-'));
  const db = url || freshStore() || path.join(dir, 'test.db');
  const app = addApp(db, { domains, openAccount, menu, httpsOnly, website });
  const userIds = users.map((n, i) => addUser(db, n, { snapshot: snapshot.includes(i) }));
  return { dir, db, app, appid: app.appid, secret: app.secret, users: userIds };
}

// Adds another app to a database through the CLI; returns its JSON view (with the secret).
function addApp(db, { name = '测试公众号', domains = ['localhost:9000'], openAccount, menu = [],
  httpsOnly, website } = {}) {
  const args = ['app', 'add', '--db', db, '--name', name];
  for (const d of domains) args.push('--domain', d);
  if (openAccount) args.push('--open-account', openAccount);
  for (const m of menu) args.push('--menu', m);
  if (httpsOnly) args.push('--https-only');
  if (website) args.push('--website');
  return cliJson(args);
}

// Adds a user through the CLI; returns its id (a string).
function addUser(db, nickname, { snapshot } = {}) {
  const args = ['user', 'add', '--db', db, '--nickname', nickname];
  if (snapshot) args.push('--snapshot');
  return cliJson(args).id;
}

// Runs the CLI without throwing: { status, stdout, stderr }.
function cliRun(args, opts = {}) {
  const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 20000, ...opts });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Starts `wxauth provider` and resolves once it prints its listening line.
// opts: sandbox (default true), testClock (default true), adminToken (default true),
// env (extra environment), args (replaces the default --db/--listen pair entirely).
// A provider on a store URL (redis://, redis-sentinel://) instead of a database file.
function startOnStore(url, extra = [], opts = {}) {
  return startProvider(null, extra, { ...opts, args: ['--store', url, '--listen', '127.0.0.1:0'] });
}

function startProvider(db, extra = [], opts = {}) {
  const { sandbox = true, testClock = true, adminToken = true, env, args: baseArgs } = opts;
  return new Promise((resolve, reject) => {
    const args = ['provider', ...(baseArgs || ['--db', db, '--listen', '127.0.0.1:0'])];
    if (sandbox) args.push('--sandbox');
    if (testClock) args.push('--test-clock');
    if (adminToken) args.push('--admin-token', ADMIN);
    args.push(...extra);
    const child = spawnServer(BIN, args, {
      stdio: ['ignore', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env,
    });
    let out = '', err = '';
    const timer = setTimeout(() => reject(new Error('provider did not start: ' + err)), 10000);
    child.stderr.on('data', (d) => { err += d; });
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/([0-9.]+):(\d+))/);
      if (m && !child.started) {
        child.started = true;
        clearTimeout(timer);
        resolve({
          base: m[1], host: m[2], port: Number(m[3]), child, logs: () => err, stdout: () => out,
          stop: () => new Promise((r) => { if (child.exitCode !== null || child.signalCode) return r(); child.once('exit', r); child.kill('SIGTERM'); }),
          kill9: () => new Promise((r) => { if (child.exitCode !== null || child.signalCode) return r(); child.once('exit', r); child.kill('SIGKILL'); }),
        });
      }
    });
    child.on('exit', (code) => { clearTimeout(timer); if (!out.includes('listening')) reject(new Error(`provider exited ${code}: ${err}`)); });
  });
}

async function get(url, headers = {}) {
  return fetch(url, { redirect: 'manual', headers });
}

async function getJson(url) {
  const r = await get(url);
  return { status: r.status, headers: r.headers, body: await r.json() };
}

async function admin(base, method, p, body) {
  const r = await fetch(base + p, {
    method, headers: { Authorization: 'Bearer ' + ADMIN, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

// Mints codes straight from the admin API (no browser).
async function issueCodes(base, appid, user, scope = 'snsapi_base', count = 1) {
  const r = await admin(base, 'POST', '/admin/issue', { appid, user, scope, kind: 'code', count });
  if (r.status !== 200) throw new Error('issue failed: ' + JSON.stringify(r.body));
  return r.body.codes;
}

async function exchange(base, appid, secret, code) {
  const q = new URLSearchParams({ appid, secret, code, grant_type: 'authorization_code' });
  return (await getJson(`${base}/sns/oauth2/access_token?${q}`)).body;
}

// Exchanges codes (shifted off the array) on `workers` concurrent clients until stop() or the
// codes run out, a short pause after each failure. Each answer is recorded in got:
// { at, ok, errcode, token, openid }. stop() resolves got once the clients are done.
function exchangeLoad(p, d, codes, workers = 4) {
  const got = [];
  let stopped = false;
  const worker = async () => {
    while (codes.length && !stopped) {
      const r = await exchange(p.base, d.appid, d.secret, codes.shift());
      got.push({ at: Date.now(), ok: !!r.access_token, errcode: r.errcode, token: r.access_token, openid: r.openid });
      if (!r.access_token) await sleep(50);
    }
  };
  const running = Array.from({ length: workers }, worker);
  return { got, stop: async () => { stopped = true; await Promise.all(running); return got; } };
}

// The /sns/auth answers, other than errcode 0, for every token a client received in got.
async function lostTokens(p, got) {
  const lost = [];
  for (const g of got.filter((x) => x.ok)) {
    const r = await getJson(`${p.base}/sns/auth?access_token=${g.token}&openid=${g.openid}`);
    if (r.body.errcode !== 0) lost.push(r.body);
  }
  return lost;
}

// Signs a "browser" (a cookie string) in as a test user through POST /sandbox/login.
async function login(base, user) {
  const r = await fetch(base + '/sandbox/login', {
    method: 'POST', redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: `user=${user}&next=%2Fsandbox%2Fhome`,
  });
  const c = r.headers.get('set-cookie');
  if (r.status !== 303 || !c) throw new Error('login failed ' + r.status);
  return c.split(';')[0];
}

// The provider's current (test-clock) time and offset.
async function clock(base, advance) {
  const r = advance === undefined ? await admin(base, 'GET', '/admin/clock')
    : await admin(base, 'POST', '/admin/clock', { advance });
  if (r.status !== 200) throw new Error('clock failed: ' + JSON.stringify(r.body));
  return r.body;
}

// If the provider's minute is about to roll over, moves the test clock to the start of the next
// minute, so that per-minute counters are not reset in the middle of a test.
async function startOfMinute(base) {
  const { now } = await clock(base);
  if (now % 60 > 40) await clock(base, 60 - (now % 60));
}

// An authorize URL with the parameters in WeChat's order (values are url-encoded once).
function authorizeUrl(base, params) {
  const q = Object.entries(params).filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return `${base}/connect/oauth2/authorize?${q}#wechat_redirect`;
}

// GET with a cookie and no redirect following; resolves { status, headers, location, body }.
async function page(url, cookie, headers = {}) {
  const h = { ...headers };
  if (cookie) h.Cookie = cookie;
  const r = await fetch(url, { redirect: 'manual', headers: h });
  return { status: r.status, headers: r.headers, location: r.headers.get('location'), body: await r.text() };
}

function htmlUnescape(s) {
  return s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&#x27;/g, "'").replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

// The first <form> of an HTML page: { method, action, fields (hidden inputs), buttons }.
function parseForm(html) {
  const m = html.match(/<form\b([^>]*)>([\s\S]*?)<\/form>/);
  if (!m) throw new Error('no form in page');
  const attr = (tag, name) => {
    const a = tag.match(new RegExp(`\\b${name}="([^"]*)"`));
    return a ? htmlUnescape(a[1]) : undefined;
  };
  const fields = {};
  for (const t of m[2].match(/<input\b[^>]*>/g) || []) {
    if (attr(t, 'type') === 'hidden') fields[attr(t, 'name')] = attr(t, 'value') || '';
  }
  const buttons = (m[2].match(/<button\b[^>]*>[\s\S]*?<\/button>/g) || []).map((b) => ({
    name: attr(b, 'name'), value: attr(b, 'value'), text: b.replace(/<[^>]*>/g, ''),
  }));
  return { method: attr(m[1], 'method'), action: attr(m[1], 'action'), fields, buttons };
}

// POSTs an application/x-www-form-urlencoded body with a cookie, no redirect following.
async function postForm(url, fields, cookie) {
  const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
  if (cookie) headers.Cookie = cookie;
  const r = await fetch(url, { method: 'POST', redirect: 'manual', headers, body: new URLSearchParams(fields).toString() });
  return { status: r.status, headers: r.headers, location: r.headers.get('location'), body: await r.text() };
}

// The errcode an error page shows (null when it shows none).
function pageErrcode(html) {
  const m = html.match(/errcode: (-?\d+)/);
  return m ? Number(m[1]) : null;
}

// Sends raw bytes on a fresh TCP connection and collects the answer until the server closes
// the connection or `timeout` ms pass. Resolves { status, head, text, closed }.
function raw(port, data, { timeout = 5000, host = '127.0.0.1' } = {}) {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    const chunks = [];
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const m = text.match(/^HTTP\/1\.[01] (\d{3})/);
      const head = text.split('\r\n\r\n')[0];
      resolve({ status: m ? Number(m[1]) : null, head, text, closed });
    };
    const timer = setTimeout(() => finish(false), timeout);
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
    s.write(data);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Waits until cond() is true (polling); throws after `ms`. Used only to wait for log lines.
async function waitFor(cond, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  while (!(await cond())) { // cond may be async
    if (Date.now() > end) throw new Error(`${what} not met in time`);
    await sleep(20);
  }
}

// Requests a provider counted in /metrics for route (a string, or a RegExp over route names),
// with errcode (undefined: any).
async function providerRequests(base, route, errcode) {
  const text = await (await fetch(`${base}/metrics`)).text();
  let n = 0;
  for (const line of text.split('\n')) {
    const m = line.match(/^wxauth_provider_requests_total\{route="([^"]+)",status="\d+",errcode="(-?\d+)"\} (\d+)/);
    if (m && (route instanceof RegExp ? route.test(m[1]) : m[1] === route) &&
        (errcode === undefined || Number(m[2]) === errcode)) n += Number(m[3]);
  }
  return n;
}

// Runs fn(provider, db) against a fresh database and provider, always stopping the provider.
async function withProvider(dbOpts, fn, extra = [], opts = {}) {
  const d = makeDb(dbOpts);
  const p = await startProvider(d.db, extra, opts);
  try {
    return await fn(p, d);
  } finally {
    await p.stop();
  }
}

// A free loopback port (closed again at once; the caller binds it next).
// A loopback port free now, for a server a test starts on a port it must know beforehand.
// Picked at random below the kernel's ephemeral range (ip_local_port_range, 32768-60999 on
// Debian), where nothing binds port 0 and no outgoing connection (to Redis, to the provider)
// takes its local port: a port from bind(0) instead was free only until the next server or
// connection the kernel gave it to, and a gate now and then failed to start.
const PORT_LO = 20000;
const PORT_HI = 32767;
function freePort() {
  return new Promise((resolve, reject) => {
    const attempt = (left) => {
      const port = PORT_LO + Math.floor(Math.random() * (PORT_HI - PORT_LO + 1));
      const s = net.createServer();
      s.once('error', () => (left > 0 ? attempt(left - 1) : reject(new Error('no free port'))));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(port)));
    };
    attempt(100);
  });
}

// upOrExit(child, isUp): resolves true when isUp() holds, false when the child exits first
// (a server whose port was taken between freePort() and its start).
function upOrExit(child, isUp, ms = 10000) {
  const until = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const check = () => {
      if (isUp()) return resolve(true);
      if (child.exitCode !== null || child.signalCode) return resolve(false);
      if (Date.now() > until) return reject(new Error(`a server did not start in ${ms} ms`));
      setTimeout(check, 20);
    };
    check();
  });
}

// onFreshPorts(start): runs start() again, at most 3 times in all, while it fails with an error
// marked portTaken (start picks its ports with freePort() each time).
async function onFreshPorts(start, tries = 3) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (e) {
      if (!e.portTaken || attempt === tries) throw e;
    }
  }
}

// A minimal browser for fetch: cookies kept per port (the site runs as localhost:PORT, the
// provider as 127.0.0.1:PORT), no redirect following.
class Browser {
  constructor() { this.jar = {}; }
  cookie(url) { return Object.entries(this.jar[new URL(url).port] || {}).map(([k, v]) => `${k}=${v}`).join('; '); }
  async go(url, opts = {}) {
    const res = await fetch(url.replace('//localhost:', '//127.0.0.1:'), {
      redirect: 'manual', ...opts, headers: { Cookie: this.cookie(url), ...(opts.headers || {}) } });
    const port = new URL(url).port;
    for (const c of res.headers.getSetCookie()) {
      const [kv] = c.split(';');
      const i = kv.indexOf('=');
      const jar = (this.jar[port] ||= {});
      if (/Max-Age=0/.test(c)) delete jar[kv.slice(0, i)];
      else jar[kv.slice(0, i)] = kv.slice(i + 1);
    }
    return { status: res.status, location: res.headers.get('location'), headers: res.headers, body: await res.text() };
  }
  // POSTs fields as a form (application/x-www-form-urlencoded), like a browser submitting one.
  post(url, fields, headers = {}) {
    return this.go(url, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString() });
  }
}

module.exports = {
  BIN, ADMIN, needs, spawnServer, cli, cliJson, cliRun, freshStore, makeDb, addApp, addUser, startProvider, startOnStore, get, getJson, admin, upOrExit, onFreshPorts,
  issueCodes, exchange, exchangeLoad, lostTokens, login, clock, startOfMinute, authorizeUrl, page, parseForm, postForm,
  pageErrcode, raw, sleep, waitFor, withProvider, htmlUnescape, freePort, Browser, providerRequests,
};
