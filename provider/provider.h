/*
 * provider.h — the WeChat-compatible authorization server: its context, shared helpers and
 * the route handlers of each file. Everything it stores goes through lib/store.h; everything
 * it writes goes through the group-commit writer so responses leave after their commit.
 */
#ifndef WX_PROVIDER_H
#define WX_PROVIDER_H

#include <pthread.h>
#include <stdint.h>
#include <wxauth/wxauth.h>

#include "clock.h"
#include "config.h"
#include "cred.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "writer.h"

#define WX_CODE_TTL    300  /* WeChat: a code dies after 5 minutes */
#define WX_ACCESS_TTL  7200 /* expires_in of web and basic access tokens */
#define WX_XSTR(x)     #x
#define WX_STR(x)      WX_XSTR(x)   /* a numeric macro as a string literal */
#define WX_REFRESH_TTL (30 * 86400) /* refresh_token: 30 days from the first grant */
#define WX_BASIC_GRACE 300          /* the previous basic token stays valid 5 minutes */
#define WX_TICKET_TTL  600          /* a consent form must be answered within 10 minutes */
#define WX_SESSION_TTL (7 * 86400)  /* sandbox sign-in cookie */
#define WX_ENTRY_TTL   120          /* "entered from the account's menu" lasts 2 minutes */
#define WX_MAX_FAULTS  16
#define WX_MAX_ISSUE   100000 /* credentials minted by one /admin/issue call */
#define WX_RATE_SLOTS  1024
#define WX_SNAPSHOT_NS 10000000LL /* a read snapshot is reused for at most 10 ms */

/* Fault injection: the next `remaining` calls of `endpoint` answer errcode and/or wait. */
struct wx_fault {
    char endpoint[64]; /* route label, e.g. "sns/oauth2/access_token", or "authorize" */
    int errcode;       /* 0: none */
    int delay_ms;
    int double_redirect;
    long remaining;
};

struct wx_rate {
    int64_t app_id;
    int64_t minute;
    long count;     /* this node's calls this minute */
    long flushed;   /* of them, already added to the shared counter */
    int64_t shared; /* the shared counter's total when last added to */
};

struct wx_provider {
    struct wx_cfg cfg;
    /*
     * The HTTP thread's store (reads; on Redis, its writes too). On Redis it is the shared
     * pipelined connection and every handler runs on a fiber (lib/fiber.h): a store call parks
     * the request, never the loop, and the calls of parked requests share round trips.
     */
    struct wx_store *rd;
    int writes_here; /* Redis: write jobs run on the request's fiber with rd, not on a lane */
    struct wx_writer *writer;
    struct wx_keys keys;
    struct wx_clock clock;
    struct wx_metrics metrics;
    struct wx_log log;
    struct wx_http_server *http;
    int sandbox, test_clock, secure_cookies;
    long rate_limit;
    long consent_memory; /* seconds a 允许 is remembered (0: always ask) */
    const char *admin_token;
    const char *public_url;
    pthread_mutex_t mu; /* faults and rate counters */
    struct wx_fault faults[WX_MAX_FAULTS];
    struct wx_rate rates[WX_RATE_SLOTS];
    /* the HTTP thread's read snapshot (see read_snapshot in provider.c) */
    int snap_open;
    uint64_t snap_commits;
    int64_t snap_ns;
};

/* Entry point of `wxauth provider`. */
int wx_provider_main(int argc, char **argv);

/* routes: each returns after filling req (or suspending it). */
void wx_route_authorize(struct wx_provider *p, struct wx_http_req *req);
void wx_route_consent(struct wx_provider *p, struct wx_http_req *req);
void wx_route_qrconnect(struct wx_provider *p, struct wx_http_req *req);
void wx_route_qrconnect_scan(struct wx_provider *p, struct wx_http_req *req);
void wx_route_sns_token(struct wx_provider *p, struct wx_http_req *req);
void wx_route_sns_refresh(struct wx_provider *p, struct wx_http_req *req);
void wx_route_sns_userinfo(struct wx_provider *p, struct wx_http_req *req);
void wx_route_sns_auth(struct wx_provider *p, struct wx_http_req *req);
void wx_route_cgi_token(struct wx_provider *p, struct wx_http_req *req);
void wx_route_cgi_userinfo(struct wx_provider *p, struct wx_http_req *req);
void wx_route_sandbox(struct wx_provider *p, struct wx_http_req *req);
void wx_route_admin(struct wx_provider *p, struct wx_http_req *req);
void wx_route_avatar(struct wx_provider *p, struct wx_http_req *req);

/* shared helpers (provider.c) */
int64_t wx_p_now(struct wx_provider *p);
/* Parses the query (or form body); on failure answers 400/414 and returns nonzero. */
int wx_p_params(struct wx_provider *p, struct wx_http_req *req, struct wx_query *q, int form);
/* Answers a WeChat JSON error (HTTP 200, as WeChat does). */
void wx_p_json_error(struct wx_provider *p, struct wx_http_req *req, int errcode,
                     enum wx_api_family fam);
/*
 * Applies an injected fault for route (delay, double redirect, errcode). Returns the injected
 * errcode (0: none). For JSON families (fam >= 0) the errcode body is already answered;
 * for pages (fam < 0) the caller renders it.
 */
int wx_p_fault(struct wx_provider *p, struct wx_http_req *req, const char *route, int fam,
               int *double_redirect);
/* Counts one call for app; returns 1 when over the per-minute limit. */
/*
 * Counts a call of app_id against its per-minute quota: 1 when over it. On a store shared by
 * several nodes (Redis) the count is shared too, added in steps of WX_RATE_STEP calls, so the
 * quota holds across nodes within WX_RATE_STEP calls per node. st: the caller's connection.
 */
int wx_p_rate_exceeded(struct wx_provider *p, struct wx_store *st, int64_t app_id);
/*
 * Hands a write to the group-commit writer: suspends the request until done() has filled its
 * response (after the commit) and resumed it with wx_p_resume().
 */
void wx_p_submit(struct wx_provider *p, struct wx_http_req *req, struct wx_job *job,
                 int (*run)(struct wx_job *, struct wx_store *),
                 void (*done)(struct wx_job *, int));
/* Finishes a suspended request from the writer thread. */
void wx_p_resume(struct wx_http_req *req);
/* The signed-in sandbox user (sealed cookie), or 0. */
int64_t wx_p_session_user(struct wx_provider *p, struct wx_http_req *req);
int wx_p_set_session(struct wx_provider *p, struct wx_http_req *req, int64_t user_id);
/* openid / unionid of a user for an app; unionid is "" when the app has no open account. */
void wx_p_openid(struct wx_provider *p, const struct wx_app *app, int64_t user_id,
                 char out[WX_OPENID_LEN + 1]);
void wx_p_unionid(struct wx_provider *p, const struct wx_app *app, int64_t user_id,
                  char out[WX_OPENID_LEN + 1]);
void wx_p_avatar_url(struct wx_provider *p, const struct wx_user *u, char *out, size_t outsz);
/*
 * Redeems code id (MAC mac, of app app_id) at now into a grant and its first access token,
 * each with a fresh credential (refresh, access): what store code_redeem answers. g and a are
 * filled as it fills them.
 */
int wx_p_redeem(struct wx_provider *p, struct wx_store *s, int64_t id,
                const unsigned char mac[WX_CRED_MAC], int64_t app_id, int64_t now,
                struct wx_cred *refresh, struct wx_cred *access, struct wx_grant *g,
                struct wx_access *a);

/* routes_sns.c: parameter checks shared by the JSON endpoints; each returns an errcode. */
const char *wx_p_param(const struct wx_query *q, const char *name, int *dup);
int wx_p_check_app(struct wx_provider *p, struct wx_store *st, const struct wx_query *q,
                   struct wx_app *app);
int wx_p_check_secret(struct wx_provider *p, const struct wx_query *q, const struct wx_app *app);
int wx_p_check_grant_type(const struct wx_query *q, const char *want);
/* Parses the query and applies faults; returns 1 when the request is already answered. */
int wx_p_front(struct wx_provider *p, struct wx_http_req *req, struct wx_query *q,
               const char *route, enum wx_api_family fam);

/* pages.c: every HTML page goes through these. */
void wx_page_begin(struct wx_http_req *req, int status, const char *title);
void wx_page_end(struct wx_http_req *req);
/* An error page: errcode shown (0: none), message in Chinese and English. */
void wx_page_error(struct wx_http_req *req, int status, int errcode, const char *zh,
                   const char *en);
void wx_page_css(struct wx_http_req *req);
/* Appends an <img> of a generated icon (data: SVG) for a name. */
int wx_page_icon(struct wx_buf *b, const char *name, int size, const char *cls);
/* The generated avatar SVG for a user. */
int wx_page_avatar_svg(struct wx_buf *b, const char *name);

/* ops.c: operations shared by the admin API and the CLI. */
struct wx_app_spec {
    const char *name;
    const char *domains[WX_MAX_DOMAINS];
    int ndomains;
    const char *open_account;
    const char *menu[3];
    int nmenu;
    int kind;
    int https_only;
};
/* Validates spec and fills the descriptive fields of out (not appid, secret or id). */
int wx_op_app_fill(const struct wx_app_spec *spec, struct wx_app *out, char *err, size_t errsz);
/* Creates an app; secret_out receives the AppSecret (shown once). err gets a readable reason. */
int wx_op_app_create(struct wx_store *s, const struct wx_keys *k, const struct wx_app_spec *spec,
                     int64_t now, struct wx_app *out, char secret_out[WX_SECRET_LEN + 1], char *err,
                     size_t errsz);
int wx_op_app_reset_secret(struct wx_store *s, const struct wx_keys *k, struct wx_app *app,
                           char secret_out[WX_SECRET_LEN + 1]);
int wx_op_user_create(struct wx_store *s, const char *nickname, const char *avatar, int sex,
                      int snapshot, int64_t now, struct wx_user *out, char *err, size_t errsz);
/* Loads the master key and derives the keys. */
int wx_op_keys(struct wx_store *s, struct wx_keys *k);
/* JSON views shared by admin API and CLI --json. */
struct json_t;
struct json_t *wx_op_app_json(const struct wx_app *a, const char *secret);
struct json_t *wx_op_user_json(const struct wx_user *u);

#endif
