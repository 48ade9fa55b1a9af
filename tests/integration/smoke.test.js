// smoke.test.js — the harness itself works: the provider starts, answers /healthz, and a code
// minted through the admin API is exchanged once.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const h = require('./harness');

test('provider starts, health, one exchange', async () => {
  const d = h.makeDb();
  const p = await h.startProvider(d.db);
  try {
    const r = await h.get(p.base + '/healthz');
    assert.strictEqual(r.status, 200);
    const [code] = await h.issueCodes(p.base, d.appid, d.users[0]);
    const t = await h.exchange(p.base, d.appid, d.secret, code);
    assert.match(t.openid, /^o[A-Za-z0-9_-]{27}$/);
    assert.strictEqual(t.expires_in, 7200);
    assert.strictEqual(t.scope, 'snsapi_base');
  } finally {
    await p.stop();
  }
});
