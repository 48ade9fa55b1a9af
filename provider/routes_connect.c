/*
 * routes_connect.c — open.weixin.qq.com/connect/oauth2/authorize: the parameter rules and
 * error pages of protocol sheet §1 (no redirect on a bad appid or redirect_uri), silent
 * snsapi_base, the consent page for snsapi_userinfo (silent for followers entering from the
 * account's menu or chat), allow and deny, and the double-callback fault.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "provider.h"
#include "qr.h"
#include "seal.h"

/* A validated authorization request. Strings point into the caller's struct wx_query. */
struct authz {
    struct wx_app app;
    const char *redirect_uri;
    const char *scope_name;
    const char *state; /* NULL when absent */
    int scope;
};

/* The one-time consent ticket carried by the form (sealed). */
struct ticket {
    unsigned char nonce[16];
    int64_t user_id;
    int64_t expires;
    unsigned char req_hash[32];
};

static void page(struct wx_http_req *req, int status, int errcode, const char *zh, const char *en)
{
    wx_page_error(req, status, errcode, zh, en);
}

/* Applies every rule of §1 in WeChat's order. Returns 0, or nonzero after answering a page. */
static int authz_check(struct wx_provider *p, struct wx_http_req *req, const struct wx_query *q,
                       struct authz *a, int web)
{
    const char *appid = wx_query_get(q, "appid");
    const char *ruri = wx_query_get(q, "redirect_uri");
    const char *rtype = wx_query_get(q, "response_type");
    const char *scope = wx_query_get(q, "scope");
    const char *state = wx_query_get(q, "state");
    memset(a, 0, sizeof(*a));
    if (q->ndup) {
        page(req, 400, 0, "参数重复，链接无效", "A parameter appears more than once.");
        return 1;
    }
    if (!appid || !*appid) {
        page(req, 400, WX_EC_APPID_EMPTY, "appid不能为空", "appid is empty.");
        return 1;
    }
    int rc = strlen(appid) == WX_APPID_LEN ? p->rd->ops->app_by_appid(p->rd, appid, &a->app)
                                           : WX_ERR_NOTFOUND;
    if (rc == WX_ERR_NOTFOUND) {
        page(req, 400, WX_EC_INVALID_APPID, "appid 无效，该链接无法访问",
             "Unknown appid: this link cannot be opened.");
        return 1;
    }
    if (rc) {
        page(req, 503, WX_EC_SYSTEM, "系统繁忙，请稍后再试", "Service unavailable, retry later.");
        return 1;
    }
    if (web && a->app.kind != WX_APP_WEBSITE) {
        page(req, 400, WX_EC_SCOPE_DENIED, "Scope 参数错误或没有 Scope 权限",
             "qrconnect (snsapi_login) needs a website app's AppID, not an Official Account's.");
        return 1;
    }
    if (!web && a->app.kind == WX_APP_WEBSITE) {
        page(req, 400, WX_EC_OPEN_APPID, "不支持微信开放平台的Appid，请使用公众号Appid",
             "Open Platform AppIDs are not supported here; use the Official Account's AppID.");
        return 1;
    }
    if (!ruri || !*ruri) {
        page(req, 400, WX_EC_REDIRECT_EMPTY, "redirect_uri不能为空", "redirect_uri is empty.");
        return 1;
    }
    if (wx_redirect_check(wx_slice_cstr(ruri), a->app.domains, a->app.https_only) != WX_OK) {
        page(req, 400, WX_EC_REDIRECT_DOMAIN, "redirect_uri域名与后台配置不一致",
             "The redirect_uri does not match the registered web-authorization domain.");
        return 1;
    }
    if (!rtype || strcmp(rtype, "code") != 0) {
        page(req, 400, 0, "response_type 参数错误，应为 code", "response_type must be code.");
        return 1;
    }
    if (!scope || !*scope) {
        page(req, 400, WX_EC_SCOPE_EMPTY, "scope不能为空", "scope is empty.");
        return 1;
    }
    if (!web && !strcmp(scope, "snsapi_base"))
        a->scope = WX_SCOPE_BASE;
    else if (!web && !strcmp(scope, "snsapi_userinfo"))
        a->scope = WX_SCOPE_USERINFO;
    else if (web && !strcmp(scope, "snsapi_login"))
        a->scope = WX_SCOPE_LOGIN;
    else if (web) {
        page(req, 400, WX_EC_SCOPE_DENIED, "Scope 参数错误或没有 Scope 权限",
             "Bad scope: website login (qrconnect) uses snsapi_login.");
        return 1;
    } else {
        page(req, 400, WX_EC_SCOPE_DENIED, "Scope 参数错误或没有 Scope 权限",
             "Bad scope, or the account does not hold it (use snsapi_base or snsapi_userinfo).");
        return 1;
    }
    if (state) {
        int src = wx_state_valid(wx_slice_cstr(state));
        if (!*state) {
            page(req, 400, WX_EC_STATE_EMPTY, "state不能为空", "state is present but empty.");
            return 1;
        }
        if (src == WX_ERR_LIMIT) {
            page(req, 400, 0, "state参数过长", "state is longer than 128 bytes.");
            return 1;
        }
        if (src) {
            page(req, 400, 0, "state 参数错误，只能包含字母和数字",
                 "state may contain only A-Z, a-z and 0-9.");
            return 1;
        }
    }
    a->redirect_uri = ruri;
    a->scope_name = scope;
    a->state = state;
    return 0;
}

static void req_hash(const struct authz *a, unsigned char out[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    const char *parts[] = {a->app.appid, a->redirect_uri, a->scope_name, a->state ? a->state : ""};
    for (int i = 0; i < 4; i++)
        crypto_generichash_update(&st, (const unsigned char *)parts[i], strlen(parts[i]) + 1);
    crypto_generichash_final(&st, out, 32);
}

/* ---- the code-issuing job (silent grant, allow, deny) ---- */

struct issue_job {
    struct wx_job job;
    struct wx_provider *p;
    struct wx_http_req *req;
    int64_t app_id, user_id, now;
    int scope, snapshot, deny, use_nonce, nonce_reused;
    bool ghost; /* WeChat's doubled redirect: a first code, delivered aside, then the real one */
    unsigned char nonce[16];
    char *redirect_uri;
    char state[WX_MAX_STATE + 1];
    int has_state;
    struct wx_cred cred[2]; /* [ghost] is the code the browser is sent to */
    int64_t ids[2];
};

static int issue_run(struct wx_job *j, struct wx_store *s)
{
    struct issue_job *ij = (struct issue_job *)j;
    if (ij->use_nonce) {
        int rc = s->ops->nonce_use(s, ij->nonce, ij->now + WX_TICKET_TTL);
        if (rc == WX_ERR_CONFLICT) {
            ij->nonce_reused = 1;
            return 0;
        }
        if (rc)
            return -1;
        /* An answered consent form: remember 允许 ("近期登录过免授权"). */
        if (!ij->deny && s->ops->consent_set(s, ij->user_id, ij->app_id, ij->now))
            return -1;
    }
    for (int i = 0; !ij->deny && i <= ij->ghost; i++) {
        struct wx_code c = {0};
        wx_cred_new(&ij->p->keys, WX_CRED_CODE, &ij->cred[i]);
        memcpy(c.mac, ij->cred[i].mac, WX_CRED_MAC);
        c.app_id = ij->app_id;
        c.user_id = ij->user_id;
        c.scope = ij->scope;
        c.snapshot = ij->snapshot;
        c.expires = ij->now + WX_CODE_TTL;
        if (s->ops->code_insert(s, &c, 1))
            return -1;
        ij->ids[i] = c.id;
    }
    return 0;
}

/* Builds redirect_uri + code/state; code may be NULL (denial). */
static int callback_url(struct wx_buf *out, const struct issue_job *ij, const char *code)
{
    const char *kv[4];
    size_t n = 0;
    if (code) {
        kv[2 * n] = "code";
        kv[2 * n++ + 1] = code;
    }
    if (ij->has_state) {
        kv[2 * n] = "state";
        kv[2 * n++ + 1] = ij->state;
    }
    return wx_uri_add_params(out, ij->redirect_uri, kv, n);
}

static void *ghost_callback(void *arg)
{
    char *url = arg;
    CURL *c = curl_easy_init();
    if (c) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_USERAGENT,
                         "Mozilla/5.0 (Linux; Android 14) MicroMessenger/8.0.50 wxauth-fault");
        curl_easy_perform(c);
        curl_easy_cleanup(c);
    }
    sodium_memzero(url, strlen(url));
    free(url);
    return NULL;
}

/* The double-callback fault: the first code reaches the callback from a second request. */
static void deliver_ghost(const struct issue_job *ij, const char *code)
{
    struct wx_buf u;
    wx_buf_init(&u, WX_MAX_REDIRECT_URI + 512);
    pthread_t t;
    if (callback_url(&u, ij, code) == WX_OK) {
        char *url = wx_buf_steal(&u);
        if (pthread_create(&t, NULL, ghost_callback, url) == 0)
            pthread_detach(t);
        else
            free(url);
    }
    wx_buf_free(&u);
}

static void issue_done(struct wx_job *j, int committed)
{
    struct issue_job *ij = (struct issue_job *)j;
    struct wx_http_req *req = ij->req;
    char code[2][WX_CRED_MAX];
    if (!committed) {
        page(req, 503, WX_EC_SYSTEM, "系统繁忙，请稍后再试", "Service unavailable, retry later.");
    } else if (ij->nonce_reused) {
        page(req, 400, 0, "此授权页面已提交过，请返回重新进入",
             "This consent form was already answered; go back and open the link again.");
    } else {
        for (int i = 0; !ij->deny && i <= ij->ghost; i++)
            wx_cred_format(WX_CRED_CODE, &ij->cred[i], ij->ids[i], code[i]);
        if (!ij->deny && ij->ghost)
            deliver_ghost(ij, code[0]);
        struct wx_buf loc;
        wx_buf_init(&loc, WX_MAX_REDIRECT_URI + 512);
        if (callback_url(&loc, ij, ij->deny ? NULL : code[ij->ghost]) == WX_OK)
            wx_http_redirect(req, 302, loc.ptr);
        else
            page(req, 500, 0, "回调地址过长", "The callback URL is too long.");
        wx_buf_free(&loc);
        sodium_memzero(code, sizeof code);
    }
    sodium_memzero(ij->cred, sizeof ij->cred);
    free(ij->redirect_uri);
    free(ij);
    wx_p_resume(req);
}

static void submit_issue(struct wx_provider *p, struct wx_http_req *req, const struct authz *a,
                         int64_t user_id, int snapshot, int deny, const unsigned char *nonce,
                         bool ghost)
{
    struct issue_job *ij = calloc(1, sizeof(*ij));
    if (!ij || !(ij->redirect_uri = strdup(a->redirect_uri))) {
        free(ij);
        page(req, 503, WX_EC_SYSTEM, "系统繁忙，请稍后再试", "Out of memory.");
        return;
    }
    ij->p = p;
    ij->req = req;
    ij->app_id = a->app.id;
    ij->user_id = user_id;
    ij->now = wx_p_now(p);
    ij->scope = a->scope;
    ij->snapshot = snapshot;
    ij->deny = deny;
    ij->ghost = ghost;
    if (a->state) {
        ij->has_state = 1;
        snprintf(ij->state, sizeof ij->state, "%s", a->state);
    }
    if (nonce) {
        ij->use_nonce = 1;
        memcpy(ij->nonce, nonce, 16);
    }
    wx_p_submit(p, req, &ij->job, issue_run, issue_done);
}

/* ---- the consent page ---- */

static void hidden(struct wx_buf *b, const char *name, const char *value)
{
    wx_buf_printf(b, "<input type=\"hidden\" name=\"%s\" value=\"", name);
    wx_html_escape(b, value);
    wx_buf_puts(b, "\">");
}

/* The app's icon and name, as WeChat's pages open. */
static void app_header(struct wx_buf *b, const struct wx_app *app)
{
    wx_buf_puts(b, "<div class=\"app\">");
    wx_page_icon(b, app->name, 48, "icon");
    wx_buf_puts(b, "<b>");
    wx_html_escape(b, app->name);
    wx_buf_puts(b, "</b></div>");
}

static void consent_page(struct wx_provider *p, struct wx_http_req *req, const struct authz *a,
                         const struct wx_user *u, int web)
{
    struct ticket t;
    randombytes_buf(t.nonce, sizeof t.nonce);
    t.user_id = u->id;
    t.expires = wx_p_now(p) + WX_TICKET_TTL;
    req_hash(a, t.req_hash);
    struct wx_buf tk;
    wx_buf_init(&tk, 1024);
    if (wx_seal(p->keys.seal, "consent", &t, sizeof t, &tk)) {
        wx_buf_free(&tk);
        page(req, 500, 0, "系统错误", "Internal error.");
        return;
    }
    struct wx_buf *b = &req->out;
    wx_page_begin(req, 200, web ? "确认登录" : "微信授权");
    wx_buf_puts(b, "<div class=\"card\">");
    app_header(b, &a->app);
    wx_buf_puts(b, web ? "<h1>申请使用你的微信帐号登录该网站</h1>" : "<h1>申请获得以下权限</h1>");
    wx_buf_puts(b, "<div class=\"scope\"><span class=\"dot\"></span><span>获得你的公开信息（昵称、"
                   "头像等）</span></div><div class=\"me\">");
    wx_page_icon(b, u->nickname, 40, "avatar");
    wx_buf_puts(b, "<span>");
    wx_html_escape(b, u->nickname);
    wx_buf_puts(b, "</span><span class=\"muted\">微信个人信息</span></div>");
    wx_buf_puts(b, web ? "<form method=\"post\" action=\"/connect/qrconnect/confirm\">"
                       : "<form method=\"post\" action=\"/connect/oauth2/authorize/confirm\">");
    hidden(b, "appid", a->app.appid);
    hidden(b, "redirect_uri", a->redirect_uri);
    hidden(b, "response_type", "code");
    hidden(b, "scope", a->scope_name);
    if (a->state)
        hidden(b, "state", a->state);
    hidden(b, "ticket", tk.ptr);
    wx_buf_printf(b,
                  "<div class=\"btns\"><button class=\"ok\" type=\"submit\" name=\"action\" "
                  "value=\"allow\">%s</button><button class=\"no\" type=\"submit\" "
                  "name=\"action\" value=\"deny\">%s</button></div></form></div>",
                  web ? "确认登录" : "允许", web ? "取消登录" : "拒绝");
    wx_page_end(req);
    wx_buf_free(&tk);
}

/* Sealed "entered from the account's menu or chat" marker, set by /sandbox/enter. */
static int entered_from_menu(struct wx_provider *p, struct wx_http_req *req, int64_t app_id,
                             int64_t user_id)
{
    const char *c = wx_http_cookie(req, "wxentry");
    int64_t v[3];
    size_t n = 0;
    if (!c || wx_unseal(p->keys.seal, "entry", wx_slice_cstr(c), v, sizeof v, &n) || n != sizeof v)
        return 0;
    return v[0] == app_id && v[1] == user_id && v[2] > wx_p_now(p);
}

static int truthy(const char *v)
{
    return v && (!strcmp(v, "true") || !strcmp(v, "1"));
}

/*
 * Whether snsapi_userinfo is silent, in WeChat's order of precedence: a follower entering from the
 * account's menu or chat (nothing overrides it); consent given recently (unless forcePopup);
 * forceSnapShot (snapshot mode: no pop-up, virtual-user data). Returns -1 on a store error.
 */
static int userinfo_silent(struct wx_provider *p, struct wx_http_req *req, const struct wx_query *q,
                           const struct authz *a, int64_t uid, int *snapshot)
{
    int64_t at;
    if (entered_from_menu(p, req, a->app.id, uid)) {
        int rc = p->rd->ops->follow_get(p->rd, uid, a->app.id, &at);
        if (rc == WX_OK)
            return 1;
        if (rc != WX_ERR_NOTFOUND)
            return -1;
    }
    if (p->consent_memory > 0 && !truthy(wx_query_get(q, "forcePopup"))) {
        int rc = p->rd->ops->consent_get(p->rd, uid, a->app.id, &at);
        if (rc == WX_OK && at + p->consent_memory > wx_p_now(p))
            return 1;
        if (rc != WX_OK && rc != WX_ERR_NOTFOUND)
            return -1;
    }
    if (truthy(wx_query_get(q, "forceSnapShot"))) {
        *snapshot = 1;
        return 1;
    }
    return 0;
}

/* The app's per-minute quota: 1 after answering 429 when this call is over it. */
static int over_quota(struct wx_provider *p, struct wx_http_req *req, int64_t app_id)
{
    if (!wx_p_rate_exceeded(p, p->rd, app_id))
        return 0;
    page(req, 429, WX_EC_TOO_FREQUENT, "操作太频繁了，请稍后重试",
         "Too many requests for this account; retry later.");
    return 1;
}

/* User uid into *u: 1, or 0 after answering 503 when the store cannot be read. */
static int load_user(struct wx_provider *p, struct wx_http_req *req, int64_t uid, struct wx_user *u)
{
    if (p->rd->ops->user_get(p->rd, uid, u) == WX_OK)
        return 1;
    page(req, 503, WX_EC_SYSTEM, "系统繁忙，请稍后再试", "Service unavailable, retry later.");
    return 0;
}

/*
 * The signed-in sandbox user into *u: 1, or 0 after answering (sent to sign in and come back,
 * or 503 when the store cannot be read).
 */
static int signed_in_user(struct wx_provider *p, struct wx_http_req *req, struct wx_user *u)
{
    int64_t uid = wx_p_session_user(p, req);
    if (!uid) {
        struct wx_buf next;
        wx_buf_init(&next, WX_MAX_URL * 3 + 64);
        wx_buf_puts(&next, "/sandbox/login?next=");
        wx_pct_encode(&next, (struct wx_slice){req->target, strlen(req->target)});
        wx_http_redirect(req, 303, next.ptr);
        wx_buf_free(&next);
        return 0;
    }
    return load_user(p, req, uid, u);
}

void wx_route_authorize(struct wx_provider *p, struct wx_http_req *req)
{
    struct wx_query q;
    struct authz a;
    int dbl = 0;
    if (wx_p_params(p, req, &q, 0))
        return;
    if (authz_check(p, req, &q, &a, 0))
        goto done;
    int fault = wx_p_fault(p, req, "authorize", -1, &dbl);
    if (fault) {
        const struct wx_errcode_info *e = wx_errcode_explain(fault);
        page(req, 200, fault, e ? e->zh : "系统错误", "Injected fault (POST /admin/faults).");
        goto done;
    }
    if (over_quota(p, req, a.app.id))
        goto done;
    const char *ua = wx_http_header(req, "User-Agent");
    if (!p->sandbox && (!ua || !strstr(ua, "MicroMessenger"))) {
        page(req, 200, 0, "请在微信客户端打开链接", "Please open this link in WeChat.");
        goto done;
    }
    struct wx_user u;
    if (!signed_in_user(p, req, &u))
        goto done;
    int64_t uid = u.id;
    int snapshot = u.snapshot;
    int silent = a.scope == WX_SCOPE_BASE ? 1 : userinfo_silent(p, req, &q, &a, uid, &snapshot);
    if (silent < 0) {
        page(req, 503, WX_EC_SYSTEM, "系统繁忙，请稍后再试", "Service unavailable.");
        goto done;
    }
    if (silent)
        submit_issue(p, req, &a, uid, snapshot, 0, NULL, dbl);
    else
        consent_page(p, req, &a, &u, 0);
done:
    wx_query_free(&q);
}

void wx_route_consent(struct wx_provider *p, struct wx_http_req *req)
{
    struct wx_query q;
    struct authz a;
    struct ticket t;
    size_t n = 0;
    unsigned char want[32];
    int web = wx_slice_eq(req->path, "/connect/qrconnect/confirm");
    if (wx_p_params(p, req, &q, 1))
        return;
    if (authz_check(p, req, &q, &a, web))
        goto done;
    const char *tk = wx_query_get(&q, "ticket");
    const char *action = wx_query_get(&q, "action");
    int64_t uid = wx_p_session_user(p, req);
    req_hash(&a, want);
    if (!tk || wx_unseal(p->keys.seal, "consent", wx_slice_cstr(tk), &t, sizeof t, &n) ||
        n != sizeof t || sodium_memcmp(t.req_hash, want, 32) != 0 || !uid || t.user_id != uid) {
        page(req, 403, 0, "授权页面无效或已过期，请返回重新进入",
             "This consent form is invalid or not yours; go back and open the link again.");
        goto done;
    }
    if (t.expires <= wx_p_now(p)) {
        page(req, 403, 0, "授权页面已过期，请返回重新进入",
             "This consent form has expired; open the link again.");
        goto done;
    }
    if (!action || (strcmp(action, "allow") != 0 && strcmp(action, "deny") != 0)) {
        page(req, 400, 0, "请选择允许或拒绝", "Choose allow or deny.");
        goto done;
    }
    struct wx_user u;
    if (!load_user(p, req, uid, &u))
        goto done;
    submit_issue(p, req, &a, uid, u.snapshot, !strcmp(action, "deny"), t.nonce, false);
done:
    wx_query_free(&q);
}

/*
 * GET /connect/qrconnect — a website app's login (scope snsapi_login), for desktop browsers: a
 * page with a QR code to scan with WeChat. In the sandbox the "phone" is any browser signed in
 * as a test user: the QR code (and the link under it) open /connect/qrconnect/scan, where the
 * user confirms; the confirmation redirects to redirect_uri?code=CODE&state=STATE as WeChat
 * redirects the desktop page (and cancelling, to redirect_uri?state=STATE).
 */
void wx_route_qrconnect(struct wx_provider *p, struct wx_http_req *req)
{
    struct wx_query q;
    struct authz a;
    if (wx_p_params(p, req, &q, 0))
        return;
    if (authz_check(p, req, &q, &a, 1))
        goto done;
    if (over_quota(p, req, a.app.id))
        goto done;
    struct wx_buf scan;
    wx_buf_init(&scan, WX_MAX_URL + 600);
    wx_buf_printf(&scan, "%s/connect/qrconnect/scan?", p->public_url);
    wx_buf_append(&scan, req->query.ptr, req->query.len);
    struct wx_buf *b = &req->out;
    wx_page_begin(req, 200, "微信登录");
    wx_buf_puts(b, "<div class=\"card qr\">");
    app_header(b, &a.app);
    wx_buf_puts(b, "<h1>微信登录</h1>");
    if (scan.ptr && wx_qr_img(b, scan.ptr, 220) != WX_OK)
        wx_buf_puts(b, "<p>(二维码过长 · the QR code does not fit this URL)</p>");
    wx_buf_puts(b, "<p>请使用微信扫描二维码登录「");
    wx_html_escape(b, a.app.name);
    wx_buf_puts(b, "」</p><p class=\"muted\">沙箱：<a href=\"");
    wx_html_escape(b, scan.ptr ? scan.ptr : "");
    wx_buf_puts(b, "\">在此浏览器中模拟扫码 · Sandbox: scan in this browser</a></p></div>");
    wx_page_end(req);
    wx_buf_free(&scan);
done:
    wx_query_free(&q);
}

/* GET /connect/qrconnect/scan — what the phone shows after scanning: 确认登录 / 取消登录. */
void wx_route_qrconnect_scan(struct wx_provider *p, struct wx_http_req *req)
{
    struct wx_query q;
    struct authz a;
    if (wx_p_params(p, req, &q, 0))
        return;
    if (authz_check(p, req, &q, &a, 1))
        goto done;
    struct wx_user u;
    if (signed_in_user(p, req, &u))
        consent_page(p, req, &a, &u, 1);
done:
    wx_query_free(&q);
}
