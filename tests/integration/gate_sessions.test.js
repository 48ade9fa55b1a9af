// gate_sessions.test.js — the gate's sessions: idle and absolute lifetimes, renewal on the auth
// subrequest, key rotation, sign-out that survives a restart (the store), WeChat's double
// callback racing on two requests, the single profile refresher, and X-Forwarded-* trusted
// only from configured proxies.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./harness');
const { setup, startGate, signIn, login } = require('./gatekit');

const { Browser, freePort, sleep } = h;

const KEY_A = 'a'.repeat(64);
const KEY_B = 'b'.repeat(64);

function tmpDb() {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wxauth-gate-')), 'gate.db');
}

// A gate of its own on a fixed port (so cookies and redirect_uri stay valid across restarts).
async function gateOn(port, d, p, extra) {
  return startGate(['--listen', `127.0.0.1:${port}`, '--public-url', `http://localhost:${port}`,
    '--open-base', p.base, '--api-base', p.base, '--desktop', 'pass', ...extra],
  { WXAUTH_APPID: d.appid, WXAUTH_SECRET: d.secret });
}

const providerMetric = (p, route, errcode = 0) => h.providerRequests(p.base, route, errcode);

test('idle lifetime: an unused session ends; each use renews it through the 202', async () => {
  await setup(async ({ d, p, site }) => {
    const b = new Browser();
    await signIn(b, p, d.users[0]);
    await login(b, p, site);
    const first = b.cookie(site);
    assert.strictEqual((await b.go(`${site}/wxauth/auth`)).status, 202);
    await sleep(1200); // past a quarter of the idle time: the next use renews the cookie
    const renewed = await b.go(`${site}/wxauth/auth`);
    assert.strictEqual(renewed.status, 202);
    assert.match(renewed.headers.get('set-cookie') || '', /^_wxauth=[^;]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+$/);
    assert.notStrictEqual(b.cookie(site), first);
    await sleep(2300); // 3.5 s after login: the first cookie idled out, the renewed one did not
    const stale = await fetch(`${site.replace('localhost', '127.0.0.1')}/wxauth/auth`, { headers: { Cookie: first } });
    assert.strictEqual(stale.status, 401);
    assert.strictEqual((await b.go(`${site}/wxauth/auth`)).status, 202);
    await sleep(3200); // unused for longer than the idle time
    assert.strictEqual((await b.go(`${site}/wxauth/auth`)).status, 401);
  }, ['--session-idle', '3']);
});

test('a session within its idle time gets no new cookie on every request', async () => {
  await setup(async ({ d, p, site }) => {
    const b = new Browser();
    await signIn(b, p, d.users[0]);
    await login(b, p, site);
    const r = await b.go(`${site}/wxauth/auth`);
    assert.strictEqual(r.status, 202);
    assert.strictEqual(r.headers.get('set-cookie'), null);
  });
});

test('key rotation: "NEW,OLD" opens old sessions and re-seals them; without OLD they end', async () => {
  const port = await freePort();
  const d = h.makeDb({ domains: [`localhost:${port}`] });
  const p = await h.startProvider(d.db);
  const site = `http://localhost:${port}`;
  try {
    let g = await gateOn(port, d, p, ['--cookie-secret', KEY_A]);
    const b = new Browser();
    await signIn(b, p, d.users[0]);
    await login(b, p, site);
    const old = b.cookie(site);
    await g.stop();

    g = await gateOn(port, d, p, ['--cookie-secret', `${KEY_B},${KEY_A}`]);
    const r = await b.go(`${site}/wxauth/auth`);
    assert.strictEqual(r.status, 202, 'a session sealed with the old key still opens');
    assert.ok(r.headers.get('set-cookie'), 're-sealed with the new key on first use');
    const resealed = b.cookie(site);
    assert.notStrictEqual(resealed, old);
    assert.strictEqual((await b.go(`${site}/wxauth/auth`)).headers.get('set-cookie'), null);
    await g.stop();

    g = await gateOn(port, d, p, ['--cookie-secret', KEY_B]);
    const plain = (cookie) => fetch(`http://127.0.0.1:${port}/wxauth/auth`, { headers: { Cookie: cookie } });
    assert.strictEqual((await plain(old)).status, 401, 'the retired key opens nothing');
    assert.strictEqual((await plain(resealed)).status, 202);
    await g.stop();
  } finally {
    await p.stop();
  }
});

test('cookie-secret: bad lists are refused at start', async () => {
  for (const bad of ['abc', `${KEY_A},`, `${KEY_A},xyz`, [KEY_A, KEY_B, KEY_A, KEY_B, KEY_A].join(',')]) {
    const r = h.cliRun(['gate', '--public-url', 'http://localhost:1', '--appid', 'wx0000000000000000',
      '--secret', 's', '--cookie-secret', bad, '--listen', '127.0.0.1:0']);
    assert.strictEqual(r.status, 2, bad);
    assert.match(r.stderr, /cookie-secret: 64 hex digits/);
  }
});

test('sign-out is kept in the store: the old cookie stays dead after a restart', async () => {
  const port = await freePort();
  const d = h.makeDb({ domains: [`localhost:${port}`] });
  const p = await h.startProvider(d.db);
  const db = tmpDb();
  const site = `http://localhost:${port}`;
  try {
    let g = await gateOn(port, d, p, ['--cookie-secret', KEY_A, '--db', db]);
    const b = new Browser();
    await signIn(b, p, d.users[0]);
    await login(b, p, site);
    const cookie = b.cookie(site);
    const plain = () => fetch(`http://127.0.0.1:${port}/wxauth/auth`, { headers: { Cookie: cookie } });
    assert.strictEqual((await plain()).status, 202);
    assert.strictEqual((await b.go(`${site}/wxauth/sign_out`)).status, 200);
    assert.strictEqual((await plain()).status, 401, 'a copy of the cookie is dead too');
    await g.stop();
    g = await gateOn(port, d, p, ['--cookie-secret', KEY_A, '--db', db]);
    assert.strictEqual((await plain()).status, 401, 'still dead after the restart');
    await g.stop();
  } finally {
    await p.stop();
  }
});

test("WeChat's double callback: two concurrent requests with one code, one exchange, one session", async () => {
  await setup(async ({ d, p, site }) => {
    const b = new Browser();
    await signIn(b, p, d.users[0]);
    const start = await b.go(`${site}/wxauth/start?rd=%2Fcart`);
    const auth = await b.go(start.location);
    assert.strictEqual(auth.status, 302);
    const cb = auth.location;
    const before = await providerMetric(p, 'sns/oauth2/access_token');
    const [r1, r2, r3] = await Promise.all([b.go(cb), b.go(cb), b.go(cb)]);
    for (const r of [r1, r2, r3]) {
      assert.strictEqual(r.status, 303);
      assert.strictEqual(r.location, '/cart');
    }
    assert.strictEqual(r1.headers.get('set-cookie'), r2.headers.get('set-cookie'));
    assert.strictEqual(r1.headers.get('set-cookie'), r3.headers.get('set-cookie'));
    assert.strictEqual(await providerMetric(p, 'sns/oauth2/access_token') - before, 1, 'exactly one exchange');
    assert.strictEqual(await providerMetric(p, 'sns/oauth2/access_token', 40163), 0, 'never a 40163');
    // A reload later still lands on the page with the same session.
    const again = await b.go(cb);
    assert.strictEqual(again.status, 303);
    assert.strictEqual(again.headers.get('set-cookie'), r1.headers.get('set-cookie'));
  });
});

test('a code whose exchange failed: the replay shows the same error page, no second call', async () => {
  await setup(async ({ d, p, site }) => {
    const b = new Browser();
    await signIn(b, p, d.users[0]);
    const start = await b.go(`${site}/wxauth/start?rd=%2F`);
    const auth = await b.go(start.location);
    await h.admin(p.base, 'POST', '/admin/faults', { endpoint: 'sns/oauth2/access_token', errcode: 45011, count: 1 });
    const r1 = await b.go(auth.location);
    assert.strictEqual(r1.status, 502);
    const calls = await providerMetric(p, 'sns/oauth2/access_token', 45011);
    const r2 = await b.go(auth.location);
    assert.strictEqual(r2.status, 502);
    assert.match(r2.body, /重新授权/);
    assert.strictEqual(await providerMetric(p, 'sns/oauth2/access_token', 45011), calls);
    assert.strictEqual(await providerMetric(p, 'sns/oauth2/access_token', 0), 0);
  });
});

test('profile re-read: one refresher at a time, the others keep the profile they have', async () => {
  await setup(async ({ d, p, site }) => {
    const b = new Browser();
    await signIn(b, p, d.users[0]);
    await login(b, p, site, { scope: 'snsapi_userinfo' });
    assert.strictEqual((await b.go(`${site}/wxauth/auth`)).status, 202);
    assert.strictEqual(await providerMetric(p, 'sns/oauth2/refresh_token'), 0);
    await sleep(2100); // the profile is now older than --profile-ttl
    const rs = await Promise.all(Array.from({ length: 8 }, () => b.go(`${site}/wxauth/auth`)));
    for (const r of rs) {
      assert.strictEqual(r.status, 202);
      assert.strictEqual(decodeURIComponent(r.headers.get('x-wechat-nickname')), '小明😀');
    }
    assert.strictEqual(await providerMetric(p, 'sns/oauth2/refresh_token'), 1, 'one refresh for eight requests');
    assert.strictEqual(await providerMetric(p, 'sns/userinfo'), 2, 'the login and the one re-read');
    assert.strictEqual(rs.filter((r) => r.headers.get('set-cookie')).length, 1, 'the refresher renews the cookie');
  }, ['--profile-ttl', '2']);
});

test('X-Forwarded-Host/Proto count only from trusted proxies, and only for allowed hosts', async () => {
  const start = async (site, headers) => {
    const r = await fetch(`${site.replace('localhost', '127.0.0.1')}/wxauth/start?rd=%2F`, { redirect: 'manual', headers });
    assert.strictEqual(r.status, 302);
    return decodeURIComponent(new URL(r.headers.get('location').replace('#wechat_redirect', '')).searchParams.get('redirect_uri'));
  };
  await setup(async ({ site }) => {
    const port = new URL(site).port;
    assert.strictEqual(await start(site, { 'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Proto': 'https' }),
      `http://localhost:${port}/wxauth/callback`, 'an untrusted peer cannot choose the redirect_uri');
  });
  await setup(async ({ site }) => {
    const port = new URL(site).port;
    assert.strictEqual(await start(site, { 'X-Forwarded-Host': 'm.example.com', 'X-Forwarded-Proto': 'https' }),
      'https://m.example.com/wxauth/callback');
    assert.strictEqual(await start(site, { 'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Proto': 'https' }),
      `http://localhost:${port}/wxauth/callback`, 'a host that is not allowed falls back to public-url');
    assert.strictEqual(await start(site, { 'X-Forwarded-Host': 'm.example.com', 'X-Forwarded-Proto': 'gopher' }),
      'http://m.example.com/wxauth/callback', 'an odd proto falls back to public-url\'s');
    assert.strictEqual(await start(site, {}), `http://localhost:${port}/wxauth/callback`);
  }, ['--trusted-proxies', '10.0.0.1, 127.0.0.1', '--allowed-hosts', 'm.example.com']);
});

test('trusted-proxies: a value that is not an IPv4 address is refused at start', async () => {
  const r = h.cliRun(['gate', '--public-url', 'http://localhost:1', '--appid', 'wx0000000000000000',
    '--secret', 's', '--trusted-proxies', '127.0.0.1,not-an-ip', '--listen', '127.0.0.1:0']);
  assert.strictEqual(r.status, 2);
  assert.match(r.stderr, /trusted-proxies: .*'not-an-ip'/);
});

test('WeChat calls the callback twice with two different codes: one exchange, one session', async () => {
  await setup(async ({ d, p, site }) => {
    const b = new Browser();
    await signIn(b, p, d.users[0]);
    await h.admin(p.base, 'POST', '/admin/faults', { endpoint: 'authorize', double_redirect: true });
    const start = await b.go(`${site}/wxauth/start?rd=%2Fcart`);
    const auth = await b.go(start.location); // the first code goes to the gate from another request
    assert.strictEqual(auth.status, 302);
    const cb = await b.go(auth.location); // the browser brings the second code, same state
    assert.strictEqual(cb.status, 303);
    assert.strictEqual(cb.location, '/cart');
    await sleep(500); // let the other request finish, whichever came first
    assert.strictEqual(await providerMetric(p, 'sns/oauth2/access_token'), 1, 'one exchange for the two codes');
    assert.strictEqual((await b.go(`${site}/wxauth/auth`)).status, 202);
  });
});
