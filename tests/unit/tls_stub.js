// tls_stub.js — a tiny HTTPS stand-in for api.weixin.qq.com used by test_client_tls.c.
// Usage: node tls_stub.js CERT KEY. Prints "listening PORT" once ready on 127.0.0.1.
// Answers are chosen by path and by the access_token parameter, so the client's transport
// checks (oversized, HTML, HTTP errors, redirects, a userinfo for another openid) can be hit.
'use strict';
const https = require('node:https');
const fs = require('node:fs');

const [cert, key] = process.argv.slice(2);
const TOKEN = {
  openid: 'ojHK1v9VKtd2r7BrUqRSGnymyH_Q', scope: 'snsapi_userinfo', expires_in: 7200,
  access_token: '83_0_fJRGunWPeBFtTLSstub', refresh_token: '83_7OtRSzY8gOgTLSstub',
  unionid: 'oLDegwLanAyzhdUfaBqh6Dt4MqtY', is_snapshotuser: 1,
};

const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (req, res) => {
  const url = new URL(req.url, 'https://api.weixin.qq.com');
  const at = url.searchParams.get('access_token');
  // WeChat historically answered JSON as text/plain: the client must not care.
  const json = (o) => { res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end(JSON.stringify(o)); };
  if (at === 'big') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ errcode: 0, errmsg: 'ok', pad: 'x'.repeat(70000) }));
  } else if (at === 'html') {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<html><body>502 Bad Gateway</body></html>');
  } else if (at === 'status500') {
    res.writeHead(500, { 'Content-Type': 'application/json' });
    res.end('{"errcode":0,"errmsg":"ok"}');
  } else if (at === 'redirect') {
    res.writeHead(302, { Location: 'https://api.weixin.qq.com/sns/auth?access_token=ok' });
    res.end();
  } else if (url.pathname === '/sns/oauth2/access_token') {
    json(TOKEN);
  } else if (url.pathname === '/sns/userinfo') {
    // Always someone else's profile: the client must refuse it.
    json({ openid: 'oIMPOSTOR0000000000000000000', nickname: 'mallory', sex: 1, privilege: [] });
  } else if (url.pathname === '/sns/auth') {
    json({ errcode: 0, errmsg: 'ok' });
  } else {
    json({ errcode: 40066, errmsg: 'invalid url' });
  }
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
