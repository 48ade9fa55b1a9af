/*
 * redis_mux.c — the shared pipelined connection (see redis_mux.h). A stream is one connection
 * with its units in flight: commands formatted into hiredis's output buffer, written in as few
 * write(2)s as the socket takes, replies handed out in order as they arrive. Two kinds drive a
 * stream:
 *   - the I/O thread of a wx_mux, for callers on ordinary threads: they queue units under the
 *     lock and wait on their own semaphore; the thread takes the whole queue at once;
 *   - the event loop of a thread that runs fibers (fiber.h), for the fibers parked there: each
 *     such thread has its own connection per server (struct lconn), which the loop watches in
 *     its epoll set. A fiber formats its unit and parks; the loop writes what its pass queued
 *     before it waits, and the replies wake the fibers on the same thread. No thread hand-off,
 *     no lock, no eventfd: a round trip costs the loop two syscalls shared by the whole batch.
 * Both keep watching the socket between units, so a connection Redis closed (a restart) is
 * noticed before a unit is risked on it.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "fiber.h"
#include "redis_mux.h"

struct unit {
    struct wx_rc_args *a;
    int n, got, rc;
    redisReply **out;
    char *why;
    size_t whysz;
    int64_t deadline;       /* monotonic ms */
    struct wx_fiber *fiber; /* the caller parked on a fiber (fiber.h), or NULL: it waits on done */
    int handshake;          /* the connection's own AUTH, SELECT, PING (a loop stream's) */
    int wait;               /* wait=N: answered once the WAIT sent after it confirms it */
    int confirm;            /* the stream's own WAIT for the units before it (wait=N) */
    sem_t done;
    struct unit *next;
};

/* One connection and its units in flight; touched by the thread that drives it only. */
struct stream {
    const struct wx_rc *cfg;    /* server, database, credentials, timeout (cfg->c unused) */
    redisContext *c;            /* NULL while down: the next unit connects */
    int watched;                /* c's socket is in this thread's loop (loop streams) */
    int watch_out;              /* ... watched for output too */
    int answered;               /* units finished, for the loop's count of wakes */
    struct unit *fhead, *ftail; /* sent (or formatted), waiting for replies, in order */
    struct unit *chead, *ctail; /* replied, waiting for the WAIT after them (wait=N), in order */
    int unconfirmed;            /* units with wait formatted since the last WAIT */
    uint64_t master_gen;        /* sentinels: their announcements as seen at connect */
    _Atomic int64_t hold_until; /* monotonic ms: after a timeout, fail at once until then */
    _Atomic int up;             /* connected (c is set) */
    _Atomic uint64_t units, writes;
};

struct wx_mux {
    struct wx_mux *next; /* in the registry */
    int refs;
    struct wx_rc cfg;
    pthread_t thread;
    int efd;
    pthread_mutex_t mu;
    struct unit *qhead, *qtail;    /* queued, not yet sent (mu) */
    int stopping, sleeping, woken; /* mu */
    struct stream s;               /* the I/O thread's */
};

/* A loop thread's own connection to one server (a source of its loop, fiber.h). */
struct lconn {
    struct wx_loop_src src; /* first: the loop hands it back as this */
    struct wx_rc cfg;
    struct stream s;
    struct lconn *next;
};

static _Thread_local struct lconn *lconns;

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct wx_mux *registry;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Answers u (its replies so far are freed on failure). u may be gone once this returns. */
static void finish(struct unit *u, int rc, const char *why)
{
    if (rc != WX_OK) {
        for (int i = 0; i < u->got; i++)
            freeReplyObject(u->out[i]);
        u->got = 0;
        if (u->why && u->whysz)
            snprintf(u->why, u->whysz, "%s", why);
    }
    u->rc = rc;
    if (u->fiber)
        wx_fiber_wake(u->fiber);
    else
        sem_post(&u->done);
}

/* A unit of the stream is done: its caller's, or the stream's own (freed here). */
static void done_unit(struct stream *s, struct unit *u, int rc, const char *why)
{
    if (u->handshake || u->confirm) {
        for (int i = 0; i < u->got; i++)
            freeReplyObject(u->out[i]);
        free(u);
        return;
    }
    s->answered++;
    finish(u, rc, why);
}

static void fail_list(struct stream *s, struct unit *u, const char *why)
{
    while (u) {
        struct unit *next = u->next;
        done_unit(s, u, WX_ERR_STORE, why);
        u = next;
    }
}

static void drop_conn(struct stream *s)
{
    if (s->c) {
        if (s->watched)
            wx_loop_unwatch(s->c->fd);
        redisFree(s->c);
    }
    s->c = NULL;
    s->watched = s->watch_out = 0;
    atomic_store(&s->up, 0);
}

/* The stream is out of step or gone: every unit on it fails, the connection is dropped. */
static void broken(struct stream *s, const char *reason, int timed_out)
{
    char why[128]; /* reason may be the context's own errstr, freed below */
    snprintf(why, sizeof why, "%s", reason);
    struct unit *f = s->fhead, *c = s->chead;
    s->fhead = s->ftail = s->chead = s->ctail = NULL;
    s->unconfirmed = 0;
    drop_conn(s);
    if (timed_out)
        atomic_store(&s->hold_until, mono_ms() + s->cfg->timeout_ms);
    fail_list(s, c, why); /* replied before f's, never confirmed */
    fail_list(s, f, why);
}

static int hold(struct stream *s, char *why, size_t whysz)
{
    if (mono_ms() < atomic_load(&s->hold_until)) {
        snprintf(why, whysz, "timed out a moment ago");
        return WX_ERR_STORE;
    }
    return WX_OK;
}

/*
 * Connects (blocking, within the timeout; with sentinels, to the master they name: cfg's host
 * and port are updated), then turns the socket non-blocking for the loop. The I/O thread's.
 */
static int connect_now(struct stream *m, struct wx_rc *cfg, char *why, size_t whysz)
{
    int64_t t0 = mono_ms();
    if (hold(m, why, whysz) != WX_OK)
        return WX_ERR_STORE;
    wx_rc_master_moved(cfg, &m->master_gen); /* what the sentinels said when this connects */
    redisContext *c = wx_rc_open(cfg, why, whysz);
    int ok = c != NULL;
    if (ok && !(ok = wx_rc_nonblock(c) == WX_OK))
        snprintf(why, whysz, "cannot make the socket non-blocking");
    if (ok) {
        redisEnableKeepAlive(c);
        m->c = c;
        atomic_store(&m->up, 1);
        return WX_OK;
    }
    if (c)
        redisFree(c);
    if (mono_ms() - t0 >= cfg->timeout_ms / 2) /* a hung or unreachable Redis */
        atomic_store(&m->hold_until, mono_ms() + cfg->timeout_ms);
    return WX_ERR_STORE;
}

/* This thread's buffer for formatting units, grown to its largest (freed when its streams end). */
static _Thread_local char *fmt_buf;
static _Thread_local size_t fmt_cap;

static void fmt_free(void)
{
    free(fmt_buf);
    fmt_buf = NULL;
    fmt_cap = 0;
}

/* u's commands appended to c's output in one piece (wx_rc_append); the handshake's AUTH is
 * wiped from this thread's buffer after. */
static int append_unit(redisContext *c, const struct unit *u)
{
    return wx_rc_append(c, u->a, u->n, &fmt_buf, &fmt_cap, u->handshake);
}

/* Appends u to the list *head .. *tail. */
static void push(struct unit **head, struct unit **tail, struct unit *u)
{
    u->next = NULL;
    if (*tail)
        (*tail)->next = u;
    else
        *head = u;
    *tail = u;
}

/* Formats the units of list into the output buffer of the connected m, in flight from now. */
static void send_units(struct stream *m, struct unit *list)
{
    while (list) {
        struct unit *u = list;
        list = u->next;
        u->next = NULL;
        if (append_unit(m->c, u) != REDIS_OK) { /* out of memory: nothing of it was added */
            done_unit(m, u, WX_ERR_STORE, "out of memory");
            continue;
        }
        push(&m->fhead, &m->ftail, u);
        m->unconfirmed += u->wait;
        atomic_fetch_add(&m->units, 1);
    }
}

/*
 * wait=N: one WAIT N after the units formatted since the last one, so that a batch waits for its
 * replicas once (a WAIT holds the connection until they answer, or its timeout).
 */
static void send_confirm(struct stream *m)
{
    if (!m->unconfirmed || !m->c)
        return;
    m->unconfirmed = 0;
    struct unit *w = calloc(1, sizeof *w + sizeof(struct wx_rc_args) + sizeof(redisReply *));
    if (!w) {
        broken(m, "out of memory", 0);
        return;
    }
    w->confirm = 1;
    w->n = 1;
    w->a = (struct wx_rc_args *)(w + 1);
    w->out = (redisReply **)(w->a + 1);
    w->deadline = mono_ms() + m->cfg->timeout_ms;
    wx_rc_arg_cmd(w->a, "WAIT");
    wx_rc_arg_i64(w->a, m->cfg->wait);
    wx_rc_arg_i64(w->a, m->cfg->timeout_ms / 2 > 0 ? m->cfg->timeout_ms / 2 : 1);
    send_units(m, w);
}

/* The WAIT w answered: the units replied before it are confirmed, or fail, together. */
static void confirmed(struct stream *m, struct unit *w)
{
    long long acked = w->out[0]->type == REDIS_REPLY_INTEGER ? w->out[0]->integer : -1;
    char why[96];
    snprintf(why, sizeof why, "WAIT: %lld of %d replicas confirmed the write", acked, m->cfg->wait);
    struct unit *c = m->chead;
    m->chead = m->ctail = NULL;
    while (c) {
        struct unit *next = c->next;
        done_unit(m, c, acked >= m->cfg->wait ? WX_OK : WX_ERR_STORE, why);
        c = next;
    }
}

static int has_output(const redisContext *c)
{
    return c && c->obuf && sdslen(c->obuf) > 0;
}

static void flush_output(struct stream *m)
{
    send_confirm(m);
    if (!has_output(m->c))
        return;
    int done = 0;
    if (redisBufferWrite(m->c, &done) == REDIS_ERR)
        broken(m, m->c->errstr[0] ? m->c->errstr : "write failed", 0);
    else
        atomic_fetch_add(&m->writes, 1);
}

/* The handshake's replies: AUTH and SELECT not refused, PING answered. */
static int handshake_ok(const struct unit *u)
{
    for (int i = 0; i < u->got; i++)
        if (u->out[i]->type == REDIS_REPLY_ERROR)
            return 0;
    return u->out[u->got - 1]->type == REDIS_REPLY_STATUS;
}

/* Reads what arrived and hands complete units their replies. */
static void read_replies(struct stream *m)
{
    if (redisBufferRead(m->c) == REDIS_ERR) {
        broken(m, m->c->errstr[0] ? m->c->errstr : "connection closed", 0);
        return;
    }
    void *r;
    while (m->c && redisGetReplyFromReader(m->c, &r) == REDIS_OK && r) {
        struct unit *u = m->fhead;
        if (!u) { /* nothing asked for it: the stream cannot be trusted */
            freeReplyObject(r);
            broken(m, "unexpected reply", 0);
            return;
        }
        u->out[u->got++] = r;
        int demoted = m->cfg->nsentinels && wx_rc_readonly(r);
        if (u->got == u->n) {
            m->fhead = u->next;
            if (!m->fhead)
                m->ftail = NULL;
            int ok = !u->handshake || handshake_ok(u);
            if (u->confirm) {
                confirmed(m, u);
                done_unit(m, u, WX_OK, "");
            } else if (u->wait) { /* answered once the WAIT after it confirms */
                push(&m->chead, &m->ctail, u);
            } else {
                done_unit(m, u, WX_OK, "");
            }
            if (!ok) {
                broken(m, "no answer to AUTH, SELECT or PING", 0);
                return;
            }
        }
        if (demoted) { /* a failover: the next unit asks the sentinels for the master again */
            broken(m, "the master is a replica now (READONLY)", 0);
            return;
        }
    }
    if (m->c && m->c->err)
        broken(m, "malformed reply", 0);
}

static void *io_main(void *arg)
{
    struct wx_mux *m = arg;
    struct stream *st = &m->s;
    /* hiredis writes with write(2): a connection Redis closed must not raise SIGPIPE here. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /*
     * The units answered in one pass wake their fibers together, after the next batch is on
     * its way to Redis (the event loop they resume on is woken once for them all).
     */
    for (;;) {
        wx_fiber_hold_wakes();
        pthread_mutex_lock(&m->mu);
        struct unit *batch = m->qhead;
        m->qhead = m->qtail = NULL;
        int stop = m->stopping;
        pthread_mutex_unlock(&m->mu);
        if (batch) {
            char why[128];
            /* The sentinels announced another master: the old one, cut off from them but not
             * from this node, would take writes that its demotion will discard. */
            if (st->c && wx_rc_master_moved(&m->cfg, &st->master_gen))
                broken(st, "the sentinels announced another master (+switch-master)", 0);
            if (!st->c && connect_now(st, &m->cfg, why, sizeof why) != WX_OK)
                fail_list(st, batch, why);
            else
                send_units(st, batch);
        }
        flush_output(st);
        wx_fiber_release_wakes();
        if (stop && !st->fhead)
            break;
        pthread_mutex_lock(&m->mu);
        if (m->qhead) { /* more arrived meanwhile: send it now */
            pthread_mutex_unlock(&m->mu);
            continue;
        }
        m->sleeping = 1; /* from here on a new unit writes the eventfd */
        m->woken = 0;
        pthread_mutex_unlock(&m->mu);

        struct pollfd p[2] = {{.fd = m->efd, .events = POLLIN}, {.fd = -1}};
        if (st->c) {
            p[1].fd = st->c->fd;
            p[1].events = POLLIN | (has_output(st->c) ? POLLOUT : 0);
        }
        int timeout = -1;
        if (st->fhead) {
            int64_t left = st->fhead->deadline - mono_ms();
            timeout = left < 0 ? 0 : (int)left;
        }
        int n = poll(p, 2, timeout);
        wx_fiber_hold_wakes();
        pthread_mutex_lock(&m->mu);
        m->sleeping = 0;
        pthread_mutex_unlock(&m->mu);
        if (n > 0 && (p[0].revents & POLLIN)) {
            uint64_t v;
            ssize_t got = read(m->efd, &v, sizeof v);
            (void)got;
        }
        if (n > 0 && st->c && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
            read_replies(st);
        if (st->fhead && mono_ms() >= st->fhead->deadline)
            broken(st, "timed out", 1);
        /* the wakes of what was answered here go out after the next batch is sent (top) */
    }
    wx_fiber_release_wakes();
    drop_conn(st);
    fmt_free();
    return NULL;
}

static int same_server(const struct wx_rc *a, const struct wx_rc *b)
{
    if (a->nsentinels != b->nsentinels || strcmp(a->master, b->master))
        return 0;
    for (int i = 0; i < a->nsentinels; i++)
        if (a->sentinel[i].port != b->sentinel[i].port ||
            strcmp(a->sentinel[i].host, b->sentinel[i].host))
            return 0;
    /* with sentinels, host and port are the master found last: not part of the identity */
    return (a->nsentinels || (a->port == b->port && !strcmp(a->host, b->host))) &&
           a->wait == b->wait && a->db == b->db && a->timeout_ms == b->timeout_ms &&
           !strcmp(a->user, b->user) && !strcmp(a->pass, b->pass);
}

struct wx_mux *wx_mux_get(const struct wx_rc *conn)
{
    pthread_mutex_lock(&registry_mu);
    struct wx_mux *m = registry;
    while (m && !same_server(&m->cfg, conn))
        m = m->next;
    if (m) {
        m->refs++;
        pthread_mutex_unlock(&registry_mu);
        return m;
    }
    m = calloc(1, sizeof *m);
    if (m) {
        memcpy(m->cfg.host, conn->host, sizeof m->cfg.host);
        memcpy(m->cfg.user, conn->user, sizeof m->cfg.user);
        memcpy(m->cfg.pass, conn->pass, sizeof m->cfg.pass);
        m->cfg.port = conn->port;
        m->cfg.db = conn->db;
        m->cfg.timeout_ms = conn->timeout_ms;
        m->cfg.nsentinels = conn->nsentinels;
        m->cfg.wait = conn->wait;
        memcpy(m->cfg.sentinel, conn->sentinel, sizeof m->cfg.sentinel);
        memcpy(m->cfg.master, conn->master, sizeof m->cfg.master);
        m->refs = 1;
        m->s.cfg = &m->cfg;
        m->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        pthread_mutex_init(&m->mu, NULL);
        if (m->efd < 0 || pthread_create(&m->thread, NULL, io_main, m) != 0) {
            if (m->efd >= 0)
                close(m->efd);
            pthread_mutex_destroy(&m->mu);
            sodium_memzero(m->cfg.pass, sizeof m->cfg.pass);
            free(m);
            m = NULL;
        } else {
            m->next = registry;
            registry = m;
        }
    }
    pthread_mutex_unlock(&registry_mu);
    return m;
}

void wx_mux_put(struct wx_mux *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&registry_mu);
    int last = --m->refs == 0;
    if (last) {
        struct wx_mux **p = &registry;
        while (*p != m)
            p = &(*p)->next;
        *p = m->next;
    }
    pthread_mutex_unlock(&registry_mu);
    if (!last)
        return;
    pthread_mutex_lock(&m->mu);
    m->stopping = 1;
    pthread_mutex_unlock(&m->mu);
    uint64_t one = 1;
    ssize_t w = write(m->efd, &one, sizeof one);
    (void)w;
    pthread_join(m->thread, NULL);
    close(m->efd);
    pthread_mutex_destroy(&m->mu);
    sodium_memzero(m->cfg.pass, sizeof m->cfg.pass);
    free(m);
}

/* ---- a loop thread's own connection (struct lconn) ---- */

/* Output still to write: the loop watches for it (and always for input: replies, a close). */
static void lconn_watch(struct lconn *l)
{
    struct stream *s = &l->s;
    int out = has_output(s->c);
    if (!s->c || (s->watched && s->watch_out == out))
        return;
    if (wx_loop_watch(s->c->fd, out) != 0) {
        broken(s, "the event loop cannot watch the connection", 0);
        return;
    }
    s->watched = 1;
    s->watch_out = out;
}

/*
 * Connects without blocking: the TCP handshake completes while the loop goes on, and Redis's
 * AUTH, SELECT and PING go first on the stream as a unit of its own (a failed one breaks the
 * stream, and with it the units queued behind). A hung server completes the TCP handshake but
 * never answers the PING: the units behind it time out.
 */
static int lconn_connect(struct lconn *l, char *why, size_t whysz)
{
    struct stream *s = &l->s;
    if (hold(s, why, whysz) != WX_OK)
        return WX_ERR_STORE;
    redisContext *c = redisConnectNonBlock(l->cfg.host, l->cfg.port);
    struct unit *h =
        calloc(1, sizeof *h + 3 * sizeof(struct wx_rc_args) + 3 * sizeof(redisReply *));
    if (!c || c->err || !h) {
        snprintf(why, whysz, "%s", c && c->err ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        free(h);
        return WX_ERR_STORE;
    }
    redisEnableKeepAlive(c);
    s->c = c;
    atomic_store(&s->up, 1);
    h->handshake = 1;
    h->a = (struct wx_rc_args *)(h + 1);
    h->out = (redisReply **)(h->a + 3);
    h->deadline = mono_ms() + l->cfg.timeout_ms;
    if (l->cfg.pass[0]) {
        wx_rc_arg_cmd(&h->a[h->n], "AUTH");
        if (l->cfg.user[0])
            wx_rc_arg_str(&h->a[h->n], l->cfg.user);
        wx_rc_arg_str(&h->a[h->n++], l->cfg.pass);
    }
    if (l->cfg.db) {
        wx_rc_arg_cmd(&h->a[h->n], "SELECT");
        wx_rc_arg_i64(&h->a[h->n++], l->cfg.db);
    }
    wx_rc_arg_cmd(&h->a[h->n++], "PING");
    send_units(s, h);
    lconn_watch(l);
    if (!s->c) {
        snprintf(why, whysz, "cannot send to Redis");
        return WX_ERR_STORE;
    }
    return WX_OK;
}

/* After each pass of the loop: replies in, timeouts, what the fibers queued out. */
static int lconn_pass(struct wx_loop_src *src, int64_t *due)
{
    struct lconn *l = (struct lconn *)src;
    struct stream *s = &l->s;
    s->answered = 0;
    if (s->c)
        read_replies(s); /* nothing there costs one recv(2): EAGAIN */
    if (s->fhead && mono_ms() >= s->fhead->deadline)
        broken(s, "timed out", 1);
    flush_output(s);
    lconn_watch(l); /* output left (a full socket): wait until it can be written */
    if (s->fhead && (*due < 0 || s->fhead->deadline < *due))
        *due = s->fhead->deadline;
    return s->answered;
}

static void lconn_close(struct wx_loop_src *src)
{
    struct lconn *l = (struct lconn *)src;
    broken(&l->s, "the event loop stopped", 0);
    struct lconn **p = &lconns;
    while (*p && *p != l)
        p = &(*p)->next;
    if (*p)
        *p = l->next;
    sodium_memzero(l->cfg.pass, sizeof l->cfg.pass);
    free(l);
    if (!lconns)
        fmt_free(); /* the loop's last stream */
}

/*
 * This loop thread's connection to m's server, made on first use; NULL outside a loop, and with
 * sentinels (finding the master is a blocking round trip: the I/O thread's stream does it).
 */
static struct lconn *lconn_here(const struct wx_mux *m)
{
    if (wx_loop_running() != 0 || m->cfg.nsentinels)
        return NULL;
    struct lconn *l = lconns;
    while (l && !same_server(&l->cfg, &m->cfg))
        l = l->next;
    if (l)
        return l;
    if (!(l = calloc(1, sizeof *l)))
        return NULL;
    l->cfg = m->cfg;
    l->s.cfg = &l->cfg;
    l->src.pass = lconn_pass;
    l->src.close = lconn_close;
    if (wx_loop_add(&l->src) != 0) {
        free(l);
        return NULL;
    }
    l->next = lconns;
    lconns = l;
    return l;
}

/* ---- calls ---- */

int wx_mux_ready(struct wx_mux *m, char *why, size_t whysz)
{
    struct lconn *l = wx_fiber_self() ? lconn_here(m) : NULL;
    struct stream *s = l ? &l->s : &m->s;
    if (hold(s, why, whysz) != WX_OK)
        return WX_ERR_STORE;
    if (atomic_load(&s->up))
        return WX_OK;
    struct wx_rc_args a; /* down: connecting is the test (a PING, as the handshake ends) */
    redisReply *r = NULL;
    char w[128]; /* written by the I/O thread: the caller's why may be shared (redis_conn.c) */
    wx_rc_arg_cmd(&a, "PING");
    int rc = wx_mux_run(m, &a, 1, 0, &r, w, sizeof w);
    if (rc != WX_OK)
        snprintf(why, whysz, "%s", w);
    if (rc == WX_OK) {
        rc = r->type == REDIS_REPLY_STATUS ? WX_OK : WX_ERR_STORE;
        freeReplyObject(r);
    }
    return rc;
}

/* Queues u for the I/O thread: WX_OK, or WX_ERR_STORE when the connection is closing. */
static int enqueue(struct wx_mux *m, struct unit *u)
{
    pthread_mutex_lock(&m->mu);
    int refused = m->stopping, wake = 0;
    if (!refused) {
        push(&m->qhead, &m->qtail, u);
        if (m->sleeping && !m->woken)
            wake = m->woken = 1;
    }
    pthread_mutex_unlock(&m->mu);
    if (wake) {
        uint64_t one = 1;
        ssize_t w = write(m->efd, &one, sizeof one);
        (void)w;
    }
    return refused ? WX_ERR_STORE : WX_OK;
}

struct park {
    struct wx_mux *m;
    struct lconn *l;
    struct unit *u;
};

/* A fiber's unit, handed over once its request is suspended (fiber.h). */
static void submit_parked(void *arg)
{
    struct park *k = arg;
    if (enqueue(k->m, k->u) != WX_OK)
        finish(k->u, WX_ERR_STORE, "the store is closing"); /* wakes the fiber at once */
}

/* The same on the fiber's own loop: formatted now, written by the loop's pass. */
static void submit_here(void *arg)
{
    struct park *k = arg;
    struct stream *s = &k->l->s;
    char why[128];
    if (!s->c && lconn_connect(k->l, why, sizeof why) != WX_OK) {
        finish(k->u, WX_ERR_STORE, why);
        return;
    }
    send_units(s, k->u);
}

int wx_mux_run(struct wx_mux *m, struct wx_rc_args *a, int n, int wait, redisReply **out, char *why,
               size_t whysz)
{
    if (n < 1) {
        snprintf(why, whysz, "no command");
        return WX_ERR_STORE;
    }
    for (int i = 0; i < n; i++) {
        if (a[i].over) {
            snprintf(why, whysz, "a command too large");
            return WX_ERR_STORE;
        }
    }
    struct unit u = {.a = a, .n = n, .out = out, .why = why, .whysz = whysz};
    u.wait = wait && m->cfg.wait > 0;
    u.fiber = wx_fiber_self();
    struct park k = {m, u.fiber ? lconn_here(m) : NULL, &u};
    if (hold(k.l ? &k.l->s : &m->s, why, whysz) != WX_OK)
        return WX_ERR_STORE;
    u.deadline = mono_ms() + m->cfg.timeout_ms;
    if (u.fiber) { /* park: the event loop goes on meanwhile */
        wx_fiber_wait(k.l ? submit_here : submit_parked, &k);
        return u.rc;
    }
    sem_init(&u.done, 0, 0);
    if (enqueue(m, &u) != WX_OK) {
        sem_destroy(&u.done);
        snprintf(why, whysz, "the store is closing");
        return WX_ERR_STORE;
    }
    while (sem_wait(&u.done) != 0 && errno == EINTR)
        ;
    sem_destroy(&u.done);
    return u.rc;
}

void wx_mux_stats(struct wx_mux *m, uint64_t *units, uint64_t *writes)
{
    *units = atomic_load(&m->s.units);
    *writes = atomic_load(&m->s.writes);
}
