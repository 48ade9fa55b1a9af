// cluster.test.js — the store on redis-cluster://: three masters with a replica each
// (cluster.js). Slots resharded while exchanges run give no wrong answer (the store follows
// MOVED and ASK; nothing fails); a master killed (kill -9) while exchanges run fails over to its
// replica and, with wait=1, every token a client received is still valid; bad URLs, unreachable
// seeds and a Redis that is no cluster are refused at start with the reason. (The provider's
// suites themselves also run on a cluster: the integ_*_cluster tests.)
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const h = require('./harness');
const { REDIS, startRedis } = require('./redis');
const { startCluster } = require('./cluster');

const skip = h.needs(REDIS, '/usr/bin/redis-cli');

// A cluster, a database on it, a provider on its URL + query; fn runs with them, all stopped after.
async function onCluster(fn, { query = '' } = {}) {
  const c = await startCluster();
  let p = null;
  try {
    const d = h.makeDb({ db: `${c.url}?prefix=t:` });
    p = await h.startOnStore(`${c.url}?prefix=t:${query}`);
    await fn({ c, d, p });
  } finally {
    if (p) await p.stop();
    await c.cleanup();
  }
}

test('resharding under load: slots move between masters while exchanges run, and no request fails', { skip }, async () => {
  await onCluster(async ({ c, d, p }) => {
    const codes = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_base', 6000);
    const used = codes.shift(); // redeemed before the move, replayed after it
    assert.ok((await h.exchange(p.base, d.appid, d.secret, used)).access_token);
    const [a, b] = c.view().masters;
    const from = c.nodes.find((n) => n.port === a.port), to = c.nodes.find((n) => n.port === b.port);
    const before = c.view().masters.find((m) => m.port === to.port).slots;
    const load = h.exchangeLoad(p, d, codes);
    await h.sleep(300);
    const t0 = Date.now();
    await c.reshard(from, to, 2000); // the codes issued before live in those slots too
    const ms = Date.now() - t0;
    await h.sleep(300);
    const got = await load.stop();
    const after = c.view().masters.find((m) => m.port === to.port).slots;
    assert.notDeepStrictEqual(after, before, 'the slots moved');
    const failed = got.filter((g) => !g.ok);
    console.log(`# reshard of 2000 slots in ${ms} ms under load: ${got.length} exchanges, ${failed.length} failed`);
    assert.deepStrictEqual(failed.slice(0, 3), [], 'no exchange failed while slots moved');
    assert.ok(got.length > 100, `exchanges ran during the move: ${got.length}`);
    assert.deepStrictEqual(await h.lostTokens(p, got), [], 'every token valid after the move');
    // a code redeemed before the move is still refused after it: its grant moved with it
    const again = await h.exchange(p.base, d.appid, d.secret, used);
    assert.strictEqual(again.errcode, 40163, JSON.stringify(again));
  });
});

test('a master killed (kill -9) under load: its replica takes over, and with wait=1 no token is lost', { skip }, async () => {
  await onCluster(async ({ c, d, p }) => {
    const codes = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_base', 6000);
    const load = h.exchangeLoad(p, d, codes);
    const { got } = load;
    await h.sleep(500);
    const victim = c.masterOf(0);
    const killedAt = Date.now();
    await victim.kill();
    // the cluster promotes the replica (cluster-node-timeout 1 s); the provider finds it in the
    // next slot map. The killed node comes back (as systemd's Restart= would bring it) as a
    // replica of the new master, so that wait=1 has a replica again for those slots.
    await h.waitFor(() => { const m = c.masterOf(0); return m && m !== victim; }, 30000, 'a new master for slot 0');
    await victim.restart();
    // until it has synced, WAIT 1 finds no replica for those slots (their writes answer -1)
    await h.waitFor(() => /master_link_status:up/.test(victim.cli('info', 'replication')) &&
      got.length > 20 && got.slice(-20).every((g) => g.ok && g.at > killedAt), 30000,
    'the old master a synced replica, exchanges all succeeding');
    await load.stop();
    const failed = got.filter((g) => !g.ok);
    assert.ok(failed.every((g) => g.errcode === -1), `only -1 meanwhile: ${JSON.stringify(failed.slice(0, 3))}`);
    const lastFail = failed.length ? Math.max(...failed.map((g) => g.at)) : killedAt;
    assert.ok(got.some((g) => g.ok && g.at > lastFail), 'exchanges succeed after the failover');
    const lost = await h.lostTokens(p, got);
    console.log(`# cluster failover: ${failed.length} of ${got.length} exchanges answered -1 over ` +
      `${((lastFail - killedAt) / 1000).toFixed(1)} s; ${got.filter((g) => g.ok).length} tokens received, ${lost.length} lost`);
    assert.deepStrictEqual(lost, [], 'no acknowledged token lost');
  }, { query: '&wait=1' });
});

test('cluster URLs: bad ones, unreachable seeds and a Redis that is no cluster are refused at start', { skip }, async () => {
  const port = await h.freePort(); // nothing listens there
  const single = await startRedis();
  try {
    const cases = [
      ['redis-cluster://', /expected redis-cluster:\/\//],
      ['redis-cluster://a,,b', /expected redis-cluster:\/\//],
      ['redis-cluster://h/3', /expected redis-cluster:\/\//],
      ['redis-cluster://h?db=1', /unknown option 'db' \(prefix, timeout_ms, wait\)/],
      ['redis-cluster://a,b,c,d,e,f,g,h,i', /at most 8 seed nodes/],
      [`redis-cluster://127.0.0.1:${port}`, new RegExp(`cluster of 1 seed node\\(s\\): 127\\.0\\.0\\.1:${port}: Connection refused`)],
      [`redis-cluster://127.0.0.1:${single.port}`, /cluster support disabled/],
    ];
    for (const [url, re] of cases) {
      const r = h.cliRun(['provider', '--store', url, '--listen', '127.0.0.1:0']);
      assert.notStrictEqual(r.status, 0, url);
      assert.match(r.stderr, re, url);
    }
  } finally {
    await single.cleanup();
  }
});

test('a dead seed is skipped: the map comes from the next one', { skip }, async () => {
  const c = await startCluster();
  let p = null;
  try {
    const port = await h.freePort();
    const url = c.url.replace('redis-cluster://', `redis-cluster://127.0.0.1:${port},`) + '?prefix=t:';
    const d = h.makeDb({ db: url });
    p = await h.startOnStore(url);
    const [code] = await h.issueCodes(p.base, d.appid, d.users[0], 'snsapi_base', 1);
    assert.ok((await h.exchange(p.base, d.appid, d.secret, code)).access_token);
  } finally {
    if (p) await p.stop();
    await c.cleanup();
  }
});
