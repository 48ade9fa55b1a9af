// fake_sentinel.js — a stand-in sentinel for sentinel.test.js, in a process of its own (the
// tests' CLI calls block theirs): answers SENTINEL get-master-addr-by-name with the address last
// written to its stdin ("HOST PORT\n"), and announces the change to its subscribers as a real
// sentinel does ("+switch-master MASTER OLD-HOST OLD-PORT NEW-HOST NEW-PORT"), unless the line
// ends in "quiet". Answers SUBSCRIBE and PING (in subscribed mode too); prints "listening PORT"
// once it listens, "now HOST PORT" after each change, "subscribed" after each SUBSCRIBE. With "nosub" it never answers SUBSCRIBE
// or PING (its Pub/Sub is dead: a watcher must move to another sentinel).
//   node fake_sentinel.js HOST PORT [nosub]
'use strict';
const net = require('node:net');

let addr = [process.argv[2], process.argv[3]];
let master = 'm'; // the name last asked for
const nosub = process.argv[4] === 'nosub';
const subscribers = new Set();
const bulk = (s) => `$${Buffer.byteLength(s, 'latin1')}\r\n${s}\r\n`;
let pending = '';
process.stdin.on('data', (d) => {
  pending += d;
  const lines = pending.split('\n');
  pending = lines.pop();
  for (const l of lines) {
    const [host, port, quiet] = l.trim().split(/\s+/);
    if (!port) continue;
    const was = addr;
    addr = [host, port];
    if (quiet !== 'quiet') {
      const msg = `${master} ${was[0]} ${was[1]} ${host} ${port}`;
      for (const s of subscribers) s.write(`*3\r\n${bulk('message')}${bulk('+switch-master')}${bulk(msg)}`);
    }
    process.stdout.write(`now ${addr.join(' ')}\n`);
  }
});

const srv = net.createServer((sock) => {
  let buf = '';
  sock.setEncoding('latin1');
  sock.on('data', (d) => {
    buf += d;
    for (;;) { // one RESP array of bulk strings per command
      const m = /^\*(\d+)\r\n/.exec(buf);
      if (!m) return;
      let at = m[0].length;
      const args = [];
      for (let i = 0; i < Number(m[1]); i++) {
        const b = /^\$(\d+)\r\n/.exec(buf.slice(at));
        if (!b || buf.length < at + b[0].length + Number(b[1]) + 2) return;
        args.push(buf.substr(at + b[0].length, Number(b[1])));
        at += b[0].length + Number(b[1]) + 2;
      }
      buf = buf.slice(at);
      const cmd = args[0].toUpperCase();
      if (cmd === 'SENTINEL' && (args[1] || '').toLowerCase() === 'get-master-addr-by-name') {
        master = args[2] || master;
        sock.write(`*2\r\n${bulk(addr[0])}${bulk(addr[1])}`);
      } else if (nosub && (cmd === 'SUBSCRIBE' || cmd === 'PING')) {
        // no answer
      } else if (cmd === 'SUBSCRIBE' && args.length === 2) {
        subscribers.add(sock);
        sock.write(`*3\r\n${bulk('subscribe')}${bulk(args[1])}:1\r\n`);
        process.stdout.write('subscribed\n');
      } else if (cmd === 'PING') {
        sock.write(subscribers.has(sock) ? `*2\r\n${bulk('pong')}${bulk('')}` : '+PONG\r\n');
      } else {
        sock.write('-ERR not a sentinel command\r\n');
      }
    }
  });
  sock.on('error', () => {});
  sock.on('close', () => subscribers.delete(sock));
});
srv.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${srv.address().port}\n`));
