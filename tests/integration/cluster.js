// cluster.js — a Redis Cluster of three masters, each with a replica (Debian's redis-server,
// cluster-enabled, AOF with appendfsync always), on free loopback ports, made with
// `redis-cli --cluster create`, for the tests of the store's redis-cluster:// URL. A node is
// judged failed after 1 s (cluster-node-timeout), so a test's failover takes a few seconds.
// Each node's cluster bus is its port + 10000: ports are picked in 20000-22767 so that both
// stay below the kernel's ephemeral range (see harness.freePort).
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, execFile } = require('node:child_process');
const { upOrExit, onFreshPorts, spawnServer, waitFor } = require('./harness');
const { REDIS } = require('./redis');

const CLI = '/usr/bin/redis-cli';

function cli(port, ...args) {
  return execFileSync(CLI, ['-p', String(port), ...args], { encoding: 'utf8', timeout: 10000 }).trim();
}

function portFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function clusterPort() {
  for (let i = 0; i < 200; i++) {
    const p = 20000 + Math.floor(Math.random() * 2768);
    if (await portFree(p) && await portFree(p + 10000)) return p;
  }
  throw new Error('no free port pair for a cluster node');
}

async function startNode(root, i) {
  const dir = path.join(root, `n${i}`);
  fs.mkdirSync(dir);
  const pidfile = path.join(dir, 'redis.pid');
  const node = { port: 0, child: null, dir };
  const launch = async () => {
    fs.rmSync(pidfile, { force: true });
    node.child = spawnServer(REDIS, ['--port', String(node.port), '--bind', '127.0.0.1', '--dir', dir,
      '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--daemonize', 'no',
      '--loglevel', 'warning', '--pidfile', pidfile, '--cluster-enabled', 'yes',
      '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '1000',
      '--cluster-replica-validity-factor', '0'], { stdio: 'ignore' });
    if (!(await upOrExit(node.child, () => fs.existsSync(pidfile)))) {
      throw Object.assign(new Error(`a cluster node could not bind port ${node.port}`), { portTaken: true });
    }
  };
  await onFreshPorts(async () => {
    node.port = await clusterPort();
    await launch();
  });
  const exited = () => node.child.exitCode !== null || node.child.signalCode !== null;
  node.signal = (sig) => new Promise((r) => { if (exited()) return r(); node.child.once('exit', r); node.child.kill(sig); });
  node.kill = () => node.signal('SIGKILL');
  node.restart = launch;
  node.cli = (...args) => cli(node.port, ...args);
  return node;
}

// The cluster's state as one node sees it: { masters: [{port, slots}], ok }.
function view(port) {
  const info = cli(port, 'cluster', 'info');
  const masters = cli(port, 'cluster', 'nodes').split('\n').map((l) => l.split(' '))
    .filter((f) => f[2].includes('master') && !f[2].includes('fail'))
    .map((f) => ({ id: f[0], port: Number(f[1].split(':')[1].split('@')[0]), slots: f.slice(8) }));
  return { ok: /cluster_state:ok/.test(info), masters };
}

async function startCluster({ masters = 3, replicas = 1 } = {}) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wxauth-cluster-'));
  const nodes = [];
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) nodes.push(await startNode(root, i));
    execFileSync(CLI, ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas', String(replicas), '--cluster-yes'], { encoding: 'utf8', timeout: 30000 });
    await waitFor(() => nodes.every((n) => view(n.port).ok), 20000, 'the cluster to be ok');
    // Every replica attached and in sync, so that a failover has one to promote.
    await waitFor(() => nodes.filter((n) => /role:slave/.test(n.cli('info', 'replication')))
      .every((n) => /master_link_status:up/.test(n.cli('info', 'replication'))), 20000, 'replicas in sync');
  } catch (e) {
    await Promise.all(nodes.map((n) => n.kill()));
    fs.rmSync(root, { recursive: true, force: true });
    throw e;
  }
  const seeds = nodes.slice(0, 2).map((n) => `127.0.0.1:${n.port}`).join(',');
  return {
    nodes,
    url: `redis-cluster://${seeds}`,
    view: () => view(nodes.find((n) => n.child.exitCode === null && n.child.signalCode === null).port),
    // The master serving slot s now, as the cluster says.
    masterOf: (s) => {
      const v = view(nodes.find((n) => n.child.exitCode === null && n.child.signalCode === null).port);
      const m = v.masters.find((x) => x.slots.some((r) => {
        const [lo, hi] = r.split('-').map(Number);
        return s >= lo && s <= (hi === undefined ? lo : hi);
      }));
      return m && nodes.find((n) => n.port === m.port);
    },
    // redis-cli --cluster reshard, moving n slots from one master to another (asynchronously:
    // resolves when it is done, with its output).
    reshard: (from, to, n) => new Promise((resolve, reject) => {
      execFile(CLI, ['--cluster', 'reshard', `127.0.0.1:${from.port}`, '--cluster-from', from.cli('cluster', 'myid'),
        '--cluster-to', to.cli('cluster', 'myid'), '--cluster-slots', String(n), '--cluster-yes',
        '--cluster-pipeline', '10'], { encoding: 'utf8', timeout: 120000 },
      (err, out) => (err ? reject(new Error(`${err.message}\n${out}`)) : resolve(out)));
    }),
    cleanup: async () => {
      await Promise.all(nodes.map((n) => n.kill()));
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

module.exports = { startCluster, cli, clusterPort };
