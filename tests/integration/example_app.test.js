// example_app.test.js — the example relying party (examples/webapp.c) against the provider:
// the full login, the denial page with its snsapi_base fallback, and no 40163 on refresh, Back or
// a double callback (the replayed callback gets the session the first one created).
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const net = require('node:net');
const h = require('./harness');

const { Browser, freePort } = h;

const EXAMPLE = path.join(path.dirname(h.BIN), 'wxauth-example');

function startExample(appid, secret, provider, port) {
  return new Promise((resolve, reject) => {
    const child = h.spawnServer(EXAMPLE, ['--listen', `127.0.0.1:${port}`, '--appid', appid,
      '--wechat', provider, '--public-url', `http://localhost:${port}`],
    { env: { ...process.env, WXAUTH_SECRET: secret }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error('example did not start')), 10000);
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('listening')) {
        clearTimeout(timer);
        resolve({ base: `http://127.0.0.1:${port}`, stop: () => new Promise((r) => { child.once('exit', r); child.kill('SIGTERM'); }) });
      }
    });
  });
}

async function setup(fn) {
  const port = await freePort();
  const d = h.makeDb({ domains: [`localhost:${port}`] });
  const p = await h.startProvider(d.db);
  const ex = await startExample(d.appid, d.secret, p.base, port);
  try {
    await fn({ d, p, ex });
  } finally {
    await ex.stop();
    await p.stop();
  }
}

// Browser: example /login -> provider (signs in) -> consent; returns the consent page response.
async function toConsent(b, p, ex, user, scope = 'snsapi_userinfo') {
  const login = await b.go(`${ex.base}/login?scope=${scope}`);
  assert.strictEqual(login.status, 302);
  assert.match(login.location, /\/connect\/oauth2\/authorize\?appid=wx[0-9a-f]{16}&redirect_uri=/);
  const r = await b.go(login.location);
  assert.strictEqual(r.status, 303, 'not signed in yet: the provider asks who you are');
  const signin = await b.post(`${p.base}/sandbox/login`, { user });
  assert.strictEqual(signin.status, 303);
  return b.go(login.location);
}

async function answer(b, p, consent, action) {
  const f = h.parseForm(consent.body);
  return b.post(p.base + f.action, { ...f.fields, action });
}

test('allow: the nickname shows, and the callback leaves with a clean 303', async () => {
  await setup(async ({ d, p, ex }) => {
    const b = new Browser();
    const consent = await toConsent(b, p, ex, d.users[0]);
    assert.strictEqual(consent.status, 200);
    const cb = await answer(b, p, consent, 'allow');
    assert.strictEqual(cb.status, 302);
    assert.match(cb.location, /^http:\/\/localhost:\d+\/callback\?code=[0-9A-Za-z]{38}&state=[0-9A-Za-z]+$/);
    const done = await b.go(cb.location);
    assert.strictEqual(done.status, 303);
    assert.strictEqual(done.location, '/', 'the code does not stay in the address bar');
    const home = await b.go(`${ex.base}/`);
    assert.match(home.body, /你好，小明😀/);
    assert.match(home.body, /scope snsapi_userinfo/);
    // Refresh or Back onto the callback URL: the same session, never 40163.
    for (let i = 0; i < 2; i++) {
      const again = await b.go(cb.location);
      assert.strictEqual(again.status, 303);
      assert.strictEqual(again.location, '/');
      assert.doesNotMatch(again.body, /40163/);
    }
    assert.doesNotMatch(p.logs(), /errcode=40163/, 'the code was exchanged exactly once');
  });
});

test('deny: a friendly page offering to try again or continue with snsapi_base', async () => {
  await setup(async ({ d, p, ex }) => {
    const b = new Browser();
    const consent = await toConsent(b, p, ex, d.users[0]);
    const cb = await answer(b, p, consent, 'deny');
    assert.strictEqual(cb.status, 302);
    assert.doesNotMatch(cb.location, /code=/);
    const page = await b.go(cb.location);
    assert.strictEqual(page.status, 200);
    assert.match(page.body, /你拒绝了授权/);
    assert.match(page.body, /href="\/login\?scope=snsapi_userinfo"/);
    assert.match(page.body, /href="\/login\?scope=snsapi_base"/);
    // Continue with snsapi_base: silent, openid only.
    const login = await b.go(`${ex.base}/login?scope=snsapi_base`);
    const silent = await b.go(login.location);
    assert.strictEqual(silent.status, 302);
    const done = await b.go(silent.location);
    assert.strictEqual(done.status, 303);
    const home = await b.go(`${ex.base}/`);
    assert.match(home.body, /scope snsapi_base/);
    assert.match(home.body, /id="openid">o[A-Za-z0-9_-]{27}</);
  });
});

test('invalid callbacks: no state, forged state, another browser; no token call', async () => {
  await setup(async ({ d, p, ex }) => {
    const b = new Browser();
    for (const q of ['code=abc', 'code=abc&state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'state=x&state=y']) {
      const r = await b.go(`${ex.base}/callback?${q}`);
      assert.strictEqual(r.status, 400, q);
      assert.match(r.body, /登录链接无效或已过期/);
    }
    // A state issued to browser A, used by browser B (a different bid cookie). The example binds
    // the state to the browser once the browser has shown that it keeps cookies (a second visit).
    const a = new Browser();
    await a.go(`${ex.base}/login`);
    const consent = await toConsent(a, p, ex, d.users[0]);
    const cb = await answer(a, p, consent, 'allow');
    const other = new Browser();
    await other.go(`${ex.base}/login`); // gives B its own bid cookie
    const r = await other.go(cb.location);
    assert.strictEqual(r.status, 400);
    assert.match(r.body, /another browser/);
    assert.doesNotMatch(p.logs(), /path="\/sns\/oauth2\/access_token"/, 'no code was spent');
    // The right browser still gets in with the untouched code.
    const ok = await a.go(cb.location);
    assert.strictEqual(ok.status, 303);
  });
});
