// robustness.test.js — bounded inputs (414, 413, 400 on bad framing and bad escapes), health and
// metrics, unknown API paths, what the log holds (one line per request, no secrets), and
// durability: every token a client received survives kill -9, and the master key survives
// restarts (openids stable).
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const h = require('./harness');
const fs = require('node:fs');
const net = require('node:net');

async function healthy(p) {
  const r = await h.get(p.base + '/healthz');
  assert.strictEqual(r.status, 200);
  assert.strictEqual(await r.text(), 'ok\n');
}

test('a 1 MiB query string → 414; the server keeps serving', async () => {
  await h.withProvider({}, async (p) => {
    const big = 'a='.padEnd(1024 * 1024, 'x');
    const r = await h.raw(p.port, `GET /sns/auth?${big} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    assert.strictEqual(r.status, 414, r.head);
    // Just over the 8 KiB target limit is refused too, just under is served.
    const over = await h.raw(p.port, `GET /sns/auth?a=${'x'.repeat(9000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.strictEqual(over.status, 414, over.head);
    const under = await h.getJson(`${p.base}/sns/auth?access_token=${'x'.repeat(4000)}&openid=o`);
    assert.strictEqual(under.status, 200);
    assert.strictEqual(under.body.errcode, 40001);
    await healthy(p);
    // Many concurrent oversized requests do not take it down either.
    await Promise.all(Array.from({ length: 20 }, () => h.raw(p.port, `GET /?${big} HTTP/1.1\r\nHost: x\r\n\r\n`)));
    await healthy(p);
  });
});

// Sends data on a fresh connection, half-closes after the last byte and resolves once the
// server closes: { text, err (the socket error's code, or null), ended (the server's FIN seen) }.
function sendAll(port, data) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks = [];
    let err = null;
    let ended = false;
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => { ended = true; });
    s.on('error', (e) => { err = e.code; });
    s.on('close', () => resolve({ text: Buffer.concat(chunks).toString('latin1'), err, ended }));
    s.write(data, () => s.end());
  });
}

// Sends 1 MiB of request target, waits for the server's answer, then goes on sending up to
// 12 MiB in 1 MiB writes: { text, err, sent } once the server has cut the connection.
function sendPastLimit(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks = [];
    const mib = 'x'.repeat(1024 * 1024);
    let err = null;
    let sent = 0;
    let more = false;
    const pump = () => {
      if (err || sent >= 12) return s.end();
      sent++;
      s.write(mib, (e) => { if (!e) pump(); });
    };
    s.on('data', (d) => {
      chunks.push(d);
      if (!more && /^HTTP\/1\.1 \d{3} /.test(Buffer.concat(chunks).toString('latin1'))) {
        more = true;
        pump();
      }
    });
    s.on('error', (e) => { err = e.code; });
    s.on('close', () => resolve({ text: Buffer.concat(chunks).toString('latin1'), err, sent }));
    s.write(`GET /?a=${mib}`);
  });
}

const openFds = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;

test('lingering close: a 414 answered before the client finished sending still reaches it', async () => {
  await h.withProvider({}, async (p) => {
    // 3 MiB of request target: far more than the kernel buffers, so the client is still
    // writing when the server answers. A server that closed with the input unread would send an
    // RST, and the client would lose the answer (EPIPE/ECONNRESET) in a tenth of these tries.
    const big = `GET /sns/auth?a=${'x'.repeat(3 * 1024 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`;
    await healthy(p); // whatever it opens for good (a store connection) is open before the count
    const before = openFds(p.child.pid);
    for (let i = 0; i < 30; i++) {
      const r = await sendAll(p.port, big);
      assert.strictEqual(r.err, null, `try ${i}: the client saw ${r.err}`);
      assert.match(r.text, /^HTTP\/1\.1 414 /, `try ${i}`);
      assert.ok(r.ended, `try ${i}: the server's end of stream`);
    }
    await healthy(p);
    await h.waitFor(async () => openFds(p.child.pid) <= before, 5000, 'lingering descriptors closed');
  });
});

test('lingering close is bounded: 4 MiB dropped, or 5 s for a client that never closes', async () => {
  await h.withProvider({}, async (p) => {
    // A client that keeps sending is cut off once 4 MiB are dropped (WX_HTTP_LINGER_BYTES):
    // it sees the 414, then the connection reset. The 414 is read before the rest is sent: a
    // client that is still writing when the reset comes may drop the unread answer (Node
    // destroys the socket on the write error), which says nothing about the server.
    const r = await sendPastLimit(p.port);
    assert.match(r.text, /^HTTP\/1\.1 414 /);
    assert.ok(r.err === 'EPIPE' || r.err === 'ECONNRESET', `a 12 MiB sender is cut off (${r.err})`);
    // A client that sends a little past the limit, reads the answer and then neither sends nor
    // closes: its descriptor lingers (one more open in the provider), and is closed after
    // WX_HTTP_LINGER_MS (5 s), not kept for the connection timeout (30 s).
    await healthy(p);
    const before = openFds(p.child.pid);
    const c = net.connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true });
    const answer = await new Promise((resolve) => {
      const chunks = [];
      c.on('data', (d) => chunks.push(d));
      c.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
      c.write(`GET /?a=${'x'.repeat(256 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    });
    const t0 = Date.now();
    assert.match(answer, /^HTTP\/1\.1 414 /);
    assert.strictEqual(openFds(p.child.pid), before + 1, 'the lingering descriptor');
    await h.waitFor(async () => openFds(p.child.pid) <= before, 15000, 'the lingering descriptor closed');
    const ms = Date.now() - t0;
    c.destroy();
    // (timed from the answer seen here, not the server's close: a loose lower bound)
    assert.ok(ms >= 2500, `closed after ${ms} ms, well before WX_HTTP_LINGER_MS`);
    await healthy(p);
  });
});

test('Content-Length with Transfer-Encoding → 400 and the connection closed', async () => {
  await h.withProvider({}, async (p) => {
    const body = 'user=1&next=%2F';
    const req = 'POST /sandbox/login HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
      'Content-Type: application/x-www-form-urlencoded\r\n' +
      `Content-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n` +
      `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n` +
      'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
    const r = await h.raw(p.port, req);
    assert.strictEqual(r.status, 400, r.head);
    assert.ok(r.closed, 'the server closed the connection');
    assert.ok(!/set-cookie/i.test(r.head), 'no session was made');
    assert.strictEqual((r.text.match(/HTTP\/1\.1 /g) || []).length, 1, 'the smuggled request was not answered');
    await healthy(p);
  });
});

test('a POST body over 64 KiB → 413; exactly at the limit is not 413', async () => {
  await h.withProvider({}, async (p) => {
    const big = 'user=1&next=' + 'x'.repeat(70 * 1024);
    const r = await h.raw(p.port, 'POST /sandbox/login HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
      `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${big.length}\r\n\r\n${big}`);
    assert.strictEqual(r.status, 413, r.head);
    // Exactly 64 KiB (in parameters within their own limits) is served.
    let exact = 'user=1';
    for (let i = 0; exact.length < 65536; i++) {
      const room = 65536 - exact.length - `&p${i}=`.length;
      exact += `&p${i}=` + 'x'.repeat(Math.max(0, Math.min(4000, room)));
    }
    assert.strictEqual(Buffer.byteLength(exact), 65536);
    const ok = await h.raw(p.port, 'POST /sandbox/login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n' +
      `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${exact.length}\r\n\r\n${exact}`);
    assert.strictEqual(ok.status, 303, ok.head);
    const j = await fetch(p.base + '/admin/users', {
      method: 'POST', headers: { Authorization: 'Bearer ' + h.ADMIN, 'Content-Type': 'application/json' },
      body: JSON.stringify({ nickname: 'x'.repeat(80 * 1024) }),
    }).catch((e) => ({ status: 'error ' + e.message }));
    assert.strictEqual(j.status, 413);
    await healthy(p);
  });
});

test('malformed percent-encoding → 400', async () => {
  await h.withProvider({}, async (p, d) => {
    for (const path of ['/sns/auth?access_token=%zz&openid=o', '/sns/oauth2/access_token?appid=%', '/cgi-bin/token?appid=%4',
      `/connect/oauth2/authorize?appid=${d.appid}&redirect_uri=%G0`]) {
      const r = await h.get(p.base + path);
      assert.strictEqual(r.status, 400, path);
      assert.strictEqual(r.headers.get('location'), null);
    }
    const f = await h.postForm(p.base + '/connect/oauth2/authorize/confirm', {});
    assert.ok(f.status >= 400);
    const bad = await fetch(p.base + '/connect/oauth2/authorize/confirm', {
      method: 'POST', redirect: 'manual', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'ticket=%%%',
    });
    assert.strictEqual(bad.status, 400);
    await healthy(p);
  });
});

test('/healthz, /metrics and unknown API paths', async () => {
  await h.withProvider({}, async (p, d) => {
    await healthy(p);
    const unknown = await h.getJson(p.base + '/sns/xyz');
    assert.strictEqual(unknown.status, 200);
    assert.strictEqual(unknown.body.errcode, 40066);
    assert.match(unknown.body.errmsg, /^invalid url, rid: /);
    const [code] = await h.issueCodes(p.base, d.appid, d.users[0]);
    await h.exchange(p.base, d.appid, d.secret, code);
    await h.exchange(p.base, d.appid, d.secret, 'garbage');
    const m = await h.get(p.base + '/metrics');
    assert.strictEqual(m.status, 200);
    assert.match(m.headers.get('content-type'), /^text\/plain/);
    const text = await m.text();
    assert.match(text, /# TYPE wxauth_provider_requests_total counter/);
    assert.match(text, /^wxauth_provider_requests_total\{route="sns\/oauth2\/access_token",status="200",errcode="0"\} 1$/m);
    assert.match(text, /^wxauth_provider_requests_total\{route="sns\/oauth2\/access_token",status="200",errcode="40029"\} 1$/m);
    assert.match(text, /^wxauth_provider_requests_total\{route="healthz",status="200",errcode="0"\} \d+$/m);
    assert.match(text, /wxauth_provider_requests_total\{[^}]*errcode="40066"[^}]*\} 1/);
    assert.match(text, /# TYPE wxauth_provider_request_duration_seconds histogram/);
    assert.match(text, /^wxauth_provider_request_duration_seconds_bucket\{route="sns\/oauth2\/access_token",le="\+Inf"\} 2$/m);
    assert.match(text, /^wxauth_provider_request_duration_seconds_count\{route="sns\/oauth2\/access_token"\} 2$/m);
    assert.match(text, /^wxauth_provider_request_duration_seconds_sum\{route="sns\/oauth2\/access_token"\} [0-9.e+-]+$/m);
    // Buckets are cumulative.
    const buckets = [...text.matchAll(/^wxauth_provider_request_duration_seconds_bucket\{route="sns\/oauth2\/access_token",le="[^"]+"\} (\d+)$/gm)].map((x) => Number(x[1]));
    assert.ok(buckets.length >= 2);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i] >= buckets[i - 1]);
    assert.ok(!text.includes(d.secret) && !text.includes(code));
  });
});

test('logs: one line per request, never a secret, code or token', async () => {
  await h.withProvider({ domains: ['www.good.example'] }, async (p, d) => {
    let requests = 0;
    const cookie = await h.login(p.base, d.users[0]); requests++;
    const auth = `${p.base}/connect/oauth2/authorize?appid=${d.appid}&redirect_uri=${encodeURIComponent('https://www.good.example/cb')}` +
      '&response_type=code&scope=snsapi_userinfo&state=S1';
    const c = await h.page(auth, cookie); requests++;
    const f = h.parseForm(c.body);
    const a = await h.postForm(p.base + f.action, { ...f.fields, action: 'allow' }, cookie); requests++;
    const code = new URL(a.location).searchParams.get('code');
    const t = await h.exchange(p.base, d.appid, d.secret, code); requests++;
    const r = await h.getJson(`${p.base}/sns/oauth2/refresh_token?appid=${d.appid}&grant_type=refresh_token&refresh_token=${encodeURIComponent(t.refresh_token)}`); requests++;
    await h.getJson(`${p.base}/sns/userinfo?access_token=${encodeURIComponent(r.body.access_token)}&openid=${t.openid}`); requests++;
    await h.getJson(`${p.base}/sns/auth?access_token=${encodeURIComponent(t.access_token)}&openid=${t.openid}`); requests++;
    await h.exchange(p.base, d.appid, d.secret, code); requests++; // replay: 40163
    const basic = await h.getJson(`${p.base}/cgi-bin/token?grant_type=client_credential&appid=${d.appid}&secret=${d.secret}`); requests++;
    await h.get(`${p.base}/sns/auth?access_token=${'%zz'}`); requests++;
    const lines = () => p.logs().split('\n').filter((l) => / method=/.test(l));
    await h.waitFor(() => lines().length >= requests);
    const logs = p.logs();
    for (const [name, secret] of [['AppSecret', d.secret], ['code', code], ['access_token', t.access_token],
      ['refresh_token', t.refresh_token], ['refreshed access_token', r.body.access_token],
      ['basic token', basic.body.access_token], ['consent ticket', f.fields.ticket], ['session cookie', cookie.split('=')[1]]]) {
      assert.ok(secret && secret.length > 10, name);
      assert.ok(!logs.includes(secret), `${name} leaked into the log`);
    }
    assert.ok(!logs.includes('secret='), 'no query strings in the log');
    assert.strictEqual(lines().length, requests, 'one line per request');
    for (const l of lines()) {
      assert.match(l, / method=(GET|POST) /);
      assert.match(l, / path="\/[^"?]*" /);
      assert.match(l, / status=\d{3} /);
      assert.match(l, / errcode=-?\d+ /);
      assert.match(l, / latency_us=\d+/);
    }
    assert.ok(lines().some((l) => l.includes('path="/sns/oauth2/access_token"') && l.includes('errcode=40163')));
    assert.ok(lines().some((l) => l.includes('path="/connect/oauth2/authorize/confirm"') && l.includes('status=302')));
    assert.ok(lines().some((l) => l.includes('status=400')));
  });
});

test('kill -9 under load: every token a client received survives; openids stable', async (ctx) => {
  const d = h.makeDb({ users: ['甲', '乙'] });
  let p = await h.startProvider(d.db);
  const received = [];
  let openidBefore;
  try {
    const codes = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_userinfo', 300);
    openidBefore = (await h.admin(p.base, 'POST', '/admin/issue', { appid: d.appid, user: d.users[1], kind: 'code' })).body.openid;
    let answered = 0;
    let killed;
    const killAfter = new Promise((resolve) => { killed = resolve; });
    // 40 clients exchange the 300 codes as fast as they can; the server is killed (synchronously,
    // from the 100th answer's callback) while the rest are in flight or queued.
    const queue = [...codes];
    const worker = async () => {
      for (let code = queue.shift(); code; code = queue.shift()) {
        try {
          const q = new URLSearchParams({ appid: d.appid, secret: d.secret, code, grant_type: 'authorization_code' });
          const r = await fetch(`${p.base}/sns/oauth2/access_token?${q}`);
          const body = JSON.parse(await r.text());
          if (r.status === 200 && typeof body.access_token === 'string') received.push(body);
        } catch {
          // the connection died with the server: nothing was received
        } finally {
          if (++answered === 100) { p.child.kill('SIGKILL'); killed(); }
        }
      }
    };
    const calls = Array.from({ length: 40 }, worker);
    await killAfter;
    await p.kill9();
    await Promise.all(calls);
    assert.ok(received.length >= 50 && received.length < 300, `received ${received.length}`);
    ctx.diagnostic(`killed at the 100th answer; ${received.length} of 300 tokens received`);
    p = await h.startProvider(d.db);
    for (const t of received) {
      const r = await h.getJson(`${p.base}/sns/auth?access_token=${encodeURIComponent(t.access_token)}&openid=${t.openid}`);
      assert.deepStrictEqual(r.body, { errcode: 0, errmsg: 'ok' }, `token lost after kill -9 (${received.length} received)`);
      const rr = await h.getJson(`${p.base}/sns/oauth2/refresh_token?appid=${d.appid}&grant_type=refresh_token&refresh_token=${encodeURIComponent(t.refresh_token)}`);
      assert.strictEqual(rr.body.refresh_token, t.refresh_token);
    }
    // The database is consistent: the rest of the codes are either redeemed or still good.
    await healthy(p);
    await p.stop();
    // A second restart keeps the master key: same user → same openid, old tokens still valid.
    p = await h.startProvider(d.db);
    const after = (await h.admin(p.base, 'POST', '/admin/issue', { appid: d.appid, user: d.users[1], kind: 'code' })).body;
    assert.strictEqual(after.openid, openidBefore);
    const t = await h.exchange(p.base, d.appid, d.secret, after.codes[0]);
    assert.strictEqual(t.openid, openidBefore);
    assert.strictEqual(received[0].openid, (await h.exchange(p.base, d.appid, d.secret,
      (await h.issueCodes(p.base, d.appid, d.users[0]))[0])).openid);
    const check = await h.getJson(`${p.base}/sns/auth?access_token=${encodeURIComponent(received[0].access_token)}&openid=${received[0].openid}`);
    assert.deepStrictEqual(check.body, { errcode: 0, errmsg: 'ok' });
  } finally {
    await p.stop();
  }
});
