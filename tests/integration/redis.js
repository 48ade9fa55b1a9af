// redis.js — a real redis-server (Debian's /usr/bin/redis-server) on a free loopback port, for
// the tests of the Redis store: AOF on with appendfsync always, as docs/deploy.md tells users
// to run it, in a temporary directory; stopped (and killed if need be) by the test.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const { spawn } = require('node:child_process');
const { freePort } = require('./harness');

const REDIS = '/usr/bin/redis-server';

function waitPort(port, ms = 5000) {
  const until = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const once = () => {
      const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(); });
      s.on('error', () => (Date.now() > until ? reject(new Error(`redis on ${port} did not open`)) : setTimeout(once, 30)));
    };
    once();
  });
}

async function startRedis() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxauth-redis-'));
  let child = null;
  const launch = async () => {
    child = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      '--appendonly', 'yes', '--appendfsync', 'always', '--daemonize', 'no', '--loglevel', 'warning'],
    { stdio: 'ignore' });
    await waitPort(port);
  };
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const signal = (sig) => new Promise((r) => { if (exited()) return r(); child.once('exit', r); child.kill(sig); });
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0?prefix=t:`,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    restart: launch,
    cleanup: async () => { await signal('SIGKILL'); fs.rmSync(dir, { recursive: true, force: true }); },
  };
}

module.exports = { startRedis, REDIS };
