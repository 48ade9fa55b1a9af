/*
 * store_redis.c — the shared store: struct wx_store_ops on Redis (hiredis 0.14, RESP2), so that
 * several providers and gates serve the same codes, tokens, apps and users. The SQLite backend
 * (store_sqlite.c) is the reference for every operation's meaning.
 *
 * URL: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=P&timeout_ms=N] (password
 * percent-decoded; port 6379, db 0, prefix "wx:", timeout 1000 ms unless given). The timeout
 * bounds connecting and every command: an unreachable or hung Redis gives WX_ERR_STORE within
 * it, the connection is dropped, and a later call connects again by itself (at once after a
 * refused connection; after a timeout, calls fail without waiting for timeout_ms, so that a
 * request making several calls waits once). A connection Redis closed (a restart) is noticed
 * before a command is sent on it. Every value is sent as its own argument (redisCommandArgv:
 * binary-safe, never formatted into a command).
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
 *   P{F}:code:<id>            HASH mac app user scope snap exp used gen          (TTL)
 *   P{F}:grant:<id>           HASH mac app user code scope snap created exp gen  (TTL)
 *   P{F}:access:<id>          HASH mac grant app user scope exp snap gen         (TTL)
 *   P{F}:rev                  SET the family's revoked grant ids (revoked_grants) (TTL)
 *
 * Ids: codes, grants and basic tokens take random 62-bit ids (1 .. 2^62-1), created only if
 * free (a script checks EXISTS), so no counter key serialises the hot path across the cluster;
 * the id is masked inside the credential anyway. Redeeming code X creates grant X: the replay
 * script knows the grant's key without reading it, and a grant and a code never share an id
 * (both creations check the other kind). An access token takes its grant's family (the high
 * 30 bits) and 32 random bits, so token, grant and revoked set share one slot.
 *
 * Revocation: a replayed code puts its grant into P{F}:rev; access_get reads the token and
 * that set in one script. app_set_secret bumps the app's generation (gen); grants and basic
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
#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "store.h"

#define RD_GRACE       86400       /* seconds a credential or nonce outlives its expiry */
#define RD_KV_MARGIN   60          /* seconds a kv value outlives it (clock differences) */
#define RD_MAX_TIME    (1LL << 40) /* expiry times are clamped here (year 36812) */
#define RD_MAX_ARGS    48          /* arguments of one command */
#define RD_POOL        2048        /* bytes of formatted keys and numbers per command */
#define RD_MAX_PREFIX  64          /* key prefix */
#define RD_TRIES       8           /* fresh random ids tried before giving up */
#define RD_CHUNK       64          /* records fetched per pipeline in list calls */
#define RD_TIMEOUT_MS  1000        /* default connect and command timeout */
#define RD_NOSCRIPT    100         /* internal: EVALSHA of a script Redis does not know */
#define RD_FAMILY_MASK (~(uint64_t)0xffffffffu)
#define RD_ID_MASK     ((1ULL << 62) - 1)

/* Constant-time comparison of a stored MAC (SECURITY.md rule 4), inside scripts. */
#define LUA_EQ                                                                                     \
    "local function eq(a, b)\n"                                                                    \
    "  if not a or #a ~= #b then return false end\n"                                               \
    "  local d = 0\n"                                                                              \
    "  for i = 1, #b do d = bit.bor(d, bit.bxor(a:byte(i), b:byte(i))) end\n"                      \
    "  return d == 0\n"                                                                            \
    "end\n"

enum { L_NEW, L_REDEEM, L_ACCESS_GET, L_REG_NEW, L_REG_SET, L_APP_DEL, L_BASIC_NEW, L_COUNT };

static const char *const lua[L_COUNT] = {
    /* KEYS: record to create, its twin (code <-> grant of that id) or its grant (access).
     * ARGV: expire-at, "twin" | "grant", gen, field, value... 0 when the id is taken. */
    [L_NEW] = "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
              "local gen = ARGV[3]\n"
              "if ARGV[2] == 'twin' then\n"
              "  if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end\n"
              "else gen = redis.call('HGET', KEYS[2], 'gen') or '0' end\n"
              "redis.call('HSET', KEYS[1], 'gen', gen, unpack(ARGV, 4))\n"
              "redis.call('EXPIREAT', KEYS[1], ARGV[1])\n"
              "return 1\n",
    /* KEYS: code, grant of the same id, the family's revoked set. ARGV: mac, app id, now, gen,
     * grant mac, created, expires, expire-at, id. {0 ok | 1 not found | 2 expired |
     * 3 used (its grant now revoked) | 4 id taken, user, scope, snapshot}. */
    [L_REDEEM] = LUA_EQ
    "local c = redis.call('HMGET', KEYS[1], 'mac', 'app', 'user', 'scope', 'snap', 'exp', 'used')\n"
    "if not eq(c[1], ARGV[1]) or c[2] ~= ARGV[2] then return {1} end\n"
    "if c[7] ~= '0' then\n"
    "  local t = redis.call('EXPIRETIME', KEYS[2])\n"
    "  if t ~= -2 then\n"
    "    redis.call('SADD', KEYS[3], ARGV[9])\n"
    "    local r = redis.call('EXPIRETIME', KEYS[3])\n"
    "    if t > 0 and (r < 0 or t > r) then redis.call('EXPIREAT', KEYS[3], t) end\n"
    "  end\n"
    "  return {3, c[3], c[4], c[5]}\n"
    "end\n"
    "if tonumber(c[6]) <= tonumber(ARGV[3]) then return {2, c[3], c[4], c[5]} end\n"
    "if redis.call('EXISTS', KEYS[2]) == 1 then return {4} end\n"
    "redis.call('HSET', KEYS[2], 'mac', ARGV[5], 'app', c[2], 'user', c[3], 'code', ARGV[9],\n"
    "  'scope', c[4], 'snap', c[5], 'created', ARGV[6], 'exp', ARGV[7], 'gen', ARGV[4])\n"
    "redis.call('EXPIREAT', KEYS[2], ARGV[8])\n"
    "redis.call('HSET', KEYS[1], 'used', '1')\n"
    "return {0, c[3], c[4], c[5]}\n",
    /* KEYS: access token, the family's revoked set. The token's fields and whether its grant
     * was revoked, or nil. */
    [L_ACCESS_GET] =
        "local a = redis.call('HMGET', KEYS[1], 'mac', 'grant', 'app', 'user', 'scope', 'exp',\n"
        "  'snap', 'gen')\n"
        "if not a[1] then return false end\n"
        "a[9] = redis.call('SISMEMBER', KEYS[2], a[2])\n"
        "return a\n",
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

struct rd {
    struct wx_store base;
    redisContext *c; /* NULL while disconnected: the next call connects */
    char host[256], user[128], pass[256];
    int port, db, timeout_ms;
    char prefix[RD_MAX_PREFIX + 1];
    char sha[L_COUNT][41]; /* SCRIPT LOAD results, learnt on first use */
    char why[128];         /* why the last connection attempt failed */
    int64_t hold_until;    /* monotonic ms: after a timeout, fail at once until then */
};

static struct rd *RD(struct wx_store *s)
{
    return (struct rd *)s;
}

/* ---- one command's arguments: borrowed values plus a pool for keys and numbers ---- */

struct args {
    int n, over; /* over: something did not fit, the call fails with WX_ERR_STORE */
    size_t used;
    const char *v[RD_MAX_ARGS];
    size_t l[RD_MAX_ARGS];
    char pool[RD_POOL];
};

static void a_bin(struct args *a, const void *p, size_t n)
{
    if (a->n == RD_MAX_ARGS) {
        a->over = 1;
        return;
    }
    a->v[a->n] = n ? p : "";
    a->l[a->n++] = n;
}

static void a_str(struct args *a, const char *s)
{
    a_bin(a, s, strlen(s));
}

/* Several strings, up to a NULL. */
__attribute__((sentinel)) static void a_strs(struct args *a, ...)
{
    va_list ap;
    va_start(ap, a);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
        a_str(a, s);
    va_end(ap);
}

static void a_vput(struct args *a, const char *prefix, const char *fmt, va_list ap)
{
    char *at = a->pool + a->used;
    size_t room = sizeof a->pool - a->used;
    int p = snprintf(at, room, "%s", prefix);
    int n = p < 0 || (size_t)p >= room ? -1 : vsnprintf(at + p, room - (size_t)p, fmt, ap);
    if (n < 0 || (size_t)(p + n) >= room) {
        a->over = 1;
        return;
    }
    a->used += (size_t)(p + n) + 1;
    a_bin(a, at, (size_t)(p + n));
}

__attribute__((format(printf, 2, 3))) static void a_fmt(struct args *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    a_vput(a, "", fmt, ap);
    va_end(ap);
}

/* A key: the prefix, then fmt. */
__attribute__((format(printf, 3, 4))) static void a_key(struct rd *d, struct args *a,
                                                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    a_vput(a, d->prefix, fmt, ap);
    va_end(ap);
}

static void a_i64(struct args *a, int64_t v)
{
    a_fmt(a, "%lld", (long long)v);
}

/* A field name and its integer value. */
static void a_fi(struct args *a, const char *field, int64_t v)
{
    a_str(a, field);
    a_i64(a, v);
}

/* The start of a script call: EVALSHA, its sha (filled in by eval) and the key count. */
static void a_script(struct args *a, int nkeys)
{
    memset(a, 0, offsetof(struct args, pool));
    a_str(a, "EVALSHA");
    a_str(a, "");
    a_i64(a, nkeys);
}

static void a_cmd(struct args *a, const char *cmd)
{
    memset(a, 0, offsetof(struct args, pool));
    a_str(a, cmd);
}

static unsigned long long fam(int64_t id)
{
    return (unsigned long long)((uint64_t)id >> 32);
}

/* ---- replies ---- */

static int r_i64(const redisReply *r, int64_t *out)
{
    if (r->type == REDIS_REPLY_INTEGER) {
        *out = r->integer;
        return 1;
    }
    if (r->type != REDIS_REPLY_STRING || !r->len || r->len > 20)
        return 0;
    char text[24], *end = NULL;
    memcpy(text, r->str, r->len);
    text[r->len] = '\0';
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end)
        return 0;
    *out = v;
    return 1;
}

/* An integer field; 0 when absent or malformed (fields are written by this file only). */
static int64_t r_num(const redisReply *r)
{
    int64_t v = 0;
    return r_i64(r, &v) ? v : 0;
}

static void r_text(const redisReply *r, char *out, size_t outsz)
{
    size_t n = r->type == REDIS_REPLY_STRING ? r->len : 0;
    if (n >= outsz)
        n = outsz - 1;
    if (n)
        memcpy(out, r->str, n);
    out[n] = '\0';
}

static void r_mac(const redisReply *r, unsigned char mac[WX_CRED_MAC])
{
    memset(mac, 0, WX_CRED_MAC);
    if (r->type == REDIS_REPLY_STRING && r->len == WX_CRED_MAC)
        memcpy(mac, r->str, WX_CRED_MAC);
}

/* ---- the connection ---- */

/*
 * hiredis writes with write(2): a write to a connection Redis closed raises SIGPIPE. Like
 * libpq, block it in this thread around the I/O and swallow one that the I/O raised, instead
 * of changing the process's signal disposition.
 */
struct sigpipe {
    sigset_t old;
    int pending;
};

static void sp_block(struct sigpipe *g)
{
    sigset_t set, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
    g->pending = sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE);
}

static void sp_unblock(struct sigpipe *g, int failed)
{
    sigset_t set, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    if (failed && !g->pending && sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigtimedwait(&set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void drop(struct rd *d)
{
    if (d->c)
        redisFree(d->c);
    d->c = NULL;
}

/*
 * The connection failed in an attempt begun at t0. One that waited out the timeout (a hung or
 * unreachable Redis) makes the calls of the next timeout_ms fail at once, so that a request
 * making several calls waits once, not once per call; a refused connection costs nothing and
 * is retried by the next call.
 */
static void failed(struct rd *d, int64_t t0)
{
    int64_t now = mono_ms();
    drop(d);
    if (now - t0 >= d->timeout_ms / 2)
        d->hold_until = now + d->timeout_ms;
}

/* Redis closed an idle connection (restart, timeout): found before a command is risked. */
static int stale(redisContext *c)
{
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static int handshake(struct rd *d, redisContext *c)
{
    redisReply *r = NULL;
    int ok = 1;
    if (d->pass[0]) {
        r = d->user[0] ? redisCommand(c, "AUTH %s %s", d->user, d->pass)
                       : redisCommand(c, "AUTH %s", d->pass);
        ok = r && r->type != REDIS_REPLY_ERROR;
        freeReplyObject(r);
    }
    if (ok && d->db) {
        r = redisCommand(c, "SELECT %d", d->db);
        ok = r && r->type != REDIS_REPLY_ERROR;
        freeReplyObject(r);
    }
    if (ok) { /* a hung server still completes TCP handshakes: connected means it answered */
        r = redisCommand(c, "PING");
        ok = r && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
    }
    return ok ? WX_OK : WX_ERR_STORE;
}

static int rd_connect(struct rd *d)
{
    if (d->c && !stale(d->c))
        return WX_OK;
    drop(d);
    int64_t t0 = mono_ms();
    if (t0 < d->hold_until) {
        snprintf(d->why, sizeof d->why, "timed out a moment ago");
        return WX_ERR_STORE;
    }
    struct timeval tv = {d->timeout_ms / 1000, (d->timeout_ms % 1000) * 1000};
    struct sigpipe g;
    sp_block(&g);
    redisContext *c = redisConnectWithTimeout(d->host, d->port, tv);
    int rc = WX_ERR_STORE;
    if (c && !c->err && redisSetTimeout(c, tv) == REDIS_OK && handshake(d, c) == WX_OK) {
        redisEnableKeepAlive(c);
        d->c = c;
        c = NULL;
        rc = WX_OK;
    }
    snprintf(d->why, sizeof d->why, "%s",
             rc == WX_OK ? ""
             : !c        ? "out of memory"
             : c->err    ? c->errstr
                         : "no answer to AUTH, SELECT or PING");
    sp_unblock(&g, rc != WX_OK);
    if (c)
        redisFree(c);
    if (rc)
        failed(d, t0);
    return rc;
}

/* Runs one command: WX_OK with a reply that is not an error (free it), or WX_ERR_STORE. */
static int call(struct rd *d, struct args *a, redisReply **out)
{
    *out = NULL;
    if (a->over || rd_connect(d))
        return WX_ERR_STORE;
    struct sigpipe g;
    int64_t t0 = mono_ms();
    sp_block(&g);
    redisReply *r = redisCommandArgv(d->c, a->n, a->v, a->l);
    sp_unblock(&g, r == NULL);
    if (!r) {
        failed(d, t0); /* I/O error or timeout: the stream is out of step, start afresh */
        return WX_ERR_STORE;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        int noscript = !strncmp(r->str, "NOSCRIPT", 8);
        freeReplyObject(r);
        return noscript ? RD_NOSCRIPT : WX_ERR_STORE;
    }
    *out = r;
    return WX_OK;
}

/* Sends n commands in one round trip; every reply must be a non-error one. */
static int pipeline(struct rd *d, struct args *a, int n, redisReply **out)
{
    int rc = WX_ERR_STORE, got = 0;
    for (int i = 0; i < n; i++)
        if (a[i].over)
            return WX_ERR_STORE;
    if (rd_connect(d))
        return WX_ERR_STORE;
    struct sigpipe g;
    int64_t t0 = mono_ms();
    sp_block(&g);
    int sent = 0;
    while (sent < n && redisAppendCommandArgv(d->c, a[sent].n, a[sent].v, a[sent].l) == REDIS_OK)
        sent++;
    while (sent == n && got < n && redisGetReply(d->c, (void **)&out[got]) == REDIS_OK && out[got])
        got++;
    sp_unblock(&g, got < n);
    if (got < n)
        failed(d, t0);
    else
        rc = WX_OK;
    for (int i = 0; i < got; i++)
        if (out[i]->type == REDIS_REPLY_ERROR)
            rc = WX_ERR_STORE;
    if (rc)
        for (int i = 0; i < got; i++)
            freeReplyObject(out[i]);
    return rc;
}

/* EVALSHA, and EVAL when Redis does not know the script (after a restart or a flush). */
static int eval(struct rd *d, int script, struct args *a, redisReply **out)
{
    if (!d->sha[script][0]) {
        struct args load;
        redisReply *r;
        a_cmd(&load, "SCRIPT");
        a_strs(&load, "LOAD", lua[script], NULL);
        int rc = call(d, &load, &r);
        if (rc)
            return WX_ERR_STORE;
        if (r->type == REDIS_REPLY_STRING && r->len == 40)
            memcpy(d->sha[script], r->str, 41);
        freeReplyObject(r);
        if (!d->sha[script][0])
            return WX_ERR_STORE;
    }
    a->v[1] = d->sha[script];
    a->l[1] = 40;
    int rc = call(d, a, out);
    if (rc == RD_NOSCRIPT) {
        a->v[0] = "EVAL";
        a->l[0] = 4;
        a->v[1] = lua[script];
        a->l[1] = strlen(lua[script]);
        rc = call(d, a, out);
    }
    return rc == WX_OK ? WX_OK : WX_ERR_STORE;
}

/* A script (script >= 0) or command (-1) whose reply is one integer. */
static int run_int(struct rd *d, int script, struct args *a, int64_t *v)
{
    redisReply *r = NULL;
    int rc = script >= 0 ? eval(d, script, a, &r) : call(d, a, &r);
    if (rc)
        return rc;
    rc = r_i64(r, v) ? WX_OK : WX_ERR_STORE;
    freeReplyObject(r);
    return rc;
}

static int eval_int(struct rd *d, int script, struct args *a, int64_t *v)
{
    return run_int(d, script, a, v);
}

static int call_int(struct rd *d, struct args *a, int64_t *v)
{
    return run_int(d, -1, a, v);
}

/* ---- times and ids ---- */

/* When Redis may forget a record: margin seconds past both its expiry and now. */
static int64_t expire_at(int64_t expires, int64_t margin)
{
    int64_t now = (int64_t)time(NULL), t = expires > now ? expires : now;
    return (t < RD_MAX_TIME ? t : RD_MAX_TIME) + margin;
}

/* A random id in 1 .. 2^62-1: in the family (high 30 bits) of kin when kin > 0. */
static int64_t fresh_id(int64_t kin)
{
    uint64_t v;
    do {
        randombytes_buf(&v, sizeof v);
        v = kin > 0 ? ((uint64_t)kin & RD_FAMILY_MASK) | (v & 0xffffffffu) : v & RD_ID_MASK;
    } while (!v);
    return (int64_t)v;
}

/* ---- connection-level ops ---- */

static void rd_close(struct wx_store *s)
{
    struct rd *d = RD(s);
    drop(d);
    sodium_memzero(d->pass, sizeof d->pass);
    free(d);
}

static int rd_ping(struct wx_store *s)
{
    struct args a;
    redisReply *r;
    a_cmd(&a, "PING");
    int rc = call(RD(s), &a, &r);
    if (rc == WX_OK) {
        rc = r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "PONG") ? WX_OK : WX_ERR_STORE;
        freeReplyObject(r);
    }
    return rc;
}

/* Begins a batch or a group of reads: only makes sure Redis is reachable (see the top). */
static int rd_begin(struct wx_store *s)
{
    return rd_connect(RD(s));
}

static int rd_commit(struct wx_store *s)
{
    return WX_OK;
}

static void rd_end(struct wx_store *s) {}

static int rd_master_key(struct wx_store *s, unsigned char key[WX_KEY_LEN])
{
    struct rd *d = RD(s);
    struct args a;
    redisReply *r;
    for (int i = 0; i < 2; i++) {
        a_cmd(&a, "GET");
        a_key(d, &a, "master_key");
        if (call(d, &a, &r))
            return WX_ERR_STORE;
        int rc = r->type == REDIS_REPLY_STRING && r->len == WX_KEY_LEN ? WX_OK : WX_ERR_STORE;
        if (rc == WX_OK)
            memcpy(key, r->str, WX_KEY_LEN);
        int missing = r->type == REDIS_REPLY_NIL;
        freeReplyObject(r);
        if (!missing)
            return rc;
        randombytes_buf(key, WX_KEY_LEN);
        a_cmd(&a, "SET");
        a_key(d, &a, "master_key");
        a_bin(&a, key, WX_KEY_LEN);
        a_str(&a, "NX");
        rc = call(d, &a, &r);
        if (rc)
            return rc;
        missing = r->type == REDIS_REPLY_NIL; /* another process created it first: read it */
        freeReplyObject(r);
        if (!missing)
            return WX_OK;
    }
    return WX_ERR_STORE;
}

/* ---- apps ---- */

#define APP_FIELDS 9
static const char *const app_fields[APP_FIELDS] = {"appid", "name",  "dom",     "oa", "menu",
                                                   "kind",  "https", "created", "mac"};

static void hmget_app(struct rd *d, struct args *a, int64_t id)
{
    a_cmd(a, "HMGET");
    a_key(d, a, "{r}:app:%lld", (long long)id);
    for (int i = 0; i < APP_FIELDS; i++)
        a_str(a, app_fields[i]);
}

/* Fills out from an HMGET of app_fields; 0 when the app does not exist. */
static int read_app(const redisReply *r, int64_t id, struct wx_app *out)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != APP_FIELDS ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return 0;
    redisReply **e = r->element;
    memset(out, 0, sizeof(*out));
    out->id = id;
    r_text(e[0], out->appid, sizeof out->appid);
    r_text(e[1], out->name, sizeof out->name);
    r_text(e[2], out->domains, sizeof out->domains);
    r_text(e[3], out->open_account, sizeof out->open_account);
    r_text(e[4], out->menu, sizeof out->menu);
    out->kind = (int)r_num(e[5]);
    out->https_only = (int)r_num(e[6]);
    out->created = r_num(e[7]);
    r_mac(e[8], out->secret_mac);
    return 1;
}

/* The fields app_update may change. */
static void a_app_settings(struct args *a, const struct wx_app *app)
{
    a_strs(a, "name", app->name, "dom", app->domains, "oa", app->open_account, "menu", app->menu,
           NULL);
    a_fi(a, "kind", app->kind);
    a_fi(a, "https", app->https_only);
}

static int rd_app_insert(struct wx_store *s, struct wx_app *app)
{
    struct rd *d = RD(s);
    struct args a;
    int64_t id, ok;
    a_cmd(&a, "INCR");
    a_key(d, &a, "{r}:seq:app");
    int rc = call_int(d, &a, &id);
    if (rc)
        return rc;
    a_script(&a, 3);
    a_key(d, &a, "{r}:app:%lld", (long long)id);
    a_key(d, &a, "{r}:apps");
    a_key(d, &a, "{r}:appid:%s", app->appid);
    a_i64(&a, id);
    a_str(&a, "appid");
    a_str(&a, app->appid);
    a_app_settings(&a, app);
    a_fi(&a, "created", app->created);
    a_str(&a, "mac");
    a_bin(&a, app->secret_mac, WX_CRED_MAC);
    a_fi(&a, "gen", 0);
    if ((rc = eval_int(d, L_REG_NEW, &a, &ok)))
        return rc;
    if (!ok)
        return WX_ERR_CONFLICT;
    app->id = id;
    return WX_OK;
}

static int rd_app_by_id(struct wx_store *s, int64_t id, struct wx_app *out)
{
    struct rd *d = RD(s);
    struct args a;
    redisReply *r;
    hmget_app(d, &a, id);
    int rc = call(d, &a, &r);
    if (rc)
        return rc;
    rc = read_app(r, id, out) ? WX_OK : WX_ERR_NOTFOUND;
    freeReplyObject(r);
    return rc;
}

static int rd_app_by_appid(struct wx_store *s, const char *appid, struct wx_app *out)
{
    struct rd *d = RD(s);
    struct args a;
    redisReply *r;
    int64_t id = 0;
    if (strlen(appid) > WX_APPID_LEN)
        return WX_ERR_NOTFOUND; /* no app has it (a request's parameter may be 4 KiB) */
    a_cmd(&a, "GET");
    a_key(d, &a, "{r}:appid:%s", appid);
    int rc = call(d, &a, &r);
    if (rc)
        return rc;
    int found = r->type == REDIS_REPLY_STRING && r_i64(r, &id);
    freeReplyObject(r);
    return found ? rd_app_by_id(s, id, out) : WX_ERR_NOTFOUND;
}

/* The ids in a registry list (ZSET), in id order; free *ids. */
static int list_ids(struct rd *d, const char *list, int64_t **ids, size_t *n)
{
    struct args a;
    redisReply *r;
    a_cmd(&a, "ZRANGE");
    a_key(d, &a, "{r}:%s", list);
    a_strs(&a, "0", "-1", NULL);
    *ids = NULL;
    *n = 0;
    int rc = call(d, &a, &r);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || !(*ids = calloc(r->elements + 1, sizeof **ids)))
        rc = r->type == REDIS_REPLY_ARRAY ? WX_ERR_NOMEM : WX_ERR_STORE;
    for (size_t i = 0; rc == WX_OK && i < r->elements; i++)
        if (r_i64(r->element[i], &(*ids)[*n]))
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
    struct args *cmd = calloc(2 * RD_CHUNK, sizeof *cmd);
    redisReply **r = calloc(2 * RD_CHUNK, sizeof *r);
    struct wx_app *apps = calloc(RD_CHUNK, sizeof *apps);
    int rc = cmd && r && apps ? WX_OK : WX_ERR_NOMEM;
    for (size_t at = 0; rc == WX_OK && at < n; at += RD_CHUNK) {
        size_t m = n - at < RD_CHUNK ? n - at : RD_CHUNK, k = 0, found = 0;
        for (size_t i = 0; i < m; i++) {
            hmget_app(d, &cmd[k++], ids[at + i]);
            if (user_id > 0) {
                a_cmd(&cmd[k], "HEXISTS");
                a_key(d, &cmd[k], "{r}:fol:%lld", (long long)ids[at + i]);
                a_i64(&cmd[k++], user_id);
            }
        }
        if ((rc = pipeline(d, cmd, (int)k, r)))
            break;
        size_t per = user_id > 0 ? 2 : 1; /* replies per app */
        for (size_t i = 0; i < m; i++) {
            const redisReply *app = r[per * i], *fol = per == 2 ? r[per * i + 1] : NULL;
            int want = !fol || (fol->type == REDIS_REPLY_INTEGER && fol->integer);
            if (want && read_app(app, ids[at + i], &apps[found]))
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

static int rd_app_list(struct wx_store *s, wx_app_cb cb, void *ud)
{
    return list_apps(RD(s), 0, cb, ud);
}

/* Registry records and indexes go at once; credentials become unreadable (no app gen). */
static int rd_app_delete(struct wx_store *s, int64_t id)
{
    struct rd *d = RD(s);
    struct args a;
    redisReply *r;
    char appid[WX_APPID_LEN + 1] = "";
    int64_t done;
    a_cmd(&a, "HGET");
    a_key(d, &a, "{r}:app:%lld", (long long)id);
    a_str(&a, "appid");
    int rc = call(d, &a, &r);
    if (rc)
        return rc;
    r_text(r, appid, sizeof appid);
    freeReplyObject(r);
    a_script(&a, 6);
    a_key(d, &a, "{r}:app:%lld", (long long)id);
    a_key(d, &a, "{r}:appid:%s", appid);
    a_key(d, &a, "{r}:apps");
    a_key(d, &a, "{r}:fol:%lld", (long long)id);
    a_key(d, &a, "{r}:consent:%lld", (long long)id);
    a_key(d, &a, "{r}:basiclast:%lld", (long long)id);
    a_i64(&a, id);
    return eval_int(d, L_APP_DEL, &a, &done);
}

/* Sets fields of an existing registry record (bump: a new generation); NOTFOUND if none. */
static int reg_set(struct rd *d, struct args *a, int64_t *ok)
{
    int rc = eval_int(d, L_REG_SET, a, ok);
    return rc ? rc : *ok ? WX_OK : WX_ERR_NOTFOUND;
}

static int rd_app_update(struct wx_store *s, const struct wx_app *app)
{
    struct rd *d = RD(s);
    struct args a;
    int64_t ok;
    a_script(&a, 1);
    a_key(d, &a, "{r}:app:%lld", (long long)app->id);
    a_str(&a, "0");
    a_app_settings(&a, app);
    return reg_set(d, &a, &ok);
}

static int rd_app_set_secret(struct wx_store *s, int64_t id, const unsigned char mac[WX_CRED_MAC])
{
    struct rd *d = RD(s);
    struct args a;
    int64_t ok;
    a_script(&a, 1);
    a_key(d, &a, "{r}:app:%lld", (long long)id);
    a_str(&a, "1");
    a_str(&a, "mac");
    a_bin(&a, mac, WX_CRED_MAC);
    return reg_set(d, &a, &ok);
}

/* The app's generation (bumped by each secret reset); WX_ERR_NOTFOUND once it is deleted. */
static int app_gen(struct rd *d, int64_t app_id, int64_t *gen)
{
    struct args a;
    redisReply *r;
    a_cmd(&a, "HGET");
    a_key(d, &a, "{r}:app:%lld", (long long)app_id);
    a_str(&a, "gen");
    int rc = call(d, &a, &r);
    if (rc)
        return rc;
    rc = r->type == REDIS_REPLY_NIL ? WX_ERR_NOTFOUND : r_i64(r, gen) ? WX_OK : WX_ERR_STORE;
    freeReplyObject(r);
    return rc;
}

/* ---- users, follows, consents ---- */

static void hmget_user(struct rd *d, struct args *a, int64_t id)
{
    a_cmd(a, "HMGET");
    a_key(d, a, "{r}:user:%lld", (long long)id);
    a_strs(a, "nick", "avatar", "sex", "snap", "created", NULL);
}

static int read_user(const redisReply *r, int64_t id, struct wx_user *u)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return 0;
    memset(u, 0, sizeof(*u));
    u->id = id;
    r_text(r->element[0], u->nickname, sizeof u->nickname);
    r_text(r->element[1], u->avatar, sizeof u->avatar);
    u->sex = (int)r_num(r->element[2]);
    u->snapshot = (int)r_num(r->element[3]);
    u->created = r_num(r->element[4]);
    return 1;
}

static int rd_user_insert(struct wx_store *s, struct wx_user *u)
{
    struct rd *d = RD(s);
    struct args a;
    int64_t id, ok;
    a_cmd(&a, "INCR");
    a_key(d, &a, "{r}:seq:user");
    int rc = call_int(d, &a, &id);
    if (rc)
        return rc;
    a_script(&a, 2);
    a_key(d, &a, "{r}:user:%lld", (long long)id);
    a_key(d, &a, "{r}:users");
    a_i64(&a, id);
    a_strs(&a, "nick", u->nickname, "avatar", u->avatar, NULL);
    a_fi(&a, "sex", u->sex);
    a_fi(&a, "snap", u->snapshot);
    a_fi(&a, "created", u->created);
    if ((rc = eval_int(d, L_REG_NEW, &a, &ok)))
        return rc;
    u->id = id;
    return ok ? WX_OK : WX_ERR_STORE;
}

static int rd_user_get(struct wx_store *s, int64_t id, struct wx_user *out)
{
    struct rd *d = RD(s);
    struct args a;
    redisReply *r;
    hmget_user(d, &a, id);
    int rc = call(d, &a, &r);
    if (rc)
        return rc;
    rc = read_user(r, id, out) ? WX_OK : WX_ERR_NOTFOUND;
    freeReplyObject(r);
    return rc;
}

static int rd_user_list(struct wx_store *s, wx_user_cb cb, void *ud)
{
    struct rd *d = RD(s);
    int64_t *ids;
    size_t n;
    int rc = list_ids(d, "users", &ids, &n);
    struct args *cmd = calloc(RD_CHUNK, sizeof *cmd);
    redisReply **r = calloc(RD_CHUNK, sizeof *r);
    struct wx_user *users = calloc(RD_CHUNK, sizeof *users);
    if (rc == WX_OK && !(cmd && r && users))
        rc = WX_ERR_NOMEM;
    for (size_t at = 0; rc == WX_OK && at < n; at += RD_CHUNK) {
        size_t m = n - at < RD_CHUNK ? n - at : RD_CHUNK, found = 0;
        for (size_t i = 0; i < m; i++)
            hmget_user(d, &cmd[i], ids[at + i]);
        if ((rc = pipeline(d, cmd, (int)m, r)))
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

static int rd_user_set_snapshot(struct wx_store *s, int64_t id, int snapshot)
{
    struct rd *d = RD(s);
    struct args a;
    int64_t ok;
    a_script(&a, 1);
    a_key(d, &a, "{r}:user:%lld", (long long)id);
    a_str(&a, "0");
    a_fi(&a, "snap", snapshot);
    return reg_set(d, &a, &ok);
}

/* cmd on the (app-keyed) hash name:<app>, field user id, optional value. */
static int pair_cmd(struct rd *d, const char *cmd, const char *name, int64_t user_id,
                    int64_t app_id, const int64_t *value, redisReply **r)
{
    struct args a;
    a_cmd(&a, cmd);
    a_key(d, &a, "{r}:%s:%lld", name, (long long)app_id);
    a_i64(&a, user_id);
    if (value)
        a_i64(&a, *value);
    return call(d, &a, r);
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
    rc = r->type == REDIS_REPLY_NIL ? WX_ERR_NOTFOUND : r_i64(r, out) ? WX_OK : WX_ERR_STORE;
    freeReplyObject(r);
    return rc;
}

/* Following again keeps the first "since" (SQLite: INSERT OR IGNORE). */
static int rd_follow_set(struct wx_store *s, int64_t user_id, int64_t app_id, int on, int64_t now)
{
    return pair_set(RD(s), on ? "HSETNX" : "HDEL", "fol", user_id, app_id, on ? &now : NULL);
}

static int rd_follow_get(struct wx_store *s, int64_t user_id, int64_t app_id, int64_t *since)
{
    return pair_get(RD(s), "fol", user_id, app_id, since);
}

static int rd_follow_list(struct wx_store *s, int64_t user_id, wx_app_cb cb, void *ud)
{
    return user_id > 0 ? list_apps(RD(s), user_id, cb, ud) : WX_OK;
}

static int rd_consent_set(struct wx_store *s, int64_t user_id, int64_t app_id, int64_t now)
{
    return pair_set(RD(s), "HSET", "consent", user_id, app_id, &now);
}

static int rd_consent_get(struct wx_store *s, int64_t user_id, int64_t app_id, int64_t *at)
{
    return pair_get(RD(s), "consent", user_id, app_id, at);
}

/* ---- codes, grants, access tokens ---- */

/*
 * Creates the hash kind:<fresh id> holding the fields in f (field, value, ...), with L_NEW's
 * mode and gen. other_kind:other_id is its twin or its grant (other_id 0: the same id); a
 * grant's access token takes the grant's family.
 */
static int create(struct rd *d, const char *kind, const char *other_kind, int64_t other_id,
                  const char *mode, int64_t gen, int64_t expires, const struct args *f, int64_t *id)
{
    for (int i = 0; i < RD_TRIES; i++) {
        struct args a;
        int64_t v = fresh_id(other_id), ok, o = other_id > 0 ? other_id : v;
        a_script(&a, 2);
        a_key(d, &a, "{%llx}:%s:%lld", fam(v), kind, (long long)v);
        a_key(d, &a, "{%llx}:%s:%lld", fam(o), other_kind, (long long)o);
        a_i64(&a, expire_at(expires, RD_GRACE));
        a_str(&a, mode);
        a_i64(&a, gen);
        for (int j = 0; j < f->n; j++)
            a_bin(&a, f->v[j], f->l[j]);
        a.over |= f->over;
        int rc = eval_int(d, L_NEW, &a, &ok);
        if (rc)
            return rc;
        if (ok) {
            *id = v;
            return WX_OK;
        }
    }
    return WX_ERR_STORE;
}

static int rd_code_insert(struct wx_store *s, struct wx_code *c)
{
    struct args f;
    memset(&f, 0, offsetof(struct args, pool));
    a_str(&f, "mac");
    a_bin(&f, c->mac, WX_CRED_MAC);
    a_fi(&f, "app", c->app_id);
    a_fi(&f, "user", c->user_id);
    a_fi(&f, "scope", c->scope);
    a_fi(&f, "snap", c->snapshot);
    a_fi(&f, "exp", c->expires);
    a_fi(&f, "used", 0);
    return create(RD(s), "code", "grant", 0, "twin", 0, c->expires, &f, &c->id);
}

/* Fills g from a redeem reply {status, user, scope, snapshot}. */
static void redeemed(const redisReply *r, int64_t id, int64_t app_id, struct wx_grant *g)
{
    if (r->elements < 4)
        return;
    g->app_id = app_id;
    g->code_id = id;
    g->user_id = r_num(r->element[1]);
    g->scope = (int)r_num(r->element[2]);
    g->snapshot = (int)r_num(r->element[3]);
}

static int rd_code_redeem(struct wx_store *s, int64_t id, const unsigned char mac[WX_CRED_MAC],
                          int64_t app_id, int64_t now, struct wx_grant *g)
{
    struct rd *d = RD(s);
    struct args a;
    redisReply *r;
    int64_t gen, status = -1;
    int rc = app_gen(d, app_id, &gen);
    if (rc)
        return rc; /* no such app: nobody may redeem it */
    a_script(&a, 3);
    a_key(d, &a, "{%llx}:code:%lld", fam(id), (long long)id);
    a_key(d, &a, "{%llx}:grant:%lld", fam(id), (long long)id);
    a_key(d, &a, "{%llx}:rev", fam(id));
    a_bin(&a, mac, WX_CRED_MAC);
    a_i64(&a, app_id);
    a_i64(&a, now);
    a_i64(&a, gen);
    a_bin(&a, g->mac, WX_CRED_MAC);
    a_i64(&a, g->created);
    a_i64(&a, g->expires);
    a_i64(&a, expire_at(g->expires, RD_GRACE));
    a_i64(&a, id);
    if ((rc = eval(d, L_REDEEM, &a, &r)))
        return rc;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r_i64(r->element[0], &status))
        redeemed(r, id, app_id, g);
    freeReplyObject(r);
    switch (status) {
    case 0:
        g->id = id;
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
    struct args f;
    int64_t gen = 0;
    int rc = app_gen(d, g->app_id, &gen);
    if (rc && rc != WX_ERR_NOTFOUND)
        return rc;
    memset(&f, 0, offsetof(struct args, pool));
    a_str(&f, "mac");
    a_bin(&f, g->mac, WX_CRED_MAC);
    a_fi(&f, "app", g->app_id);
    a_fi(&f, "user", g->user_id);
    a_fi(&f, "code", g->code_id);
    a_fi(&f, "scope", g->scope);
    a_fi(&f, "snap", g->snapshot);
    a_fi(&f, "created", g->created);
    a_fi(&f, "exp", g->expires);
    return create(d, "grant", "code", 0, "twin", gen, g->expires, &f, &g->id);
}

/* Revoked when issued under an older generation of its app; gone with the app. */
static int check_gen(struct rd *d, int64_t app_id, int64_t gen, int *revoked)
{
    int64_t now_gen;
    int rc = app_gen(d, app_id, &now_gen);
    if (rc == WX_OK && gen < now_gen)
        *revoked = 1;
    return rc;
}

static int rd_grant_get(struct wx_store *s, int64_t id, struct wx_grant *g)
{
    struct rd *d = RD(s);
    struct args a[2];
    redisReply *r[2];
    a_cmd(&a[0], "HMGET");
    a_key(d, &a[0], "{%llx}:grant:%lld", fam(id), (long long)id);
    a_strs(&a[0], "mac", "app", "user", "code", "scope", "snap", "created", "exp", "gen", NULL);
    a_cmd(&a[1], "SISMEMBER");
    a_key(d, &a[1], "{%llx}:rev", fam(id));
    a_i64(&a[1], id);
    int rc = pipeline(d, a, 2, r);
    if (rc)
        return rc;
    redisReply **e = r[0]->element;
    rc = r[0]->type == REDIS_REPLY_ARRAY && r[0]->elements == 9 && e[0]->type != REDIS_REPLY_NIL
             ? WX_OK
             : WX_ERR_NOTFOUND;
    int64_t gen = 0;
    if (rc == WX_OK) {
        memset(g, 0, sizeof(*g));
        g->id = id;
        r_mac(e[0], g->mac);
        g->app_id = r_num(e[1]);
        g->user_id = r_num(e[2]);
        g->code_id = r_num(e[3]);
        g->scope = (int)r_num(e[4]);
        g->snapshot = (int)r_num(e[5]);
        g->created = r_num(e[6]);
        g->expires = r_num(e[7]);
        gen = r_num(e[8]);
        g->revoked = r[1]->type == REDIS_REPLY_INTEGER && r[1]->integer;
    }
    freeReplyObject(r[0]);
    freeReplyObject(r[1]);
    return rc ? rc : check_gen(d, g->app_id, gen, &g->revoked);
}

static int rd_access_insert(struct wx_store *s, struct wx_access *ac)
{
    struct args f;
    memset(&f, 0, offsetof(struct args, pool));
    a_str(&f, "mac");
    a_bin(&f, ac->mac, WX_CRED_MAC);
    a_fi(&f, "grant", ac->grant_id);
    a_fi(&f, "app", ac->app_id);
    a_fi(&f, "user", ac->user_id);
    a_fi(&f, "scope", ac->scope);
    a_fi(&f, "exp", ac->expires);
    a_fi(&f, "snap", ac->snapshot);
    return create(RD(s), "access", "grant", ac->grant_id > 0 ? ac->grant_id : 0, "grant", 0,
                  ac->expires, &f, &ac->id);
}

static int rd_access_get(struct wx_store *s, int64_t id, struct wx_access *ac)
{
    struct rd *d = RD(s);
    struct args a;
    redisReply *r;
    a_script(&a, 2);
    a_key(d, &a, "{%llx}:access:%lld", fam(id), (long long)id);
    a_key(d, &a, "{%llx}:rev", fam(id));
    int rc = eval(d, L_ACCESS_GET, &a, &r);
    if (rc)
        return rc;
    int64_t gen = 0;
    if (r->type == REDIS_REPLY_NIL) {
        rc = WX_ERR_NOTFOUND;
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 9) {
        rc = WX_ERR_STORE;
    } else {
        redisReply **e = r->element;
        memset(ac, 0, sizeof(*ac));
        ac->id = id;
        r_mac(e[0], ac->mac);
        ac->grant_id = r_num(e[1]);
        ac->app_id = r_num(e[2]);
        ac->user_id = r_num(e[3]);
        ac->scope = (int)r_num(e[4]);
        ac->expires = r_num(e[5]);
        ac->snapshot = (int)r_num(e[6]);
        gen = r_num(e[7]);
        ac->revoked = r_num(e[8]) != 0;
    }
    freeReplyObject(r);
    return rc ? rc : check_gen(d, ac->app_id, gen, &ac->revoked);
}

/* ---- basic tokens (in the registry slot: few, and checked against their app in one go) ---- */

static int rd_basic_insert(struct wx_store *s, struct wx_basic *b, int64_t now, int64_t grace)
{
    struct rd *d = RD(s);
    for (int i = 0; i < RD_TRIES; i++) {
        struct args a;
        redisReply *r;
        char prev[24] = "";
        int64_t id = fresh_id(0), st;
        a_cmd(&a, "GET");
        a_key(d, &a, "{r}:basiclast:%lld", (long long)b->app_id);
        int rc = call(d, &a, &r);
        if (rc)
            return rc;
        r_text(r, prev, sizeof prev);
        freeReplyObject(r);
        a_script(&a, 4);
        a_key(d, &a, "{r}:basiclast:%lld", (long long)b->app_id);
        a_key(d, &a, "{r}:basic:%lld", (long long)id);
        if (prev[0])
            a_key(d, &a, "{r}:basic:%s", prev);
        else
            a_key(d, &a, "{r}:basiclast:%lld", (long long)b->app_id);
        a_key(d, &a, "{r}:app:%lld", (long long)b->app_id);
        a_str(&a, prev);
        a_i64(&a, id);
        a_i64(&a, now + grace);
        a_i64(&a, expire_at(b->expires, RD_GRACE));
        a_bin(&a, b->mac, WX_CRED_MAC);
        a_i64(&a, b->app_id);
        a_i64(&a, b->expires);
        if ((rc = eval_int(d, L_BASIC_NEW, &a, &st)))
            return rc;
        if (st == 1) {
            b->id = id;
            return WX_OK;
        }
    }
    return WX_ERR_STORE;
}

static int rd_basic_get(struct wx_store *s, int64_t id, struct wx_basic *b)
{
    struct rd *d = RD(s);
    struct args a;
    redisReply *r;
    a_cmd(&a, "HMGET");
    a_key(d, &a, "{r}:basic:%lld", (long long)id);
    a_strs(&a, "mac", "app", "exp", "gen", NULL);
    int rc = call(d, &a, &r);
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
        r_mac(r->element[0], b->mac);
        b->app_id = r_num(r->element[1]);
        b->expires = r_num(r->element[2]);
        gen = r_num(r->element[3]);
    }
    freeReplyObject(r);
    if (rc == WX_OK)
        rc = check_gen(d, b->app_id, gen, &revoked);
    return rc == WX_OK && revoked ? WX_ERR_NOTFOUND : rc; /* SQLite deletes them */
}

/* ---- nonces, kv, purge ---- */

static void a_hexkey(struct rd *d, struct args *a, const char *kind, const unsigned char k[16])
{
    char hex[33];
    sodium_bin2hex(hex, sizeof hex, k, 16);
    a_key(d, a, "%s:%s", kind, hex);
}

static int rd_nonce_use(struct wx_store *s, const unsigned char nonce[16], int64_t expires)
{
    struct rd *d = RD(s);
    struct args a;
    redisReply *r;
    a_cmd(&a, "SET");
    a_hexkey(d, &a, "nonce", nonce);
    a_strs(&a, "1", "NX", "EXAT", NULL);
    a_i64(&a, expire_at(expires, RD_GRACE));
    int rc = call(d, &a, &r);
    if (rc)
        return rc;
    rc = r->type == REDIS_REPLY_NIL ? WX_ERR_CONFLICT : WX_OK;
    freeReplyObject(r);
    return rc;
}

static int rd_kv_put(struct wx_store *s, const unsigned char key[16], const void *value, size_t len,
                     int64_t expires)
{
    struct rd *d = RD(s);
    struct args a;
    redisReply *r;
    unsigned char *v = malloc(8 + len);
    if (!v)
        return WX_ERR_NOMEM;
    for (int i = 0; i < 8; i++)
        v[i] = (unsigned char)((uint64_t)expires >> (56 - 8 * i));
    if (len)
        memcpy(v + 8, value, len);
    a_cmd(&a, "SET");
    a_hexkey(d, &a, "kv", key);
    a_bin(&a, v, 8 + len);
    a_str(&a, "EXAT");
    a_i64(&a, expire_at(expires, RD_KV_MARGIN));
    int rc = call(d, &a, &r);
    if (rc == WX_OK)
        freeReplyObject(r);
    free(v);
    return rc;
}

static int rd_kv_get(struct wx_store *s, const unsigned char key[16], int64_t now, void *out,
                     size_t outsz, size_t *len)
{
    struct rd *d = RD(s);
    struct args a;
    redisReply *r;
    a_cmd(&a, "GET");
    a_hexkey(d, &a, "kv", key);
    int rc = call(d, &a, &r);
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
    .read_begin = rd_begin,
    .read_end = rd_end,
    .master_key = rd_master_key,
    .app_insert = rd_app_insert,
    .app_by_appid = rd_app_by_appid,
    .app_by_id = rd_app_by_id,
    .app_list = rd_app_list,
    .app_delete = rd_app_delete,
    .app_update = rd_app_update,
    .app_set_secret = rd_app_set_secret,
    .user_insert = rd_user_insert,
    .user_get = rd_user_get,
    .user_list = rd_user_list,
    .user_set_snapshot = rd_user_set_snapshot,
    .follow_set = rd_follow_set,
    .follow_get = rd_follow_get,
    .follow_list = rd_follow_list,
    .code_insert = rd_code_insert,
    .code_redeem = rd_code_redeem,
    .grant_insert = rd_grant_insert,
    .grant_get = rd_grant_get,
    .access_insert = rd_access_insert,
    .access_get = rd_access_get,
    .basic_insert = rd_basic_insert,
    .basic_get = rd_basic_get,
    .consent_set = rd_consent_set,
    .consent_get = rd_consent_get,
    .nonce_use = rd_nonce_use,
    .kv_put = rd_kv_put,
    .kv_get = rd_kv_get,
    .purge = rd_purge,
};

/* ---- the URL ---- */

/* An integer in [min, max] made of the n bytes at p; -1 otherwise. */
static long number(const char *p, size_t n, long min, long max)
{
    long v = 0;
    if (!n || n > 9)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v >= min && v <= max ? v : -1;
}

/* Percent-decodes n bytes into out (outsz with the NUL); 0 on a bad escape or overflow. */
static int decode(const char *p, size_t n, char *out, size_t outsz)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '%') {
            unsigned char hex[1];
            if (i + 2 >= n || sodium_hex2bin(hex, 1, p + i + 1, 2, NULL, NULL, NULL) != 0)
                return 0;
            c = hex[0];
            i += 2;
        }
        if (!c || o + 1 >= outsz)
            return 0;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 1;
}

static int copy(const char *p, size_t n, char *out, size_t outsz)
{
    if (n >= outsz)
        return 0;
    memcpy(out, p, n);
    out[n] = '\0';
    return 1;
}

/* [[USER]:PASSWORD@] */
static int parse_auth(struct rd *d, const char *p, size_t n)
{
    const char *colon = memchr(p, ':', n);
    if (!colon)
        return 0; /* a bare user name is not a password: refuse rather than guess */
    size_t un = (size_t)(colon - p);
    return decode(p, un, d->user, sizeof d->user) &&
           decode(colon + 1, n - un - 1, d->pass, sizeof d->pass) && d->pass[0];
}

/* HOST[:PORT] or [IPV6][:PORT] */
static int parse_host(struct rd *d, const char *p, size_t n)
{
    const char *port = NULL;
    size_t hn = n;
    if (n && p[0] == '[') {
        const char *end = memchr(p, ']', n);
        if (!end)
            return 0;
        hn = (size_t)(end - p - 1);
        if (!copy(p + 1, hn, d->host, sizeof d->host))
            return 0;
        port = end + 1 < p + n ? end + 1 : NULL;
        if (port && *port != ':')
            return 0;
    } else {
        const char *c = memchr(p, ':', n);
        if (c) {
            hn = (size_t)(c - p);
            port = c;
        }
        if (!copy(p, hn, d->host, sizeof d->host))
            return 0;
    }
    if (!d->host[0] || strpbrk(d->host, "/?#@%"))
        return 0;
    d->port = 6379;
    if (port && (d->port = (int)number(port + 1, (size_t)(p + n - port - 1), 1, 65535)) < 0)
        return 0;
    return 1;
}

/* prefix=P and timeout_ms=N, separated by '&'. */
static int parse_query(struct rd *d, const char *q, char *err, size_t errsz)
{
    while (*q) {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        size_t kn = eq ? (size_t)(eq - q) : n, vn = eq ? n - kn - 1 : 0;
        const char *v = eq ? eq + 1 : q + n;
        if (kn == 6 && !memcmp(q, "prefix", 6)) {
            if (!copy(v, vn, d->prefix, sizeof d->prefix) ||
                strspn(d->prefix, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                  "0123456789:_.-") != vn) {
                snprintf(err, errsz, "redis store: prefix must be at most %d of [A-Za-z0-9:_.-]",
                         RD_MAX_PREFIX);
                return 0;
            }
        } else if (kn == 10 && !memcmp(q, "timeout_ms", 10)) {
            if ((d->timeout_ms = (int)number(v, vn, 1, 60000)) < 0) {
                snprintf(err, errsz, "redis store: timeout_ms must be 1..60000");
                return 0;
            }
        } else {
            snprintf(err, errsz, "redis store: unknown option '%.*s' (prefix, timeout_ms)",
                     (int)(kn < 32 ? kn : 32), q);
            return 0;
        }
        q += n + (q[n] == '&');
    }
    return 1;
}

static int parse_url(struct rd *d, const char *url, char *err, size_t errsz)
{
    const char *p = url + 8, *end = p + strcspn(p, "/?");
    const char *at = NULL;
    for (const char *c = p; c < end; c++)
        if (*c == '@')
            at = c;
    snprintf(d->prefix, sizeof d->prefix, "wx:");
    d->timeout_ms = RD_TIMEOUT_MS;
    if ((at && !parse_auth(d, p, (size_t)(at - p))) ||
        !parse_host(d, at ? at + 1 : p, (size_t)(end - (at ? at + 1 : p)))) {
        snprintf(err, errsz,
                 "redis store: expected redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]"
                 "[?prefix=P&timeout_ms=N]");
        return 0;
    }
    if (*end == '/') {
        size_t n = strcspn(end + 1, "?");
        if (n && (d->db = (int)number(end + 1, n, 0, 1000000)) < 0) {
            snprintf(err, errsz, "redis store: the database must be a number");
            return 0;
        }
        end += 1 + n;
    }
    return *end != '?' || parse_query(d, end + 1, err, errsz);
}

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
    if (strncmp(url, "redis://", 8) != 0 || !parse_url(d, url, err, errsz)) {
        if (strncmp(url, "redis://", 8) != 0)
            snprintf(err, errsz, "redis store: the URL must start with redis://");
        rd_close(&d->base);
        return WX_ERR_INVALID;
    }
    if (rd_ping(&d->base) != WX_OK) {
        snprintf(err, errsz, "redis store: %s:%d: %s", d->host, d->port,
                 d->why[0] ? d->why : "no answer to PING");
        rd_close(&d->base);
        return WX_ERR_STORE;
    }
    *out = &d->base;
    return WX_OK;
}
