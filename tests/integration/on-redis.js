// on-redis.js — runs one test file with every store on Redis: starts a redis-server of its own
// (redis.js: free loopback port, AOF with appendfsync always, a temporary directory), hands its
// URL to the tests in WXAUTH_TEST_REDIS (harness.js then gives each database, provider, gate
// and stack a key prefix of its own on it), and stops it when the file's tests end.
// With --cluster, the Redis is a cluster of three masters with a replica each (cluster.js), and
// the URL is its redis-cluster:// one.
//   node on-redis.js [--cluster] FILE.test.js
'use strict';
const fs = require('node:fs');
const { spawn } = require('node:child_process');
const { startRedis, REDIS } = require('./redis');

async function main() {
  const cluster = process.argv[2] === '--cluster';
  const file = process.argv[cluster ? 3 : 2];
  if (!fs.existsSync(REDIS)) { // a skip (77) unless make check said nothing may skip
    console.error(`${REDIS} is not installed`);
    process.exit(process.env.WXAUTH_NO_SKIP === '1' ? 1 : 77);
  }
  const r = cluster ? await require('./cluster').startCluster() : await startRedis();
  const url = cluster ? r.url : `redis://127.0.0.1:${r.port}/0`;
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', file], {
    stdio: 'inherit', env: { ...process.env, WXAUTH_TEST_REDIS: url },
  });
  const stop = (sig) => { child.kill(sig); };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  const code = await new Promise((res) => child.on('exit', (c, s) => res(c === null ? 1 : c)));
  await r.cleanup();
  process.exit(code);
}

main().catch((e) => { console.error(e); process.exit(1); });
