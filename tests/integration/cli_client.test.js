// cli_client.test.js — the relying-party CLI commands against a provider: url, exchange,
// refresh, userinfo, check, basic-token, explain; human and --json output; exit codes.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const h = require('./harness');

function run(args, env) {
  return h.cliRun(args, { env: { ...process.env, ...env } });
}

test('client commands against the provider', async () => {
  await h.withProvider({ openAccount: 'acme' }, async (p, d) => {
    const env = { WXAUTH_APPID: d.appid, WXAUTH_SECRET: d.secret, WXAUTH_API_BASE: p.base,
      WXAUTH_OPEN_BASE: p.base };
    const url = run(['url', '--redirect-uri', 'http://localhost:9000/cb?a=1', '--scope',
      'snsapi_userinfo', '--state', 'xyz', '--connect-redirect'], env);
    assert.strictEqual(url.status, 0);
    assert.strictEqual(url.stdout.trim(), `${p.base}/connect/oauth2/authorize?appid=${d.appid}` +
      '&redirect_uri=http%3A%2F%2Flocalhost%3A9000%2Fcb%3Fa%3D1&response_type=code' +
      '&scope=snsapi_userinfo&state=xyz&connect_redirect=1#wechat_redirect');
    assert.strictEqual(run(['url', '--redirect-uri', 'x', '--scope', 'snsapi_base'], env).status, 2);

    const [code, spent] = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_userinfo', 2);
    const ex = run(['exchange', code, '--json'], env);
    assert.strictEqual(ex.status, 0, ex.stderr);
    const t = JSON.parse(ex.stdout);
    assert.match(t.openid, /^o/);
    assert.ok(t.unionid);
    assert.strictEqual(run(['exchange', spent], env).status, 0);
    const again = run(['exchange', spent], env);
    assert.strictEqual(again.status, 3);
    assert.match(again.stderr, /40163/);
    assert.match(again.stderr, /oauth_code已使用/);

    const rf = run(['refresh', t.refresh_token, '--json'], env);
    assert.strictEqual(rf.status, 0, rf.stderr);
    const t2 = JSON.parse(rf.stdout);
    assert.strictEqual(t2.refresh_token, t.refresh_token);
    const ui = run(['userinfo', t2.access_token, t2.openid], env);
    assert.strictEqual(ui.status, 0, ui.stderr);
    assert.match(ui.stdout, /nickname +小明😀/);
    assert.strictEqual(run(['check', t2.access_token, t2.openid], env).status, 0);
    const bad = run(['check', 'garbage', t2.openid, '--json'], env);
    assert.strictEqual(bad.status, 3);
    assert.strictEqual(JSON.parse(bad.stdout).errcode, 40001);
    const bt = run(['basic-token', '--json'], env);
    assert.strictEqual(bt.status, 0);
    assert.strictEqual(JSON.parse(bt.stdout).expires_in, 7200);

    // Transport failure: exit 4 with a readable message.
    const down = run(['check', 'x', 'y', '--retries', '0'], { ...env, WXAUTH_API_BASE: 'http://127.0.0.1:9' });
    assert.strictEqual(down.status, 4);
    assert.match(down.stderr, /transport/);
    // Configuration errors: exit 2.
    assert.strictEqual(run(['exchange', 'c'], { WXAUTH_APPID: '' }).status, 2);
    assert.strictEqual(run(['exchange'], env).status, 2);
  });
});

test('explain', () => {
  const e = h.cliRun(['explain', '40029']);
  assert.strictEqual(e.status, 0);
  assert.match(e.stdout, /^40029 invalid code/);
  assert.match(e.stdout, /5 分钟/);
  const j = JSON.parse(h.cliRun(['explain', '48001', '--json']).stdout);
  assert.strictEqual(j.errcode, 48001);
  assert.match(j.hint_en, /snsapi_userinfo/);
  assert.strictEqual(h.cliRun(['explain', '99999']).status, 3);
  assert.strictEqual(h.cliRun(['explain', 'abc']).status, 2);
  assert.match(h.cliRun(['explain']).stdout, /40163 +code been used/);
});
