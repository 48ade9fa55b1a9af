/*
 * routes_cgi.c — the basic (non-web) APIs the protocol sheet contrasts with web authorization
 * (§8): /cgi-bin/token (client_credential, 7200 s, the previous token valid 5 more minutes) and
 * /cgi-bin/user/info (followers only; nickname and avatar empty since 2021-12-27).
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "provider.h"

struct basic_job {
    struct wx_job job;
    struct wx_provider *p;
    struct wx_http_req *req;
    int64_t app_id, now;
    struct wx_cred cred;
    int64_t id;
};

static int basic_run(struct wx_job *j, struct wx_store *s)
{
    struct basic_job *b = (struct basic_job *)j;
    struct wx_basic row = {0};
    wx_cred_new(&b->p->keys, WX_CRED_BASIC, &b->cred);
    memcpy(row.mac, b->cred.mac, WX_CRED_MAC);
    row.app_id = b->app_id;
    row.expires = b->now + WX_ACCESS_TTL;
    if (s->ops->basic_insert(s, &row, b->now, WX_BASIC_GRACE))
        return -1;
    b->id = row.id;
    return 0;
}

static void basic_done(struct wx_job *j, int committed)
{
    struct basic_job *b = (struct basic_job *)j;
    struct wx_http_req *req = b->req;
    if (!committed) {
        wx_p_json_error(b->p, req, WX_EC_SYSTEM, WX_API_CGI);
    } else {
        char token[WX_CRED_MAX];
        wx_cred_format(WX_CRED_BASIC, &b->cred, b->id, token);
        wx_buf_reset(&req->out);
        wx_buf_printf(&req->out, "{\"access_token\":\"%s\",\"expires_in\":%d}", token,
                      WX_ACCESS_TTL);
        wx_http_json(req, 200);
        sodium_memzero(token, sizeof token);
    }
    sodium_memzero(b, sizeof *b);
    free(b);
    wx_p_resume(req);
}

void wx_route_cgi_token(struct wx_provider *p, struct wx_http_req *req)
{
    struct wx_query q;
    struct wx_app app;
    int ec;
    if (wx_p_front(p, req, &q, "cgi-bin/token", WX_API_CGI))
        return;
    /* appid is checked before everything else (protocol sheet §8, PROBE). */
    if ((ec = wx_p_check_app(p, p->rd, &q, &app)) ||
        (ec = wx_p_check_grant_type(&q, "client_credential")) ||
        (ec = wx_p_check_secret(p, &q, &app)))
        goto fail;
    if (wx_p_rate_exceeded(p, p->rd, app.id)) {
        ec = WX_EC_MINUTE_QUOTA;
        goto fail;
    }
    struct basic_job *b = calloc(1, sizeof(*b));
    if (!b) {
        ec = WX_EC_SYSTEM;
        goto fail;
    }
    b->p = p;
    b->req = req;
    b->app_id = app.id;
    b->now = wx_p_now(p);
    wx_p_submit(p, req, &b->job, basic_run, basic_done);
    wx_query_free(&q);
    return;
fail:
    wx_p_json_error(p, req, ec, WX_API_CGI);
    wx_query_free(&q);
}

/* Validates a basic access_token; returns an errcode and fills app. */
static int check_basic(struct wx_provider *p, const struct wx_query *q, struct wx_app *app)
{
    int dup = 0;
    const char *token = wx_p_param(q, "access_token", &dup);
    if (!token || !*token)
        return dup ? WX_EC_INVALID_CREDENTIAL : WX_EC_TOKEN_MISSING;
    int64_t id;
    unsigned char mac[WX_CRED_MAC];
    struct wx_basic b;
    if (wx_cred_parse(&p->keys, WX_CRED_BASIC, wx_slice_cstr(token), &id, mac))
        return WX_EC_INVALID_CREDENTIAL;
    int rc = p->rd->ops->basic_get(p->rd, id, &b);
    if (rc)
        return rc == WX_ERR_NOTFOUND ? WX_EC_INVALID_CREDENTIAL : WX_EC_SYSTEM;
    if (sodium_memcmp(b.mac, mac, WX_CRED_MAC) != 0)
        return WX_EC_INVALID_CREDENTIAL;
    if (b.expires <= wx_p_now(p))
        return WX_EC_TOKEN_EXPIRED;
    rc = p->rd->ops->app_by_id(p->rd, b.app_id, app);
    return rc == WX_OK ? 0 : rc == WX_ERR_NOTFOUND ? WX_EC_INVALID_CREDENTIAL : WX_EC_SYSTEM;
}

void wx_route_cgi_userinfo(struct wx_provider *p, struct wx_http_req *req)
{
    struct wx_query q;
    struct wx_app app;
    struct wx_user u;
    int64_t uid = 0, since = 0;
    int ec, dup = 0;
    if (wx_p_front(p, req, &q, "cgi-bin/user/info", WX_API_CGI))
        return;
    if ((ec = check_basic(p, &q, &app)))
        goto fail;
    const char *openid = wx_p_param(&q, "openid", &dup);
    if (!openid || !*openid) {
        ec = dup ? WX_EC_INVALID_OPENID : WX_EC_OPENID_MISSING;
        goto fail;
    }
    if (wx_ident_parse(p->keys.openid, app.appid, wx_slice_cstr(openid), &uid)) {
        ec = WX_EC_INVALID_OPENID;
        goto fail;
    }
    int rc = p->rd->ops->user_get(p->rd, uid, &u);
    if (rc) {
        ec = rc == WX_ERR_NOTFOUND ? WX_EC_INVALID_OPENID : WX_EC_SYSTEM;
        goto fail;
    }
    rc = p->rd->ops->follow_get(p->rd, uid, app.id, &since);
    if (rc && rc != WX_ERR_NOTFOUND) {
        ec = WX_EC_SYSTEM;
        goto fail;
    }
    char unionid[WX_OPENID_LEN + 1];
    wx_p_unionid(p, &app, uid, unionid);
    json_t *o;
    if (rc == WX_OK)
        o = json_pack("{s:i, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:i, s:[], s:s,"
                      " s:i, s:s}",
                      "subscribe", 1, "openid", openid, "nickname", "", "sex", 0, "language",
                      "zh_CN", "city", "", "province", "", "country", "", "headimgurl", "",
                      "subscribe_time", (json_int_t)since, "remark", "", "groupid", 0, "tagid_list",
                      "subscribe_scene", "ADD_SCENE_OTHERS", "qr_scene", 0, "qr_scene_str", "");
    else
        o = json_pack("{s:i, s:s}", "subscribe", 0, "openid", openid);
    if (o && unionid[0])
        json_object_set_new(o, "unionid", json_string(unionid));
    wx_buf_reset(&req->out);
    if (!o || wx_json_append(&req->out, o))
        wx_p_json_error(p, req, WX_EC_SYSTEM, WX_API_CGI);
    else
        wx_http_json(req, 200);
    json_decref(o);
    wx_query_free(&q);
    return;
fail:
    wx_p_json_error(p, req, ec, WX_API_CGI);
    wx_query_free(&q);
}
