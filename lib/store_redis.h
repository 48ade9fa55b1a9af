/*
 * store_redis.h — private to the Redis store: what store_redis.c (the key layout, the scripts,
 * the connection, credential, nonce and kv operations, the ops table) and
 * store_redis_registry.c (apps, users, follows, consents, basic tokens) share. The key layout
 * and the scripts are described at the top of store_redis.c.
 */
#ifndef WX_STORE_REDIS_H
#define WX_STORE_REDIS_H

#include <sodium.h>
#include <stdint.h>
#include <time.h>

#include "redis_conn.h"
#include "store.h"

#define RD_GRACE       86400       /* seconds a credential or nonce outlives its expiry */
#define RD_MAX_TIME    (1LL << 40) /* expiry times are clamped here (year 36812) */
#define RD_TRIES       8           /* fresh random ids tried before giving up */
#define RD_BATCH       128         /* codes created per round trip (code_insert of many) */
#define RD_FAMILY_MASK (~(uint64_t)0xffffffffu)
#define RD_ID_MASK     ((1ULL << 62) - 1)
#define RD_FIRST       (1LL << 62) /* the first access token of grant X is X | RD_FIRST */

/* The Lua scripts (the table lua[] in store_redis.c), run with wx_rc_eval*. */
enum { L_NEW, L_REDEEM, L_REG_NEW, L_REG_SET, L_APP_DEL, L_BASIC_NEW, L_COUNT };

/*
 * Apps read by this connection, reused until the next read_begin (and at most RD_APP_FRESH_NS):
 * every token check needs its app and its generation, and apps change only by admin calls. So
 * a group of reads sees the apps as they were when it began, as a SQLite read transaction does
 * (a provider begins one at most every 10 ms, WX_SNAPSHOT_NS). This connection's own changes
 * make the copies stale at once; writes that record a generation (a new grant) read it fresh;
 * and a cached app answers only while Redis is reachable. Only a store on the shared
 * connection (the servers' request path: the share op; on a cluster, each node's) caches; one on
 * its own connection (the CLI, tools) reads every time.
 *
 * A stale copy stays as a hint of which id its appid has (appids never change: a deleted app
 * reads as not found, and then the appid index is asked), and while one fiber reads an app the
 * others on its thread that need it wait for that read (bounded by the store's timeout, as the
 * read is), then look again (one read from before a read_begin may be followed by one more):
 * the requests in flight when the copy goes stale (64 at a time under load) cost one or two
 * HMGETs, not an HMGET each (0.45 per exchange, each a round trip before the redeem script's).
 */
#define RD_APP_CACHE    64
#define RD_APP_FRESH_NS 10000000LL

struct rd_wait; /* a fiber waiting for another's read of the same app */

struct rd_app {
    struct wx_app app;
    int64_t gen;
    int64_t at_ns;  /* when read (monotonic); 0: empty */
    uint64_t epoch; /* struct rd's epoch when read: an older copy is only a hint of its appid */
    int64_t busy;   /* the id a fiber is reading into this slot now (0: none) */
    struct rd_wait *waiters; /* the fibers waiting for that read */
};

struct rd {
    struct wx_store base;
    struct wx_rc conn;                /* the connection, its URL settings and the scripts' SHAs */
    struct rd_app apps[RD_APP_CACHE]; /* by id % RD_APP_CACHE */
    uint64_t epoch;                   /* moved by read_begin and this connection's app changes */
    int shared; /* on the shared connection (one Redis's, or each cluster node's): apps cached */
};

static inline struct rd *RD(struct wx_store *s)
{
    return (struct rd *)s;
}

/* ---- times and ids ---- */

/* When Redis may forget a record: margin seconds past both its expiry and now. */
static inline int64_t expire_at(int64_t expires, int64_t margin)
{
    int64_t now = (int64_t)time(NULL), t = expires > now ? expires : now;
    return (t < RD_MAX_TIME ? t : RD_MAX_TIME) + margin;
}

/* A random id in 1 .. 2^62-1: in the family (high 30 bits) of kin when kin > 0. */
static inline int64_t fresh_id(int64_t kin)
{
    uint64_t v;
    do {
        wx_cred_random(&v, sizeof v); /* pooled: no getrandom(2) per id */
        v = kin > 0 ? ((uint64_t)kin & RD_FAMILY_MASK) | (v & 0xffffffffu) : v & RD_ID_MASK;
    } while (!v);
    return (int64_t)v;
}

/* ---- store_redis_registry.c: app generations ---- */

/*
 * The app's generation (bumped by each secret reset); WX_ERR_NOTFOUND once it is deleted.
 * fresh: read from Redis (for a write that records it), else the cache may answer.
 */
int wx_rd_app_gen(struct rd *d, int64_t app_id, int64_t *gen, int fresh);
/* Forgets the cached apps (after a change to one). */
void wx_rd_apps_changed(struct rd *d);
/* Sets *revoked when gen is older than the app's; WX_ERR_NOTFOUND once the app is deleted. */
int wx_rd_check_gen(struct rd *d, int64_t app_id, int64_t gen, int *revoked);

/* ---- store_redis_registry.c: the registry ops (their meaning: struct wx_store_ops) ---- */

/* .app_insert: the next id from {r}:seq:app; WX_ERR_CONFLICT when the appid is taken. */
int wx_rd_app_insert(struct wx_store *s, struct wx_app *app);
/* .app_by_id: one HMGET of the app's hash. */
int wx_rd_app_by_id(struct wx_store *s, int64_t id, struct wx_app *out);
/* .app_by_appid: through the {r}:appid:<appid> index. */
int wx_rd_app_by_appid(struct wx_store *s, const char *appid, struct wx_app *out);
/* .app_list: every app, in id order. */
int wx_rd_app_list(struct wx_store *s, wx_app_cb cb, void *ud);
/* .app_delete: registry records at once; its credentials become unreadable (no app gen). */
int wx_rd_app_delete(struct wx_store *s, int64_t id);
/* .app_update: the settings app_update may change; WX_ERR_NOTFOUND if no such app. */
int wx_rd_app_update(struct wx_store *s, const struct wx_app *app);
/* .app_set_secret: a new secret MAC and a new generation (revokes what was issued before). */
int wx_rd_app_set_secret(struct wx_store *s, int64_t id, const unsigned char mac[WX_CRED_MAC]);
/* .user_insert: the next id from {r}:seq:user. */
int wx_rd_user_insert(struct wx_store *s, struct wx_user *u);
/* .user_get: one HMGET of the user's hash. */
int wx_rd_user_get(struct wx_store *s, int64_t id, struct wx_user *out);
/* .user_list: every user, in id order. */
int wx_rd_user_list(struct wx_store *s, wx_user_cb cb, void *ud);
/* .user_set_snapshot: WX_ERR_NOTFOUND if no such user. */
int wx_rd_user_set_snapshot(struct wx_store *s, int64_t id, int snapshot);
/* .follow_set: following again keeps the first "since". */
int wx_rd_follow_set(struct wx_store *s, int64_t user_id, int64_t app_id, int on, int64_t now);
/* .follow_get: WX_OK with *since when following, WX_ERR_NOTFOUND otherwise. */
int wx_rd_follow_get(struct wx_store *s, int64_t user_id, int64_t app_id, int64_t *since);
/* .follow_list: the apps the user follows, in id order. */
int wx_rd_follow_list(struct wx_store *s, int64_t user_id, wx_app_cb cb, void *ud);
/* .consent_set: when (user, app) last allowed snsapi_userinfo. */
int wx_rd_consent_set(struct wx_store *s, int64_t user_id, int64_t app_id, int64_t now);
/* .consent_get: WX_ERR_NOTFOUND when never allowed. */
int wx_rd_consent_get(struct wx_store *s, int64_t user_id, int64_t app_id, int64_t *at);
/* .basic_insert: a fresh random id; caps the app's previous token at now + grace. */
int wx_rd_basic_insert(struct wx_store *s, struct wx_basic *b, int64_t now, int64_t grace);
/* .basic_get: a token issued under an older app generation reads as not found. */
int wx_rd_basic_get(struct wx_store *s, int64_t id, struct wx_basic *b);
int wx_rd_rec_put(struct wx_store *s, const char *kind, const char *name, const void *value,
                  size_t len, int create);
int wx_rd_rec_get(struct wx_store *s, const char *kind, const char *name, void *out, size_t outsz,
                  size_t *len);
int wx_rd_rec_list(struct wx_store *s, const char *kind, wx_rec_cb cb, void *ud);
int wx_rd_rec_delete(struct wx_store *s, const char *kind, const char *name);

#endif
