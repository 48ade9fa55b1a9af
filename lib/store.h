/*
 * store.h — the storage contract of wxauth: records and a table of operations that every
 * backend (SQLite now, Redis later) implements with the same meaning. Nothing here speaks SQL.
 *
 * Threading: one struct wx_store is one connection, used by one thread at a time. The provider
 * opens one for reads (its HTTP thread) and one for writes (the group-commit writer thread).
 * Writes happen between batch_begin and batch_commit (one transaction, one fsync).
 *
 * Errors: WX_OK, WX_ERR_NOTFOUND, WX_ERR_CONFLICT, WX_ERR_EXPIRED as documented per operation;
 * WX_ERR_STORE for any backend failure, which callers must treat as "fail closed".
 */
#ifndef WX_STORE_H
#define WX_STORE_H

#include <stdint.h>
#include <wxauth/base.h>

#include "cred.h"
#include "log.h"

/* snsapi_login: a website app's QR login (qrconnect); it carries the profile like userinfo. */
enum wx_scope { WX_SCOPE_BASE = 1, WX_SCOPE_USERINFO = 2, WX_SCOPE_LOGIN = 3 };
enum wx_app_kind { WX_APP_OA = 0, WX_APP_WEBSITE = 1 };

#define WX_APPID_LEN        18 /* "wx" + 16 hex */
#define WX_SECRET_LEN       32 /* 32 hex */
#define WX_MAX_DOMAINS_TEXT 520
#define WX_MAX_AVATAR       512
#define WX_MAX_OPEN_ACCOUNT 64
#define WX_MAX_MENU_TEXT    1600 /* up to 3 entries */

struct wx_app {
    int64_t id;
    char appid[WX_APPID_LEN + 1];
    char name[WX_MAX_APPNAME + 1];
    char domains[WX_MAX_DOMAINS_TEXT]; /* comma-separated, at most WX_MAX_DOMAINS entries */
    char open_account[WX_MAX_OPEN_ACCOUNT + 1]; /* "" when not bound */
    char menu[WX_MAX_MENU_TEXT];                /* "label=url" lines: the account's custom menu */
    int kind;
    int https_only;
    unsigned char secret_mac[WX_CRED_MAC];
    int64_t created;
};

struct wx_user {
    int64_t id;
    char nickname[WX_MAX_NICKNAME + 1];
    char avatar[WX_MAX_AVATAR + 1];
    int sex;
    int snapshot; /* is_snapshotuser */
    int64_t created;
};

struct wx_code {
    int64_t id;
    unsigned char mac[WX_CRED_MAC];
    int64_t app_id, user_id;
    int scope, snapshot;
    int64_t expires;
};

/* A grant is what one code produced: its row is the refresh token. */
struct wx_grant {
    int64_t id;
    unsigned char mac[WX_CRED_MAC];
    int64_t app_id, user_id, code_id;
    int scope, snapshot;
    int64_t created, expires;
    int revoked;
};

struct wx_access {
    int64_t id;
    unsigned char mac[WX_CRED_MAC];
    int64_t grant_id, app_id, user_id;
    int scope;
    int64_t expires;
    int revoked;  /* the token's own flag OR its grant's */
    int snapshot; /* from its grant: a snapshot-mode virtual user */
};

/* The fields an access token takes from its grant (all but id, mac, expires, revoked). */
static inline void wx_access_of_grant(struct wx_access *a, const struct wx_grant *g)
{
    a->grant_id = g->id;
    a->app_id = g->app_id;
    a->user_id = g->user_id;
    a->scope = g->scope;
    a->snapshot = g->snapshot;
}

struct wx_basic {
    int64_t id;
    unsigned char mac[WX_CRED_MAC];
    int64_t app_id, expires;
};

struct wx_store;

typedef void (*wx_app_cb)(void *ud, const struct wx_app *app);
typedef void (*wx_user_cb)(void *ud, const struct wx_user *user);
/* A named record (rec_list): its name and value, borrowed for the call. */
typedef void (*wx_rec_cb)(void *ud, const char *name, const void *value, size_t len);

/* Named records (the OpenID Connect clients and signing keys): the limits every backend keeps. */
#define WX_REC_MAX_KIND  16
#define WX_REC_MAX_NAME  64
#define WX_REC_MAX_VALUE 16384

struct wx_store_ops {
    const char *name;
    /*
     * 1: batch_rollback undoes every write since batch_begin (SQLite), so a failed batch can be
     * run again job by job. 0: every op stands alone (Redis): writes made stay made, and a job
     * must never be run twice (a second code redemption would revoke the first).
     */
    int atomic_batches;
    void (*close)(struct wx_store *s);
    int (*ping)(struct wx_store *s);

    int (*batch_begin)(struct wx_store *s);
    int (*batch_commit)(struct wx_store *s);
    void (*batch_rollback)(struct wx_store *s);
    /* Moves committed writes from the log into the database without blocking (optional). */
    int (*checkpoint)(struct wx_store *s);
    /* Groups the reads of one request (one snapshot, one lock round trip); no writes inside. */
    int (*read_begin)(struct wx_store *s);
    void (*read_end)(struct wx_store *s);

    /* 32-byte master key: created on first open, then stable. */
    int (*master_key)(struct wx_store *s, unsigned char key[WX_KEY_LEN]);

    int (*app_insert)(struct wx_store *s, struct wx_app *app); /* sets id; CONFLICT on appid */
    int (*app_by_appid)(struct wx_store *s, const char *appid, struct wx_app *out);
    int (*app_by_id)(struct wx_store *s, int64_t id, struct wx_app *out);
    int (*app_list)(struct wx_store *s, wx_app_cb cb, void *ud);
    int (*app_delete)(struct wx_store *s, int64_t id); /* with its follows, codes and tokens */
    /* Updates name, domains, open account, menu, kind and https_only of app->id. */
    int (*app_update)(struct wx_store *s, const struct wx_app *app);
    /* New secret MAC; revokes every grant and basic token of the app issued before. */
    int (*app_set_secret)(struct wx_store *s, int64_t id, const unsigned char mac[WX_CRED_MAC]);

    int (*user_insert)(struct wx_store *s, struct wx_user *user); /* sets id */
    int (*user_get)(struct wx_store *s, int64_t id, struct wx_user *out);
    int (*user_list)(struct wx_store *s, wx_user_cb cb, void *ud);
    int (*user_set_snapshot)(struct wx_store *s, int64_t id, int snapshot);
    int (*follow_set)(struct wx_store *s, int64_t user_id, int64_t app_id, int on, int64_t now);
    /* WX_OK with *since when following, WX_ERR_NOTFOUND otherwise. */
    int (*follow_get)(struct wx_store *s, int64_t user_id, int64_t app_id, int64_t *since);
    int (*follow_list)(struct wx_store *s, int64_t user_id, wx_app_cb cb, void *ud);

    /* Inserts code[0..n) and sets each id (Redis: many per round trip). On an error some of
     * them may exist: they are unknown to every client and expire with their codes. */
    int (*code_insert)(struct wx_store *s, struct wx_code *code, size_t n);
    /*
     * Atomically redeems a code into a grant. The caller fills grant->mac, created and expires;
     * the store fills app_id, user_id, code_id, scope and snapshot from the code, inserts the
     * grant (setting its id) and marks the code used by it. Results: WX_OK; WX_ERR_NOTFOUND (no
     * such code, MAC mismatch, or another app's code: not consumed); WX_ERR_EXPIRED;
     * WX_ERR_CONFLICT (used before: the grant it produced is revoked). With ac (else NULL) the
     * same step mints the grant's first access token: the caller fills ac->mac and expires, the
     * store the rest and ac->id (on Redis one script instead of two round trips). Must run
     * inside a batch.
     */
    int (*code_redeem)(struct wx_store *s, int64_t id, const unsigned char mac[WX_CRED_MAC],
                       int64_t app_id, int64_t now, struct wx_grant *grant, struct wx_access *ac);

    int (*grant_insert)(struct wx_store *s, struct wx_grant *g); /* sets id */
    int (*grant_get)(struct wx_store *s, int64_t id, struct wx_grant *out);
    int (*access_insert)(struct wx_store *s, struct wx_access *a); /* sets id */
    int (*access_get)(struct wx_store *s, int64_t id, struct wx_access *out);

    /* Issues a basic token; tokens issued before stay valid at most grace seconds more. */
    int (*basic_insert)(struct wx_store *s, struct wx_basic *b, int64_t now, int64_t grace);
    int (*basic_get)(struct wx_store *s, int64_t id, struct wx_basic *out);

    /* Remembered snsapi_userinfo consent: when (user, app) last allowed it. */
    int (*consent_set)(struct wx_store *s, int64_t user_id, int64_t app_id, int64_t now);
    int (*consent_get)(struct wx_store *s, int64_t user_id, int64_t app_id, int64_t *at);

    /* One-time use of a nonce (form tickets): WX_OK the first time, WX_ERR_CONFLICT after. */
    int (*nonce_use)(struct wx_store *s, const unsigned char nonce[16], int64_t expires);

    /*
     * Small values with a lifetime, under 16-byte keys the caller derives (a keyed hash): the
     * gate's sign-out list and redeemed-code results. put replaces; get answers WX_ERR_NOTFOUND
     * once the value expired, WX_ERR_LIMIT when it does not fit outsz.
     */
    int (*kv_put)(struct wx_store *s, const unsigned char key[16], const void *value, size_t len,
                  int64_t expires);
    int (*kv_get)(struct wx_store *s, const unsigned char key[16], int64_t now, void *out,
                  size_t outsz, size_t *len);
    /*
     * Optional (NULL on a store only one process uses): adds delta to a counter that lives until
     * expires and gives the new total, for counts every node must share (rate limits).
     */
    int (*counter_add)(struct wx_store *s, const unsigned char key[16], int64_t delta,
                       int64_t expires, int64_t *total);

    /*
     * Named records without a lifetime, by kind ("oidc_client", "oidc_key": [a-z_], at most
     * WX_REC_MAX_KIND bytes) and name (at most WX_REC_MAX_NAME bytes, no NUL), values of at most
     * WX_REC_MAX_VALUE bytes (longer: WX_ERR_LIMIT), shared by every node on the store. put with
     * create answers WX_ERR_CONFLICT when the name exists, else replaces; get answers
     * WX_ERR_NOTFOUND, or WX_ERR_LIMIT when the value does not fit outsz; list calls cb once per
     * record of kind, in name order; delete answers WX_ERR_NOTFOUND when there was none.
     */
    int (*rec_put)(struct wx_store *s, const char *kind, const char *name, const void *value,
                   size_t len, int create);
    int (*rec_get)(struct wx_store *s, const char *kind, const char *name, void *out, size_t outsz,
                   size_t *len);
    int (*rec_list)(struct wx_store *s, const char *kind, wx_rec_cb cb, void *ud);
    int (*rec_delete)(struct wx_store *s, const char *kind, const char *name);

    /*
     * Optional (NULL where it means nothing): moves this store's calls onto the process's one
     * pipelined connection to the same server (Redis: redis_mux.h), for stores that wait on
     * the network from threads of their own, many at once (the writer lanes): their commands
     * then share round trips and Redis's fsyncs. A store whose caller makes one call at a time
     * keeps its own connection (a hop through another thread would only add to each call).
     */
    int (*share)(struct wx_store *s);

    /* Deletes expired rows, at most limit of each kind; *deleted receives the count. */
    int (*purge)(struct wx_store *s, int64_t now, int limit, int64_t *deleted);
};

struct wx_store {
    const struct wx_store_ops *ops;
};

/*
 * The store's log (process-wide; the library never prints): a backend's failure is one line at
 * level error with the backend's own reason ("store: redis 10.0.0.5:6379: Redis replied: OOM
 * command not allowed ..."), at most one line per WX_STORE_LOG_INTERVAL_MS with the count of
 * those not written since; the first success after failures with none for that interval is
 * one line at level warn with their count. log must outlive every store (NULL: nothing is
 * written).
 */
#define WX_STORE_LOG_INTERVAL_MS 1000
void wx_store_set_log(const struct wx_log *log);
/* For the backends: a call failed at where ("redis HOST:PORT") for the reason why; one did not. */
void wx_store_note_failure(const char *where, const char *why);
void wx_store_note_ok(void);
/* For the backends: an event worth a warning line of its own (a failover followed). */
__attribute__((format(printf, 1, 2))) void wx_store_notef(const char *fmt, ...);

/* For the backends: 1 when kind, name and a value of len bytes keep the records' limits. */
int wx_store_rec_ok(const char *kind, const char *name, size_t len);

/* Opens the backend named by url: a file path or "sqlite:PATH". err gets a readable reason. */
int wx_store_open(struct wx_store **out, const char *url, char *err, size_t errsz);
int wx_store_open_sqlite(struct wx_store **out, const char *path, char *err, size_t errsz);

#endif
