// redis.js — a real redis-server (Debian's /usr/bin/redis-server) on a free loopback port, for
// the tests of the Redis store: AOF on with appendfsync always, as docs/deploy.md tells users
// to run it, in a temporary directory; stopped (and killed if need be) by the test.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { freePort, upOrExit, onFreshPorts, spawnServer } = require('./harness');

const REDIS = '/usr/bin/redis-server';
const REDIS_CLI = '/usr/bin/redis-cli';

// Redis writes its pid file after it has bound its port, so the file (not an open port, which
// may belong to whoever took the port after freePort()) says that this Redis is up. A first
// start whose port was taken is tried again on a fresh port. replicaOf: the port of a master
// (on 127.0.0.1) this one replicates (a read-only replica, as Redis makes them by default).
async function startRedis({ replicaOf } = {}) {
  let port = 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxauth-redis-'));
  const pidfile = path.join(dir, 'redis.pid');
  let child = null;
  const launch = async () => {
    fs.rmSync(pidfile, { force: true });
    child = spawnServer(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      '--appendonly', 'yes', '--appendfsync', 'always', '--daemonize', 'no', '--loglevel', 'warning',
      '--pidfile', pidfile, ...(replicaOf ? ['--replicaof', '127.0.0.1', String(replicaOf)] : [])],
    { stdio: 'ignore' });
    if (!(await upOrExit(child, () => fs.existsSync(pidfile)))) {
      throw Object.assign(new Error(`redis could not bind port ${port}`), { portTaken: true });
    }
  };
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const signal = (sig) => new Promise((r) => { if (exited()) return r(); child.once('exit', r); child.kill(sig); });
  await onFreshPorts(async () => {
    port = await freePort();
    await launch();
  });
  return {
    port,
    url: `redis://127.0.0.1:${port}/0?prefix=t:`,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    // A hung Redis: stopped (SIGSTOP), its port still open and accepting, nothing answered.
    pause: () => { child.kill('SIGSTOP'); },
    resume: () => { child.kill('SIGCONT'); },
    restart: launch,
    cleanup: async () => { await signal('SIGKILL'); fs.rmSync(dir, { recursive: true, force: true }); },
    // A command through redis-cli: its answer as text.
    cli: (...args) => execFileSync(REDIS_CLI, ['-p', String(port), ...args], { encoding: 'utf8' }).trim(),
    // INFO's fields (INFO SECTION through redis-cli), as an object.
    info: (section) => Object.fromEntries(execFileSync(REDIS_CLI, ['-p', String(port), 'info', section],
      { encoding: 'utf8' }).split(/\r?\n/).filter((l) => l.includes(':')).map((l) => l.split(/:(.*)/s).slice(0, 2))),
  };
}

module.exports = { startRedis, REDIS };
