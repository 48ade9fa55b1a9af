// fake_sentinel.js — a stand-in sentinel for sentinel.test.js, in a process of its own (the
// tests' CLI calls block theirs): answers SENTINEL get-master-addr-by-name with the address last
// written to its stdin ("HOST PORT\n"), prints "listening PORT" once it listens.
//   node fake_sentinel.js HOST PORT
'use strict';
const net = require('node:net');

let addr = [process.argv[2], process.argv[3]];
let pending = '';
process.stdin.on('data', (d) => {
  pending += d;
  const lines = pending.split('\n');
  pending = lines.pop();
  for (const l of lines) if (l.trim()) addr = l.trim().split(/\s+/);
  process.stdout.write(`now ${addr.join(' ')}\n`);
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
      if (args[0].toUpperCase() === 'SENTINEL' && (args[1] || '').toLowerCase() === 'get-master-addr-by-name') {
        const [host, port] = addr;
        sock.write(`*2\r\n$${host.length}\r\n${host}\r\n$${port.length}\r\n${port}\r\n`);
      } else {
        sock.write('-ERR not a sentinel command\r\n');
      }
    }
  });
  sock.on('error', () => {});
});
srv.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${srv.address().port}\n`));
