/*
 * store_redis_registry.c — the registry operations of the Redis store (store_redis.c): apps,
 * users, follows, consents and basic tokens, all in the registry slot {r} (the key layout and
 * the scripts are described at the top of store_redis.c). Also the app generation that grants,
 * access tokens and basic tokens are checked against. The SQLite backend (store_sqlite.c) is
 * the reference for every operation's meaning.
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fiber.h"
#include "store_redis.h"

#define RD_CHUNK 64 /* records fetched per pipeline in list calls */

/* ---- apps ---- */

#define APP_FIELDS 10
static const char *const app_fields[APP_FIELDS] = {"appid", "name",  "dom",     "oa",  "menu",
                                                   "kind",  "https", "created", "mac", "gen"};

static void hmget_app(struct rd *d, struct wx_rc_args *a, int64_t id)
{
    wx_rc_arg_cmd(a, "HMGET");
    wx_rc_arg_key(&d->conn, a, "{r}:app:%lld", (long long)id);
    for (int i = 0; i < APP_FIELDS; i++)
        wx_rc_arg_str(a, app_fields[i]);
}

/* Fills out (and *gen, if given) from an HMGET of app_fields; 0 when the app does not exist. */
static int read_app(const redisReply *r, int64_t id, struct wx_app *out, int64_t *gen)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != APP_FIELDS ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return 0;
    redisReply **e = r->element;
    memset(out, 0, sizeof(*out));
    out->id = id;
    wx_rc_reply_text(e[0], out->appid, sizeof out->appid);
    wx_rc_reply_text(e[1], out->name, sizeof out->name);
    wx_rc_reply_text(e[2], out->domains, sizeof out->domains);
    wx_rc_reply_text(e[3], out->open_account, sizeof out->open_account);
    wx_rc_reply_text(e[4], out->menu, sizeof out->menu);
    out->kind = (int)wx_rc_reply_num(e[5]);
    out->https_only = (int)wx_rc_reply_num(e[6]);
    out->created = wx_rc_reply_num(e[7]);
    wx_rc_reply_mac(e[8], out->secret_mac);
    if (gen)
        *gen = wx_rc_reply_num(e[9]);
    return 1;
}

/* ---- the app cache (store_redis.h) ---- */

struct rd_wait {
    struct wx_fiber *fiber;
    struct rd_wait *next;
    int rc; /* the read's result */
};

void wx_rd_apps_changed(struct rd *d)
{
    d->epoch++;
}

static struct rd_app *app_slot(struct rd *d, int64_t id)
{
    return &d->apps[(uint64_t)id % RD_APP_CACHE];
}

/* A cached copy still fresh, or NULL. Only the shared connection caches (store_redis.h). */
static struct rd_app *cached_app(struct rd *d, int64_t id)
{
    struct rd_app *c = app_slot(d, id);
    return d->shared && c->at_ns && c->app.id == id && c->epoch == d->epoch &&
                   wx_mono_ns() - c->at_ns < RD_APP_FRESH_NS
               ? c
               : NULL;
}

/*
 * A cached copy is an answer only while Redis is reachable (no I/O on the shared connection):
 * a Redis that is down fails every call, cached or not, as SQLite's missing file would.
 */
static int cache_usable(struct rd *d)
{
    return wx_rc_ready(&d->conn) == WX_OK;
}

/* Reads app id from Redis into out and *gen, and keeps it (or forgets it, when it is gone). */
static int fetch_app(struct rd *d, int64_t id, struct wx_app *out, int64_t *gen)
{
    struct wx_rc_args a;
    redisReply *r;
    int64_t t = wx_mono_ns();
    uint64_t epoch = d->epoch; /* both from before the read: never fresher than it is */
    hmget_app(d, &a, id);
    int rc = wx_rc_call(&d->conn, &a, &r);
    if (rc)
        return rc;
    rc = read_app(r, id, out, gen) ? WX_OK : WX_ERR_NOTFOUND;
    freeReplyObject(r);
    struct rd_app *c = app_slot(d, id);
    if (rc == WX_OK) {
        c->app = *out;
        c->gen = *gen;
        c->at_ns = t;
        c->epoch = epoch;
    } else if (c->app.id == id) {
        c->at_ns = 0;
    }
    return rc;
}

static void no_submit(void *arg)
{
    (void)arg; /* the waiter is on the slot's list: the reading fiber wakes it */
}

/*
 * App id, from the cache while it is fresh, else read (fresh: read in any case). On a fiber of
 * the shared connection, one read per slot at a time: the fibers that need the same app meanwhile
 * wait for its answer instead of sending their own.
 */
static int load_app(struct rd *d, int64_t id, struct wx_app *out, int64_t *gen, int fresh)
{
    for (;;) {
        struct rd_app *c = fresh ? NULL : cached_app(d, id);
        if (c) {
            *out = c->app;
            *gen = c->gen;
            return cache_usable(d) ? WX_OK : WX_ERR_STORE;
        }
        struct wx_fiber *self = wx_fiber_self();
        c = app_slot(d, id);
        if (fresh || !d->shared || !self || (c->busy && c->busy != id))
            return fetch_app(d, id, out, gen);
        if (c->busy == id) {
            struct rd_wait w = {self, c->waiters, WX_OK};
            c->waiters = &w;
            wx_fiber_wait(no_submit, NULL);
            if (w.rc != WX_OK)
                return w.rc;
            continue; /* read: fresh, unless it began before a read_begin (then read again) */
        }
        c->busy = id;
        int rc = fetch_app(d, id, out, gen);
        struct rd_wait *w = c->waiters;
        c->busy = 0;
        c->waiters = NULL;
        while (w) {
            struct rd_wait *next = w->next; /* w is on a stack that may run once woken */
            w->rc = rc;
            wx_fiber_wake(w->fiber);
            w = next;
        }
        return rc;
    }
}

/* The fields app_update may change. */
static void a_app_settings(struct wx_rc_args *a, const struct wx_app *app)
{
    wx_rc_arg_strs(a, "name", app->name, "dom", app->domains, "oa", app->open_account, "menu",
                   app->menu, NULL);
    wx_rc_arg_field(a, "kind", app->kind);
    wx_rc_arg_field(a, "https", app->https_only);
}

int wx_rd_app_insert(struct wx_store *s, struct wx_app *app)
{
    struct rd *d = RD(s);
    struct wx_rc_args a;
    int64_t id, ok;
    wx_rc_arg_cmd(&a, "INCR");
    wx_rc_arg_key(&d->conn, &a, "{r}:seq:app");
    int rc = wx_rc_call_int(&d->conn, &a, &id);
    if (rc)
        return rc;
    wx_rc_arg_script(&a, 3);
    wx_rc_arg_key(&d->conn, &a, "{r}:app:%lld", (long long)id);
    wx_rc_arg_key(&d->conn, &a, "{r}:apps");
    wx_rc_arg_key(&d->conn, &a, "{r}:appid:%s", app->appid);
    wx_rc_arg_i64(&a, id);
    wx_rc_arg_str(&a, "appid");
    wx_rc_arg_str(&a, app->appid);
    a_app_settings(&a, app);
    wx_rc_arg_field(&a, "created", app->created);
    wx_rc_arg_str(&a, "mac");
    wx_rc_arg_bin(&a, app->secret_mac, WX_CRED_MAC);
    wx_rc_arg_field(&a, "gen", 0);
    rc = wx_rc_eval_int(&d->conn, L_REG_NEW, &a, &ok);
    wx_rd_apps_changed(d);
    if (rc)
        return rc;
    if (!ok)
        return WX_ERR_CONFLICT;
    app->id = id;
    return WX_OK;
}

int wx_rd_app_by_id(struct wx_store *s, int64_t id, struct wx_app *out)
{
    int64_t gen;
    return load_app(RD(s), id, out, &gen, 0);
}

int wx_rd_app_by_appid(struct wx_store *s, const char *appid, struct wx_app *out)
{
    struct rd *d = RD(s);
    struct wx_rc_args a;
    redisReply *r;
    int64_t id = 0;
    if (strlen(appid) > WX_APPID_LEN)
        return WX_ERR_NOTFOUND; /* no app has it (a request's parameter may be 4 KiB) */
    for (int i = 0; i < RD_APP_CACHE && d->shared; i++) {
        struct rd_app *c = &d->apps[i];
        if (c->at_ns && !strcmp(c->app.appid, appid)) {
            /* fresh, or stale: a hint of its id (an app keeps its appid; a deleted one reads
             * as not found, and then the index is asked) */
            int64_t gen;
            int rc = load_app(d, c->app.id, out, &gen, 0);
            if (rc == WX_OK && !strcmp(out->appid, appid))
                return WX_OK;
            if (rc == WX_ERR_STORE)
                return rc;
            break;
        }
    }
    wx_rc_arg_cmd(&a, "GET");
    wx_rc_arg_key(&d->conn, &a, "{r}:appid:%s", appid);
    int rc = wx_rc_call(&d->conn, &a, &r);
    if (rc)
        return rc;
    int found = r->type == REDIS_REPLY_STRING && wx_rc_reply_i64(r, &id);
    freeReplyObject(r);
    return found ? wx_rd_app_by_id(s, id, out) : WX_ERR_NOTFOUND;
}

/* The ids in a registry list (ZSET), in id order; free *ids. */
static int list_ids(struct rd *d, const char *list, int64_t **ids, size_t *n)
{
    struct wx_rc_args a;
    redisReply *r;
    wx_rc_arg_cmd(&a, "ZRANGE");
    wx_rc_arg_key(&d->conn, &a, "{r}:%s", list);
    wx_rc_arg_strs(&a, "0", "-1", NULL);
    *ids = NULL;
    *n = 0;
    int rc = wx_rc_call(&d->conn, &a, &r);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || !(*ids = calloc(r->elements + 1, sizeof **ids)))
        rc = r->type == REDIS_REPLY_ARRAY ? WX_ERR_NOMEM : WX_ERR_STORE;
    for (size_t i = 0; rc == WX_OK && i < r->elements; i++)
        if (wx_rc_reply_i64(r->element[i], &(*ids)[*n]))
            (*n)++;
    freeReplyObject(r);
    return rc;
}

/*
 * Calls cb for the apps among ids (user_id > 0: only those the user follows), RD_CHUNK per
 * round trip. Callbacks run with no reply pending, so they may use the store.
 */
static int each_app(struct rd *d, const int64_t *ids, size_t n, int64_t user_id, wx_app_cb cb,
                    void *ud)
{
    struct wx_rc_args *cmd = calloc(2 * RD_CHUNK, sizeof *cmd);
    redisReply **r = calloc(2 * RD_CHUNK, sizeof *r);
    struct wx_app *apps = calloc(RD_CHUNK, sizeof *apps);
    int rc = cmd && r && apps ? WX_OK : WX_ERR_NOMEM;
    for (size_t at = 0; rc == WX_OK && at < n; at += RD_CHUNK) {
        size_t m = n - at < RD_CHUNK ? n - at : RD_CHUNK, k = 0, found = 0;
        for (size_t i = 0; i < m; i++) {
            hmget_app(d, &cmd[k++], ids[at + i]);
            if (user_id > 0) {
                wx_rc_arg_cmd(&cmd[k], "HEXISTS");
                wx_rc_arg_key(&d->conn, &cmd[k], "{r}:fol:%lld", (long long)ids[at + i]);
                wx_rc_arg_i64(&cmd[k++], user_id);
            }
        }
        if ((rc = wx_rc_pipeline(&d->conn, cmd, (int)k, r)))
            break;
        size_t per = user_id > 0 ? 2 : 1; /* replies per app */
        for (size_t i = 0; i < m; i++) {
            const redisReply *app = r[per * i], *fol = per == 2 ? r[per * i + 1] : NULL;
            int want = !fol || (fol->type == REDIS_REPLY_INTEGER && fol->integer);
            if (want && read_app(app, ids[at + i], &apps[found], NULL))
                found++;
        }
        for (size_t i = 0; i < k; i++)
            freeReplyObject(r[i]);
        for (size_t i = 0; i < found; i++)
            cb(ud, &apps[i]);
    }
    free(cmd);
    free(r);
    free(apps);
    return rc;
}

static int list_apps(struct rd *d, int64_t user_id, wx_app_cb cb, void *ud)
{
    int64_t *ids;
    size_t n;
    int rc = list_ids(d, "apps", &ids, &n);
    if (rc == WX_OK)
        rc = each_app(d, ids, n, user_id, cb, ud);
    free(ids);
    return rc;
}

int wx_rd_app_list(struct wx_store *s, wx_app_cb cb, void *ud)
{
    return list_apps(RD(s), 0, cb, ud);
}

/* Registry records and indexes go at once; credentials become unreadable (no app gen). */
int wx_rd_app_delete(struct wx_store *s, int64_t id)
{
    struct rd *d = RD(s);
    struct wx_rc_args a;
    redisReply *r;
    char appid[WX_APPID_LEN + 1] = "";
    int64_t done;
    wx_rc_arg_cmd(&a, "HGET");
    wx_rc_arg_key(&d->conn, &a, "{r}:app:%lld", (long long)id);
    wx_rc_arg_str(&a, "appid");
    int rc = wx_rc_call(&d->conn, &a, &r);
    if (rc)
        return rc;
    wx_rc_reply_text(r, appid, sizeof appid);
    freeReplyObject(r);
    wx_rc_arg_script(&a, 6);
    wx_rc_arg_key(&d->conn, &a, "{r}:app:%lld", (long long)id);
    wx_rc_arg_key(&d->conn, &a, "{r}:appid:%s", appid);
    wx_rc_arg_key(&d->conn, &a, "{r}:apps");
    wx_rc_arg_key(&d->conn, &a, "{r}:fol:%lld", (long long)id);
    wx_rc_arg_key(&d->conn, &a, "{r}:consent:%lld", (long long)id);
    wx_rc_arg_key(&d->conn, &a, "{r}:basiclast:%lld", (long long)id);
    wx_rc_arg_i64(&a, id);
    rc = wx_rc_eval_int(&d->conn, L_APP_DEL, &a, &done);
    wx_rd_apps_changed(d);
    return rc;
}

/* Sets fields of an existing registry record (bump: a new generation); NOTFOUND if none. */
static int reg_set(struct rd *d, struct wx_rc_args *a, int64_t *ok)
{
    int rc = wx_rc_eval_int(&d->conn, L_REG_SET, a, ok);
    return rc ? rc : *ok ? WX_OK : WX_ERR_NOTFOUND;
}

int wx_rd_app_update(struct wx_store *s, const struct wx_app *app)
{
    struct rd *d = RD(s);
    struct wx_rc_args a;
    int64_t ok;
    wx_rc_arg_script(&a, 1);
    wx_rc_arg_key(&d->conn, &a, "{r}:app:%lld", (long long)app->id);
    wx_rc_arg_str(&a, "0");
    a_app_settings(&a, app);
    int rc = reg_set(d, &a, &ok);
    wx_rd_apps_changed(d);
    return rc;
}

int wx_rd_app_set_secret(struct wx_store *s, int64_t id, const unsigned char mac[WX_CRED_MAC])
{
    struct rd *d = RD(s);
    struct wx_rc_args a;
    int64_t ok;
    wx_rc_arg_script(&a, 1);
    wx_rc_arg_key(&d->conn, &a, "{r}:app:%lld", (long long)id);
    wx_rc_arg_str(&a, "1");
    wx_rc_arg_str(&a, "mac");
    wx_rc_arg_bin(&a, mac, WX_CRED_MAC);
    int rc = reg_set(d, &a, &ok);
    wx_rd_apps_changed(d);
    return rc;
}

/* The app's generation (bumped by each secret reset); WX_ERR_NOTFOUND once it is deleted. */
int wx_rd_app_gen(struct rd *d, int64_t app_id, int64_t *gen, int fresh)
{
    struct wx_app app;
    return load_app(d, app_id, &app, gen, fresh);
}

/* Revoked when issued under an older generation of its app; gone with the app. */
int wx_rd_check_gen(struct rd *d, int64_t app_id, int64_t gen, int *revoked)
{
    int64_t now_gen;
    int rc = wx_rd_app_gen(d, app_id, &now_gen, 0);
    if (rc == WX_OK && gen < now_gen)
        *revoked = 1;
    return rc;
}

/* ---- users, follows, consents ---- */

static void hmget_user(struct rd *d, struct wx_rc_args *a, int64_t id)
{
    wx_rc_arg_cmd(a, "HMGET");
    wx_rc_arg_key(&d->conn, a, "{r}:user:%lld", (long long)id);
    wx_rc_arg_strs(a, "nick", "avatar", "sex", "snap", "created", NULL);
}

static int read_user(const redisReply *r, int64_t id, struct wx_user *u)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return 0;
    memset(u, 0, sizeof(*u));
    u->id = id;
    wx_rc_reply_text(r->element[0], u->nickname, sizeof u->nickname);
    wx_rc_reply_text(r->element[1], u->avatar, sizeof u->avatar);
    u->sex = (int)wx_rc_reply_num(r->element[2]);
    u->snapshot = (int)wx_rc_reply_num(r->element[3]);
    u->created = wx_rc_reply_num(r->element[4]);
    return 1;
}

int wx_rd_user_insert(struct wx_store *s, struct wx_user *u)
{
    struct rd *d = RD(s);
    struct wx_rc_args a;
    int64_t id, ok;
    wx_rc_arg_cmd(&a, "INCR");
    wx_rc_arg_key(&d->conn, &a, "{r}:seq:user");
    int rc = wx_rc_call_int(&d->conn, &a, &id);
    if (rc)
        return rc;
    wx_rc_arg_script(&a, 2);
    wx_rc_arg_key(&d->conn, &a, "{r}:user:%lld", (long long)id);
    wx_rc_arg_key(&d->conn, &a, "{r}:users");
    wx_rc_arg_i64(&a, id);
    wx_rc_arg_strs(&a, "nick", u->nickname, "avatar", u->avatar, NULL);
    wx_rc_arg_field(&a, "sex", u->sex);
    wx_rc_arg_field(&a, "snap", u->snapshot);
    wx_rc_arg_field(&a, "created", u->created);
    if ((rc = wx_rc_eval_int(&d->conn, L_REG_NEW, &a, &ok)))
        return rc;
    u->id = id;
    return ok ? WX_OK : WX_ERR_STORE;
}

int wx_rd_user_get(struct wx_store *s, int64_t id, struct wx_user *out)
{
    struct rd *d = RD(s);
    struct wx_rc_args a;
    redisReply *r;
    hmget_user(d, &a, id);
    int rc = wx_rc_call(&d->conn, &a, &r);
    if (rc)
        return rc;
    rc = read_user(r, id, out) ? WX_OK : WX_ERR_NOTFOUND;
    freeReplyObject(r);
    return rc;
}

int wx_rd_user_list(struct wx_store *s, wx_user_cb cb, void *ud)
{
    struct rd *d = RD(s);
    int64_t *ids;
    size_t n;
    int rc = list_ids(d, "users", &ids, &n);
    struct wx_rc_args *cmd = calloc(RD_CHUNK, sizeof *cmd);
    redisReply **r = calloc(RD_CHUNK, sizeof *r);
    struct wx_user *users = calloc(RD_CHUNK, sizeof *users);
    if (rc == WX_OK && !(cmd && r && users))
        rc = WX_ERR_NOMEM;
    for (size_t at = 0; rc == WX_OK && at < n; at += RD_CHUNK) {
        size_t m = n - at < RD_CHUNK ? n - at : RD_CHUNK, found = 0;
        for (size_t i = 0; i < m; i++)
            hmget_user(d, &cmd[i], ids[at + i]);
        if ((rc = wx_rc_pipeline(&d->conn, cmd, (int)m, r)))
            break;
        for (size_t i = 0; i < m; i++) {
            found += read_user(r[i], ids[at + i], &users[found]);
            freeReplyObject(r[i]);
        }
        for (size_t i = 0; i < found; i++)
            cb(ud, &users[i]);
    }
    free(ids);
    free(cmd);
    free(r);
    free(users);
    return rc;
}

int wx_rd_user_set_snapshot(struct wx_store *s, int64_t id, int snapshot)
{
    struct rd *d = RD(s);
    struct wx_rc_args a;
    int64_t ok;
    wx_rc_arg_script(&a, 1);
    wx_rc_arg_key(&d->conn, &a, "{r}:user:%lld", (long long)id);
    wx_rc_arg_str(&a, "0");
    wx_rc_arg_field(&a, "snap", snapshot);
    return reg_set(d, &a, &ok);
}

/* cmd on the (app-keyed) hash name:<app>, field user id, optional value. */
static int pair_cmd(struct rd *d, const char *cmd, const char *name, int64_t user_id,
                    int64_t app_id, const int64_t *value, redisReply **r)
{
    struct wx_rc_args a;
    wx_rc_arg_cmd(&a, cmd);
    wx_rc_arg_key(&d->conn, &a, "{r}:%s:%lld", name, (long long)app_id);
    wx_rc_arg_i64(&a, user_id);
    if (value)
        wx_rc_arg_i64(&a, *value);
    return wx_rc_call(&d->conn, &a, r);
}

static int pair_set(struct rd *d, const char *cmd, const char *name, int64_t user_id,
                    int64_t app_id, const int64_t *value)
{
    redisReply *r;
    int rc = pair_cmd(d, cmd, name, user_id, app_id, value, &r);
    if (rc == WX_OK)
        freeReplyObject(r);
    return rc;
}

static int pair_get(struct rd *d, const char *name, int64_t user_id, int64_t app_id, int64_t *out)
{
    redisReply *r;
    int rc = pair_cmd(d, "HGET", name, user_id, app_id, NULL, &r);
    if (rc)
        return rc;
    rc = r->type == REDIS_REPLY_NIL ? WX_ERR_NOTFOUND
         : wx_rc_reply_i64(r, out)  ? WX_OK
                                    : WX_ERR_STORE;
    freeReplyObject(r);
    return rc;
}

/* Following again keeps the first "since" (SQLite: INSERT OR IGNORE). */
int wx_rd_follow_set(struct wx_store *s, int64_t user_id, int64_t app_id, int on, int64_t now)
{
    return pair_set(RD(s), on ? "HSETNX" : "HDEL", "fol", user_id, app_id, on ? &now : NULL);
}

int wx_rd_follow_get(struct wx_store *s, int64_t user_id, int64_t app_id, int64_t *since)
{
    return pair_get(RD(s), "fol", user_id, app_id, since);
}

int wx_rd_follow_list(struct wx_store *s, int64_t user_id, wx_app_cb cb, void *ud)
{
    return user_id > 0 ? list_apps(RD(s), user_id, cb, ud) : WX_OK;
}

int wx_rd_consent_set(struct wx_store *s, int64_t user_id, int64_t app_id, int64_t now)
{
    return pair_set(RD(s), "HSET", "consent", user_id, app_id, &now);
}

int wx_rd_consent_get(struct wx_store *s, int64_t user_id, int64_t app_id, int64_t *at)
{
    return pair_get(RD(s), "consent", user_id, app_id, at);
}

/* ---- basic tokens (in the registry slot: few, and checked against their app in one go) ---- */

int wx_rd_basic_insert(struct wx_store *s, struct wx_basic *b, int64_t now, int64_t grace)
{
    struct rd *d = RD(s);
    for (int i = 0; i < RD_TRIES; i++) {
        struct wx_rc_args a;
        redisReply *r;
        char prev[24] = "";
        int64_t id = fresh_id(0), st;
        wx_rc_arg_cmd(&a, "GET");
        wx_rc_arg_key(&d->conn, &a, "{r}:basiclast:%lld", (long long)b->app_id);
        int rc = wx_rc_call(&d->conn, &a, &r);
        if (rc)
            return rc;
        wx_rc_reply_text(r, prev, sizeof prev);
        freeReplyObject(r);
        wx_rc_arg_script(&a, 4);
        wx_rc_arg_key(&d->conn, &a, "{r}:basiclast:%lld", (long long)b->app_id);
        wx_rc_arg_key(&d->conn, &a, "{r}:basic:%lld", (long long)id);
        if (prev[0])
            wx_rc_arg_key(&d->conn, &a, "{r}:basic:%s", prev);
        else
            wx_rc_arg_key(&d->conn, &a, "{r}:basiclast:%lld", (long long)b->app_id);
        wx_rc_arg_key(&d->conn, &a, "{r}:app:%lld", (long long)b->app_id);
        wx_rc_arg_str(&a, prev);
        wx_rc_arg_i64(&a, id);
        wx_rc_arg_i64(&a, now + grace);
        wx_rc_arg_i64(&a, expire_at(b->expires, RD_GRACE));
        wx_rc_arg_bin(&a, b->mac, WX_CRED_MAC);
        wx_rc_arg_i64(&a, b->app_id);
        wx_rc_arg_i64(&a, b->expires);
        if ((rc = wx_rc_eval_int(&d->conn, L_BASIC_NEW, &a, &st)))
            return rc;
        if (st == 1) {
            b->id = id;
            return WX_OK;
        }
    }
    return WX_ERR_STORE;
}

int wx_rd_basic_get(struct wx_store *s, int64_t id, struct wx_basic *b)
{
    struct rd *d = RD(s);
    struct wx_rc_args a;
    redisReply *r;
    wx_rc_arg_cmd(&a, "HMGET");
    wx_rc_arg_key(&d->conn, &a, "{r}:basic:%lld", (long long)id);
    wx_rc_arg_strs(&a, "mac", "app", "exp", "gen", NULL);
    int rc = wx_rc_call(&d->conn, &a, &r);
    if (rc)
        return rc;
    int64_t gen = 0;
    int revoked = 0;
    rc = r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
                 r->element[0]->type == REDIS_REPLY_STRING
             ? WX_OK
             : WX_ERR_NOTFOUND;
    if (rc == WX_OK) {
        b->id = id;
        wx_rc_reply_mac(r->element[0], b->mac);
        b->app_id = wx_rc_reply_num(r->element[1]);
        b->expires = wx_rc_reply_num(r->element[2]);
        gen = wx_rc_reply_num(r->element[3]);
    }
    freeReplyObject(r);
    if (rc == WX_OK)
        rc = wx_rd_check_gen(d, b->app_id, gen, &revoked);
    return rc == WX_OK && revoked ? WX_ERR_NOTFOUND : rc; /* SQLite deletes them */
}

/* ---- named records: a hash per kind, {r}:rec:KIND, field = name ---- */

static void a_rec(struct rd *d, struct wx_rc_args *a, const char *cmd, const char *kind)
{
    wx_rc_arg_cmd(a, cmd);
    wx_rc_arg_key(&d->conn, a, "{r}:rec:%s", kind);
}

int wx_rd_rec_put(struct wx_store *s, const char *kind, const char *name, const void *value,
                  size_t len, int create)
{
    struct rd *d = RD(s);
    struct wx_rc_args a;
    int64_t added = 0;
    if (!wx_store_rec_ok(kind, name, len))
        return WX_ERR_LIMIT;
    a_rec(d, &a, create ? "HSETNX" : "HSET", kind);
    wx_rc_arg_str(&a, name);
    wx_rc_arg_bin(&a, value, len);
    int rc = wx_rc_call_int(&d->conn, &a, &added);
    return rc ? rc : create && !added ? WX_ERR_CONFLICT : WX_OK;
}

int wx_rd_rec_get(struct wx_store *s, const char *kind, const char *name, void *out, size_t outsz,
                  size_t *len)
{
    struct rd *d = RD(s);
    struct wx_rc_args a;
    redisReply *r;
    if (!wx_store_rec_ok(kind, name, 0))
        return WX_ERR_NOTFOUND;
    a_rec(d, &a, "HGET", kind);
    wx_rc_arg_str(&a, name);
    int rc = wx_rc_call(&d->conn, &a, &r);
    if (rc)
        return rc;
    if (r->type == REDIS_REPLY_NIL) {
        rc = WX_ERR_NOTFOUND;
    } else if (r->type != REDIS_REPLY_STRING) {
        rc = WX_ERR_STORE;
    } else if (r->len > outsz) {
        rc = WX_ERR_LIMIT;
    } else {
        if (r->len)
            memcpy(out, r->str, r->len);
        *len = r->len;
    }
    freeReplyObject(r);
    return rc;
}

/* Orders slots of HGETALL's array (each a name, its value next) by name. */
static int cmp_field(const void *x, const void *y)
{
    const redisReply *a = **(redisReply * *const *)x, *b = **(redisReply * *const *)y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->str, b->str, n) : 0;
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* HGETALL's flat [name, value, ...], sorted by name (SQLite's ORDER BY name). */
int wx_rd_rec_list(struct wx_store *s, const char *kind, wx_rec_cb cb, void *ud)
{
    struct rd *d = RD(s);
    struct wx_rc_args a;
    redisReply *r;
    if (!wx_store_rec_ok(kind, "x", 0))
        return WX_OK;
    a_rec(d, &a, "HGETALL", kind);
    int rc = wx_rc_call(&d->conn, &a, &r);
    if (rc)
        return rc;
    size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements / 2 : 0;
    redisReply ***slot = n ? malloc(n * sizeof *slot) : NULL;
    rc = r->type != REDIS_REPLY_ARRAY ? WX_ERR_STORE : n && !slot ? WX_ERR_NOMEM : WX_OK;
    for (size_t i = 0; rc == WX_OK && i < n; i++) {
        slot[i] = &r->element[2 * i];
        if (slot[i][0]->type != REDIS_REPLY_STRING || slot[i][1]->type != REDIS_REPLY_STRING)
            rc = WX_ERR_STORE;
    }
    if (rc == WX_OK && n)
        qsort(slot, n, sizeof *slot, cmp_field);
    for (size_t i = 0; rc == WX_OK && i < n; i++) {
        char name[WX_REC_MAX_NAME + 1];
        wx_rc_reply_text(slot[i][0], name, sizeof name);
        cb(ud, name, slot[i][1]->str, slot[i][1]->len);
    }
    free(slot);
    freeReplyObject(r);
    return rc;
}

int wx_rd_rec_delete(struct wx_store *s, const char *kind, const char *name)
{
    struct rd *d = RD(s);
    struct wx_rc_args a;
    int64_t gone = 0;
    if (!wx_store_rec_ok(kind, name, 0))
        return WX_ERR_NOTFOUND;
    a_rec(d, &a, "HDEL", kind);
    wx_rc_arg_str(&a, name);
    int rc = wx_rc_call_int(&d->conn, &a, &gone);
    return rc ? rc : gone ? WX_OK : WX_ERR_NOTFOUND;
}
