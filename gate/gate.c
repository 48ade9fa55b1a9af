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
 *                        state again within 5 minutes (refresh, Back, WeChat's double callback
 *                        with one code or two) → the same session, never an error
 *   GET PREFIX/sign_out  ends the session for real (revocation list) and clears the cookie
 *   GET PREFIX/userinfo  the session as JSON
 *   GET /healthz, /metrics
 *
 * Sessions are sealed cookies (XChaCha20-Poly1305 via lib/seal) with idle and absolute
 * lifetimes and key rotation. Sign-outs, logins' outcomes and the profile refresher's claims
 * live in the store (SQLite, or Redis shared by several gates): session.c. The pages, the
 * return path check and the base URL: pages.c. This file: the directives, the routes, setup.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wxauth/wxauth.h>

#include "clock.h"
#include "config.h"
#include "gate.h"
#include "gate_internal.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "store.h"

#define GATE_TOUCH_MAX 60 /* idle sessions: the cookie is renewed at most once a minute */

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
     "64 hex digits sealing sessions and states; a comma-separated list rotates keys: the "
     "first seals, all open (unset: random, sessions end at restart)"},
    {"cookie-name", WX_CFG_STR, "_wxauth", 0, 0, "session cookie name"},
    {"session-ttl", WX_CFG_INT, "604800", 60, 31536000, "absolute session lifetime, seconds"},
    {"session-idle", WX_CFG_INT, "86400", 0, 31536000,
     "a session unused this many seconds ends (0: only the absolute lifetime)"},
    {"profile-ttl", WX_CFG_INT, "86400", 0, 31536000,
     "snsapi_userinfo sessions re-read nickname and avatar after this many seconds, one "
     "request at a time, with the refresh token (0: never)"},
    {"db", WX_CFG_STR, NULL, 0, 0,
     "SQLite file for sign-outs and redeemed codes (unset: in memory, forgotten at restart)"},
    {"store", WX_CFG_STR, NULL, 0, 0,
     "store URL instead of db: redis://[:PASSWORD@]HOST:PORT[/DB][?prefix=P] (or "
     "redis-sentinel://[:PASSWORD@]HOST:PORT,.../MASTER[?db=N&prefix=P], or "
     "redis-cluster://[:PASSWORD@]HOST:PORT,...[?prefix=P]) shares sign-outs, "
     "redeemed codes and the profile refresher between gates"},
    {"trusted-proxies", WX_CFG_STR, "", 0, 0,
     "comma-separated IPv4 addresses whose X-Forwarded-Proto/Host are believed"},
    {"allowed-hosts", WX_CFG_STR, "", 0, 0,
     "extra host names (besides public-url's) that X-Forwarded-Host may name"},
    {"threads", WX_CFG_INT, "8", 1, 64,
     "worker threads for calls to WeChat (each login's token call holds one; the auth "
     "subrequest never waits for them)"},
    {"web-appid", WX_CFG_STR, NULL, 0, 0,
     "a website app's AppID (open platform): desktop browsers then log in with WeChat's QR "
     "login (qrconnect, snsapi_login) instead of the desktop page"},
    {"web-secret", WX_CFG_STR, NULL, 0, 0, "its AppSecret (prefer WXAUTH_WEB_SECRET)"},
    {"desktop", WX_CFG_STR, "qr", 0, 0,
     "browsers outside WeChat: qr (a page with a QR code to scan with WeChat) or pass (let "
     "them through, e.g. to a wxauth provider in sandbox mode)"},
    {"oidc", WX_CFG_BOOL, "false", 0, 0,
     "also be an OpenID Connect provider whose one way to sign in is WeChat: issuer "
     "public-url + prefix, clients from `wxauth oidc client add` (docs/oidc.md)"},
    {"oidc-token-ttl", WX_CFG_INT, "600", 60, 86400,
     "lifetime of OIDC access tokens and ID tokens, seconds"},
    {"oidc-refresh-ttl", WX_CFG_INT, "2592000", 0, 31536000,
     "lifetime of a grant's refresh tokens (offline_access), seconds, from the login (0: none)"},
    {"oidc-key-rotate", WX_CFG_INT, "7776000", 3600, 315360000,
     "a new signing key after this many seconds; the old one stays published until its "
     "tokens have expired"},
    {"log-level", WX_CFG_STR, "info", 0, 0, "error, warn, info or debug"},
    {"help", WX_CFG_BOOL, "false", 0, 0, "show this help"},
};

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

/* ---- work that may block (calls to WeChat) runs on the pool, never on the event loop ---- */

struct offload {
    struct gate *g;
    struct wx_http_req *req;
    void (*fn)(struct gate *g, struct wx_http_req *req);
};

static void offload_run(void *arg)
{
    struct offload *o = arg;
    o->fn(o->g, o->req);
    wx_http_resume(o->req);
    free(o);
}

void wx_g_offload(struct gate *g, struct wx_http_req *req,
                  void (*fn)(struct gate *g, struct wx_http_req *req))
{
    struct offload *o = malloc(sizeof(*o));
    if (o) {
        *o = (struct offload){g, req, fn};
        wx_http_suspend(req); /* before the worker can possibly resume it */
        if (wx_pool_submit(g->pool, offload_run, o) == WX_OK)
            return;
        free(o);
        wx_http_text(req, 503, "the gate is busy; retry\n");
        wx_http_resume(req);
        return;
    }
    wx_http_text(req, 503, "the gate is busy; retry\n");
}

/*
 * The auth subrequest, on the event loop. A session whose profile is due to be re-read needs
 * the network: that one request goes to a worker (may_block) and comes back here.
 */
static void auth_answer(struct gate *g, struct wx_http_req *req, int may_block);

static void auth_blocking(struct gate *g, struct wx_http_req *req)
{
    auth_answer(g, req, 1);
}

static void auth_answer(struct gate *g, struct wx_http_req *req, int may_block)
{
    struct session s;
    const char *need = wx_http_header(req, "X-WxAuth-Require-Scope");
    const char *allow = wx_http_header(req, "X-WxAuth-Allow-OpenIDs");
    int st = wx_g_session_get(g, req, &s);
    if (st == SESSION_STORE_DOWN) {
        wx_http_text(req, 503, "session store unavailable\n");
        return;
    }
    /* A website login (snsapi_login) carries the profile too: it satisfies snsapi_userinfo. */
    if (st != SESSION_OK || (need && !strcmp(need, "snsapi_userinfo") && s.scope == SCOPE_BASE)) {
        wx_http_text(req, 401, "no valid session\n");
        return;
    }
    if (allow && *allow && !header_list_has(allow, s.openid) &&
        !(s.unionid[0] && header_list_has(allow, s.unionid))) {
        wx_http_text(req, 403, "not on this route's allow-list\n");
        return;
    }
    /*
     * Renewal: a new cookie rides on the 202 (nginx passes it on with auth_request_set) when the
     * idle clock should restart, when an older key sealed it, or when the profile was re-read.
     */
    int64_t now = wx_g_now_s();
    int64_t touch = g->session_idle / 4 < GATE_TOUCH_MAX ? g->session_idle / 4 : GATE_TOUCH_MAX;
    int renew = s.key != 0 || (g->session_idle && wx_g_now_ms() - s.seen_ms >= touch * 1000);
    if (s.scope != SCOPE_BASE && g->profile_ttl && s.refresh[0] && s.profile_until <= now) {
        if (!may_block) {
            sodium_memzero(&s, sizeof s);
            wx_g_offload(g, req, auth_blocking);
            return;
        }
        renew |= wx_g_refresh_profile(g, &s);
    }
    struct wx_buf nick, cookie;
    wx_buf_init(&nick, WX_MAX_NICKNAME * 3 + 1);
    wx_buf_init(&cookie, GATE_COOKIE_MAX - 1);
    wx_pct_encode(&nick, wx_slice_cstr(s.nickname));
    wx_http_text(req, 202, "");
    wx_http_set_header(req, "X-WeChat-OpenID", s.openid);
    if (s.unionid[0])
        wx_http_set_header(req, "X-WeChat-UnionID", s.unionid);
    wx_http_set_header(req, "X-WeChat-Scope", wx_g_scope_str(s.scope));
    wx_http_set_header(req, "X-WeChat-AppID", wx_g_session_client(g, &s)->appid);
    if (s.scope != SCOPE_BASE) {
        wx_http_set_header(req, "X-WeChat-Nickname", nick.ptr ? nick.ptr : "");
        wx_http_set_header(req, "X-WeChat-Avatar", s.avatar);
    }
    if (renew) {
        s.seen_ms = wx_g_now_ms();
        if (wx_g_session_cookie(g, &s, &cookie) == WX_OK)
            wx_http_set_header(req, "Set-Cookie", cookie.ptr);
    }
    wx_buf_free(&cookie);
    wx_buf_free(&nick);
    sodium_memzero(&s, sizeof s);
}

static void route_auth(struct gate *g, struct wx_http_req *req)
{
    auth_answer(g, req, 0);
}

static void route_start(struct gate *g, struct wx_http_req *req)
{
    struct wx_query q;
    if (wx_query_parse(&q, req->query, WX_MAX_URL)) {
        wx_g_page(g, req, 400, "参数错误", "Malformed query string.", NULL, 0);
        return;
    }
    /*
     * rd is the last parameter, taken raw when it starts with '/': nginx's
     * `return 302 PREFIX/start?rd=$request_uri` passes the original URI unencoded, query and all.
     */
    const char *rd = wx_g_safe_rd(wx_query_get(&q, "rd")), *scope = wx_query_get(&q, "scope");
    char raw_rd[WX_MAX_URL];
    const char *at = strstr(req->target, "?rd=/");
    if (!at)
        at = strstr(req->target, "&rd=/");
    if (at) {
        snprintf(raw_rd, sizeof raw_rd, "%s", at + 4);
        rd = wx_g_safe_rd(raw_rd);
    }
    if (!scope || (strcmp(scope, "snsapi_base") && strcmp(scope, "snsapi_userinfo")))
        scope = wx_g_scope_str(g->default_scope);
    char base_buf[300];
    const char *base = wx_g_base_url(g, req, base_buf, sizeof base_buf);
    const char *ua = wx_http_header(req, "User-Agent");
    int desktop = !ua || !strstr(ua, "MicroMessenger");
    const struct app_client *app = &g->oa;
    if (desktop && g->web.client) {
        app = &g->web; /* a website app is configured: WeChat's QR login (qrconnect) */
        scope = "snsapi_login";
    } else if (desktop && g->desktop_qr) {
        wx_g_desktop_page(g, req, base, rd);
        wx_query_free(&q);
        return;
    }
    if (strlen(rd) > WX_STATE_MAX_PATH - 8)
        rd = "/"; /* longer return paths do not fit the state; the site's root is safe */
    const char *bid = wx_http_cookie(req, "_wxauth_b");
    char state[WX_MAX_STATE + 1], redirect[600], newbid[33], cookie[128] = "";
    struct wx_state_keys keys = {g->keys, (size_t)g->nkeys};
    if (!bid || strlen(bid) != 32) {
        unsigned char raw[16];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(newbid, sizeof newbid, raw, sizeof raw);
        snprintf(cookie, sizeof cookie, "_wxauth_b=%s; Path=/; HttpOnly; SameSite=Lax%s", newbid,
                 g->secure ? "; Secure" : "");
        bid = NULL; /* bind from the second visit on: WeChat's browser may drop cookies */
    }
    /* The callback learns which app issued the code from via=web (a code only ever redeems
     * with its own app, so a forged via gains nothing). */
    snprintf(redirect, sizeof redirect, "%s%s/callback%s", base, g->prefix,
             app == &g->web ? "?via=web" : "");
    struct wx_authorize_params p = {redirect, scope, state, 1, 0, 0};
    struct wx_buf url;
    wx_buf_init(&url, 4096);
    if (wx_state_seal(&keys, rd, bid ? wx_slice_cstr(bid) : (struct wx_slice){NULL, 0}, 600,
                      wx_g_now_s(), state, NULL) ||
        wx_authorize_url(app->client, &p, &url)) {
        wx_g_page(g, req, 500, "出错了", "Could not build the authorize URL.", NULL, 0);
    } else {
        wx_http_redirect(req, 302, url.ptr);
        if (cookie[0])
            wx_http_set_header(req, "Set-Cookie", cookie);
    }
    wx_buf_free(&url);
    wx_query_free(&q);
}

/* The callback: the code exchange and the wait for another request's exchange block. */
static void callback_blocking(struct gate *g, struct wx_http_req *req);

static void route_callback(struct gate *g, struct wx_http_req *req)
{
    wx_g_offload(g, req, callback_blocking);
}

static void callback_blocking(struct gate *g, struct wx_http_req *req)
{
    struct wx_callback cb;
    const char *bid = wx_http_cookie(req, "_wxauth_b");
    struct wx_query q;
    int web = 0;
    if (wx_query_parse(&q, req->query, WX_MAX_URL) == WX_OK) {
        const char *via = wx_query_get(&q, "via");
        web = via && !strcmp(via, "web") && g->web.client;
        wx_query_free(&q);
    }
    const struct app_client *app = web ? &g->web : &g->oa;
    if (wx_callback_parse(app->client, req->query,
                          bid ? wx_slice_cstr(bid) : (struct wx_slice){NULL, 0}, wx_g_now_s(),
                          &cb)) {
        wx_g_page(g, req, 500, "出错了", "Out of memory.", NULL, 0);
        return;
    }
    if (cb.kind == WX_CALLBACK_INVALID) {
        req->errcode = 0;
        wx_g_page(g, req, 403, "登录链接无效或已过期", cb.reason, "/", 0);
        return;
    }
    const char *back = cb.state.return_path[0] ? cb.state.return_path : "/";
    char oidc_back[WX_STATE_MAX_PATH + 16];
    if (cb.kind == WX_CALLBACK_DENIED &&
        wx_g_oidc_denied_return(g, back, oidc_back, sizeof oidc_back)) {
        wx_http_redirect(req, 303, oidc_back); /* the client learns it: error=access_denied */
        return;
    }
    if (cb.kind == WX_CALLBACK_DENIED) {
        wx_g_page(
            g, req, 200, "你拒绝了授权",
            "没关系：你可以重新授权，或不提供昵称头像，继续使用基础功能。You declined; try again "
            "or "
            "continue without your profile.",
            back, 1);
        return;
    }
    if (wx_g_login_replay(g, req, &cb.state, back))
        return; /* refresh, Back, or WeChat's second callback: the same session */
    struct wx_token tok;
    struct wx_userinfo ui = {0};
    struct wx_error err = {0};
    int rc = wx_exchange_code(app->client, cb.code, &tok, &err);
    if (rc == WX_OK && strcmp(tok.scope, "snsapi_base") != 0)
        rc = wx_get_userinfo(app->client, tok.access_token, tok.openid, "zh_CN", &ui, &err);
    char result[CODE_RESULT_MAX];
    if (rc != WX_OK) {
        const struct wx_errcode_info *e = wx_errcode_explain(err.errcode);
        req->errcode = err.errcode;
        snprintf(result, sizeof result, "E%d", err.errcode);
        wx_g_login_remember(g, &cb.state, result);
        wx_g_page(g, req, 502, "登录没有成功", e ? e->hint_zh : err.errmsg, back, 0);
        return;
    }
    struct session s = {0};
    int64_t now = wx_g_now_s();
    randombytes_buf(s.sid, sizeof s.sid);
    s.expires = now + g->session_ttl;
    s.seen_ms = wx_g_now_ms();
    s.scope = wx_g_scope_of(tok.scope);
    s.profile_until = now + g->profile_ttl;
    snprintf(s.openid, sizeof s.openid, "%s", tok.openid);
    snprintf(s.unionid, sizeof s.unionid, "%s", ui.unionid[0] ? ui.unionid : tok.unionid);
    snprintf(s.nickname, sizeof s.nickname, "%s", ui.nickname);
    snprintf(s.avatar, sizeof s.avatar, "%s", ui.headimgurl);
    if (s.scope != SCOPE_BASE && g->profile_ttl) /* kept only where the profile is re-read */
        snprintf(s.refresh, sizeof s.refresh, "%s", tok.refresh_token);
    sodium_memzero(&tok, sizeof tok);
    struct wx_buf c;
    wx_buf_init(&c, GATE_COOKIE_MAX - 1);
    if (wx_g_session_cookie(g, &s, &c)) {
        snprintf(result, sizeof result, "E%d", WX_EC_SYSTEM);
        wx_g_login_remember(g, &cb.state, result);
        wx_g_page(g, req, 500, "出错了", "The session does not fit in a cookie.", back, 0);
    } else {
        snprintf(result, sizeof result, "S%s\n%s", back, c.ptr);
        wx_g_login_remember(g, &cb.state, result);
        wx_http_redirect(req, 303, back);
        wx_http_set_header(req, "Set-Cookie", c.ptr);
    }
    sodium_memzero(result, sizeof result);
    sodium_memzero(&s, sizeof s);
    wx_buf_free(&c);
}

static void route_sign_out(struct gate *g, struct wx_http_req *req)
{
    struct session s;
    if (wx_g_session_get(g, req, &s) == SESSION_OK) {
        if (wx_g_sign_out(g, &s) != WX_OK) {
            wx_g_page(g, req, 503, "退出没有成功 · Sign-out failed",
                      "暂时无法退出，请稍后再试。The sign-out could not be recorded; try again.",
                      NULL, 0);
            return;
        }
    }
    char cookie[160];
    snprintf(cookie, sizeof cookie, "%s=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0%s",
             g->cookie_name, g->secure ? "; Secure" : "");
    /* A page of its own: redirecting to a protected page would log a snsapi_base user straight
     * back in, silently, as WeChat does. */
    wx_g_page(g, req, 200, "你已退出 · Signed out",
              "下次访问受保护的页面时会重新登录。The next protected page logs you in again.", "/",
              0);
    wx_http_set_header(req, "Set-Cookie", cookie);
}

static void route_userinfo(struct gate *g, struct wx_http_req *req)
{
    struct session s;
    wx_buf_reset(&req->out);
    if (wx_g_session_get(g, req, &s) != SESSION_OK) {
        wx_buf_puts(&req->out, "{\"error\":\"no valid session\"}");
        wx_http_json(req, 401);
        return;
    }
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:I}", "openid", s.openid, "unionid", s.unionid, "scope",
        wx_g_scope_str(s.scope), "nickname", s.nickname, "headimgurl", s.avatar, "expires",
        (json_int_t)(g->session_idle && s.seen_ms / 1000 + g->session_idle < s.expires
                         ? s.seen_ms / 1000 + g->session_idle
                         : s.expires));
    if (!o || wx_json_append(&req->out, o))
        wx_buf_puts(&req->out, "{\"error\":\"internal\"}");
    json_decref(o);
    wx_http_json(req, 200);
}

static void handle(struct wx_http_req *req, void *ud)
{
    struct gate *g = ud;
    size_t n = strlen(g->prefix);
    if (wx_slice_eq(req->path, "/healthz")) { /* 503 when the store is out of reach */
        req->route = "healthz";
        int up = wx_g_store_ping(g) == WX_OK;
        wx_http_text(req, up ? 200 : 503, up ? "ok\n" : "store unavailable\n");
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
    if (wx_g_oidc_handle(g, req, rest))
        return;
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

/* cookie-secret "NEW,OLD,...": the first seals, every one opens (key rotation). */
static int setup_keys(struct gate *g, char *err, size_t errsz)
{
    const char *hex = wx_cfg_str(&g->cfg, "cookie-secret");
    unsigned char master[GATE_KEYS][32];
    g->nkeys = 0;
    if (hex) {
        for (const char *p = hex; p && g->nkeys >= 0;) { /* every entry, empty ones too */
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p), bl = 0;
            if (len != 64 || g->nkeys == GATE_KEYS ||
                sodium_hex2bin(master[g->nkeys], 32, p, 64, NULL, &bl, NULL) || bl != 32)
                g->nkeys = -1;
            else
                g->nkeys++;
            p = e ? e + 1 : NULL;
        }
        if (g->nkeys <= 0) {
            sodium_memzero(master, sizeof master);
            snprintf(err, errsz,
                     "cookie-secret: 64 hex digits (openssl rand -hex 32), or up to %d of them "
                     "separated by commas, the current one first",
                     GATE_KEYS);
            return WX_ERR_INVALID;
        }
    } else {
        randombytes_buf(master[0], 32);
        g->nkeys = 1;
        wx_logf(&g->log, WX_LOG_WARN,
                "level=warn msg=\"no cookie-secret: sessions end when the gate restarts\"");
    }
    for (int k = 0; k < g->nkeys; k++) {
        unsigned char id[1];
        crypto_kdf_derive_from_key(g->seal_keys[k], 32, 1, "wxgate__", master[k]);
        crypto_kdf_derive_from_key(g->keys[k].key, 32, 2, "wxgate__", master[k]);
        crypto_generichash(id, 1, master[k], 32, NULL, 0); /* same key, same id, any position */
        g->keys[k].id = id[0];
    }
    sodium_memzero(master, sizeof master);
    return WX_OK;
}

/* public-url, trusted-proxies and allowed-hosts: where the site is, and who may say so. */
static int setup_site(struct gate *g, const char *pub, char *err, size_t errsz)
{
    const char *proxies = wx_cfg_str(&g->cfg, "trusted-proxies");
    for (const char *p = proxies; p && *p;) {
        while (*p == ',' || *p == ' ')
            p++;
        if (!*p)
            break;
        char one[64];
        size_t len = strcspn(p, ", ");
        snprintf(one, sizeof one, "%.*s", (int)(len < sizeof one ? len : sizeof one - 1), p);
        if (g->nproxies == GATE_PROXIES || inet_pton(AF_INET, one, &g->proxies[g->nproxies]) != 1) {
            snprintf(err, errsz, "trusted-proxies: up to %d IPv4 addresses ('%s' is not one)",
                     GATE_PROXIES, one);
            return WX_ERR_INVALID;
        }
        g->nproxies++;
        p += len;
    }
    g->allowed_hosts = wx_cfg_str(&g->cfg, "allowed-hosts");
    static char public_url[512];
    snprintf(public_url, sizeof public_url, "%s", pub);
    size_t n = strlen(public_url);
    while (n && public_url[n - 1] == '/')
        public_url[--n] = '\0';
    g->public_url = public_url;
    g->secure = !strncmp(public_url, "https://", 8);
    const char *h = public_url + (g->secure ? 8 : 7);
    snprintf(g->public_host, sizeof g->public_host, "%.*s", (int)strcspn(h, "/"), h);
    return WX_OK;
}

/* The store (store URL, or db file, or memory) and the WeChat clients (OA, website app). */
static int setup_backends(struct gate *g, const char *appid, const char *secret, char *err,
                          size_t errsz)
{
    const char *db = wx_cfg_str(&g->cfg, "store");
    if (!db || !*db)
        db = wx_cfg_str(&g->cfg, "db");
    if (!db || !*db) {
        db = ":memory:";
        g->memory_store = 1;
        wx_logf(&g->log, WX_LOG_WARN,
                "level=warn msg=\"no db: sign-outs and redeemed codes are forgotten at restart\"");
    }
    if (wx_store_open(&g->store, db, err, errsz))
        return WX_ERR_INVALID;
    if (!g->store->ops->atomic_batches && g->store->ops->share) { /* Redis: gate_internal.h */
        if (wx_store_open(&g->loop_store, db, err, errsz) ||
            g->loop_store->ops->share(g->loop_store) != WX_OK) {
            snprintf(err, errsz, "cannot start the shared Redis connection");
            return WX_ERR_INVALID;
        }
    }
    struct wx_client_config cc = {0};
    struct wx_error e = {0};
    cc.appid = appid;
    cc.secret = secret;
    cc.open_base = wx_cfg_str(&g->cfg, "open-base");
    cc.api_base = wx_cfg_str(&g->cfg, "api-base");
    cc.ca_file = wx_cfg_str(&g->cfg, "ca-file");
    cc.state_keys = (struct wx_state_keys){g->keys, (size_t)g->nkeys};
    cc.log = client_log;
    cc.log_ud = g;
    g->oa.appid = appid;
    if (wx_client_new(&cc, &g->oa.client, &e)) {
        snprintf(err, errsz, "%s", e.errmsg);
        return WX_ERR_INVALID;
    }
    const char *web_appid = wx_cfg_str(&g->cfg, "web-appid");
    const char *web_secret = wx_cfg_str(&g->cfg, "web-secret");
    if (!web_appid || !*web_appid)
        return WX_OK;
    if (!web_secret || !*web_secret) {
        snprintf(err, errsz, "web-appid needs web-secret (WXAUTH_WEB_SECRET)");
        return WX_ERR_INVALID;
    }
    cc.appid = web_appid;
    cc.secret = web_secret;
    g->web.appid = web_appid;
    if (wx_client_new(&cc, &g->web.client, &e)) {
        snprintf(err, errsz, "web-appid: %s", e.errmsg);
        return WX_ERR_INVALID;
    }
    return WX_OK;
}

static int setup(struct gate *g, char *err, size_t errsz)
{
    const char *pub = wx_cfg_str(&g->cfg, "public-url"), *appid = wx_cfg_str(&g->cfg, "appid");
    const char *secret = wx_cfg_str(&g->cfg, "secret"), *scope = wx_cfg_str(&g->cfg, "scope");
    const char *desktop = wx_cfg_str(&g->cfg, "desktop");
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
    if (strcmp(desktop, "qr") && strcmp(desktop, "pass")) {
        snprintf(err, errsz, "desktop: qr or pass");
        return WX_ERR_INVALID;
    }
    g->default_scope = wx_g_scope_of(scope);
    g->desktop_qr = !strcmp(desktop, "qr");
    g->session_ttl = wx_cfg_int(&g->cfg, "session-ttl");
    g->session_idle = wx_cfg_int(&g->cfg, "session-idle");
    g->profile_ttl = wx_cfg_int(&g->cfg, "profile-ttl");
    int rc = setup_keys(g, err, errsz);
    if (rc == WX_OK)
        rc = setup_site(g, pub, err, errsz);
    if (rc == WX_OK)
        rc = setup_backends(g, appid, secret, err, errsz);
    if (rc == WX_OK && wx_cfg_bool(&g->cfg, "oidc"))
        rc = wx_g_oidc_setup(g, wx_cfg_int(&g->cfg, "oidc-token-ttl"),
                             wx_cfg_int(&g->cfg, "oidc-refresh-ttl"),
                             wx_cfg_int(&g->cfg, "oidc-key-rotate"), g->memory_store, err, errsz);
    return rc;
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
    wx_store_set_log(&g->log); /* a store's failures, with their reasons */
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
    /* One event loop answers every request; logins' token calls go to the pool. */
    struct wx_http_config hc = {host,
                                (int)strtol(colon + 1, NULL, 10),
                                handle,
                                on_done,
                                g,
                                &g->log,
                                0,
                                30,
                                g->loop_store != NULL};
    if (wx_pool_start(&g->pool, (int)wx_cfg_int(&g->cfg, "threads"), "wx-gate-work")) {
        fprintf(stderr, "wxauth gate: cannot start the worker threads\n");
        goto done;
    }
    if (wx_http_start(&http, &hc, err, sizeof err)) {
        fprintf(stderr, "wxauth gate: %s\n", err);
        goto done;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("wxauth gate listening on http://%s:%d (public %s%s)\n", host, wx_http_port(http),
           g->public_url, g->prefix);
    if (g->oidc)
        printf("OpenID Connect issuer %s%s\n", g->public_url, g->prefix);
    fflush(stdout);
    for (int tick = 1; !stop_flag; tick++) {
        usleep(100000);
        if (tick % 600 == 0) { /* once a minute: forget expired sign-outs and codes */
            int64_t deleted = 0;
            pthread_mutex_lock(&g->mu);
            g->store->ops->purge(g->store, wx_g_now_s(), 10000, &deleted);
            pthread_mutex_unlock(&g->mu);
            wx_g_oidc_tick(g);
        }
    }
    rc = 0;
done:
    wx_pool_stop(g->pool); /* answers what the workers hold while the loop still runs */
    wx_http_stop(http);
    wx_g_oidc_free(g);
    wx_client_free(g->oa.client);
    wx_client_free(g->web.client);
    if (g->store)
        g->store->ops->close(g->store);
    if (g->loop_store)
        g->loop_store->ops->close(g->loop_store);
    sodium_memzero(g->seal_keys, sizeof g->seal_keys);
    wx_cfg_free(&g->cfg);
    return rc;
}
