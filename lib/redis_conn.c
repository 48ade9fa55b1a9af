/*
 * redis_conn.c — one connection to Redis for the Redis store (see redis_conn.h): building a
 * command's arguments, reading replies, connecting within a timeout, running commands and
 * scripts, and parsing the redis:// URL. Every value is sent as its own argument
 * (RESP formatted here, wx_rc_append: binary-safe, never formatted into a command text).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "redis_conn.h"
#include "redis_mux.h"
#include "store.h"

/* ---- one command's arguments: borrowed values plus a pool for keys and numbers ---- */

void wx_rc_arg_bin(struct wx_rc_args *a, const void *p, size_t n)
{
    if (a->n == WX_RC_MAX_ARGS) {
        a->over = 1;
        return;
    }
    a->v[a->n] = n ? p : "";
    a->l[a->n++] = n;
}

void wx_rc_arg_str(struct wx_rc_args *a, const char *s)
{
    wx_rc_arg_bin(a, s, strlen(s));
}

/* Several strings, up to a NULL. */
__attribute__((sentinel)) void wx_rc_arg_strs(struct wx_rc_args *a, ...)
{
    va_list ap;
    va_start(ap, a);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
        wx_rc_arg_str(a, s);
    va_end(ap);
}

static void a_vput(struct wx_rc_args *a, const char *prefix, const char *fmt, va_list ap)
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
    wx_rc_arg_bin(a, at, (size_t)(p + n));
}

/* A key: the prefix, then fmt. */
__attribute__((format(printf, 3, 4))) void wx_rc_arg_key(const struct wx_rc *conn,
                                                         struct wx_rc_args *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    a_vput(a, conn->prefix, fmt, ap);
    va_end(ap);
}

size_t wx_rc_fmt_i64(char out[WX_RC_I64_LEN], int64_t v)
{
    char tmp[WX_RC_I64_LEN];
    uint64_t x = v < 0 ? -(uint64_t)v : (uint64_t)v;
    size_t n = 0, len = 0;
    do
        tmp[n++] = (char)('0' + x % 10);
    while ((x /= 10) != 0);
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = tmp[--n];
    return len;
}

/*
 * The pool's free bytes for an argument of at most max bytes, or NULL (a->over set). Hand-made
 * formatting, not snprintf: keys and numbers are most of what a store call builds.
 */
static char *pool_room(struct wx_rc_args *a, size_t max)
{
    if (sizeof a->pool - a->used < max + 1) {
        a->over = 1;
        return NULL;
    }
    return a->pool + a->used;
}

/* Ends the argument pool_room opened at at, len bytes long. */
static void pool_take(struct wx_rc_args *a, char *at, size_t len)
{
    at[len] = '\0';
    a->used += len + 1;
    wx_rc_arg_bin(a, at, len);
}

void wx_rc_arg_copy(struct wx_rc_args *a, const void *p, size_t n)
{
    char *at = pool_room(a, n);
    if (at) {
        if (n)
            memcpy(at, p, n);
        pool_take(a, at, n);
    }
}

void wx_rc_arg_i64(struct wx_rc_args *a, int64_t v)
{
    char *at = pool_room(a, WX_RC_I64_LEN);
    if (at)
        pool_take(a, at, wx_rc_fmt_i64(at, v));
}

void wx_rc_arg_credkey(const struct wx_rc *conn, struct wx_rc_args *a, uint64_t family,
                       const char *kind, int64_t id)
{
    static const char hex[] = "0123456789abcdef";
    size_t lp = strlen(conn->prefix), lk = strlen(kind);
    char *at = pool_room(a, lp + 20 + lk + 1 + WX_RC_I64_LEN);
    if (!at)
        return;
    size_t len = lp;
    memcpy(at, conn->prefix, lp);
    at[len++] = '{';
    int shift = 60;
    while (shift > 0 && !(family >> shift & 0xf))
        shift -= 4;
    for (; shift >= 0; shift -= 4)
        at[len++] = hex[family >> shift & 0xf];
    at[len++] = '}';
    at[len++] = ':';
    memcpy(at + len, kind, lk);
    len += lk;
    if (id >= 0) {
        at[len++] = ':';
        len += wx_rc_fmt_i64(at + len, id);
    }
    pool_take(a, at, len);
}

/* A field name and its integer value. */
void wx_rc_arg_field(struct wx_rc_args *a, const char *field, int64_t v)
{
    wx_rc_arg_str(a, field);
    wx_rc_arg_i64(a, v);
}

void wx_rc_arg_clear(struct wx_rc_args *a)
{
    memset(a, 0, offsetof(struct wx_rc_args, pool));
}

/* The start of a script call: EVALSHA, its sha (filled in by wx_rc_eval), the key count. */
void wx_rc_arg_script(struct wx_rc_args *a, int nkeys)
{
    wx_rc_arg_clear(a);
    wx_rc_arg_str(a, "EVALSHA");
    wx_rc_arg_str(a, "");
    wx_rc_arg_i64(a, nkeys);
}

void wx_rc_arg_cmd(struct wx_rc_args *a, const char *cmd)
{
    wx_rc_arg_clear(a);
    wx_rc_arg_str(a, cmd);
}

/* ---- replies ---- */

int wx_rc_reply_i64(const redisReply *r, int64_t *out)
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
int64_t wx_rc_reply_num(const redisReply *r)
{
    int64_t v = 0;
    return wx_rc_reply_i64(r, &v) ? v : 0;
}

void wx_rc_reply_text(const redisReply *r, char *out, size_t outsz)
{
    size_t n = r->type == REDIS_REPLY_STRING ? r->len : 0;
    if (n >= outsz)
        n = outsz - 1;
    if (n)
        memcpy(out, r->str, n);
    out[n] = '\0';
}

void wx_rc_reply_mac(const redisReply *r, unsigned char mac[WX_CRED_MAC])
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

static void drop(struct wx_rc *conn)
{
    if (conn->c)
        redisFree(conn->c);
    conn->c = NULL;
}

/*
 * The connection failed in an attempt begun at t0. One that waited out the timeout (a hung or
 * unreachable Redis) makes the calls of the next timeout_ms fail at once, so that a request
 * making several calls waits once, not once per call; a refused connection costs nothing and
 * is retried by the next call.
 */
static void failed(struct wx_rc *conn, int64_t t0)
{
    int64_t now = mono_ms();
    drop(conn);
    if (now - t0 >= conn->timeout_ms / 2)
        conn->hold_until = now + conn->timeout_ms;
}

/* The decimal digits of v. */
static size_t digits(size_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* "<c><v>\r\n" at p; what follows it. */
static char *resp_head(char *p, char c, size_t v)
{
    *p++ = c;
    size_t n = digits(v);
    for (size_t i = n; i-- > 0; v /= 10)
        p[i] = (char)('0' + v % 10);
    p += n;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

int wx_rc_append(redisContext *c, const struct wx_rc_args *a, int n, char **buf, size_t *cap,
                 int wipe)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        total += 3 + digits((size_t)a[i].n);
        for (int j = 0; j < a[i].n; j++)
            total += 5 + digits(a[i].l[j]) + a[i].l[j];
    }
    if (total > *cap) {
        char *b = realloc(*buf, total);
        if (!b)
            return REDIS_ERR;
        *buf = b;
        *cap = total;
    }
    char *p = *buf;
    for (int i = 0; i < n; i++) {
        p = resp_head(p, '*', (size_t)a[i].n);
        for (int j = 0; j < a[i].n; j++) {
            p = resp_head(p, '$', a[i].l[j]);
            memcpy(p, a[i].v[j], a[i].l[j]);
            p += a[i].l[j];
            *p++ = '\r';
            *p++ = '\n';
        }
    }
    int rc = redisAppendFormattedCommand(c, *buf, total);
    if (wipe)
        sodium_memzero(*buf, total);
    return rc;
}

/* Redis closed an idle connection (restart, timeout): found before a command is risked. */
static int stale(redisContext *c)
{
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* AUTH, SELECT and PING on the new blocking connection c. */
static int handshake(const struct wx_rc *conn, redisContext *c)
{
    redisReply *r = NULL;
    int ok = 1;
    if (conn->pass[0]) {
        r = conn->user[0] ? redisCommand(c, "AUTH %s %s", conn->user, conn->pass)
                          : redisCommand(c, "AUTH %s", conn->pass);
        ok = r && r->type != REDIS_REPLY_ERROR;
        freeReplyObject(r);
    }
    if (ok && conn->db) {
        r = redisCommand(c, "SELECT %d", conn->db);
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

int wx_rc_readonly(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "READONLY", 8);
}

/* Connects to host:port within tv, AUTH, SELECT, PING done: the context, or NULL (why set). */
static redisContext *open_at(const struct wx_rc *conn, const char *host, int port,
                             struct timeval tv, char *why, size_t whysz)
{
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (c && !c->err && redisSetTimeout(c, tv) == REDIS_OK && handshake(conn, c) == WX_OK)
        return c;
    snprintf(why, whysz, "%s",
             !c       ? "out of memory"
             : c->err ? c->errstr
                      : "no answer to AUTH, SELECT or PING");
    if (c)
        redisFree(c);
    return NULL;
}

/* Whether ROLE on c says master. */
static int is_master(redisContext *c)
{
    redisReply *r = redisCommand(c, "ROLE");
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
             r->element[0]->type == REDIS_REPLY_STRING && !strcmp(r->element[0]->str, "master");
    freeReplyObject(r);
    return ok;
}

/*
 * Asks sentinel sa (a connection of its own, within tv) for master's address: 0 with host and
 * *port (not yet checked: the caller's ROLE or range check), -1 with why set.
 */
static int ask_sentinel(const struct wx_rc_addr *sa, const char *master, struct timeval tv,
                        char *host, size_t hostsz, long *port, char *why, size_t whysz)
{
    redisContext *s = redisConnectWithTimeout(sa->host, sa->port, tv);
    if (!s || s->err || redisSetTimeout(s, tv) != REDIS_OK) {
        snprintf(why, whysz, "sentinel %s:%d: %s", sa->host, sa->port,
                 s && s->err ? s->errstr : "out of memory");
        if (s)
            redisFree(s);
        return -1;
    }
    redisReply *r = redisCommand(s, "SENTINEL get-master-addr-by-name %s", master);
    redisFree(s);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING) {
        snprintf(why, whysz, "sentinel %s:%d %s master '%s'", sa->host, sa->port,
                 r && r->type == REDIS_REPLY_NIL ? "knows no" : "gave no address for", master);
        freeReplyObject(r);
        return -1;
    }
    snprintf(host, hostsz, "%s", r->element[0]->str);
    *port = strtol(r->element[1]->str, NULL, 10);
    freeReplyObject(r);
    return 0;
}

static int watch_addr(const struct wx_rc *conn, char *host, size_t hostsz, int *port);

/* host:port, named by sentinel sa, opened and confirmed a master by ROLE: the context (conn's
 * address set), or NULL with why set. */
static redisContext *open_named(struct wx_rc *conn, const struct wx_rc_addr *sa, const char *host,
                                long port, struct timeval tv, char *why, size_t whysz)
{
    char w[128];
    redisContext *c =
        port > 0 && port < 65536 ? open_at(conn, host, (int)port, tv, w, sizeof w) : NULL;
    if (c && is_master(c)) {
        snprintf(conn->host, sizeof conn->host, "%s", host);
        conn->port = (int)port;
        return c;
    }
    snprintf(why, whysz, "the master sentinel %s:%d names, %s:%ld, %s", sa->host, sa->port, host,
             port,
             c          ? "is not a master (ROLE)"
             : port > 0 ? w
                        : "has no valid port");
    if (c)
        redisFree(c);
    return NULL;
}

/*
 * Asks the sentinels in turn (from the one that answered last) for the master, and opens it
 * once ROLE confirms: a sentinel may name a master that failed or was demoted since. Once the
 * sentinels have announced a master (+switch-master, the watch), a sentinel that names another
 * is passed over while one that agrees may follow: it may lag, or sit on the old master's side
 * of a partition, where the old master still says master to ROLE. It is tried last, when none
 * agrees (the announcement itself may be the stale one). No sentinel answering fails: only
 * they can say which master is the master.
 */
static redisContext *open_sentinel(struct wx_rc *conn, struct timeval tv, char *why, size_t whysz)
{
    static _Thread_local int first; /* the sentinel that answered last */
    char announced[sizeof conn->host], other[sizeof conn->host] = "";
    int aport = 0, oi = -1;
    long oport = 0;
    int have = watch_addr(conn, announced, sizeof announced, &aport);
    snprintf(why, whysz, "no sentinel answered");
    for (int k = 0; k < conn->nsentinels; k++) {
        int i = (first + k) % conn->nsentinels;
        const struct wx_rc_addr *sa = &conn->sentinel[i];
        char host[sizeof conn->host];
        long port;
        if (ask_sentinel(sa, conn->master, tv, host, sizeof host, &port, why, whysz) != 0)
            continue;
        if (have && (strcmp(host, announced) || port != aport)) {
            if (oi < 0) { /* kept for last */
                snprintf(other, sizeof other, "%s", host);
                oport = port;
                oi = i;
            }
            continue;
        }
        redisContext *c = open_named(conn, sa, host, port, tv, why, whysz);
        if (c) {
            first = i;
            return c;
        }
    }
    redisContext *c =
        oi >= 0 ? open_named(conn, &conn->sentinel[oi], other, oport, tv, why, whysz) : NULL;
    if (c)
        first = oi;
    return c;
}

/* ---- +switch-master: the sentinels' announcements of a failover ---- */

/*
 * What the sentinels of one URL say about one master, followed by a thread of its own: it
 * subscribes to +switch-master on one sentinel (the next one when that fails), asks for the
 * master's address after each subscription (an announcement missed while it was not
 * subscribed), and sends a PING after each second of silence (a dead sentinel is left after
 * WX_RC_WATCH_PING_MS more). gen counts the changes of the address; a connection compares it with
 * the one it saw when it connected (wx_rc_master_moved). Watches live as long as the process.
 */
struct wx_rc_watch {
    struct wx_rc_watch *next;
    int nsentinels, timeout_ms;
    struct wx_rc_addr sentinel[WX_RC_MAX_SENTINELS];
    char master[128];
    pthread_mutex_t mu;
    char host[256]; /* the master's address as last announced (mu) */
    int port;
    _Atomic uint64_t gen;
};

static pthread_mutex_t watches_mu = PTHREAD_MUTEX_INITIALIZER;
static struct wx_rc_watch *watches;

/* The sentinels now name host:port for w's master: a change counts (and is logged). */
static void watch_set(struct wx_rc_watch *w, const char *host, int port, const char *sentinel,
                      int sport, const char *how)
{
    pthread_mutex_lock(&w->mu);
    int changed = strcmp(w->host, host) || w->port != port, first = !w->host[0];
    char was[300];
    snprintf(was, sizeof was, "%s:%d", w->host, w->port);
    if (changed) {
        snprintf(w->host, sizeof w->host, "%s", host);
        w->port = port;
        atomic_fetch_add(&w->gen, 1);
    }
    pthread_mutex_unlock(&w->mu);
    if (changed && !first)
        wx_store_notef("store: redis master '%s' moved from %s to %s:%d (%s from sentinel %s:%d)",
                       w->master, was, host, port, how, sentinel, sport);
}

/* Asks sentinel i for w's master once: 0 with the address set. */
static int watch_lookup(struct wx_rc_watch *w, int i, struct timeval tv)
{
    const struct wx_rc_addr *sa = &w->sentinel[i];
    char host[256], why[160];
    long port;
    if (ask_sentinel(sa, w->master, tv, host, sizeof host, &port, why, sizeof why) != 0 ||
        port <= 0 || port > 65535)
        return -1;
    watch_set(w, host, (int)port, sa->host, sa->port, "lookup");
    return 0;
}

/* One +switch-master message: "MASTER OLD-IP OLD-PORT NEW-IP NEW-PORT". */
static void watch_message(struct wx_rc_watch *w, int i, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "message") ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return;
    const char *f[5], *p = r->element[2]->str; /* the five fields, space-separated */
    size_t len[5];
    int n = 0;
    while (n < 5 && *p) {
        size_t k = strcspn(p, " ");
        f[n] = p;
        len[n++] = k;
        p += k + (p[k] == ' ');
    }
    char host[256], *end;
    long port = n == 5 && !*p ? strtol(f[4], &end, 10) : 0;
    if (port <= 0 || port > 65535 || end != f[4] + len[4] || len[3] == 0 || len[3] >= sizeof host ||
        len[0] != strlen(w->master) || memcmp(f[0], w->master, len[0]))
        return;
    memcpy(host, f[3], len[3]);
    host[len[3]] = '\0';
    watch_set(w, host, (int)port, w->sentinel[i].host, w->sentinel[i].port, "+switch-master");
}

/* Subscribed to sentinel i until it fails or stays silent. */
static void watch_follow(struct wx_rc_watch *w, int i)
{
    struct timeval tv = {w->timeout_ms / 1000, (w->timeout_ms % 1000) * 1000};
    const struct wx_rc_addr *sa = &w->sentinel[i];
    redisContext *c = redisConnectWithTimeout(sa->host, sa->port, tv);
    redisReply *r = NULL;
    if (c && !c->err && redisSetTimeout(c, tv) == REDIS_OK)
        r = redisCommand(c, "SUBSCRIBE +switch-master");
    int ok = r && r->type == REDIS_REPLY_ARRAY;
    freeReplyObject(r);
    if (ok)
        ok = watch_lookup(w, i, tv) == 0;
    ok = ok && wx_rc_nonblock(c) == WX_OK;
    int pinged = 0; /* a PING is out, unanswered */
    while (ok) {
        /* what has arrived (the first pass: what came in with the SUBSCRIBE reply) */
        void *v;
        while ((ok = redisGetReplyFromReader(c, &v) == REDIS_OK) && v) {
            r = v;
            if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                r->element[0]->type == REDIS_REPLY_STRING && !strcmp(r->element[0]->str, "pong"))
                pinged = 0;
            else
                watch_message(w, i, r);
            freeReplyObject(r);
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int n = ok ? poll(&p, 1, WX_RC_WATCH_PING_MS) : -1;
        if (n < 0 && ok && errno == EINTR)
            continue;
        if (n == 0) {   /* a second of silence: is it still there? */
            if (pinged) /* the last PING got no answer */
                break;
            int done = 0;
            if (redisAppendCommand(c, "PING") != REDIS_OK ||
                redisBufferWrite(c, &done) == REDIS_ERR)
                break;
            pinged = 1;
            continue;
        }
        if (n < 0 || redisBufferRead(c) == REDIS_ERR)
            break;
    }
    if (c)
        redisFree(c);
}

static void *watch_main(void *arg)
{
    struct wx_rc_watch *w = arg;
    sigset_t set; /* hiredis writes with write(2): a sentinel gone must not raise SIGPIPE */
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (int i = 0;; i = (i + 1) % w->nsentinels) {
        watch_follow(w, i);
        struct timespec pause = {0, WX_RC_WATCH_RETRY_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

/* The watch of conn's sentinels and master, started on first use; NULL when out of resources. */
static struct wx_rc_watch *watch_get(const struct wx_rc *conn)
{
    pthread_mutex_lock(&watches_mu);
    struct wx_rc_watch *w = watches;
    for (; w; w = w->next) {
        int same = w->nsentinels == conn->nsentinels && !strcmp(w->master, conn->master);
        for (int i = 0; same && i < w->nsentinels; i++)
            same = w->sentinel[i].port == conn->sentinel[i].port &&
                   !strcmp(w->sentinel[i].host, conn->sentinel[i].host);
        if (same)
            break;
    }
    if (!w && (w = calloc(1, sizeof *w))) {
        w->nsentinels = conn->nsentinels;
        w->timeout_ms = conn->timeout_ms;
        memcpy(w->sentinel, conn->sentinel, sizeof w->sentinel);
        snprintf(w->master, sizeof w->master, "%s", conn->master);
        pthread_mutex_init(&w->mu, NULL);
        pthread_t t;
        pthread_attr_t at;
        int ok = pthread_attr_init(&at) == 0;
        ok = ok && pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED) == 0 &&
             pthread_create(&t, &at, watch_main, w) == 0;
        pthread_attr_destroy(&at);
        if (ok) {
            w->next = watches;
            watches = w;
        } else {
            pthread_mutex_destroy(&w->mu);
            free(w);
            w = NULL;
        }
    }
    pthread_mutex_unlock(&watches_mu);
    return w;
}

int wx_rc_master_moved(struct wx_rc *conn, uint64_t *seen)
{
    if (!conn->nsentinels)
        return 0;
    if (!conn->watch && !(conn->watch = watch_get(conn)))
        return 0;
    struct wx_rc_watch *w = conn->watch;
    uint64_t g = atomic_load(&w->gen);
    if (g == *seen)
        return 0;
    *seen = g;
    pthread_mutex_lock(&w->mu);
    int moved = w->host[0] && (strcmp(w->host, conn->host) || w->port != conn->port);
    pthread_mutex_unlock(&w->mu);
    return moved;
}

/* The master's address the watch of conn's sentinels holds: 1 with it, 0 when none yet. */
static int watch_addr(const struct wx_rc *conn, char *host, size_t hostsz, int *port)
{
    struct wx_rc_watch *w = conn->watch;
    if (!w)
        return 0;
    pthread_mutex_lock(&w->mu);
    int ok = w->host[0] != '\0';
    if (ok) {
        snprintf(host, hostsz, "%s", w->host);
        *port = w->port;
    }
    pthread_mutex_unlock(&w->mu);
    return ok;
}

int wx_rc_nonblock(redisContext *c)
{
    int fl = fcntl(c->fd, F_GETFL);
    if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return WX_ERR_STORE;
    c->flags &= ~REDIS_BLOCK; /* hiredis then takes EAGAIN as "later" */
    return WX_OK;
}

redisContext *wx_rc_open(struct wx_rc *conn, char *why, size_t whysz)
{
    struct timeval tv = {conn->timeout_ms / 1000, (conn->timeout_ms % 1000) * 1000};
    return conn->nsentinels ? open_sentinel(conn, tv, why, whysz)
                            : open_at(conn, conn->host, conn->port, tv, why, whysz);
}

int wx_rc_connect(struct wx_rc *conn)
{
    if (conn->nseeds)
        return wx_cluster_ready(conn);
    if (conn->mux)
        return wx_mux_ready(conn->mux, conn->why, sizeof conn->why);
    if (conn->c && !stale(conn->c) && !wx_rc_master_moved(conn, &conn->master_gen))
        return WX_OK;
    drop(conn);
    wx_rc_master_moved(conn, &conn->master_gen); /* what the sentinels said when this connects */
    int64_t t0 = mono_ms();
    if (t0 < conn->hold_until) {
        snprintf(conn->why, sizeof conn->why, "timed out a moment ago");
        return WX_ERR_STORE;
    }
    struct sigpipe g;
    sp_block(&g);
    redisContext *c = wx_rc_open(conn, conn->why, sizeof conn->why);
    if (c) {
        redisEnableKeepAlive(c);
        conn->c = c;
        conn->why[0] = '\0';
    }
    sp_unblock(&g, c == NULL);
    if (!c)
        failed(conn, t0);
    return c ? WX_OK : WX_ERR_STORE;
}

/*
 * A unit on the shared connection. The reason goes through a buffer of this call's own (the
 * I/O thread writes it, and parked fibers share conn), copied into conn->why on this thread.
 */
static int mux_run(struct wx_rc *conn, struct wx_rc_args *a, int n, int wait, redisReply **out)
{
    char why[sizeof conn->why];
    int rc = wx_mux_run(conn->mux, a, n, wait, out, why, sizeof why);
    if (rc)
        memcpy(conn->why, why, sizeof why);
    return rc;
}

static void free_all(redisReply **r, int n);

/* Sends n commands in one round trip: WX_OK with every reply, error replies included. */
static int send_raw(struct wx_rc *conn, struct wx_rc_args *a, int n, redisReply **out)
{
    int got = 0;
    for (int i = 0; i < n; i++)
        if (a[i].over) {
            snprintf(conn->why, sizeof conn->why, "a command longer than the store builds");
            return WX_ERR_STORE;
        }
    if (conn->mux)
        return mux_run(conn, a, n, 0, out) ? WX_ERR_STORE : WX_OK;
    if (wx_rc_connect(conn))
        return WX_ERR_STORE;
    struct sigpipe g;
    int64_t t0 = mono_ms();
    sp_block(&g);
    char *buf = NULL;
    size_t cap = 0;
    int sent = wx_rc_append(conn->c, a, n, &buf, &cap, 0) == REDIS_OK;
    free(buf);
    while (sent && got < n && redisGetReply(conn->c, (void **)&out[got]) == REDIS_OK && out[got])
        got++;
    sp_unblock(&g, got < n);
    for (int i = 0; i < got && conn->nsentinels; i++)
        if (wx_rc_readonly(out[i])) {
            drop(conn); /* a replica now (a failover): the next call asks the sentinels again */
            break;
        }
    if (got == n)
        return WX_OK;
    failed(conn, t0);
    for (int i = 0; i < got; i++)
        freeReplyObject(out[i]);
    return WX_ERR_STORE;
}

/* Whether a may write: every command but those the store reads with (scripts all write). */
static int writes(const struct wx_rc_args *a)
{
    static const char *const reads[] = {
        "GET",  "MGET",      "HGET", "HMGET",  "HGETALL", "EXISTS", "SMEMBERS", "SCARD", "TTL",
        "PTTL", "SISMEMBER", "PING", "SCRIPT", "SCAN",    "TYPE",   "ROLE",     "INFO",  "DBSIZE"};
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++)
        if (a->l[0] == strlen(reads[i]) && !strncasecmp(a->v[0], reads[i], a->l[0]))
            return 0;
    return 1;
}

/*
 * send_raw, and with wait=N, when a command writes, WAIT N after them in the same round trip:
 * WX_ERR_STORE (the writes made, but not confirmed) unless N replicas have them.
 */
int wx_rc_send(struct wx_rc *conn, struct wx_rc_args *a, int n, redisReply **out)
{
    int w = 0;
    for (int i = 0; i < n && conn->wait && !w; i++)
        w = writes(&a[i]);
    if (!w)
        return send_raw(conn, a, n, out);
    if (conn->mux) /* the shared stream sends one WAIT per batch, after its writes */
        return mux_run(conn, a, n, 1, out) ? WX_ERR_STORE : WX_OK;
    struct wx_rc_args *b = malloc(((size_t)n + 1) * sizeof *b);
    redisReply **o = malloc(((size_t)n + 1) * sizeof *o);
    int rc = WX_ERR_STORE;
    if (b && o) {
        memcpy(b, a, (size_t)n * sizeof *a); /* values point into a's pools: a outlives this */
        wx_rc_arg_cmd(&b[n], "WAIT");
        wx_rc_arg_i64(&b[n], conn->wait);
        wx_rc_arg_i64(&b[n], conn->timeout_ms / 2 > 0 ? conn->timeout_ms / 2 : 1);
        rc = send_raw(conn, b, n + 1, o);
    }
    if (rc == WX_OK) {
        long long acked = o[n]->type == REDIS_REPLY_INTEGER ? o[n]->integer : -1;
        freeReplyObject(o[n]);
        if (acked >= conn->wait) {
            memcpy(out, o, (size_t)n * sizeof *o);
        } else {
            free_all(o, n);
            snprintf(conn->why, sizeof conn->why, "WAIT: %lld of %d replicas confirmed the write",
                     acked, conn->wait);
            rc = WX_ERR_STORE;
        }
    }
    free(o);
    free(b);
    return rc;
}

/* wx_rc_send, each command routed to its slot's node on a cluster. */
static int send_all(struct wx_rc *conn, struct wx_rc_args *a, int n, redisReply **out)
{
    return conn->nseeds ? wx_cluster_send(conn, a, n, out) : wx_rc_send(conn, a, n, out);
}

/*
 * A call's outcome, told to the store's log (store.h): a failure with its reason (conn->why),
 * which says which server when the routing does not (a cluster's reasons name their node).
 */
static int outcome(struct wx_rc *conn, int rc)
{
    if (rc == WX_OK) {
        wx_store_note_ok();
        return WX_OK;
    }
    char where[sizeof conn->master + sizeof conn->host + 40];
    if (conn->nseeds)
        snprintf(where, sizeof where, "redis cluster");
    else if (conn->nsentinels)
        snprintf(where, sizeof where, "redis master '%s' (%s:%d)", conn->master,
                 conn->host[0] ? conn->host : "not known yet", conn->port);
    else
        snprintf(where, sizeof where, "redis %s:%d", conn->host, conn->port);
    wx_store_note_failure(where, conn->why[0] ? conn->why : "no reason given");
    return WX_ERR_STORE;
}

int wx_rc_ready(struct wx_rc *conn)
{
    return wx_rc_connect(conn) == WX_OK ? WX_OK : outcome(conn, WX_ERR_STORE);
}

/* An error reply's text as the reason (Redis's own words: "OOM command not allowed ..."). */
static void error_why(struct wx_rc *conn, const redisReply *r)
{
    snprintf(conn->why, sizeof conn->why, "Redis replied: %.*s", (int)(sizeof conn->why - 16),
             r->str ? r->str : "an error");
}

/* One command: WX_OK with a reply that is not an error (free it), or WX_ERR_STORE. */
static int call(struct wx_rc *conn, struct wx_rc_args *a, redisReply **out)
{
    *out = NULL;
    redisReply *r = NULL;
    if (send_all(conn, a, 1, &r) != WX_OK)
        return WX_ERR_STORE;
    if (r->type == REDIS_REPLY_ERROR) {
        error_why(conn, r);
        freeReplyObject(r);
        return WX_ERR_STORE;
    }
    *out = r;
    return WX_OK;
}

int wx_rc_call(struct wx_rc *conn, struct wx_rc_args *a, redisReply **out)
{
    conn->why[0] = '\0';
    return outcome(conn, call(conn, a, out));
}

static void free_all(redisReply **r, int n)
{
    for (int i = 0; i < n; i++) {
        freeReplyObject(r[i]);
        r[i] = NULL;
    }
}

/* Whether any of r[0..n) is an error reply (with noscript: other than NOSCRIPT); the first
 * one's text becomes conn's reason. */
static int any_error(struct wx_rc *conn, redisReply **r, int n, int noscript_ok)
{
    for (int i = 0; i < n; i++)
        if (r[i]->type == REDIS_REPLY_ERROR &&
            !(noscript_ok && !strncmp(r[i]->str, "NOSCRIPT", 8))) {
            error_why(conn, r[i]);
            return 1;
        }
    return 0;
}

static int pipeline(struct wx_rc *conn, struct wx_rc_args *a, int n, redisReply **out)
{
    if (send_all(conn, a, n, out))
        return WX_ERR_STORE;
    if (!any_error(conn, out, n, 0))
        return WX_OK;
    free_all(out, n);
    return WX_ERR_STORE;
}

int wx_rc_pipeline(struct wx_rc *conn, struct wx_rc_args *a, int n, redisReply **out)
{
    conn->why[0] = '\0';
    return outcome(conn, pipeline(conn, a, n, out));
}

/* SCRIPT LOAD of conn->lua[script] unless its sha is known. */
static int load_sha(struct wx_rc *conn, int script)
{
    if (conn->sha[script][0])
        return WX_OK;
    struct wx_rc_args load;
    redisReply *r;
    wx_rc_arg_cmd(&load, "SCRIPT");
    wx_rc_arg_strs(&load, "LOAD", conn->lua[script], NULL);
    if (call(conn, &load, &r))
        return WX_ERR_STORE;
    if (r->type == REDIS_REPLY_STRING && r->len == 40)
        memcpy(conn->sha[script], r->str, 41);
    freeReplyObject(r);
    return conn->sha[script][0] ? WX_OK : WX_ERR_STORE;
}

static void as_evalsha(struct wx_rc *conn, int script, struct wx_rc_args *a)
{
    a->v[1] = conn->sha[script];
    a->l[1] = 40;
}

static void as_eval(struct wx_rc *conn, int script, struct wx_rc_args *a)
{
    a->v[0] = "EVAL";
    a->l[0] = 4;
    a->v[1] = conn->lua[script];
    a->l[1] = strlen(conn->lua[script]);
}

static int eval_pipeline(struct wx_rc *conn, int script, struct wx_rc_args *a, int n,
                         redisReply **out)
{
    if (load_sha(conn, script))
        return WX_ERR_STORE;
    for (int i = 0; i < n; i++)
        as_evalsha(conn, script, &a[i]);
    if (send_all(conn, a, n, out))
        return WX_ERR_STORE;
    if (any_error(conn, out, n, 1)) {
        free_all(out, n);
        return WX_ERR_STORE;
    }
    /* Redis forgot the script (a restart or a flush) between the load and these: send the
     * calls that met NOSCRIPT again with the script's text, in order. */
    for (int i = 0; i < n; i++) {
        if (out[i]->type != REDIS_REPLY_ERROR)
            continue;
        freeReplyObject(out[i]);
        as_eval(conn, script, &a[i]);
        if (call(conn, &a[i], &out[i])) {
            free_all(out, n); /* out[i] is NULL */
            return WX_ERR_STORE;
        }
    }
    return WX_OK;
}

int wx_rc_eval_pipeline(struct wx_rc *conn, int script, struct wx_rc_args *a, int n,
                        redisReply **out)
{
    conn->why[0] = '\0';
    return outcome(conn, eval_pipeline(conn, script, a, n, out));
}

/* EVALSHA, and EVAL when Redis does not know the script (after a restart or a flush). */
int wx_rc_eval(struct wx_rc *conn, int script, struct wx_rc_args *a, redisReply **out)
{
    *out = NULL;
    return wx_rc_eval_pipeline(conn, script, a, 1, out);
}

/* A script (script >= 0) or command (-1) whose reply is one integer. */
static int run_int(struct wx_rc *conn, int script, struct wx_rc_args *a, int64_t *v)
{
    redisReply *r = NULL;
    int rc = script >= 0 ? wx_rc_eval(conn, script, a, &r) : wx_rc_call(conn, a, &r);
    if (rc)
        return rc;
    rc = wx_rc_reply_i64(r, v) ? WX_OK : WX_ERR_STORE;
    freeReplyObject(r);
    if (rc) {
        snprintf(conn->why, sizeof conn->why, "Redis replied with something else than a number");
        outcome(conn, rc);
    }
    return rc;
}

int wx_rc_eval_int(struct wx_rc *conn, int script, struct wx_rc_args *a, int64_t *v)
{
    return run_int(conn, script, a, v);
}

int wx_rc_call_int(struct wx_rc *conn, struct wx_rc_args *a, int64_t *v)
{
    return run_int(conn, -1, a, v);
}

void wx_rc_close(struct wx_rc *conn)
{
    wx_cluster_free(conn);
    wx_mux_put(conn->mux);
    conn->mux = NULL;
    drop(conn);
    sodium_memzero(conn->pass, sizeof conn->pass);
}

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
static int parse_auth(struct wx_rc *conn, const char *p, size_t n)
{
    const char *colon = memchr(p, ':', n);
    if (!colon)
        return 0; /* a bare user name is not a password: refuse rather than guess */
    size_t un = (size_t)(colon - p);
    return decode(p, un, conn->user, sizeof conn->user) &&
           decode(colon + 1, n - un - 1, conn->pass, sizeof conn->pass) && conn->pass[0];
}

/* HOST[:PORT] or [IPV6][:PORT] */
static int parse_host(struct wx_rc *conn, const char *p, size_t n)
{
    const char *port = NULL;
    size_t hn = n;
    if (n && p[0] == '[') {
        const char *end = memchr(p, ']', n);
        if (!end)
            return 0;
        hn = (size_t)(end - p - 1);
        if (!copy(p + 1, hn, conn->host, sizeof conn->host))
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
        if (!copy(p, hn, conn->host, sizeof conn->host))
            return 0;
    }
    if (!conn->host[0] || strpbrk(conn->host, "/?#@%"))
        return 0;
    conn->port = 6379;
    if (port && (conn->port = (int)number(port + 1, (size_t)(p + n - port - 1), 1, 65535)) < 0)
        return 0;
    return 1;
}

/* prefix=P and timeout_ms=N, separated by '&'. */
static int parse_query(struct wx_rc *conn, const char *q, char *err, size_t errsz)
{
    while (*q) {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        size_t kn = eq ? (size_t)(eq - q) : n, vn = eq ? n - kn - 1 : 0;
        const char *v = eq ? eq + 1 : q + n;
        if (kn == 6 && !memcmp(q, "prefix", 6)) {
            if (!copy(v, vn, conn->prefix, sizeof conn->prefix) ||
                strspn(conn->prefix, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789:_.-") != vn) {
                snprintf(err, errsz, "redis store: prefix must be at most %d of [A-Za-z0-9:_.-]",
                         WX_RC_MAX_PREFIX);
                return 0;
            }
        } else if (kn == 2 && !memcmp(q, "db", 2) && conn->nsentinels) {
            if ((conn->db = (int)number(v, vn, 0, 1000000)) < 0) {
                snprintf(err, errsz, "redis store: db must be a number");
                return 0;
            }
        } else if (kn == 4 && !memcmp(q, "wait", 4)) {
            if ((conn->wait = (int)number(v, vn, 0, WX_RC_MAX_WAIT)) < 0) {
                snprintf(err, errsz, "redis store: wait must be 0..%d replicas", WX_RC_MAX_WAIT);
                return 0;
            }
        } else if (kn == 10 && !memcmp(q, "timeout_ms", 10)) {
            if ((conn->timeout_ms = (int)number(v, vn, 1, 60000)) < 0) {
                snprintf(err, errsz, "redis store: timeout_ms must be 1..60000");
                return 0;
            }
        } else {
            snprintf(
                err, errsz, "redis store: unknown option '%.*s' (%s)", (int)(kn < 32 ? kn : 32), q,
                conn->nsentinels ? "db, prefix, timeout_ms, wait" : "prefix, timeout_ms, wait");
            return 0;
        }
        q += n + (q[n] == '&');
    }
    return 1;
}

/*
 * The defaults (prefix, timeout) into conn; where the authority part of the URL body p ends
 * (at '/', '?' or the end), and in *at its last '@' (NULL: none).
 */
static const char *url_head(struct wx_rc *conn, const char *p, const char **at)
{
    const char *end = p + strcspn(p, "/?");
    *at = NULL;
    for (const char *c = p; c < end; c++)
        if (*c == '@')
            *at = c;
    snprintf(conn->prefix, sizeof conn->prefix, "wx:");
    conn->timeout_ms = WX_RC_TIMEOUT_MS;
    return end;
}

/* What follows redis:// */
static int parse_url(struct wx_rc *conn, const char *p, char *err, size_t errsz)
{
    const char *at;
    const char *end = url_head(conn, p, &at);
    if ((at && !parse_auth(conn, p, (size_t)(at - p))) ||
        !parse_host(conn, at ? at + 1 : p, (size_t)(end - (at ? at + 1 : p)))) {
        snprintf(err, errsz,
                 "redis store: expected redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]"
                 "[?prefix=P&timeout_ms=N]");
        return 0;
    }
    if (*end == '/') {
        size_t n = strcspn(end + 1, "?");
        if (n && (conn->db = (int)number(end + 1, n, 0, 1000000)) < 0) {
            snprintf(err, errsz, "redis store: the database must be a number");
            return 0;
        }
        end += 1 + n;
    }
    return *end != '?' || parse_query(conn, end + 1, err, errsz);
}

/* Whether HOST[:PORT] or [IPV6][:PORT] gives a port. */
static int has_port(const char *h, size_t n)
{
    if (n && h[0] == '[') {
        const char *e = memchr(h, ']', n);
        return e && e + 1 < h + n && e[1] == ':';
    }
    return memchr(h, ':', n) != NULL;
}

/*
 * [AUTH@]HOST[:PORT][,HOST[:PORT]...] at p into list (at most max, *count of them; port dflt
 * where none is given): where it ends (at '/', '?' or the end), or NULL (err set).
 */
static const char *parse_hosts(struct wx_rc *conn, const char *p, struct wx_rc_addr *list,
                               int *count, int max, int dflt, const char *what, char *err,
                               size_t errsz)
{
    const char *at;
    const char *end = url_head(conn, p, &at);
    const char *h = at ? at + 1 : p;
    int ok = !at || parse_auth(conn, p, (size_t)(at - p));
    while (ok && h <= end) {
        size_t n = strcspn(h, ",/?");
        if (*count == max) {
            snprintf(err, errsz, "redis store: at most %d %s", max, what);
            return NULL;
        }
        ok = parse_host(conn, h, n);
        if (ok) {
            struct wx_rc_addr *a = &list[(*count)++];
            memcpy(a->host, conn->host, sizeof a->host);
            a->port = has_port(h, n) ? conn->port : dflt;
        }
        h += n + 1;
        if (h[-1] != ',')
            break;
    }
    conn->host[0] = '\0'; /* the master's, once the sentinels (or the slot map) name it */
    conn->port = 0;
    return ok ? end : NULL;
}

/* What follows redis-cluster://: [AUTH@]HOST[:PORT][,HOST[:PORT]...][/][?QUERY] */
static int parse_cluster_url(struct wx_rc *conn, const char *p, char *err, size_t errsz)
{
    err[0] = '\0';
    const char *end = parse_hosts(conn, p, conn->seed, &conn->nseeds, WX_RC_MAX_SEEDS, 6379,
                                  "seed nodes", err, errsz);
    if (end && *end == '/')
        end++;
    if (!end || (*end && *end != '?')) {
        if (!err[0])
            snprintf(err, errsz,
                     "redis store: expected redis-cluster://[[USER]:PASSWORD@]HOST[:PORT]"
                     "[,HOST[:PORT]...][?prefix=P&timeout_ms=N&wait=N]");
        return 0;
    }
    return *end != '?' || parse_query(conn, end + 1, err, errsz);
}

/* What follows redis-sentinel://: [AUTH@]HOST[:PORT][,HOST[:PORT]...]/MASTER[?QUERY] */
static int parse_sentinel_url(struct wx_rc *conn, const char *p, char *err, size_t errsz)
{
    err[0] = '\0';
    const char *end = parse_hosts(conn, p, conn->sentinel, &conn->nsentinels, WX_RC_MAX_SENTINELS,
                                  WX_RC_SENTINEL_PORT, "sentinels", err, errsz);
    int ok = end != NULL;
    if (!ok && err[0])
        return 0;
    size_t mn = ok && *end == '/' ? strcspn(end + 1, "?") : 0;
    if (!ok || !mn) {
        snprintf(err, errsz,
                 "redis store: expected redis-sentinel://[[USER]:PASSWORD@]HOST[:PORT]"
                 "[,HOST[:PORT]...]/MASTER[?db=N&prefix=P&timeout_ms=N]");
        return 0;
    }
    if (!copy(end + 1, mn, conn->master, sizeof conn->master) ||
        strspn(conn->master, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") !=
            mn) {
        snprintf(err, errsz, "redis store: the master's name must be at most %d of [A-Za-z0-9_.-]",
                 (int)sizeof conn->master - 1);
        return 0;
    }
    end += 1 + mn;
    return *end != '?' || parse_query(conn, end + 1, err, errsz);
}

int wx_rc_parse_url(struct wx_rc *conn, const char *url, char *err, size_t errsz)
{
    if (!strncmp(url, "redis-sentinel://", 17))
        return parse_sentinel_url(conn, url + 17, err, errsz) ? WX_OK : WX_ERR_INVALID;
    if (!strncmp(url, "redis-cluster://", 16))
        return parse_cluster_url(conn, url + 16, err, errsz) ? WX_OK : WX_ERR_INVALID;
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errsz,
                 "redis store: the URL must start with redis://, redis-sentinel:// "
                 "or redis-cluster://");
        return WX_ERR_INVALID;
    }
    return parse_url(conn, url + 8, err, errsz) ? WX_OK : WX_ERR_INVALID;
}
