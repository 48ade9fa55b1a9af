// admin_cli.test.js — the `wxauth app` / `wxauth user` commands (output, --json, exit codes 0/2/3),
// the admin API's bearer token (401 / 403), the test clock switch, `provider --check`, bad
// flags, and settings from WXAUTH_* variables and --config FILE.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./harness');

function tmpDb() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxauth-cli-'));
  return { dir, db: path.join(dir, 'cli.db') };
}

test('app add/list/show/rm/reset-secret, with and without --json', () => {
  const { db } = tmpDb();
  const add = h.cliRun(['app', 'add', '--db', db, '--name', '示例号', '--domain', 'www.a.example', '--domain', 'localhost:8080']);
  assert.strictEqual(add.status, 0, add.stderr);
  const appid = add.stdout.match(/^appid:\s+(wx[0-9a-f]{16})$/m)[1];
  const secret = add.stdout.match(/^secret:\s+([0-9a-f]{32})\b/m)[1];
  assert.match(add.stdout, /^name:\s+示例号$/m);
  assert.match(add.stdout, /^domains:\s+www\.a\.example,localhost:8080$/m);

  const j = h.cliJson(['app', 'add', '--db', db, '--name', 'Second', '--domain', 'b.example', '--open-account', 'acct',
    '--menu', '首页=https://b.example/home', '--https-only']);
  assert.match(j.appid, /^wx[0-9a-f]{16}$/);
  assert.match(j.secret, /^[0-9a-f]{32}$/);
  assert.strictEqual(j.name, 'Second');
  assert.deepStrictEqual(j.domains, ['b.example']);
  assert.strictEqual(j.open_account, 'acct');
  assert.deepStrictEqual(j.menu, ['首页=https://b.example/home']);
  assert.strictEqual(j.https_only, true);
  assert.strictEqual(j.kind, 'official_account');
  assert.strictEqual(typeof j.created, 'number');
  const web = h.cliJson(['app', 'add', '--db', db, '--name', 'Web', '--domain', 'c.example', '--website']);
  assert.strictEqual(web.kind, 'website');

  const list = h.cliRun(['app', 'list', '--db', db]);
  assert.strictEqual(list.status, 0);
  assert.strictEqual(list.stdout.trim().split('\n').length, 3);
  assert.match(list.stdout, new RegExp(`^${appid}\\s+示例号\\s+www\\.a\\.example,localhost:8080$`, 'm'));
  assert.ok(!list.stdout.includes(secret), 'list never shows a secret');
  const lj = h.cliJson(['app', 'list', '--db', db]);
  assert.deepStrictEqual(lj.map((a) => a.appid).sort(), [appid, j.appid, web.appid].sort());
  for (const a of lj) assert.ok(!('secret' in a));

  const show = h.cliRun(['app', 'show', '--db', db, appid]);
  assert.strictEqual(show.status, 0);
  assert.match(show.stdout, new RegExp(`^appid:\\s+${appid}$`, 'm'));
  assert.ok(!show.stdout.includes(secret) && !/secret/.test(show.stdout));
  const sj = h.cliJson(['app', 'show', '--db', db, j.appid]);
  assert.strictEqual(sj.appid, j.appid);
  assert.ok(!('secret' in sj));

  const reset = h.cliRun(['app', 'reset-secret', '--db', db, appid]);
  assert.strictEqual(reset.status, 0);
  const newSecret = reset.stdout.match(/^secret:\s+([0-9a-f]{32})\b/m)[1];
  assert.notStrictEqual(newSecret, secret);
  const rj = h.cliJson(['app', 'reset-secret', '--db', db, appid]);
  assert.match(rj.secret, /^[0-9a-f]{32}$/);
  assert.notStrictEqual(rj.secret, newSecret);

  const rm = h.cliRun(['app', 'rm', '--db', db, web.appid]);
  assert.strictEqual(rm.status, 0);
  assert.match(rm.stdout, new RegExp(`removed ${web.appid}`));
  assert.strictEqual(h.cliJson(['app', 'list', '--db', db]).length, 2);
  assert.strictEqual(h.cliRun(['app', 'show', '--db', db, web.appid]).status, 3);
});

test('user add (prints the id) / list / follow / snapshot', () => {
  const { db } = tmpDb();
  const app = h.cliJson(['app', 'add', '--db', db, '--name', 'A', '--domain', 'a.example']);
  const add = h.cliRun(['user', 'add', '--db', db, '--nickname', '小红🌸']);
  assert.strictEqual(add.status, 0, add.stderr);
  assert.match(add.stdout, /^\d+\n$/);
  const id = add.stdout.trim();
  const uj = h.cliJson(['user', 'add', '--db', db, '--nickname', 'Snap', '--snapshot']);
  assert.match(uj.id, /^\d+$/);
  assert.notStrictEqual(uj.id, id);
  assert.strictEqual(uj.nickname, 'Snap');
  assert.strictEqual(uj.is_snapshotuser, true);
  assert.strictEqual(uj.sex, 0);

  const list = h.cliRun(['user', 'list', '--db', db]);
  assert.strictEqual(list.status, 0);
  assert.match(list.stdout, new RegExp(`^${id}\\s+小红🌸$`, 'm'));
  assert.match(list.stdout, new RegExp(`^${uj.id}\\s+Snap\\s+\\(snapshot\\)$`, 'm'));
  const lj = h.cliJson(['user', 'list', '--db', db]);
  assert.deepStrictEqual(lj.map((u) => [u.id, u.nickname, u.is_snapshotuser]), [[id, '小红🌸', false], [uj.id, 'Snap', true]]);

  const f = h.cliRun(['user', 'follow', '--db', db, id, app.appid]);
  assert.strictEqual(f.status, 0, f.stderr);
  assert.match(f.stdout, /follows/);
  const uf = h.cliRun(['user', 'follow', '--db', db, id, app.appid, '--unfollow']);
  assert.strictEqual(uf.status, 0);
  assert.match(uf.stdout, /no longer follows/);

  assert.strictEqual(h.cliRun(['user', 'snapshot', '--db', db, id, 'on']).status, 0);
  assert.strictEqual(h.cliJson(['user', 'list', '--db', db])[0].is_snapshotuser, true);
  assert.strictEqual(h.cliRun(['user', 'snapshot', '--db', db, id, 'off']).status, 0);
  assert.strictEqual(h.cliJson(['user', 'list', '--db', db])[0].is_snapshotuser, false);
});

test('bad input exits 2 with a clear message; unknown ids exit 3', () => {
  const { db } = tmpDb();
  const app = h.cliJson(['app', 'add', '--db', db, '--name', 'A', '--domain', 'a.example']);
  const uid = h.cliJson(['user', 'add', '--db', db, '--nickname', 'u']).id;
  const before = h.cli(['app', 'list', '--db', db, '--json']);
  const cases = [
    [['app', 'add', '--db', db, '--name', 'N'], /domain/],
    [['app', 'add', '--db', db, '--name', 'N', '--domain', 'https://a.example'], /domain 'https:\/\/a\.example'/],
    [['app', 'add', '--db', db, '--name', 'N', '--domain', 'a.example/path'], /domain/],
    [['app', 'add', '--db', db, '--name', 'N', '--domain', 'a.example.'], /domain/],
    [['app', 'add', '--db', db, '--name', 'N', '--domain', 'a.example', '--domain', 'b.example', '--domain', 'c.example'], /domain/],
    [['app', 'add', '--db', db, '--domain', 'a.example'], /name/],
    [['app', 'add', '--db', db, '--name', 'N', '--domain', 'a.example', '--menu', 'no-equals'], /menu/],
    [['app', 'add', '--db', db, '--name', 'N', '--domain', 'a.example', '--open-account', 'bad acct!'], /open-account/],
    [['app', 'add', '--db', db, '--name', 'N', '--domain'], /needs a value/],
    [['app', 'add', '--db', db, '--name', 'N', '--domain', 'a.example', '--bogus'], /unknown option --bogus/],
    [['app', 'frobnicate', '--db', db], /unknown subcommand/],
    [['app', 'show', '--db', db], /APPID/],
    [['app', 'list'], /--db/],
    [['user', 'add', '--db', db, '--nickname', ''], /nickname/],
    [['user', 'add', '--db', db], /nickname/],
    [['user', 'follow', '--db', db, 'abc', app.appid], /not a user id/],
    [['user', 'follow', '--db', db, uid], /USER and APPID/],
    [['user', 'snapshot', '--db', db, uid, 'maybe'], /on\|off/],
    [['bogus-command'], /unknown command/],
  ];
  for (const [args, msg] of cases) {
    const r = h.cliRun(args);
    assert.strictEqual(r.status, 2, `${args.join(' ')}: exit ${r.status}, ${r.stderr}`);
    assert.match(r.stderr, msg, args.join(' '));
    assert.strictEqual(r.stdout.includes('secret'), false);
  }
  assert.strictEqual(h.cli(['app', 'list', '--db', db, '--json']), before, 'nothing was added');
  for (const args of [['app', 'show', '--db', db, 'wx0000000000000000'], ['app', 'rm', '--db', db, 'wx0000000000000000'],
    ['app', 'reset-secret', '--db', db, 'wx0000000000000000'], ['user', 'follow', '--db', db, '999', app.appid],
    ['user', 'follow', '--db', db, uid, 'wx0000000000000000'], ['user', 'snapshot', '--db', db, '999', 'on']]) {
    const r = h.cliRun(args);
    assert.strictEqual(r.status, 3, `${args.join(' ')}: exit ${r.status}, ${r.stderr}`);
    assert.match(r.stderr, /no (app|user)/);
  }
});

test('admin API: bearer token required (401), off without --admin-token (403)', async () => {
  await h.withProvider({}, async (p, d) => {
    const noAuth = await fetch(p.base + '/admin/apps');
    assert.strictEqual(noAuth.status, 401);
    assert.match(noAuth.headers.get('www-authenticate'), /^Bearer/);
    assert.strictEqual(typeof (await noAuth.json()).error, 'string');
    const wrong = await fetch(p.base + '/admin/apps', { headers: { Authorization: 'Bearer ' + h.ADMIN + 'x' } });
    assert.strictEqual(wrong.status, 401);
    const basic = await fetch(p.base + '/admin/apps', { headers: { Authorization: 'Basic ' + Buffer.from('a:' + h.ADMIN).toString('base64') } });
    assert.strictEqual(basic.status, 401);
    const issue = await fetch(p.base + '/admin/issue', { method: 'POST', body: JSON.stringify({ appid: d.appid, user: d.users[0], kind: 'code' }) });
    assert.strictEqual(issue.status, 401);
    const ok = await h.admin(p.base, 'GET', '/admin/apps');
    assert.strictEqual(ok.status, 200);
    assert.strictEqual(ok.body.apps.length, 1);
    assert.strictEqual(ok.body.apps[0].appid, d.appid);
    assert.ok(!('secret' in ok.body.apps[0]));
    // The admin API and the CLI see the same data.
    const created = await h.admin(p.base, 'POST', '/admin/apps', { name: 'API', domains: ['api.example'] });
    assert.strictEqual(created.status, 201);
    assert.match(created.body.secret, /^[0-9a-f]{32}$/);
    assert.ok(h.cliJson(['app', 'list', '--db', d.db]).some((a) => a.appid === created.body.appid));
    const badApp = await h.admin(p.base, 'POST', '/admin/apps', { name: 'API', domains: ['https://x'] });
    assert.strictEqual(badApp.status, 400);
    const u = await h.admin(p.base, 'POST', '/admin/users', { nickname: 'API 用户' });
    assert.strictEqual(u.status, 201);
    assert.ok(h.cliJson(['user', 'list', '--db', d.db]).some((x) => x.id === u.body.id));
    assert.strictEqual((await h.admin(p.base, 'GET', '/admin/apps/wx0000000000000000')).status, 404);
    // An appid with anything after it is not that app: no prefix match, no truncation.
    for (const [m, path] of [['DELETE', `/admin/apps/${created.body.appid}x`], ['POST', `/admin/apps/${created.body.appid}0/reset-secret`],
      ['GET', `/admin/apps/${created.body.appid}x`]]) {
      assert.strictEqual((await h.admin(p.base, m, path)).status, 404, `${m} ${path}`);
    }
    assert.strictEqual((await h.admin(p.base, 'GET', `/admin/apps/${created.body.appid}`)).status, 200);
    assert.strictEqual((await h.admin(p.base, 'GET', '/admin/nope')).status, 404);
    const bad = await fetch(p.base + '/admin/users', { method: 'POST', headers: { Authorization: 'Bearer ' + h.ADMIN }, body: '{not json' });
    assert.strictEqual(bad.status, 400);
  });
  await h.withProvider({}, async (p) => {
    const r = await fetch(p.base + '/admin/apps', { headers: { Authorization: 'Bearer ' + h.ADMIN } });
    assert.strictEqual(r.status, 403);
    assert.match((await r.json()).error, /admin-token/);
    assert.strictEqual((await fetch(p.base + '/admin/apps')).status, 403);
  }, [], { adminToken: false });
});

test('POST /admin/clock is refused (403) without --test-clock', async () => {
  await h.withProvider({}, async (p) => {
    const r = await h.admin(p.base, 'POST', '/admin/clock', { advance: 301 });
    assert.strictEqual(r.status, 403);
    assert.match(r.body.error, /test-clock/);
    const g = await h.admin(p.base, 'GET', '/admin/clock');
    assert.strictEqual(g.status, 200);
    assert.strictEqual(g.body.offset, 0);
    assert.strictEqual(g.body.test_clock, false);
  }, [], { testClock: false });
  await h.withProvider({}, async (p) => {
    assert.strictEqual((await h.admin(p.base, 'POST', '/admin/clock', { advance: -5 })).status, 400);
    assert.strictEqual((await h.admin(p.base, 'POST', '/admin/clock', { advance: 'x' })).status, 400);
    const r = await h.admin(p.base, 'POST', '/admin/clock', { advance: 60 });
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.body.offset, 60);
    assert.strictEqual(r.body.test_clock, true);
  });
});

test('provider --check exits 0; a bad flag or value exits 2', () => {
  const d = h.makeDb();
  const ok = h.cliRun(['provider', '--check', '--db', d.db]);
  assert.strictEqual(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /ok/);
  for (const args of [['provider', '--bogus'], ['provider', '--db', d.db, '--rate-limit', 'many', '--check'],
    ['provider', '--db', d.db, '--rate-limit', '0', '--check'], ['provider', '--db', d.db, '--listen', 'nope', '--check'],
    ['provider', '--db', d.db, '--log-level', 'loud', '--check'], ['provider', '--db', d.db, '--admin-token', 'short', '--check'],
    ['provider', '--db', d.db, 'extra-arg', '--check']]) {
    const r = h.cliRun(args);
    assert.strictEqual(r.status, 2, `${args.join(' ')}: exit ${r.status} ${r.stderr}`);
    assert.match(r.stderr, /^wxauth provider: /);
  }
  const help = h.cliRun(['provider', '--help']);
  assert.strictEqual(help.status, 0);
  assert.match(help.stdout, /--rate-limit/);
});

test('settings from WXAUTH_LISTEN / WXAUTH_DB and from --config FILE', async () => {
  const d = h.makeDb();
  const env = { WXAUTH_DB: d.db, WXAUTH_LISTEN: '127.0.0.1:0', WXAUTH_ADMIN_TOKEN: h.ADMIN };
  const p = await h.startProvider(null, [], { args: [], sandbox: true, testClock: false, adminToken: false, env });
  try {
    assert.strictEqual(p.host, '127.0.0.1');
    assert.notStrictEqual(p.port, 8700, 'WXAUTH_LISTEN (port 0), not the default 8700');
    const apps = await h.admin(p.base, 'GET', '/admin/apps');
    assert.strictEqual(apps.status, 200);
    assert.strictEqual(apps.body.apps[0].appid, d.appid, 'served the WXAUTH_DB database');
  } finally {
    await p.stop();
  }
  const cfg = path.join(d.dir, 'wxauth.conf');
  fs.writeFileSync(cfg, `# test config\ndb = ${d.db}\nlisten = 127.0.0.1:0\nadmin_token = ${h.ADMIN}\nrate-limit = 2\nsandbox = true\ntest_clock = true\n`);
  const p2 = await h.startProvider(null, [], { args: ['--config', cfg], sandbox: false, testClock: false, adminToken: false });
  try {
    const apps = await h.admin(p2.base, 'GET', '/admin/apps');
    assert.strictEqual(apps.status, 200);
    assert.strictEqual(apps.body.apps[0].appid, d.appid, 'served the database from the config file');
    // sandbox = true from the file: a plain browser is let through (to the sign-in page).
    await h.startOfMinute(p2.base);
    const r = await h.page(`${p2.base}/connect/oauth2/authorize?appid=${d.appid}&redirect_uri=${encodeURIComponent('http://localhost:9000/cb')}&response_type=code&scope=snsapi_base&state=s`);
    assert.strictEqual(r.status, 303);
    // rate-limit = 2 from the file: the second exchange in that minute is 45011.
    const codes = await h.issueCodes(p2.base, d.appid, d.users[0], 'snsapi_base', 2);
    assert.strictEqual(typeof (await h.exchange(p2.base, d.appid, d.secret, codes[0])).access_token, 'string');
    assert.strictEqual((await h.exchange(p2.base, d.appid, d.secret, codes[1])).errcode, 45011);
  } finally {
    await p2.stop();
  }
  // Flags override the file; a bad line in the file exits 2.
  const bad = path.join(d.dir, 'bad.conf');
  fs.writeFileSync(bad, 'no equals sign here\n');
  const r = h.cliRun(['provider', '--config', bad, '--check']);
  assert.strictEqual(r.status, 2);
  assert.match(r.stderr, /bad\.conf:1/);
  const listenBad = path.join(d.dir, 'listen.conf');
  fs.writeFileSync(listenBad, `db = ${d.db}\nlisten = not-an-address\n`);
  assert.strictEqual(h.cliRun(['provider', '--config', listenBad, '--check']).status, 2);
  const over = h.cliRun(['provider', '--config', listenBad, '--listen', '127.0.0.1:0', '--check']);
  assert.strictEqual(over.status, 0, over.stderr);
  const missing = h.cliRun(['provider', '--config', path.join(d.dir, 'nope.conf'), '--check']);
  assert.strictEqual(missing.status, 2);
  const env2 = h.cliRun(['provider', '--check'], { env: { ...process.env, WXAUTH_DB: d.db, WXAUTH_RATE_LIMIT: 'x' } });
  assert.strictEqual(env2.status, 2);
  assert.match(env2.stderr, /WXAUTH_RATE_LIMIT/);
});
