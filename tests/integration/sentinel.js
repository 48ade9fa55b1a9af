// sentinel.js — a Redis master, its replica(s) and three sentinels (Debian's redis-server, run
// with --sentinel) on free loopback ports, for the tests of the store's redis-sentinel:// URL.
// Sentinels judge a master down after 1 s and may fail over every 3 s, so a test's failover
// takes a few seconds, not the default minutes.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { freePort, upOrExit, onFreshPorts, spawnServer, waitFor } = require('./harness');
const { startRedis, REDIS } = require('./redis');

const CLI = '/usr/bin/redis-cli';
const NAME = 'wxmaster';

function cli(port, ...args) {
  return execFileSync(CLI, ['-p', String(port), ...args], { encoding: 'utf8' }).trim();
}

async function startSentinel(masterPort) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxauth-sentinel-'));
  const pidfile = path.join(dir, 's.pid');
  let port = 0, child = null;
  await onFreshPorts(async () => {
    port = await freePort();
    const conf = path.join(dir, 'sentinel.conf'); // sentinels rewrite their file: it must be theirs
    fs.writeFileSync(conf, [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `pidfile ${pidfile}`,
      `sentinel monitor ${NAME} 127.0.0.1 ${masterPort} 2`, `sentinel down-after-milliseconds ${NAME} 1000`,
      `sentinel failover-timeout ${NAME} 3000`, `sentinel parallel-syncs ${NAME} 1`, ''].join('\n'));
    fs.rmSync(pidfile, { force: true });
    child = spawnServer(REDIS, [conf, '--sentinel', '--daemonize', 'no', '--loglevel', 'warning'], { stdio: 'ignore' });
    if (!(await upOrExit(child, () => fs.existsSync(pidfile)))) {
      throw Object.assign(new Error(`a sentinel could not bind port ${port}`), { portTaken: true });
    }
  });
  return {
    port,
    // a hung sentinel: its port accepts connections, nothing is answered
    pause: () => { child.kill('SIGSTOP'); },
    resume: () => { child.kill('SIGCONT'); },
    stop: async () => {
      if (child.exitCode === null && !child.signalCode) { const e = new Promise((r) => child.once('exit', r)); child.kill('SIGKILL'); await e; }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// The whole set, ready: every sentinel knows the master, its replicas and the other sentinels.
// replicas: 2 leaves one to confirm writes (wait=1) once the other has been promoted.
async function startSentinels({ prefix = 't:', replicas: nrep = 1 } = {}) {
  const master = await startRedis();
  const replicas = [];
  for (let i = 0; i < nrep; i++) replicas.push(await startRedis({ replicaOf: master.port }));
  const replica = replicas[0];
  const sentinels = [];
  const stop = async () => {
    for (const s of sentinels) { s.resume(); await s.stop(); }
    for (const r of replicas) await r.cleanup();
    await master.cleanup();
  };
  try {
    await waitFor(() => replicas.every((r) => r.info('replication').master_link_status === 'up'), 10000, 'the replicas in sync');
    for (let i = 0; i < 3; i++) sentinels.push(await startSentinel(master.port));
    await waitFor(() => sentinels.every((s) => {
      const m = cli(s.port, 'sentinel', 'master', NAME).split('\n');
      const f = (k) => m[m.indexOf(k) + 1];
      return f('num-slaves') === String(nrep) && f('num-other-sentinels') === '2';
    }), 20000, 'the sentinels know the replica and each other');
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    master, replica, replicas, sentinels, name: NAME, stop,
    url: `redis-sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${NAME}?prefix=${prefix}`,
    // the port of the master the sentinels name now
    masterPort: () => Number(cli(sentinels[0].port, 'sentinel', 'get-master-addr-by-name', NAME).split('\n')[1]),
    role: (port) => cli(port, 'role').split('\n')[0],
  };
}

module.exports = { startSentinels, NAME };
