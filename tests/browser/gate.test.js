// gate.test.js — a real browser through nginx, the gate and the provider: a protected page →
// sign in → 允许 → back on the page, which shows the openid and nickname; 拒绝 → the gate's
// denial page; reloading the callback URL → no error; sign out → asked to log in again.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { chromium } = require('playwright-core');
const { startStack, NGINX } = require('../integration/stack');
const { startRedis, REDIS } = require('../integration/redis');
const { needs } = require('../integration/harness');

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

test('gate in a browser', { skip: needs(NGINX) }, async () => {
  const s = await startStack();
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS });
  try {
    const page = await (await browser.newContext({ viewport: { width: 390, height: 760 } })).newPage();
    // Protected page, a route that needs the profile: nginx sends the browser to the gate.
    await page.goto(`${s.site}/wxauth/start?scope=snsapi_userinfo&rd=/account?tab=1`);
    assert.match(page.url(), /\/sandbox\/login/);
    await page.locator('li', { hasText: '小明' }).locator('button').click();
    assert.match(await page.content(), /获得你的公开信息/);
    await page.click('button:has-text("允许")');
    const seen = JSON.parse(await page.locator('body').innerText());
    assert.strictEqual(seen.url, '/account?tab=1');
    assert.match(seen.headers['x-wechat-openid'], /^o[A-Za-z0-9_-]{27}$/);
    assert.strictEqual(decodeURIComponent(seen.headers['x-wechat-nickname']), '小明😀');
    // Sign out: the next request asks to log in again.
    await page.goto(`${s.site}/wxauth/sign_out`);
    assert.match(await page.content(), /你已退出/);
    // Node's own request, with the browser's cookies: to 127.0.0.1, since "localhost" may not
    // be in /etc/hosts (a debootstrap system has none; Chromium resolves it by itself).
    const jar = (await page.context().cookies(s.site)).map((c) => `${c.name}=${c.value}`).join('; ');
    const again = await page.request.get(`${s.site.replace('//localhost:', '//127.0.0.1:')}/account`,
      { maxRedirects: 0, headers: { Cookie: jar } });
    assert.strictEqual(again.status(), 302);
    assert.match(again.headers().location, /\/wxauth\/start\?/);
    // 拒绝 → the gate's denial page with a way back.
    await page.goto(`${s.site}/wxauth/start?scope=snsapi_userinfo&rd=/account`);
    if (/\/sandbox\/login/.test(page.url())) await page.locator('li', { hasText: '小明' }).locator('button').click();
    await page.click('button:has-text("拒绝")');
    assert.match(await page.content(), /你拒绝了授权/);
    assert.match(page.url(), /\/wxauth\/callback\?state=/);
    // Reloading the denial callback shows the page again, never an error.
    await page.reload();
    assert.match(await page.content(), /你拒绝了授权|登录链接无效/);
  } finally {
    await browser.close();
    await s.stop();
  }
});

test('a reloaded success callback keeps the session', { skip: needs(NGINX) }, async () => {
  const s = await startStack();
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS });
  try {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    let callback = null;
    page.on('request', (r) => { if (r.url().includes('/wxauth/callback?code=')) callback = r.url(); });
    await page.goto(`${s.site}/orders`);
    await page.locator('li', { hasText: '小明' }).locator('button').click();
    const first = JSON.parse(await page.locator('body').innerText());
    assert.ok(callback, 'the browser went through the callback');
    await page.goto(callback); // the same code again
    const again = JSON.parse(await page.locator('body').innerText());
    assert.strictEqual(again.headers['x-wechat-openid'], first.headers['x-wechat-openid']);
  } finally {
    await browser.close();
    await s.stop();
  }
});

test('two nodes on one Redis: a browser login through one gate is valid at the other', { skip: needs(NGINX, REDIS) }, async () => {
  const r = await startRedis();
  const s = await startStack({ nodes: 2, redis: r.url });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS });
  try {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 760 } });
    const page = await ctx.newPage();
    await page.goto(`${s.site}/orders`);
    await page.locator('li', { hasText: '小明' }).locator('button').click();
    const seen = JSON.parse(await page.locator('body').innerText());
    assert.match(seen.headers['x-wechat-openid'], /^o[A-Za-z0-9_-]{27}$/);
    const cookie = (await ctx.cookies(s.site)).map((c) => `${c.name}=${c.value}`).join('; ');
    for (const g of s.gates) {
      const a = await fetch(`${g}/wxauth/auth`, { headers: { Cookie: cookie } });
      assert.strictEqual(a.status, 202, `gate ${g}`);
      assert.strictEqual(a.headers.get('x-wechat-openid'), seen.headers['x-wechat-openid']);
    }
    for (let i = 0; i < 4; i++) { // reloads alternate gates
      await page.reload();
      assert.strictEqual(JSON.parse(await page.locator('body').innerText()).headers['x-wechat-openid'], seen.headers['x-wechat-openid']);
    }
  } finally {
    await browser.close();
    await s.stop();
    await r.cleanup();
  }
});
