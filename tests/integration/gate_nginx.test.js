// gate_nginx.test.js — the real nginx (Debian's /usr/sbin/nginx) with the shipped
// examples/nginx/wxauth-site.conf, the gate, the provider and a tiny upstream app, all on
// loopback: the app sees the user's openid and never a client's own X-WeChat-* headers or the
// gate's cookies; a request without a session is sent to log in and comes back to its URL.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const h = require('./harness');

const { Browser, freePort } = h;

const { startStack: startAll, NGINX } = require('./stack');
const { startRedis, REDIS } = require('./redis');

test('nginx + gate + provider + app', { skip: h.needs(NGINX) }, async () => {
  const { d, p, site, stop } = await startAll();
  try {
    const b = new Browser();
    // No session: nginx sends the browser to log in, keeping the original URL (query and all).
    const first = await b.go(`${site}/orders?id=7&tab=all`, { headers: { 'X-WeChat-OpenID': 'victim' } });
    assert.strictEqual(first.status, 302);
    assert.strictEqual(first.location, '/wxauth/start?scope=snsapi_base&rd=/orders?id=7&tab=all');
    const start = await b.go(site + first.location);
    assert.strictEqual(start.status, 302);
    assert.ok(start.location.startsWith(`${p.base}/connect/oauth2/authorize?`));
    await b.post(`${p.base}/sandbox/login`, { user: d.users[0] });
    const cb = await b.go(start.location);
    assert.strictEqual(cb.status, 302);
    const done = await b.go(cb.location);
    assert.strictEqual(done.status, 303);
    assert.strictEqual(done.location, '/orders?id=7&tab=all');
    // The app sees the user's openid — not the one the client tried to send — and no gate cookie.
    const page = await b.go(site + done.location, { headers: { 'X-WeChat-OpenID': 'victim', 'X-WeChat-Scope': 'forged', 'X-WeChat-AppID': 'forged' } });
    assert.strictEqual(page.status, 200);
    const seen = JSON.parse(page.body);
    assert.strictEqual(seen.url, '/orders?id=7&tab=all');
    assert.match(seen.headers['x-wechat-openid'], /^o[A-Za-z0-9_-]{27}$/);
    assert.notStrictEqual(seen.headers['x-wechat-openid'], 'victim');
    assert.strictEqual(seen.headers['x-wechat-scope'], 'snsapi_base');
    assert.strictEqual(seen.headers['x-wechat-appid'], d.appid);
    assert.doesNotMatch(seen.headers.cookie || '', /_wxauth/);
    // Sign out: the next request asks to log in again.
    await b.go(`${site}/wxauth/sign_out`);
    assert.strictEqual((await b.go(`${site}/orders`)).status, 302);
  } finally {
    await stop();
  }
});

test('through nginx: the renewed session cookie on the 202 reaches the browser', { skip: h.needs(NGINX) }, async () => {
  const { d, p, site, stop } = await startAll({ gateArgs: ['--session-idle', '4'] });
  try {
    const b = new Browser();
    await b.post(`${p.base}/sandbox/login`, { user: d.users[0] });
    const start = await b.go(`${site}/wxauth/start?rd=%2Fhome`);
    const cb = await b.go(start.location);
    assert.strictEqual((await b.go(cb.location)).status, 303);
    const quiet = await b.go(`${site}/home`);
    assert.strictEqual(quiet.status, 200);
    assert.strictEqual(quiet.headers.get('set-cookie'), null, 'no cookie while the session is fresh');
    const first = b.cookie(site);
    await h.sleep(1100); // past a quarter of the idle time
    const page = await b.go(`${site}/home`);
    assert.strictEqual(page.status, 200);
    assert.match(page.headers.get('set-cookie') || '', /^_wxauth=[^;]+; Path=\/; HttpOnly/);
    assert.notStrictEqual(b.cookie(site), first);
    assert.doesNotMatch(JSON.parse(page.body).headers.cookie || '', /_wxauth/, 'the app still never sees it');
    await h.sleep(3100); // the first cookie has idled out; the renewed one has not
    assert.strictEqual((await b.go(`${site}/home`)).status, 200);
  } finally {
    await stop();
  }
});

test('two providers and two gates on one Redis behind nginx upstreams', { skip: h.needs(NGINX, REDIS) }, async () => {
  const r = await startRedis();
  const s = await startAll({ nodes: 2, redis: r.url });
  try {
    const b = new Browser();
    // "WeChat" is nginx in front of both providers: the sandbox sign-in works on either.
    const login = await b.post(`${s.wechat}/sandbox/login`, { user: s.d.users[0] });
    assert.strictEqual(login.status, 303);
    const first = await b.go(`${s.site}/home`);
    assert.strictEqual(first.status, 302);
    const start = await b.go(s.site + first.location);
    assert.ok(start.location.startsWith(`${s.wechat}/connect/oauth2/authorize?`));
    const cb = await b.go(start.location);
    assert.strictEqual(cb.status, 302, 'authorize on one provider node');
    const done = await b.go(cb.location);
    assert.strictEqual(done.status, 303, 'the code redeemed through the other');
    // Consecutive requests alternate gates: every one of them knows the session.
    for (let i = 0; i < 6; i++) {
      const page = await b.go(`${s.site}/home`);
      assert.strictEqual(page.status, 200);
      assert.match(JSON.parse(page.body).headers['x-wechat-openid'], /^o[A-Za-z0-9_-]{27}$/);
    }
    // Both provider nodes took part (authorize, exchange, sign-in spread over them).
    for (const p of s.ps) {
      const served = await h.providerRequests(p.base, /^(authorize|sns\/oauth2\/access_token|sandbox)$/);
      assert.ok(served > 0, `provider ${p.base} served none of the flow`);
    }
    const cookie = b.cookie(s.site);
    for (const g of s.gates) assert.strictEqual((await fetch(`${g}/wxauth/auth`, { headers: { Cookie: cookie } })).status, 202);
    await b.go(`${s.site}/wxauth/sign_out`);
    for (const g of s.gates) assert.strictEqual((await fetch(`${g}/wxauth/auth`, { headers: { Cookie: cookie } })).status, 401);
    assert.strictEqual((await b.go(`${s.site}/home`)).status, 302);
  } finally {
    await s.stop();
    await r.cleanup();
  }
});
