// token.test.js — GET /sns/oauth2/access_token: the success body, unionid and is_snapshotuser,
// every errcode in WeChat's order, codes that must not be consumed, replay (40163 + revocation),
// expiry, the errmsg rid format, JSON headers, injection, concurrency and fault injection.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const h = require('./harness');

function tokenUrl(base, q) {
  const s = Object.entries(q).filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return `${base}/sns/oauth2/access_token?${s}`;
}

async function call(base, q) {
  return (await h.getJson(tokenUrl(base, q))).body;
}

function q(d, code, over = {}) {
  return { appid: d.appid, secret: d.secret, code, grant_type: 'authorization_code', ...over };
}

function assertErr(body, errcode) {
  assert.strictEqual(body.errcode, errcode, JSON.stringify(body));
  assert.deepStrictEqual(Object.keys(body).sort(), ['errcode', 'errmsg']);
  assert.strictEqual(typeof body.errmsg, 'string');
}

async function snsAuth(base, token, openid) {
  const u = `${base}/sns/auth?access_token=${encodeURIComponent(token)}&openid=${encodeURIComponent(openid)}`;
  return (await h.getJson(u)).body;
}

async function refresh(base, appid, rt) {
  const u = `${base}/sns/oauth2/refresh_token?appid=${appid}&grant_type=refresh_token&refresh_token=${encodeURIComponent(rt)}`;
  return (await h.getJson(u)).body;
}

test('code exchange: fields and types', async () => {
  await h.withProvider({}, async (p, d) => {
    const [code] = await h.issueCodes(p.base, d.appid, d.users[0]);
    const r = await h.getJson(tokenUrl(p.base, q(d, code)));
    assert.strictEqual(r.status, 200);
    const t = r.body;
    assert.deepStrictEqual(Object.keys(t).sort(), ['access_token', 'expires_in', 'openid', 'refresh_token', 'scope']);
    assert.strictEqual(typeof t.access_token, 'string');
    assert.ok(t.access_token.length >= 27, 'access_token carries >= 160 bits');
    assert.strictEqual(t.expires_in, 7200);
    assert.strictEqual(typeof t.refresh_token, 'string');
    assert.ok(t.refresh_token.length >= 27);
    assert.notStrictEqual(t.refresh_token, t.access_token);
    assert.strictEqual(typeof t.openid, 'string');
    assert.strictEqual(t.openid.length, 28);
    assert.strictEqual(t.openid[0], 'o');
    assert.match(t.openid, /^o[A-Za-z0-9_-]{27}$/);
    assert.strictEqual(t.scope, 'snsapi_base');
    assert.ok(!('unionid' in t) && !('is_snapshotuser' in t) && !('errcode' in t));
    assert.deepStrictEqual(await snsAuth(p.base, t.access_token, t.openid), { errcode: 0, errmsg: 'ok' });
    // The openid is the one /admin/issue announced, and stable for the user.
    const again = await h.admin(p.base, 'POST', '/admin/issue', { appid: d.appid, user: d.users[0], kind: 'code' });
    assert.strictEqual(again.body.openid, t.openid);
  });
});

test('unionid only for snsapi_userinfo with an open account; same across apps', async () => {
  const d = h.makeDb({ openAccount: 'openacct1', users: ['甲', '乙'] });
  const app2 = h.addApp(d.db, { openAccount: 'openacct1' });
  const plain = h.addApp(d.db, {});
  const p = await h.startProvider(d.db);
  try {
    const get = async (app, user, scope) => {
      const [code] = await h.issueCodes(p.base, app.appid, user, scope);
      return h.exchange(p.base, app.appid, app.secret, code);
    };
    const a1 = await get(d.app, d.users[0], 'snsapi_userinfo');
    const a2 = await get(app2, d.users[0], 'snsapi_userinfo');
    assert.strictEqual(typeof a1.unionid, 'string');
    assert.match(a1.unionid, /^o[A-Za-z0-9_-]{27}$/);
    assert.strictEqual(a1.unionid, a2.unionid, 'one unionid across the open account');
    assert.notStrictEqual(a1.openid, a2.openid, 'openids differ per app');
    assert.notStrictEqual(a1.unionid, a1.openid);
    const other = await get(d.app, d.users[1], 'snsapi_userinfo');
    assert.notStrictEqual(other.unionid, a1.unionid);
    const base = await get(d.app, d.users[0], 'snsapi_base');
    assert.ok(!('unionid' in base), 'no unionid for snsapi_base');
    assert.strictEqual(base.openid, a1.openid);
    const noAcct = await get(plain, d.users[0], 'snsapi_userinfo');
    assert.ok(!('unionid' in noAcct), 'no unionid without an open account');
    assert.strictEqual(noAcct.scope, 'snsapi_userinfo');
  } finally {
    await p.stop();
  }
});

test('is_snapshotuser: 1 only for a snapshot user', async () => {
  await h.withProvider({ users: ['真人', '快照'], snapshot: [1] }, async (p, d) => {
    const [c1] = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_userinfo');
    const [c2] = await h.issueCodes(p.base, d.appid, d.users[1], 'snsapi_userinfo');
    const t1 = await h.exchange(p.base, d.appid, d.secret, c1);
    const t2 = await h.exchange(p.base, d.appid, d.secret, c2);
    assert.ok(!('is_snapshotuser' in t1));
    assert.strictEqual(t2.is_snapshotuser, 1);
    assert.strictEqual(typeof t2.access_token, 'string');
  });
});

test('errcodes in order: appid first, then secret, code, grant_type', async () => {
  await h.withProvider({}, async (p, d) => {
    const [code] = await h.issueCodes(p.base, d.appid, d.users[0]);
    assertErr(await call(p.base, q(d, code, { appid: undefined })), 41002);
    assertErr(await call(p.base, q(d, code, { appid: '' })), 41002);
    assertErr(await call(p.base, q(d, code, { appid: 'wx0000000000000000' })), 40013);
    assertErr(await call(p.base, { appid: 'wx0000000000000000' }), 40013);
    assertErr(await call(p.base, { appid: 'nope' }), 40013);
    assertErr(await call(p.base, q(d, code, { secret: undefined })), 41004);
    assertErr(await call(p.base, q(d, code, { secret: '' })), 41004);
    assertErr(await call(p.base, { appid: d.appid }), 41004);
    assertErr(await call(p.base, q(d, code, { secret: 'f'.repeat(32) })), 40125);
    assertErr(await call(p.base, q(d, code, { secret: d.secret.slice(0, -1) })), 40125);
    assertErr(await call(p.base, q(d, code, { secret: 'f'.repeat(32), code: undefined })), 40125);
    assertErr(await call(p.base, q(d, undefined)), 41008);
    assertErr(await call(p.base, q(d, '')), 41008);
    assertErr(await call(p.base, q(d, 'garbage')), 40029);
    assertErr(await call(p.base, q(d, '0'.repeat(32))), 40029);
    const dup = `${p.base}/sns/oauth2/access_token?appid=${d.appid}&secret=${d.secret}&code=${code}&code=${code}&grant_type=authorization_code`;
    assertErr((await h.getJson(dup)).body, 40029);
    const dupSecret = `${p.base}/sns/oauth2/access_token?appid=${d.appid}&secret=${d.secret}&secret=x&code=${code}&grant_type=authorization_code`;
    assertErr((await h.getJson(dupSecret)).body, 40125);
    assertErr(await call(p.base, q(d, code, { grant_type: undefined })), 40002);
    assertErr(await call(p.base, q(d, code, { grant_type: 'client_credential' })), 40002);
    assertErr(await call(p.base, q(d, code, { grant_type: 'refresh_token' })), 40002);
    // None of the failures consumed the code; the right secret still works.
    const t = await call(p.base, q(d, code));
    assert.strictEqual(typeof t.access_token, 'string', JSON.stringify(t));
  });
});

test("a code of app A with app B's credentials: 40029, not consumed", async () => {
  const d = h.makeDb();
  const b = h.addApp(d.db, {});
  const p = await h.startProvider(d.db);
  try {
    const [code] = await h.issueCodes(p.base, d.appid, d.users[0]);
    assertErr(await call(p.base, { appid: b.appid, secret: b.secret, code, grant_type: 'authorization_code' }), 40029);
    assertErr(await call(p.base, { appid: b.appid, secret: b.secret, code, grant_type: 'authorization_code' }), 40029);
    // App B's secret with app A's appid is a wrong secret.
    assertErr(await call(p.base, q(d, code, { secret: b.secret })), 40125);
    const t = await call(p.base, q(d, code));
    assert.strictEqual(typeof t.access_token, 'string', JSON.stringify(t));
  } finally {
    await p.stop();
  }
});

test('replay: 40163, then the first tokens are revoked', async () => {
  await h.withProvider({}, async (p, d) => {
    const [code] = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_userinfo');
    const t = await call(p.base, q(d, code));
    assert.strictEqual(typeof t.access_token, 'string');
    assert.deepStrictEqual(await snsAuth(p.base, t.access_token, t.openid), { errcode: 0, errmsg: 'ok' });
    assertErr(await call(p.base, q(d, code)), 40163);
    assertErr(await snsAuth(p.base, t.access_token, t.openid), 40001);
    assertErr(await refresh(p.base, d.appid, t.refresh_token), 40030);
    // A third try is still refused, and never mints anything.
    const third = await call(p.base, q(d, code));
    assert.ok(third.errcode === 40163 || third.errcode === 40029, JSON.stringify(third));
  });
});

test('expiry: a code is dead after 300 s (40029); alive at 299 s', async () => {
  await h.withProvider({}, async (p, d) => {
    const [c1, c2] = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_base', 2);
    await h.clock(p.base, 290);
    const t = await call(p.base, q(d, c1));
    assert.strictEqual(typeof t.access_token, 'string', JSON.stringify(t));
    await h.clock(p.base, 11);
    assertErr(await call(p.base, q(d, c2)), 40029);
  });
});

test('errmsg format, HTTP 200 on errors, JSON headers', async () => {
  await h.withProvider({}, async (p, d) => {
    await h.clock(p.base, 1000);
    const { now, offset } = await h.clock(p.base);
    assert.strictEqual(offset, 1000);
    assert.ok(Math.abs(now - (Math.floor(Date.now() / 1000) + 1000)) <= 5);
    const r = await h.getJson(tokenUrl(p.base, q(d, 'garbage')));
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.strictEqual(r.headers.get('cache-control'), 'no-store');
    assert.strictEqual(r.headers.get('pragma'), 'no-cache');
    const m = r.body.errmsg.match(/^invalid code, rid: ([0-9a-f]{8})-([0-9a-f]{8})-([0-9a-f]{8})$/);
    assert.ok(m, r.body.errmsg);
    const t = parseInt(m[1], 16);
    const want = Math.floor(Date.now() / 1000) + offset;
    assert.ok(Math.abs(t - want) <= 5, `rid time ${t} vs ${want}`);
    const r2 = await h.getJson(tokenUrl(p.base, q(d, 'garbage')));
    assert.notStrictEqual(r2.body.errmsg, r.body.errmsg, 'rids differ');
    const expect = { 41002: 'appid missing', 40013: 'invalid appid', 41004: 'appsecret missing',
      40125: 'invalid appsecret', 41008: 'missing code', 40002: 'invalid grant_type' };
    const bodies = [
      await call(p.base, {}),
      await call(p.base, { appid: 'wx0000000000000000' }),
      await call(p.base, { appid: d.appid }),
      await call(p.base, { appid: d.appid, secret: 'x' }),
      await call(p.base, { appid: d.appid, secret: d.secret }),
      await call(p.base, { appid: d.appid, secret: d.secret, code: 'c' }),
    ];
    for (const b of bodies) {
      assert.match(b.errmsg, new RegExp(`^${expect[b.errcode]}, rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$`), JSON.stringify(b));
    }
    // Success bodies have the same JSON headers.
    const [code] = await h.issueCodes(p.base, d.appid, d.users[0]);
    const ok = await h.getJson(tokenUrl(p.base, q(d, code)));
    assert.strictEqual(ok.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.strictEqual(ok.headers.get('cache-control'), 'no-store');
    assert.strictEqual(ok.headers.get('pragma'), 'no-cache');
  });
});

test("injection: appid=' OR '1'='1 → 40013 and the database unchanged", async () => {
  await h.withProvider({}, async (p, d) => {
    const before = h.cli(['app', 'list', '--db', d.db, '--json']);
    for (const appid of ["' OR '1'='1", "wx'; DROP TABLE apps; --", "wx0000000000' OR 1=1", '%', "wx00000000'--x"]) {
      assertErr(await call(p.base, { appid, secret: "' OR '1'='1", code: "' OR '1'='1", grant_type: 'authorization_code' }), 40013);
    }
    assertErr(await call(p.base, q(d, "' OR '1'='1")), 40029);
    assertErr(await call(p.base, q(d, 'x', { secret: "' OR '1'='1" })), 40125);
    assert.strictEqual(h.cli(['app', 'list', '--db', d.db, '--json']), before);
    assert.strictEqual(JSON.parse(before).length, 1);
  });
});

test('50 concurrent exchanges of one code: exactly one success', async () => {
  await h.withProvider({}, async (p, d) => {
    const [code] = await h.issueCodes(p.base, d.appid, d.users[0]);
    const all = await Promise.all(Array.from({ length: 50 }, () => call(p.base, q(d, code))));
    const ok = all.filter((b) => typeof b.access_token === 'string');
    const failed = all.filter((b) => b.errcode !== undefined);
    assert.strictEqual(ok.length, 1, JSON.stringify(all.map((b) => b.errcode)));
    assert.strictEqual(failed.length, 49);
    for (const b of failed) assert.ok(b.errcode === 40163 || b.errcode === 40029, JSON.stringify(b));
    assert.ok(failed.some((b) => b.errcode === 40163));
  });
});

test('fault injection: errcode -1 twice, then normal; 45011; delay_ms', async () => {
  await h.withProvider({}, async (p, d) => {
    const [code, code2, code3] = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_base', 3);
    const f = await h.admin(p.base, 'POST', '/admin/faults', { endpoint: 'sns/oauth2/access_token', errcode: -1, count: 2 });
    assert.strictEqual(f.status, 200);
    assert.strictEqual(f.body.faults.length, 1);
    assert.strictEqual(f.body.faults[0].count, 2);
    for (let i = 0; i < 2; i++) {
      const b = await call(p.base, q(d, code));
      assertErr(b, -1);
      assert.match(b.errmsg, /^system error, rid: /);
    }
    const t = await call(p.base, q(d, code));
    assert.strictEqual(typeof t.access_token, 'string', JSON.stringify(t));
    assert.deepStrictEqual((await h.admin(p.base, 'GET', '/admin/faults')).body.faults, []);

    await h.admin(p.base, 'POST', '/admin/faults', { endpoint: 'sns/oauth2/access_token', errcode: 45011, count: 1 });
    const b = await call(p.base, q(d, code2));
    assertErr(b, 45011);
    assert.match(b.errmsg, /^api minute-quota reach limit, must slower, retry next minute, rid: /);
    assert.strictEqual(typeof (await call(p.base, q(d, code2))).access_token, 'string');

    await h.admin(p.base, 'POST', '/admin/faults', { endpoint: 'sns/oauth2/access_token', delay_ms: 300, count: 1 });
    const slow = await call(p.base, q(d, code3));
    assert.strictEqual(typeof slow.access_token, 'string', JSON.stringify(slow));

    // A fault on another endpoint leaves this one alone; bad fault specs are refused.
    assert.strictEqual((await h.admin(p.base, 'POST', '/admin/faults', { endpoint: 'nope', errcode: -1 })).status, 400);
    assert.strictEqual((await h.admin(p.base, 'POST', '/admin/faults', { endpoint: 'sns/auth', count: 0 })).status, 400);
  });
});

test('rate limit on the token endpoint: 45011 past --rate-limit', async () => {
  await h.withProvider({}, async (p, d) => {
    await h.startOfMinute(p.base);
    const codes = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_base', 3);
    for (const c of codes.slice(0, 2)) assert.strictEqual(typeof (await call(p.base, q(d, c))).access_token, 'string');
    assertErr(await call(p.base, q(d, codes[2])), 45011);
    await h.clock(p.base, 60);
    assert.strictEqual(typeof (await call(p.base, q(d, codes[2]))).access_token, 'string');
  }, ['--rate-limit', '2']);
});
