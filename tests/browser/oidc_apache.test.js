// oidc_apache.test.js — a real relying party in a real browser: Apache 2.4 with Debian's
// mod_auth_openidc protects a page; the gate (--oidc) is its OpenID Connect provider; Chromium
// logs in through the sandbox provider's consent page and comes back to the page, which shows
// the claims mod_auth_openidc validated. Refusing consent reaches Apache as access_denied.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const h = require('../integration/harness');
const { startGate } = require('../integration/gatekit');

const APACHE = '/usr/sbin/apache2';
const MODS = '/usr/lib/apache2/modules';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

// Apache in the foreground on port, from a configuration of its own in dir.
async function startApache(port, dir, gate, clientId, secret) {
  const site = `http://127.0.0.1:${port}`;
  fs.mkdirSync(path.join(dir, 'www/private'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'www/private/page.shtml'),
    '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Private</title></head><body><h1>Apache + mod_auth_openidc</h1>' +
    '<p id="sub"><!--#echo var="OIDC_CLAIM_sub" --></p><p id="name"><!--#echo encoding="none" var="OIDC_CLAIM_name" --></p>' +
    '<p id="user"><!--#echo var="REMOTE_USER" --></p></body></html>\n');
  fs.writeFileSync(path.join(dir, 'apache2.conf'), `
ServerRoot ${dir}
ServerName 127.0.0.1
Listen 127.0.0.1:${port}
PidFile ${dir}/apache2.pid
ErrorLog ${dir}/error.log
LogLevel warn auth_openidc:info
User nobody
Group nogroup
DefaultRuntimeDir ${dir}
LoadModule mpm_event_module ${MODS}/mod_mpm_event.so
LoadModule authn_core_module ${MODS}/mod_authn_core.so
LoadModule authz_core_module ${MODS}/mod_authz_core.so
LoadModule authz_user_module ${MODS}/mod_authz_user.so
LoadModule mime_module ${MODS}/mod_mime.so
LoadModule include_module ${MODS}/mod_include.so
LoadModule auth_openidc_module ${MODS}/mod_auth_openidc.so
TypesConfig /etc/mime.types
AddType text/html .shtml
AddOutputFilter INCLUDES .shtml
DocumentRoot ${dir}/www
<Directory ${dir}/www>
  Options +Includes
  Require all granted
</Directory>
OIDCProviderMetadataURL ${gate}/wxauth/.well-known/openid-configuration
OIDCClientID ${clientId}
OIDCClientSecret ${secret}
OIDCRedirectURI ${site}/private/redirect_uri
OIDCCryptoPassphrase ${'0123456789abcdef'.repeat(2)}
OIDCScope "openid profile"
OIDCPKCEMethod S256
OIDCRemoteUserClaim sub
OIDCSSLValidateServer Off
<Location /private>
  AuthType openid-connect
  Require valid-user
</Location>
`);
  const child = h.spawnServer(APACHE, ['-d', dir, '-f', path.join(dir, 'apache2.conf'), '-DFOREGROUND'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  await h.waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`apache2 exited ${child.exitCode}: ${err}`);
    try { await fetch(`${site}/`); return true; } catch { return false; }
  }, 10000, 'apache2 to listen');
  return {
    site, logs: () => err + (fs.existsSync(`${dir}/error.log`) ? fs.readFileSync(`${dir}/error.log`, 'utf8') : ''),
    stop: () => new Promise((r) => { if (child.exitCode !== null) return r(); child.once('exit', r); child.kill('SIGTERM'); }),
  };
}

test('Apache mod_auth_openidc logs a WeChat user in through the gate', { skip: h.needs(APACHE, `${MODS}/mod_auth_openidc.so`) }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxauth-apache-'));
  fs.chmodSync(dir, 0o755);
  const gport = await h.freePort();
  const gsite = `http://127.0.0.1:${gport}`;
  const d = h.makeDb({ domains: [`127.0.0.1:${gport}`], openAccount: 'acme' });
  const p = await h.startProvider(d.db);
  const store = h.freshStore() || path.join(dir, 'gate.db');
  let g, a, browser;
  try {
    g = await startGate(['--listen', `127.0.0.1:${gport}`, '--public-url', gsite, '--open-base', p.base,
      '--api-base', p.base, '--desktop', 'pass', '--db', store, '--oidc'],
    { WXAUTH_APPID: d.appid, WXAUTH_SECRET: d.secret });
    const aport = await h.freePort();
    const c = h.cliJson(['oidc', 'client', 'add', '--db', store, '--id', 'apache', '--name', 'Apache',
      '--redirect-uri', `http://127.0.0.1:${aport}/private/redirect_uri`, '--scopes', 'openid profile']);
    a = await startApache(aport, dir, gsite, 'apache', c.client_secret);
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS });
    const page = await (await browser.newContext({ viewport: { width: 390, height: 760 } })).newPage();
    await page.goto(`${a.site}/private/page.shtml`);
    assert.match(page.url(), /\/sandbox\/login/, 'Apache sent the browser to the gate, the gate to WeChat');
    await page.locator('li', { hasText: '小明' }).locator('button').click();
    assert.match(await page.content(), /获得你的公开信息/);
    await page.screenshot({ path: path.join(dir, 'consent.png') });
    await page.click('button:has-text("允许")');
    await page.waitForSelector('#sub');
    assert.strictEqual(new URL(page.url()).pathname, '/private/page.shtml');
    const sub = (await page.locator('#sub').innerText()).trim();
    assert.match(sub, /^o[A-Za-z0-9_-]{27}$/, 'the openid, as sub');
    assert.strictEqual((await page.locator('#user').innerText()).trim(), sub);
    assert.strictEqual((await page.locator('#name').innerText()).trim(), '小明😀');
    if (process.env.WXAUTH_SHOT) await page.screenshot({ path: process.env.WXAUTH_SHOT });
    // A second visit: Apache's own session, no new login.
    const before = (p.logs().match(/connect\/oauth2\/authorize/g) || []).length;
    await page.goto(`${a.site}/private/page.shtml`);
    assert.strictEqual((await page.locator('#sub').innerText()).trim(), sub);
    assert.strictEqual((p.logs().match(/connect\/oauth2\/authorize/g) || []).length, before);

    // Another browser whose user refuses: Apache is told access_denied (its error page), and the
    // user never sees a blank page.
    const other = await (await browser.newContext()).newPage();
    await other.goto(`${a.site}/private/page.shtml`);
    await other.locator('li', { hasText: '小明' }).locator('button').click();
    await other.click('button:has-text("拒绝")');
    assert.match(other.url(), /\/private\/redirect_uri\?error=access_denied/);
    assert.ok((await other.content()).length > 200, 'a page, not a blank one');
    const body = await other.content();
    assert.match(body, /access_denied/, "mod_auth_openidc's error page names the error");
    assert.match(body, /refused WeChat's consent/);
    await other.screenshot({ path: path.join(dir, 'denied.png') });
  } finally {
    if (browser) await browser.close();
    if (a) await a.stop();
    if (g) await g.stop();
    await p.stop();
  }
});
