// consent_memory.test.js — remembered consent (--consent-memory), forcePopup and forceSnapShot,
// in WeChat's order of precedence (protocol sheet §1.1, §2).
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const h = require('./harness');

const CB = 'http://localhost:9000/cb';

function url(base, appid, extra = {}) {
  return h.authorizeUrl(base, { appid, redirect_uri: CB, response_type: 'code',
    scope: 'snsapi_userinfo', state: 's1', ...extra });
}

async function allow(base, cookie, appid) {
  const r = await h.page(url(base, appid), cookie);
  assert.strictEqual(r.status, 200, 'consent page expected');
  const f = h.parseForm(r.body);
  const post = await h.postForm(base + f.action, { ...f.fields, action: 'allow' }, cookie);
  assert.strictEqual(post.status, 302);
  return post.location;
}

test('without consent memory every snsapi_userinfo asks again', async () => {
  await h.withProvider({}, async (p, d) => {
    const cookie = await h.login(p.base, d.users[0]);
    await allow(p.base, cookie, d.appid);
    const again = await h.page(url(p.base, d.appid), cookie);
    assert.strictEqual(again.status, 200);
    assert.match(again.body, /允许/);
  });
});

test('with consent memory a second authorization is silent; forcePopup asks; memory expires', async () => {
  await h.withProvider({}, async (p, d) => {
    const cookie = await h.login(p.base, d.users[0]);
    await allow(p.base, cookie, d.appid);
    const silent = await h.page(url(p.base, d.appid), cookie);
    assert.strictEqual(silent.status, 302);
    assert.match(silent.location, /^http:\/\/localhost:9000\/cb\?code=[0-9A-Za-z]{38}&state=s1$/);
    const forced = await h.page(url(p.base, d.appid, { forcePopup: 'true' }), cookie);
    assert.strictEqual(forced.status, 200);
    assert.match(forced.body, /允许/);
    await h.clock(p.base, 3601);
    const later = await h.page(url(p.base, d.appid), cookie);
    assert.strictEqual(later.status, 200, 'memory of one hour has passed');
    const other = await h.login(p.base, h.addUser(d.db, 'Bob'));
    assert.strictEqual((await h.page(url(p.base, d.appid), other)).status, 200, 'per user');
  }, ['--consent-memory', '3600']);
});

test('forceSnapShot skips the pop-up and yields a snapshot user', async () => {
  await h.withProvider({ openAccount: 'acme' }, async (p, d) => {
    const cookie = await h.login(p.base, d.users[0]);
    const r = await h.page(url(p.base, d.appid, { forceSnapShot: 'true' }), cookie);
    assert.strictEqual(r.status, 302);
    const code = new URL(r.location).searchParams.get('code');
    const t = await h.exchange(p.base, d.appid, d.secret, code);
    assert.strictEqual(t.is_snapshotuser, 1);
    const ui = await h.getJson(`${p.base}/sns/userinfo?access_token=${t.access_token}&openid=${t.openid}`);
    assert.strictEqual(ui.body.errcode, 48001);
    // Without the flag the same user is a real user again.
    const page2 = await h.page(url(p.base, d.appid), cookie);
    assert.strictEqual(page2.status, 200);
  });
});
