// deploy.test.js — docs/deploy.md's recipes, run as written. The blocks that start with
// "# /PATH [(append)] [on HOST, HOST...]" are the files of each machine; the test takes them out
// of the page (the wxauth nodes' and the systemd units' for every recipe, each recipe's own),
// maps every 10.0.0.x address and port to a free loopback port and every system path to a
// directory per machine, and then does what the page says: Redis and the sentinels started
// with those files (on top of this machine's Debian /etc/redis/redis.conf where the page
// appends to it), the shell lines run, two providers and a gate started from the units'
// ExecStart and EnvironmentFile lines. A code issued on one node redeems on the other; with
// Sentinel the master is killed (kill -9) and every token stays valid; `systemd-analyze verify`
// finds nothing to say about the units.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const h = require('./harness');
const { clusterPort } = require('./cluster');

const REDIS = '/usr/bin/redis-server';
const REDIS_CLI = '/usr/bin/redis-cli';
const DEBIAN_CONF = '/etc/redis/redis.conf';
const ANALYZE = '/usr/bin/systemd-analyze';
const DOC = path.join(__dirname, '..', '..', 'docs', 'deploy.md');
const BIN = path.resolve(h.BIN);
const NODES = ['10.0.0.11', '10.0.0.12'];
const skip = h.needs(REDIS, REDIS_CLI, DEBIAN_CONF);

// The page's fenced blocks in order: { lang, text, section (the ## or ### heading above),
// file, append, hosts } (file null for a block without the header line).
function blocks() {
  const out = [];
  let section = '';
  const re = /^(#{2,3}) (.+)$|^```(\w*)\n([\s\S]*?)^```$/gm;
  for (const m of fs.readFileSync(DOC, 'utf8').matchAll(re)) {
    if (m[1]) {
      section = m[2];
      continue;
    }
    const f = /^# (\/\S+)( \(append\))?(?: on (.+))?$/.exec(m[4].split('\n')[0]);
    out.push({
      lang: m[3], text: m[4], section, file: f ? f[1] : null, append: !!(f && f[2]),
      hosts: f && f[3] ? f[3].split(/,\s*/) : [],
    });
  }
  return out;
}

// A recipe's blocks: its own section's and the common ones (the wxauth nodes, the units).
function recipe(prefix) {
  const all = blocks();
  const common = all.filter((b) => b.section === 'The wxauth nodes' || b.section === 'systemd');
  const own = all.filter((b) => b.section.startsWith(prefix));
  assert.ok(own.length, `docs/deploy.md has a section "${prefix}..."`);
  return {
    files: [...common, ...own].filter((b) => b.file && b.hosts.length),
    units: common.filter((b) => b.file && b.file.endsWith('.service')),
    commands: own.filter((b) => !b.file && b.lang === 'sh').map((b) => b.text),
    setup: common.filter((b) => !b.file && b.lang === 'sh').map((b) => b.text),
  };
}

// The environment for redis-cli: REDISCLI_AUTH set to pass, or unset.
function cliEnv(pass) {
  const env = { ...process.env };
  delete env.REDISCLI_AUTH;
  if (pass) env.REDISCLI_AUTH = pass;
  return env;
}

const SYSTEM_PATHS = /(?<![\w/.])\/(?:etc\/redis|etc\/wxauth|var\/lib\/redis|var\/lib\/wxauth|var\/log\/redis|run)(?=\/|\s|$)/g;
const ADDRESS = /(10\.0\.0\.\d+)([: ])(\d+)/g;

// The machines of one recipe in a temporary directory: files, ports, processes.
class Site {
  constructor() {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'wxauth-deploy-'));
    this.ports = new Map(); // "HOST:PORT" on the page -> the loopback port here
    this.files = new Map(); // "HOST PATH" -> text as the page has it
    this.procs = [];
  }

  local(host, p) { return path.join(this.root, host, p); }

  // Every address and port the texts name, on a free loopback port of its own.
  async allocate(texts) {
    const want = new Set();
    for (const [host, text] of texts) {
      for (const m of text.matchAll(/^port (\d+)$/gm)) want.add(`${host}:${m[1]}`);
      for (const m of text.matchAll(ADDRESS)) want.add(`${m[1]}:${m[3]}`);
    }
    const taken = new Set(this.ports.values());
    for (const k of want) {
      if (this.ports.has(k)) continue;
      let p; // a cluster node's bus is its port + 10000: free too, for every port alike
      do p = await clusterPort(); while (taken.has(p) || taken.has(p + 10000) || taken.has(p - 10000));
      taken.add(p);
      this.ports.set(k, p);
    }
  }

  port(host, p) {
    const v = this.ports.get(`${host}:${p}`);
    assert.ok(v, `a port for ${host}:${p}`);
    return v;
  }

  // text as it runs here on host: addresses, ports and paths mapped.
  map(host, text) {
    return text
      .replace(/^port (\d+)$/gm, (_, n) => `port ${this.port(host, n)}`)
      .replace(/^bind .*$/gm, 'bind 127.0.0.1')
      .replace(ADDRESS, (_, ip, sep, n) => `127.0.0.1${sep}${this.port(ip, n)}`)
      .replace(SYSTEM_PATHS, (m) => this.local(host, m))
      .replace(/\/usr\/local\/bin\/wxauth\b/g, BIN);
  }

  // The recipe's files, appended where the page says so (to Debian's redis.conf, as installed
  // here, for /etc/redis/redis.conf), written out mapped, with the directories they name.
  async write(files) {
    for (const b of files) {
      for (const host of b.hosts) {
        const key = `${host} ${b.file}`;
        if (b.append) {
          const base = this.files.get(key) ?? (b.file === DEBIAN_CONF ? fs.readFileSync(DEBIAN_CONF, 'utf8') : '');
          this.files.set(key, `${base}\n${b.text}`);
        } else {
          assert.ok(!this.files.has(key), `one block for ${b.file} on ${host}`);
          this.files.set(key, b.text);
        }
      }
    }
    await this.allocate([...this.files].map(([k, t]) => [k.split(' ')[0], t]));
    for (const [key, text] of this.files) {
      const [host, p] = key.split(' ');
      const out = this.map(host, text);
      fs.mkdirSync(path.dirname(this.local(host, p)), { recursive: true });
      fs.writeFileSync(this.local(host, p), out, { mode: 0o600 });
      for (const m of out.matchAll(/^(pidfile|logfile|dir) (\S+)$/gm)) {
        fs.mkdirSync(m[1] === 'dir' ? m[2] : path.dirname(m[2]), { recursive: true });
      }
    }
  }

  // A Redis file's last value of directive, its includes read in place.
  directive(host, p, name) {
    const text = this.files.get(`${host} ${p}`).replace(/^include (\S+)$/gm,
      (_, inc) => this.files.get(`${host} ${inc}`) ?? fs.readFileSync(inc, 'utf8'));
    const all = [...text.matchAll(new RegExp(`^${name} (.+)$`, 'gm'))];
    return all.length ? all[all.length - 1][1].trim() : null;
  }

  // Starts redis-server on host's file p (as Debian's units do: --daemonize no), resolves once
  // it answers PING.
  async redis(host, p, { sentinel = false } = {}) {
    const port = this.port(host, this.directive(host, p, 'port') || (sentinel ? 26379 : 6379));
    const pass = sentinel ? null : this.directive(host, p, 'requirepass');
    const args = [this.local(host, p), ...(sentinel ? ['--sentinel'] : []), '--daemonize', 'no'];
    const child = h.spawnServer(REDIS, args, { stdio: 'ignore' });
    const proc = { host, file: p, port, pass, child };
    this.procs.push(proc);
    const ping = () => spawnSync(REDIS_CLI, ['-p', String(port), 'ping'],
      { encoding: 'utf8', env: cliEnv(pass) }).stdout.trim() === 'PONG';
    const log = this.directive(host, p, 'logfile');
    const tail = () => (log && fs.existsSync(this.map(host, log)) ? fs.readFileSync(this.map(host, log), 'utf8').slice(-2000) : '');
    assert.ok(await h.upOrExit(child, ping), `${p} on ${host} did not start:\n${tail()}`);
    return proc;
  }

  cli(proc, ...args) {
    const r = spawnSync(REDIS_CLI, ['-p', String(proc.port), ...args], { encoding: 'utf8', env: cliEnv(proc.pass) });
    return r.stdout.trim();
  }

  // A shell block as written, on host: { stdout } (throws unless it exits 0).
  async sh(host, script) {
    await this.allocate([[host, script]]);
    const r = spawnSync('/bin/sh', ['-e', '-c', this.map(host, script)], {
      encoding: 'utf8', timeout: 60000,
      env: { ...cliEnv(null), PATH: `${path.dirname(BIN)}:${process.env.PATH}` },
    });
    assert.strictEqual(r.status, 0, `${script}\n${r.stdout}\n${r.stderr}`);
    return r;
  }

  // A unit's service as systemd would start it on host: EnvironmentFile= files read in order
  // ('-': may be missing), ExecStart= run; resolves once it prints its listening line.
  async unit(host, unitText) {
    const text = this.map(host, unitText);
    const env = { ...process.env };
    for (const m of text.matchAll(/^EnvironmentFile=(-?)(\S+)$/gm)) {
      if (!fs.existsSync(m[2])) {
        assert.ok(m[1] === '-', `${m[2]} is required`);
        continue;
      }
      for (const line of fs.readFileSync(m[2], 'utf8').split('\n')) {
        const kv = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
        if (kv) env[kv[1]] = kv[2].replace(/^"(.*)"$/, '$1'); // systemd takes the quotes off
      }
    }
    const [cmd, ...args] = /^ExecStart=(.+)$/m.exec(text)[1].trim().split(/\s+/);
    const child = h.spawnServer(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const up = await h.upOrExit(child, () => /listening on http:\/\/[0-9.:]+/.test(out));
    assert.ok(up, `${args[0]} on ${host} did not start: ${err}`);
    const base = /listening on (http:\/\/[0-9.]+:\d+)/.exec(out)[1];
    const node = { host, base, child, env, logs: () => err };
    this.procs.push(node);
    return node;
  }

  async stop() {
    await Promise.all(this.procs.map((p) => new Promise((r) => {
      if (p.child.exitCode !== null || p.child.signalCode) return r();
      p.child.once('exit', r);
      p.child.kill('SIGKILL');
    })));
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

// The Redis processes of the recipe: the templated nodes (/etc/redis/redis-NAME.conf) where a
// machine has some (the default one is disabled then), else redis.conf; sentinels last.
async function startRedis(site) {
  const hosts = [...new Set([...site.files.keys()].map((k) => k.split(' ')[0]))].filter((x) => !NODES.includes(x));
  const out = { redis: [], sentinels: [] };
  for (const host of hosts) {
    const own = [...site.files.keys()].filter((k) => k.startsWith(`${host} /etc/redis/`)).map((k) => k.split(' ')[1]);
    const templated = own.filter((p) => /\/redis-[^/]+\.conf$/.test(p));
    for (const p of templated.length ? templated : own.filter((x) => x === DEBIAN_CONF)) out.redis.push(await site.redis(host, p));
  }
  for (const host of hosts) {
    if (site.files.has(`${host} /etc/redis/sentinel.conf`)) {
      out.sentinels.push(await site.redis(host, '/etc/redis/sentinel.conf', { sentinel: true }));
    }
  }
  return out;
}

// The wxauth side: the shell lines of the nodes' section (an app and a user), two providers
// and two gates from the units. { providers, gates, app: { appid, secret }, user, admin }.
async function startNodes(site, r) {
  let app = null;
  let user = null;
  for (const s of r.setup) {
    const out = (await site.sh(NODES[0], s)).stdout;
    const appid = /^appid:\s+(\S+)/m.exec(out);
    const secret = /^secret:\s+(\S+)/m.exec(out);
    if (appid) app = { appid: appid[1], secret: secret[1] };
    const id = /^(\d+)$/m.exec(out);
    if (id) user = id[1];
  }
  assert.ok(app && user, 'the page adds an app and a user');
  const unit = (name) => r.units.find((b) => b.file.endsWith(name)).text;
  const providers = [];
  const gates = [];
  for (const host of NODES) providers.push(await site.unit(host, unit('/wxauth-provider.service')));
  for (const host of NODES) gates.push(await site.unit(host, unit('/wxauth-gate.service')));
  return { providers, gates, app, user, admin: providers[0].env.WXAUTH_ADMIN_TOKEN };
}

async function issue(node, admin, appid, user) {
  const r = await fetch(`${node.base}/admin/issue`, {
    method: 'POST', headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ appid, user, scope: 'snsapi_base', kind: 'code', count: 1 }),
  });
  return r.status === 200 ? (await r.json()).codes[0] : null;
}

// Every node healthy; a code issued on the first provider redeems on the second, whose token
// the first accepts; the gates answer their auth subrequest (401: no session).
async function checkNodes(n) {
  for (const node of [...n.providers, ...n.gates]) {
    assert.strictEqual((await h.get(`${node.base}/healthz`)).status, 200, `${node.base} healthy`);
  }
  const code = await issue(n.providers[0], n.admin, n.app.appid, n.user);
  assert.ok(code, 'a code issued');
  const t = await h.exchange(n.providers[1].base, n.app.appid, n.app.secret, code);
  assert.ok(t.access_token, JSON.stringify(t));
  const auth = await h.getJson(`${n.providers[0].base}/sns/auth?access_token=${t.access_token}&openid=${t.openid}`);
  assert.strictEqual(auth.body.errcode, 0);
  const again = await h.exchange(n.providers[0].base, n.app.appid, n.app.secret, code);
  assert.strictEqual(again.errcode, 40163, 'the code was used, on every node');
  for (const g of n.gates) assert.strictEqual((await h.get(`${g.base}/wxauth/auth`)).status, 401);
}

async function onRecipe(prefix, fn) {
  const site = new Site();
  try {
    const r = recipe(prefix);
    await site.write(r.files);
    const redis = await startRedis(site);
    await fn({ site, r, redis });
  } finally {
    await site.stop();
  }
}

test('recipe 1, one Redis: as written, two providers and two gates share it', { skip }, async () => {
  await onRecipe('Recipe 1', async ({ site, r, redis }) => {
    assert.strictEqual(redis.redis.length, 1);
    const [db] = redis.redis;
    assert.strictEqual(site.cli(db, 'config', 'get', 'appendfsync').split('\n')[1], 'always');
    assert.strictEqual(site.cli(db, 'config', 'get', 'appendonly').split('\n')[1], 'yes');
    const anon = spawnSync(REDIS_CLI, ['-p', String(db.port), 'ping'], { encoding: 'utf8', env: cliEnv(null) });
    assert.match(anon.stdout + anon.stderr, /NOAUTH/, 'a password is required');
    for (const c of r.commands) await site.sh('10.0.0.5', c);
    await checkNodes(await startNodes(site, r));
  });
});

test('recipe 2, Sentinel: as written; kill -9 of the master, the nodes go on, no token lost', { skip }, async () => {
  await onRecipe('Recipe 2', async ({ site, r, redis }) => {
    assert.strictEqual(redis.redis.length, 3);
    assert.strictEqual(redis.sentinels.length, 3);
    const master = redis.redis.find((x) => x.host === '10.0.0.5');
    await h.waitFor(() => (site.cli(master, 'info', 'replication').match(/state=online/g) || []).length === 2, 15000,
      'two replicas in sync');
    await h.waitFor(() => redis.sentinels.every((s) => /num-other-sentinels\n2\b/.test(site.cli(s, 'sentinel', 'master', 'wxmaster'))),
      20000, 'the sentinels know each other');
    const n = await startNodes(site, r);
    await checkNodes(n);
    // Exchanges on alternate nodes until one succeeds again after the master's death.
    const got = [];
    let i = 0;
    const round = async () => {
      const code = await issue(n.providers[i % 2], n.admin, n.app.appid, n.user);
      const t = code ? await h.exchange(n.providers[++i % 2].base, n.app.appid, n.app.secret, code) : {};
      got.push({ at: Date.now(), ok: !!t.access_token, token: t.access_token, openid: t.openid });
      if (!t.access_token) await new Promise((res) => setTimeout(res, 100));
    };
    for (let k = 0; k < 20; k++) await round();
    const killed = Date.now();
    master.child.kill('SIGKILL');
    const end = killed + 60000;
    while (Date.now() < end && !(got.length && got[got.length - 1].ok && got[got.length - 1].at > killed + 1000 &&
      got.some((g) => !g.ok))) await round();
    const failed = got.filter((g) => !g.ok);
    assert.ok(got[got.length - 1].ok, 'the nodes went on by themselves');
    const seconds = failed.length ? (failed[failed.length - 1].at - killed) / 1000 : 0;
    console.log(`# recipe 2: kill -9 of the master, -1 for ${seconds.toFixed(1)} s (${failed.length} rounds); ${got.filter((g) => g.ok).length} tokens`);
    for (const g of got.filter((x) => x.ok)) {
      const a = await h.getJson(`${n.providers[0].base}/sns/auth?access_token=${g.token}&openid=${g.openid}`);
      assert.strictEqual(a.body.errcode, 0, 'every token a client received is still valid');
    }
    // (the sentinels may name the new master before they announce it: the log can come later)
    await h.waitFor(() => n.providers.some((p) => /redis master 'wxmaster' moved from 127\.0\.0\.1:\d+ to 127\.0\.0\.1:\d+ \(\+switch-master/.test(p.logs())),
      15000, 'the move logged');
    await checkNodes(n);
  });
});

test('recipe 3, Cluster: as written, three masters with a replica each', { skip }, async () => {
  await onRecipe('Recipe 3', async ({ site, r, redis }) => {
    assert.strictEqual(redis.redis.length, 6);
    for (const c of r.commands) await site.sh('10.0.0.5', c);
    await h.waitFor(() => redis.redis.every((x) => /cluster_state:ok/.test(site.cli(x, 'cluster', 'info'))),
      20000, 'the cluster up on every node');
    const masters = redis.redis.filter((x) => /^role:master\r?$/m.test(site.cli(x, 'info', 'replication')));
    assert.strictEqual(masters.length, 3);
    await h.waitFor(() => masters.every((m) => /state=online/.test(site.cli(m, 'info', 'replication'))), 20000,
      'each master\'s replica in sync');
    const n = await startNodes(site, r);
    await checkNodes(n);
    // The writes spread over the masters: a few more codes, then keys on each.
    for (let k = 0; k < 30; k++) assert.ok(await issue(n.providers[k % 2], n.admin, n.app.appid, n.user));
    for (const m of masters) assert.ok(Number(site.cli(m, 'dbsize')) > 0, `keys on master ${m.host}:${m.port}`);
  });
});

test('the systemd units: systemd-analyze verify has nothing to say', { skip: h.needs(ANALYZE) }, () => {
  const site = new Site();
  try {
    for (const b of recipe('Recipe 1').units) {
      const file = site.local('unit', path.join('etc/systemd/system', path.basename(b.file)));
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, b.text.replace(/\/usr\/local\/bin\/wxauth\b/g, BIN));
      const v = spawnSync(ANALYZE, ['verify', file], { encoding: 'utf8' });
      assert.strictEqual(v.status, 0, v.stderr);
      assert.strictEqual((v.stdout + v.stderr).trim(), '', `${b.file}: ${v.stdout}${v.stderr}`);
    }
  } finally {
    fs.rmSync(site.root, { recursive: true, force: true });
  }
});
