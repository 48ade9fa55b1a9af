// authorize.test.js — GET /connect/oauth2/authorize and the consent form: silent snsapi_base,
// the snsapi_userinfo consent page (allow, deny, replayed and foreign tickets), silent
// userinfo for followers entering from the account's menu, every error page (never a
// redirect), page security headers, the WeChat-client check and the 10009 rate limit.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const h = require('./harness');

const GOOD = 'www.good.example';
const CB = `https://${GOOD}/cb`;

function params(appid, over = {}) {
  return { appid, redirect_uri: CB, response_type: 'code', scope: 'snsapi_base', state: 'STATE123', ...over };
}

// Asserts a redirect to redirect_uri carrying a code and the state; returns the URL object.
function assertCodeRedirect(r, prefix, state) {
  assert.strictEqual(r.status, 302, `expected 302, got ${r.status}: ${r.body}`);
  assert.ok(r.location, 'Location header');
  assert.ok(r.location.startsWith(prefix), `${r.location} starts with ${prefix}`);
  const u = new URL(r.location);
  assert.match(u.searchParams.get('code'), /^[0-9A-Za-z_-]{20,}$/);
  assert.strictEqual(u.searchParams.get('state'), state);
  return u;
}

// An error page: given status, no Location, and (when errcode is given) the errcode shown.
function assertErrorPage(r, errcode, status = 400) {
  assert.strictEqual(r.status, status, `status for ${errcode}: ${r.body.slice(0, 300)}`);
  assert.strictEqual(r.location, null, 'an error page never redirects');
  assert.match(r.headers.get('content-type'), /^text\/html/);
  if (errcode === null) assert.strictEqual(h.pageErrcode(r.body), null);
  else if (errcode !== undefined) {
    assert.strictEqual(h.pageErrcode(r.body), errcode);
    assert.ok(r.body.includes(`errcode: ${errcode}`));
  }
}

function assertPageHeaders(r) {
  assert.strictEqual(r.headers.get('x-frame-options'), 'DENY');
  const csp = r.headers.get('content-security-policy');
  assert.ok(csp, 'CSP header');
  assert.match(csp, /frame-ancestors 'none'/);
  assert.ok(!csp.includes('unsafe-inline'), 'no unsafe-inline in CSP');
  assert.strictEqual(r.headers.get('referrer-policy'), 'no-referrer');
  assert.strictEqual(r.headers.get('cache-control'), 'no-store');
}

async function consent(p, d, cookie, over = {}) {
  const r = await h.page(h.authorizeUrl(p.base, params(d.appid, { scope: 'snsapi_userinfo', ...over })), cookie);
  assert.strictEqual(r.status, 200, r.body.slice(0, 300));
  assert.strictEqual(r.location, null);
  return r;
}

test('snsapi_base is a silent 302 with code and state; existing query kept', async () => {
  await h.withProvider({ domains: [GOOD] }, async (p, d) => {
    const cookie = await h.login(p.base, d.users[0]);
    const r = await h.page(h.authorizeUrl(p.base, params(d.appid)), cookie);
    assertCodeRedirect(r, `${CB}?code=`, 'STATE123');
    assert.strictEqual(r.headers.get('cache-control'), 'no-store');

    const withQuery = `${CB}?x=1&y=two`;
    const r2 = await h.page(h.authorizeUrl(p.base, params(d.appid, { redirect_uri: withQuery })), cookie);
    const u = assertCodeRedirect(r2, `${withQuery}&code=`, 'STATE123');
    assert.strictEqual(u.searchParams.get('x'), '1');
    assert.strictEqual(u.searchParams.get('y'), 'two');

    // The code works at the token endpoint and says snsapi_base.
    const t = await h.exchange(p.base, d.appid, d.secret, u.searchParams.get('code'));
    assert.strictEqual(t.scope, 'snsapi_base');
    assert.match(t.openid, /^o[A-Za-z0-9_-]{27}$/);
  });
});

test('not signed in: 303 to /sandbox/login?next=<the authorize URL>', async () => {
  await h.withProvider({ domains: [GOOD] }, async (p, d) => {
    const url = h.authorizeUrl(p.base, params(d.appid));
    const r = await h.page(url);
    assert.strictEqual(r.status, 303);
    assert.ok(r.location.startsWith('/sandbox/login?next='), r.location);
    const next = decodeURIComponent(r.location.slice('/sandbox/login?next='.length));
    assert.strictEqual(next, url.slice(p.base.length).replace('#wechat_redirect', ''));
  });
});

test('snsapi_userinfo: consent page; allow → 302 with code and state', async () => {
  await h.withProvider({ domains: [GOOD] }, async (p, d) => {
    const cookie = await h.login(p.base, d.users[0]);
    const r = await consent(p, d, cookie);
    assert.match(r.headers.get('content-type'), /^text\/html; charset=utf-8/);
    assertPageHeaders(r);
    assert.ok(r.body.includes('允许'), 'allow button');
    assert.ok(r.body.includes('拒绝'), 'deny button');
    assert.ok(r.body.includes('小明😀'), 'the signed-in user is shown');
    const f = h.parseForm(r.body);
    assert.strictEqual(f.method, 'post');
    assert.strictEqual(f.action, '/connect/oauth2/authorize/confirm');
    assert.ok(f.fields.ticket && f.fields.ticket.length > 20, 'hidden ticket');
    assert.strictEqual(f.fields.redirect_uri, CB);
    assert.deepStrictEqual(f.buttons.map((b) => b.value).sort(), ['allow', 'deny']);
    const a = await h.postForm(p.base + f.action, { ...f.fields, action: 'allow' }, cookie);
    const u = assertCodeRedirect(a, `${CB}?code=`, 'STATE123');
    const t = await h.exchange(p.base, d.appid, d.secret, u.searchParams.get('code'));
    assert.strictEqual(t.scope, 'snsapi_userinfo');
  });
});

test('deny → 302 to redirect_uri?state=STATE with no code', async () => {
  await h.withProvider({ domains: [GOOD] }, async (p, d) => {
    const cookie = await h.login(p.base, d.users[0]);
    const f = h.parseForm((await consent(p, d, cookie)).body);
    const r = await h.postForm(p.base + f.action, { ...f.fields, action: 'deny' }, cookie);
    assert.strictEqual(r.status, 302);
    assert.strictEqual(r.location, `${CB}?state=STATE123`);
    assert.strictEqual(new URL(r.location).searchParams.get('code'), null);
  });
});

test('the same ticket posted twice: the second is refused', async () => {
  await h.withProvider({ domains: [GOOD] }, async (p, d) => {
    const cookie = await h.login(p.base, d.users[0]);
    const f = h.parseForm((await consent(p, d, cookie)).body);
    const first = await h.postForm(p.base + f.action, { ...f.fields, action: 'allow' }, cookie);
    assert.strictEqual(first.status, 302);
    const second = await h.postForm(p.base + f.action, { ...f.fields, action: 'allow' }, cookie);
    assertErrorPage(second, undefined, 400);
    // deny with the used ticket is refused too: no redirect of any kind.
    const third = await h.postForm(p.base + f.action, { ...f.fields, action: 'deny' }, cookie);
    assert.strictEqual(third.location, null);
    assert.ok(third.status >= 400);
  });
});

test('a ticket posted by another signed-in user → 403; tampered ticket → 403', async () => {
  await h.withProvider({ domains: [GOOD], users: ['甲', '乙'] }, async (p, d) => {
    const a = await h.login(p.base, d.users[0]);
    const b = await h.login(p.base, d.users[1]);
    const f = h.parseForm((await consent(p, d, a)).body);
    const r = await h.postForm(p.base + f.action, { ...f.fields, action: 'allow' }, b);
    assertErrorPage(r, undefined, 403);
    const noCookie = await h.postForm(p.base + f.action, { ...f.fields, action: 'allow' });
    assertErrorPage(noCookie, undefined, 403);
    const t = f.fields.ticket;
    const tampered = t.slice(0, 10) + (t[10] === 'A' ? 'B' : 'A') + t.slice(11);
    const r2 = await h.postForm(p.base + f.action, { ...f.fields, ticket: tampered, action: 'allow' }, a);
    assertErrorPage(r2, undefined, 403);
    // A ticket is bound to its request: another redirect_uri is refused.
    const r3 = await h.postForm(p.base + f.action,
      { ...f.fields, redirect_uri: `https://${GOOD}/other`, action: 'allow' }, a);
    assertErrorPage(r3, undefined, 403);
    // The untouched ticket still works for its owner.
    const ok = await h.postForm(p.base + f.action, { ...f.fields, action: 'allow' }, a);
    assert.strictEqual(ok.status, 302);
  });
});

test('follower entering from the menu: snsapi_userinfo is silent; non-follower gets consent', async () => {
  const menuUrl = `https://${GOOD}/menu`;
  const d = h.makeDb({ domains: [GOOD], menu: [`首页=${menuUrl}`], users: ['关注者', '路人'] });
  h.cli(['user', 'follow', '--db', d.db, d.users[0], d.appid]);
  const p = await h.startProvider(d.db);
  try {
    const session = await h.login(p.base, d.users[0]);
    // Without the entry marker a follower still sees the consent page.
    const plain = await h.page(h.authorizeUrl(p.base, params(d.appid, { scope: 'snsapi_userinfo' })), session);
    assert.strictEqual(plain.status, 200);
    assert.ok(plain.body.includes('允许'));

    const e = await h.page(`${p.base}/sandbox/enter?appid=${d.appid}&item=0`, session);
    assert.strictEqual(e.status, 303);
    assert.strictEqual(e.location, menuUrl);
    const entry = e.headers.get('set-cookie').split(';')[0];
    assert.match(entry, /^wxentry=/);
    const cookie = `${session}; ${entry}`;
    const r = await h.page(h.authorizeUrl(p.base, params(d.appid, { scope: 'snsapi_userinfo' })), cookie);
    const u = assertCodeRedirect(r, `${CB}?code=`, 'STATE123');
    const t = await h.exchange(p.base, d.appid, d.secret, u.searchParams.get('code'));
    assert.strictEqual(t.scope, 'snsapi_userinfo');

    // The follower stops following: the same entry cookie no longer makes it silent.
    const un = await h.admin(p.base, 'POST', `/admin/users/${d.users[0]}/follow`, { appid: d.appid, follow: false });
    assert.strictEqual(un.status, 200);
    const r2 = await h.page(h.authorizeUrl(p.base, params(d.appid, { scope: 'snsapi_userinfo' })), cookie);
    assert.strictEqual(r2.status, 200);
    assert.strictEqual(r2.location, null);
    assert.ok(r2.body.includes('允许') && r2.body.includes('ticket'));

    // A non-follower cannot get the marker, and with the follower's marker still gets consent.
    const other = await h.login(p.base, d.users[1]);
    const e2 = await h.page(`${p.base}/sandbox/enter?appid=${d.appid}&item=0`, other);
    assert.strictEqual(e2.status, 403);
    assert.strictEqual(e2.location, null);
    const r3 = await h.page(h.authorizeUrl(p.base, params(d.appid, { scope: 'snsapi_userinfo' })), `${other}; ${entry}`);
    assert.strictEqual(r3.status, 200);
    assert.ok(r3.body.includes('允许'));
  } finally {
    await p.stop();
  }
});

test('error pages: every one without a redirect, with its errcode', async () => {
  const d = h.makeDb({ domains: [GOOD] });
  const web = h.addApp(d.db, { domains: [GOOD], website: true });
  const httpsApp = h.addApp(d.db, { domains: [GOOD], httpsOnly: true });
  const p = await h.startProvider(d.db);
  try {
    const cookie = await h.login(p.base, d.users[0]);
    const go = (over, app = d.appid) => h.page(h.authorizeUrl(p.base, params(app, over)), cookie);
    const cases = [
      ['appid missing', { appid: undefined }, 10012],
      ['appid empty', { appid: '' }, 10012],
      ['unknown appid', { appid: 'wx0000000000000000' }, 40013],
      ['appid of another length', { appid: 'wx12' }, 40013],
      ['website app', { appid: web.appid }, 10016],
      ['redirect_uri missing', { redirect_uri: undefined }, 10011],
      ['redirect_uri empty', { redirect_uri: '' }, 10011],
      ['wrong host', { redirect_uri: 'https://evil.example/cb' }, 10003],
      ['subdomain', { redirect_uri: `https://a.${GOOD}/cb` }, 10003],
      ['parent domain', { redirect_uri: 'https://good.example/cb' }, 10003],
      ['suffix lookalike', { redirect_uri: `https://${GOOD}.evil.example/cb` }, 10003],
      ['userinfo @', { redirect_uri: `https://user@${GOOD}/cb` }, 10003],
      ['userinfo with the evil host', { redirect_uri: `https://${GOOD}@evil.example/cb` }, 10003],
      ['backslash', { redirect_uri: `https://evil.example\\@${GOOD}/cb` }, 10003],
      ['backslash path', { redirect_uri: `https://evil.example\\${GOOD}/cb` }, 10003],
      ['fragment', { redirect_uri: `${CB}#frag` }, 10003],
      ['trailing dot', { redirect_uri: `https://${GOOD}./cb` }, 10003],
      ['other port', { redirect_uri: `https://${GOOD}:8443/cb` }, 10003],
      ['javascript scheme', { redirect_uri: 'javascript:alert(1)//www.good.example' }, 10003],
      ['scheme-relative', { redirect_uri: `//${GOOD}/cb` }, 10003],
      ['control character', { redirect_uri: `https://${GOOD}/c\nb` }, 10003],
      ['https-only app refuses http', { appid: httpsApp.appid, redirect_uri: `http://${GOOD}/cb` }, 10003],
      ['response_type wrong', { response_type: 'token' }, null],
      ['response_type missing', { response_type: undefined }, null],
      ['scope empty', { scope: '' }, 10010],
      ['scope missing', { scope: undefined }, 10010],
      ['bad scope', { scope: 'snsapi_login' }, 10005],
      ['state empty', { state: '' }, 10013],
      ['state 129 chars', { state: 'a'.repeat(129) }, null],
      ['state with -', { state: 'abc-def' }, null],
      ['state with space', { state: 'abc def' }, null],
    ];
    for (const [name, over, errcode] of cases) {
      const r = await go(over);
      try {
        assertErrorPage(r, errcode);
        assertPageHeaders(r);
      } catch (e) {
        e.message = `${name}: ${e.message}`;
        throw e;
      }
    }
    // An error page escapes what it reflects and shows the message.
    const st = await go({ state: 'a'.repeat(129) });
    assert.ok(st.body.includes('state参数过长'));
    const dom = await go({ redirect_uri: 'https://evil.example/cb' });
    assert.ok(dom.body.includes('redirect_uri域名与后台配置不一致'));

    // A duplicated parameter is refused (either value could be the attacker's).
    const dupUrl = `${p.base}/connect/oauth2/authorize?appid=${d.appid}&redirect_uri=${encodeURIComponent(CB)}` +
      `&redirect_uri=${encodeURIComponent('https://evil.example/cb')}&response_type=code&scope=snsapi_base&state=S`;
    assertErrorPage(await h.page(dupUrl, cookie), undefined);
    const dupState = `${p.base}/connect/oauth2/authorize?appid=${d.appid}&redirect_uri=${encodeURIComponent(CB)}` +
      '&response_type=code&scope=snsapi_base&state=A&state=B';
    assertErrorPage(await h.page(dupState, cookie), undefined);

    // The same rules hold when not signed in: the error page comes before the sign-in.
    const anon = await h.page(h.authorizeUrl(p.base, params(d.appid, { redirect_uri: 'https://evil.example/cb' })));
    assertErrorPage(anon, 10003);
  } finally {
    await p.stop();
  }
});

test('accepted redirect_uri forms: default port, host case, http, state absent', async () => {
  await h.withProvider({ domains: [GOOD] }, async (p, d) => {
    const cookie = await h.login(p.base, d.users[0]);
    const go = (over) => h.page(h.authorizeUrl(p.base, params(d.appid, over)), cookie);
    for (const ruri of [`https://${GOOD}:443/cb`, `http://${GOOD}:80/cb`, `http://${GOOD}/cb`,
      `https://WWW.Good.Example/cb`, `https://${GOOD}`, `https://${GOOD}/a/b?c=%40d`]) {
      const r = await go({ redirect_uri: ruri });
      assert.strictEqual(r.status, 302, `${ruri}: ${r.body.slice(0, 200)}`);
      assert.ok(r.location.startsWith(ruri), `${r.location} keeps ${ruri}`);
    }
    const max = 'Ab9'.repeat(42) + 'xy'; // 128 bytes
    assertCodeRedirect(await go({ state: max }), `${CB}?code=`, max);

    const r = await go({ state: undefined });
    assert.strictEqual(r.status, 302);
    const u = new URL(r.location);
    assert.ok(u.searchParams.get('code'));
    assert.strictEqual(u.searchParams.has('state'), false);
    assert.ok(!r.location.includes('state'));

    // state absent on the consent path: the form carries none and the redirect has none.
    const c = await go({ scope: 'snsapi_userinfo', state: undefined });
    const f = h.parseForm(c.body);
    assert.strictEqual(f.fields.state, undefined);
    const a = await h.postForm(p.base + f.action, { ...f.fields, action: 'allow' }, cookie);
    assert.strictEqual(a.status, 302);
    assert.strictEqual(new URL(a.location).searchParams.has('state'), false);
    const dn = await go({ scope: 'snsapi_userinfo', state: undefined });
    const f2 = h.parseForm(dn.body);
    const deny = await h.postForm(p.base + f2.action, { ...f2.fields, action: 'deny' }, cookie);
    assert.strictEqual(deny.status, 302);
    assert.strictEqual(deny.location, CB);
  });
});

test('without --sandbox: a browser gets "请在微信客户端打开链接", MicroMessenger works', async () => {
  await h.withProvider({ domains: [GOOD] }, async (p, d) => {
    const url = h.authorizeUrl(p.base, params(d.appid));
    const chrome = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36';
    const wechat = 'Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 MicroMessenger/8.0.50.2600 NetType/WIFI';
    const cookie = await h.login(p.base, d.users[0]);
    const r = await h.page(url, cookie, { 'User-Agent': chrome });
    assert.strictEqual(r.location, null);
    assert.ok(r.body.includes('请在微信客户端打开链接'));
    assertPageHeaders(r);
    const r2 = await h.page(url, cookie, { 'User-Agent': wechat });
    assertCodeRedirect(r2, `${CB}?code=`, 'STATE123');
    const anon = await h.page(url, undefined, { 'User-Agent': wechat });
    assert.strictEqual(anon.status, 303);
    // Bad parameters still show their own error page first.
    const bad = await h.page(h.authorizeUrl(p.base, params(d.appid, { scope: '' })), cookie, { 'User-Agent': chrome });
    assertErrorPage(bad, 10010);
  }, [], { sandbox: false });
});

test('rate limit: with --rate-limit 3 the 4th authorize in a minute shows 10009', async () => {
  await h.withProvider({ domains: [GOOD] }, async (p, d) => {
    const cookie = await h.login(p.base, d.users[0]);
    await h.startOfMinute(p.base);
    const url = h.authorizeUrl(p.base, params(d.appid));
    for (let i = 0; i < 3; i++) {
      const r = await h.page(url, cookie);
      assert.strictEqual(r.status, 302, `call ${i + 1}`);
    }
    const r = await h.page(url, cookie);
    assert.strictEqual(r.location, null);
    assert.strictEqual(h.pageErrcode(r.body), 10009);
    assert.ok(r.body.includes('操作太频繁了，请稍后重试'));
    assertPageHeaders(r);
    // The next minute the counter starts again.
    await h.clock(p.base, 60);
    assert.strictEqual((await h.page(url, cookie)).status, 302);
  }, ['--rate-limit', '3']);
});

test('consent page escapes the app name and nickname; a ticket expires after 10 minutes', async () => {
  const d = h.makeDb({ domains: [GOOD], users: ['<script>alert("nick")</script>'] });
  const evil = h.addApp(d.db, { name: '<img src=x onerror=alert(1)>"\'&', domains: [GOOD] });
  const p = await h.startProvider(d.db);
  try {
    const cookie = await h.login(p.base, d.users[0]);
    const r = await h.page(h.authorizeUrl(p.base, params(evil.appid, { scope: 'snsapi_userinfo' })), cookie);
    assert.strictEqual(r.status, 200);
    assert.ok(!r.body.includes('<script>alert'), 'nickname escaped');
    assert.ok(!r.body.includes('<img src=x'), 'app name escaped');
    assert.ok(r.body.includes('&lt;script&gt;'));
    assert.ok(!/<script/i.test(r.body), 'no script element at all');
    const f = h.parseForm(r.body);
    await h.clock(p.base, 601);
    const late = await h.postForm(p.base + f.action, { ...f.fields, action: 'allow' }, cookie);
    assertErrorPage(late, undefined, 403);
    const r2 = await h.page(h.authorizeUrl(p.base, params(evil.appid, { scope: 'snsapi_userinfo' })), cookie);
    const f2 = h.parseForm(r2.body);
    const noAction = await h.postForm(p.base + f2.action, { ...f2.fields }, cookie);
    assertErrorPage(noAction, undefined, 400);
    const weird = await h.postForm(p.base + f2.action, { ...f2.fields, action: 'maybe' }, cookie);
    assertErrorPage(weird, undefined, 400);
    // A GET of the confirm URL is not a way in.
    const g = await h.page(`${p.base}${f2.action}?${new URLSearchParams({ ...f2.fields, action: 'allow' })}`, cookie);
    assert.strictEqual(g.status, 405);
    assert.strictEqual(g.location, null);
  } finally {
    await p.stop();
  }
});
