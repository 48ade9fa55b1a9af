#!/usr/bin/env node
// gate_sessions.js — real WeChat logins through `wxauth gate` and a sandbox `wxauth provider`,
// for the gate benchmark of scripts/bench. Node 20, built-in modules only.
//
//   node bench/gate_sessions.js --gate http://127.0.0.1:G --provider http://127.0.0.1:P \
//        --user 1 [--n 100000] [--concurrency 32] [--cookie-out FILE]
//
// Each login walks what a phone does: GET gate /wxauth/start?rd=/ (User-Agent with
// MicroMessenger) → 302 to the provider's authorize URL with a sealed state; GET that URL as the
// sandbox user (cookie wxsb from POST /sandbox/login) → 302 to .../wxauth/callback?code&state;
// GET the callback path on the gate → 303 with Set-Cookie _wxauth=... . Once all N logins are
// done, every session is used once on GET gate /wxauth/auth (expects 202).
// Prints one summary line (parsed by scripts/bench):
//   logins N ok A failed B; auth ok C failed D; login_s S logins_per_s R; auth_s T
// and the first few failures on stderr. --cookie-out writes the first session's cookie
// ("_wxauth=...") to FILE. Exits 0 only when every login and every auth check succeeded.
'use strict';
const http = require('node:http');
const fs = require('node:fs');

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const GATE = new URL(arg('gate', ''));
const PROV = new URL(arg('provider', ''));
const USER = arg('user', '1');
const N = parseInt(arg('n', '1'), 10);
const CONC = Math.max(1, Math.min(parseInt(arg('concurrency', '32'), 10), N));
const COOKIE_OUT = arg('cookie-out', '');
const UA = 'Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) ' +
  'Mobile Safari/537.36 MicroMessenger/8.0.50.2701(0x28003237) NetType/WIFI Language/zh_CN';

const gateAgent = new http.Agent({ keepAlive: true, maxSockets: CONC });
const provAgent = new http.Agent({ keepAlive: true, maxSockets: CONC });

// GET/POST on one of the two servers: resolves { status, headers, body } (body is drained).
function request(base, agent, method, pathq, headers = {}, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: base.hostname, port: base.port, method, path: pathq, agent,
      headers: { 'User-Agent': UA, ...headers },
    }, (res) => {
      let n = 0;
      res.on('data', (d) => { n += d.length; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, bytes: n }));
      res.on('error', reject);
    });
    req.setTimeout(30000, () => req.destroy(new Error(`timeout: ${method} ${pathq}`)));
    req.on('error', reject);
    if (body) req.end(body); else req.end();
  });
}

// The "name=value" part of the Set-Cookie header that sets `name`, or null.
function cookieOf(res, name) {
  for (const c of [].concat(res.headers['set-cookie'] || [])) {
    const nv = c.split(';')[0];
    if (nv.startsWith(name + '=')) return nv;
  }
  return null;
}

async function sandboxLogin() {
  const r = await request(PROV, provAgent, 'POST', '/sandbox/login',
    { 'Content-Type': 'application/x-www-form-urlencoded' },
    `user=${encodeURIComponent(USER)}&next=%2Fsandbox%2Fhome`);
  const c = cookieOf(r, 'wxsb');
  if (!c) throw new Error(`sandbox login answered ${r.status} without a wxsb cookie`);
  return c;
}

async function login(wxsb) {
  const s = await request(GATE, gateAgent, 'GET', '/wxauth/start?rd=/');
  if (s.status !== 302 || !s.headers.location) throw new Error(`start answered ${s.status}`);
  const auth = new URL(s.headers.location);
  if (auth.host !== PROV.host) throw new Error(`start redirected elsewhere: ${auth.origin}`);
  const browser = cookieOf(s, '_wxauth_b'); // the gate's browser id, sent back like a browser
  const a = await request(PROV, provAgent, 'GET', auth.pathname + auth.search, { Cookie: wxsb });
  if (a.status !== 302 || !a.headers.location) throw new Error(`authorize answered ${a.status}`);
  const cb = new URL(a.headers.location);
  if (!cb.searchParams.get('code')) throw new Error(`authorize gave no code: ${cb.search}`);
  const c = await request(GATE, gateAgent, 'GET', cb.pathname + cb.search,
    browser ? { Cookie: browser } : {});
  const session = cookieOf(c, '_wxauth');
  if (c.status !== 303 || !session) throw new Error(`callback answered ${c.status}`);
  return session;
}

// Runs fn(i) for i in [0, n) with CONC workers; returns the number of successes.
async function pool(n, fn, failures) {
  let next = 0, ok = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      try {
        await fn(i);
        ok++;
      } catch (e) {
        if (failures.length < 5) failures.push(String(e && e.message ? e.message : e));
      }
    }
  };
  await Promise.all(Array.from({ length: CONC }, worker));
  return ok;
}

async function main() {
  if (!GATE.host || !PROV.host || !(N > 0)) {
    console.error('usage: gate_sessions.js --gate URL --provider URL --user ID [--n N] ' +
      '[--concurrency C] [--cookie-out FILE]');
    process.exit(2);
  }
  const wxsb = await sandboxLogin();
  const sessions = new Array(N);
  const failures = [];
  const t0 = process.hrtime.bigint();
  const logins = await pool(N, async (i) => { sessions[i] = await login(wxsb); }, failures);
  const t1 = process.hrtime.bigint();
  const auths = await pool(N, async (i) => {
    if (!sessions[i]) throw new Error(`session ${i}: no login`);
    const r = await request(GATE, gateAgent, 'GET', '/wxauth/auth', { Cookie: sessions[i] });
    if (r.status !== 202 || !r.headers['x-wechat-openid']) {
      throw new Error(`auth answered ${r.status}`);
    }
  }, failures);
  const t2 = process.hrtime.bigint();
  if (COOKIE_OUT && sessions[0]) fs.writeFileSync(COOKIE_OUT, sessions[0] + '\n');
  const ls = Number(t1 - t0) / 1e9, as = Number(t2 - t1) / 1e9;
  console.log(`logins ${N} ok ${logins} failed ${N - logins}; auth ok ${auths} failed ` +
    `${N - auths}; login_s ${ls.toFixed(1)} logins_per_s ${(logins / ls).toFixed(0)}; ` +
    `auth_s ${as.toFixed(1)}`);
  for (const f of failures) console.error(`failure: ${f}`);
  gateAgent.destroy();
  provAgent.destroy();
  process.exit(logins === N && auths === N ? 0 : 1);
}

main().catch((e) => {
  console.error(`gate_sessions: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
