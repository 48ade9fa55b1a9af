/*
 * gate_internal.h — what the gate's files share: the gate's context, the session sealed into
 * the cookie, and the helpers of session.c (sessions, the store, logins' outcomes) and pages.c
 * (HTML pages, return paths, the site's base URL). gate.c holds the routes and the program.
 */
#ifndef WX_GATE_INTERNAL_H
#define WX_GATE_INTERNAL_H

#include <arpa/inet.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <wxauth/wxauth.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "store.h"

#define GATE_COOKIE_MAX 3072 /* a sealed session cookie stays far below 4 KiB: never chunked */
#define GATE_KEYS       4    /* cookie-secret: the current key and up to 3 older ones */
#define GATE_PROXIES    16   /* trusted-proxies entries */
/* A login's outcome as the store keeps it: "S" + path + "\n" + Set-Cookie, or "E" + errcode. */
#define CODE_RESULT_MAX (GATE_COOKIE_MAX + WX_STATE_MAX_PATH + 8)

/* Session scopes: 1 snsapi_base, 2 snsapi_userinfo, 3 snsapi_login (a website app's login). */
enum { SCOPE_BASE = 1, SCOPE_USERINFO = 2, SCOPE_LOGIN = 3 };

/* wx_g_session_get's answers. */
enum { SESSION_NONE, SESSION_OK, SESSION_STORE_DOWN };

/* The session, sealed into the cookie. */
struct session {
    unsigned char sid[16];
    int64_t expires;       /* absolute end */
    int64_t seen_ms;       /* last renewal (ms): the idle lifetime counts from here */
    int64_t profile_until; /* nickname and avatar are re-read after this (userinfo scope) */
    int scope;
    char openid[WX_MAX_ID + 1];
    char unionid[WX_MAX_ID + 1];
    char nickname[WX_MAX_NICKNAME + 1];
    char avatar[WX_MAX_URLTEXT + 1];
    char refresh[WX_MAX_TOKEN + 1]; /* the web refresh token, for re-reading the profile */
    int key;                        /* index of the key that opened it (0: current) */
};

/* An app the gate logs users in with: the Official Account, or the website app (qrconnect). */
struct app_client {
    const char *appid;
    struct wx_client *client; /* NULL: not configured */
};

struct gate {
    struct wx_cfg cfg;
    struct app_client oa, web;
    struct wx_state_key keys[GATE_KEYS];    /* states: keys[0] seals */
    unsigned char seal_keys[GATE_KEYS][32]; /* sessions: [0] seals, all open */
    int nkeys;
    const char *prefix, *public_url, *cookie_name;
    char public_host[256];
    int secure, default_scope, desktop_qr;
    int64_t session_ttl, session_idle, profile_ttl;
    struct in_addr proxies[GATE_PROXIES];
    int nproxies;
    const char *allowed_hosts;
    struct wx_log log;
    struct wx_metrics metrics;
    /*
     * The store (sign-outs, redeemed codes, the refresher claim): one connection, one lock, for
     * the workers (and for everything on SQLite). On Redis the loop's handlers run on fibers
     * and use loop_store, the shared pipelined connection, without the lock (lib/fiber.h: a
     * store call parks the request, not the loop; no lock may be held across it).
     */
    pthread_mutex_t mu;
    struct wx_store *store;
    struct wx_store *loop_store;
    int memory_store;       /* neither db nor store: in memory, this process only */
    struct wx_pool *pool;   /* workers for calls to WeChat */
    struct gate_oidc *oidc; /* the OpenID Connect provider (--oidc), else NULL */
};

/* ---- gate.c ---- */

/* Suspends req and has a worker answer it with fn; 503 when every worker is taken. */
void wx_g_offload(struct gate *g, struct wx_http_req *req,
                  void (*fn)(struct gate *g, struct wx_http_req *req));

/* ---- oidc.c ---- */

/* Starts the provider: keys made or read (memory_store: refused, clients live in a store). */
int wx_g_oidc_setup(struct gate *g, int64_t token_ttl, int64_t refresh_ttl, int64_t rotate,
                    int memory_store, char *err, size_t errsz);
void wx_g_oidc_free(struct gate *g);
/* Key upkeep, once a minute (rotation, removal, other nodes' new keys). */
void wx_g_oidc_tick(struct gate *g);
/* Answers req when rest (the path after the prefix) is an OIDC endpoint: 1, else 0. */
int wx_g_oidc_handle(struct gate *g, struct wx_http_req *req, struct wx_slice rest);
/* When back is an OIDC request waiting for its login, the path that tells it the user refused
 * (into out): 1, else 0. */
int wx_g_oidc_denied_return(const struct gate *g, const char *back, char *out, size_t outsz);

/* ---- session.c ---- */

/* Wall-clock time in seconds and in milliseconds. */
int64_t wx_g_now_s(void);
int64_t wx_g_now_ms(void);

/* SCOPE_* from a scope name (anything unknown: SCOPE_BASE), and back. */
int wx_g_scope_of(const char *name);
const char *wx_g_scope_str(int scope);

/* The app whose openid the session holds. */
const struct app_client *wx_g_session_client(const struct gate *g, const struct session *s);

/* The store this thread may use now (the loop's on a fiber, else the locked one), and back. */
struct wx_store *wx_g_store_take(struct gate *g);
void wx_g_store_give(struct gate *g, struct wx_store *s);
/* 16-byte store key for (kind, id): a hash, so the store never holds a session id or a code. */
void wx_g_kv_key(char kind, const void *id, size_t len, unsigned char out[16]);
/* kv_put of the string v; kv_get into out (NUL-terminated): WX_OK, WX_ERR_NOTFOUND or an
 * error; a claim: WX_OK for the first claimant of key, WX_ERR_CONFLICT for everyone after. */
int wx_g_kv_put(struct gate *g, const unsigned char key[16], const char *v, int64_t until);
int wx_g_kv_get(struct gate *g, const unsigned char key[16], char *out, size_t outsz);
int wx_g_kv_claim(struct gate *g, const unsigned char key[16], int64_t until);

/* Pings the store this thread may use: WX_OK when it answers. */
int wx_g_store_ping(struct gate *g);
/* Ends session s for good: its id (hashed) joins the store's sign-out list. WX_OK or an error. */
int wx_g_sign_out(struct gate *g, const struct session *s);

/* Appends s, sealed with the current key, to out as "name=value; attributes". */
int wx_g_session_cookie(struct gate *g, const struct session *s, struct wx_buf *out);

/* The request's session into s: SESSION_OK, SESSION_NONE or SESSION_STORE_DOWN. */
int wx_g_session_get(struct gate *g, struct wx_http_req *req, struct session *s);

/* Re-reads s's nickname and avatar (may block: calls WeChat). 1 when s changed. */
int wx_g_refresh_profile(struct gate *g, struct session *s);

/* A callback for a state seen before gets its outcome (may block): 1 when req was answered, 0
 * when this request is the first and exchanges the code itself. back: the return path. */
int wx_g_login_replay(struct gate *g, struct wx_http_req *req, const struct wx_state *st,
                      const char *back);

/* Keeps a login's outcome (see CODE_RESULT_MAX) under its state for later callbacks. */
void wx_g_login_remember(struct gate *g, const struct wx_state *st, const char *value);

/* ---- pages.c ---- */

/* Answers req with an HTML page; rd (may be NULL) adds "try again" links, offer_base the
 * "continue with snsapi_base" one. */
void wx_g_page(struct gate *g, struct wx_http_req *req, int status, const char *title,
               const char *text, const char *rd, int offer_base);

/* Answers req (200) with a page whose body ends with form, HTML the caller built and escaped
 * (500 when form is NULL). */
void wx_g_form_page(struct gate *g, struct wx_http_req *req, const char *title, const char *text,
                    const char *form);

/* Answers req with the QR code page for base + rd, to open in WeChat. */
void wx_g_desktop_page(struct gate *g, struct wx_http_req *req, const char *base, const char *rd);

/* rd when it is a path on this site, else "/" (a static string). */
const char *wx_g_safe_rd(const char *rd);

/* The site's base URL for req: public-url, or out (filled) for a trusted proxy's allowed host. */
const char *wx_g_base_url(const struct gate *g, struct wx_http_req *req, char *out, size_t outsz);

#endif
