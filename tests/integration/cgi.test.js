// cgi.test.js — the basic APIs: /cgi-bin/token (client_credential, 7200 s, the previous token
// valid 5 more minutes, appid checked first, errmsg without the comma before rid) and
// /cgi-bin/user/info (followers only; nickname and headimgurl empty).
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const h = require('./harness');

const CGI_RID = /^[^,]*[^,] rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/;

function url(base, path, q) {
  const s = Object.entries(q).filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return `${base}${path}?${s}`;
}
const jget = async (u) => (await h.getJson(u)).body;
const token = (base, q) => jget(url(base, '/cgi-bin/token', q));
const info = (base, q) => jget(url(base, '/cgi-bin/user/info', q));
const cq = (d, over = {}) => ({ grant_type: 'client_credential', appid: d.appid, secret: d.secret, ...over });

function assertErr(body, errcode, msg) {
  assert.strictEqual(body.errcode, errcode, JSON.stringify(body));
  assert.deepStrictEqual(Object.keys(body).sort(), ['errcode', 'errmsg']);
  if (msg) assert.strictEqual(body.errmsg.replace(/ rid: .*$/, ''), msg);
}

test('/cgi-bin/token: success body and headers', async () => {
  await h.withProvider({}, async (p, d) => {
    const r = await h.getJson(url(p.base, '/cgi-bin/token', cq(d)));
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.strictEqual(r.headers.get('cache-control'), 'no-store');
    assert.strictEqual(r.headers.get('pragma'), 'no-cache');
    assert.deepStrictEqual(Object.keys(r.body).sort(), ['access_token', 'expires_in']);
    assert.strictEqual(typeof r.body.access_token, 'string');
    assert.ok(r.body.access_token.length >= 27);
    assert.strictEqual(r.body.expires_in, 7200);
  });
});

test('/cgi-bin/token errors: 40013 first, 41002, 40002, 41004, 40125; errmsg has no comma', async () => {
  await h.withProvider({}, async (p, d) => {
    assertErr(await token(p.base, { appid: 'wx0000000000000000' }), 40013, 'invalid appid');
    assertErr(await token(p.base, { appid: 'wx0000000000000000', secret: d.secret }), 40013);
    assertErr(await token(p.base, cq(d, { appid: 'bogus', grant_type: 'nope' })), 40013);
    assertErr(await token(p.base, cq(d, { appid: undefined })), 41002, 'appid missing');
    assertErr(await token(p.base, cq(d, { grant_type: undefined })), 40002, 'invalid grant_type');
    assertErr(await token(p.base, cq(d, { grant_type: 'authorization_code' })), 40002);
    assertErr(await token(p.base, cq(d, { secret: undefined })), 41004, 'appsecret missing');
    assertErr(await token(p.base, cq(d, { secret: '' })), 41004);
    assertErr(await token(p.base, cq(d, { secret: '0'.repeat(32) })), 40125, 'invalid appsecret');
    const bodies = [
      await token(p.base, { appid: 'wx0000000000000000' }),
      await token(p.base, cq(d, { grant_type: 'x' })),
      await token(p.base, cq(d, { secret: 'x' })),
      await info(p.base, { openid: 'x' }),
    ];
    for (const b of bodies) {
      assert.match(b.errmsg, CGI_RID, JSON.stringify(b));
      assert.ok(!b.errmsg.includes(', rid:'), 'cgi-bin errmsg: no comma before rid');
    }
    const r = await h.getJson(url(p.base, '/cgi-bin/token', cq(d, { secret: 'x' })));
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.headers.get('content-type'), 'application/json; charset=utf-8');
  });
});

test('a second token: both valid; the old one until +300 s, then 42001', async () => {
  await h.withProvider({}, async (p, d) => {
    const follower = d.users[0];
    h.cli(['user', 'follow', '--db', d.db, follower, d.appid]);
    const { openid } = await h.admin(p.base, 'POST', '/admin/issue', { appid: d.appid, user: follower, kind: 'code' }).then((r) => r.body);
    const t1 = (await token(p.base, cq(d))).access_token;
    const t2 = (await token(p.base, cq(d))).access_token;
    assert.notStrictEqual(t1, t2);
    assert.strictEqual((await info(p.base, { access_token: t1, openid })).subscribe, 1);
    assert.strictEqual((await info(p.base, { access_token: t2, openid })).subscribe, 1);
    // Margins of 10 s: real time also passes while the test runs on a loaded machine.
    await h.clock(p.base, 290);
    assert.strictEqual((await info(p.base, { access_token: t1, openid })).subscribe, 1, 'old token valid at +290 s');
    await h.clock(p.base, 11);
    assertErr(await info(p.base, { access_token: t1, openid }), 42001, 'access_token expired');
    assert.strictEqual((await info(p.base, { access_token: t2, openid })).subscribe, 1, 'new token still valid');
    // The newest token lives 7200 s.
    await h.clock(p.base, 7200 - 301 - 10);
    assert.strictEqual((await info(p.base, { access_token: t2, openid })).subscribe, 1);
    await h.clock(p.base, 11);
    assertErr(await info(p.base, { access_token: t2, openid }), 42001);
  }, ['--purge-interval', '86400']);
});

test('/cgi-bin/user/info: follower, non-follower and errors', async () => {
  const d = h.makeDb({ users: ['关注者', '路人'], openAccount: 'acctcgi' });
  const other = h.addApp(d.db, {});
  h.cli(['user', 'follow', '--db', d.db, d.users[0], d.appid]);
  const p = await h.startProvider(d.db);
  try {
    const openidOf = async (app, u) => (await h.admin(p.base, 'POST', '/admin/issue', { appid: app.appid, user: u, kind: 'code' })).body.openid;
    const fOpenid = await openidOf(d.app, d.users[0]);
    const nOpenid = await openidOf(d.app, d.users[1]);
    const basic = (await token(p.base, cq(d))).access_token;
    const before = Math.floor(Date.now() / 1000);

    const r = await h.getJson(url(p.base, '/cgi-bin/user/info', { access_token: basic, openid: fOpenid, lang: 'zh_CN' }));
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.headers.get('content-type'), 'application/json; charset=utf-8');
    const f = r.body;
    assert.strictEqual(f.subscribe, 1);
    assert.strictEqual(f.openid, fOpenid);
    assert.strictEqual(f.nickname, '');
    assert.strictEqual(f.headimgurl, '');
    assert.strictEqual(f.sex, 0);
    assert.strictEqual(typeof f.subscribe_time, 'number');
    assert.ok(Number.isInteger(f.subscribe_time));
    assert.ok(Math.abs(f.subscribe_time - before) < 3600, `subscribe_time ${f.subscribe_time}`);
    assert.ok(Array.isArray(f.tagid_list));
    assert.strictEqual(typeof f.subscribe_scene, 'string');
    assert.match(f.unionid, /^o[A-Za-z0-9_-]{27}$/);

    const n = await info(p.base, { access_token: basic, openid: nOpenid });
    assert.strictEqual(n.subscribe, 0);
    assert.strictEqual(n.openid, nOpenid);
    assert.ok(!('nickname' in n) && !('subscribe_time' in n), JSON.stringify(n));

    assertErr(await info(p.base, { access_token: basic, openid: 'o' + 'A'.repeat(27) }), 40003, 'invalid openid');
    assertErr(await info(p.base, { access_token: basic, openid: 'garbage' }), 40003);
    // An openid of another app is not an openid of this one.
    assertErr(await info(p.base, { access_token: basic, openid: await openidOf(other, d.users[0]) }), 40003);
    assertErr(await info(p.base, { openid: fOpenid }), 41001, 'access_token missing');
    assertErr(await info(p.base, { access_token: '', openid: fOpenid }), 41001);
    assertErr(await info(p.base, { access_token: basic }), 41009);
    assertErr(await info(p.base, { access_token: 'garbage', openid: fOpenid }), 40001);

    // A web-authorization access_token is not a basic one.
    const [code] = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_userinfo');
    const web = await h.exchange(p.base, d.appid, d.secret, code);
    const e = await info(p.base, { access_token: web.access_token, openid: web.openid });
    assertErr(e, 40001);
    assert.match(e.errmsg, /^invalid credential, access_token is invalid or not latest/);
    assert.match(e.errmsg, / rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/);

    // Unfollowing takes effect at once.
    h.cli(['user', 'follow', '--db', d.db, d.users[0], d.appid, '--unfollow']);
    assert.strictEqual((await info(p.base, { access_token: basic, openid: fOpenid })).subscribe, 0);
  } finally {
    await p.stop();
  }
});

test('unknown /cgi-bin/ path → 40066 invalid url (no comma)', async () => {
  await h.withProvider({}, async (p) => {
    const r = await h.getJson(`${p.base}/cgi-bin/nope`);
    assert.strictEqual(r.status, 200);
    assertErr(r.body, 40066, 'invalid url');
    assert.match(r.body.errmsg, CGI_RID);
  });
});
