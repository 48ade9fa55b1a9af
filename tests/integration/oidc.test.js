// oidc.test.js — `wxauth gate --oidc`, the OpenID Connect provider, driven by a certified
// relying-party library (npm openid-client 6: discovery, code + PKCE, ID token validation,
// userinfo, refresh) and by hand where a library would refuse to misbehave: a code used twice,
// redirect_uri not registered, PKCE that does not match, the user's refusal, prompt, logout.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const h = require('./harness');
const { setup, signIn } = require('./gatekit');

const { Browser } = h;
const RP = 'http://127.0.0.1:1/cb'; // never fetched: the walk stops at it
const BYE = 'http://127.0.0.1:1/bye';

let oc;
async function client() {
  oc ||= await import('openid-client');
  return oc;
}

// A provider and a gate with --oidc on a store of its own, and clients registered on it.
async function withOidc(fn, extra = []) {
  const dir = require('node:fs').mkdtempSync(path.join(require('node:os').tmpdir(), 'wxauth-oidc-'));
  const store = h.freshStore() || path.join(dir, 'gate.db');
  await setup(async (ctx) => {
    const add = (args) => h.cliJson(['oidc', 'client', 'add', '--db', store, '--redirect-uri', RP, ...args]);
    await fn({ ...ctx, store, add, issuer: `${ctx.site}/wxauth` });
  }, ['--db', store, '--oidc', ...extra]);
}

// Follows the user agent from url through the gate's login and WeChat's (the sandbox's) consent
// until it is sent to the relying party; action: allow or deny at the consent page.
async function walk(b, p, url, { action = 'allow', stopAt = RP } = {}) {
  let r = await b.go(url);
  for (let i = 0; i < 12; i++) {
    if (r.status === 200 && /<form/.test(r.body) && r.body.includes('action')) {
      const f = h.parseForm(r.body);
      r = await b.post(new URL(f.action, p.base).href, { ...f.fields, action });
      continue;
    }
    if (![302, 303].includes(r.status)) return { res: r };
    if (r.location.startsWith(stopAt)) return { res: r, url: new URL(r.location) };
    const next = new URL(r.location, url).href;
    url = next;
    r = await b.go(next);
  }
  throw new Error('too many redirects');
}

const noTls = () => ({ execute: [oc.allowInsecureRequests] });

test('openid-client: discovery, code + PKCE, ID token, userinfo, refresh (client_secret_basic)', async () => {
  await client();
  await withOidc(async ({ d, p, site, add, issuer }) => {
    const c = add(['--id', 'grafana', '--name', 'Grafana', '--subject', 'unionid']);
    assert.match(c.client_secret, /^[A-Za-z0-9_-]{43}$/);
    const config = await oc.discovery(new URL(issuer), 'grafana', c.client_secret, undefined, noTls());
    const meta = config.serverMetadata();
    assert.strictEqual(meta.issuer, issuer);
    assert.deepStrictEqual(meta.code_challenge_methods_supported, ['S256']);
    assert.ok(meta.id_token_signing_alg_values_supported.includes('RS256'));
    const jwks = await (await fetch(meta.jwks_uri.replace('localhost', '127.0.0.1'))).json();
    assert.ok(jwks.keys.some((k) => k.kty === 'RSA' && k.alg === 'RS256' && k.use === 'sig' && !k.d));
    assert.ok(jwks.keys.some((k) => k.kty === 'EC' && k.crv === 'P-256' && !k.d));

    const verifier = oc.randomPKCECodeVerifier(), nonce = oc.randomNonce(), state = oc.randomState();
    const url = oc.buildAuthorizationUrl(config, {
      redirect_uri: RP, scope: 'openid profile email offline_access', nonce, state,
      code_challenge: await oc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const b = new Browser();
    await signIn(b, p, d.users[0]);
    const { url: back } = await walk(b, p, url.href);
    assert.strictEqual(back.searchParams.get('state'), state);
    assert.strictEqual(back.searchParams.get('iss'), issuer);
    const tokens = await oc.authorizationCodeGrant(config, back, {
      pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state, idTokenExpected: true });
    const claims = tokens.claims();
    assert.strictEqual(claims.iss, issuer);
    assert.strictEqual(claims.aud, 'grafana');
    assert.strictEqual(claims.nonce, nonce);
    assert.strictEqual(claims.name, '小明😀');
    assert.match(claims.picture, /^http/);
    assert.deepStrictEqual(claims.amr, ['wechat']);
    assert.ok(claims.auth_time <= claims.iat && claims.iat <= Date.now() / 1000 + 1);
    assert.strictEqual(claims.exp - claims.iat, 600);
    // sub: the unionid, as this client asked (the app has an open account).
    assert.strictEqual(claims.sub, claims.wechat_unionid);
    assert.match(claims.wechat_openid, /^o[A-Za-z0-9_-]{27}$/);
    assert.strictEqual(tokens.token_type.toLowerCase(), 'bearer');
    assert.strictEqual(tokens.scope, 'openid profile offline_access', '"email" is left out, not refused');
    assert.ok(tokens.refresh_token);

    const ui = await oc.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.strictEqual(ui.name, '小明😀');
    assert.strictEqual(ui.wechat_openid, claims.wechat_openid);

    const again = await oc.refreshTokenGrant(config, tokens.refresh_token);
    assert.notStrictEqual(again.refresh_token, tokens.refresh_token, 'rotated');
    assert.strictEqual(again.claims().sub, claims.sub);
    assert.strictEqual(again.claims().auth_time, claims.auth_time);
    assert.strictEqual(again.claims().nonce, undefined);
    // The rotated-out refresh token, used again: refused, and the grant it belongs to revoked.
    await assert.rejects(oc.refreshTokenGrant(config, tokens.refresh_token), (e) => e.error === 'invalid_grant');
    await assert.rejects(oc.fetchUserInfo(config, again.access_token, claims.sub),
      (e) => e.cause?.[0]?.parameters?.error === 'invalid_token');
    await assert.rejects(oc.refreshTokenGrant(config, again.refresh_token), (e) => e.error === 'invalid_grant');

    // Single sign-on: a second client logs in without WeChat being asked again.
    const c2 = add(['--id', 'gitea', '--alg', 'ES256', '--scopes', 'openid']);
    const config2 = await oc.discovery(new URL(issuer), 'gitea', c2.client_secret, undefined, noTls());
    const v2 = oc.randomPKCECodeVerifier();
    const url2 = oc.buildAuthorizationUrl(config2, { redirect_uri: RP, scope: 'openid profile', state: 's2',
      code_challenge: await oc.calculatePKCECodeChallenge(v2), code_challenge_method: 'S256' });
    const before = (p.logs().match(/connect\/oauth2\/authorize/g) || []).length;
    const r2 = await b.go(url2.href);
    assert.strictEqual(r2.status, 302);
    assert.ok(r2.location.startsWith(RP + '?code='), 'straight back with a code');
    const t2 = await oc.authorizationCodeGrant(config2, new URL(r2.location), { pkceCodeVerifier: v2, expectedState: 's2' });
    assert.strictEqual(t2.claims().sub, claims.wechat_openid, 'sub is the openid by default');
    assert.strictEqual(t2.claims().name, undefined, 'gitea may not have profile');
    assert.strictEqual(t2.refresh_token, undefined, 'no offline_access, no refresh token');
    assert.strictEqual((p.logs().match(/connect\/oauth2\/authorize/g) || []).length, before);
    const [header] = t2.id_token.split('.');
    assert.strictEqual(JSON.parse(Buffer.from(header, 'base64url')).alg, 'ES256');
  });
});

test('public client (PKCE, no secret) and client_secret_post; the code is single-use and a replay revokes', async () => {
  await client();
  await withOidc(async ({ d, p, add, issuer }) => {
    const spa = add(['--id', 'spa', '--public']);
    assert.strictEqual(spa.client_secret, undefined);
    const config = await oc.discovery(new URL(issuer), 'spa', undefined, oc.None(), noTls());
    const b = new Browser();
    await signIn(b, p, d.users[0]);
    // A public client without PKCE: refused, back at its redirect_uri.
    const noPkce = await walk(b, p, oc.buildAuthorizationUrl(config, { redirect_uri: RP, scope: 'openid', state: 'x1' }).href);
    assert.strictEqual(noPkce.url.searchParams.get('error'), 'invalid_request');
    assert.strictEqual(noPkce.url.searchParams.get('state'), 'x1');
    const verifier = oc.randomPKCECodeVerifier();
    const url = oc.buildAuthorizationUrl(config, { redirect_uri: RP, scope: 'openid offline_access', state: 's',
      code_challenge: await oc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const { url: back } = await walk(b, p, url.href);
    const code = back.searchParams.get('code');
    const token = (fields, headers = {}) => fetch(`${issuer}/oidc/token`.replace('localhost', '127.0.0.1'), {
      method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(fields) }).then(async (r) => ({ status: r.status, headers: r.headers, body: await r.json() }));
    const base = { grant_type: 'authorization_code', code, redirect_uri: RP, client_id: 'spa' };
    // The wrong verifier, and a redirect_uri that differs: refused.
    let r = await token({ ...base, code_verifier: oc.randomPKCECodeVerifier() });
    assert.strictEqual(r.status, 400);
    assert.strictEqual(r.body.error, 'invalid_grant');
    // (that try used the code up: a fresh one for the rest)
    const { url: back2 } = await walk(b, p, url.href);
    const code2 = back2.searchParams.get('code');
    r = await token({ ...base, code: code2, redirect_uri: RP + '/', code_verifier: verifier });
    assert.strictEqual(r.body.error, 'invalid_grant');
    const { url: back3 } = await walk(b, p, url.href);
    const code3 = back3.searchParams.get('code');
    r = await token({ ...base, code: code3, code_verifier: verifier });
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.headers.get('cache-control'), 'no-store');
    const first = r.body;
    assert.ok(first.id_token && first.access_token && first.refresh_token);
    const info = () => fetch(`${issuer}/oidc/userinfo`.replace('localhost', '127.0.0.1'), {
      headers: { Authorization: `Bearer ${first.access_token}` } });
    assert.strictEqual((await info()).status, 200);
    // The same code again: invalid_grant, and what it gave is revoked (RFC 6749 §4.1.2).
    r = await token({ ...base, code: code3, code_verifier: verifier });
    assert.strictEqual(r.body.error, 'invalid_grant');
    const revoked = await info();
    assert.strictEqual(revoked.status, 401);
    assert.match(revoked.headers.get('www-authenticate'), /invalid_token/);
    r = await token({ grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: 'spa' });
    assert.strictEqual(r.body.error, 'invalid_grant');

    // client_secret_post; a wrong secret is invalid_client with 401.
    const post = add(['--id', 'post']);
    const { url: back4 } = await walk(b, p, `${issuer}/oidc/authorize?client_id=post&redirect_uri=${encodeURIComponent(RP)}&response_type=code&scope=openid`);
    const pbase = { grant_type: 'authorization_code', code: back4.searchParams.get('code'), redirect_uri: RP, client_id: 'post' };
    r = await token({ ...pbase, client_secret: post.client_secret + 'x' });
    assert.strictEqual(r.status, 401);
    assert.strictEqual(r.body.error, 'invalid_client');
    const { url: back5 } = await walk(b, p, `${issuer}/oidc/authorize?client_id=post&redirect_uri=${encodeURIComponent(RP)}&response_type=code&scope=openid`);
    r = await token({ ...pbase, code: back5.searchParams.get('code'), client_secret: post.client_secret });
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.body.scope, 'openid');
    // Another client's code: invalid_grant.
    const { url: back6 } = await walk(b, p, `${issuer}/oidc/authorize?client_id=post&redirect_uri=${encodeURIComponent(RP)}&response_type=code&scope=openid`);
    r = await token({ ...base, code: back6.searchParams.get('code'), code_verifier: verifier });
    assert.strictEqual(r.body.error, 'invalid_grant');
    r = await token({ grant_type: 'password', client_id: 'post', client_secret: post.client_secret });
    assert.strictEqual(r.body.error, 'unsupported_grant_type');
  });
});

test('errors: unknown client and unregistered redirect_uri get a page, the rest go back to the client', async () => {
  await withOidc(async ({ d, p, add, issuer }) => {
    add(['--id', 'app']);
    const b = new Browser();
    const az = (q) => b.go(`${issuer}/oidc/authorize?${new URLSearchParams(q)}`);
    const ok = { client_id: 'app', redirect_uri: RP, response_type: 'code', scope: 'openid', state: 'st' };
    let r = await az({ ...ok, client_id: 'nobody' });
    assert.strictEqual(r.status, 400);
    assert.match(r.body, /Unknown client/);
    r = await az({ ...ok, redirect_uri: 'https://evil.example.com/cb' });
    assert.strictEqual(r.status, 400, 'never a redirect to an unregistered URI');
    assert.strictEqual(r.location, null);
    r = await az({ ...ok, redirect_uri: RP + '?x=1' });
    assert.strictEqual(r.status, 400, 'compared exactly');
    const err = async (q) => {
      const res = await az(q);
      assert.strictEqual(res.status, 302);
      const u = new URL(res.location);
      assert.ok(res.location.startsWith(RP));
      assert.strictEqual(u.searchParams.get('iss'), null, 'iss only with codes (mod_auth_openidc 2.4)');
      return [u.searchParams.get('error'), u.searchParams.get('state')];
    };
    assert.deepStrictEqual(await err({ ...ok, response_type: 'token' }), ['unsupported_response_type', 'st']);
    assert.deepStrictEqual(await err({ ...ok, scope: 'profile' }), ['invalid_scope', 'st']);
    assert.deepStrictEqual(await err({ ...ok, code_challenge: 'x'.repeat(43), code_challenge_method: 'plain' }), ['invalid_request', 'st']);
    assert.deepStrictEqual(await err({ ...ok, request: 'eyJ' }), ['request_not_supported', 'st']);
    assert.deepStrictEqual(await err({ ...ok, prompt: 'none login' }), ['invalid_request', 'st']);
    assert.deepStrictEqual(await err({ ...ok, nonce: 'n'.repeat(256) }), ['invalid_request', 'st']);
    assert.deepStrictEqual(await err({ ...ok, max_age: '-1' }), ['invalid_request', 'st']);
    // prompt=none without a session: login_required, no login page.
    assert.deepStrictEqual(await err({ ...ok, prompt: 'none' }), ['login_required', 'st']);
    // Limits: a state of 512 bytes passes (to the login), 513 does not.
    r = await az({ ...ok, state: 's'.repeat(512) });
    assert.strictEqual(r.status, 302);
    assert.match(r.location, /\/wxauth\/start\?/);
    assert.deepStrictEqual(await err({ ...ok, state: 's'.repeat(513) }), ['invalid_request', null]);
    // The token endpoint's errors are JSON, as RFC 6749 §5.2 gives them.
    const t = await fetch(`${issuer}/oidc/token`.replace('localhost', '127.0.0.1'), { method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'grant_type=authorization_code&code=x' });
    assert.strictEqual(t.status, 401);
    assert.strictEqual((await t.json()).error, 'invalid_client');
    const g = await fetch(`${issuer}/oidc/token`.replace('localhost', '127.0.0.1'));
    assert.strictEqual(g.status, 405);
  });
});

test('the WeChat user who refuses consent sends the client error=access_denied; prompt=login logs in again', async () => {
  await withOidc(async ({ d, p, add, issuer }) => {
    add(['--id', 'app']);
    const b = new Browser();
    await signIn(b, p, d.users[0]);
    const q = (extra) => `${issuer}/oidc/authorize?${new URLSearchParams({ client_id: 'app', redirect_uri: RP,
      response_type: 'code', scope: 'openid profile', state: 'st', ...extra })}`;
    const refused = await walk(b, p, q(), { action: 'deny' });
    assert.strictEqual(refused.url.searchParams.get('error'), 'access_denied');
    assert.strictEqual(refused.url.searchParams.get('state'), 'st');
    const ok = await walk(b, p, q());
    assert.ok(ok.url.searchParams.get('code'));
    // A session now: prompt=login still goes through WeChat once more, then comes back with a code.
    const before = (p.logs().match(/connect\/oauth2\/authorize/g) || []).length;
    const again = await walk(b, p, q({ prompt: 'login' }));
    assert.ok(again.url.searchParams.get('code'));
    assert.ok((p.logs().match(/connect\/oauth2\/authorize/g) || []).length > before, 'a new WeChat login');
    // prompt=none with the session: a code at once.
    const silent = await b.go(q({ prompt: 'none' }));
    assert.ok(silent.location.startsWith(RP + '?code='));
  }, ['--log-level', 'info']);
});

test('RP-initiated logout: post_logout_redirect_uri checked, the session ended', async () => {
  await client();
  await withOidc(async ({ d, p, site, add, issuer }) => {
    const c = add(['--id', 'app', '--post-logout-uri', BYE]);
    const config = await oc.discovery(new URL(issuer), 'app', c.client_secret, undefined, noTls());
    const b = new Browser();
    await signIn(b, p, d.users[0]);
    const { url: back } = await walk(b, p, `${issuer}/oidc/authorize?client_id=app&redirect_uri=${encodeURIComponent(RP)}&response_type=code&scope=openid&state=a`);
    const tokens = await oc.authorizationCodeGrant(config, back, { expectedState: 'a' });
    assert.strictEqual((await b.go(`${site}/wxauth/auth`)).status, 202);
    // Not registered: a page, no redirect, still signed in.
    let r = await b.go(`${issuer}/oidc/logout?${new URLSearchParams({ id_token_hint: tokens.id_token, post_logout_redirect_uri: RP })}`);
    assert.strictEqual(r.status, 400);
    assert.strictEqual((await b.go(`${site}/wxauth/auth`)).status, 202);
    // Without id_token_hint: a confirmation first (any site could link here).
    r = await b.go(`${issuer}/oidc/logout?client_id=app&post_logout_redirect_uri=${encodeURIComponent(BYE)}`);
    assert.strictEqual(r.status, 200);
    assert.match(r.body, /<form method="post"/);
    assert.strictEqual((await b.go(`${site}/wxauth/auth`)).status, 202);
    const url = oc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token, post_logout_redirect_uri: BYE, state: 'bye1' });
    r = await b.go(url.href);
    assert.strictEqual(r.status, 302);
    assert.strictEqual(r.location, `${BYE}?state=bye1`);
    assert.strictEqual((await b.go(`${site}/wxauth/auth`)).status, 401);
    // The confirmation form works too.
    await walk(b, p, `${issuer}/oidc/authorize?client_id=app&redirect_uri=${encodeURIComponent(RP)}&response_type=code&scope=openid`);
    r = await b.go(`${issuer}/oidc/logout`);
    const f = h.parseForm(r.body);
    r = await b.post(new URL(f.action, site).href, f.fields);
    assert.strictEqual(r.status, 200);
    assert.match(r.body, /Signed out/);
    assert.strictEqual((await b.go(`${site}/wxauth/auth`)).status, 401);
  });
});

test('the CLI: limits and errors are clear', async () => {
  await withOidc(async ({ store, add }) => {
    const run = (args) => h.cliRun(['oidc', ...args, '--db', store]);
    let r = run(['client', 'add', '--redirect-uri', 'https://x/#frag']);
    assert.strictEqual(r.status, 2);
    assert.match(r.stderr, /fragment/);
    r = run(['client', 'add', '--redirect-uri', RP, '--id', 'a b']);
    assert.strictEqual(r.status, 2);
    const many = Array.from({ length: 9 }, (_, i) => ['--redirect-uri', `${RP}${i}`]).flat();
    r = run(['client', 'add', ...many]);
    assert.strictEqual(r.status, 2);
    assert.match(r.stderr, /at most 8/);
    add(['--id', 'dup']);
    r = run(['client', 'add', '--redirect-uri', RP, '--id', 'dup']);
    assert.strictEqual(r.status, 2);
    assert.match(r.stderr, /exists/);
    r = run(['client', 'rm', 'nobody']);
    assert.strictEqual(r.status, 3);
    const keys = h.cliJson(['oidc', 'key', 'list', '--db', store]);
    assert.deepStrictEqual(keys.map((k) => k.alg).sort(), ['ES256', 'RS256'], 'the gate made one of each');
  });
});
