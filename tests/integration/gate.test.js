// gate.test.js — `wxauth gate` (first slice, without nginx) against the provider: the auth
// subrequest, start, callback (allow, deny, replayed callback), per-route needs, sign-out.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const h = require('./harness');
const { setup, signIn, login } = require('./gatekit');

const { Browser } = h;

test('auth subrequest: 401 without a session, 202 with the identity after a login', async () => {
  await setup(async ({ d, p, site }) => {
    const b = new Browser();
    assert.strictEqual((await b.go(`${site}/wxauth/auth`)).status, 401);
    await signIn(b, p, d.users[0]);
    const { url, res } = await login(b, p, site, { scope: 'snsapi_userinfo' });
    assert.strictEqual(res.status, 303);
    assert.strictEqual(res.location, '/orders/7', 'back where the user started, without the code');
    const auth = await b.go(`${site}/wxauth/auth`);
    assert.strictEqual(auth.status, 202);
    assert.match(auth.headers.get('x-wechat-openid'), /^o[A-Za-z0-9_-]{27}$/);
    assert.match(auth.headers.get('x-wechat-unionid'), /^o/);
    assert.strictEqual(auth.headers.get('x-wechat-scope'), 'snsapi_userinfo');
    assert.strictEqual(decodeURIComponent(auth.headers.get('x-wechat-nickname')), '小明😀');
    assert.match(auth.headers.get('x-wechat-avatar'), /^http/);
    const me = JSON.parse((await b.go(`${site}/wxauth/userinfo`)).body);
    assert.strictEqual(me.openid, auth.headers.get('x-wechat-openid'));
    // Refresh / Back / WeChat's double callback: the same session, no second exchange.
    const again = await b.go(url);
    assert.strictEqual(again.status, 303);
    assert.strictEqual(again.location, '/orders/7');
    assert.doesNotMatch(p.logs(), /errcode=40163/);
    // Per-route needs from nginx: allow-lists by openid.
    const other = await b.go(`${site}/wxauth/auth`, { headers: { 'X-WxAuth-Allow-OpenIDs': 'oSomebodyElse' } });
    assert.strictEqual(other.status, 403);
    const listed = await b.go(`${site}/wxauth/auth`, { headers: { 'X-WxAuth-Allow-OpenIDs': `x, ${me.openid}` } });
    assert.strictEqual(listed.status, 202);
    // Sign-out ends it for real: the old cookie is refused even if replayed.
    const stolen = b.cookie(site);
    const out = await b.go(`${site}/wxauth/sign_out`);
    assert.strictEqual(out.status, 200);
    assert.match(out.body, /你已退出/);
    assert.strictEqual((await b.go(`${site}/wxauth/auth`)).status, 401);
    const replay = await fetch(`${site.replace('localhost', '127.0.0.1')}/wxauth/auth`, { headers: { Cookie: stolen } });
    assert.strictEqual(replay.status, 401);
  });
});

test('snsapi_base session does not satisfy a route that needs snsapi_userinfo', async () => {
  await setup(async ({ d, p, site }) => {
    const b = new Browser();
    await signIn(b, p, d.users[0]);
    await login(b, p, site);
    assert.strictEqual((await b.go(`${site}/wxauth/auth`)).status, 202);
    const need = await b.go(`${site}/wxauth/auth`, { headers: { 'X-WxAuth-Require-Scope': 'snsapi_userinfo' } });
    assert.strictEqual(need.status, 401);
  });
});

test('deny: a page to try again or continue with snsapi_base; bad states: 403, no token call', async () => {
  await setup(async ({ d, p, site }) => {
    const b = new Browser();
    await signIn(b, p, d.users[0]);
    const { res } = await login(b, p, site, { scope: 'snsapi_userinfo', action: 'deny' });
    assert.strictEqual(res.status, 200);
    assert.match(res.body, /你拒绝了授权/);
    assert.match(res.body, /start\?scope=snsapi_base&amp;rd=%2Forders%2F7/);
    for (const q of ['code=abc', 'code=abc&state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'state=a&state=b']) {
      const r = await b.go(`${site}/wxauth/callback?${q}`);
      assert.strictEqual(r.status, 403, q);
    }
    assert.doesNotMatch(p.logs(), /path="\/sns\/oauth2\/access_token"/);
  });
});

test('rd never leaves the site', async () => {
  await setup(async ({ d, p, site }) => {
    const b = new Browser();
    await signIn(b, p, d.users[0]);
    for (const rd of ['//evil.example', 'https://evil.example/', '/\\evil.example', '/ok\t/evil']) {
      const { res } = await login(b, p, site, { rd });
      assert.strictEqual(res.status, 303);
      assert.strictEqual(res.location, '/', rd);
    }
  });
});

test('outside WeChat (desktop): a QR code of the page to open in WeChat', async () => {
  await setup(async ({ site }) => {
    const b = new Browser();
    const desk = await b.go(`${site}/wxauth/start?rd=/orders/7`, { headers: { 'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/156' } });
    assert.strictEqual(desk.status, 200);
    assert.match(desk.body, /请用微信扫码打开/);
    assert.match(desk.body, /<img width="240" height="240" alt="QR" src="data:image\/svg\+xml,%3Csvg/);
    assert.match(desk.body, new RegExp(`${site.replace(/[.]/g, '\\.')}/orders/7`));
    const inWeChat = await b.go(`${site}/wxauth/start?rd=/orders/7`, { headers: { 'User-Agent': 'Mozilla/5.0 (Linux; Android 14) MicroMessenger/8.0.50' } });
    assert.strictEqual(inWeChat.status, 302);
  }, ['--desktop', 'qr']);
});
