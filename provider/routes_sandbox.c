/*
 * routes_sandbox.c — the offline stand-in for the WeChat client: a sign-in page listing the test
 * users (POST /sandbox/login works from curl too), the simulated WeChat home with the accounts
 * the user follows and their menu links ("entering from the account's menu"), and avatars.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "provider.h"
#include "seal.h"

struct login_ticket {
    unsigned char nonce[16];
    int64_t expires;
};

/* A relative next URL ("/..." but not "//" or "/\"), else the home page. */
static const char *safe_next(const char *next)
{
    if (!next || next[0] != '/' || next[1] == '/' || next[1] == '\\')
        return "/sandbox/home";
    for (const char *c = next; *c; c++)
        if ((unsigned char)*c < 0x21 || (unsigned char)*c >= 0x7f)
            return "/sandbox/home";
    return next;
}

/*
 * Browsers send Origin on every POST ("null" under Referrer-Policy: no-referrer, which these
 * pages set); a non-browser client (curl) sends none. A foreign origin is refused outright;
 * browser posts must then also carry the form's one-time token.
 */
static int same_origin_or_none(struct wx_provider *p, struct wx_http_req *req, int *browser)
{
    const char *origin = wx_http_header(req, "Origin");
    const char *host = wx_http_header(req, "Host");
    *browser = origin != NULL;
    if (!origin || !strcmp(origin, "null"))
        return 1;
    char want[300];
    snprintf(want, sizeof want, "http://%s", host ? host : "");
    return !strcmp(origin, want) || !strcmp(origin, p->public_url) ||
           (snprintf(want, sizeof want, "https://%s", host ? host : ""), !strcmp(origin, want));
}

struct login_list {
    struct wx_buf *b;
    const char *next;
    const char *ticket;
    int n;
};

static void login_user_row(void *ud, const struct wx_user *u)
{
    struct login_list *l = ud;
    struct wx_buf *b = l->b;
    l->n++;
    wx_buf_puts(b, "<li>");
    wx_page_icon(b, u->nickname, 40, "avatar");
    wx_buf_puts(b, "<span>");
    wx_html_escape(b, u->nickname);
    wx_buf_printf(b, "<br><span class=\"muted\">id %lld%s</span></span>", (long long)u->id,
                  u->snapshot ? " · 快照页用户" : "");
    wx_buf_puts(b, "<form method=\"post\" action=\"/sandbox/login\">");
    wx_buf_printf(b, "<input type=\"hidden\" name=\"user\" value=\"%lld\">", (long long)u->id);
    wx_buf_puts(b, "<input type=\"hidden\" name=\"next\" value=\"");
    wx_html_escape(b, l->next);
    wx_buf_puts(b, "\"><input type=\"hidden\" name=\"csrf\" value=\"");
    wx_html_escape(b, l->ticket);
    wx_buf_puts(b, "\"><button class=\"ok small\" type=\"submit\">登录</button></form></li>");
}

static void login_page(struct wx_provider *p, struct wx_http_req *req, const char *next)
{
    struct login_ticket t;
    randombytes_buf(t.nonce, sizeof t.nonce);
    t.expires = wx_p_now(p) + WX_TICKET_TTL;
    struct wx_buf tk;
    wx_buf_init(&tk, 512);
    wx_seal(p->keys.seal, "login", &t, sizeof t, &tk);
    wx_page_begin(req, 200, "选择测试用户");
    struct wx_buf *b = &req->out;
    wx_buf_puts(b, "<div class=\"card\"><h1>用微信测试用户登录</h1><p class=\"muted\">Sign in as "
                   "a test user: this browser then plays that user's WeChat client.</p>"
                   "<ul class=\"list\">");
    struct login_list l = {b, next, tk.ptr ? tk.ptr : "", 0};
    if (p->rd->ops->user_list(p->rd, login_user_row, &l)) {
        wx_buf_free(&tk);
        wx_page_error(req, 503, WX_EC_SYSTEM, "系统繁忙，请稍后再试", "Store unavailable.");
        return;
    }
    wx_buf_puts(b, "</ul>");
    if (!l.n)
        wx_buf_puts(b, "<p>还没有测试用户。No test users yet: run <code>wxauth user add --db "
                       "FILE --nickname NAME</code>.</p>");
    wx_buf_puts(b, "</div>");
    wx_page_end(req);
    wx_buf_free(&tk);
}

struct login_job {
    struct wx_job job;
    struct wx_provider *p;
    struct wx_http_req *req;
    unsigned char nonce[16];
    int64_t expires, user_id;
    int reused;
    char next[1024];
};

static int login_run(struct wx_job *j, struct wx_store *s)
{
    struct login_job *l = (struct login_job *)j;
    int rc = s->ops->nonce_use(s, l->nonce, l->expires);
    l->reused = rc == WX_ERR_CONFLICT;
    return rc == WX_OK || l->reused ? 0 : -1;
}

static void login_done(struct wx_job *j, int committed)
{
    struct login_job *l = (struct login_job *)j;
    struct wx_http_req *req = l->req;
    if (!committed)
        wx_page_error(req, 503, WX_EC_SYSTEM, "系统繁忙，请稍后再试", "Store unavailable.");
    else if (l->reused)
        wx_page_error(req, 403, 0, "登录表单已使用，请刷新登录页",
                      "This sign-in form was already used; reload the sign-in page.");
    else {
        wx_p_set_session(l->p, req, l->user_id);
        wx_http_redirect(req, 303, l->next);
    }
    free(l);
    wx_p_resume(req);
}

static void login_post(struct wx_provider *p, struct wx_http_req *req)
{
    struct wx_query q;
    struct wx_user u;
    int browser = 0;
    if (wx_p_params(p, req, &q, 1))
        return;
    const char *user = wx_query_get(&q, "user"), *csrf = wx_query_get(&q, "csrf");
    const char *next = safe_next(wx_query_get(&q, "next"));
    char *end = NULL;
    long long id = user ? strtoll(user, &end, 10) : 0;
    if (!same_origin_or_none(p, req, &browser)) {
        wx_page_error(req, 403, 0, "跨站请求被拒绝", "Cross-site request refused.");
    } else if (!user || !*user || *end || id <= 0 || p->rd->ops->user_get(p->rd, id, &u)) {
        wx_page_error(req, 400, 0, "没有这个测试用户", "No such test user.");
    } else if (browser || csrf) {
        struct login_ticket t;
        size_t n = 0;
        if (!csrf || wx_unseal(p->keys.seal, "login", wx_slice_cstr(csrf), &t, sizeof t, &n) ||
            n != sizeof t || t.expires <= wx_p_now(p)) {
            wx_page_error(req, 403, 0, "登录表单无效或已过期，请刷新登录页",
                          "The sign-in form is invalid or expired; reload the sign-in page.");
        } else {
            struct login_job *l = calloc(1, sizeof(*l));
            if (!l) {
                wx_page_error(req, 503, WX_EC_SYSTEM, "系统繁忙", "Out of memory.");
            } else {
                l->p = p;
                l->req = req;
                memcpy(l->nonce, t.nonce, 16);
                l->expires = t.expires;
                l->user_id = id;
                snprintf(l->next, sizeof l->next, "%s", next);
                wx_p_submit(p, req, &l->job, login_run, login_done);
            }
        }
    } else {
        wx_p_set_session(p, req, id);
        wx_http_redirect(req, 303, next);
    }
    wx_query_free(&q);
}

struct home_list {
    struct wx_buf *b;
    int n;
};

static void home_app_row(void *ud, const struct wx_app *a)
{
    struct home_list *h = ud;
    struct wx_buf *b = h->b;
    h->n++;
    wx_buf_puts(b, "<li>");
    wx_page_icon(b, a->name, 44, "icon");
    wx_buf_puts(b, "<div><b>");
    wx_html_escape(b, a->name);
    wx_buf_puts(b, "</b><div class=\"menu\">");
    const char *m = a->menu;
    int i = 0;
    while (*m) {
        const char *e = strchr(m, '\n'), *eq = strchr(m, '=');
        size_t n = e ? (size_t)(e - m) : strlen(m);
        if (eq && eq < m + n) {
            char label[64];
            snprintf(label, sizeof label, "%.*s", (int)(eq - m), m);
            wx_buf_printf(b, "<a href=\"/sandbox/enter?appid=%s&amp;item=%d\">", a->appid, i);
            wx_html_escape(b, label);
            wx_buf_puts(b, "</a>");
        }
        i++;
        if (!e)
            break;
        m = e + 1;
    }
    if (!i)
        wx_buf_puts(b, "<span class=\"muted\">没有菜单 (no menu: wxauth app add --menu "
                       "LABEL=URL)</span>");
    wx_buf_puts(b, "</div></div></li>");
}

static void home_page(struct wx_provider *p, struct wx_http_req *req)
{
    int64_t uid = wx_p_session_user(p, req);
    struct wx_user u;
    if (!uid || p->rd->ops->user_get(p->rd, uid, &u)) {
        wx_http_redirect(req, 303, "/sandbox/login?next=%2Fsandbox%2Fhome");
        return;
    }
    wx_page_begin(req, 200, "微信");
    struct wx_buf *b = &req->out;
    wx_buf_puts(b, "<div class=\"card\"><div class=\"me\">");
    wx_page_icon(b, u.nickname, 56, "avatar");
    wx_buf_puts(b, "<div><b>");
    wx_html_escape(b, u.nickname);
    wx_buf_printf(b,
                  "</b><br><span class=\"muted\">测试用户 id %lld</span></div>"
                  "<form method=\"post\" action=\"/sandbox/logout\" class=\"right\">"
                  "<button class=\"no small\" type=\"submit\">切换用户</button></form></div>"
                  "</div><div class=\"card\"><h2>已关注的公众号 · Accounts you follow</h2>"
                  "<ul class=\"list\">",
                  (long long)u.id);
    struct home_list h = {b, 0};
    if (p->rd->ops->follow_list(p->rd, uid, home_app_row, &h)) {
        wx_page_error(req, 503, WX_EC_SYSTEM, "系统繁忙，请稍后再试", "Store unavailable.");
        return;
    }
    wx_buf_puts(b, "</ul>");
    if (!h.n)
        wx_buf_puts(b, "<p class=\"muted\">还没有关注任何公众号。Follow one with <code>wxauth user "
                       "follow --db FILE USER APPID</code>.</p>");
    wx_buf_puts(b,
                "<p class=\"muted\">从公众号菜单进入的网页，snsapi_userinfo 授权对关注者静默完成。"
                "Pages opened from an account's menu get silent snsapi_userinfo for "
                "followers.</p></div>");
    wx_page_end(req);
}

/* Opens menu item `item` of an account the user follows, marking the entry for 2 minutes. */
static void enter(struct wx_provider *p, struct wx_http_req *req)
{
    struct wx_query q;
    struct wx_app a;
    int64_t since;
    if (wx_p_params(p, req, &q, 0))
        return;
    int64_t uid = wx_p_session_user(p, req);
    const char *appid = wx_query_get(&q, "appid"), *item = wx_query_get(&q, "item");
    int idx = item && item[0] >= '0' && item[0] <= '2' && !item[1] ? item[0] - '0' : -1;
    if (!uid) {
        wx_http_redirect(req, 303, "/sandbox/login?next=%2Fsandbox%2Fhome");
    } else if (!appid || idx < 0 || p->rd->ops->app_by_appid(p->rd, appid, &a)) {
        wx_page_error(req, 404, 0, "没有这个公众号菜单", "No such account menu item.");
    } else if (p->rd->ops->follow_get(p->rd, uid, a.id, &since)) {
        wx_page_error(req, 403, 0, "你还没有关注该公众号", "You do not follow this account.");
    } else {
        const char *m = a.menu;
        for (int i = 0; i < idx && m; i++) {
            m = strchr(m, '\n');
            m = m ? m + 1 : NULL;
        }
        const char *eq = m ? strchr(m, '=') : NULL;
        const char *nl = m ? strchr(m, '\n') : NULL;
        if (!eq || (nl && eq > nl)) {
            wx_page_error(req, 404, 0, "没有这个公众号菜单", "No such account menu item.");
        } else {
            char url[WX_MAX_MENU_TEXT];
            snprintf(url, sizeof url, "%.*s", (int)(nl ? nl - eq - 1 : (long)strlen(eq + 1)),
                     eq + 1);
            int64_t v[3] = {a.id, uid, wx_p_now(p) + WX_ENTRY_TTL};
            struct wx_buf c;
            wx_buf_init(&c, 1024);
            wx_buf_puts(&c, "wxentry=");
            wx_seal(p->keys.seal, "entry", v, sizeof v, &c);
            wx_buf_printf(&c, "; Path=/; HttpOnly; SameSite=Lax; Max-Age=%d%s", WX_ENTRY_TTL,
                          p->secure_cookies ? "; Secure" : "");
            wx_http_redirect(req, 303, url);
            wx_http_set_header(req, "Set-Cookie", c.ptr);
            wx_buf_free(&c);
        }
    }
    wx_query_free(&q);
}

void wx_route_avatar(struct wx_provider *p, struct wx_http_req *req)
{
    /* /sandbox/avatar/ID/SIZE */
    const char *s = req->path.ptr + strlen("/sandbox/avatar/");
    char *end = NULL;
    long long id = strtoll(s, &end, 10);
    struct wx_user u;
    if (id <= 0 || (*end && *end != '/' && *end != '?') || p->rd->ops->user_get(p->rd, id, &u)) {
        wx_http_text(req, 404, "no such avatar\n");
        return;
    }
    wx_buf_reset(&req->out);
    wx_page_avatar_svg(&req->out, u.nickname);
    req->status = 200;
    req->content_type = "image/svg+xml";
    wx_http_set_header(req, "Content-Security-Policy", "default-src 'none'");
    wx_http_set_header(req, "Cache-Control", "public, max-age=600");
}

/*
 * A callback inspector: register the provider's own host as an app domain and use
 * /sandbox/callback as redirect_uri to see what a relying party would receive.
 */
static void callback_page(struct wx_provider *p, struct wx_http_req *req)
{
    struct wx_query q;
    if (wx_p_params(p, req, &q, 0))
        return;
    const char *code = wx_query_get(&q, "code"), *state = wx_query_get(&q, "state");
    struct wx_buf *b = &req->out;
    wx_page_begin(req, 200, "回调 · Callback");
    wx_buf_puts(b, "<div class=\"card\">");
    if (code) {
        wx_buf_puts(b, "<h1>授权成功：收到 code</h1><p class=\"muted\">The relying party would "
                       "now exchange this code once, within 5 minutes, on its server:</p>"
                       "<p class=\"code\">code = ");
        wx_html_escape(b, code);
        wx_buf_puts(b, "<br>state = ");
        wx_html_escape(b, state ? state : "(none)");
        wx_buf_printf(b,
                      "</p><p class=\"code\">curl '%s/sns/oauth2/access_token?appid=APPID&amp;"
                      "secret=SECRET&amp;code=",
                      p->public_url);
        wx_html_escape(b, code);
        wx_buf_puts(b, "&amp;grant_type=authorization_code'</p>");
    } else {
        wx_buf_puts(b, "<h1>用户拒绝了授权</h1><p class=\"muted\">The user pressed 拒绝: the "
                       "callback carries only state, no code. A relying party shows a page like "
                       "this one instead of failing.</p><p class=\"code\">state = ");
        wx_html_escape(b, state ? state : "(none)");
        wx_buf_puts(b, "</p>");
    }
    wx_buf_puts(b, "<p><a href=\"/sandbox/home\">返回微信首页 · Back to the WeChat home</a></p>"
                   "</div>");
    wx_page_end(req);
    wx_query_free(&q);
}

void wx_route_sandbox(struct wx_provider *p, struct wx_http_req *req)
{
    int browser = 0;
    int get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
    if (wx_slice_eq(req->path, "/sandbox/login") && get) {
        struct wx_query q;
        if (wx_p_params(p, req, &q, 0))
            return;
        login_page(p, req, safe_next(wx_query_get(&q, "next")));
        wx_query_free(&q);
    } else if (wx_slice_eq(req->path, "/sandbox/login") && !strcmp(req->method, "POST")) {
        login_post(p, req);
    } else if (wx_slice_eq(req->path, "/sandbox/logout") && !strcmp(req->method, "POST")) {
        if (!same_origin_or_none(p, req, &browser)) {
            wx_page_error(req, 403, 0, "跨站请求被拒绝", "Cross-site request refused.");
            return;
        }
        wx_p_set_session(p, req, 0);
        wx_http_redirect(req, 303, "/sandbox/login");
    } else if (wx_slice_eq(req->path, "/sandbox/home") && get) {
        home_page(p, req);
    } else if (wx_slice_eq(req->path, "/sandbox/enter") && get) {
        enter(p, req);
    } else if (wx_slice_eq(req->path, "/sandbox/callback") && get) {
        callback_page(p, req);
    } else {
        wx_page_error(req, 404, 0, "页面不存在", "Page not found");
    }
}
