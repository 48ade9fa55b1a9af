/*
 * routes_admin.c — /admin/: the sandbox's control API behind "Authorization: Bearer <token>".
 * Apps, users and follows (the same operations as the CLI), the test clock, fault injection, and
 * /admin/issue, which mints codes or tokens directly for scripted tests and benchmarks.
 * Writes run on the group-commit writer like every other write.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "provider.h"

struct admin_job {
    struct wx_job job;
    struct wx_provider *p;
    struct wx_http_req *req;
    json_t *in; /* request body (owned) */
    int64_t id; /* path id: app row or user id */
    char appid[WX_APPID_LEN + 1];
    int (*op)(struct admin_job *a, struct wx_store *s);
    /* result */
    int status;
    json_t *out; /* response (owned) */
};

static void reply(struct wx_http_req *req, int status, json_t *body)
{
    wx_buf_reset(&req->out);
    if (!body || wx_json_append(&req->out, body)) {
        wx_buf_reset(&req->out);
        wx_buf_puts(&req->out, "{\"error\":\"internal error\"}");
        status = 500;
    }
    json_decref(body);
    wx_http_json(req, status);
}

static json_t *error_body(const char *msg)
{
    return json_pack("{s:s}", "error", msg);
}

static int fail(struct admin_job *a, int status, const char *msg)
{
    a->status = status;
    a->out = error_body(msg);
    return 0;
}

static int admin_run(struct wx_job *j, struct wx_store *s)
{
    struct admin_job *a = (struct admin_job *)j;
    json_decref(a->out); /* a batch retried job by job runs this again */
    a->out = NULL;
    a->status = 0;
    return a->op(a, s);
}

static void admin_done(struct wx_job *j, int committed)
{
    struct admin_job *a = (struct admin_job *)j;
    struct wx_http_req *req = a->req;
    if (!committed) {
        json_decref(a->out);
        reply(req, 503, error_body("store unavailable"));
    } else {
        reply(req, a->status ? a->status : 200, a->out);
    }
    json_decref(a->in);
    free(a);
    wx_p_resume(req);
}

static void submit(struct wx_provider *p, struct wx_http_req *req, json_t *in, int64_t id,
                   const char *appid, int (*op)(struct admin_job *, struct wx_store *))
{
    if (appid && strlen(appid) > WX_APPID_LEN) {
        /* Never cut it down to size: "<appid>x" must not reach the app <appid>. */
        json_decref(in);
        reply(req, 404, error_body("no such app"));
        return;
    }
    struct admin_job *a = calloc(1, sizeof(*a));
    if (!a) {
        json_decref(in);
        reply(req, 503, error_body("out of memory"));
        return;
    }
    a->p = p;
    a->req = req;
    a->in = in;
    a->id = id;
    if (appid)
        memcpy(a->appid, appid, strlen(appid) + 1);
    a->op = op;
    wx_p_submit(p, req, &a->job, admin_run, admin_done);
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int op_app_add(struct admin_job *a, struct wx_store *s)
{
    struct wx_app_spec spec = {0};
    json_t *d = json_object_get(a->in, "domains"), *m = json_object_get(a->in, "menu");
    spec.name = jstr(a->in, "name");
    spec.open_account = jstr(a->in, "open_account");
    spec.https_only = json_is_true(json_object_get(a->in, "https_only"));
    const char *kind = jstr(a->in, "kind");
    spec.kind = kind && !strcmp(kind, "website") ? WX_APP_WEBSITE : WX_APP_OA;
    if (!json_is_array(d) || json_array_size(d) > WX_MAX_DOMAINS)
        return fail(a, 400, "domains: an array of 1 or 2 host names");
    for (size_t i = 0; i < json_array_size(d); i++)
        if (!(spec.domains[spec.ndomains++] = json_string_value(json_array_get(d, i))))
            return fail(a, 400, "domains: strings only");
    if (m && (!json_is_array(m) || json_array_size(m) > 3))
        return fail(a, 400, "menu: an array of at most 3 \"LABEL=URL\" strings");
    for (size_t i = 0; m && i < json_array_size(m); i++)
        if (!(spec.menu[spec.nmenu++] = json_string_value(json_array_get(m, i))))
            return fail(a, 400, "menu: strings only");
    struct wx_app app;
    char secret[WX_SECRET_LEN + 1], err[256];
    int rc = wx_op_app_create(s, &a->p->keys, &spec, wx_p_now(a->p), &app, secret, err, sizeof err);
    if (rc == WX_ERR_INVALID)
        return fail(a, 400, err);
    if (rc)
        return -1;
    a->status = 201;
    a->out = wx_op_app_json(&app, secret);
    sodium_memzero(secret, sizeof secret);
    return 0;
}

static int op_app_rm(struct admin_job *a, struct wx_store *s)
{
    struct wx_app app;
    int rc = s->ops->app_by_appid(s, a->appid, &app);
    if (rc == WX_ERR_NOTFOUND)
        return fail(a, 404, "no such app");
    if (rc || s->ops->app_delete(s, app.id))
        return -1;
    a->out = json_pack("{s:s}", "deleted", app.appid);
    return 0;
}

static int op_app_reset(struct admin_job *a, struct wx_store *s)
{
    struct wx_app app;
    char secret[WX_SECRET_LEN + 1];
    int rc = s->ops->app_by_appid(s, a->appid, &app);
    if (rc == WX_ERR_NOTFOUND)
        return fail(a, 404, "no such app");
    if (rc || wx_op_app_reset_secret(s, &a->p->keys, &app, secret))
        return -1;
    a->out = wx_op_app_json(&app, secret);
    sodium_memzero(secret, sizeof secret);
    return 0;
}

static int op_user_add(struct admin_job *a, struct wx_store *s)
{
    struct wx_user u;
    char err[256];
    json_t *sex = json_object_get(a->in, "sex");
    int rc = wx_op_user_create(s, jstr(a->in, "nickname"), jstr(a->in, "avatar"),
                               json_is_integer(sex) ? (int)json_integer_value(sex) : 0,
                               json_is_true(json_object_get(a->in, "is_snapshotuser")),
                               wx_p_now(a->p), &u, err, sizeof err);
    if (rc == WX_ERR_INVALID)
        return fail(a, 400, err);
    if (rc)
        return -1;
    a->status = 201;
    a->out = wx_op_user_json(&u);
    return 0;
}

static int op_user_follow(struct admin_job *a, struct wx_store *s)
{
    struct wx_user u;
    struct wx_app app;
    const char *appid = jstr(a->in, "appid");
    json_t *f = json_object_get(a->in, "follow");
    int on = f ? json_is_true(f) : 1;
    int rc = s->ops->user_get(s, a->id, &u);
    if (rc == WX_ERR_NOTFOUND)
        return fail(a, 404, "no such user");
    if (!appid)
        return fail(a, 400, "appid: required");
    if (!rc)
        rc = s->ops->app_by_appid(s, appid, &app);
    if (rc == WX_ERR_NOTFOUND)
        return fail(a, 404, "no such app");
    if (rc || s->ops->follow_set(s, u.id, app.id, on, wx_p_now(a->p)))
        return -1;
    a->out = json_pack("{s:I, s:s, s:b}", "user", (json_int_t)u.id, "appid", appid, "follow", on);
    return 0;
}

static int op_user_snapshot(struct admin_job *a, struct wx_store *s)
{
    int on = json_is_true(json_object_get(a->in, "is_snapshotuser"));
    int rc = s->ops->user_set_snapshot(s, a->id, on);
    if (rc == WX_ERR_NOTFOUND)
        return fail(a, 404, "no such user");
    if (rc)
        return -1;
    a->out = json_pack("{s:I, s:b}", "id", (json_int_t)a->id, "is_snapshotuser", on);
    return 0;
}

/* Codes minted per store call by /admin/issue (on Redis, RD_BATCH share a round trip). */
#define ISSUE_CHUNK 1024

static int issue_code(const struct wx_code *code, const struct wx_cred *c, json_t *list)
{
    char s1[WX_CRED_MAX];
    wx_cred_format(WX_CRED_CODE, c, code->id, s1);
    return json_array_append_new(list, json_string(s1)) ? WX_ERR_NOMEM : WX_OK;
}

/* Redeems the fresh code at now into a grant and its first access token, as an exchange does. */
static int issue_token(struct admin_job *a, struct wx_store *s, const struct wx_code *code,
                       const struct wx_cred *c, int64_t now, json_t *list)
{
    struct wx_cred c1, c2;
    char s1[WX_CRED_MAX], s2[WX_CRED_MAX];
    struct wx_grant g;
    struct wx_access ac;
    int rc = wx_p_redeem(a->p, s, code->id, c->mac, code->app_id, now, &c2, &c1, &g, &ac);
    if (rc)
        return rc;
    wx_cred_format(WX_CRED_ACCESS, &c1, ac.id, s1);
    wx_cred_format(WX_CRED_REFRESH, &c2, g.id, s2);
    return json_array_append_new(list,
                                 json_pack("{s:s, s:s}", "access_token", s1, "refresh_token", s2))
               ? WX_ERR_NOMEM
               : WX_OK;
}

/* Mints count codes, or count (access, refresh) pairs, for an (app, user, scope). */
static int op_issue(struct admin_job *a, struct wx_store *s)
{
    struct wx_app app;
    struct wx_user u;
    const char *appid = jstr(a->in, "appid"), *kind = jstr(a->in, "kind");
    const char *scope_s = jstr(a->in, "scope");
    json_t *cnt = json_object_get(a->in, "count"), *uj = json_object_get(a->in, "user");
    long long count = cnt ? (json_is_integer(cnt) ? json_integer_value(cnt) : -1) : 1;
    int64_t uid = json_is_integer(uj)  ? json_integer_value(uj)
                  : json_is_string(uj) ? strtoll(json_string_value(uj), NULL, 10)
                                       : 0;
    int scope = scope_s && !strcmp(scope_s, "snsapi_userinfo") ? WX_SCOPE_USERINFO : WX_SCOPE_BASE;
    int tokens = kind && !strcmp(kind, "token");
    int64_t now = wx_p_now(a->p);
    if (!kind || (!tokens && strcmp(kind, "code") != 0))
        return fail(a, 400, "kind: \"code\" or \"token\"");
    if (count < 1 || count > WX_MAX_ISSUE)
        return fail(a, 400, "count: 1 to 100000");
    if (scope_s && scope == WX_SCOPE_BASE && strcmp(scope_s, "snsapi_base") != 0)
        return fail(a, 400, "scope: snsapi_base or snsapi_userinfo");
    if (!appid || s->ops->app_by_appid(s, appid, &app))
        return fail(a, 404, "no such app");
    if (uid <= 0 || s->ops->user_get(s, uid, &u))
        return fail(a, 404, "no such user");
    char openid[WX_OPENID_LEN + 1];
    wx_p_openid(a->p, &app, uid, openid);
    json_t *list = json_array();
    a->out = json_pack("{s:s, s:o}", "openid", openid, tokens ? "tokens" : "codes", list);
    struct wx_code *code = calloc(ISSUE_CHUNK, sizeof *code);
    struct wx_cred *cred = calloc(ISSUE_CHUNK, sizeof *cred);
    int rc = code && cred ? WX_OK : WX_ERR_NOMEM;
    for (long long at = 0; rc == WX_OK && at < count; at += ISSUE_CHUNK) {
        size_t m = count - at < ISSUE_CHUNK ? (size_t)(count - at) : ISSUE_CHUNK;
        for (size_t i = 0; i < m; i++) {
            wx_cred_new(&a->p->keys, WX_CRED_CODE, &cred[i]);
            code[i] = (struct wx_code){.app_id = app.id,
                                       .user_id = uid,
                                       .scope = scope,
                                       .snapshot = u.snapshot,
                                       .expires = now + WX_CODE_TTL};
            memcpy(code[i].mac, cred[i].mac, WX_CRED_MAC);
        }
        if ((rc = s->ops->code_insert(s, code, m)))
            break;
        for (size_t i = 0; rc == WX_OK && i < m; i++)
            rc = tokens ? issue_token(a, s, &code[i], &cred[i], now, list)
                        : issue_code(&code[i], &cred[i], list);
    }
    free(code);
    free(cred);
    return rc ? -1 : 0;
}

struct collect {
    json_t *arr;
};

static void collect_app(void *ud, const struct wx_app *a)
{
    json_array_append_new(((struct collect *)ud)->arr, wx_op_app_json(a, NULL));
}

static void collect_user(void *ud, const struct wx_user *u)
{
    json_array_append_new(((struct collect *)ud)->arr, wx_op_user_json(u));
}

static int authorized(struct wx_provider *p, struct wx_http_req *req)
{
    const char *h = wx_http_header(req, "Authorization");
    if (!p->admin_token || !h || strncmp(h, "Bearer ", 7) != 0)
        return 0;
    unsigned char a[32], b[32];
    crypto_generichash(a, 32, (const unsigned char *)h + 7, strlen(h + 7), NULL, 0);
    crypto_generichash(b, 32, (const unsigned char *)p->admin_token, strlen(p->admin_token), NULL,
                       0);
    return sodium_memcmp(a, b, 32) == 0;
}

static void faults_get(struct wx_provider *p, struct wx_http_req *req)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < WX_MAX_FAULTS; i++)
        if (p->faults[i].remaining > 0)
            json_array_append_new(
                arr, json_pack("{s:s, s:i, s:i, s:b, s:I}", "endpoint", p->faults[i].endpoint,
                               "errcode", p->faults[i].errcode, "delay_ms", p->faults[i].delay_ms,
                               "double_redirect", p->faults[i].double_redirect, "count",
                               (json_int_t)p->faults[i].remaining));
    pthread_mutex_unlock(&p->mu);
    reply(req, 200, json_pack("{s:o}", "faults", arr));
}

static const char *const fault_routes[] = {
    "authorize", "sns/oauth2/access_token", "sns/oauth2/refresh_token", "sns/userinfo",
    "sns/auth",  "cgi-bin/token",           "cgi-bin/user/info"};

static void faults_post(struct wx_provider *p, struct wx_http_req *req, json_t *in)
{
    const char *ep = jstr(in, "endpoint");
    json_t *ec = json_object_get(in, "errcode"), *cnt = json_object_get(in, "count");
    json_t *delay = json_object_get(in, "delay_ms");
    int dbl = json_is_true(json_object_get(in, "double_redirect"));
    size_t k;
    for (k = 0; ep && k < sizeof fault_routes / sizeof fault_routes[0]; k++)
        if (!strcmp(ep, fault_routes[k]))
            break;
    long long n = json_is_integer(cnt) ? json_integer_value(cnt) : cnt ? -1 : 1;
    long long d = json_is_integer(delay) ? json_integer_value(delay) : delay ? -1 : 0;
    if (!ep || k == sizeof fault_routes / sizeof fault_routes[0]) {
        reply(req, 400,
              error_body("endpoint: authorize, sns/oauth2/access_token, "
                         "sns/oauth2/refresh_token, sns/userinfo, sns/auth, "
                         "cgi-bin/token or cgi-bin/user/info"));
    } else if ((ec && !json_is_integer(ec)) || n < 1 || n > 1000000 || d < 0 || d > 60000) {
        reply(req, 400, error_body("errcode: integer; count: 1..1000000; delay_ms: 0..60000"));
    } else if (dbl && strcmp(ep, "authorize") != 0) {
        reply(req, 400, error_body("double_redirect applies to the authorize endpoint only"));
    } else {
        int slot = -1;
        pthread_mutex_lock(&p->mu);
        for (int i = 0; i < WX_MAX_FAULTS && slot < 0; i++)
            if (p->faults[i].remaining <= 0)
                slot = i;
        if (slot >= 0) {
            struct wx_fault *f = &p->faults[slot];
            snprintf(f->endpoint, sizeof f->endpoint, "%s", ep);
            f->errcode = ec ? (int)json_integer_value(ec) : 0;
            f->delay_ms = (int)d;
            f->double_redirect = dbl;
            f->remaining = (long)n;
        }
        pthread_mutex_unlock(&p->mu);
        if (slot < 0)
            reply(req, 409, error_body("too many pending faults (16); DELETE /admin/faults"));
        else
            faults_get(p, req);
    }
}

static void clock_reply(struct wx_provider *p, struct wx_http_req *req)
{
    reply(req, 200,
          json_pack("{s:I, s:I, s:b}", "now", (json_int_t)wx_p_now(p), "offset",
                    (json_int_t)atomic_load(&p->clock.offset), "test_clock", p->test_clock));
}

/* Matches "/admin/<a>/<id>[/<b>]" and copies the id. */
static int match(struct wx_slice path, const char *a, char *id, size_t idsz, const char **rest)
{
    size_t n = strlen(a);
    if (path.len <= n || memcmp(path.ptr, a, n) != 0)
        return 0;
    const char *s = path.ptr + n, *end = path.ptr + path.len;
    const char *slash = memchr(s, '/', (size_t)(end - s));
    size_t len = (size_t)((slash ? slash : end) - s);
    if (!len || len >= idsz)
        return 0;
    memcpy(id, s, len);
    id[len] = '\0';
    *rest = slash ? slash : "";
    return 1;
}

void wx_route_admin(struct wx_provider *p, struct wx_http_req *req)
{
    if (!p->admin_token) {
        reply(req, 403, error_body("the admin API is off: start the provider with --admin-token"));
        return;
    }
    if (!authorized(p, req)) {
        wx_http_set_header(req, "WWW-Authenticate", "Bearer realm=\"wxauth\"");
        reply(req, 401, error_body("missing or wrong bearer token"));
        return;
    }
    json_t *in = NULL;
    char err[256], id[64];
    const char *rest = "", *m = req->method;
    int post = !strcmp(m, "POST"), get = !strcmp(m, "GET"), del = !strcmp(m, "DELETE");
    if (post && wx_json_parse((struct wx_slice){req->body.ptr ? req->body.ptr : "{}",
                                                req->body.len ? req->body.len : 2},
                              WX_MAX_BODY, &in, err, sizeof err)) {
        reply(req, 400, error_body(err));
        return;
    }
    if (post && !json_is_object(in)) {
        json_decref(in);
        reply(req, 400, error_body("the body must be a JSON object"));
        return;
    }
    struct collect c = {json_array()};
    struct wx_app app;
    if (wx_slice_eq(req->path, "/admin/clock") && get) {
        clock_reply(p, req);
    } else if (wx_slice_eq(req->path, "/admin/clock") && post) {
        json_t *adv = json_object_get(in, "advance");
        if (!p->test_clock)
            reply(req, 403, error_body("the test clock is off: start with --test-clock"));
        else if (!json_is_integer(adv) || json_integer_value(adv) < 0 ||
                 json_integer_value(adv) > 10LL * 366 * 86400)
            reply(req, 400, error_body("advance: whole seconds, 0 to 10 years"));
        else {
            wx_clock_advance(&p->clock, json_integer_value(adv));
            clock_reply(p, req);
        }
    } else if (wx_slice_eq(req->path, "/admin/faults") && (get || post || del)) {
        if (del) {
            pthread_mutex_lock(&p->mu);
            memset(p->faults, 0, sizeof p->faults);
            pthread_mutex_unlock(&p->mu);
        }
        if (post)
            faults_post(p, req, in);
        else
            faults_get(p, req);
    } else if (wx_slice_eq(req->path, "/admin/apps") && get) {
        if (p->rd->ops->app_list(p->rd, collect_app, &c))
            reply(req, 503, error_body("store unavailable"));
        else
            reply(req, 200, json_pack("{s:O}", "apps", c.arr));
    } else if (wx_slice_eq(req->path, "/admin/apps") && post) {
        submit(p, req, in, 0, NULL, op_app_add);
        in = NULL;
    } else if (match(req->path, "/admin/apps/", id, sizeof id, &rest)) {
        if (!*rest && get) {
            int rc = p->rd->ops->app_by_appid(p->rd, id, &app);
            reply(req,
                  rc == WX_ERR_NOTFOUND ? 404
                  : rc                  ? 503
                                        : 200,
                  rc ? error_body(rc == WX_ERR_NOTFOUND ? "no such app" : "store unavailable")
                     : wx_op_app_json(&app, NULL));
        } else if (!*rest && del) {
            submit(p, req, NULL, 0, id, op_app_rm);
        } else if (!strcmp(rest, "/reset-secret") && post) {
            submit(p, req, in, 0, id, op_app_reset);
            in = NULL;
        } else {
            reply(req, 404, error_body("no such admin route"));
        }
    } else if (wx_slice_eq(req->path, "/admin/users") && get) {
        if (p->rd->ops->user_list(p->rd, collect_user, &c))
            reply(req, 503, error_body("store unavailable"));
        else
            reply(req, 200, json_pack("{s:O}", "users", c.arr));
    } else if (wx_slice_eq(req->path, "/admin/users") && post) {
        submit(p, req, in, 0, NULL, op_user_add);
        in = NULL;
    } else if (match(req->path, "/admin/users/", id, sizeof id, &rest) && post &&
               (!strcmp(rest, "/follow") || !strcmp(rest, "/snapshot"))) {
        char *end = NULL;
        long long uid = strtoll(id, &end, 10);
        if (*end || uid <= 0)
            reply(req, 404, error_body("no such user"));
        else {
            submit(p, req, in, uid, NULL,
                   !strcmp(rest, "/follow") ? op_user_follow : op_user_snapshot);
            in = NULL;
        }
    } else if (wx_slice_eq(req->path, "/admin/issue") && post) {
        submit(p, req, in, 0, NULL, op_issue);
        in = NULL;
    } else {
        reply(req, 404, error_body("no such admin route"));
    }
    json_decref(c.arr);
    json_decref(in);
}
