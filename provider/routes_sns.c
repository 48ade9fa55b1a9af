/*
 * routes_sns.c — api.weixin.qq.com/sns/...: code exchange, refresh, userinfo and auth, with the
 * fields, errcodes and lifetimes of protocol sheet §4–§7 and the pinned choices of SECURITY.md §2.
 * Errors are HTTP 200 with {"errcode","errmsg"} as WeChat sends them.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "provider.h"

/* A parameter's value; NULL when absent, and *dup set when it appears more than once. */
const char *wx_p_param(const struct wx_query *q, const char *name, int *dup)
{
    if (wx_query_count(q, name) > 1) {
        *dup = 1;
        return NULL;
    }
    return wx_query_get(q, name);
}

/* appid presence and lookup, shared by every endpoint that takes one. Returns an errcode. */
int wx_p_check_app(struct wx_provider *p, struct wx_store *st, const struct wx_query *q,
                   struct wx_app *app)
{
    int dup = 0;
    const char *appid = wx_p_param(q, "appid", &dup);
    if (dup)
        return WX_EC_INVALID_APPID;
    if (!appid || !*appid)
        return WX_EC_APPID_MISSING;
    if (strlen(appid) != WX_APPID_LEN)
        return WX_EC_INVALID_APPID;
    int rc = st->ops->app_by_appid(st, appid, app);
    if (rc == WX_ERR_NOTFOUND)
        return WX_EC_INVALID_APPID;
    return rc ? WX_EC_SYSTEM : 0;
}

/* secret presence and constant-time comparison. Returns an errcode. */
int wx_p_check_secret(struct wx_provider *p, const struct wx_query *q, const struct wx_app *app)
{
    int dup = 0;
    const char *secret = wx_p_param(q, "secret", &dup);
    if (dup)
        return WX_EC_INVALID_SECRET;
    if (!secret || !*secret)
        return WX_EC_SECRET_MISSING;
    /*
     * The last secret this thread verified: a relying party sends the same secret on every
     * call, and one keyed hash less per call is measurable. Keyed by the app and its stored MAC,
     * so another app or a reset secret never matches; compared in constant time.
     */
    static _Thread_local struct {
        int64_t app_id;
        unsigned char mac[WX_CRED_MAC];
        size_t len;
        char secret[64];
    } last;
    size_t n = strlen(secret);
    if (last.len && last.len == n && last.app_id == app->id &&
        !sodium_memcmp(last.mac, app->secret_mac, WX_CRED_MAC) &&
        !sodium_memcmp(last.secret, secret, n))
        return 0;
    unsigned char mac[WX_CRED_MAC];
    wx_secret_mac(&p->keys, wx_slice_cstr(secret), mac);
    if (sodium_memcmp(mac, app->secret_mac, WX_CRED_MAC) != 0)
        return WX_EC_INVALID_SECRET;
    if (n <= sizeof last.secret) {
        last.app_id = app->id;
        memcpy(last.mac, app->secret_mac, WX_CRED_MAC);
        memcpy(last.secret, secret, n);
        last.len = n;
    }
    return 0;
}

int wx_p_check_grant_type(const struct wx_query *q, const char *want)
{
    int dup = 0;
    const char *gt = wx_p_param(q, "grant_type", &dup);
    return !gt || strcmp(gt, want) != 0 ? WX_EC_INVALID_GRANT_TYPE : 0;
}

/* Shared front of every JSON endpoint: parse, faults. Returns 1 when already answered. */
int wx_p_front(struct wx_provider *p, struct wx_http_req *req, struct wx_query *q,
               const char *route, enum wx_api_family fam)
{
    if (wx_p_params(p, req, q, 0))
        return 1;
    if (wx_p_fault(p, req, route, (int)fam, NULL)) {
        wx_query_free(q);
        return 1;
    }
    return 0;
}

/* ---- token-minting job: code exchange and refresh ---- */

/*
 * Everything of the exchange and the refresh runs on the writer, inside the group commit: the
 * app and its secret are read in the same transaction that redeems the code, so a secret reset
 * or a revocation is seen at once and the HTTP thread does no database work for these calls.
 */
struct mint_job {
    struct wx_job job;
    struct wx_provider *p;
    struct wx_http_req *req;
    struct wx_query q; /* owned: the request's parameters */
    int refresh;       /* 0: code exchange, 1: refresh */
    int64_t now;
    /* results */
    int errcode;
    struct wx_app app;
    const char *refresh_token; /* points into q */
    int64_t user_id;
    int scope, snapshot;
    struct wx_cred access, grant;
    int64_t access_id, grant_id;
};

/* A new access token's secret part: its credential, and the row's mac and lifetime. */
static void new_access(struct mint_job *m, struct wx_access *a)
{
    memset(a, 0, sizeof(*a));
    wx_cred_new(&m->p->keys, WX_CRED_ACCESS, &m->access);
    memcpy(a->mac, m->access.mac, WX_CRED_MAC);
    a->expires = m->now + WX_ACCESS_TTL;
}

static int mint_access(struct mint_job *m, struct wx_store *s, int64_t grant_id)
{
    struct wx_access a;
    new_access(m, &a);
    a.grant_id = grant_id;
    a.app_id = m->app.id;
    a.user_id = m->user_id;
    a.scope = m->scope;
    a.snapshot = m->snapshot;
    if (s->ops->access_insert(s, &a))
        return -1;
    m->access_id = a.id;
    return 0;
}

/* Sets m->errcode and returns 0 (nothing to write) or -1 on a store failure. */
static int refuse(struct mint_job *m, int errcode)
{
    m->errcode = errcode;
    return errcode == WX_EC_SYSTEM ? -1 : 0;
}

static int exchange_run(struct mint_job *m, struct wx_store *s)
{
    int ec, dup = 0;
    /* WeChat's order: appid first, then the secret, the code, the grant type. */
    if ((ec = wx_p_check_app(m->p, s, &m->q, &m->app)) ||
        (ec = wx_p_check_secret(m->p, &m->q, &m->app)))
        return refuse(m, ec);
    const char *code = wx_p_param(&m->q, "code", &dup);
    if (!code || !*code)
        return refuse(m, dup ? WX_EC_INVALID_CODE : WX_EC_CODE_MISSING);
    if ((ec = wx_p_check_grant_type(&m->q, "authorization_code")))
        return refuse(m, ec);
    if (wx_p_rate_exceeded(m->p, s, m->app.id))
        return refuse(m, WX_EC_MINUTE_QUOTA);
    int64_t id;
    unsigned char mac[WX_CRED_MAC];
    if (wx_cred_parse(&m->p->keys, WX_CRED_CODE, wx_slice_cstr(code), &id, mac))
        return refuse(m, WX_EC_INVALID_CODE);
    struct wx_grant g;
    struct wx_access a; /* minted in the same step */
    int rc = wx_p_redeem(m->p, s, id, mac, m->app.id, m->now, &m->grant, &m->access, &g, &a);
    if (rc == WX_ERR_NOTFOUND || rc == WX_ERR_EXPIRED)
        return refuse(m, WX_EC_INVALID_CODE);
    if (rc == WX_ERR_CONFLICT) {
        m->errcode = WX_EC_CODE_USED; /* the revocation it made must be committed */
        return 0;
    }
    if (rc)
        return -1;
    m->user_id = g.user_id;
    m->scope = g.scope;
    m->snapshot = g.snapshot;
    m->grant_id = g.id;
    m->access_id = a.id;
    return 0;
}

static int refresh_run(struct mint_job *m, struct wx_store *s)
{
    int ec, dup = 0;
    if ((ec = wx_p_check_app(m->p, s, &m->q, &m->app)) ||
        (ec = wx_p_check_grant_type(&m->q, "refresh_token")))
        return refuse(m, ec);
    const char *rt = wx_p_param(&m->q, "refresh_token", &dup);
    if (!rt || !*rt)
        return refuse(m, dup ? WX_EC_INVALID_REFRESH : WX_EC_REFRESH_MISSING);
    if (wx_p_rate_exceeded(m->p, s, m->app.id))
        return refuse(m, WX_EC_MINUTE_QUOTA);
    int64_t id;
    unsigned char mac[WX_CRED_MAC];
    struct wx_grant g;
    if (wx_cred_parse(&m->p->keys, WX_CRED_REFRESH, wx_slice_cstr(rt), &id, mac))
        return refuse(m, WX_EC_INVALID_REFRESH);
    int rc = s->ops->grant_get(s, id, &g);
    if (rc && rc != WX_ERR_NOTFOUND)
        return -1;
    if (rc || sodium_memcmp(g.mac, mac, WX_CRED_MAC) != 0 || g.app_id != m->app.id || g.revoked)
        return refuse(m, WX_EC_INVALID_REFRESH);
    if (g.expires <= m->now)
        return refuse(m, WX_EC_REFRESH_EXPIRED);
    m->refresh_token = rt;
    m->user_id = g.user_id;
    m->scope = g.scope;
    m->snapshot = g.snapshot;
    return mint_access(m, s, g.id);
}

static int mint_run(struct wx_job *j, struct wx_store *s)
{
    struct mint_job *m = (struct mint_job *)j;
    m->errcode = 0;
    return m->refresh ? refresh_run(m, s) : exchange_run(m, s);
}

static const char *scope_name(int scope)
{
    return scope == WX_SCOPE_USERINFO ? "snsapi_userinfo"
           : scope == WX_SCOPE_LOGIN  ? "snsapi_login"
                                      : "snsapi_base";
}

static void mint_done(struct wx_job *j, int committed)
{
    struct mint_job *m = (struct mint_job *)j;
    struct wx_http_req *req = m->req;
    if (!committed) {
        wx_p_json_error(m->p, req, WX_EC_SYSTEM, WX_API_SNS);
    } else if (m->errcode) {
        wx_p_json_error(m->p, req, m->errcode, WX_API_SNS);
    } else {
        char access[WX_CRED_MAX], refresh[WX_CRED_MAX], openid[WX_OPENID_LEN + 1];
        char unionid[WX_OPENID_LEN + 1];
        wx_cred_format(WX_CRED_ACCESS, &m->access, m->access_id, access);
        if (m->refresh)
            snprintf(refresh, sizeof refresh, "%s", m->refresh_token);
        else
            wx_cred_format(WX_CRED_REFRESH, &m->grant, m->grant_id, refresh);
        wx_p_openid(m->p, &m->app, m->user_id, openid);
        wx_p_unionid(m->p, &m->app, m->user_id, unionid);
        /* Every value is base62/base64url or a fixed word: nothing to escape, no printf. */
        struct wx_buf *o = &req->out;
        wx_buf_reset(o);
        wx_buf_puts(o, "{\"access_token\":\"");
        wx_buf_puts(o, access);
        wx_buf_puts(o, "\",\"expires_in\":" WX_STR(WX_ACCESS_TTL) ",\"refresh_token\":\"");
        wx_buf_puts(o, refresh);
        wx_buf_puts(o, "\",\"openid\":\"");
        wx_buf_puts(o, openid);
        wx_buf_puts(o, "\",\"scope\":\"");
        wx_buf_puts(o, scope_name(m->scope));
        wx_buf_puts(o, "\"");
        if (m->snapshot && !m->refresh)
            wx_buf_puts(o, ",\"is_snapshotuser\":1");
        if (unionid[0] && m->scope != WX_SCOPE_BASE && !m->refresh) {
            wx_buf_puts(o, ",\"unionid\":\"");
            wx_buf_puts(o, unionid);
            wx_buf_puts(o, "\"");
        }
        wx_buf_puts(o, "}");
        wx_http_json(req, 200);
        sodium_memzero(access, sizeof access);
        sodium_memzero(refresh, sizeof refresh);
    }
    wx_query_free(&m->q);
    sodium_memzero(m, sizeof *m);
    free(m);
    wx_p_resume(req);
}

/* Parses the request, applies faults, and hands everything else to the writer. */
static void submit_mint(struct wx_provider *p, struct wx_http_req *req, const char *route,
                        int refresh)
{
    struct wx_query q;
    if (wx_p_front(p, req, &q, route, WX_API_SNS))
        return;
    struct mint_job *m = calloc(1, sizeof(*m));
    if (!m) {
        wx_query_free(&q);
        wx_p_json_error(p, req, WX_EC_SYSTEM, WX_API_SNS);
        return;
    }
    m->p = p;
    m->req = req;
    m->q = q;
    m->refresh = refresh;
    m->now = wx_p_now(p);
    wx_p_submit(p, req, &m->job, mint_run, mint_done);
}

void wx_route_sns_token(struct wx_provider *p, struct wx_http_req *req)
{
    submit_mint(p, req, "sns/oauth2/access_token", 0);
}

void wx_route_sns_refresh(struct wx_provider *p, struct wx_http_req *req)
{
    submit_mint(p, req, "sns/oauth2/refresh_token", 1);
}

/*
 * Validates access_token + openid as /sns/userinfo and /sns/auth do. Fills the token, app and
 * user id; returns an errcode.
 */
static int check_access(struct wx_provider *p, const struct wx_query *q, struct wx_access *a,
                        struct wx_app *app)
{
    int dup = 0;
    const char *token = wx_p_param(q, "access_token", &dup);
    if (!token || !*token)
        return dup ? WX_EC_INVALID_CREDENTIAL : WX_EC_TOKEN_MISSING;
    const char *openid = wx_p_param(q, "openid", &dup);
    if (!openid || !*openid)
        return dup ? WX_EC_INVALID_OPENID : WX_EC_OPENID_MISSING;
    int64_t id;
    unsigned char mac[WX_CRED_MAC];
    if (wx_cred_parse(&p->keys, WX_CRED_ACCESS, wx_slice_cstr(token), &id, mac))
        return WX_EC_INVALID_CREDENTIAL;
    int rc = p->rd->ops->access_get(p->rd, id, a);
    if (rc == WX_ERR_NOTFOUND)
        return WX_EC_INVALID_CREDENTIAL;
    if (rc)
        return WX_EC_SYSTEM;
    if (sodium_memcmp(a->mac, mac, WX_CRED_MAC) != 0 || a->revoked)
        return WX_EC_INVALID_CREDENTIAL;
    if (a->expires <= wx_p_now(p))
        return WX_EC_TOKEN_EXPIRED;
    rc = p->rd->ops->app_by_id(p->rd, a->app_id, app);
    if (rc)
        return rc == WX_ERR_NOTFOUND ? WX_EC_INVALID_CREDENTIAL : WX_EC_SYSTEM;
    char want[WX_OPENID_LEN + 1];
    wx_p_openid(p, app, a->user_id, want);
    return strcmp(want, openid) == 0 ? 0 : WX_EC_INVALID_OPENID;
}

void wx_route_sns_auth(struct wx_provider *p, struct wx_http_req *req)
{
    struct wx_query q;
    struct wx_access a;
    struct wx_app app;
    if (wx_p_front(p, req, &q, "sns/auth", WX_API_SNS))
        return;
    int ec = check_access(p, &q, &a, &app);
    if (ec) {
        wx_p_json_error(p, req, ec, WX_API_SNS);
    } else {
        wx_buf_reset(&req->out);
        wx_buf_puts(&req->out, "{\"errcode\":0,\"errmsg\":\"ok\"}");
        wx_http_json(req, 200);
    }
    wx_query_free(&q);
}

void wx_route_sns_userinfo(struct wx_provider *p, struct wx_http_req *req)
{
    struct wx_query q;
    struct wx_access a;
    struct wx_app app;
    struct wx_user u;
    if (wx_p_front(p, req, &q, "sns/userinfo", WX_API_SNS))
        return;
    int ec = check_access(p, &q, &a, &app);
    if (!ec && a.scope == WX_SCOPE_BASE)
        ec = WX_EC_API_UNAUTHORIZED;
    if (!ec) {
        int rc = p->rd->ops->user_get(p->rd, a.user_id, &u);
        ec = rc == WX_ERR_NOTFOUND ? WX_EC_INVALID_OPENID : rc ? WX_EC_SYSTEM : 0;
    }
    if (!ec && a.snapshot)
        ec = WX_EC_API_UNAUTHORIZED; /* snapshot-page virtual users (protocol sheet §2.3) */
    if (ec) {
        wx_p_json_error(p, req, ec, WX_API_SNS);
        wx_query_free(&q);
        return;
    }
    char openid[WX_OPENID_LEN + 1], unionid[WX_OPENID_LEN + 1], avatar[WX_MAX_AVATAR + 64];
    wx_p_openid(p, &app, u.id, openid);
    wx_p_unionid(p, &app, u.id, unionid);
    wx_p_avatar_url(p, &u, avatar, sizeof avatar);
    /* Since 2021-10 WeChat sends sex 0 and empty region fields, whatever lang asks for. */
    json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:[]}", "openid", openid, "nickname",
                          u.nickname, "sex", 0, "province", "", "city", "", "country", "",
                          "headimgurl", avatar, "privilege");
    if (o && unionid[0])
        json_object_set_new(o, "unionid", json_string(unionid));
    wx_buf_reset(&req->out);
    if (!o || wx_json_append(&req->out, o)) {
        wx_p_json_error(p, req, WX_EC_SYSTEM, WX_API_SNS);
    } else {
        wx_http_json(req, 200);
    }
    json_decref(o);
    wx_query_free(&q);
}
