// refresh_userinfo.test.js — /sns/oauth2/refresh_token, /sns/userinfo and /sns/auth: fields,
// lifetimes (7200 s access, 30-day refresh from the first grant), every errcode, and what an
// AppSecret reset does to the secret and to the tokens issued before it.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const h = require('./harness');

const RID = /, rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/;

function url(base, path, q) {
  const s = Object.entries(q).filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return `${base}${path}?${s}`;
}
const jget = async (u) => (await h.getJson(u)).body;
const refresh = (base, q) => jget(url(base, '/sns/oauth2/refresh_token', q));
const userinfo = (base, q) => jget(url(base, '/sns/userinfo', q));
const auth = (base, q) => jget(url(base, '/sns/auth', q));

function assertErr(body, errcode, msg) {
  assert.strictEqual(body.errcode, errcode, JSON.stringify(body));
  assert.deepStrictEqual(Object.keys(body).sort(), ['errcode', 'errmsg']);
  if (msg) assert.strictEqual(body.errmsg.replace(RID, ''), msg);
  assert.match(body.errmsg, RID);
}

async function grant(p, app, user, scope = 'snsapi_userinfo') {
  const [code] = await h.issueCodes(p.base, app.appid, user, scope);
  const t = await h.exchange(p.base, app.appid, app.secret, code);
  assert.strictEqual(typeof t.access_token, 'string', JSON.stringify(t));
  return t;
}

const rq = (appid, rt, over = {}) => ({ appid, grant_type: 'refresh_token', refresh_token: rt, ...over });

test('refresh: same refresh_token back, a new working access_token', async () => {
  await h.withProvider({}, async (p, d) => {
    const t = await grant(p, d.app, d.users[0]);
    const r = await refresh(p.base, rq(d.appid, t.refresh_token));
    assert.deepStrictEqual(Object.keys(r).sort(), ['access_token', 'expires_in', 'openid', 'refresh_token', 'scope']);
    assert.strictEqual(r.refresh_token, t.refresh_token);
    assert.strictEqual(typeof r.access_token, 'string');
    assert.notStrictEqual(r.access_token, t.access_token);
    assert.strictEqual(r.expires_in, 7200);
    assert.strictEqual(r.openid, t.openid);
    assert.strictEqual(r.scope, 'snsapi_userinfo');
    assert.deepStrictEqual(await auth(p.base, { access_token: r.access_token, openid: r.openid }), { errcode: 0, errmsg: 'ok' });
    const u = await userinfo(p.base, { access_token: r.access_token, openid: r.openid, lang: 'zh_CN' });
    assert.strictEqual(u.openid, t.openid);
    // The refreshed token outlives the first: at +7201 s after a late refresh it still works.
    await h.clock(p.base, 7000);
    const r2 = await refresh(p.base, rq(d.appid, t.refresh_token));
    await h.clock(p.base, 201);
    assertErr(await auth(p.base, { access_token: t.access_token, openid: t.openid }), 42001);
    assert.deepStrictEqual(await auth(p.base, { access_token: r2.access_token, openid: t.openid }), { errcode: 0, errmsg: 'ok' });
    // snsapi_base grants refresh to snsapi_base.
    const b = await grant(p, d.app, d.users[0], 'snsapi_base');
    assert.strictEqual((await refresh(p.base, rq(d.appid, b.refresh_token))).scope, 'snsapi_base');
  });
});

test('refresh errors: 41002, 40013, 40002, 41003, 40030', async () => {
  const d = h.makeDb();
  const other = h.addApp(d.db, {});
  const p = await h.startProvider(d.db);
  try {
    const t = await grant(p, d.app, d.users[0]);
    const t2 = await grant(p, other, d.users[0]);
    assertErr(await refresh(p.base, rq(undefined, t.refresh_token)), 41002, 'appid missing');
    assertErr(await refresh(p.base, rq('', t.refresh_token)), 41002);
    assertErr(await refresh(p.base, rq('wx0000000000000000', t.refresh_token)), 40013, 'invalid appid');
    assertErr(await refresh(p.base, { appid: 'wx0000000000000000' }), 40013);
    assertErr(await refresh(p.base, rq(d.appid, t.refresh_token, { grant_type: undefined })), 40002, 'invalid grant_type');
    assertErr(await refresh(p.base, rq(d.appid, t.refresh_token, { grant_type: 'authorization_code' })), 40002);
    assertErr(await refresh(p.base, rq(d.appid, undefined)), 41003, 'refresh_token missing');
    assertErr(await refresh(p.base, rq(d.appid, '')), 41003);
    assertErr(await refresh(p.base, rq(d.appid, 'garbage')), 40030, 'invalid refresh_token');
    assertErr(await refresh(p.base, rq(d.appid, t.access_token)), 40030);
    assertErr(await refresh(p.base, rq(d.appid, t2.refresh_token)), 40030);
    assertErr(await refresh(p.base, rq(other.appid, t.refresh_token)), 40030);
    const tampered = t.refresh_token.slice(0, -1) + (t.refresh_token.endsWith('A') ? 'B' : 'A');
    assertErr(await refresh(p.base, rq(d.appid, tampered)), 40030);
    // None of that hurt the real one.
    assert.strictEqual((await refresh(p.base, rq(d.appid, t.refresh_token))).refresh_token, t.refresh_token);
  } finally {
    await p.stop();
  }
});

test('refresh_token: 30 days from the first grant, then 42002 (also after a purge)', async () => {
  await h.withProvider({}, async (p, d) => {
    const t = await grant(p, d.app, d.users[0]);
    await h.clock(p.base, 29 * 86400);
    const r = await refresh(p.base, rq(d.appid, t.refresh_token));
    assert.strictEqual(r.refresh_token, t.refresh_token, 'still valid on day 29');
    await h.clock(p.base, 86400 + 1);
    assertErr(await refresh(p.base, rq(d.appid, t.refresh_token)), 42002, 'refresh_token expired');
    // The purge runs every second here: an expired grant still answers 42002, not 40030.
    await h.sleep(2500);
    assertErr(await refresh(p.base, rq(d.appid, t.refresh_token)), 42002);
    assertErr(await auth(p.base, { access_token: r.access_token, openid: t.openid }), 42001);
  }, ['--purge-interval', '1']);
});

test('userinfo: fields, emoji nickname, langs, unionid with an open account', async () => {
  const nick = '小明😀👨‍👩‍👧 "q" <b>&amp; \\ é';
  const d = h.makeDb({ users: [nick], openAccount: 'acct42' });
  const plain = h.addApp(d.db, {});
  const p = await h.startProvider(d.db);
  try {
    const t = await grant(p, d.app, d.users[0]);
    for (const lang of ['zh_CN', 'zh_TW', 'en', undefined]) {
      const r = await h.getJson(url(p.base, '/sns/userinfo', { access_token: t.access_token, openid: t.openid, lang }));
      assert.strictEqual(r.status, 200);
      assert.strictEqual(r.headers.get('content-type'), 'application/json; charset=utf-8');
      const u = r.body;
      assert.deepStrictEqual(Object.keys(u).sort(),
        ['city', 'country', 'headimgurl', 'nickname', 'openid', 'privilege', 'province', 'sex', 'unionid']);
      assert.strictEqual(u.openid, t.openid);
      assert.strictEqual(u.nickname, nick, 'nickname round-trips exactly');
      assert.strictEqual(u.sex, 0);
      assert.strictEqual(u.province, '');
      assert.strictEqual(u.city, '');
      assert.strictEqual(u.country, '');
      assert.strictEqual(typeof u.headimgurl, 'string');
      assert.ok(u.headimgurl.length > 0);
      assert.match(u.headimgurl, /^https?:\/\//);
      assert.ok(Array.isArray(u.privilege));
      assert.strictEqual(u.privilege.length, 0);
      assert.strictEqual(u.unionid, t.unionid);
      assert.match(u.unionid, /^o[A-Za-z0-9_-]{27}$/);
    }
    // The avatar URL is served.
    const u = await userinfo(p.base, { access_token: t.access_token, openid: t.openid });
    if (u.headimgurl.startsWith(p.base)) {
      const img = await h.get(u.headimgurl);
      assert.strictEqual(img.status, 200);
      assert.match(img.headers.get('content-type'), /^image\//);
    }
    // Without an open account there is no unionid.
    const t2 = await grant(p, plain, d.users[0]);
    const u2 = await userinfo(p.base, { access_token: t2.access_token, openid: t2.openid, lang: 'en' });
    assert.ok(!('unionid' in u2), JSON.stringify(u2));
    assert.strictEqual(u2.nickname, nick);
    assert.notStrictEqual(u2.openid, t.openid);
  } finally {
    await p.stop();
  }
});

test('userinfo errors: 41001, 41009, 40001, 42001, 40003, 48001', async () => {
  await h.withProvider({ users: ['甲', '乙', '快照'], snapshot: [2] }, async (p, d) => {
    const a = await grant(p, d.app, d.users[0]);
    const b = await grant(p, d.app, d.users[1]);
    assertErr(await userinfo(p.base, { openid: a.openid }), 41001, 'access_token missing');
    assertErr(await userinfo(p.base, { access_token: '', openid: a.openid }), 41001);
    assertErr(await userinfo(p.base, { access_token: a.access_token }), 41009, 'missing openid');
    assertErr(await userinfo(p.base, { access_token: 'garbage', openid: a.openid }), 40001,
      'invalid credential, access_token is invalid or not latest');
    assertErr(await userinfo(p.base, { access_token: a.refresh_token, openid: a.openid }), 40001);
    assertErr(await userinfo(p.base, { access_token: a.access_token, openid: b.openid }), 40003, 'invalid openid');
    assertErr(await userinfo(p.base, { access_token: a.access_token, openid: 'o' + 'x'.repeat(27) }), 40003);
    const base = await grant(p, d.app, d.users[0], 'snsapi_base');
    assertErr(await userinfo(p.base, { access_token: base.access_token, openid: base.openid }), 48001, 'api unauthorized');
    const snap = await grant(p, d.app, d.users[2]);
    assert.strictEqual(snap.is_snapshotuser, 1);
    assertErr(await userinfo(p.base, { access_token: snap.access_token, openid: snap.openid }), 48001);
    // A basic (cgi-bin) token is not a web token.
    const basic = await jget(url(p.base, '/cgi-bin/token', { grant_type: 'client_credential', appid: d.appid, secret: d.secret }));
    assertErr(await userinfo(p.base, { access_token: basic.access_token, openid: a.openid }), 40001);
    // Still valid at 7190 s, expired at 7201 s (10 s of margin for real time passing).
    await h.clock(p.base, 7190);
    assert.strictEqual((await userinfo(p.base, { access_token: a.access_token, openid: a.openid })).openid, a.openid);
    await h.clock(p.base, 11);
    assertErr(await userinfo(p.base, { access_token: a.access_token, openid: a.openid }), 42001, 'access_token expired');
  }, ['--purge-interval', '86400']);
});

test('/sns/auth: ok and its errors', async () => {
  await h.withProvider({ users: ['甲', '乙'] }, async (p, d) => {
    const a = await grant(p, d.app, d.users[0], 'snsapi_base');
    const b = await grant(p, d.app, d.users[1], 'snsapi_base');
    const r = await h.getJson(url(p.base, '/sns/auth', { access_token: a.access_token, openid: a.openid }));
    assert.strictEqual(r.status, 200);
    assert.deepStrictEqual(r.body, { errcode: 0, errmsg: 'ok' });
    assert.strictEqual(r.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.strictEqual(r.headers.get('cache-control'), 'no-store');
    assertErr(await auth(p.base, { openid: a.openid }), 41001);
    assertErr(await auth(p.base, { access_token: a.access_token }), 41009);
    assertErr(await auth(p.base, { access_token: 'nope', openid: a.openid }), 40001);
    assertErr(await auth(p.base, { access_token: a.access_token, openid: b.openid }), 40003);
    await h.clock(p.base, 7201);
    assertErr(await auth(p.base, { access_token: a.access_token, openid: a.openid }), 42001);
    await h.sleep(2500); // the purge runs every second: an expired token still says 42001
    assertErr(await auth(p.base, { access_token: a.access_token, openid: a.openid }), 42001);
  }, ['--purge-interval', '1']);
});

test('AppSecret reset while running: old secret 40125 at once, earlier tokens revoked', async () => {
  await h.withProvider({}, async (p, d) => {
    const t = await grant(p, d.app, d.users[0]);
    const [code] = await h.issueCodes(p.base, d.appid, d.users[0]);
    const reset = h.cliJson(['app', 'reset-secret', '--db', d.db, d.appid]);
    assert.strictEqual(reset.appid, d.appid);
    assert.match(reset.secret, /^[0-9a-f]{32}$/);
    assert.notStrictEqual(reset.secret, d.secret);
    const q = (secret) => url(p.base, '/sns/oauth2/access_token', { appid: d.appid, secret, code, grant_type: 'authorization_code' });
    assertErr(await jget(q(d.secret)), 40125);
    assertErr(await auth(p.base, { access_token: t.access_token, openid: t.openid }), 40001);
    assertErr(await userinfo(p.base, { access_token: t.access_token, openid: t.openid }), 40001);
    const rr = await refresh(p.base, rq(d.appid, t.refresh_token));
    assert.strictEqual(rr.errcode, 40030, JSON.stringify(rr));
    const fresh = await jget(q(reset.secret));
    assert.strictEqual(typeof fresh.access_token, 'string', JSON.stringify(fresh));
    assert.deepStrictEqual(await auth(p.base, { access_token: fresh.access_token, openid: fresh.openid }), { errcode: 0, errmsg: 'ok' });
    // The admin API's reset does the same — also for a secret just verified (and remembered).
    const basic = url(p.base, '/cgi-bin/token', { grant_type: 'client_credential', appid: d.appid, secret: reset.secret });
    assert.strictEqual(typeof (await jget(basic)).access_token, 'string');
    const r2 = await h.admin(p.base, 'POST', `/admin/apps/${d.appid}/reset-secret`);
    assert.strictEqual(r2.status, 200);
    assertErr(await auth(p.base, { access_token: fresh.access_token, openid: fresh.openid }), 40001);
    assert.strictEqual((await jget(url(p.base, '/cgi-bin/token', { grant_type: 'client_credential', appid: d.appid, secret: reset.secret }))).errcode, 40125);
  });
});
