// sentinel.test.js — the store on redis-sentinel://: a master, its replica and three sentinels
// (sentinel.js). The provider finds the master through the sentinels, and when the master is
// killed (kill -9) while exchanges run, the sentinels promote the replica and the provider goes
// on by itself, on the new master: requests fail with -1 meanwhile, never a write to a replica
// (a master demoted under an open connection answers -READONLY: checked with a stand-in
// sentinel, fake_sentinel.js, since real sentinels close the demoted master's connections).
// Bad URLs and unreachable sentinels give a clear error at start.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const h = require('./harness');
const { REDIS, startRedis } = require('./redis');
const { startSentinels } = require('./sentinel');

const skip = h.needs(REDIS, '/usr/bin/redis-cli');

// A sentinel set (sentinel.js: replicas), a database on it, a provider on its URL + query; fn
// runs with them, and all is stopped whatever happens.
async function onSentinels(fn, { replicas = 1, query = '' } = {}) {
  const set = await startSentinels({ replicas });
  let p = null;
  try {
    const d = h.makeDb({ db: set.url }); // the CLI, too, asks the sentinels
    p = await h.startOnStore(set.url + query);
    await fn({ set, d, p });
  } finally {
    if (p) await p.stop();
    await set.stop();
  }
}

test('the provider finds the master through the sentinels and follows a failover by itself; with wait=1 no token is lost', { skip }, async () => {
  // wait=1: every write confirmed by a replica before the client gets its answer; two replicas,
  // so that one is left to confirm writes once the other is promoted
  await onSentinels(async ({ set, d, p }) => {
    const codes = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_base', 3000);
    const first = await h.exchange(p.base, d.appid, d.secret, codes.shift());
    assert.ok(first.access_token, JSON.stringify(first));

    const load = h.exchangeLoad(p, d, codes);
    const { got } = load;
    let killedAt = 0;
    await h.sleep(500);
    const oldPort = set.master.port;
    killedAt = Date.now();
    await set.master.kill();
    // back on the promoted replica: a success after the kill, through the provider as it runs
    const promoted = () => set.replicas.find((x) => x.port === set.masterPort());
    await h.waitFor(() => got.some((g) => g.ok && g.at > killedAt + 200) && promoted(),
      30000, 'exchanges succeeding again on the promoted replica');
    await h.sleep(500);
    await load.stop();

    assert.strictEqual(set.role(promoted().port), 'master');
    assert.notStrictEqual(set.masterPort(), oldPort);
    const failed = got.filter((g) => !g.ok);
    assert.ok(failed.every((g) => g.errcode === -1), `only -1 while there is no master: ${JSON.stringify(failed.slice(0, 3))}`);
    const after = got.filter((g) => g.ok && g.at > killedAt);
    assert.ok(after.length > 0);
    const lastFail = failed.length ? Math.max(...failed.map((g) => g.at)) : killedAt;
    const outage = ((lastFail - killedAt) / 1000).toFixed(1);
    // every token handed out after the failover is valid on the new master
    const since = got.filter((g) => g.ok && g.at > lastFail);
    for (const g of since.slice(-50)) {
      const r = await h.getJson(`${p.base}/sns/auth?access_token=${g.token}&openid=${g.openid}`);
      assert.strictEqual(r.body.errcode, 0, `a token from after the failover: ${JSON.stringify(r.body)}`);
    }
    // every token a client received, before, during and after, is on the new master
    const lost = await h.lostTokens(p, got);
    console.log(`# failover: ${failed.length} requests answered -1 over ${outage} s; ` +
      `${got.filter((g) => g.ok).length} tokens received, ${lost.length} not on the new master`);
    assert.deepStrictEqual(lost, [], 'no acknowledged token lost');
  }, { replicas: 2, query: '&wait=1' });
});

test('a failover with the old master still up (SENTINEL FAILOVER): the provider goes on on the new master', { skip }, async () => {
  await onSentinels(async ({ set, d, p }) => {
    const codes = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_base', 400);
    assert.ok((await h.exchange(p.base, d.appid, d.secret, codes.shift())).access_token);
    const oldPort = set.master.port;
    require('node:child_process').execFileSync('/usr/bin/redis-cli', ['-p', String(set.sentinels[0].port),
      'sentinel', 'failover', set.name]);
    await h.waitFor(() => set.role(oldPort) === 'slave' && set.masterPort() === set.replica.port, 20000,
      'the old master demoted, the replica promoted');
    // the sentinels close the demoted master's client connections (CLIENT KILL TYPE normal), so
    // the provider's next call asks them again; had one survived, its -READONLY would do the same
    const results = [];
    for (let i = 0; i < 20 && !(results.length && results[results.length - 1].access_token); i++) {
      results.push(await h.exchange(p.base, d.appid, d.secret, codes.shift()));
      if (!results[results.length - 1].access_token) await h.sleep(100);
    }
    const last = results[results.length - 1];
    console.log(`# after the manual failover: ${results.length - 1} exchange(s) answered -1 before one succeeded`);
    assert.ok(last.access_token, `exchanges work again on the new master: ${JSON.stringify(results)}`);
    assert.ok(results.slice(0, -1).every((r) => r.errcode === -1), JSON.stringify(results));
    assert.ok(results.length <= 3, `at most a couple of -1 before it looks again: ${results.length}`);
    const ok = await h.getJson(`${p.base}/sns/auth?access_token=${last.access_token}&openid=${last.openid}`);
    assert.strictEqual(ok.body.errcode, 0);
  });
});

test('sentinels hung: calls go on over the open connection, a reconnect answers -1 in bounded time, then back by itself', { skip }, async () => {
  await onSentinels(async ({ set, d, p }) => {
    const codes = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_base', 50);
    assert.ok((await h.exchange(p.base, d.appid, d.secret, codes.shift())).access_token);
    for (const s of set.sentinels) s.pause();
    assert.ok((await h.exchange(p.base, d.appid, d.secret, codes.shift())).access_token,
      'the master is known and connected: no sentinel needed');
    // the master closes every client connection: the next call must ask the (hung) sentinels
    require('node:child_process').execFileSync('/usr/bin/redis-cli', ['-p', String(set.master.port),
      'client', 'kill', 'type', 'normal']);
    const t0 = Date.now();
    const down = await h.exchange(p.base, d.appid, d.secret, codes.shift());
    const ms = Date.now() - t0;
    assert.strictEqual(down.errcode, -1, JSON.stringify(down));
    assert.ok(ms < 3 * 300 + 1000, `bounded by the sentinels' timeouts: ${ms} ms`);
    for (const s of set.sentinels) s.resume();
    await h.waitFor(async () => !!(await h.exchange(p.base, d.appid, d.secret, codes.shift())).access_token,
      10000, 'exchanges again once the sentinels answer');
  }, { query: '&timeout_ms=300' });
});

test('wait=1 on a Redis without a replica: writes answer -1 (not confirmed), reads go on', { skip }, async () => {
  const r = await startRedis();
  let p = null;
  try {
    const d = h.makeDb({ db: r.url });
    p = await h.startOnStore(r.url);
    const [code] = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_base', 1);
    const tok = await h.exchange(p.base, d.appid, d.secret, code);
    assert.ok(tok.access_token);
    await p.stop();
    p = await h.startOnStore(`${r.url}&wait=1&timeout_ms=400`);
    const issue = await h.admin(p.base, 'POST', '/admin/issue',
      { appid: d.appid, user: d.users[0], scope: 'snsapi_base', kind: 'code', count: 1 });
    assert.strictEqual(issue.status, 503, `minting a code is a write, refused unconfirmed: ${JSON.stringify(issue.body)}`);
    const auth = await h.getJson(`${p.base}/sns/auth?access_token=${tok.access_token}&openid=${tok.openid}`);
    assert.strictEqual(auth.body.errcode, 0, 'a read needs no replica');
  } finally {
    if (p) await p.stop();
    await r.cleanup();
  }
});

test('sentinel URLs: bad ones and unreachable sentinels are refused at start with the reason', { skip }, async () => {
  const port = await h.freePort(); // nothing listens there
  const cases = [
    ['redis-sentinel://127.0.0.1:26379', /expected redis-sentinel:\/\//],
    ['redis-sentinel://a,,b/m', /expected redis-sentinel:\/\//],
    ['redis-sentinel://h/m?db=x', /db must be a number/],
    ['redis-sentinel://h/m?nope=1', /unknown option 'nope' \(db, prefix, timeout_ms, wait\)/],
    ['redis-sentinel://h/m?wait=17', /wait must be 0\.\.16 replicas/],
    ['redis-sentinel://a,b,c,d,e,f,g,h,i/m', /at most 8 sentinels/],
    [`redis-sentinel://h/m?prefix=${'p'.repeat(65)}`, /prefix must be at most 64 of/],
    ['redis-sentinel://h/m?prefix=a b', /prefix must be at most 64 of/],
    ['redis-sentinel://h/m?timeout_ms=0', /timeout_ms must be 1\.\.60000/],
    ['redis-sentinel://h/m?timeout_ms=60001', /timeout_ms must be 1\.\.60000/],
    ['redis-sentinel://h/bad!name', /the master's name must be/],
    [`redis-sentinel://127.0.0.1:${port}/m`, new RegExp(`master 'm' of 1 sentinel\\(s\\): sentinel 127\\.0\\.0\\.1:${port}: Connection refused`)],
  ];
  for (const [url, re] of cases) {
    const r = h.cliRun(['provider', '--store', url, '--listen', '127.0.0.1:0']);
    assert.notStrictEqual(r.status, 0, url);
    assert.match(r.stderr, re, url);
    assert.ok(!r.stderr.includes('secretpw'), 'the URL is never echoed');
  }
  // At the limits the URL is taken: what fails then is the (unreachable) sentinels.
  const eight = Array.from({ length: 8 }, () => `127.0.0.1:${port}`).join(',');
  const r = h.cliRun(['provider', '--store', `redis-sentinel://${eight}/m?prefix=${'p'.repeat(64)}&timeout_ms=60000&wait=16`,
    '--listen', '127.0.0.1:0']);
  assert.notStrictEqual(r.status, 0);
  assert.match(r.stderr, /master 'm' of 8 sentinel\(s\)/, 'eight sentinels, a 64-byte prefix, timeout_ms=60000, wait=16');
});

test('a sentinel that names an unknown master: a clear error at start', { skip }, async () => {
  const set = await startSentinels();
  try {
    const url = set.url.replace(`/${set.name}?`, '/nosuchmaster?');
    const r = h.cliRun(['provider', '--store', url, '--listen', '127.0.0.1:0']);
    assert.notStrictEqual(r.status, 0);
    assert.match(r.stderr, /knows no master 'nosuchmaster'/);
  } finally {
    await set.stop();
  }
});

// A stand-in sentinel (fake_sentinel.js, a process of its own) naming 127.0.0.1:port; set(port)
// makes it name another and announce it (+switch-master), set(port, { quiet: true }) without
// the announcement; { nosub: true }: one whose Pub/Sub is dead (no answer to SUBSCRIBE or PING).
async function fakeSentinel(port, { nosub = false } = {}) {
  const child = h.spawnServer(process.execPath, [require('node:path').join(__dirname, 'fake_sentinel.js'),
    '127.0.0.1', String(port), ...(nosub ? ['nosub'] : [])], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  await h.waitFor(() => /listening \d+/.test(out), 5000, 'the fake sentinel listening');
  return {
    port: Number(/listening (\d+)/.exec(out)[1]),
    set: async (p, { quiet = false } = {}) => {
      child.stdin.write(`127.0.0.1 ${p}${quiet ? ' quiet' : ''}\n`);
      await h.waitFor(() => out.includes(`now 127.0.0.1 ${p}`), 5000);
    },
    subscribed: () => out.includes('subscribed'),
    close: () => new Promise((r) => { child.once('exit', r); child.kill('SIGKILL'); }),
  };
}

// A master a, its replica b in sync, a stand-in sentinel naming a, a provider on it with n codes
// of which one was redeemed, and b caught up with that; fn runs with them, then all is stopped.
// lagging: another stand-in first in the URL, naming a, with a dead Pub/Sub (fn gets it as lag).
async function onStandIn(n, fn, { lagging = false } = {}) {
  const a = await startRedis();
  const b = await startRedis({ replicaOf: a.port });
  const fs = await fakeSentinel(a.port);
  const lag = lagging ? await fakeSentinel(a.port, { nosub: true }) : null;
  let p = null;
  try {
    await h.waitFor(() => b.info('replication').master_link_status === 'up', 10000, 'the replica in sync');
    const hosts = [...(lag ? [lag.port] : []), fs.port].map((x) => `127.0.0.1:${x}`).join(',');
    const url = `redis-sentinel://${hosts}/m?prefix=t:&timeout_ms=300`;
    const d = h.makeDb({ db: url });
    p = await h.startOnStore(url);
    const codes = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_base', n);
    assert.ok((await h.exchange(p.base, d.appid, d.secret, codes.shift())).access_token);
    await h.waitFor(() => Number(b.info('replication').slave_repl_offset) >= Number(a.info('replication').master_repl_offset),
      5000, 'the replica caught up');
    await fn({ a, b, fs, lag, p, d, codes });
  } finally {
    if (p) await p.stop();
    if (lag) await lag.close();
    await fs.close();
    await b.cleanup();
    await a.cleanup();
  }
}

test('a master demoted under an open connection: its -READONLY sends the provider back to the sentinels', { skip }, async () => {
  await onStandIn(20, async ({ a, b, fs, p, d, codes }) => {
    // the switch, done by hand so that nothing closes the provider's connection to a
    b.cli('replicaof', 'no', 'one');
    a.cli('replicaof', '127.0.0.1', String(b.port));
    await fs.set(b.port, { quiet: true }); // no +switch-master: the -READONLY is what is seen
    await h.waitFor(() => a.info('replication').master_link_status === 'up', 10000, 'a, now a replica, in sync');
    const results = [];
    for (let i = 0; i < 5 && !(results.length && results[results.length - 1].access_token); i++) {
      results.push(await h.exchange(p.base, d.appid, d.secret, codes.shift()));
    }
    console.log(`# demoted under an open connection: ${JSON.stringify(results.map((r) => r.errcode || 'ok'))}`);
    assert.ok(results[results.length - 1].access_token, JSON.stringify(results));
    assert.deepStrictEqual(results.slice(0, -1).map((r) => r.errcode), [-1],
      'one write met -READONLY on a (answered -1), the next went to b');
  });
});

test('an old master cut off from the sentinels but not from the provider: +switch-master moves it to the new one', { skip }, async () => {
  // a stays a master (a partition: its sentinels cannot reach it to demote it); without the
  // announcement the provider would go on writing to a, and the writes would be lost when a
  // comes back as a replica of b.
  await onStandIn(6, async ({ a, b, fs, p, d, codes }) => {
    b.cli('replicaof', 'no', 'one'); // two masters now; a never hears of it
    const aKeys = Number(a.cli('dbsize'));
    const bKeys = Number(b.cli('dbsize'));
    await fs.set(b.port);
    await h.waitFor(() => p.logs().includes(`redis master 'm' moved from 127.0.0.1:${a.port} to 127.0.0.1:${b.port} (+switch-master from sentinel 127.0.0.1:${fs.port})`),
      5000, 'the announcement followed');
    // A code issued on a before the switch (b has its copy), and new ones issued on b.
    const old = await h.exchange(p.base, d.appid, d.secret, codes.shift());
    assert.ok(old.access_token, JSON.stringify(old));
    const fresh = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_base', 3);
    for (const c of fresh) assert.ok((await h.exchange(p.base, d.appid, d.secret, c)).access_token);
    assert.strictEqual(Number(a.cli('dbsize')), aKeys, 'nothing more was written to the old master');
    assert.ok(Number(b.cli('dbsize')) > bKeys, 'the writes went to the new master');
    const auth = await h.getJson(`${p.base}/sns/auth?access_token=${old.access_token}&openid=${old.openid}`);
    assert.strictEqual(auth.body.errcode, 0, 'the token is read back from the new master');
  });
});

test('a sentinel that lags behind the announcement is passed over: the reconnect goes to the announced master', { skip }, async () => {
  // The URL's first sentinel still names a (it lags, or is on a's side of a partition) and its
  // Pub/Sub is dead, so the watch follows the second, which announces b. The reconnect asks the
  // first sentinel first (it answered last): taking its answer would land on a again.
  await onStandIn(6, async ({ a, b, fs, lag, p, d }) => {
    // the watch has moved to the second sentinel (the first never answers SUBSCRIBE or PING)
    await h.waitFor(() => fs.subscribed(), 5000, 'the watch on the second sentinel');
    b.cli('replicaof', 'no', 'one');
    const aKeys = Number(a.cli('dbsize'));
    await fs.set(b.port);
    await h.waitFor(() => p.logs().includes(`moved from 127.0.0.1:${a.port} to 127.0.0.1:${b.port} (+switch-master from sentinel 127.0.0.1:${fs.port})`),
      5000, 'the announcement followed');
    const fresh = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_base', 3);
    for (const c of fresh) assert.ok((await h.exchange(p.base, d.appid, d.secret, c)).access_token);
    assert.strictEqual(Number(a.cli('dbsize')), aKeys, 'nothing written to the master the lagging sentinel names');
    assert.ok(lag.port, 'the lagging sentinel was in the URL');
  }, { lagging: true });
});
