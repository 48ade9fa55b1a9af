// redis_nodes.test.js — several providers and gates sharing one real Redis: a code issued by one
// node is redeemed on the other; 50 concurrent redemptions spread over both give exactly one
// success; Redis stopped → -1 quickly, pages and /healthz 503, and service returns by itself;
// a code redeemed before a Redis restart is still refused after it; a login through gate A is
// valid at gate B, a sign-out at A ends it at B, and WeChat's double callback landing on both
// gates yields one exchange.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const h = require('./harness');
const { startRedis, REDIS } = require('./redis');
const { startGate, signIn } = require('./gatekit');

const { Browser, freePort } = h;
const skip = h.needs(REDIS);

async function onRedis(fn, { nodes = 2, dbOpts = {} } = {}) {
  const r = await startRedis();
  const d = h.makeDb({ ...dbOpts, db: r.url, openAccount: 'acme' });
  const ps = [];
  try {
    for (let i = 0; i < nodes; i++) ps.push(await h.startOnStore(r.url));
    await fn({ r, d, ps });
  } finally {
    for (const p of ps) await p.stop();
    await r.cleanup();
  }
}

test('providers on one Redis: issued on A, redeemed on B; tokens valid on both; replay refused everywhere', { skip }, async () => {
  await onRedis(async ({ d, ps: [a, b] }) => {
    const [code] = await h.issueCodes(a.base, d.appid, d.users[0], 'snsapi_userinfo');
    const tok = await h.exchange(b.base, d.appid, d.secret, code);
    assert.match(tok.access_token, /^90_/);
    assert.strictEqual(tok.scope, 'snsapi_userinfo');
    for (const p of [a, b]) {
      const ui = (await h.getJson(`${p.base}/sns/userinfo?access_token=${tok.access_token}&openid=${tok.openid}`)).body;
      assert.strictEqual(ui.nickname, '小明😀');
    }
    const again = await h.exchange(a.base, d.appid, d.secret, code);
    assert.strictEqual(again.errcode, 40163);
    // The replay revoked what the code had produced, on every node.
    const auth = (await h.getJson(`${b.base}/sns/auth?access_token=${tok.access_token}&openid=${tok.openid}`)).body;
    assert.notStrictEqual(auth.errcode, 0);
    // A browser flow across nodes: authorize on A, exchange and refresh on B.
    const cookie = await h.login(a.base, d.users[0]);
    const r = await h.page(h.authorizeUrl(a.base, { appid: d.appid, redirect_uri: 'http://localhost:9000/cb',
      response_type: 'code', scope: 'snsapi_base', state: 'x' }), cookie);
    assert.strictEqual(r.status, 302);
    const t2 = await h.exchange(b.base, d.appid, d.secret, new URL(r.location).searchParams.get('code'));
    assert.strictEqual(t2.scope, 'snsapi_base');
    const q = new URLSearchParams({ appid: d.appid, grant_type: 'refresh_token', refresh_token: t2.refresh_token });
    const ref = (await h.getJson(`${a.base}/sns/oauth2/refresh_token?${q}`)).body;
    assert.match(ref.access_token, /^90_/);
  });
});

test('50 concurrent redemptions of one code over two providers: exactly one success', { skip }, async () => {
  await onRedis(async ({ d, ps: [a, b] }) => {
    for (let round = 0; round < 3; round++) {
      const [code] = await h.issueCodes(a.base, d.appid, d.users[0]);
      const rs = await Promise.all(Array.from({ length: 50 }, (_, i) =>
        h.exchange((i % 2 ? a : b).base, d.appid, d.secret, code)));
      const ok = rs.filter((x) => x.access_token);
      assert.strictEqual(ok.length, 1, JSON.stringify(rs.filter((x) => !x.access_token && x.errcode !== 40163)));
      assert.ok(rs.every((x) => x.access_token || x.errcode === 40163));
    }
  });
});

test('Redis stopped: -1 quickly, 503 pages and /healthz; back by itself; redeemed codes stay redeemed', { skip }, async () => {
  await onRedis(async ({ r, d, ps: [a] }) => {
    const [used, fresh] = await h.issueCodes(a.base, d.appid, d.users[0], 'snsapi_base', 2);
    const tok = await h.exchange(a.base, d.appid, d.secret, used);
    assert.ok(tok.access_token);
    await r.kill();
    const t0 = Date.now();
    const down = await h.exchange(a.base, d.appid, d.secret, fresh);
    assert.strictEqual(down.errcode, -1);
    assert.match(down.errmsg, /^system error, rid: /);
    const auth = (await h.getJson(`${a.base}/sns/auth?access_token=${tok.access_token}&openid=${tok.openid}`)).body;
    assert.strictEqual(auth.errcode, -1);
    assert.strictEqual((await fetch(`${a.base}/healthz`)).status, 503);
    const cookie = await h.login(a.base, d.users[0]).catch(() => null);
    const pg = await h.page(h.authorizeUrl(a.base, { appid: d.appid, redirect_uri: 'http://localhost:9000/cb',
      response_type: 'code', scope: 'snsapi_base', state: 'x' }), cookie);
    assert.strictEqual(pg.status, 503);
    assert.ok(Date.now() - t0 < 5000, `answers while Redis is down took ${Date.now() - t0} ms`);

    await r.restart();
    await h.waitFor(async () => (await fetch(`${a.base}/healthz`)).status === 200, 5000,
      'the provider back by itself');
    assert.strictEqual((await h.exchange(a.base, d.appid, d.secret, used)).errcode, 40163,
      'redeemed before the restart, still refused after it');
    const t3 = await h.exchange(a.base, d.appid, d.secret, fresh);
    assert.ok(t3.access_token, JSON.stringify(t3));
  });
});

test('two gates on one Redis: a login through A is valid at B; sign-out at A ends it at B; one exchange for a double callback', { skip }, async () => {
  const r = await startRedis();
  const port = await freePort();
  const site = `http://localhost:${port}`;
  const d = h.makeDb({ db: r.url, domains: [`localhost:${port}`] });
  const p = await h.startOnStore(r.url);
  const secret = 'c'.repeat(64);
  const gate = (listen) => startGate(['--listen', listen, '--public-url', site, '--open-base', p.base,
    '--api-base', p.base, '--desktop', 'pass', '--cookie-secret', secret, '--store', r.url],
  { WXAUTH_APPID: d.appid, WXAUTH_SECRET: d.secret });
  const ga = await gate(`127.0.0.1:${port}`);
  const gb = await gate('127.0.0.1:0');
  try {
    const b = new Browser();
    await signIn(b, p, d.users[0]);
    const start = await b.go(`${site}/wxauth/start?rd=%2Fhome`);
    const cb = (await b.go(start.location)).location;
    const onB = cb.replace(site, gb.base);
    const before = await h.providerRequests(p.base, 'sns/oauth2/access_token', 0);
    // WeChat calls the callback twice: once at each gate behind the load balancer.
    const [ra, rb] = await Promise.all([b.go(cb), fetch(onB.replace('localhost', '127.0.0.1'), { redirect: 'manual', headers: { Cookie: b.cookie(site) } })]);
    assert.strictEqual(ra.status, 303);
    assert.strictEqual(rb.status, 303);
    assert.strictEqual(ra.headers.get('set-cookie'), rb.headers.get('set-cookie'), 'the same session from both gates');
    assert.strictEqual(await h.providerRequests(p.base, 'sns/oauth2/access_token', 0) - before, 1, 'one exchange');
    assert.strictEqual(await h.providerRequests(p.base, 'sns/oauth2/access_token', 40163), 0);
    const cookie = b.cookie(site);
    const authAt = (g) => fetch(`${g.base.replace('localhost', '127.0.0.1')}/wxauth/auth`, { headers: { Cookie: cookie } });
    assert.strictEqual((await authAt(ga)).status, 202);
    assert.strictEqual((await authAt(gb)).status, 202, 'the session is valid at gate B');
    assert.strictEqual((await b.go(`${site}/wxauth/sign_out`)).status, 200);
    assert.strictEqual((await authAt(gb)).status, 401, 'signed out at A, ended at B');
    // Redis down: the gate fails closed (503, never a session it cannot check) and says so.
    await r.kill();
    assert.strictEqual((await fetch(`${gb.base}/healthz`)).status, 503);
    assert.strictEqual((await authAt(gb)).status, 503);
    await r.restart();
    await h.waitFor(async () => (await fetch(`${gb.base}/healthz`)).status === 200, 5000,
      'the gate back by itself');
    assert.strictEqual((await authAt(gb)).status, 401, 'and the sign-out survived the restart');
  } finally {
    await ga.stop();
    await gb.stop();
    await p.stop();
    await r.cleanup();
  }
});

// Redis's count of each command (those that scripts run included), from INFO commandstats.
function commandCalls(port) {
  const out = execFileSync('redis-cli', ['-p', String(port), 'info', 'commandstats'], { encoding: 'utf8' });
  const calls = {};
  for (const m of out.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) calls[m[1]] = Number(m[2]);
  return (name) => calls[name] || 0;
}

test('64 exchanges at once read their app once per cache refresh and its appid index once', { skip }, async () => {
  await onRedis(async ({ r, d, ps: [p] }) => {
    const codes = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_base', 641);
    assert.ok((await h.exchange(p.base, d.appid, d.secret, codes.pop())).access_token);
    const before = commandCalls(r.port);
    const t0 = Date.now();
    while (codes.length) {
      const res = await Promise.all(codes.splice(0, 64).map((c) => h.exchange(p.base, d.appid, d.secret, c)));
      res.forEach((x) => assert.ok(x.access_token, JSON.stringify(x)));
    }
    const ms = Date.now() - t0, after = commandCalls(r.port);
    const delta = (name) => after(name) - before(name);
    // commandstats counts the commands scripts call too: each exchange is one redeem script,
    // whose one GET reads the code. Any other GET is of the appid index: a stale copy of the app
    // is the hint of its appid's id (store_redis.h), so it is read once, not by every request
    // in flight at each refresh of the copy (every 10 ms: 661 GETs and HMGETs here before).
    // Each HMGET reads the app: once per refresh, and at most one more by a request that began
    // to wait before a renewal; not once by each request in flight (~0.45 per exchange).
    assert.strictEqual(delta('evalsha'), 640);
    const index = delta('get') - delta('evalsha');
    const appReads = delta('hmget');
    const bound = Math.min(2 * (Math.ceil(ms / 10) + 1), 64);
    console.log(`640 exchanges in ${ms} ms, 64 at a time: ${index} GETs of the appid index, ${appReads} reads of the app (bound ${bound})`);
    assert.ok(index >= 0 && index <= 1, `${index} GETs of the appid index`);
    assert.ok(appReads <= bound, `${appReads} reads of the app in ${ms} ms`);
  }, { nodes: 1 });
});

test('the per-minute quota is shared by the nodes (within 16 calls per node)', { skip }, async () => {
  const r = await startRedis();
  const d = h.makeDb({ db: r.url });
  const ps = [];
  try {
    for (let i = 0; i < 2; i++) ps.push(await h.startOnStore(r.url, ['--rate-limit', '40']));
    // All 60 calls inside one minute: move both nodes' test clocks together past a boundary.
    const { now } = await h.clock(ps[0].base);
    if (now % 60 > 40) for (const p of ps) await h.clock(p.base, 60 - (now % 60));
    const q = new URLSearchParams({ grant_type: 'client_credential', appid: d.appid, secret: d.secret });
    const rs = [];
    for (let i = 0; i < 60; i++) rs.push((await h.getJson(`${ps[i % 2].base}/cgi-bin/token?${q}`)).body);
    const ok = rs.filter((x) => x.access_token).length;
    const over = rs.filter((x) => x.errcode === 45011).length;
    assert.strictEqual(ok + over, 60, JSON.stringify(rs.find((x) => !x.access_token && x.errcode !== 45011)));
    assert.ok(over > 0, 'alone each node would have allowed its 30 calls');
    assert.ok(ok <= 40 + 2 * 16, `${ok} calls allowed`);
  } finally {
    for (const p of ps) await p.stop();
    await r.cleanup();
  }
});

// A request whose client hangs up while its handler is parked on Redis still runs to its end (an
// orphan, lib/http.c): the fiber that was reading the app for the others lets them go. Before,
// it was never continued, every later request for that app waited on its read forever, and a
// `make bench` run saw the provider stop answering after wrk closed its connections mid-flight.
test('clients that hang up while parked on Redis leave nothing stuck: the next exchange answers', { skip }, async () => {
  const net = require('node:net');
  await onRedis(async ({ r, d, ps: [p] }) => {
    const codes = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_base', 41);
    assert.ok((await h.exchange(p.base, d.appid, d.secret, codes.pop())).access_token);
    const { port } = new URL(p.base);
    for (let round = 0; round < 3; round++) {
      await new Promise((res) => setTimeout(res, 20)); // the app's copy is stale (10 ms)
      r.pause(); // each request parks: the first on the app's read, the others waiting for it
      const socks = codes.splice(0, 10).map((code) => {
        const s = net.connect(Number(port), '127.0.0.1');
        s.on('error', () => {});
        const q = new URLSearchParams({ appid: d.appid, secret: d.secret, code, grant_type: 'authorization_code' });
        s.write(`GET /sns/oauth2/access_token?${q} HTTP/1.1\r\nHost: x\r\n\r\n`);
        return s;
      });
      await new Promise((res) => setTimeout(res, 100));
      for (const s of socks) s.destroy(); // hang up while parked
      await new Promise((res) => setTimeout(res, 50));
      r.resume();
      const t0 = Date.now();
      const ctl = AbortSignal.timeout(5000);
      const q = new URLSearchParams({ appid: d.appid, secret: d.secret, code: codes.pop(), grant_type: 'authorization_code' });
      const res = await fetch(`${p.base}/sns/oauth2/access_token?${q}`, { signal: ctl })
        .catch((e) => { throw new Error(`round ${round}: ${e.cause || e}; provider exit ${p.child.exitCode} ${p.child.signalCode}; log: ${p.logs().slice(-3000)}`); });
      const body = await res.json();
      assert.ok(body.access_token, `round ${round}: ${JSON.stringify(body)}`);
      console.log(`round ${round}: the next exchange answered in ${Date.now() - t0} ms`);
    }
    // the orphans ended: the provider's fibers are all back (its /metrics keeps answering too)
    const m = await fetch(`${p.base}/metrics`);
    assert.strictEqual(m.status, 200);
  }, { nodes: 1 });
});
