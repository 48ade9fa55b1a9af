/*
 * gate.c — `wxauth gate`: WeChat login in front of any web app through nginx auth_request
 * (Caddy forward_auth and Traefik ForwardAuth speak the same protocol). First slice:
 *
 *   GET PREFIX/auth      the subrequest: 202 + X-WeChat-* headers for a valid session, 401
 *                        without one, 403 when the route's allow-list (X-WxAuth-Allow-OpenIDs)
 *                        excludes the user; X-WxAuth-Require-Scope: snsapi_userinfo asks for a
 *                        session with the user's profile
 *   GET PREFIX/start     ?rd=PATH&scope=S: a sealed state, then WeChat's authorize URL; rd only
 *                        ever leads back to this site
 *   GET PREFIX/callback  denial → a page (try again, or continue with snsapi_base); bad state →
 *                        403 and no token call; a code → session cookie and 303 to rd; the same
 *                        code again within 5 minutes (refresh, Back, WeChat's double callback)
 *                        → the same session, never an error
 *   GET PREFIX/sign_out  ends the session for real (revocation list) and clears the cookie
 *   GET PREFIX/userinfo  the session as JSON
 *   GET /healthz, /metrics
 *
 * Sessions are sealed cookies (XChaCha20-Poly1305 via lib/seal). The revocation list and the
 * redeemed-code cache live in this process for now (the shared store comes with issue 5).
 */
#include <qrencode.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <wxauth/wxauth.h>

#include "clock.h"
#include "config.h"
#include "gate.h"
#include "html.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "seal.h"

#define GATE_CODE_CACHE 4096 /* codes redeemed in the last 5 minutes */
#define GATE_CODE_TTL   300
#define GATE_REVOKED    4096 /* signed-out sessions remembered until they expire */
#define GATE_COOKIE_MAX 3072 /* a sealed session cookie stays far below 4 KiB: never chunked */

static const struct wx_cfg_directive directives[] = {
    {"listen", WX_CFG_STR, "127.0.0.1:8710", 0, 0, "address:port to listen on (port 0: any free)"},
    {"public-url", WX_CFG_STR, NULL, 0, 0,
     "the site's public base URL, e.g. https://www.example.com (builds redirect_uri)"},
    {"prefix", WX_CFG_STR, "/wxauth", 0, 0, "path prefix of the gate's endpoints"},
    {"appid", WX_CFG_STR, NULL, 0, 0, "the Official Account's AppID"},
    {"secret", WX_CFG_STR, NULL, 0, 0, "its AppSecret (prefer WXAUTH_SECRET)"},
    {"open-base", WX_CFG_STR, WX_DEFAULT_OPEN_BASE, 0, 0, "authorize server base URL"},
    {"api-base", WX_CFG_STR, WX_DEFAULT_API_BASE, 0, 0, "API server base URL"},
    {"ca-file", WX_CFG_STR, NULL, 0, 0, "CA bundle for TLS verification (default: system)"},
    {"scope", WX_CFG_STR, "snsapi_base", 0, 0, "default scope: snsapi_base or snsapi_userinfo"},
    {"cookie-secret", WX_CFG_STR, NULL, 0, 0,
     "64 hex digits sealing sessions and states (unset: random, sessions end at restart)"},
    {"cookie-name", WX_CFG_STR, "_wxauth", 0, 0, "session cookie name"},
    {"session-ttl", WX_CFG_INT, "604800", 60, 31536000, "absolute session lifetime, seconds"},
    {"threads", WX_CFG_INT, "8", 1, 64, "HTTP worker threads (token calls block one each)"},
    {"desktop", WX_CFG_STR, "qr", 0, 0,
     "browsers outside WeChat: qr (a page with a QR code to scan with WeChat) or pass (let "
     "them through, e.g. to a wxauth provider in sandbox mode)"},
    {"log-level", WX_CFG_STR, "info", 0, 0, "error, warn, info or debug"},
    {"help", WX_CFG_BOOL, "false", 0, 0, "show this help"},
};

/* The session, sealed into the cookie. */
struct session {
    unsigned char sid[16];
    int64_t expires;
    int scope;
    char openid[WX_MAX_ID + 1];
    char unionid[WX_MAX_ID + 1];
    char nickname[WX_MAX_NICKNAME + 1];
    char avatar[WX_MAX_URLTEXT + 1];
};

struct code_entry {
    unsigned char hash[16];
    int64_t expires;
    char cookie[GATE_COOKIE_MAX];
    char rd[WX_STATE_MAX_PATH + 1];
};

struct gate {
    struct wx_cfg cfg;
    struct wx_client *client;
    struct wx_state_key key;
    unsigned char seal_key[32];
    const char *prefix, *public_url, *cookie_name;
    int secure, default_scope, desktop_qr;
    int64_t session_ttl;
    struct wx_log log;
    struct wx_metrics metrics;
    pthread_mutex_t mu;
    struct code_entry codes[GATE_CODE_CACHE];
    size_t codes_next;
    struct {
        unsigned char sid[16];
        int64_t until;
    } revoked[GATE_REVOKED];
    size_t revoked_next;
};

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* ---- session cookie ---- */

static void put_str(struct wx_buf *b, const char *s)
{
    wx_buf_puts(b, s);
    wx_buf_append(b, "\n", 1);
}

/* Seals s into "name=value; attributes". */
static int session_cookie(struct gate *g, const struct session *s, struct wx_buf *out)
{
    struct wx_buf plain;
    char sid[33], num[32];
    wx_buf_init(&plain, WX_SEAL_MAX_PLAIN);
    sodium_bin2hex(sid, sizeof sid, s->sid, sizeof s->sid);
    snprintf(num, sizeof num, "%lld", (long long)s->expires);
    put_str(&plain, sid);
    put_str(&plain, num);
    put_str(&plain, s->scope == 2 ? "snsapi_userinfo" : "snsapi_base");
    put_str(&plain, s->openid);
    put_str(&plain, s->unionid);
    put_str(&plain, s->nickname);
    put_str(&plain, s->avatar);
    int rc = wx_buf_printf(out, "%s=", g->cookie_name);
    if (!rc)
        rc = wx_seal(g->seal_key, "gate-session", plain.ptr, plain.len, out);
    if (!rc)
        rc = wx_buf_printf(out, "; Path=/; HttpOnly; SameSite=Lax; Max-Age=%lld%s",
                           (long long)(s->expires - now_s()), g->secure ? "; Secure" : "");
    wx_buf_free(&plain);
    return rc;
}

/* Splits the next '\n'-terminated field off *p into dst. */
static int take(char **p, char *dst, size_t dstsz)
{
    char *nl = strchr(*p, '\n');
    if (!nl || (size_t)(nl - *p) >= dstsz)
        return -1;
    memcpy(dst, *p, (size_t)(nl - *p));
    dst[nl - *p] = '\0';
    *p = nl + 1;
    return 0;
}

static int revoked(struct gate *g, const unsigned char sid[16])
{
    int hit = 0;
    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; i < GATE_REVOKED && !hit; i++)
        hit = g->revoked[i].until > now_s() && !sodium_memcmp(g->revoked[i].sid, sid, 16);
    pthread_mutex_unlock(&g->mu);
    return hit;
}

/* The current session, or 0 when the cookie is absent, forged, expired or signed out. */
static int session_get(struct gate *g, struct wx_http_req *req, struct session *s)
{
    const char *c = wx_http_cookie(req, g->cookie_name);
    char plain[WX_SEAL_MAX_PLAIN + 1], sid[33], num[32], scope[32];
    size_t n = 0;
    memset(s, 0, sizeof *s);
    if (!c ||
        wx_unseal(g->seal_key, "gate-session", wx_slice_cstr(c), plain, WX_SEAL_MAX_PLAIN, &n))
        return 0;
    plain[n] = '\0';
    char *p = plain;
    size_t bl = 0;
    if (take(&p, sid, sizeof sid) || take(&p, num, sizeof num) || take(&p, scope, sizeof scope) ||
        take(&p, s->openid, sizeof s->openid) || take(&p, s->unionid, sizeof s->unionid) ||
        take(&p, s->nickname, sizeof s->nickname) || take(&p, s->avatar, sizeof s->avatar) ||
        sodium_hex2bin(s->sid, sizeof s->sid, sid, strlen(sid), NULL, &bl, NULL) || bl != 16)
        return 0;
    s->expires = strtoll(num, NULL, 10);
    s->scope = !strcmp(scope, "snsapi_userinfo") ? 2 : 1;
    return s->expires > now_s() && s->openid[0] && !revoked(g, s->sid);
}

/* ---- pages ---- */

static void page(struct gate *g, struct wx_http_req *req, int status, const char *title,
                 const char *text, const char *rd, int offer_base)
{
    struct wx_buf *b = &req->out;
    wx_buf_reset(b);
    wx_http_page(req, status);
    wx_buf_puts(b, "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta "
                   "name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>");
    wx_html_escape(b, title);
    wx_buf_puts(b, "</title></head><body><h1>");
    wx_html_escape(b, title);
    wx_buf_puts(b, "</h1><p>");
    wx_html_escape(b, text);
    wx_buf_puts(b, "</p>");
    if (rd) {
        struct wx_buf enc;
        wx_buf_init(&enc, 1024);
        wx_pct_encode(&enc, wx_slice_cstr(rd));
        wx_buf_printf(b,
                      "<p><a href=\"%s/start?scope=snsapi_userinfo&amp;rd=%s\">重新授权 · Try "
                      "again</a></p>",
                      g->prefix, enc.ptr ? enc.ptr : "%2F");
        if (offer_base)
            wx_buf_printf(b,
                          "<p><a href=\"%s/start?scope=snsapi_base&amp;rd=%s\">不授权，继续"
                          "使用基础功能 · Continue without your profile</a></p>",
                          g->prefix, enc.ptr ? enc.ptr : "%2F");
        wx_buf_free(&enc);
    }
    wx_buf_puts(b, "</body></html>");
}

/* rd only ever leads back to this site: a relative path, else "/". */
static const char *safe_rd(const char *rd)
{
    if (!rd || rd[0] != '/' || rd[1] == '/' || rd[1] == '\\')
        return "/";
    for (const char *c = rd; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == '\\')
            return "/";
    return rd;
}

/* ---- routes ---- */

static int header_list_has(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        if ((size_t)(e - p) == n && !memcmp(p, item, n))
            return 1;
        p = e;
    }
    return 0;
}

static void route_auth(struct gate *g, struct wx_http_req *req)
{
    struct session s;
    const char *need = wx_http_header(req, "X-WxAuth-Require-Scope");
    const char *allow = wx_http_header(req, "X-WxAuth-Allow-OpenIDs");
    if (!session_get(g, req, &s) || (need && !strcmp(need, "snsapi_userinfo") && s.scope != 2)) {
        wx_http_text(req, 401, "no valid session\n");
        return;
    }
    if (allow && *allow && !header_list_has(allow, s.openid) &&
        !(s.unionid[0] && header_list_has(allow, s.unionid))) {
        wx_http_text(req, 403, "not on this route's allow-list\n");
        return;
    }
    struct wx_buf nick;
    wx_buf_init(&nick, WX_MAX_NICKNAME * 3 + 1);
    wx_pct_encode(&nick, wx_slice_cstr(s.nickname));
    wx_http_text(req, 202, "");
    wx_http_set_header(req, "X-WeChat-OpenID", s.openid);
    if (s.unionid[0])
        wx_http_set_header(req, "X-WeChat-UnionID", s.unionid);
    wx_http_set_header(req, "X-WeChat-Scope", s.scope == 2 ? "snsapi_userinfo" : "snsapi_base");
    if (s.scope == 2) {
        wx_http_set_header(req, "X-WeChat-Nickname", nick.ptr ? nick.ptr : "");
        wx_http_set_header(req, "X-WeChat-Avatar", s.avatar);
    }
    wx_buf_free(&nick);
}

/* Appends an SVG of the QR code of text, as a data: URI image (the page CSP allows data:). */
static int qr_img(struct wx_buf *b, const char *text)
{
    QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (!qr)
        return WX_ERR_LIMIT;
    struct wx_buf svg;
    int w = qr->width, rc;
    wx_buf_init(&svg, 1 << 20);
    rc = wx_buf_printf(&svg,
                       "<svg xmlns='http://www.w3.org/2000/svg' viewBox='-4 -4 %d %d' "
                       "shape-rendering='crispEdges'><rect x='-4' y='-4' width='%d' height='%d' "
                       "fill='#fff'/><path fill='#000' d='",
                       w + 8, w + 8, w + 8, w + 8);
    for (int y = 0; rc == WX_OK && y < w; y++)
        for (int x = 0; rc == WX_OK && x < w; x++)
            if (qr->data[y * w + x] & 1)
                rc = wx_buf_printf(&svg, "M%d %dh1v1h-1z", x, y);
    if (rc == WX_OK)
        rc = wx_buf_puts(&svg, "'/></svg>");
    if (rc == WX_OK)
        rc = wx_buf_puts(b,
                         "<img width=\"240\" height=\"240\" alt=\"QR\" src=\"data:image/svg+xml,");
    if (rc == WX_OK)
        rc = wx_pct_encode(b, (struct wx_slice){svg.ptr, svg.len});
    if (rc == WX_OK)
        rc = wx_buf_puts(b, "\">");
    wx_buf_free(&svg);
    QRcode_free(qr);
    return rc;
}

/* Outside WeChat: a page with the QR code of the page the user wanted, to open in WeChat. */
static void desktop_page(struct gate *g, struct wx_http_req *req, const char *rd)
{
    char url[WX_MAX_URL];
    snprintf(url, sizeof url, "%s%s", g->public_url, rd);
    struct wx_buf *b = &req->out;
    wx_buf_reset(b);
    wx_http_page(req, 200);
    wx_buf_puts(b,
                "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta "
                "name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>请在"
                "微信中打开</title></head><body><h1>请用微信扫码打开</h1><p>这个页面需要微信登录。"
                "Scan with WeChat to open this page there.</p>");
    if (qr_img(b, url) != WX_OK)
        wx_buf_puts(b, "<p>(QR code unavailable: the URL is too long)</p>");
    wx_buf_puts(b, "<p>");
    wx_html_escape(b, url);
    wx_buf_puts(b, "</p></body></html>");
}

static void route_start(struct gate *g, struct wx_http_req *req)
{
    struct wx_query q;
    if (wx_query_parse(&q, req->query, WX_MAX_URL)) {
        page(g, req, 400, "参数错误", "Malformed query string.", NULL, 0);
        return;
    }
    /*
     * rd is the last parameter, taken raw when it starts with '/': nginx's
     * `return 302 PREFIX/start?rd=$request_uri` passes the original URI unencoded, query and all.
     */
    const char *rd = safe_rd(wx_query_get(&q, "rd")), *scope = wx_query_get(&q, "scope");
    char raw_rd[WX_MAX_URL];
    const char *at = strstr(req->target, "?rd=/");
    if (!at)
        at = strstr(req->target, "&rd=/");
    if (at) {
        snprintf(raw_rd, sizeof raw_rd, "%s", at + 4);
        rd = safe_rd(raw_rd);
    }
    if (!scope || (strcmp(scope, "snsapi_base") && strcmp(scope, "snsapi_userinfo")))
        scope = g->default_scope == 2 ? "snsapi_userinfo" : "snsapi_base";
    const char *ua = wx_http_header(req, "User-Agent");
    if (g->desktop_qr && (!ua || !strstr(ua, "MicroMessenger"))) {
        desktop_page(g, req, rd);
        wx_query_free(&q);
        return;
    }
    if (strlen(rd) > WX_STATE_MAX_PATH - 8)
        rd = "/"; /* longer return paths do not fit the state; the site's root is safe */
    const char *bid = wx_http_cookie(req, "_wxauth_b");
    char state[WX_MAX_STATE + 1], redirect[600], newbid[33], cookie[128] = "";
    struct wx_state_keys keys = {&g->key, 1};
    if (!bid || strlen(bid) != 32) {
        unsigned char raw[16];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(newbid, sizeof newbid, raw, sizeof raw);
        snprintf(cookie, sizeof cookie, "_wxauth_b=%s; Path=/; HttpOnly; SameSite=Lax%s", newbid,
                 g->secure ? "; Secure" : "");
        bid = NULL; /* bind from the second visit on: WeChat's browser may drop cookies */
    }
    snprintf(redirect, sizeof redirect, "%s%s/callback", g->public_url, g->prefix);
    struct wx_authorize_params p = {redirect, scope, state, 1, 0, 0};
    struct wx_buf url;
    wx_buf_init(&url, 4096);
    if (wx_state_seal(&keys, rd, bid ? wx_slice_cstr(bid) : (struct wx_slice){NULL, 0}, 600,
                      now_s(), state, NULL) ||
        wx_authorize_url(g->client, &p, &url)) {
        page(g, req, 500, "出错了", "Could not build the authorize URL.", NULL, 0);
    } else {
        wx_http_redirect(req, 302, url.ptr);
        if (cookie[0])
            wx_http_set_header(req, "Set-Cookie", cookie);
    }
    wx_buf_free(&url);
    wx_query_free(&q);
}

static void code_hash(const char *code, unsigned char out[16])
{
    crypto_generichash(out, 16, (const unsigned char *)code, strlen(code), NULL, 0);
}

/* A code redeemed in the last 5 minutes: its session cookie (copied into out). */
static int code_cached(struct gate *g, const char *code, char *out, size_t outsz, char *rd)
{
    unsigned char h[16];
    int hit = 0;
    code_hash(code, h);
    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; i < GATE_CODE_CACHE && !hit; i++) {
        struct code_entry *e = &g->codes[i];
        if (e->expires > now_s() && !sodium_memcmp(e->hash, h, 16)) {
            snprintf(out, outsz, "%s", e->cookie);
            snprintf(rd, WX_STATE_MAX_PATH + 1, "%s", e->rd);
            hit = 1;
        }
    }
    pthread_mutex_unlock(&g->mu);
    return hit;
}

static void code_remember(struct gate *g, const char *code, const char *cookie, const char *rd)
{
    pthread_mutex_lock(&g->mu);
    struct code_entry *e = &g->codes[g->codes_next++ % GATE_CODE_CACHE];
    code_hash(code, e->hash);
    e->expires = now_s() + GATE_CODE_TTL;
    snprintf(e->cookie, sizeof e->cookie, "%s", cookie);
    snprintf(e->rd, sizeof e->rd, "%s", rd);
    pthread_mutex_unlock(&g->mu);
}

static void route_callback(struct gate *g, struct wx_http_req *req)
{
    struct wx_callback cb;
    struct wx_state_keys keys = {&g->key, 1};
    const char *bid = wx_http_cookie(req, "_wxauth_b");
    char cookie[GATE_COOKIE_MAX], rd[WX_STATE_MAX_PATH + 1];
    (void)keys;
    if (wx_callback_parse(g->client, req->query,
                          bid ? wx_slice_cstr(bid) : (struct wx_slice){NULL, 0}, now_s(), &cb)) {
        page(g, req, 500, "出错了", "Out of memory.", NULL, 0);
        return;
    }
    if (cb.kind == WX_CALLBACK_INVALID) {
        req->errcode = 0;
        page(g, req, 403, "登录链接无效或已过期", cb.reason, "/", 0);
        return;
    }
    const char *back = cb.state.return_path[0] ? cb.state.return_path : "/";
    if (cb.kind == WX_CALLBACK_DENIED) {
        page(g, req, 200, "你拒绝了授权",
             "没关系：你可以重新授权，或不提供昵称头像，继续使用基础功能。You declined; try again "
             "or "
             "continue without your profile.",
             back, 1);
        return;
    }
    if (code_cached(g, cb.code, cookie, sizeof cookie, rd)) {
        /* Refresh, Back, or WeChat's second callback: the same session, no second exchange. */
        wx_http_redirect(req, 303, rd);
        wx_http_set_header(req, "Set-Cookie", cookie);
        return;
    }
    struct wx_token tok;
    struct wx_userinfo ui = {0};
    struct wx_error err = {0};
    int rc = wx_exchange_code(g->client, cb.code, &tok, &err);
    if (rc == WX_OK && !strcmp(tok.scope, "snsapi_userinfo"))
        rc = wx_get_userinfo(g->client, tok.access_token, tok.openid, "zh_CN", &ui, &err);
    if (rc != WX_OK) {
        const struct wx_errcode_info *e = wx_errcode_explain(err.errcode);
        req->errcode = err.errcode;
        page(g, req, 502, "登录没有成功", e ? e->hint_zh : err.errmsg, back, 0);
        return;
    }
    struct session s = {0};
    randombytes_buf(s.sid, sizeof s.sid);
    s.expires = now_s() + g->session_ttl;
    s.scope = !strcmp(tok.scope, "snsapi_userinfo") ? 2 : 1;
    snprintf(s.openid, sizeof s.openid, "%s", tok.openid);
    snprintf(s.unionid, sizeof s.unionid, "%s", ui.unionid[0] ? ui.unionid : tok.unionid);
    snprintf(s.nickname, sizeof s.nickname, "%s", ui.nickname);
    snprintf(s.avatar, sizeof s.avatar, "%s", ui.headimgurl);
    sodium_memzero(&tok, sizeof tok);
    struct wx_buf c;
    wx_buf_init(&c, GATE_COOKIE_MAX - 1);
    if (session_cookie(g, &s, &c)) {
        page(g, req, 500, "出错了", "The session does not fit in a cookie.", back, 0);
    } else {
        code_remember(g, cb.code, c.ptr, back);
        wx_http_redirect(req, 303, back);
        wx_http_set_header(req, "Set-Cookie", c.ptr);
    }
    wx_buf_free(&c);
}

static void route_sign_out(struct gate *g, struct wx_http_req *req)
{
    struct session s;
    if (session_get(g, req, &s)) {
        pthread_mutex_lock(&g->mu);
        size_t i = g->revoked_next++ % GATE_REVOKED;
        memcpy(g->revoked[i].sid, s.sid, 16);
        g->revoked[i].until = s.expires;
        pthread_mutex_unlock(&g->mu);
    }
    char cookie[160];
    snprintf(cookie, sizeof cookie, "%s=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0%s",
             g->cookie_name, g->secure ? "; Secure" : "");
    /* A page of its own: redirecting to a protected page would log a snsapi_base user straight
     * back in, silently, as WeChat does. */
    page(g, req, 200, "你已退出 · Signed out",
         "下次访问受保护的页面时会重新登录。The next protected page logs you in again.", "/", 0);
    wx_http_set_header(req, "Set-Cookie", cookie);
}

static void route_userinfo(struct gate *g, struct wx_http_req *req)
{
    struct session s;
    wx_buf_reset(&req->out);
    if (!session_get(g, req, &s)) {
        wx_buf_puts(&req->out, "{\"error\":\"no valid session\"}");
        wx_http_json(req, 401);
        return;
    }
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "openid", s.openid, "unionid", s.unionid,
                  "scope", s.scope == 2 ? "snsapi_userinfo" : "snsapi_base", "nickname", s.nickname,
                  "headimgurl", s.avatar, "expires", (json_int_t)s.expires);
    if (!o || wx_json_append(&req->out, o))
        wx_buf_puts(&req->out, "{\"error\":\"internal\"}");
    json_decref(o);
    wx_http_json(req, 200);
}

static void handle(struct wx_http_req *req, void *ud)
{
    struct gate *g = ud;
    size_t n = strlen(g->prefix);
    if (wx_slice_eq(req->path, "/healthz")) {
        req->route = "healthz";
        wx_http_text(req, 200, "ok\n");
        return;
    }
    if (wx_slice_eq(req->path, "/metrics")) {
        req->route = "metrics";
        wx_buf_reset(&req->out);
        wx_metrics_render(&g->metrics, "wxauth_gate", &req->out);
        req->status = 200;
        req->content_type = "text/plain; version=0.0.4; charset=utf-8";
        return;
    }
    struct wx_slice rest = {req->path.ptr + n, req->path.len > n ? req->path.len - n : 0};
    if (req->path.len <= n || memcmp(req->path.ptr, g->prefix, n) != 0) {
        wx_http_text(req, 404, "not found\n");
        return;
    }
    static const struct {
        const char *path, *label;
        void (*fn)(struct gate *, struct wx_http_req *);
    } routes[] = {{"/auth", "auth", route_auth},
                  {"/start", "start", route_start},
                  {"/callback", "callback", route_callback},
                  {"/sign_out", "sign_out", route_sign_out},
                  {"/userinfo", "userinfo", route_userinfo}};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (wx_slice_eq(rest, routes[i].path)) {
            req->route = routes[i].label;
            if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD"))
                wx_http_text(req, 405, "Method Not Allowed\n");
            else
                routes[i].fn(g, req);
            return;
        }
    }
    wx_http_text(req, 404, "not found\n");
}

static void on_done(struct wx_http_req *req, void *ud)
{
    struct gate *g = ud;
    wx_http_record(req, &g->log, &g->metrics);
}

static void log_stderr(void *ud, enum wx_log_level level, const char *line)
{
    char out[1200];
    wx_log_stamp(out, sizeof out, "gate ", line);
    fprintf(stderr, "%s\n", out);
}

static void client_log(void *ud, enum wx_log_severity sev, const char *line)
{
    struct gate *g = ud;
    wx_logf(&g->log,
            sev == WX_SEV_ERROR  ? WX_LOG_ERROR
            : sev == WX_SEV_WARN ? WX_LOG_WARN
                                 : WX_LOG_DEBUG,
            "level=%s msg=\"%s\"", sev <= WX_SEV_WARN ? "warn" : "debug", line);
}

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    stop_flag = 1;
}

static int setup(struct gate *g, char *err, size_t errsz)
{
    const char *pub = wx_cfg_str(&g->cfg, "public-url"), *appid = wx_cfg_str(&g->cfg, "appid");
    const char *secret = wx_cfg_str(&g->cfg, "secret"), *scope = wx_cfg_str(&g->cfg, "scope");
    const char *hex = wx_cfg_str(&g->cfg, "cookie-secret");
    g->prefix = wx_cfg_str(&g->cfg, "prefix");
    g->cookie_name = wx_cfg_str(&g->cfg, "cookie-name");
    if (!pub || (strncmp(pub, "https://", 8) && strncmp(pub, "http://", 7))) {
        snprintf(err, errsz, "public-url: the site's base URL, e.g. https://www.example.com");
        return WX_ERR_INVALID;
    }
    if (!appid || !secret) {
        snprintf(err, errsz, "appid and secret are required (WXAUTH_APPID, WXAUTH_SECRET)");
        return WX_ERR_INVALID;
    }
    if (g->prefix[0] != '/' || g->prefix[strlen(g->prefix) - 1] == '/') {
        snprintf(err, errsz, "prefix: a path such as /wxauth (no trailing slash)");
        return WX_ERR_INVALID;
    }
    if (strcmp(scope, "snsapi_base") && strcmp(scope, "snsapi_userinfo")) {
        snprintf(err, errsz, "scope: snsapi_base or snsapi_userinfo");
        return WX_ERR_INVALID;
    }
    unsigned char master[32];
    size_t bl = 0;
    if (hex) {
        if (strlen(hex) != 64 || sodium_hex2bin(master, 32, hex, 64, NULL, &bl, NULL) || bl != 32) {
            snprintf(err, errsz, "cookie-secret: 64 hex digits (e.g. openssl rand -hex 32)");
            return WX_ERR_INVALID;
        }
    } else {
        randombytes_buf(master, sizeof master);
        wx_logf(&g->log, WX_LOG_WARN,
                "level=warn msg=\"no cookie-secret: sessions end when the gate restarts\"");
    }
    crypto_kdf_derive_from_key(g->seal_key, 32, 1, "wxgate__", master);
    crypto_kdf_derive_from_key(g->key.key, 32, 2, "wxgate__", master);
    g->key.id = 1;
    sodium_memzero(master, sizeof master);
    static char public_url[512];
    snprintf(public_url, sizeof public_url, "%s", pub);
    size_t n = strlen(public_url);
    while (n && public_url[n - 1] == '/')
        public_url[--n] = '\0';
    g->public_url = public_url;
    g->secure = !strncmp(public_url, "https://", 8);
    g->default_scope = !strcmp(scope, "snsapi_userinfo") ? 2 : 1;
    const char *desktop = wx_cfg_str(&g->cfg, "desktop");
    if (strcmp(desktop, "qr") && strcmp(desktop, "pass")) {
        snprintf(err, errsz, "desktop: qr or pass");
        return WX_ERR_INVALID;
    }
    g->desktop_qr = !strcmp(desktop, "qr");
    g->session_ttl = wx_cfg_int(&g->cfg, "session-ttl");
    struct wx_client_config cc = {0};
    struct wx_error e = {0};
    cc.appid = appid;
    cc.secret = secret;
    cc.open_base = wx_cfg_str(&g->cfg, "open-base");
    cc.api_base = wx_cfg_str(&g->cfg, "api-base");
    cc.ca_file = wx_cfg_str(&g->cfg, "ca-file");
    cc.state_keys = (struct wx_state_keys){&g->key, 1};
    cc.log = client_log;
    cc.log_ud = g;
    if (wx_client_new(&cc, &g->client, &e)) {
        snprintf(err, errsz, "%s", e.errmsg);
        return WX_ERR_INVALID;
    }
    return WX_OK;
}

int wx_gate_main(int argc, char **argv)
{
    static struct gate gate;
    struct gate *g = &gate;
    char err[512] = "", host[64];
    int npos = 0, rc = 1;
    struct wx_http_server *http = NULL;
    if (wx_init() || wx_cfg_init(&g->cfg, directives, sizeof directives / sizeof directives[0]))
        return 1;
    g->log = (struct wx_log){log_stderr, NULL, WX_LOG_INFO};
    if (wx_cfg_load_all(&g->cfg, argc, argv, 1, &npos, err, sizeof err)) {
        fprintf(stderr, "wxauth gate: %s\n", err);
        return 2;
    }
    if (wx_cfg_bool(&g->cfg, "help")) {
        struct wx_buf b;
        wx_buf_init(&b, 65536);
        wx_cfg_help(&g->cfg, &b);
        printf("Usage: wxauth gate [OPTIONS]\n\nWeChat login in front of any web app through nginx "
               "auth_request (docs/nginx.md).\n\nOptions (also WXAUTH_<NAME> and --config FILE):\n"
               "%s",
               b.ptr ? b.ptr : "");
        wx_buf_free(&b);
        return 0;
    }
    if (!strcmp(wx_cfg_str(&g->cfg, "log-level"), "warn"))
        g->log.level = WX_LOG_WARN;
    if (npos || setup(g, err, sizeof err)) {
        fprintf(stderr, "wxauth gate: %s\n", err[0] ? err : "unexpected argument (see --help)");
        return 2;
    }
    const char *listen = wx_cfg_str(&g->cfg, "listen"), *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host) {
        fprintf(stderr, "wxauth gate: listen: ADDRESS:PORT\n");
        return 2;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    pthread_mutex_init(&g->mu, NULL);
    wx_metrics_init(&g->metrics);
    struct wx_http_config hc = {
        host, (int)strtol(colon + 1, NULL, 10),        handle, on_done, g, &g->log, 0,
        30,   (unsigned)wx_cfg_int(&g->cfg, "threads")};
    if (wx_http_start(&http, &hc, err, sizeof err)) {
        fprintf(stderr, "wxauth gate: %s\n", err);
        goto done;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("wxauth gate listening on http://%s:%d (public %s%s)\n", host, wx_http_port(http),
           g->public_url, g->prefix);
    fflush(stdout);
    while (!stop_flag)
        usleep(100000);
    rc = 0;
done:
    wx_http_stop(http);
    wx_client_free(g->client);
    sodium_memzero(g->seal_key, sizeof g->seal_key);
    wx_cfg_free(&g->cfg);
    return rc;
}
