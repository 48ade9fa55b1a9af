/*
 * provider.c — `wxauth provider`: configuration, start-up, routing, and the helpers every route
 * shares (parameters, JSON errors, faults, rate limits, the sandbox session, identifiers).
 */
#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fiber.h"
#include "html.h"
#include "provider.h"
#include "seal.h"

static const struct wx_cfg_directive directives[] = {
    {"listen", WX_CFG_STR, "127.0.0.1:8700", 0, 0, "address:port to listen on (port 0: any free)"},
    {"db", WX_CFG_STR, "wxauth.db", 0, 0, "SQLite database file (created if missing)"},
    {"store", WX_CFG_STR, NULL, 0, 0,
     "store URL instead of db: sqlite:PATH, redis://[:PASSWORD@]HOST:PORT[/DB][?prefix=P] "
     "(several providers share one Redis), "
     "redis-sentinel://[:PASSWORD@]HOST:PORT,HOST:PORT/MASTER[?db=N&prefix=P] (the master the "
     "sentinels name, followed through a failover), or "
     "redis-cluster://[:PASSWORD@]HOST:PORT,HOST:PORT[?prefix=P] (Redis Cluster: seed nodes)"},
    {"admin-token", WX_CFG_STR, NULL, 0, 0,
     "bearer token for /admin/ (unset: the admin API is off)"},
    {"public-url", WX_CFG_STR, NULL, 0, 0,
     "base URL users reach this server at (default http://LISTEN)"},
    {"sandbox", WX_CFG_BOOL, "false", 0, 0,
     "sandbox mode: any browser may play the WeChat client (no MicroMessenger needed)"},
    {"test-clock", WX_CFG_BOOL, "false", 0, 0, "allow POST /admin/clock to move time forward"},
    {"rate-limit", WX_CFG_INT, "50000", 1, 1000000000, "calls per appid per minute before 45011"},
    {"consent-memory", WX_CFG_INT, "0", 0, 31536000,
     "seconds a user's 允许 is remembered (later snsapi_userinfo silent unless forcePopup)"},
    {"batch", WX_CFG_INT, "64", 1, 4096, "most writes committed together (group commit)"},
    {"purge-interval", WX_CFG_INT, "60", 1, 86400, "seconds between purges of expired rows"},
    {"log-level", WX_CFG_STR, "info", 0, 0, "error, warn, info or debug"},
    {"check", WX_CFG_BOOL, "false", 0, 0, "validate the configuration and database, then exit"},
    {"help", WX_CFG_BOOL, "false", 0, 0, "show this help"},
};

int64_t wx_p_now(struct wx_provider *p)
{
    return wx_clock_now(&p->clock);
}

int wx_p_redeem(struct wx_provider *p, struct wx_store *s, int64_t id,
                const unsigned char mac[WX_CRED_MAC], int64_t app_id, int64_t now,
                struct wx_cred *refresh, struct wx_cred *access, struct wx_grant *g,
                struct wx_access *a)
{
    *g = (struct wx_grant){.created = now, .expires = now + WX_REFRESH_TTL};
    *a = (struct wx_access){.expires = now + WX_ACCESS_TTL};
    wx_cred_new(&p->keys, WX_CRED_REFRESH, refresh);
    wx_cred_new(&p->keys, WX_CRED_ACCESS, access);
    memcpy(g->mac, refresh->mac, WX_CRED_MAC);
    memcpy(a->mac, access->mac, WX_CRED_MAC);
    return s->ops->code_redeem(s, id, mac, app_id, now, g, a);
}

int wx_p_params(struct wx_provider *p, struct wx_http_req *req, struct wx_query *q, int form)
{
    struct wx_slice in =
        form ? (struct wx_slice){req->body.ptr ? req->body.ptr : "", req->body.len} : req->query;
    int rc = wx_query_parse(q, in, form ? WX_MAX_BODY : WX_MAX_URL);
    if (rc == WX_OK)
        return 0;
    if (rc == WX_ERR_LIMIT)
        wx_http_text(req, form ? 413 : 414, "Request parameters exceed a limit\n");
    else
        wx_http_text(req, 400, "Malformed parameters (bad percent-encoding)\n");
    return 1;
}

void wx_p_json_error(struct wx_provider *p, struct wx_http_req *req, int errcode,
                     enum wx_api_family fam)
{
    wx_buf_reset(&req->out);
    wx_error_json(&req->out, errcode, fam, wx_p_now(p));
    req->errcode = errcode;
    wx_http_json(req, 200);
}

int wx_p_fault(struct wx_provider *p, struct wx_http_req *req, const char *route, int fam,
               int *double_redirect)
{
    int errcode = 0, delay = 0, dbl = 0;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < WX_MAX_FAULTS; i++) {
        struct wx_fault *f = &p->faults[i];
        if (f->remaining > 0 && !strcmp(f->endpoint, route)) {
            errcode = f->errcode;
            delay = f->delay_ms;
            dbl = f->double_redirect;
            f->remaining--;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (delay > 0) {
        struct timespec ts = {delay / 1000, (long)(delay % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (double_redirect)
        *double_redirect = dbl;
    if (errcode && fam >= 0)
        wx_p_json_error(p, req, errcode, (enum wx_api_family)fam);
    return errcode;
}

#define WX_RATE_STEP 16

int wx_p_rate_exceeded(struct wx_provider *p, struct wx_store *st, int64_t app_id)
{
    int64_t minute = wx_p_now(p) / 60;
    struct wx_rate *r = &p->rates[(uint64_t)app_id % WX_RATE_SLOTS];
    pthread_mutex_lock(&p->mu);
    if (r->app_id != app_id || r->minute != minute)
        *r = (struct wx_rate){app_id, minute, 0, 0, 0};
    long delta = ++r->count - r->flushed;
    int share = st->ops->counter_add && (r->count == 1 || delta >= WX_RATE_STEP);
    if (share)
        r->flushed = r->count; /* claimed: other threads do not add the same calls */
    int64_t estimate = r->shared + (r->count - r->flushed);
    pthread_mutex_unlock(&p->mu);
    if (share) {
        unsigned char key[16] = {'r', 'a', 't', 'e'};
        int64_t total = 0;
        memcpy(key + 4, &app_id, 8);
        memcpy(key + 12, &(int32_t){(int32_t)minute}, 4);
        if (st->ops->counter_add(st, key, delta, (minute + 2) * 60, &total) == WX_OK) {
            pthread_mutex_lock(&p->mu);
            if (r->app_id == app_id && r->minute == minute && total > r->shared)
                r->shared = total;
            estimate = r->shared + (r->count - r->flushed);
            pthread_mutex_unlock(&p->mu);
        } /* the store is down: count locally; the request fails on the store anyway */
    }
    return estimate > p->rate_limit; /* without a shared counter: this node's count */
}

/* Sealed sandbox session: user id and expiry. */
struct session {
    int64_t user_id;
    int64_t expires;
};

int64_t wx_p_session_user(struct wx_provider *p, struct wx_http_req *req)
{
    const char *c = wx_http_cookie(req, "wxsb");
    struct session s;
    size_t n = 0;
    if (!c || wx_unseal(p->keys.seal, "session", wx_slice_cstr(c), &s, sizeof s, &n) ||
        n != sizeof s || s.expires <= wx_p_now(p))
        return 0;
    struct wx_user u;
    return p->rd->ops->user_get(p->rd, s.user_id, &u) == WX_OK ? s.user_id : 0;
}

int wx_p_set_session(struct wx_provider *p, struct wx_http_req *req, int64_t user_id)
{
    struct session s = {user_id, wx_p_now(p) + WX_SESSION_TTL};
    struct wx_buf b;
    wx_buf_init(&b, 2048);
    int rc = wx_buf_puts(&b, "wxsb=");
    if (user_id)
        rc = rc ? rc : wx_seal(p->keys.seal, "session", &s, sizeof s, &b);
    rc = rc ? rc
            : wx_buf_printf(&b, "; Path=/; HttpOnly; SameSite=Lax%s%s",
                            p->secure_cookies ? "; Secure" : "", user_id ? "" : "; Max-Age=0");
    if (rc == WX_OK)
        rc = wx_http_set_header(req, "Set-Cookie", b.ptr);
    wx_buf_free(&b);
    return rc;
}

void wx_p_openid(struct wx_provider *p, const struct wx_app *app, int64_t user_id,
                 char out[WX_OPENID_LEN + 1])
{
    wx_ident_make(p->keys.openid, app->appid, user_id, out);
}

void wx_p_unionid(struct wx_provider *p, const struct wx_app *app, int64_t user_id,
                  char out[WX_OPENID_LEN + 1])
{
    out[0] = '\0';
    if (app->open_account[0])
        wx_ident_make(p->keys.unionid, app->open_account, user_id, out);
}

void wx_p_avatar_url(struct wx_provider *p, const struct wx_user *u, char *out, size_t outsz)
{
    if (u->avatar[0])
        snprintf(out, outsz, "%s", u->avatar);
    else
        snprintf(out, outsz, "%s/sandbox/avatar/%lld/132", p->public_url, (long long)u->id);
}

/* ---- routing ---- */

struct route {
    const char *method; /* NULL: any */
    const char *path;
    int prefix;
    const char *label;
    void (*fn)(struct wx_provider *p, struct wx_http_req *req);
};

static void route_healthz(struct wx_provider *p, struct wx_http_req *req)
{
    if (p->rd->ops->ping(p->rd) == WX_OK)
        wx_http_text(req, 200, "ok\n");
    else
        wx_http_text(req, 503, "store unavailable\n");
}

static void route_metrics(struct wx_provider *p, struct wx_http_req *req)
{
    wx_buf_reset(&req->out);
    wx_metrics_render(&p->metrics, "wxauth_provider", &req->out);
    uint64_t batches = 0, jobs = 0;
    wx_writer_stats(p->writer, &batches, &jobs);
    wx_buf_printf(&req->out,
                  "# HELP wxauth_provider_commits_total Group commits (one fsync each).\n"
                  "# TYPE wxauth_provider_commits_total counter\n"
                  "wxauth_provider_commits_total %llu\n"
                  "# HELP wxauth_provider_committed_writes_total Writes in those commits.\n"
                  "# TYPE wxauth_provider_committed_writes_total counter\n"
                  "wxauth_provider_committed_writes_total %llu\n",
                  (unsigned long long)batches, (unsigned long long)jobs);
    req->status = 200;
    req->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static void route_css(struct wx_provider *p, struct wx_http_req *req)
{
    wx_page_css(req);
}

static void route_index(struct wx_provider *p, struct wx_http_req *req)
{
    wx_http_redirect(req, 302, "/sandbox/home");
}

/*
 * The HTTP thread reads through one open read transaction, reused from request to request
 * while it is current: until the writer commits (its commit counter moves) and at most
 * WX_SNAPSHOT_NS after it began, so a change from another process (the CLI) is seen within
 * that bound — the CLI waits longer than that before it returns. Opening a read transaction
 * costs SQLite a lock round trip (two fcntl calls); most requests now pay none.
 */
static void read_snapshot(struct wx_provider *p)
{
    uint64_t commits = 0, jobs = 0;
    int64_t now = wx_mono_ns();
    wx_writer_stats(p->writer, &commits, &jobs);
    /* Redis has no snapshot to move past: its own writes are seen at once (store_redis.h) */
    int moved = p->rd->ops->atomic_batches && commits != p->snap_commits;
    if (p->snap_open && (moved || now - p->snap_ns > WX_SNAPSHOT_NS)) {
        p->rd->ops->read_end(p->rd);
        p->snap_open = 0;
    }
    if (!p->snap_open) {
        p->snap_commits = commits;
        p->snap_ns = now;
        p->snap_open = p->rd->ops->read_begin(p->rd) == WX_OK;
    }
}

static const struct route routes[] = {
    {"GET", "/connect/oauth2/authorize", 0, "authorize", wx_route_authorize},
    {"POST", "/connect/oauth2/authorize/confirm", 0, "authorize/confirm", wx_route_consent},
    {"GET", "/connect/qrconnect", 0, "qrconnect", wx_route_qrconnect},
    {"GET", "/connect/qrconnect/scan", 0, "qrconnect/scan", wx_route_qrconnect_scan},
    {"POST", "/connect/qrconnect/confirm", 0, "qrconnect/confirm", wx_route_consent},
    {"GET", "/sns/oauth2/access_token", 0, "sns/oauth2/access_token", wx_route_sns_token},
    {"GET", "/sns/oauth2/refresh_token", 0, "sns/oauth2/refresh_token", wx_route_sns_refresh},
    {"GET", "/sns/userinfo", 0, "sns/userinfo", wx_route_sns_userinfo},
    {"GET", "/sns/auth", 0, "sns/auth", wx_route_sns_auth},
    {"GET", "/cgi-bin/token", 0, "cgi-bin/token", wx_route_cgi_token},
    {"GET", "/cgi-bin/user/info", 0, "cgi-bin/user/info", wx_route_cgi_userinfo},
    {NULL, "/sandbox/avatar/", 1, "sandbox/avatar", wx_route_avatar},
    {NULL, "/sandbox/", 1, "sandbox", wx_route_sandbox},
    {NULL, "/admin/", 1, "admin", wx_route_admin},
    {"GET", "/healthz", 0, "healthz", route_healthz},
    {"GET", "/metrics", 0, "metrics", route_metrics},
    {"GET", "/static/wxauth.css", 0, "static", route_css},
    {"GET", "/", 0, "index", route_index},
};

static void handle(struct wx_http_req *req, void *ud)
{
    struct wx_provider *p = ud;
    int path_match = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const struct route *r = &routes[i];
        size_t n = strlen(r->path);
        int hit = r->prefix ? req->path.len >= n && !memcmp(req->path.ptr, r->path, n)
                            : wx_slice_eq(req->path, r->path);
        if (!hit)
            continue;
        path_match = 1;
        if (r->method && strcmp(r->method, req->method) != 0 &&
            !(!strcmp(r->method, "GET") && !strcmp(req->method, "HEAD")))
            continue;
        req->route = r->label;
        read_snapshot(p);
        r->fn(p, req);
        return;
    }
    req->route = NULL;
    if (path_match) {
        wx_http_text(req, 405, "Method Not Allowed\n");
    } else if (req->path.len > 5 &&
               (!memcmp(req->path.ptr, "/sns/", 5) || !memcmp(req->path.ptr, "/cgi-bin/", 9))) {
        /* WeChat answers unknown API paths with 40066 invalid url. */
        wx_p_json_error(p, req, WX_EC_INVALID_URL,
                        req->path.ptr[1] == 's' ? WX_API_SNS : WX_API_CGI);
    } else {
        wx_page_error(req, 404, 0, "页面不存在", "Page not found");
    }
}

static void on_done(struct wx_http_req *req, void *ud)
{
    struct wx_provider *p = ud;
    wx_http_record(req, &p->log, &p->metrics);
}

void wx_p_submit(struct wx_provider *p, struct wx_http_req *req, struct wx_job *job,
                 int (*run)(struct wx_job *, struct wx_store *), void (*done)(struct wx_job *, int))
{
    job->run = run;
    job->done = done;
    if (p->writes_here && wx_fiber_self()) {
        /* Redis: no transaction to group into; its fsync is shared by what arrives together */
        wx_writer_run_here(p->writer, p->rd, job);
        return;
    }
    wx_http_suspend(req);
    wx_writer_submit(p->writer, job);
}

static void hold_wakeups(void *http)
{
    wx_http_hold_wakeups(http);
}

static void release_wakeups(void *http)
{
    wx_http_release_wakeups(http);
}

void wx_p_resume(struct wx_http_req *req)
{
    wx_http_resume(req);
}

static void log_stderr(void *ud, enum wx_log_level level, const char *line)
{
    char out[1200];
    wx_log_stamp(out, sizeof out, "", line);
    fprintf(stderr, "%s\n", out);
}

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    stop_flag = 1;
}

static void usage(const struct wx_cfg *cfg)
{
    struct wx_buf b;
    wx_buf_init(&b, 65536);
    wx_cfg_help(cfg, &b);
    printf("Usage: wxauth provider [OPTIONS]\n\n"
           "A WeChat-compatible web-authorization server: the same paths, parameters, JSON,\n"
           "errcodes and lifetimes as open.weixin.qq.com and api.weixin.qq.com, with test users,\n"
           "a test clock and fault injection. Point an app's two base URLs at it.\n\n"
           "Options (also WXAUTH_<NAME> variables and 'name = value' lines in --config FILE):\n"
           "  %-26s %s\n%s\n"
           "Example:\n"
           "  wxauth app add --db dev.db --name Demo --domain localhost:8080\n"
           "  wxauth user add --db dev.db --nickname 小明\n"
           "  wxauth provider --db dev.db --listen 127.0.0.1:8700 --sandbox\n",
           "--config FILE", "read settings from FILE", b.ptr ? b.ptr : "");
    wx_buf_free(&b);
}

static int parse_listen(const char *listen, char *host, size_t hostsz, int *port)
{
    const char *c = strrchr(listen, ':');
    if (!c || (size_t)(c - listen) >= hostsz)
        return WX_ERR_INVALID;
    memcpy(host, listen, (size_t)(c - listen));
    host[c - listen] = '\0';
    char *end = NULL;
    long v = strtol(c + 1, &end, 10);
    if (!c[1] || *end || v < 0 || v > 65535)
        return WX_ERR_INVALID;
    *port = (int)v;
    return WX_OK;
}

#define WX_PURGE_GRACE 86400 /* seconds an expired row is kept before it is purged */

struct purge_job {
    struct wx_job job;
    struct wx_provider *p;
    int64_t deleted;
    _Atomic int busy;
};

static int purge_run(struct wx_job *j, struct wx_store *s)
{
    struct purge_job *pj = (struct purge_job *)j;
    /*
     * Keep expired rows a while: an expired token or refresh_token must keep answering
     * 42001 / 42002 (SECURITY.md §2), not 40001 / 40030 as a purged (unknown) one would.
     */
    return s->ops->purge(s, wx_p_now(pj->p) - WX_PURGE_GRACE, 20000, &pj->deleted) == WX_OK ? 0
                                                                                            : -1;
}

static void purge_done(struct wx_job *j, int committed)
{
    struct purge_job *pj = (struct purge_job *)j;
    if (committed && pj->deleted)
        wx_logf(&pj->p->log, WX_LOG_DEBUG, "level=debug msg=\"purged %lld expired rows\"",
                (long long)pj->deleted);
    atomic_store(&pj->busy, 0);
}

static int setup(struct wx_provider *p, char *err, size_t errsz)
{
    const char *lvl = wx_cfg_str(&p->cfg, "log-level");
    p->log = (struct wx_log){log_stderr, NULL, WX_LOG_INFO};
    if (!strcmp(lvl, "error"))
        p->log.level = WX_LOG_ERROR;
    else if (!strcmp(lvl, "warn"))
        p->log.level = WX_LOG_WARN;
    else if (!strcmp(lvl, "debug"))
        p->log.level = WX_LOG_DEBUG;
    else if (strcmp(lvl, "info") != 0) {
        snprintf(err, errsz, "log-level: '%s' is not error, warn, info or debug", lvl);
        return WX_ERR_INVALID;
    }
    wx_store_set_log(&p->log); /* a store's failures, with their reasons */
    p->sandbox = wx_cfg_bool(&p->cfg, "sandbox");
    p->test_clock = wx_cfg_bool(&p->cfg, "test-clock");
    p->rate_limit = (long)wx_cfg_int(&p->cfg, "rate-limit");
    p->consent_memory = (long)wx_cfg_int(&p->cfg, "consent-memory");
    p->admin_token = wx_cfg_str(&p->cfg, "admin-token");
    if (p->admin_token && strlen(p->admin_token) < 16) {
        snprintf(err, errsz, "admin-token: use at least 16 characters");
        return WX_ERR_INVALID;
    }
    return WX_OK;
}

/*
 * The writer: one thread and group commit on SQLite; on a store without atomic batches (Redis)
 * WX_REDIS_LANES threads, so that that many writes are in flight, all on the one pipelined
 * connection (store share op): their commands share round trips, and Redis persists them
 * together (one fsync for all, with appendfsync always).
 */
#define WX_REDIS_LANES 16

static int start_writer(struct wx_provider *p, const char *db, struct wx_store *wr, char *err,
                        size_t errsz)
{
    int batch = (int)wx_cfg_int(&p->cfg, "batch");
    err[0] = '\0';
    if (wr->ops->atomic_batches)
        return wx_writer_start(&p->writer, wr, batch);
    struct wx_store *lanes[WX_REDIS_LANES] = {wr};
    int n = 1, rc = WX_OK;
    while (n < WX_REDIS_LANES && (rc = wx_store_open(&lanes[n], db, err, errsz)) == WX_OK)
        n++;
    for (int i = 0; rc == WX_OK && i < n; i++)
        if (lanes[i]->ops->share && (rc = lanes[i]->ops->share(lanes[i])) != WX_OK)
            snprintf(err, errsz, "cannot start the shared Redis connection");
    if (rc == WX_OK)
        rc = wx_writer_start_lanes(&p->writer, lanes, n, batch);
    for (int i = 1; rc != WX_OK && i < n; i++)
        lanes[i]->ops->close(lanes[i]); /* lanes[0] is wr: the caller closes it */
    if (rc != WX_OK && !err[0])
        snprintf(err, errsz, "cannot start the writer");
    return rc;
}

int wx_provider_main(int argc, char **argv)
{
    static struct wx_provider prov;
    struct wx_provider *p = &prov;
    char err[512], host[64];
    int npos = 0, port = 0, rc = 1;
    struct wx_store *wr = NULL;
    if (wx_init() || wx_cfg_init(&p->cfg, directives, sizeof directives / sizeof directives[0])) {
        fprintf(stderr, "wxauth provider: initialisation failed\n");
        return 1;
    }
    if (wx_cfg_load_all(&p->cfg, argc, argv, 1, &npos, err, sizeof err)) {
        fprintf(stderr, "wxauth provider: %s\n", err);
        return 2;
    }
    if (wx_cfg_bool(&p->cfg, "help")) {
        usage(&p->cfg);
        return 0;
    }
    if (npos > 0) {
        fprintf(stderr, "wxauth provider: unexpected argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    if (setup(p, err, sizeof err) ||
        parse_listen(wx_cfg_str(&p->cfg, "listen"), host, sizeof host, &port)) {
        if (!err[0])
            snprintf(err, sizeof err, "listen: '%s' is not ADDRESS:PORT",
                     wx_cfg_str(&p->cfg, "listen"));
        fprintf(stderr, "wxauth provider: %s\n", err);
        return 2;
    }
    const char *db = wx_cfg_str(&p->cfg, "store");
    if (!db || !*db)
        db = wx_cfg_str(&p->cfg, "db");
    if (wx_store_open(&p->rd, db, err, sizeof err) || wx_store_open(&wr, db, err, sizeof err) ||
        wx_op_keys(p->rd, &p->keys)) {
        fprintf(stderr, "wxauth provider: %s\n", err[0] ? err : "cannot read the master key");
        goto done;
    }
    if (wx_cfg_bool(&p->cfg, "check")) {
        printf("configuration ok; store %s ok\n", p->rd->ops->name);
        rc = 0;
        goto done;
    }
    pthread_mutex_init(&p->mu, NULL);
    wx_metrics_init(&p->metrics);
    if (start_writer(p, db, wr, err, sizeof err)) {
        fprintf(stderr, "wxauth provider: %s\n", err);
        goto done;
    }
    wr = NULL;
    struct wx_http_config hc = {host, port, handle, on_done, p, &p->log, 0, 30, 0};
    if (!p->rd->ops->atomic_batches && p->rd->ops->share) { /* Redis: see provider.h */
        if (p->rd->ops->share(p->rd) != WX_OK) {
            fprintf(stderr, "wxauth provider: cannot start the shared Redis connection\n");
            goto done;
        }
        hc.fibers = 1;
        p->writes_here = 1;
    }
    if (wx_http_start(&p->http, &hc, err, sizeof err)) {
        fprintf(stderr, "wxauth provider: %s\n", err);
        goto done;
    }
    wx_writer_set_done_hooks(p->writer, hold_wakeups, release_wakeups, p->http);
    static char public_url[512];
    const char *pub = wx_cfg_str(&p->cfg, "public-url");
    if (pub && *pub)
        snprintf(public_url, sizeof public_url, "%s", pub);
    else
        snprintf(public_url, sizeof public_url, "http://%s:%d", host, wx_http_port(p->http));
    size_t pl = strlen(public_url);
    while (pl && public_url[pl - 1] == '/')
        public_url[--pl] = '\0';
    p->public_url = public_url;
    p->secure_cookies = !strncmp(public_url, "https:", 6);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    /* The port line is what scripts wait for. */
    printf("wxauth provider listening on http://%s:%d (public %s)%s%s\n", host,
           wx_http_port(p->http), public_url, p->sandbox ? " sandbox" : "",
           p->test_clock ? " test-clock" : "");
    fflush(stdout);
    static struct purge_job pj;
    pj.p = p;
    pj.job.run = purge_run;
    pj.job.done = purge_done;
    long interval = (long)wx_cfg_int(&p->cfg, "purge-interval"), ticks = 0;
    while (!stop_flag) {
        usleep(100000);
        if (++ticks % (interval * 10) == 0 && !atomic_exchange(&pj.busy, 1))
            wx_writer_submit(p->writer, &pj.job);
    }
    wx_logf(&p->log, WX_LOG_INFO, "level=info msg=\"shutting down\"");
    rc = 0;
done:
    wx_writer_stop(p->writer); /* answers what is queued; later writes fail fast */
    wx_http_stop(p->http);
    wx_writer_free(p->writer);
    if (wr)
        wr->ops->close(wr);
    if (p->rd)
        p->rd->ops->close(p->rd);
    sodium_memzero(&p->keys, sizeof p->keys);
    wx_cfg_free(&p->cfg);
    return rc;
}
