// consent.test.js — the authorization pages in a real browser (Debian's Chromium through
// playwright-core): sandbox sign-in, the snsapi_userinfo consent page (allow and deny), silent
// snsapi_base, the pages refusing to be framed, the flow without JavaScript, and screenshots of
// the pages at phone width for docs/screenshots/.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');
const h = require('../integration/harness');

const PHONE = { width: 390, height: 760 };
const SHOTS = path.join(__dirname, '../../docs/screenshots');
const CONSENT_SCOPE_TEXT = '获得你的公开信息（昵称、头像等）';

function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

// The relying party: /cb records each query string and answers a small page (whose inline
// script retitles it, so a test can tell whether JavaScript ran); /frame embeds `frameSrc`.
function startRp() {
  return new Promise((resolve, reject) => {
    const rp = { hits: [], frames: [] };
    const server = http.createServer((req, res) => {
      const u = new URL(req.url, 'http://localhost');
      if (u.pathname === '/cb') {
        rp.hits.push(u.search);
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end('<!DOCTYPE html><html><head><meta charset="utf-8"><title>rp-cb</title></head>' +
          '<body><h1>RP callback</h1><script>document.title = "rp-cb-js"</script></body></html>');
      } else if (u.pathname === '/frame') {
        const esc = (s) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end('<!DOCTYPE html><html><head><meta charset="utf-8"><title>rp-frame</title></head>' +
          '<body>' + rp.frames.map((s, i) =>
            `<iframe name="f${i}" width="380" height="300" src="${esc(s)}"></iframe>`).join('') +
          '</body></html>');
      } else {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('not found\n');
      }
    });
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      rp.port = server.address().port;
      rp.cb = `http://localhost:${rp.port}/cb`;
      rp.origin = `http://localhost:${rp.port}`;
      rp.close = () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); });
      resolve(rp);
    });
  });
}

// RP server, database (app domain localhost:<rp port>), provider and browser; `fn` gets them
// all and everything is torn down afterwards whatever happens.
async function withEnv(opts, fn) {
  const rp = await startRp();
  let p, browser;
  try {
    const more = typeof opts === 'function' ? opts(rp) : opts;
    const d = h.makeDb({ domains: [`localhost:${rp.port}`], ...more });
    p = await h.startProvider(d.db);
    browser = await launch();
    await fn({ rp, d, p, browser });
  } finally {
    if (browser) await browser.close();
    if (p) await p.stop();
    await rp.close();
  }
}

function authorizeUrl(p, d, redirectUri, scope, state = 'abc123') {
  const q = new URLSearchParams({
    appid: d.appid, redirect_uri: redirectUri, response_type: 'code', scope, state,
  });
  return `${p.base}/connect/oauth2/authorize?${q}#wechat_redirect`;
}

async function newPage(browser, extra = {}) {
  const ctx = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 1, ...extra });
  return { ctx, page: await ctx.newPage() };
}

// On the sandbox sign-in page: clicks 登录 in the row of the user with this nickname.
async function signIn(page, p, nickname) {
  assert.strictEqual(new URL(page.url()).origin, p.base);
  assert.strictEqual(new URL(page.url()).pathname, '/sandbox/login');
  await page.getByRole('heading', { name: '用微信测试用户登录' }).waitFor();
  const row = page.locator('ul.list li', { hasText: nickname });
  assert.strictEqual(await row.count(), 1, 'one sign-in row for ' + nickname);
  await Promise.all([page.waitForURL((u) => u.pathname !== '/sandbox/login'),
    row.getByRole('button', { name: '登录' }).click()]);
}

// Asserts the page is the consent page for the app and user.
async function assertConsent(page, p, d, nickname) {
  const u = new URL(page.url());
  assert.strictEqual(u.origin, p.base);
  assert.strictEqual(u.pathname, '/connect/oauth2/authorize');
  await page.getByRole('heading', { name: '申请获得以下权限' }).waitFor();
  const body = await page.locator('body').innerText();
  assert.ok(body.includes(d.app.name || '测试公众号'), 'app name on consent page: ' + body);
  assert.ok(body.includes(CONSENT_SCOPE_TEXT), 'scope text on consent page');
  assert.ok(body.includes(nickname), 'nickname on consent page');
  assert.strictEqual(await page.getByRole('button', { name: '允许', exact: true }).count(), 1);
  assert.strictEqual(await page.getByRole('button', { name: '拒绝', exact: true }).count(), 1);
}

async function clickAndLandOnRp(page, rp, name) {
  await Promise.all([
    page.waitForURL((u) => u.origin === rp.origin && u.pathname === '/cb'),
    page.getByRole('button', { name, exact: true }).click(),
  ]);
  return new URL(page.url());
}

test('snsapi_userinfo: sign in, consent page, 允许 delivers a code that exchanges for the user',
  { timeout: 60000 }, async () => {
    await withEnv({}, async ({ rp, d, p, browser }) => {
      const nickname = '小明😀';
      const { page } = await newPage(browser);
      await page.goto(authorizeUrl(p, d, rp.cb, 'snsapi_userinfo'));
      await signIn(page, p, nickname);
      await assertConsent(page, p, d, nickname);
      assert.strictEqual(rp.hits.length, 0, 'nothing reached the RP before consent');

      const cb = await clickAndLandOnRp(page, rp, '允许');
      const code = cb.searchParams.get('code');
      assert.match(code || '', /^[A-Za-z0-9]{38}$/);
      assert.strictEqual(cb.searchParams.get('state'), 'abc123');
      assert.deepStrictEqual([...cb.searchParams.keys()].sort(), ['code', 'state']);
      assert.deepStrictEqual(rp.hits, [cb.search], 'the RP saw exactly this callback once');
      assert.ok(await page.getByRole('heading', { name: 'RP callback' }).isVisible());
      assert.strictEqual(await page.title(), 'rp-cb-js', 'JavaScript on in a default context');

      const t = await h.exchange(p.base, d.appid, d.secret, code);
      assert.strictEqual(t.scope, 'snsapi_userinfo', JSON.stringify(t));
      assert.match(t.openid, /^o[A-Za-z0-9_-]{27}$/);
      const q = new URLSearchParams({ access_token: t.access_token, openid: t.openid, lang: 'zh_CN' });
      const ui = await (await fetch(`${p.base}/sns/userinfo?${q}`)).json();
      assert.strictEqual(ui.nickname, nickname, JSON.stringify(ui));
      assert.strictEqual(ui.openid, t.openid);

      // The code is single-use, so replaying it must fail.
      const again = await h.exchange(p.base, d.appid, d.secret, code);
      assert.ok(again.errcode, 'second exchange refused: ' + JSON.stringify(again));
    });
  });

test('snsapi_userinfo: 拒绝 returns to the callback with state and no code',
  { timeout: 60000 }, async () => {
    await withEnv({}, async ({ rp, d, p, browser }) => {
      const { ctx, page } = await newPage(browser);
      await page.goto(authorizeUrl(p, d, rp.cb, 'snsapi_userinfo'));
      await signIn(page, p, '小明😀');
      await assertConsent(page, p, d, '小明😀');
      const fields = {};
      for (const el of await page.locator('form input[type=hidden]').all())
        fields[await el.getAttribute('name')] = await el.getAttribute('value');
      assert.deepStrictEqual(Object.keys(fields).sort(),
        ['appid', 'redirect_uri', 'response_type', 'scope', 'state', 'ticket']);

      const cb = await clickAndLandOnRp(page, rp, '拒绝');
      assert.strictEqual(cb.searchParams.get('state'), 'abc123');
      assert.strictEqual(cb.searchParams.has('code'), false, 'no code on denial: ' + cb.search);
      assert.deepStrictEqual(rp.hits, ['?state=abc123']);

      // The answered form cannot be replayed as an allow (same browser, same cookies).
      const replay = await ctx.request.post(`${p.base}/connect/oauth2/authorize/confirm`,
        { form: { ...fields, action: 'allow' }, maxRedirects: 0 });
      assert.strictEqual(replay.status(), 400);
      assert.ok((await replay.text()).includes('此授权页面已提交过'));
      assert.deepStrictEqual(rp.hits, ['?state=abc123'], 'no code delivered by the replay');

      // Still signed in: opening the link again shows the consent page straight away.
      await page.goto(authorizeUrl(p, d, rp.cb, 'snsapi_userinfo'));
      await assertConsent(page, p, d, '小明😀');
    });
  });

test('snsapi_base is silent: straight to the callback with a code, no consent page',
  { timeout: 60000 }, async () => {
    await withEnv({}, async ({ rp, d, p, browser }) => {
      const { page } = await newPage(browser);
      const seen = [];
      page.on('framenavigated', (f) => { if (f === page.mainFrame()) seen.push(f.url()); });
      await page.goto(authorizeUrl(p, d, rp.cb, 'snsapi_base', 'base42'));
      await signIn(page, p, '小明😀');
      await page.waitForURL((u) => u.origin === rp.origin && u.pathname === '/cb');
      const cb = new URL(page.url());
      assert.match(cb.searchParams.get('code') || '', /^[A-Za-z0-9]{38}$/);
      assert.strictEqual(cb.searchParams.get('state'), 'base42');
      // Pages the browser displayed: the sign-in page, then the RP — never the consent page.
      const shown = seen.map((s) => new URL(s)).filter((u) => u.protocol.startsWith('http'));
      assert.ok(!shown.some((u) => u.pathname === '/connect/oauth2/authorize'),
        'no consent page shown: ' + seen.join(' , '));
      assert.strictEqual(rp.hits.length, 1);

      const t = await h.exchange(p.base, d.appid, d.secret, cb.searchParams.get('code'));
      assert.strictEqual(t.scope, 'snsapi_base', JSON.stringify(t));

      // Already signed in: a second snsapi_base authorization is one redirect, no page at all.
      seen.length = 0;
      await page.goto(authorizeUrl(p, d, rp.cb, 'snsapi_base', 'again'));
      const cb2 = new URL(page.url());
      assert.strictEqual(cb2.origin, rp.origin);
      assert.strictEqual(cb2.searchParams.get('state'), 'again');
      assert.match(cb2.searchParams.get('code') || '', /^[A-Za-z0-9]{38}$/);
      assert.notStrictEqual(cb2.searchParams.get('code'), cb.searchParams.get('code'));
    });
  });

test('the consent and sign-in pages refuse to render inside a cross-origin frame',
  { timeout: 60000 }, async () => {
    await withEnv({}, async ({ rp, d, p, browser }) => {
      const { ctx, page } = await newPage(browser);
      // Sign this browser in first, so the consent page is what the provider would answer.
      await page.goto(authorizeUrl(p, d, rp.cb, 'snsapi_userinfo'));
      await signIn(page, p, '小明😀');
      await assertConsent(page, p, d, '小明😀');

      const consentUrl = authorizeUrl(p, d, rp.cb, 'snsapi_userinfo');
      const loginUrl = `${p.base}/sandbox/login`;
      // Frame f2 is a control: a provider response that is not a page (no framing headers)
      // does render cross-origin, so a blocked frame is down to the pages' headers.
      rp.frames = [consentUrl, loginUrl, `${p.base}/healthz`];
      // The embedding page from two origins, both cross-origin to the provider:
      // http://localhost:<rp> is cross-site (the SameSite=Lax session cookie is not sent, so the
      // provider answers the sign-in redirect); http://127.0.0.1:<rp> is same-site, the cookie
      // is sent and the provider answers the consent page itself.
      for (const [host, consentServed] of [['localhost', false], ['127.0.0.1', true]]) {
        const responses = [];
        const onResponse = (r) => { if (r.request().frame() !== page.mainFrame()) responses.push(r); };
        page.on('response', onResponse);
        await page.goto(`http://${host}:${rp.port}/frame`);
        await page.waitForLoadState('load');
        await page.waitForTimeout(300);
        page.off('response', onResponse);

        const frames = page.frames().filter((f) => f !== page.mainFrame());
        assert.strictEqual(frames.length, 3, frames.map((f) => f.url()).join(' , '));
        const byName = (n) => frames.find((f) => f.name() === n);
        for (const name of ['f0', 'f1']) {
          const f = byName(name);
          assert.ok(f, 'frame ' + name);
          // Chromium replaces a frame blocked by X-Frame-Options / frame-ancestors with an
          // error page; whatever it shows, none of the provider's page may be there.
          let text = '';
          try { text = await f.locator('body').innerText({ timeout: 2000 }); } catch { text = ''; }
          assert.ok(!/允许|拒绝|登录|申请获得/.test(text), `${host}: frame ${name} rendered: ${text}`);
          assert.strictEqual(await f.getByRole('button').count().catch(() => 0), 0);
          assert.ok(!f.url().startsWith(p.base), `${host}: frame ${name} is at ${f.url()}`);
        }
        // The provider did answer the frames, every HTML page with headers forbidding framing.
        const pages = responses.filter((r) => r.url().startsWith(p.base) && r.status() < 300 &&
          !r.url().endsWith('/healthz'));
        const paths = pages.map((r) => new URL(r.url()).pathname);
        assert.ok(paths.includes('/sandbox/login'), host + ': ' + paths.join(' , '));
        assert.strictEqual(paths.includes('/connect/oauth2/authorize'), consentServed,
          host + ': consent page served to the frame? ' + paths.join(' , '));
        for (const r of pages) {
          const hd = await r.allHeaders();
          assert.strictEqual(hd['x-frame-options'], 'DENY', r.url());
          assert.match(hd['content-security-policy'] || '', /frame-ancestors 'none'/, r.url());
        }
        const control = byName('f2');
        assert.strictEqual(control.url(), `${p.base}/healthz`);
        assert.strictEqual((await control.locator('body').innerText()).trim(), 'ok');
      }
      assert.strictEqual(rp.hits.length, 0, 'no callback from the framed pages');
      await ctx.close();
    });
  });

test('without JavaScript: sign in and 允许 still complete the flow',
  { timeout: 60000 }, async () => {
    await withEnv({}, async ({ rp, d, p, browser }) => {
      const { page } = await newPage(browser, { javaScriptEnabled: false });
      await page.goto(authorizeUrl(p, d, rp.cb, 'snsapi_userinfo'));
      await signIn(page, p, '小明😀');
      await assertConsent(page, p, d, '小明😀');
      const cb = await clickAndLandOnRp(page, rp, '允许');
      // The RP page's inline script did not run: JavaScript really was off.
      assert.strictEqual(await page.title(), 'rp-cb');
      assert.strictEqual(cb.searchParams.get('state'), 'abc123');
      const code = cb.searchParams.get('code');
      assert.match(code || '', /^[A-Za-z0-9]{38}$/);
      const t = await h.exchange(p.base, d.appid, d.secret, code);
      assert.strictEqual(t.scope, 'snsapi_userinfo', JSON.stringify(t));
    });
  });

// Asserts nothing on the page is wider than the phone viewport.
async function assertFitsPhone(page) {
  const r = await page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > vw + 0.5 || e.scrollWidth > e.clientWidth + 1 &&
        getComputedStyle(e).overflowX === 'visible' && e.clientWidth > 0)
      .map((e) => e.tagName.toLowerCase() + '.' + e.className);
    return { vw, sw: document.documentElement.scrollWidth, wide };
  });
  assert.strictEqual(r.sw, r.vw, 'page scrolls sideways: ' + JSON.stringify(r));
  assert.deepStrictEqual(r.wide, [], 'elements overflow the phone width');
}

async function shoot(page, name) {
  await page.evaluate(() => document.fonts.ready);
  await assertFitsPhone(page);
  const file = path.join(SHOTS, name);
  await page.screenshot({ path: file, fullPage: true });
  const png = fs.readFileSync(file);
  assert.strictEqual(png.subarray(1, 4).toString(), 'PNG');
  assert.strictEqual(png.readUInt32BE(16), PHONE.width, name + ' is phone width');
}

test('screenshots of the pages at phone width (docs/screenshots)', { timeout: 60000 }, async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  // Plain CJK nicknames here: the docs images should not depend on an emoji font.
  const opts = (rp) => ({
    users: ['小明', '李华'],
    menu: [`最新活动=${rp.origin}/cb`, `会员中心=${rp.origin}/cb?m=2`, `联系我们=${rp.origin}/cb?m=3`],
  });
  await withEnv(opts, async ({ rp, d, p, browser }) => {
    const { page } = await newPage(browser);
    await page.goto(authorizeUrl(p, d, rp.cb, 'snsapi_userinfo'));
    await page.getByRole('heading', { name: '用微信测试用户登录' }).waitFor();
    await shoot(page, 'sign-in.png');

    await signIn(page, p, '小明');
    await assertConsent(page, p, d, '小明');
    await shoot(page, 'consent.png');

    const bad = authorizeUrl(p, d, 'http://evil.example/cb', 'snsapi_userinfo');
    const r = await page.goto(bad);
    assert.strictEqual(r.status(), 400);
    assert.strictEqual(new URL(page.url()).origin, p.base, 'no redirect to a foreign host');
    const text = await page.locator('body').innerText();
    assert.ok(text.includes('redirect_uri域名与后台配置不一致'), text);
    assert.ok(text.includes('10003'), text);
    await shoot(page, 'error-10003.png');

    // The home page lists the followed account with its menu links.
    h.cli(['user', 'follow', '--db', d.db, String(d.users[0]), d.appid]);
    await page.goto(`${p.base}/sandbox/home`);
    assert.strictEqual(new URL(page.url()).pathname, '/sandbox/home');
    const home = await page.locator('body').innerText();
    assert.ok(home.includes('小明') && home.includes('测试公众号'), home);
    assert.strictEqual(await page.locator('.menu a').count(), 3);
    await shoot(page, 'home.png');
  });
});

test('long unbroken nicknames and account names wrap at phone width', { timeout: 60000 }, async () => {
  const longLatin = 'W'.repeat(32), longZh = '很长的昵称'.repeat(6);
  await withEnv({ users: [longLatin, longZh] }, async ({ rp, d, p, browser }) => {
    h.cli(['app', 'set', '--db', d.db, d.appid, '--name', 'VeryLongOfficialAccountName_' + 'X'.repeat(30)]);
    const { page } = await newPage(browser);
    await page.goto(authorizeUrl(p, d, rp.cb, 'snsapi_userinfo'));
    await assertFitsPhone(page);
    // Every 登录 button sits fully inside the viewport, on one line.
    for (const btn of await page.getByRole('button', { name: '登录' }).all()) {
      const box = await btn.boundingBox();
      assert.ok(box.x >= 0 && box.x + box.width <= PHONE.width, JSON.stringify(box));
      assert.ok(box.height < 50, 'button text on one line: ' + JSON.stringify(box));
    }
    await signIn(page, p, longLatin);
    await page.getByRole('heading', { name: '申请获得以下权限' }).waitFor();
    await assertFitsPhone(page);
    for (const name of ['允许', '拒绝']) {
      const box = await page.getByRole('button', { name, exact: true }).boundingBox();
      assert.ok(box.x >= 0 && box.x + box.width <= PHONE.width, name + JSON.stringify(box));
    }
    await page.goto(`${p.base}/sandbox/home`);
    await assertFitsPhone(page);
    const sw = await page.getByRole('button', { name: '切换用户' }).boundingBox();
    assert.ok(sw.x + sw.width <= PHONE.width && sw.height < 50, JSON.stringify(sw));
  });
});
