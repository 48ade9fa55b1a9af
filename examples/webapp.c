/*
 * webapp.c — a small web app that logs its visitors in with WeChat through libwxauth, the way
 * the mission's scenario needs it, using only the public API and libmicrohttpd:
 *
 *   /          the visitor's nickname and avatar, or a "log in with WeChat" button
 *   /login     seals a state (bound to this browser when it has a cookie) and redirects to
 *              WeChat's authorize URL
 *   /callback  classifies the callback before any network call: DENIED gets a friendly page
 *              (try again, or continue with snsapi_base); INVALID a 400 page; CODE is exchanged
 *              exactly once, then 303 to a clean URL, so refresh or Back never shows 40163
 *   /logout    ends the session
 *
 * Run against a local provider:
 *   wxauth-example --listen 127.0.0.1:9000 --appid APPID --secret SECRET \
 *       --wechat http://127.0.0.1:8700 --public-url http://localhost:9000
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <wxauth/wxauth.h>

#define MAX_SESSIONS 4096
#define MAX_USED     4096
#define SESSION_TTL  86400

struct session {
    char id[33];
    int64_t expires;
    char openid[WX_MAX_ID + 1];
    char nickname[WX_MAX_NICKNAME + 1];
    char avatar[WX_MAX_URLTEXT + 1];
    char scope[64];
};

/* A used state nonce and the session it produced (so a replayed callback finds it). */
struct used {
    unsigned char nonce[WX_STATE_NONCE_LEN];
    int64_t expires;
    char session[33];
};

static struct {
    struct wx_client *client;
    char public_url[256];
    struct wx_state_key key;
    pthread_mutex_t mu;
    struct session sessions[MAX_SESSIONS];
    struct used used[MAX_USED];
    size_t used_next;
} app = {.mu = PTHREAD_MUTEX_INITIALIZER};

static volatile sig_atomic_t stop;

static void on_signal(int s)
{
    stop = 1;
}

/* ---- responses ---- */

static enum MHD_Result send_page(struct MHD_Connection *c, unsigned status, struct wx_buf *body,
                                 const char *cookie, const char *location)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        body->len, body->ptr ? body->ptr : (void *)"", MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'none'; img-src http: https: data:; style-src "
                            "'unsafe-inline'; frame-ancestors 'none'");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    if (cookie)
        MHD_add_response_header(r, "Set-Cookie", cookie);
    if (location)
        MHD_add_response_header(r, "Location", location);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    wx_buf_free(body);
    return ret;
}

static void escape(struct wx_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            wx_buf_puts(b, "&amp;");
            break;
        case '<':
            wx_buf_puts(b, "&lt;");
            break;
        case '>':
            wx_buf_puts(b, "&gt;");
            break;
        case '"':
            wx_buf_puts(b, "&quot;");
            break;
        case '\'':
            wx_buf_puts(b, "&#39;");
            break;
        default:
            wx_buf_append(b, s, 1);
        }
    }
}

static void head(struct wx_buf *b, const char *title)
{
    wx_buf_init(b, 64 * 1024);
    wx_buf_puts(b,
                "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>");
    escape(b, title);
    wx_buf_puts(b, "</title><style>body{font:16px/1.5 sans-serif;max-width:460px;margin:0 auto;"
                   "padding:24px;background:#f7f7f7;color:#191919}.card{background:#fff;"
                   "border-radius:8px;padding:20px;margin-bottom:16px}a.btn{display:block;"
                   "text-align:center;padding:12px;border-radius:8px;background:#07c160;"
                   "color:#fff;text-decoration:none;margin-top:12px;font-weight:600}"
                   "a.alt{background:#f2f2f2;color:#07c160}img{border-radius:50%}"
                   ".muted{color:#7f7f7f;font-size:14px}</style></head><body><div class=\"card\">");
}

static void tail(struct wx_buf *b)
{
    wx_buf_puts(b, "</div></body></html>");
}

/* ---- sessions (an in-memory table: enough for an example) ---- */

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static struct session *session_find(const char *id)
{
    if (!id || strlen(id) != 32)
        return NULL;
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (app.sessions[i].expires > now_s() && !sodium_memcmp(app.sessions[i].id, id, 32))
            return &app.sessions[i];
    return NULL;
}

static struct session *session_new(void)
{
    struct session *s = &app.sessions[0];
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (app.sessions[i].expires < s->expires)
            s = &app.sessions[i]; /* a free or the oldest slot */
    memset(s, 0, sizeof *s);
    unsigned char raw[16];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(s->id, sizeof s->id, raw, sizeof raw);
    s->expires = now_s() + SESSION_TTL;
    return s;
}

/* ---- routes ---- */

static enum MHD_Result page_home(struct MHD_Connection *c)
{
    struct wx_buf b;
    pthread_mutex_lock(&app.mu);
    struct session *s = session_find(MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "sid"));
    head(&b, "wxauth 示例");
    if (s) {
        wx_buf_puts(&b, "<h1>你好，");
        escape(&b, s->nickname[0] ? s->nickname : "微信用户");
        wx_buf_puts(&b, "</h1>");
        if (s->avatar[0]) {
            wx_buf_puts(&b, "<img width=\"96\" height=\"96\" alt=\"\" src=\"");
            escape(&b, s->avatar);
            wx_buf_puts(&b, "\">");
        }
        wx_buf_puts(&b, "<p class=\"muted\">openid <code id=\"openid\">");
        escape(&b, s->openid);
        wx_buf_puts(&b, "</code><br>scope ");
        escape(&b, s->scope);
        wx_buf_puts(&b, "</p><a class=\"btn alt\" href=\"/logout\">退出 · Log out</a>");
    } else {
        wx_buf_puts(&b, "<h1>wxauth 示例</h1><p>用微信登录后，这里会显示你的昵称和头像。</p>"
                        "<a class=\"btn\" href=\"/login?scope=snsapi_userinfo\">用微信登录</a>"
                        "<a class=\"btn alt\" href=\"/login?scope=snsapi_base\">静默登录（仅 "
                        "openid）</a>");
    }
    pthread_mutex_unlock(&app.mu);
    tail(&b);
    return send_page(c, 200, &b, NULL, NULL);
}

static enum MHD_Result page_message(struct MHD_Connection *c, unsigned status, const char *title,
                                    const char *text, int offer_base)
{
    struct wx_buf b;
    head(&b, title);
    wx_buf_puts(&b, "<h1>");
    escape(&b, title);
    wx_buf_puts(&b, "</h1><p>");
    escape(&b, text);
    wx_buf_puts(&b, "</p><a class=\"btn\" href=\"/login?scope=snsapi_userinfo\">重新授权 · Try "
                    "again</a>");
    if (offer_base)
        wx_buf_puts(&b, "<a class=\"btn alt\" href=\"/login?scope=snsapi_base\">不授权，继续使用"
                        "基础功能 · Continue without profile</a>");
    tail(&b);
    return send_page(c, status, &b, NULL, NULL);
}

static enum MHD_Result page_login(struct MHD_Connection *c)
{
    const char *scope = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "scope");
    const char *bid = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "bid");
    char state[WX_MAX_STATE + 1], redirect[320], cookie[128] = "", newbid[33];
    struct wx_state_keys keys = {&app.key, 1};
    if (!scope || strcmp(scope, "snsapi_base") != 0)
        scope = "snsapi_userinfo";
    if (!bid || strlen(bid) != 32) {
        /* WeChat's browser may drop this cookie later: the state then opens unbound. */
        unsigned char raw[16];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(newbid, sizeof newbid, raw, sizeof raw);
        snprintf(cookie, sizeof cookie, "bid=%s; Path=/; HttpOnly; SameSite=Lax", newbid);
        bid = NULL;
    }
    if (wx_state_seal(&keys, "/", bid ? wx_slice_cstr(bid) : (struct wx_slice){NULL, 0}, 600,
                      now_s(), state, NULL) != WX_OK)
        return page_message(c, 500, "出错了", "Could not create the login state.", 0);
    snprintf(redirect, sizeof redirect, "%s/callback", app.public_url);
    struct wx_authorize_params p = {redirect, scope, state, 1, 0, 0};
    struct wx_buf url;
    wx_buf_init(&url, 4096);
    if (wx_authorize_url(app.client, &p, &url) != WX_OK) {
        wx_buf_free(&url);
        return page_message(c, 500, "出错了", "Could not build the authorize URL.", 0);
    }
    struct wx_buf b;
    head(&b, "正在跳转");
    tail(&b);
    enum MHD_Result r = send_page(c, 302, &b, cookie[0] ? cookie : NULL, url.ptr);
    wx_buf_free(&url);
    return r;
}

/* A replayed callback: the session the first one created, if any. */
static struct used *used_find(const unsigned char nonce[WX_STATE_NONCE_LEN])
{
    for (int i = 0; i < MAX_USED; i++)
        if (app.used[i].expires > now_s() && !memcmp(app.used[i].nonce, nonce, WX_STATE_NONCE_LEN))
            return &app.used[i];
    return NULL;
}

static enum MHD_Result finish_login(struct MHD_Connection *c, const char *sid, const char *path)
{
    char cookie[128];
    struct wx_buf b;
    snprintf(cookie, sizeof cookie, "sid=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=%d", sid,
             SESSION_TTL);
    head(&b, "登录成功");
    tail(&b);
    /* 303 to a clean URL: the code never stays in the address bar or the history. */
    return send_page(c, 303, &b, cookie, path[0] ? path : "/");
}

static enum MHD_Result page_callback(struct MHD_Connection *c, const char *query)
{
    const char *bid = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "bid");
    struct wx_callback cb;
    struct wx_error err = {0};
    struct wx_token tok;
    struct wx_userinfo ui = {0};
    if (wx_callback_parse(app.client, wx_slice_cstr(query),
                          bid ? wx_slice_cstr(bid) : (struct wx_slice){NULL, 0}, now_s(),
                          &cb) != WX_OK)
        return page_message(c, 500, "出错了", "Out of memory.", 0);
    if (cb.kind == WX_CALLBACK_INVALID)
        return page_message(c, 400, "登录链接无效或已过期", cb.reason, 0);
    pthread_mutex_lock(&app.mu);
    struct used *u = used_find(cb.state.nonce);
    if (u) {
        /* Refresh, Back, or WeChat's second callback: never exchange again. */
        char sid[33], path[WX_STATE_MAX_PATH + 1];
        snprintf(sid, sizeof sid, "%s", u->session);
        snprintf(path, sizeof path, "%s", cb.state.return_path);
        pthread_mutex_unlock(&app.mu);
        if (sid[0])
            return finish_login(c, sid, path);
        return page_message(c, 200, "请稍候", "这个登录链接已经处理过了，请返回首页。", 0);
    }
    u = &app.used[app.used_next++ % MAX_USED];
    memcpy(u->nonce, cb.state.nonce, WX_STATE_NONCE_LEN);
    u->expires = cb.state.expires;
    u->session[0] = '\0';
    pthread_mutex_unlock(&app.mu);
    if (cb.kind == WX_CALLBACK_DENIED)
        return page_message(c, 200, "你拒绝了授权",
                            "没关系：你可以重新授权，或不提供昵称头像，继续使用基础功能。", 1);
    int rc = wx_exchange_code(app.client, cb.code, &tok, &err);
    if (rc == WX_OK && !strcmp(tok.scope, "snsapi_userinfo"))
        rc = wx_get_userinfo(app.client, tok.access_token, tok.openid, "zh_CN", &ui, &err);
    if (rc != WX_OK) {
        const struct wx_errcode_info *e = wx_errcode_explain(err.errcode);
        char text[600];
        snprintf(text, sizeof text, "微信返回 %d：%s", err.errcode, e ? e->hint_zh : err.errmsg);
        return page_message(c, 502, "登录没有成功", text, 0);
    }
    pthread_mutex_lock(&app.mu);
    struct session *s = session_new();
    snprintf(s->openid, sizeof s->openid, "%s", tok.openid);
    snprintf(s->nickname, sizeof s->nickname, "%s", ui.nickname);
    snprintf(s->avatar, sizeof s->avatar, "%s", ui.headimgurl);
    snprintf(s->scope, sizeof s->scope, "%s", tok.scope);
    char sid[33];
    memcpy(sid, s->id, sizeof sid);
    struct used *mark = used_find(cb.state.nonce);
    if (mark)
        memcpy(mark->session, sid, sizeof sid);
    pthread_mutex_unlock(&app.mu);
    sodium_memzero(&tok, sizeof tok);
    return finish_login(c, sid, cb.state.return_path);
}

static enum MHD_Result page_logout(struct MHD_Connection *c)
{
    struct wx_buf b;
    pthread_mutex_lock(&app.mu);
    struct session *s = session_find(MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "sid"));
    if (s)
        memset(s, 0, sizeof *s);
    pthread_mutex_unlock(&app.mu);
    head(&b, "已退出");
    tail(&b);
    return send_page(c, 303, &b, "sid=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0", "/");
}

struct req {
    char *target; /* raw request target, for the callback's exact query string */
    int seen;
};

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct req *r = calloc(1, sizeof *r);
    if (r && !(r->target = strdup(uri ? uri : "/"))) {
        free(r);
        r = NULL;
    }
    return r;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct req *r = *con_cls;
    if (r)
        free(r->target);
    free(r);
    *con_cls = NULL;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **con_cls)
{
    struct req *r = *con_cls;
    if (!r)
        return MHD_NO;
    if (!r->seen) {
        /* Two-phase idiom: queueing in the first call would close the connection. */
        r->seen = 1;
        return MHD_YES;
    }
    if (*size) {
        *size = 0; /* no route takes a body */
        return MHD_YES;
    }
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return page_message(c, 405, "Method Not Allowed", "Use GET.", 0);
    char *q = strchr(r->target, '?');
    if (!strcmp(url, "/"))
        return page_home(c);
    if (!strcmp(url, "/login"))
        return page_login(c);
    if (!strcmp(url, "/callback"))
        return page_callback(c, q ? q + 1 : "");
    if (!strcmp(url, "/logout"))
        return page_logout(c);
    return page_message(c, 404, "页面不存在", "Not found.", 0);
}

static const char usage[] =
    "Usage: wxauth-example --appid APPID --secret SECRET [--listen 127.0.0.1:9000]\n"
    "                      [--wechat BASE_URL] [--public-url URL]\n"
    "  --wechat      base URL of both WeChat servers (default: the real ones); a local\n"
    "                `wxauth provider` for offline work\n"
    "  --public-url  how browsers reach this app (default http://LISTEN); the callback is\n"
    "                PUBLIC_URL/callback, on a host registered as the app's domain\n"
    "Environment: WXAUTH_APPID, WXAUTH_SECRET.\n";

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:9000", *appid = getenv("WXAUTH_APPID");
    const char *secret = getenv("WXAUTH_SECRET"), *wechat = NULL, *pub = NULL;
    for (int i = 1; i < argc; i++) {
        const char **slot = NULL;
        if (!strcmp(argv[i], "--listen"))
            slot = &listen;
        else if (!strcmp(argv[i], "--appid"))
            slot = &appid;
        else if (!strcmp(argv[i], "--secret"))
            slot = &secret;
        else if (!strcmp(argv[i], "--wechat"))
            slot = &wechat;
        else if (!strcmp(argv[i], "--public-url"))
            slot = &pub;
        else {
            fputs(usage, strcmp(argv[i], "--help") ? stderr : stdout);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "%s needs a value\n\n%s", argv[i], usage);
            return 2;
        }
        *slot = argv[++i];
    }
    const char *colon = strrchr(listen, ':');
    char host[64];
    long port = colon ? strtol(colon + 1, NULL, 10) : 0;
    if (!appid || !secret || !colon || (size_t)(colon - listen) >= sizeof host || port < 0 ||
        port > 65535) {
        fputs(usage, stderr);
        return 2;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    if (wx_init())
        return 1;
    randombytes_buf(app.key.key, sizeof app.key.key);
    app.key.id = 1;
    struct wx_client_config cfg = {0};
    struct wx_error err = {0};
    cfg.appid = appid;
    cfg.secret = secret;
    cfg.open_base = wechat;
    cfg.api_base = wechat;
    cfg.state_keys = (struct wx_state_keys){&app.key, 1};
    if (wx_client_new(&cfg, &app.client, &err)) {
        fprintf(stderr, "wxauth-example: %s\n", err.errmsg);
        return 2;
    }
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "wxauth-example: --listen needs a numeric IPv4 address\n");
        return 2;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, handler,
        NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_URI_LOG_CALLBACK, uri_log,
        NULL, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)32768, MHD_OPTION_THREAD_POOL_SIZE, 4u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "wxauth-example: cannot listen on %s\n", listen);
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (pub)
        snprintf(app.public_url, sizeof app.public_url, "%s", pub);
    else
        snprintf(app.public_url, sizeof app.public_url, "http://%s:%u", host,
                 di ? di->port : (unsigned)port);
    printf("wxauth-example listening on http://%s:%u (public %s)\n", host,
           di ? di->port : (unsigned)port, app.public_url);
    fflush(stdout);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    while (!stop)
        usleep(100000);
    MHD_stop_daemon(d);
    wx_client_free(app.client);
    return 0;
}
