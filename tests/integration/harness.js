// harness.js — starts the real wxauth binary for a test: a temporary database with apps and
// users made through the CLI, the provider on a free loopback port, and HTTP helpers.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const BIN = process.env.WXAUTH_BIN || path.join(__dirname, '../../build/wxauth');
const ADMIN = 'test-admin-token-0123456789';

function cli(args, opts = {}) {
  return execFileSync(BIN, args, { encoding: 'utf8', ...opts });
}

function cliJson(args) {
  return JSON.parse(cli([...args, '--json']));
}

// A fresh database directory with one app (domain localhost:<cbPort or 9000>) and users.
function makeDb({ domains = ['localhost:9000'], openAccount, menu = [], users = ['小明😀'] } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxauth-test-'));
  const db = path.join(dir, 'test.db');
  const args = ['app', 'add', '--db', db, '--name', '测试公众号'];
  for (const d of domains) args.push('--domain', d);
  if (openAccount) args.push('--open-account', openAccount);
  for (const m of menu) args.push('--menu', m);
  const app = cliJson(args);
  const userIds = users.map((n) => cliJson(['user', 'add', '--db', db, '--nickname', n]).id);
  return { dir, db, app, appid: app.appid, secret: app.secret, users: userIds };
}

// Starts `wxauth provider` and resolves once it prints its listening line.
function startProvider(db, extra = []) {
  return new Promise((resolve, reject) => {
    const args = ['provider', '--db', db, '--listen', '127.0.0.1:0', '--sandbox', '--test-clock',
      '--admin-token', ADMIN, ...extra];
    const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    const timer = setTimeout(() => reject(new Error('provider did not start: ' + err)), 10000);
    child.stderr.on('data', (d) => { err += d; });
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[0-9.]+:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({
          base: m[1], child, logs: () => err,
          stop: () => new Promise((r) => { if (child.exitCode !== null) return r(); child.once('exit', r); child.kill('SIGTERM'); }),
          kill9: () => new Promise((r) => { child.once('exit', r); child.kill('SIGKILL'); }),
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

module.exports = { BIN, ADMIN, cli, cliJson, makeDb, startProvider, get, getJson, admin, issueCodes, exchange, login };
