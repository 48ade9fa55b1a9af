/*
 * store_redis.c — the shared store: struct wx_store_ops on Redis (hiredis 0.14, RESP2), so that
 * several providers and gates serve the same codes, tokens, apps and users. The SQLite backend
 * (store_sqlite.c) is the reference for every operation's meaning.
 *
 * URL: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=P&timeout_ms=N] (password
 * percent-decoded; port 6379, db 0, prefix "wx:", timeout 1000 ms unless given), or
 * redis-cluster://[[USER]:PASSWORD@]HOST[:PORT],...[?...] (Redis Cluster: redis_cluster.c routes
 * each command to its slot's master and follows MOVED and ASK), or
 * redis-sentinel://[[USER]:PASSWORD@]HOST[:PORT],.../MASTER[?db=N&...]: at every connect the
 * sentinels are asked for the master and ROLE confirms it; a connection that breaks or is
 * answered -READONLY (the master was demoted) is dropped, so the next call finds the new one. The
 * timeout bounds connecting and every command: an unreachable or hung Redis gives WX_ERR_STORE
 * within it, the connection is dropped, and a later call connects again by itself (at once after a
 * refused connection; after a timeout, calls fail without waiting for timeout_ms, so that a
 * request making several calls waits once). A connection Redis closed (a restart) is noticed
 * before a command is sent on it. Every value is sent as its own argument (redisCommandArgv:
 * binary-safe, never formatted into a command). The connection, the commands and the URL parser
 * are redis_conn.c; this file is the key layout, the scripts and the operations, except the
 * registry's (apps, users, follows, consents, basic tokens: store_redis_registry.c; what the two
 * files share is in store_redis.h).
 *
 * Key layout (P = the prefix; {..} is the Redis Cluster hash tag, so each atomic step, one Lua
 * script, touches a single slot and declares every key it touches):
 *   P master_key              STRING 32 bytes, SET NX once, then stable
 *   P nonce:<hex>             STRING "1", SET NX EXAT
 *   P kv:<hex>                STRING 8-byte big-endian expires, then the value; SET EXAT
 *   the registry, one slot {r}: small and read-mostly, changed by admin calls
 *   P{r}:seq:app, :seq:user   INCR counters: apps and users get 1, 2, 3... like SQLite rowids
 *   P{r}:app:<id>             HASH appid name dom oa menu kind https mac created gen
 *   P{r}:appid:<appid>        STRING the app's id (the unique index: SET NX)
 *   P{r}:apps, P{r}:users     ZSET ids scored by id (app_list, user_list: id order)
 *   P{r}:user:<id>            HASH nick avatar sex snap created
 *   P{r}:fol:<app>            HASH user id -> since (the app's followers)
 *   P{r}:consent:<app>        HASH user id -> at
 *   P{r}:basic:<id>           HASH mac app exp gen                               (TTL)
 *   P{r}:basiclast:<app>      STRING id of the app's newest basic token
 *   credentials, spread over slots by their family F = id >> 32 (hex):
 *   P{F}:code:<id>            STRING mac, expires (20 characters), then B       (TTL)
 *   P{F}:grant:<id>           STRING mac, first token's mac (or zeros), then
 *                                    B " code created exp first-token-exp gen"  (TTL)
 *   P{F}:access:<id>          STRING mac, then B " grant exp gen"                (TTL)
 *   where B = " app user scope snap", what a code hands its grant and the grant its tokens
 *   P{F}:rev                  SET the family's revoked grant ids (revoked_grants) (TTL)
 *
 * Ids: codes, grants and basic tokens take random 62-bit ids (1 .. 2^62-1), created only if
 * free (a script checks EXISTS), so no counter key serialises the hot path across the cluster;
 * the id is masked inside the credential anyway. Redeeming code X creates grant X: the replay
 * script knows the grant's key without reading it, and a grant and a code never share an id
 * (both creations check the other kind), so grant X exists exactly when code X was redeemed:
 * that is the code's "used" mark, and the SET NX that makes the grant is what lets only one of
 * many concurrent redemptions through.
 *
 * Codes, grants and access tokens never change once made, so each is one string, not a hash:
 * the MAC's WX_CRED_MAC bytes, then " <decimal>" per field in the order above (pack and unpack
 * below; the scripts append gen, which they learn in Redis). A code's expiry comes first, in a
 * fixed width, so that the redeem script reads it and B with string.sub: the grant it makes is
 * its arguments' MAC, the code's B and the arguments' tail, one concatenation (no HMGET of six
 * fields, no table.concat). One SET NX EXAT makes a record where a hash took three commands
 * (EXISTS, HSET, EXPIREAT); in the redeem script, which makes both, that took Redis's CPU per
 * code exchange from ~29 to ~22 us. An access token takes its grant's family (the high 30
 * bits) and 32 random bits, so token, grant and revoked set share one slot.
 *
 * The first access token of a grant (the one the code exchange hands out) is part of the grant's
 * record, its id the grant's with RD_FIRST set: the redeem script then writes one key, so Redis
 * neither runs a second SET nor wraps the two in MULTI/EXEC for the AOF (its instructions per
 * exchange 104k -> 81k). It lives, in Redis, as long as its grant; its own expiry is in the
 * record. Tokens from refreshes are access keys of their own.
 *
 * Revocation: a replayed code puts its grant into P{F}:rev; access_get reads the token and
 * that set in one round trip. app_set_secret bumps the app's generation (gen); grants and basic
 * tokens record the gen they were issued under (access tokens copy their grant's), and
 * grant_get, access_get and basic_get compare it with the app's: older means revoked (basic:
 * gone). A deleted app has no gen: its codes, grants and tokens read as not found.
 *
 * Lifetimes: credentials and nonces expire in Redis at max(expires, clock) + RD_GRACE, the
 * day the provider's purge keeps expired rows (so an expired token still answers 42001, not
 * 40001); kv values at max(expires, clock) + RD_KV_MARGIN. Every op still compares expires
 * with the caller's now (tests move a test clock). purge() is therefore a no-op: every key
 * with a lifetime has a TTL, and what has none (registry, pointers) is removed by the call
 * that makes it obsolete.
 *
 * Batches: Redis has no multi-statement transaction here. batch_begin and read_begin only make
 * sure a connection is up (so a batch fails fast when Redis is down); batch_commit does
 * nothing; batch_rollback does nothing: writes already made stay made, each op being atomic
 * on its own. A job retried after a failed batch therefore sees its own earlier writes (a code
 * it had redeemed answers WX_ERR_CONFLICT: fail closed).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_mux.h"
#include "store_redis.h"

#define RD_KV_MARGIN 60 /* seconds a kv value outlives it (clock differences) */

/*
 * The redeem script compares the stored MAC with the presented one with Lua's ==, whose time may
 * depend on how much of the two agree. That reveals nothing usable (SECURITY.md rule 4): both are
 * keyed BLAKE2b digests of a secret under the server's key (cred.h), so the presenter cannot
 * compute the digest of any guess and learns nothing from how far it agrees with the stored
 * one, and a whole stored MAC is no credential (rule 3: the store keeps hashes). This is the
 * "double HMAC" comparison; the SHA-1 of each side it used to add cost Redis ~7% of its
 * instructions per code exchange (redis.sha1hex twice) and protected nothing more.
 */
static const char *const lua[L_COUNT] = {
    /* KEYS: record to create, its twin (code <-> grant of that id) or its grant (access).
     * ARGV: expire-at, "twin" | "grant", gen, "gen" (the record takes " gen": grants, tokens)
     * | "raw" (codes), the packed record. 0 when the id is taken. */
    [L_NEW] = "local gen = ARGV[3]\n"
              "if ARGV[2] == 'twin' then\n"
              "  if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end\n"
              "else gen = string.match(redis.call('GET', KEYS[2]) or '', ' (%d+)$') or '0' end\n"
              "local v = ARGV[5]\n"
              "if ARGV[4] == 'gen' then v = v .. ' ' .. gen end\n"
              "return redis.call('SET', KEYS[1], v, 'NX', 'EXAT', ARGV[1]) and 1 or 0\n",
    /* KEYS: code, grant of the same id, the family's revoked set. ARGV: mac, " <app id> ", now,
     * the grant's MAC and its first token's (64 bytes), the grant's tail
     * " code created exp first-token-exp gen", its expire-at, id. {0 ok | 1 not found |
     * 2 expired | 3 used (its grant now revoked), B} (B: the code's " app user scope snap").
     * The grant's SET NX is the redemption (the top); the checks before it only read. */
    [L_REDEEM] =
        "local c = redis.call('GET', KEYS[1])\n"
        "if not c or string.sub(c, 1, 32) ~= ARGV[1] then return {1} end\n"
        "local b = string.sub(c, 53)\n"
        "if string.sub(b, 1, #ARGV[2]) ~= ARGV[2] then return {1} end\n"
        "local function replay()\n"
        "  local t = redis.call('EXPIRETIME', KEYS[2])\n"
        "  if t == -2 then return nil end\n"
        "  redis.call('SADD', KEYS[3], ARGV[7])\n"
        "  local r = redis.call('EXPIRETIME', KEYS[3])\n"
        "  if t > 0 and (r < 0 or t > r) then redis.call('EXPIREAT', KEYS[3], t) end\n"
        "  return {3, b}\n"
        "end\n"
        "if tonumber(string.sub(c, 33, 52)) <= tonumber(ARGV[3]) then return replay() or {2, b} "
        "end\n"
        "if not redis.call('SET', KEYS[2], ARGV[4] .. b .. ARGV[5], 'NX', 'EXAT', ARGV[6]) then\n"
        "  return replay()\n"
        "end\n"
        "return {0, b}\n",
    /* KEYS: record, id list, unique index (optional). ARGV: id, field, value... 0: taken. */
    [L_REG_NEW] = "if KEYS[3] and not redis.call('SET', KEYS[3], ARGV[1], 'NX') then return 0 end\n"
                  "redis.call('HSET', KEYS[1], unpack(ARGV, 2))\n"
                  "redis.call('ZADD', KEYS[2], ARGV[1], ARGV[1])\n"
                  "return 1\n",
    /* KEYS: record. ARGV: "1" to bump its generation, field, value... 0: no such record. */
    [L_REG_SET] = "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
                  "if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end\n"
                  "if ARGV[1] == '1' then redis.call('HINCRBY', KEYS[1], 'gen', 1) end\n"
                  "return 1\n",
    /* KEYS: app, appid index, app list, followers, consents, newest basic token. ARGV: id. */
    [L_APP_DEL] = "if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end\n"
                  "redis.call('DEL', KEYS[1], KEYS[4], KEYS[5], KEYS[6])\n"
                  "redis.call('ZREM', KEYS[3], ARGV[1])\n"
                  "return 1\n",
    /* KEYS: the app's newest-token pointer, new token, previous token (as read before), app.
     * ARGV: previous id ("" none), new id, now + grace, expire-at, mac, app id, expires.
     * 1 ok, 2 the pointer moved meanwhile, 3 id taken. Earlier tokens were capped when their
     * successor came, so capping the previous one is SQLite's "all of the app's". */
    [L_BASIC_NEW] =
        "if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 2 end\n"
        "if redis.call('EXISTS', KEYS[2]) == 1 then return 3 end\n"
        "if ARGV[1] ~= '' then\n"
        "  local e = redis.call('HGET', KEYS[3], 'exp')\n"
        "  if e and tonumber(e) > tonumber(ARGV[3]) then redis.call('HSET', KEYS[3], 'exp',\n"
        "    ARGV[3]) end\n"
        "end\n"
        "redis.call('HSET', KEYS[2], 'mac', ARGV[5], 'app', ARGV[6], 'exp', ARGV[7], 'gen',\n"
        "  redis.call('HGET', KEYS[4], 'gen') or '0')\n"
        "redis.call('EXPIREAT', KEYS[2], ARGV[4])\n"
        "redis.call('SET', KEYS[1], ARGV[2])\n"
        "return 1\n",
};

_Static_assert(L_COUNT <= WX_RC_MAX_SCRIPTS, "more scripts than struct wx_rc holds");

/* ---- times and ids ---- */

/* A credential id's family F = id >> 32: its keys' hash tag (see the top). */
static unsigned long long fam(int64_t id)
{
    return (unsigned long long)((uint64_t)id >> 32);
}

/* ---- connection-level ops ---- */

static void rd_close(struct wx_store *s)
{
    struct rd *d = RD(s);
    wx_rc_close(&d->conn);
    free(d);
}

static int rd_ping(struct wx_store *s)
{
    struct wx_rc_args a;
    redisReply *r;
    wx_rc_arg_cmd(&a, "PING");
    int rc = wx_rc_call(&RD(s)->conn, &a, &r);
    if (rc == WX_OK) {
        rc = r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "PONG") ? WX_OK : WX_ERR_STORE;
        freeReplyObject(r);
    }
    return rc;
}

/* From now on, the process's shared pipelined connection to this server (store.h). */
static int rd_share(struct wx_store *s)
{
    struct rd *d = RD(s);
    if (d->conn.nseeds) { /* a cluster: each node's connection shared */
        int rc = wx_cluster_share(&d->conn);
        d->shared = rc == WX_OK;
        return rc;
    }
    if (!d->conn.mux) {
        struct wx_mux *m = wx_mux_get(&d->conn);
        if (!m)
            return WX_ERR_NOMEM;
        wx_rc_close(&d->conn); /* its own connection and password (the mux has a copy) */
        d->conn.mux = m;
    }
    d->shared = 1;
    return WX_OK;
}

/* Begins a batch: only makes sure Redis is reachable (see the top). */
static int rd_begin(struct wx_store *s)
{
    return wx_rc_ready(&RD(s)->conn);
}

/* Begins a group of reads: sees every write made before, so the cached apps go stale. */
static int rd_read_begin(struct wx_store *s)
{
    wx_rd_apps_changed(RD(s));
    return rd_begin(s);
}

static int rd_commit(struct wx_store *s)
{
    return WX_OK;
}

static void rd_end(struct wx_store *s) {}

static int rd_master_key(struct wx_store *s, unsigned char key[WX_KEY_LEN])
{
    struct rd *d = RD(s);
    struct wx_rc_args a;
    redisReply *r;
    for (int i = 0; i < 2; i++) {
        wx_rc_arg_cmd(&a, "GET");
        wx_rc_arg_key(&d->conn, &a, "master_key");
        if (wx_rc_call(&d->conn, &a, &r))
            return WX_ERR_STORE;
        int rc = r->type == REDIS_REPLY_STRING && r->len == WX_KEY_LEN ? WX_OK : WX_ERR_STORE;
        if (rc == WX_OK)
            memcpy(key, r->str, WX_KEY_LEN);
        int missing = r->type == REDIS_REPLY_NIL;
        freeReplyObject(r);
        if (!missing)
            return rc;
        randombytes_buf(key, WX_KEY_LEN);
        wx_rc_arg_cmd(&a, "SET");
        wx_rc_arg_key(&d->conn, &a, "master_key");
        wx_rc_arg_bin(&a, key, WX_KEY_LEN);
        wx_rc_arg_str(&a, "NX");
        rc = wx_rc_call(&d->conn, &a, &r);
        if (rc)
            return rc;
        missing = r->type == REDIS_REPLY_NIL; /* another process created it first: read it */
        freeReplyObject(r);
        if (!missing)
            return WX_OK;
    }
    return WX_ERR_STORE;
}

/* ---- codes, grants, access tokens ---- */

/*
 * A record's numbers, in their strings' order (the top): B's first, so that a code's B is the
 * start of its grant's and its tokens'.
 */
enum { B_APP, B_USER, B_SCOPE, B_SNAP, B_N };
enum { G_CODE = B_N, G_CREATED, G_EXP, G_FIRST_EXP, G_GEN, G_N };
enum { A_GRANT = B_N, A_EXP, A_GEN, A_N };
#define RD_PACKED   (2 * WX_CRED_MAC + (1 + WX_RC_I64_LEN) * G_N)
#define RD_CODE_EXP 20 /* a code's expiry: sign or 0, then 19 digits (string.sub 33..52) */
#define RD_CODE_B   (WX_CRED_MAC + RD_CODE_EXP)

/* " <decimal>" per number of v[0..n) at buf; the length. */
static size_t pack_nums(char *buf, const int64_t *v, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        buf[len++] = ' ';
        len += wx_rc_fmt_i64(buf + len, v[i]);
    }
    return len;
}

/*
 * Writes a grant's or a token's string without its gen (L_NEW appends that); its length. A
 * grant's (mac2 not NULL) has its first token's MAC after its own.
 */
static size_t pack(char buf[RD_PACKED], const unsigned char mac[WX_CRED_MAC],
                   const unsigned char *mac2, const int64_t *v, int n)
{
    size_t m = mac2 ? 2 * WX_CRED_MAC : WX_CRED_MAC;
    memcpy(buf, mac, WX_CRED_MAC);
    if (mac2)
        memcpy(buf + WX_CRED_MAC, mac2, WX_CRED_MAC);
    return m + pack_nums(buf + m, v, n);
}

/* A code's string: the MAC, its expiry in RD_CODE_EXP characters, then B. */
static size_t pack_code(char buf[RD_PACKED], const struct wx_code *c)
{
    memcpy(buf, c->mac, WX_CRED_MAC);
    uint64_t x = c->expires < 0 ? -(uint64_t)c->expires : (uint64_t)c->expires;
    buf[WX_CRED_MAC] = c->expires < 0 ? '-' : '0';
    for (int i = RD_CODE_B - 1; i > WX_CRED_MAC; i--, x /= 10)
        buf[i] = (char)('0' + x % 10);
    int64_t b[B_N] = {
        [B_APP] = c->app_id, [B_USER] = c->user_id, [B_SCOPE] = c->scope, [B_SNAP] = c->snapshot};
    return RD_CODE_B + pack_nums(buf + RD_CODE_B, b, B_N);
}

/* Reads n numbers " <decimal>" from p..end into v: 1, or -1 when they are not exactly that. */
static int unpack_nums(const char *p, const char *end, int64_t *v, int n)
{
    for (int i = 0; i < n; i++) {
        int neg = p + 1 < end && p[1] == '-';
        if (p >= end || *p != ' ' || (p += 1 + neg) >= end || *p < '0' || *p > '9')
            return -1;
        uint64_t x = 0;
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (x > (uint64_t)INT64_MAX / 10)
                return -1;
            x = x * 10 + (uint64_t)(*p - '0');
        }
        if (x > (uint64_t)INT64_MAX)
            return -1;
        v[i] = neg ? -(int64_t)x : (int64_t)x;
    }
    return p == end ? 1 : -1;
}

/*
 * Reads a record's string into mac (and a grant's second MAC into mac2 when it is not NULL) and
 * v[0..n): 1, 0 when r is nil (no such record), -1 bad.
 */
static int unpack(const redisReply *r, unsigned char mac[WX_CRED_MAC], unsigned char *mac2,
                  int64_t *v, int n)
{
    size_t m = mac2 ? 2 * WX_CRED_MAC : WX_CRED_MAC;
    if (r->type == REDIS_REPLY_NIL)
        return 0;
    if (r->type != REDIS_REPLY_STRING || r->len < m)
        return -1;
    memcpy(mac, r->str, WX_CRED_MAC);
    if (mac2)
        memcpy(mac2, r->str + WX_CRED_MAC, WX_CRED_MAC);
    return unpack_nums(r->str + m, r->str + r->len, v, n);
}

/*
 * L_NEW's call for kind:<a fresh id> into a, that id its result: with L_NEW's mode and gen, the
 * packed record val (copied), shape "gen" (it takes " gen") or "raw". other_kind:other_id is its
 * twin or its grant (other_id 0: the same id); a grant's access token takes the grant's family.
 */
static int64_t new_call(struct rd *d, const char *kind, const char *other_kind, int64_t other_id,
                        const char *mode, int64_t gen, int64_t expires, const char *shape,
                        const char *val, size_t len, struct wx_rc_args *a)
{
    int64_t v = fresh_id(other_id), o = other_id > 0 ? other_id : v;
    wx_rc_arg_script(a, 2);
    wx_rc_arg_credkey(&d->conn, a, fam(v), kind, v);
    wx_rc_arg_credkey(&d->conn, a, fam(o), other_kind, o);
    wx_rc_arg_i64(a, expire_at(expires, RD_GRACE));
    wx_rc_arg_str(a, mode);
    wx_rc_arg_i64(a, gen);
    wx_rc_arg_str(a, shape);
    wx_rc_arg_copy(a, val, len);
    return v;
}

/* Creates the record new_call describes, trying RD_TRIES fresh ids; its id in *id. */
static int create(struct rd *d, const char *kind, const char *other_kind, int64_t other_id,
                  const char *mode, int64_t gen, int64_t expires, const char *shape,
                  const char *val, size_t len, int64_t *id)
{
    for (int i = 0; i < RD_TRIES; i++) {
        struct wx_rc_args a;
        int64_t ok,
            v = new_call(d, kind, other_kind, other_id, mode, gen, expires, shape, val, len, &a);
        int rc = wx_rc_eval_int(&d->conn, L_NEW, &a, &ok);
        if (rc)
            return rc;
        if (ok) {
            *id = v;
            return WX_OK;
        }
    }
    return WX_ERR_STORE;
}

/* L_NEW's call for code c into a; the id it would get. */
static int64_t code_call(struct rd *d, const struct wx_code *c, struct wx_rc_args *a)
{
    char buf[RD_PACKED];
    return new_call(d, "code", "grant", 0, "twin", 0, c->expires, "raw", buf, pack_code(buf, c), a);
}

static int code_create(struct rd *d, struct wx_code *c)
{
    char buf[RD_PACKED];
    return create(d, "code", "grant", 0, "twin", 0, c->expires, "raw", buf, pack_code(buf, c),
                  &c->id);
}

/*
 * RD_BATCH codes per round trip (one unit on the shared connection, so one fsync for all of
 * them); a code whose fresh id was taken is created again on its own.
 */
static int rd_code_insert(struct wx_store *s, struct wx_code *c, size_t n)
{
    struct rd *d = RD(s);
    if (n == 1)
        return code_create(d, c);
    size_t cap = n < RD_BATCH ? n : RD_BATCH;
    struct wx_rc_args *a = malloc(cap * sizeof *a);
    if (!a)
        return WX_ERR_NOMEM;
    redisReply *r[RD_BATCH];
    int64_t id[RD_BATCH];
    int rc = WX_OK;
    for (size_t at = 0; rc == WX_OK && at < n; at += cap) {
        int m = (int)(n - at < cap ? n - at : cap);
        for (int i = 0; i < m; i++)
            id[i] = code_call(d, &c[at + (size_t)i], &a[i]);
        if ((rc = wx_rc_eval_pipeline(&d->conn, L_NEW, a, m, r)))
            break;
        for (int i = 0; i < m; i++) {
            int64_t ok = -1;
            if (!wx_rc_reply_i64(r[i], &ok) || (ok != 0 && ok != 1))
                rc = WX_ERR_STORE;
            else if (ok)
                c[at + (size_t)i].id = id[i];
            freeReplyObject(r[i]);
            if (rc == WX_OK && !ok)
                rc = code_create(d, &c[at + (size_t)i]);
        }
    }
    free(a);
    return rc;
}

/* Fills g from a redeem reply's B (element 1): 1, or 0 when there is none or it is malformed. */
static int redeemed(const redisReply *r, int64_t id, int64_t app_id, struct wx_grant *g)
{
    int64_t b[B_N];
    const redisReply *e = r->elements >= 2 ? r->element[1] : NULL;
    if (!e || e->type != REDIS_REPLY_STRING || unpack_nums(e->str, e->str + e->len, b, B_N) < 0 ||
        b[B_APP] != app_id)
        return 0;
    g->app_id = app_id;
    g->code_id = id;
    g->user_id = b[B_USER];
    g->scope = (int)b[B_SCOPE];
    g->snapshot = (int)b[B_SNAP];
    return 1;
}

static int rd_code_redeem(struct wx_store *s, int64_t id, const unsigned char mac[WX_CRED_MAC],
                          int64_t app_id, int64_t now, struct wx_grant *g, struct wx_access *ac)
{
    struct rd *d = RD(s);
    int64_t gen, status = -1;
    /*
     * The generation as the app cache has it (the record the caller checked the secret
     * against, within RD_APP_FRESH_NS): a stale one is older, so the grant is born revoked,
     * never valid under a secret reset meanwhile; a deleted app's grant reads as not found.
     * Reading it fresh would cost every exchange a round trip of its own.
     */
    int rc = wx_rd_app_gen(d, app_id, &gen, 0);
    if (rc)
        return rc; /* no such app: nobody may redeem it */
    char app[2 + WX_RC_I64_LEN], gtail[RD_PACKED];
    unsigned char macs[2 * WX_CRED_MAC] = {0}; /* the grant's, its first token's (none: zeros) */
    size_t lapp = 1 + wx_rc_fmt_i64(app + 1, app_id);
    app[0] = ' ';
    app[lapp++] = ' ';
    memcpy(macs, g->mac, WX_CRED_MAC);
    if (ac)
        memcpy(macs + WX_CRED_MAC, ac->mac, WX_CRED_MAC);
    int64_t gv[G_N - B_N] = {id, g->created, g->expires, ac ? ac->expires : 0, gen};
    size_t lg = pack_nums(gtail, gv, G_N - B_N);
    struct wx_rc_args a;
    redisReply *r;
    wx_rc_arg_script(&a, 3);
    wx_rc_arg_credkey(&d->conn, &a, fam(id), "code", id);
    wx_rc_arg_credkey(&d->conn, &a, fam(id), "grant", id);
    wx_rc_arg_credkey(&d->conn, &a, fam(id), "rev", -1);
    wx_rc_arg_bin(&a, mac, WX_CRED_MAC);
    wx_rc_arg_bin(&a, app, lapp);
    wx_rc_arg_i64(&a, now);
    wx_rc_arg_bin(&a, macs, sizeof macs);
    wx_rc_arg_bin(&a, gtail, lg);
    wx_rc_arg_i64(&a, expire_at(g->expires, RD_GRACE));
    wx_rc_arg_i64(&a, id);
    if ((rc = wx_rc_eval(&d->conn, L_REDEEM, &a, &r)))
        return rc;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        wx_rc_reply_i64(r->element[0], &status) && status != 1 && !redeemed(r, id, app_id, g))
        status = -1; /* a B that is not one: fail closed */
    freeReplyObject(r);
    switch (status) {
    case 0:
        g->id = id;
        if (ac) {
            ac->id = id | RD_FIRST;
            wx_access_of_grant(ac, g);
        }
        return WX_OK;
    case 1:
        return WX_ERR_NOTFOUND;
    case 2:
        return WX_ERR_EXPIRED;
    case 3:
        return WX_ERR_CONFLICT;
    default:
        return WX_ERR_STORE;
    }
}

static int rd_grant_insert(struct wx_store *s, struct wx_grant *g)
{
    struct rd *d = RD(s);
    int64_t gen = 0;
    int rc = wx_rd_app_gen(d, g->app_id, &gen, 1);
    if (rc && rc != WX_ERR_NOTFOUND)
        return rc;
    int64_t v[G_GEN] = {[B_APP] = g->app_id,    [B_USER] = g->user_id, [B_SCOPE] = g->scope,
                        [B_SNAP] = g->snapshot, [G_CODE] = g->code_id, [G_CREATED] = g->created,
                        [G_EXP] = g->expires}; /* G_FIRST_EXP 0: no first token */
    static const unsigned char none[WX_CRED_MAC];
    char buf[RD_PACKED];
    return create(d, "grant", "code", 0, "twin", gen, g->expires, "gen", buf,
                  pack(buf, g->mac, none, v, G_GEN), &g->id);
}

static int rd_grant_get(struct wx_store *s, int64_t id, struct wx_grant *g)
{
    struct rd *d = RD(s);
    struct wx_rc_args a[2];
    redisReply *r[2];
    wx_rc_arg_cmd(&a[0], "GET");
    wx_rc_arg_credkey(&d->conn, &a[0], fam(id), "grant", id);
    wx_rc_arg_cmd(&a[1], "SISMEMBER");
    wx_rc_arg_credkey(&d->conn, &a[1], fam(id), "rev", -1);
    wx_rc_arg_i64(&a[1], id);
    int rc = wx_rc_pipeline(&d->conn, a, 2, r);
    if (rc)
        return rc;
    int64_t v[G_N];
    memset(g, 0, sizeof(*g));
    unsigned char first[WX_CRED_MAC];
    int found = unpack(r[0], g->mac, first, v, G_N);
    rc = found > 0 ? WX_OK : found == 0 ? WX_ERR_NOTFOUND : WX_ERR_STORE;
    if (rc == WX_OK) {
        g->id = id;
        g->app_id = v[B_APP];
        g->user_id = v[B_USER];
        g->code_id = v[G_CODE];
        g->scope = (int)v[B_SCOPE];
        g->snapshot = (int)v[B_SNAP];
        g->created = v[G_CREATED];
        g->expires = v[G_EXP];
        g->revoked = r[1]->type == REDIS_REPLY_INTEGER && r[1]->integer;
    }
    freeReplyObject(r[0]);
    freeReplyObject(r[1]);
    return rc ? rc : wx_rd_check_gen(d, g->app_id, v[G_GEN], &g->revoked);
}

static int rd_access_insert(struct wx_store *s, struct wx_access *ac)
{
    int64_t v[A_GEN] = {[B_APP] = ac->app_id,    [B_USER] = ac->user_id,   [B_SCOPE] = ac->scope,
                        [B_SNAP] = ac->snapshot, [A_GRANT] = ac->grant_id, [A_EXP] = ac->expires};
    char buf[RD_PACKED];
    return create(RD(s), "access", "grant", ac->grant_id > 0 ? ac->grant_id : 0, "grant", 0,
                  ac->expires, "gen", buf, pack(buf, ac->mac, NULL, v, A_GEN), &ac->id);
}

/*
 * Two plain commands in one round trip instead of a script (a script costs Redis ~20 us here
 * against ~2 us per command): the token, and its family's revoked grants, checked here. The
 * family is the grant's (id layout above) and holds its own revoked grants only, so the set is
 * almost always empty. Not atomic, and need not be: a token never changes once made, so the
 * pair reads as of the SMEMBERS. A grant's first token (RD_FIRST) is read from its grant.
 */
static int rd_access_get(struct wx_store *s, int64_t id, struct wx_access *ac)
{
    struct rd *d = RD(s);
    struct wx_rc_args a[2];
    redisReply *r[2];
    int first = (id & RD_FIRST) != 0;
    int64_t key = first ? id & ~RD_FIRST : id;
    wx_rc_arg_cmd(&a[0], "GET");
    wx_rc_arg_credkey(&d->conn, &a[0], fam(key), first ? "grant" : "access", key);
    wx_rc_arg_cmd(&a[1], "SMEMBERS");
    wx_rc_arg_credkey(&d->conn, &a[1], fam(key), "rev", -1);
    int rc = wx_rc_pipeline(&d->conn, a, 2, r);
    if (rc)
        return rc;
    int64_t v[G_N]; /* a grant's numbers, or a token's */
    unsigned char grant_mac[WX_CRED_MAC];
    memset(ac, 0, sizeof(*ac));
    int found =
        first ? unpack(r[0], grant_mac, ac->mac, v, G_N) : unpack(r[0], ac->mac, NULL, v, A_N);
    if (found > 0 && first && sodium_is_zero(ac->mac, WX_CRED_MAC))
        found = 0; /* a grant made without one (grant_insert) */
    if (found < 0 || r[1]->type != REDIS_REPLY_ARRAY) {
        rc = WX_ERR_STORE;
    } else if (!found) {
        rc = WX_ERR_NOTFOUND;
    } else {
        ac->id = id;
        ac->grant_id = first ? key : v[A_GRANT];
        ac->app_id = v[B_APP];
        ac->user_id = v[B_USER];
        ac->scope = (int)v[B_SCOPE];
        ac->expires = first ? v[G_FIRST_EXP] : v[A_EXP];
        ac->snapshot = (int)v[B_SNAP];
        for (size_t i = 0; i < r[1]->elements && !ac->revoked; i++)
            ac->revoked = wx_rc_reply_num(r[1]->element[i]) == ac->grant_id;
    }
    freeReplyObject(r[0]);
    freeReplyObject(r[1]);
    return rc ? rc : wx_rd_check_gen(d, ac->app_id, first ? v[G_GEN] : v[A_GEN], &ac->revoked);
}

/* ---- nonces, kv, purge ---- */

static void a_hexkey(struct rd *d, struct wx_rc_args *a, const char *kind,
                     const unsigned char k[16])
{
    char hex[33];
    sodium_bin2hex(hex, sizeof hex, k, 16);
    wx_rc_arg_key(&d->conn, a, "%s:%s", kind, hex);
}

static int rd_nonce_use(struct wx_store *s, const unsigned char nonce[16], int64_t expires)
{
    struct rd *d = RD(s);
    struct wx_rc_args a;
    redisReply *r;
    wx_rc_arg_cmd(&a, "SET");
    a_hexkey(d, &a, "nonce", nonce);
    wx_rc_arg_strs(&a, "1", "NX", "EXAT", NULL);
    wx_rc_arg_i64(&a, expire_at(expires, RD_GRACE));
    int rc = wx_rc_call(&d->conn, &a, &r);
    if (rc)
        return rc;
    rc = r->type == REDIS_REPLY_NIL ? WX_ERR_CONFLICT : WX_OK;
    freeReplyObject(r);
    return rc;
}

static int rd_counter_add(struct wx_store *s, const unsigned char key[16], int64_t delta,
                          int64_t expires, int64_t *total)
{
    struct rd *d = RD(s);
    struct wx_rc_args a[2];
    redisReply *r[2];
    wx_rc_arg_cmd(&a[0], "INCRBY");
    a_hexkey(d, &a[0], "cnt", key);
    wx_rc_arg_i64(&a[0], delta);
    wx_rc_arg_cmd(&a[1], "EXPIREAT");
    a_hexkey(d, &a[1], "cnt", key);
    wx_rc_arg_i64(&a[1], expire_at(expires, 0));
    int rc = wx_rc_pipeline(&d->conn, a, 2, r);
    if (rc)
        return rc;
    rc = wx_rc_reply_i64(r[0], total) ? WX_OK : WX_ERR_STORE;
    freeReplyObject(r[0]);
    freeReplyObject(r[1]);
    return rc;
}

static int rd_kv_put(struct wx_store *s, const unsigned char key[16], const void *value, size_t len,
                     int64_t expires)
{
    struct rd *d = RD(s);
    struct wx_rc_args a;
    redisReply *r;
    unsigned char *v = malloc(8 + len);
    if (!v)
        return WX_ERR_NOMEM;
    for (int i = 0; i < 8; i++)
        v[i] = (unsigned char)((uint64_t)expires >> (56 - 8 * i));
    if (len)
        memcpy(v + 8, value, len);
    wx_rc_arg_cmd(&a, "SET");
    a_hexkey(d, &a, "kv", key);
    wx_rc_arg_bin(&a, v, 8 + len);
    wx_rc_arg_str(&a, "EXAT");
    wx_rc_arg_i64(&a, expire_at(expires, RD_KV_MARGIN));
    int rc = wx_rc_call(&d->conn, &a, &r);
    if (rc == WX_OK)
        freeReplyObject(r);
    free(v);
    return rc;
}

static int rd_kv_get(struct wx_store *s, const unsigned char key[16], int64_t now, void *out,
                     size_t outsz, size_t *len)
{
    struct rd *d = RD(s);
    struct wx_rc_args a;
    redisReply *r;
    wx_rc_arg_cmd(&a, "GET");
    a_hexkey(d, &a, "kv", key);
    int rc = wx_rc_call(&d->conn, &a, &r);
    if (rc)
        return rc;
    uint64_t expires = 0;
    if (r->type == REDIS_REPLY_NIL) {
        rc = WX_ERR_NOTFOUND;
    } else if (r->type != REDIS_REPLY_STRING || r->len < 8) {
        rc = WX_ERR_STORE;
    } else {
        for (int i = 0; i < 8; i++)
            expires = expires << 8 | (unsigned char)r->str[i];
        size_t n = r->len - 8;
        if ((int64_t)expires <= now) {
            rc = WX_ERR_NOTFOUND;
        } else if (n > outsz) {
            rc = WX_ERR_LIMIT;
        } else {
            if (n)
                memcpy(out, r->str + 8, n);
            *len = n;
        }
    }
    freeReplyObject(r);
    return rc;
}

/* Every key with a lifetime carries a Redis TTL (see the top): nothing is left to delete. */
static int rd_purge(struct wx_store *s, int64_t now, int limit, int64_t *deleted)
{
    *deleted = 0;
    return WX_OK;
}

static const struct wx_store_ops redis_ops = {
    .name = "redis",
    .close = rd_close,
    .ping = rd_ping,
    .batch_begin = rd_begin,
    .batch_commit = rd_commit,
    .batch_rollback = rd_end,
    .checkpoint = NULL,
    .read_begin = rd_read_begin,
    .read_end = rd_end,
    .master_key = rd_master_key,
    .app_insert = wx_rd_app_insert,
    .app_by_appid = wx_rd_app_by_appid,
    .app_by_id = wx_rd_app_by_id,
    .app_list = wx_rd_app_list,
    .app_delete = wx_rd_app_delete,
    .app_update = wx_rd_app_update,
    .app_set_secret = wx_rd_app_set_secret,
    .user_insert = wx_rd_user_insert,
    .user_get = wx_rd_user_get,
    .user_list = wx_rd_user_list,
    .user_set_snapshot = wx_rd_user_set_snapshot,
    .follow_set = wx_rd_follow_set,
    .follow_get = wx_rd_follow_get,
    .follow_list = wx_rd_follow_list,
    .code_insert = rd_code_insert,
    .code_redeem = rd_code_redeem,
    .grant_insert = rd_grant_insert,
    .grant_get = rd_grant_get,
    .access_insert = rd_access_insert,
    .access_get = rd_access_get,
    .basic_insert = wx_rd_basic_insert,
    .basic_get = wx_rd_basic_get,
    .consent_set = wx_rd_consent_set,
    .consent_get = wx_rd_consent_get,
    .nonce_use = rd_nonce_use,
    .kv_put = rd_kv_put,
    .kv_get = rd_kv_get,
    .rec_put = wx_rd_rec_put,
    .rec_get = wx_rd_rec_get,
    .rec_list = wx_rd_rec_list,
    .rec_delete = wx_rd_rec_delete,
    .counter_add = rd_counter_add,
    .share = rd_share,
    .purge = rd_purge,
};

/*
 * Opens a Redis store from a redis:// URL and checks that Redis answers. Never echoes the URL
 * (it may hold a password) in err.
 */
int wx_store_open_redis(struct wx_store **out, const char *url, char *err, size_t errsz)
{
    struct rd *d = calloc(1, sizeof(*d));
    if (!d)
        return WX_ERR_NOMEM;
    d->base.ops = &redis_ops;
    d->conn.lua = lua;
    if (wx_rc_parse_url(&d->conn, url, err, errsz) != WX_OK) {
        rd_close(&d->base);
        return WX_ERR_INVALID;
    }
    if (rd_ping(&d->base) != WX_OK) {
        if (d->conn.nseeds)
            snprintf(err, errsz, "redis store: cluster of %d seed node(s): %s", d->conn.nseeds,
                     d->conn.why[0] ? d->conn.why : "no answer to PING");
        else if (d->conn.nsentinels)
            snprintf(err, errsz, "redis store: master '%s' of %d sentinel(s): %s", d->conn.master,
                     d->conn.nsentinels, d->conn.why[0] ? d->conn.why : "no answer to PING");
        else
            snprintf(err, errsz, "redis store: %s:%d: %s", d->conn.host, d->conn.port,
                     d->conn.why[0] ? d->conn.why : "no answer to PING");
        rd_close(&d->base);
        return WX_ERR_STORE;
    }
    *out = &d->base;
    return WX_OK;
}
