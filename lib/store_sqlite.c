/*
 * store_sqlite.c — the embedded store: SQLite in WAL mode with synchronous=FULL, so that a row
 * committed before a response went out survives kill -9 and power loss. Credentials rows are
 * keyed by integer id and appended in order; only MACs of secrets are stored.
 */
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

enum {
    Q_META_GET,
    Q_META_PUT,
    Q_APP_INS,
    Q_APP_BY_APPID,
    Q_APP_BY_ID,
    Q_APP_LIST,
    Q_APP_SECRET,
    Q_APP_UPD,
    Q_USER_INS,
    Q_USER_GET,
    Q_USER_LIST,
    Q_USER_SNAP,
    Q_FOLLOW_ON,
    Q_FOLLOW_OFF,
    Q_FOLLOW_GET,
    Q_FOLLOW_LIST,
    Q_CODE_INS,
    Q_CODE_GET,
    Q_CODE_USE,
    Q_CODE_REVOKE,
    Q_GRANT_REVOKED,
    Q_GRANT_INS,
    Q_GRANT_GET,
    Q_ACCESS_INS,
    Q_ACCESS_GET,
    Q_BASIC_SHORTEN,
    Q_BASIC_INS,
    Q_BASIC_GET,
    Q_NONCE_INS,
    Q_KV_PUT,
    Q_KV_GET,
    Q_CONSENT_SET,
    Q_CONSENT_GET,
    Q_REC_INS,
    Q_REC_PUT,
    Q_REC_GET,
    Q_REC_LIST,
    Q_REC_DEL,
    Q_BEGIN,
    Q_BEGIN_IMM,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_COUNT
};

static const char *const sql[Q_COUNT] = {
    [Q_META_GET] = "SELECT v FROM meta WHERE k=?1",
    [Q_META_PUT] = "INSERT INTO meta(k,v) VALUES(?1,?2)",
    [Q_APP_INS] = "INSERT INTO apps(appid,name,domains,open_account,kind,https_only,secret_mac,"
                  "created,menu) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)",
    [Q_APP_BY_APPID] = "SELECT id,appid,name,domains,open_account,kind,https_only,secret_mac,"
                       "created,menu FROM apps WHERE appid=?1",
    [Q_APP_BY_ID] = "SELECT id,appid,name,domains,open_account,kind,https_only,secret_mac,"
                    "created,menu FROM apps WHERE id=?1",
    [Q_APP_LIST] = "SELECT id,appid,name,domains,open_account,kind,https_only,secret_mac,"
                   "created,menu FROM apps ORDER BY id",
    [Q_APP_SECRET] = "UPDATE apps SET secret_mac=?2 WHERE id=?1",
    [Q_APP_UPD] = "UPDATE apps SET name=?2,domains=?3,open_account=?4,menu=?5,kind=?6,"
                  "https_only=?7 WHERE id=?1",
    [Q_USER_INS] = "INSERT INTO users(nickname,avatar,sex,snapshot,created) VALUES(?1,?2,?3,?4,?5)",
    [Q_USER_GET] = "SELECT id,nickname,avatar,sex,snapshot,created FROM users WHERE id=?1",
    [Q_USER_LIST] = "SELECT id,nickname,avatar,sex,snapshot,created FROM users ORDER BY id",
    [Q_USER_SNAP] = "UPDATE users SET snapshot=?2 WHERE id=?1",
    [Q_FOLLOW_ON] = "INSERT OR IGNORE INTO follows(user_id,app_id,since) VALUES(?1,?2,?3)",
    [Q_FOLLOW_OFF] = "DELETE FROM follows WHERE user_id=?1 AND app_id=?2",
    [Q_FOLLOW_GET] = "SELECT since FROM follows WHERE user_id=?1 AND app_id=?2",
    [Q_FOLLOW_LIST] = "SELECT a.id,a.appid,a.name,a.domains,a.open_account,a.kind,a.https_only,"
                      "a.secret_mac,a.created,a.menu FROM follows f JOIN apps a ON a.id=f.app_id "
                      "WHERE f.user_id=?1 ORDER BY a.id",
    [Q_CODE_INS] = "INSERT INTO codes(mac,app_id,user_id,scope,snapshot,expires) "
                   "VALUES(?1,?2,?3,?4,?5,?6)",
    [Q_CODE_GET] = "SELECT mac,app_id,user_id,scope,snapshot,expires,used FROM codes WHERE id=?1",
    [Q_CODE_USE] = "UPDATE codes SET used=?2 WHERE id=?1 AND used=0",
    [Q_CODE_REVOKE] = "UPDATE grants SET revoked=1 WHERE id=?1",
    [Q_GRANT_REVOKED] = "INSERT OR IGNORE INTO revoked_grants(grant_id) VALUES(?1)",
    [Q_GRANT_INS] = "INSERT INTO grants(mac,app_id,user_id,code_id,scope,snapshot,created,expires)"
                    " VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
    [Q_GRANT_GET] = "SELECT mac,app_id,user_id,code_id,scope,snapshot,created,expires,revoked "
                    "FROM grants WHERE id=?1",
    [Q_ACCESS_INS] = "INSERT INTO access(mac,grant_id,app_id,user_id,scope,expires,snapshot) "
                     "VALUES(?1,?2,?3,?4,?5,?6,?7)",
    /* Revoked grants sit in a small table of their own: the hot lookup stays one row read. */
    [Q_ACCESS_GET] =
        "SELECT a.mac,a.grant_id,a.app_id,a.user_id,a.scope,a.expires,a.revoked OR EXISTS("
        "SELECT 1 FROM revoked_grants r WHERE r.grant_id=a.grant_id),a.snapshot FROM access a "
        "WHERE a.id=?1",
    [Q_BASIC_SHORTEN] = "UPDATE basic SET expires=MIN(expires,?2) WHERE app_id=?1",
    [Q_BASIC_INS] = "INSERT INTO basic(mac,app_id,expires) VALUES(?1,?2,?3)",
    [Q_BASIC_GET] = "SELECT mac,app_id,expires FROM basic WHERE id=?1",
    [Q_NONCE_INS] = "INSERT INTO nonces(nonce,expires) VALUES(?1,?2)",
    [Q_KV_PUT] = "INSERT OR REPLACE INTO kv(k,v,expires) VALUES(?1,?2,?3)",
    [Q_KV_GET] = "SELECT v FROM kv WHERE k=?1 AND expires>?2",
    [Q_CONSENT_SET] = "INSERT INTO consents(user_id,app_id,at) VALUES(?1,?2,?3) "
                      "ON CONFLICT(user_id,app_id) DO UPDATE SET at=excluded.at",
    [Q_CONSENT_GET] = "SELECT at FROM consents WHERE user_id=?1 AND app_id=?2",
    [Q_REC_INS] = "INSERT INTO records(kind,name,v) VALUES(?1,?2,?3)",
    [Q_REC_PUT] = "INSERT OR REPLACE INTO records(kind,name,v) VALUES(?1,?2,?3)",
    [Q_REC_GET] = "SELECT v FROM records WHERE kind=?1 AND name=?2",
    [Q_REC_LIST] = "SELECT name,v FROM records WHERE kind=?1 ORDER BY name",
    [Q_REC_DEL] = "DELETE FROM records WHERE kind=?1 AND name=?2",
    /* transaction control, prepared once: sqlite3_exec would parse it on every request */
    [Q_BEGIN] = "BEGIN",
    [Q_BEGIN_IMM] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS apps(id INTEGER PRIMARY KEY, appid TEXT NOT NULL UNIQUE,"
    " name TEXT NOT NULL, domains TEXT NOT NULL, open_account TEXT NOT NULL DEFAULT '',"
    " kind INTEGER NOT NULL DEFAULT 0, https_only INTEGER NOT NULL DEFAULT 0,"
    " secret_mac BLOB NOT NULL, created INTEGER NOT NULL, menu TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE IF NOT EXISTS users(id INTEGER PRIMARY KEY, nickname TEXT NOT NULL,"
    " avatar TEXT NOT NULL DEFAULT '', sex INTEGER NOT NULL DEFAULT 0,"
    " snapshot INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS follows(user_id INTEGER NOT NULL, app_id INTEGER NOT NULL,"
    " since INTEGER NOT NULL, PRIMARY KEY(user_id, app_id)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS codes(id INTEGER PRIMARY KEY, mac BLOB NOT NULL,"
    " app_id INTEGER NOT NULL, user_id INTEGER NOT NULL, scope INTEGER NOT NULL,"
    " snapshot INTEGER NOT NULL, expires INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS grants(id INTEGER PRIMARY KEY, mac BLOB NOT NULL,"
    " app_id INTEGER NOT NULL, user_id INTEGER NOT NULL, code_id INTEGER NOT NULL,"
    " scope INTEGER NOT NULL, snapshot INTEGER NOT NULL, created INTEGER NOT NULL,"
    " expires INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);"
    "DROP INDEX IF EXISTS grants_code;"
    "CREATE TABLE IF NOT EXISTS access(id INTEGER PRIMARY KEY, mac BLOB NOT NULL,"
    " grant_id INTEGER NOT NULL, app_id INTEGER NOT NULL, user_id INTEGER NOT NULL,"
    " scope INTEGER NOT NULL, expires INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0,"
    " snapshot INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS basic(id INTEGER PRIMARY KEY, mac BLOB NOT NULL,"
    " app_id INTEGER NOT NULL, expires INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS basic_app ON basic(app_id);"
    "CREATE TABLE IF NOT EXISTS revoked_grants(grant_id INTEGER PRIMARY KEY);"
    "CREATE TABLE IF NOT EXISTS nonces(nonce BLOB PRIMARY KEY, expires INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS kv(k BLOB PRIMARY KEY, v BLOB NOT NULL, expires INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS consents(user_id INTEGER NOT NULL, app_id INTEGER NOT NULL,"
    " at INTEGER NOT NULL, PRIMARY KEY(user_id, app_id)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS records(kind TEXT NOT NULL, name TEXT NOT NULL, v BLOB NOT NULL,"
    " PRIMARY KEY(kind, name)) WITHOUT ROWID;";

/*
 * Apps read inside one transaction are remembered until it ends (or the connection writes an
 * app): a transaction sees a fixed snapshot, so the memo can never serve a stale row, and a
 * group commit of 64 code exchanges reads its app once instead of 64 times.
 */
#define APP_MEMO 4

struct sq {
    struct wx_store base;
    sqlite3 *db;
    sqlite3_stmt *st[Q_COUNT];
    int memo_n, memo_next;
    struct wx_app memo[APP_MEMO];
};

static void memo_clear(struct sq *d)
{
    d->memo_n = 0;
    d->memo_next = 0;
}

/* The remembered app with this appid (appid != NULL) or row id; NULL when not remembered. */
static const struct wx_app *memo_find(struct sq *d, const char *appid, int64_t id)
{
    for (int i = 0; i < d->memo_n; i++)
        if (appid ? !strcmp(d->memo[i].appid, appid) : d->memo[i].id == id)
            return &d->memo[i];
    return NULL;
}

static void memo_put(struct sq *d, const struct wx_app *a)
{
    if (sqlite3_get_autocommit(d->db))
        return; /* outside a transaction nothing pins the snapshot */
    d->memo[d->memo_next] = *a;
    d->memo_next = (d->memo_next + 1) % APP_MEMO;
    if (d->memo_n < APP_MEMO)
        d->memo_n++;
}

static struct sq *SQ(struct wx_store *s)
{
    return (struct sq *)s;
}

/* The prepared statement for q, reset and unbound; NULL on failure. */
static sqlite3_stmt *stmt(struct wx_store *s, int q)
{
    struct sq *d = SQ(s);
    if (!d->st[q] && sqlite3_prepare_v3(d->db, sql[q], -1, SQLITE_PREPARE_PERSISTENT, &d->st[q],
                                        NULL) != SQLITE_OK)
        return NULL;
    sqlite3_reset(d->st[q]);
    sqlite3_clear_bindings(d->st[q]);
    return d->st[q];
}

static int exec(struct wx_store *s, const char *text)
{
    return sqlite3_exec(SQ(s)->db, text, NULL, NULL, NULL) == SQLITE_OK ? WX_OK : WX_ERR_STORE;
}

/* Runs a statement that returns no rows; maps constraint violations to WX_ERR_CONFLICT. */
static int run(sqlite3_stmt *q)
{
    if (!q)
        return WX_ERR_STORE;
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (rc == SQLITE_DONE)
        return WX_OK;
    return (rc & 0xff) == SQLITE_CONSTRAINT ? WX_ERR_CONFLICT : WX_ERR_STORE;
}

/* Steps a query expected to return at most one row. */
static int row(sqlite3_stmt *q)
{
    if (!q)
        return WX_ERR_STORE;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        return WX_OK;
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? WX_ERR_NOTFOUND : WX_ERR_STORE;
}

/* Copies a text column, cut to outsz - 1 bytes (the columns' limits are checked on write). */
static void col_text(sqlite3_stmt *q, int i, char *out, size_t outsz)
{
    const unsigned char *t = sqlite3_column_text(q, i);
    size_t n = t ? (size_t)sqlite3_column_bytes(q, i) : 0;
    if (n >= outsz)
        n = outsz - 1;
    if (n)
        memcpy(out, t, n);
    out[n] = '\0';
}

static void col_mac(sqlite3_stmt *q, int i, unsigned char mac[WX_CRED_MAC])
{
    const void *b = sqlite3_column_blob(q, i);
    memset(mac, 0, WX_CRED_MAC);
    if (b && sqlite3_column_bytes(q, i) == WX_CRED_MAC)
        memcpy(mac, b, WX_CRED_MAC);
}

static void sq_close(struct wx_store *s)
{
    struct sq *d = SQ(s);
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(d->st[i]);
    sqlite3_close(d->db);
    free(d);
}

static int sq_ping(struct wx_store *s)
{
    return exec(s, "SELECT 1 FROM meta LIMIT 1");
}

static int sq_batch_begin(struct wx_store *s)
{
    memo_clear(SQ(s));
    return run(stmt(s, Q_BEGIN_IMM));
}

static int sq_batch_commit(struct wx_store *s)
{
    memo_clear(SQ(s));
    return run(stmt(s, Q_COMMIT));
}

static void sq_batch_rollback(struct wx_store *s)
{
    memo_clear(SQ(s));
    if (!sqlite3_get_autocommit(SQ(s)->db))
        run(stmt(s, Q_ROLLBACK));
}

static int sq_checkpoint(struct wx_store *s)
{
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(SQ(s)->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    return rc == SQLITE_OK && done >= log ? WX_OK : WX_ERR_STORE;
}

/*
 * A read transaction around all the reads of one request: SQLite takes and drops its WAL read
 * lock (fcntl) once per transaction instead of once per statement.
 */
static int sq_read_begin(struct wx_store *s)
{
    if (!sqlite3_get_autocommit(SQ(s)->db))
        return WX_OK;
    memo_clear(SQ(s));
    return run(stmt(s, Q_BEGIN));
}

static void sq_read_end(struct wx_store *s)
{
    memo_clear(SQ(s));
    if (!sqlite3_get_autocommit(SQ(s)->db))
        run(stmt(s, Q_COMMIT));
}

static int sq_master_key(struct wx_store *s, unsigned char key[WX_KEY_LEN])
{
    sqlite3_stmt *q = stmt(s, Q_META_GET);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_text(q, 1, "master_key", -1, SQLITE_STATIC);
    int rc = row(q);
    if (rc == WX_OK) {
        if (sqlite3_column_bytes(q, 0) != WX_KEY_LEN) {
            sqlite3_reset(q);
            return WX_ERR_STORE;
        }
        memcpy(key, sqlite3_column_blob(q, 0), WX_KEY_LEN);
        sqlite3_reset(q);
        return WX_OK;
    }
    if (rc != WX_ERR_NOTFOUND)
        return rc;
    randombytes_buf(key, WX_KEY_LEN);
    q = stmt(s, Q_META_PUT);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_text(q, 1, "master_key", -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, key, WX_KEY_LEN, SQLITE_TRANSIENT);
    rc = run(q);
    if (rc == WX_ERR_CONFLICT) /* another process created it first: read theirs */
        return sq_master_key(s, key);
    return rc;
}

static void read_app(sqlite3_stmt *q, struct wx_app *a)
{
    memset(a, 0, sizeof(*a));
    a->id = sqlite3_column_int64(q, 0);
    col_text(q, 1, a->appid, sizeof a->appid);
    col_text(q, 2, a->name, sizeof a->name);
    col_text(q, 3, a->domains, sizeof a->domains);
    col_text(q, 4, a->open_account, sizeof a->open_account);
    a->kind = sqlite3_column_int(q, 5);
    a->https_only = sqlite3_column_int(q, 6);
    col_mac(q, 7, a->secret_mac);
    a->created = sqlite3_column_int64(q, 8);
    col_text(q, 9, a->menu, sizeof a->menu);
}

static int sq_app_insert(struct wx_store *s, struct wx_app *a)
{
    memo_clear(SQ(s));
    sqlite3_stmt *q = stmt(s, Q_APP_INS);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_text(q, 1, a->appid, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, a->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, a->domains, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, a->open_account, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 5, a->kind);
    sqlite3_bind_int(q, 6, a->https_only);
    sqlite3_bind_blob(q, 7, a->secret_mac, WX_CRED_MAC, SQLITE_STATIC);
    sqlite3_bind_int64(q, 8, a->created);
    sqlite3_bind_text(q, 9, a->menu, -1, SQLITE_STATIC);
    int rc = run(q);
    if (rc == WX_OK)
        a->id = sqlite3_last_insert_rowid(SQ(s)->db);
    return rc;
}

static int app_one(struct wx_store *s, sqlite3_stmt *q, struct wx_app *out)
{
    int rc = row(q);
    if (rc == WX_OK) {
        read_app(q, out);
        sqlite3_reset(q);
        memo_put(SQ(s), out);
    }
    return rc;
}

static int sq_app_by_appid(struct wx_store *s, const char *appid, struct wx_app *out)
{
    const struct wx_app *m = memo_find(SQ(s), appid, 0);
    if (m) {
        *out = *m;
        return WX_OK;
    }
    sqlite3_stmt *q = stmt(s, Q_APP_BY_APPID);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_text(q, 1, appid, -1, SQLITE_STATIC);
    return app_one(s, q, out);
}

static int sq_app_by_id(struct wx_store *s, int64_t id, struct wx_app *out)
{
    const struct wx_app *m = memo_find(SQ(s), NULL, id);
    if (m) {
        *out = *m;
        return WX_OK;
    }
    sqlite3_stmt *q = stmt(s, Q_APP_BY_ID);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_int64(q, 1, id);
    return app_one(s, q, out);
}

static int each_app(sqlite3_stmt *q, wx_app_cb cb, void *ud)
{
    if (!q)
        return WX_ERR_STORE;
    int rc;
    struct wx_app a;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        read_app(q, &a);
        cb(ud, &a);
    }
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? WX_OK : WX_ERR_STORE;
}

static int sq_app_list(struct wx_store *s, wx_app_cb cb, void *ud)
{
    return each_app(stmt(s, Q_APP_LIST), cb, ud);
}

static int sq_app_delete(struct wx_store *s, int64_t id)
{
    memo_clear(SQ(s));
    static const char *const tables[] = {"follows", "consents", "codes",
                                         "access",  "grants",   "basic"};
    char text[192];
    int rc = exec(s, "SAVEPOINT del");
    if (rc == WX_OK) {
        snprintf(text, sizeof text,
                 "DELETE FROM revoked_grants WHERE grant_id IN (SELECT id FROM grants WHERE "
                 "app_id=%lld)",
                 (long long)id);
        rc = exec(s, text);
    }
    for (size_t i = 0; rc == WX_OK && i < sizeof tables / sizeof tables[0]; i++) {
        snprintf(text, sizeof text, "DELETE FROM %s WHERE app_id=%lld", tables[i], (long long)id);
        rc = exec(s, text);
    }
    if (rc == WX_OK) {
        snprintf(text, sizeof text, "DELETE FROM apps WHERE id=%lld", (long long)id);
        rc = exec(s, text);
    }
    if (rc)
        exec(s, "ROLLBACK TO del");
    exec(s, "RELEASE del");
    return rc;
}

static int sq_app_update(struct wx_store *s, const struct wx_app *a)
{
    memo_clear(SQ(s));
    sqlite3_stmt *q = stmt(s, Q_APP_UPD);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_int64(q, 1, a->id);
    sqlite3_bind_text(q, 2, a->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, a->domains, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, a->open_account, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, a->menu, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 6, a->kind);
    sqlite3_bind_int(q, 7, a->https_only);
    int rc = run(q);
    return rc == WX_OK && sqlite3_changes(SQ(s)->db) == 0 ? WX_ERR_NOTFOUND : rc;
}

static int sq_app_set_secret(struct wx_store *s, int64_t id, const unsigned char mac[WX_CRED_MAC])
{
    memo_clear(SQ(s));
    sqlite3_stmt *q = stmt(s, Q_APP_SECRET);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_int64(q, 1, id);
    sqlite3_bind_blob(q, 2, mac, WX_CRED_MAC, SQLITE_STATIC);
    if (exec(s, "SAVEPOINT sec"))
        return WX_ERR_STORE;
    int rc = run(q);
    if (rc == WX_OK && sqlite3_changes(SQ(s)->db) == 0)
        rc = WX_ERR_NOTFOUND;
    if (rc == WX_OK) {
        char text[256];
        snprintf(text, sizeof text,
                 "UPDATE grants SET revoked=1 WHERE app_id=%lld; INSERT OR IGNORE INTO "
                 "revoked_grants SELECT id FROM grants WHERE app_id=%lld; DELETE FROM basic "
                 "WHERE app_id=%lld;",
                 (long long)id, (long long)id, (long long)id);
        rc = exec(s, text);
    }
    if (rc)
        exec(s, "ROLLBACK TO sec");
    exec(s, "RELEASE sec");
    return rc;
}

static void read_user(sqlite3_stmt *q, struct wx_user *u)
{
    memset(u, 0, sizeof(*u));
    u->id = sqlite3_column_int64(q, 0);
    col_text(q, 1, u->nickname, sizeof u->nickname);
    col_text(q, 2, u->avatar, sizeof u->avatar);
    u->sex = sqlite3_column_int(q, 3);
    u->snapshot = sqlite3_column_int(q, 4);
    u->created = sqlite3_column_int64(q, 5);
}

static int sq_user_insert(struct wx_store *s, struct wx_user *u)
{
    sqlite3_stmt *q = stmt(s, Q_USER_INS);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_text(q, 1, u->nickname, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, u->avatar, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 3, u->sex);
    sqlite3_bind_int(q, 4, u->snapshot);
    sqlite3_bind_int64(q, 5, u->created);
    int rc = run(q);
    if (rc == WX_OK)
        u->id = sqlite3_last_insert_rowid(SQ(s)->db);
    return rc;
}

static int sq_user_get(struct wx_store *s, int64_t id, struct wx_user *out)
{
    sqlite3_stmt *q = stmt(s, Q_USER_GET);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_int64(q, 1, id);
    int rc = row(q);
    if (rc == WX_OK) {
        read_user(q, out);
        sqlite3_reset(q);
    }
    return rc;
}

static int sq_user_list(struct wx_store *s, wx_user_cb cb, void *ud)
{
    sqlite3_stmt *q = stmt(s, Q_USER_LIST);
    if (!q)
        return WX_ERR_STORE;
    int rc;
    struct wx_user u;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        read_user(q, &u);
        cb(ud, &u);
    }
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? WX_OK : WX_ERR_STORE;
}

static int sq_user_set_snapshot(struct wx_store *s, int64_t id, int snapshot)
{
    sqlite3_stmt *q = stmt(s, Q_USER_SNAP);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_int64(q, 1, id);
    sqlite3_bind_int(q, 2, snapshot);
    int rc = run(q);
    return rc == WX_OK && sqlite3_changes(SQ(s)->db) == 0 ? WX_ERR_NOTFOUND : rc;
}

/* Runs q with (a, b[, c]) bound; for the (user, app) tables. */
static int pair_run(struct wx_store *s, int qi, int64_t a, int64_t b, const int64_t *c)
{
    sqlite3_stmt *q = stmt(s, qi);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_int64(q, 1, a);
    sqlite3_bind_int64(q, 2, b);
    if (c)
        sqlite3_bind_int64(q, 3, *c);
    return run(q);
}

/* Reads the one integer that q returns for (a, b). */
static int pair_get(struct wx_store *s, int qi, int64_t a, int64_t b, int64_t *out)
{
    sqlite3_stmt *q = stmt(s, qi);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_int64(q, 1, a);
    sqlite3_bind_int64(q, 2, b);
    int rc = row(q);
    if (rc == WX_OK) {
        *out = sqlite3_column_int64(q, 0);
        sqlite3_reset(q);
    }
    return rc;
}

static int sq_follow_set(struct wx_store *s, int64_t user_id, int64_t app_id, int on, int64_t now)
{
    return pair_run(s, on ? Q_FOLLOW_ON : Q_FOLLOW_OFF, user_id, app_id, on ? &now : NULL);
}

static int sq_follow_get(struct wx_store *s, int64_t user_id, int64_t app_id, int64_t *since)
{
    return pair_get(s, Q_FOLLOW_GET, user_id, app_id, since);
}

static int sq_follow_list(struct wx_store *s, int64_t user_id, wx_app_cb cb, void *ud)
{
    sqlite3_stmt *q = stmt(s, Q_FOLLOW_LIST);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_int64(q, 1, user_id);
    return each_app(q, cb, ud);
}

static int sq_code_insert(struct wx_store *s, struct wx_code *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *q = stmt(s, Q_CODE_INS);
        if (!q)
            return WX_ERR_STORE;
        sqlite3_bind_blob(q, 1, c[i].mac, WX_CRED_MAC, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, c[i].app_id);
        sqlite3_bind_int64(q, 3, c[i].user_id);
        sqlite3_bind_int(q, 4, c[i].scope);
        sqlite3_bind_int(q, 5, c[i].snapshot);
        sqlite3_bind_int64(q, 6, c[i].expires);
        int rc = run(q);
        if (rc)
            return rc;
        c[i].id = sqlite3_last_insert_rowid(SQ(s)->db);
    }
    return WX_OK;
}

/*
 * codes.used is 0 until the code is redeemed, then the id of the grant it produced: a replay
 * finds that grant without an index on grants, and revokes it.
 */
static int sq_code_redeem(struct wx_store *s, int64_t id, const unsigned char mac[WX_CRED_MAC],
                          int64_t app_id, int64_t now, struct wx_grant *g, struct wx_access *ac)
{
    sqlite3_stmt *q = stmt(s, Q_CODE_GET);
    unsigned char stored[WX_CRED_MAC];
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_int64(q, 1, id);
    int rc = row(q);
    if (rc)
        return rc;
    col_mac(q, 0, stored);
    int64_t code_app = sqlite3_column_int64(q, 1), expires = sqlite3_column_int64(q, 5);
    int64_t used = sqlite3_column_int64(q, 6);
    g->app_id = code_app;
    g->user_id = sqlite3_column_int64(q, 2);
    g->scope = sqlite3_column_int(q, 3);
    g->snapshot = sqlite3_column_int(q, 4);
    g->code_id = id;
    sqlite3_reset(q);
    if (sodium_memcmp(stored, mac, WX_CRED_MAC) != 0 || code_app != app_id)
        return WX_ERR_NOTFOUND;
    if (used) {
        /* Replay: revoke what the first redemption produced (RFC 6749 §4.1.2). */
        q = stmt(s, Q_CODE_REVOKE);
        if (!q)
            return WX_ERR_STORE;
        sqlite3_bind_int64(q, 1, used);
        rc = run(q);
        if (rc == WX_OK && (q = stmt(s, Q_GRANT_REVOKED)) != NULL) {
            sqlite3_bind_int64(q, 1, used);
            rc = run(q);
        }
        return rc ? rc : WX_ERR_CONFLICT;
    }
    if (expires <= now)
        return WX_ERR_EXPIRED;
    if ((rc = s->ops->grant_insert(s, g)))
        return rc;
    q = stmt(s, Q_CODE_USE);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_int64(q, 1, id);
    sqlite3_bind_int64(q, 2, g->id);
    if ((rc = run(q)))
        return rc;
    /* The writer holds the write lock, so the row cannot have changed since the SELECT. */
    if (sqlite3_changes(SQ(s)->db) != 1)
        return WX_ERR_STORE;
    if (!ac)
        return WX_OK;
    wx_access_of_grant(ac, g);
    return s->ops->access_insert(s, ac);
}

static int sq_grant_insert(struct wx_store *s, struct wx_grant *g)
{
    sqlite3_stmt *q = stmt(s, Q_GRANT_INS);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_blob(q, 1, g->mac, WX_CRED_MAC, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, g->app_id);
    sqlite3_bind_int64(q, 3, g->user_id);
    sqlite3_bind_int64(q, 4, g->code_id);
    sqlite3_bind_int(q, 5, g->scope);
    sqlite3_bind_int(q, 6, g->snapshot);
    sqlite3_bind_int64(q, 7, g->created);
    sqlite3_bind_int64(q, 8, g->expires);
    int rc = run(q);
    if (rc == WX_OK)
        g->id = sqlite3_last_insert_rowid(SQ(s)->db);
    return rc;
}

static int sq_grant_get(struct wx_store *s, int64_t id, struct wx_grant *g)
{
    sqlite3_stmt *q = stmt(s, Q_GRANT_GET);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_int64(q, 1, id);
    int rc = row(q);
    if (rc)
        return rc;
    memset(g, 0, sizeof(*g));
    g->id = id;
    col_mac(q, 0, g->mac);
    g->app_id = sqlite3_column_int64(q, 1);
    g->user_id = sqlite3_column_int64(q, 2);
    g->code_id = sqlite3_column_int64(q, 3);
    g->scope = sqlite3_column_int(q, 4);
    g->snapshot = sqlite3_column_int(q, 5);
    g->created = sqlite3_column_int64(q, 6);
    g->expires = sqlite3_column_int64(q, 7);
    g->revoked = sqlite3_column_int(q, 8);
    sqlite3_reset(q);
    return WX_OK;
}

static int sq_access_insert(struct wx_store *s, struct wx_access *a)
{
    sqlite3_stmt *q = stmt(s, Q_ACCESS_INS);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_blob(q, 1, a->mac, WX_CRED_MAC, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, a->grant_id);
    sqlite3_bind_int64(q, 3, a->app_id);
    sqlite3_bind_int64(q, 4, a->user_id);
    sqlite3_bind_int(q, 5, a->scope);
    sqlite3_bind_int64(q, 6, a->expires);
    sqlite3_bind_int(q, 7, a->snapshot);
    int rc = run(q);
    if (rc == WX_OK)
        a->id = sqlite3_last_insert_rowid(SQ(s)->db);
    return rc;
}

static int sq_access_get(struct wx_store *s, int64_t id, struct wx_access *a)
{
    sqlite3_stmt *q = stmt(s, Q_ACCESS_GET);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_int64(q, 1, id);
    int rc = row(q);
    if (rc)
        return rc;
    memset(a, 0, sizeof(*a));
    a->id = id;
    col_mac(q, 0, a->mac);
    a->grant_id = sqlite3_column_int64(q, 1);
    a->app_id = sqlite3_column_int64(q, 2);
    a->user_id = sqlite3_column_int64(q, 3);
    a->scope = sqlite3_column_int(q, 4);
    a->expires = sqlite3_column_int64(q, 5);
    a->revoked = sqlite3_column_int(q, 6);
    a->snapshot = sqlite3_column_int(q, 7);
    sqlite3_reset(q);
    return WX_OK;
}

static int sq_basic_insert(struct wx_store *s, struct wx_basic *b, int64_t now, int64_t grace)
{
    sqlite3_stmt *q = stmt(s, Q_BASIC_SHORTEN);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_int64(q, 1, b->app_id);
    sqlite3_bind_int64(q, 2, now + grace);
    int rc = run(q);
    if (rc)
        return rc;
    q = stmt(s, Q_BASIC_INS);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_blob(q, 1, b->mac, WX_CRED_MAC, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, b->app_id);
    sqlite3_bind_int64(q, 3, b->expires);
    rc = run(q);
    if (rc == WX_OK)
        b->id = sqlite3_last_insert_rowid(SQ(s)->db);
    return rc;
}

static int sq_basic_get(struct wx_store *s, int64_t id, struct wx_basic *b)
{
    sqlite3_stmt *q = stmt(s, Q_BASIC_GET);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_int64(q, 1, id);
    int rc = row(q);
    if (rc)
        return rc;
    b->id = id;
    col_mac(q, 0, b->mac);
    b->app_id = sqlite3_column_int64(q, 1);
    b->expires = sqlite3_column_int64(q, 2);
    sqlite3_reset(q);
    return WX_OK;
}

static int sq_consent_set(struct wx_store *s, int64_t user_id, int64_t app_id, int64_t now)
{
    return pair_run(s, Q_CONSENT_SET, user_id, app_id, &now);
}

static int sq_consent_get(struct wx_store *s, int64_t user_id, int64_t app_id, int64_t *at)
{
    return pair_get(s, Q_CONSENT_GET, user_id, app_id, at);
}

static int sq_nonce_use(struct wx_store *s, const unsigned char nonce[16], int64_t expires)
{
    sqlite3_stmt *q = stmt(s, Q_NONCE_INS);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_blob(q, 1, nonce, 16, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, expires);
    return run(q);
}

static int sq_kv_put(struct wx_store *s, const unsigned char key[16], const void *value, size_t len,
                     int64_t expires)
{
    sqlite3_stmt *q = stmt(s, Q_KV_PUT);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_blob(q, 1, key, 16, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, len ? value : "", (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, expires);
    return run(q);
}

static sqlite3_stmt *rec_stmt(struct wx_store *s, int q, const char *kind, const char *name)
{
    sqlite3_stmt *st = stmt(s, q);
    if (st) {
        sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
        if (name)
            sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    }
    return st;
}

static int sq_rec_put(struct wx_store *s, const char *kind, const char *name, const void *value,
                      size_t len, int create)
{
    if (!wx_store_rec_ok(kind, name, len))
        return WX_ERR_LIMIT;
    sqlite3_stmt *q = rec_stmt(s, create ? Q_REC_INS : Q_REC_PUT, kind, name);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_blob(q, 3, len ? value : "", (int)len, SQLITE_STATIC);
    return run(q);
}

static int sq_rec_get(struct wx_store *s, const char *kind, const char *name, void *out,
                      size_t outsz, size_t *len)
{
    if (!wx_store_rec_ok(kind, name, 0))
        return WX_ERR_NOTFOUND;
    sqlite3_stmt *q = rec_stmt(s, Q_REC_GET, kind, name);
    int rc = row(q);
    if (rc != WX_OK)
        return rc;
    size_t n = (size_t)sqlite3_column_bytes(q, 0);
    if (n > outsz) {
        rc = WX_ERR_LIMIT;
    } else {
        if (n)
            memcpy(out, sqlite3_column_blob(q, 0), n);
        *len = n;
    }
    sqlite3_reset(q);
    return rc;
}

static int sq_rec_list(struct wx_store *s, const char *kind, wx_rec_cb cb, void *ud)
{
    sqlite3_stmt *q = rec_stmt(s, Q_REC_LIST, kind, NULL);
    if (!q)
        return WX_ERR_STORE;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        cb(ud, (const char *)sqlite3_column_text(q, 0), sqlite3_column_blob(q, 1),
           (size_t)sqlite3_column_bytes(q, 1));
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? WX_OK : WX_ERR_STORE;
}

static int sq_rec_delete(struct wx_store *s, const char *kind, const char *name)
{
    if (!wx_store_rec_ok(kind, name, 0))
        return WX_ERR_NOTFOUND;
    int rc = run(rec_stmt(s, Q_REC_DEL, kind, name));
    if (rc == WX_OK && sqlite3_changes(SQ(s)->db) == 0)
        rc = WX_ERR_NOTFOUND;
    return rc;
}

static int sq_kv_get(struct wx_store *s, const unsigned char key[16], int64_t now, void *out,
                     size_t outsz, size_t *len)
{
    sqlite3_stmt *q = stmt(s, Q_KV_GET);
    if (!q)
        return WX_ERR_STORE;
    sqlite3_bind_blob(q, 1, key, 16, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, now);
    int rc = row(q);
    if (rc != WX_OK)
        return rc;
    size_t n = (size_t)sqlite3_column_bytes(q, 0);
    const void *v = sqlite3_column_blob(q, 0);
    if (n > outsz) {
        rc = WX_ERR_LIMIT;
    } else {
        if (n)
            memcpy(out, v, n);
        *len = n;
    }
    sqlite3_reset(q);
    return rc;
}

/*
 * Rows are appended in id order with the same lifetime, so expired rows sit at the front:
 * look only at the oldest `limit` rows, which keeps each purge bounded and index-free.
 */
static int purge_oldest(struct wx_store *s, const char *table, int64_t now, int limit,
                        int64_t *deleted)
{
    char text[256];
    snprintf(text, sizeof text,
             "DELETE FROM %s WHERE id IN (SELECT id FROM (SELECT id, expires FROM %s ORDER BY id "
             "LIMIT %d) WHERE expires < %lld)",
             table, table, limit, (long long)now);
    int rc = exec(s, text);
    if (rc == WX_OK)
        *deleted += sqlite3_changes(SQ(s)->db);
    return rc;
}

static int sq_purge(struct wx_store *s, int64_t now, int limit, int64_t *deleted)
{
    int rc = WX_OK;
    *deleted = 0;
    static const char *const tables[] = {"codes", "access", "grants"};
    for (size_t i = 0; rc == WX_OK && i < 3; i++)
        rc = purge_oldest(s, tables[i], now, limit, deleted);
    if (rc == WX_OK) {
        char text[512];
        snprintf(text, sizeof text,
                 "DELETE FROM basic WHERE expires < %lld; DELETE FROM nonces WHERE expires < %lld;"
                 "DELETE FROM kv WHERE expires < %lld;"
                 "DELETE FROM revoked_grants WHERE grant_id < (SELECT IFNULL(MIN(id), "
                 "9223372036854775807) FROM grants)",
                 (long long)now, (long long)now, (long long)now);
        rc = exec(s, text);
    }
    return rc;
}

static const struct wx_store_ops sqlite_ops = {
    .name = "sqlite",
    .atomic_batches = 1,
    .close = sq_close,
    .ping = sq_ping,
    .batch_begin = sq_batch_begin,
    .batch_commit = sq_batch_commit,
    .batch_rollback = sq_batch_rollback,
    .checkpoint = sq_checkpoint,
    .read_begin = sq_read_begin,
    .read_end = sq_read_end,
    .master_key = sq_master_key,
    .app_insert = sq_app_insert,
    .app_by_appid = sq_app_by_appid,
    .app_by_id = sq_app_by_id,
    .app_list = sq_app_list,
    .app_delete = sq_app_delete,
    .app_set_secret = sq_app_set_secret,
    .app_update = sq_app_update,
    .user_insert = sq_user_insert,
    .user_get = sq_user_get,
    .user_list = sq_user_list,
    .user_set_snapshot = sq_user_set_snapshot,
    .follow_set = sq_follow_set,
    .follow_get = sq_follow_get,
    .follow_list = sq_follow_list,
    .code_insert = sq_code_insert,
    .code_redeem = sq_code_redeem,
    .grant_insert = sq_grant_insert,
    .grant_get = sq_grant_get,
    .access_insert = sq_access_insert,
    .access_get = sq_access_get,
    .basic_insert = sq_basic_insert,
    .basic_get = sq_basic_get,
    .nonce_use = sq_nonce_use,
    .kv_put = sq_kv_put,
    .kv_get = sq_kv_get,
    .rec_put = sq_rec_put,
    .rec_get = sq_rec_get,
    .rec_list = sq_rec_list,
    .rec_delete = sq_rec_delete,
    .consent_set = sq_consent_set,
    .consent_get = sq_consent_get,
    .purge = sq_purge,
};

int wx_store_open_sqlite(struct wx_store **out, const char *path, char *err, size_t errsz)
{
    struct sq *d = calloc(1, sizeof(*d));
    if (!d)
        return WX_ERR_NOMEM;
    d->base.ops = &sqlite_ops;
    int rc = sqlite3_open_v2(
        path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errsz, "cannot open database %s: %s", path,
                 d->db ? sqlite3_errmsg(d->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(d->db, 5000);
    /*
     * Reads come through the memory map; the page cache holds written pages. A small one: at
     * the end of every write transaction SQLite walks the cache's hash table, and with the
     * 64 MiB used before, that walk cost about 7% of a code exchange's CPU time.
     */
    if (sqlite3_exec(d->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-4096;"
                     "PRAGMA mmap_size=1073741824; PRAGMA temp_store=MEMORY;",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(d->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errsz, "cannot initialise database %s: %s", path, sqlite3_errmsg(d->db));
        goto fail;
    }
    /* Databases created before access.snapshot existed (the error "duplicate column" is fine). */
    sqlite3_exec(d->db, "ALTER TABLE access ADD COLUMN snapshot INTEGER NOT NULL DEFAULT 0", NULL,
                 NULL, NULL);
    *out = &d->base;
    return WX_OK;
fail:
    sqlite3_close(d->db);
    free(d);
    return WX_ERR_STORE;
}
