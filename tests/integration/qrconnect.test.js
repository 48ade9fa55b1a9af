// qrconnect.test.js — a website app's QR login (scope snsapi_login) at the provider, and the
// gate using it for desktop browsers when --web-appid is configured.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const h = require('./harness');
const { startGate, signIn } = require('./gatekit');

const { Browser, freePort } = h;

function qrUrl(base, appid, extra = {}) {
  const q = new URLSearchParams({ appid, redirect_uri: 'http://localhost:9000/cb?from=web',
    response_type: 'code', scope: 'snsapi_login', state: 'S1', ...extra });
  return `${base}/connect/qrconnect?${q}#wechat_redirect`;
}

test('qrconnect: QR page, scan, 确认登录 → code; the code redeems to snsapi_login with unionid', async () => {
  const d = h.makeDb({ openAccount: 'acme' });
  const web = h.addApp(d.db, { name: '官网', website: true, openAccount: 'acme' });
  const p = await h.startProvider(d.db);
  try {
    const b = new Browser();
    const page = await b.go(qrUrl(p.base, web.appid));
    assert.strictEqual(page.status, 200);
    assert.match(page.body, /<img width="220" height="220" alt="QR" src="data:image\/svg\+xml,/);
    assert.match(page.body, /请使用微信扫描二维码登录「官网」/);
    const scan = h.htmlUnescape(page.body.match(/<a href="([^"]+\/connect\/qrconnect\/scan\?[^"]+)"/)[1]);
    // Not signed in on the "phone": sign in first, then back to the scan.
    const first = await b.go(scan);
    assert.strictEqual(first.status, 303);
    assert.match(first.location, /^\/sandbox\/login\?next=/);
    await signIn(b, p, d.users[0]);
    const confirm = await b.go(scan);
    assert.strictEqual(confirm.status, 200);
    assert.match(confirm.body, /申请使用你的微信帐号登录该网站/);
    assert.match(confirm.body, />确认登录</);
    const f = h.parseForm(confirm.body);
    assert.strictEqual(f.action, '/connect/qrconnect/confirm');
    const r = await b.post(p.base + f.action, { ...f.fields, action: 'allow' });
    assert.strictEqual(r.status, 302);
    const back = new URL(r.location);
    assert.strictEqual(`${back.origin}${back.pathname}`, 'http://localhost:9000/cb');
    assert.strictEqual(back.searchParams.get('from'), 'web');
    assert.strictEqual(back.searchParams.get('state'), 'S1');
    const tok = await h.exchange(p.base, web.appid, web.secret, back.searchParams.get('code'));
    assert.strictEqual(tok.scope, 'snsapi_login');
    assert.match(tok.unionid, /^o/);
    const ui = (await h.getJson(`${p.base}/sns/userinfo?access_token=${tok.access_token}&openid=${tok.openid}`)).body;
    assert.strictEqual(ui.nickname, '小明😀');
    assert.strictEqual(ui.unionid, tok.unionid);
    // The same person through the Official Account: another openid, the same unionid.
    const [code] = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_userinfo');
    const oa = await h.exchange(p.base, d.appid, d.secret, code);
    assert.notStrictEqual(oa.openid, tok.openid);
    assert.strictEqual(oa.unionid, tok.unionid);
  } finally {
    await p.stop();
  }
});

test('qrconnect: 取消登录 → redirect_uri?state=S1 without a code', async () => {
  const d = h.makeDb();
  const web = h.addApp(d.db, { name: '官网', website: true });
  const p = await h.startProvider(d.db);
  try {
    const b = new Browser();
    await signIn(b, p, d.users[0]);
    const scan = qrUrl(p.base, web.appid).replace('/connect/qrconnect?', '/connect/qrconnect/scan?');
    const f = h.parseForm((await b.go(scan)).body);
    const r = await b.post(p.base + f.action, { ...f.fields, action: 'deny' });
    assert.strictEqual(r.status, 302);
    assert.strictEqual(r.location, 'http://localhost:9000/cb?from=web&state=S1');
  } finally {
    await p.stop();
  }
});

test('qrconnect errors: an Official Account appid or another scope → 10005; a website app at authorize → 10016', async () => {
  const d = h.makeDb();
  const web = h.addApp(d.db, { name: '官网', website: true });
  const p = await h.startProvider(d.db);
  try {
    const oa = await h.page(qrUrl(p.base, d.appid));
    assert.strictEqual(h.pageErrcode(oa.body), 10005);
    const scope = await h.page(qrUrl(p.base, web.appid, { scope: 'snsapi_userinfo' }));
    assert.strictEqual(h.pageErrcode(scope.body), 10005);
    const bad = await h.page(qrUrl(p.base, web.appid, { redirect_uri: 'http://evil.example/cb' }));
    assert.strictEqual(h.pageErrcode(bad.body), 10003);
    assert.strictEqual(bad.status, 400, 'no redirect on a bad redirect_uri');
    const at = await h.page(h.authorizeUrl(p.base, { appid: web.appid, redirect_uri: 'http://localhost:9000/cb', response_type: 'code', scope: 'snsapi_base' }));
    assert.strictEqual(h.pageErrcode(at.body), 10016);
    const login = await h.page(h.authorizeUrl(p.base, { appid: d.appid, redirect_uri: 'http://localhost:9000/cb', response_type: 'code', scope: 'snsapi_login' }));
    assert.strictEqual(h.pageErrcode(login.body), 10005, 'snsapi_login is not an Official Account scope');
  } finally {
    await p.stop();
  }
});

test('gate with --web-appid: desktop browsers log in by QR (qrconnect), WeChat browsers as before', async () => {
  const port = await freePort();
  const site = `http://localhost:${port}`;
  const d = h.makeDb({ domains: [`localhost:${port}`], openAccount: 'acme' });
  const web = h.addApp(d.db, { name: '官网', website: true, openAccount: 'acme', domains: [`localhost:${port}`] });
  const p = await h.startProvider(d.db);
  const g = await startGate(['--listen', `127.0.0.1:${port}`, '--public-url', site, '--open-base', p.base,
    '--api-base', p.base, '--web-appid', web.appid],
  { WXAUTH_APPID: d.appid, WXAUTH_SECRET: d.secret, WXAUTH_WEB_SECRET: web.secret });
  try {
    const desk = new Browser();
    const start = await desk.go(`${site}/wxauth/start?rd=%2Faccount`, { headers: { 'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/120' } });
    assert.strictEqual(start.status, 302);
    const loc = new URL(start.location.replace('#wechat_redirect', ''));
    assert.strictEqual(loc.pathname, '/connect/qrconnect');
    assert.strictEqual(loc.searchParams.get('appid'), web.appid);
    assert.strictEqual(loc.searchParams.get('scope'), 'snsapi_login');
    assert.strictEqual(loc.searchParams.get('redirect_uri'), `${site}/wxauth/callback?via=web`);
    // The "phone": the same browser signs in at the provider and confirms the scan.
    const qr = await desk.go(start.location);
    const scan = h.htmlUnescape(qr.body.match(/<a href="([^"]+\/connect\/qrconnect\/scan\?[^"]+)"/)[1]);
    await signIn(desk, p, d.users[0]);
    const f = h.parseForm((await desk.go(scan)).body);
    const r = await desk.post(p.base + f.action, { ...f.fields, action: 'allow' });
    assert.strictEqual(r.status, 302);
    const cb = await desk.go(r.location);
    assert.strictEqual(cb.status, 303);
    assert.strictEqual(cb.location, '/account');
    const auth = await desk.go(`${site}/wxauth/auth`, { headers: { 'X-WxAuth-Require-Scope': 'snsapi_userinfo' } });
    assert.strictEqual(auth.status, 202, 'a website login carries the profile');
    assert.strictEqual(auth.headers.get('x-wechat-scope'), 'snsapi_login');
    assert.strictEqual(auth.headers.get('x-wechat-appid'), web.appid);
    assert.strictEqual(decodeURIComponent(auth.headers.get('x-wechat-nickname')), '小明😀');
    const deskUnion = auth.headers.get('x-wechat-unionid');
    assert.match(deskUnion, /^o/);

    // Inside WeChat: the Official Account's authorize, another openid, the same unionid.
    const phone = new Browser();
    const ua = { 'User-Agent': 'Mozilla/5.0 (Linux; Android 14) MicroMessenger/8.0.50' };
    await signIn(phone, p, d.users[0]);
    const s2 = await phone.go(`${site}/wxauth/start?rd=%2Faccount&scope=snsapi_userinfo`, { headers: ua });
    assert.match(s2.location, /\/connect\/oauth2\/authorize\?appid=/);
    let a2 = await phone.go(s2.location, { headers: ua });
    if (a2.status === 200) {
      const f2 = h.parseForm(a2.body);
      a2 = await phone.post(p.base + f2.action, { ...f2.fields, action: 'allow' }, ua);
    }
    assert.strictEqual((await phone.go(a2.location, { headers: ua })).status, 303);
    const auth2 = await phone.go(`${site}/wxauth/auth`);
    assert.strictEqual(auth2.headers.get('x-wechat-appid'), d.appid);
    assert.strictEqual(auth2.headers.get('x-wechat-unionid'), deskUnion);
    assert.notStrictEqual(auth2.headers.get('x-wechat-openid'), auth.headers.get('x-wechat-openid'));
  } finally {
    await g.stop();
    await p.stop();
  }
});

test('gate: --web-appid without --web-secret is refused at start', async () => {
  const r = h.cliRun(['gate', '--public-url', 'http://localhost:1', '--appid', 'wx0000000000000000',
    '--secret', 's', '--web-appid', 'wx1111111111111111', '--listen', '127.0.0.1:0']);
  assert.strictEqual(r.status, 2);
  assert.match(r.stderr, /web-appid needs web-secret/);
});
