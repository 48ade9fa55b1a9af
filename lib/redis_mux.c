/*
 * redis_mux.c — the shared pipelined connection (see redis_mux.h). Callers queue units under
 * the lock and wait on their own semaphore; the I/O thread takes the whole queue, formats every
 * command into hiredis's output buffer, writes it in as few write(2)s as the socket takes, and
 * hands the replies out in order as they arrive. Between units it keeps watching the socket, so
 * a connection Redis closed (a restart) is noticed before a unit is risked on it.
 */
#include <errno.h>
#include <fcntl.h>
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
    sem_t done;
    struct unit *next;
};

struct wx_mux {
    struct wx_mux *next; /* in the registry */
    int refs;
    struct wx_rc cfg; /* server, database, credentials, timeout (cfg.c unused) */
    pthread_t thread;
    int efd;
    pthread_mutex_t mu;
    struct unit *qhead, *qtail;    /* queued, not yet sent (mu) */
    int stopping, sleeping, woken; /* mu */
    _Atomic int64_t hold_until;    /* monotonic ms: after a timeout, fail at once until then */
    _Atomic int up;                /* connected (the I/O thread's c is set) */
    /* the I/O thread's own */
    redisContext *c;
    struct unit *fhead, *ftail; /* sent, waiting for replies, in order */
    _Atomic uint64_t units, writes;
};

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

static void fail_list(struct unit *u, const char *why)
{
    while (u) {
        struct unit *next = u->next;
        finish(u, WX_ERR_STORE, why);
        u = next;
    }
}

/* The stream is out of step or gone: every unit on it fails, the connection is dropped. */
static void broken(struct wx_mux *m, const char *reason, int timed_out)
{
    char why[128]; /* reason may be the context's own errstr, freed below */
    snprintf(why, sizeof why, "%s", reason);
    struct unit *f = m->fhead;
    m->fhead = m->ftail = NULL;
    if (m->c)
        redisFree(m->c);
    m->c = NULL;
    atomic_store(&m->up, 0);
    if (timed_out) {
        atomic_store(&m->hold_until, mono_ms() + m->cfg.timeout_ms);
    }
    fail_list(f, why);
}

/* Connects (blocking, within the timeout), then turns the socket non-blocking for the loop. */
static int connect_now(struct wx_mux *m, char *why, size_t whysz)
{
    int64_t t0 = mono_ms();
    if (t0 < atomic_load(&m->hold_until)) {
        snprintf(why, whysz, "timed out a moment ago");
        return WX_ERR_STORE;
    }
    struct timeval tv = {m->cfg.timeout_ms / 1000, (m->cfg.timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(m->cfg.host, m->cfg.port, tv);
    int ok =
        c && !c->err && redisSetTimeout(c, tv) == REDIS_OK && wx_rc_handshake(&m->cfg, c) == WX_OK;
    if (ok) {
        int fl = fcntl(c->fd, F_GETFL);
        ok = fl >= 0 && fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) == 0;
    }
    if (ok) {
        c->flags &= ~REDIS_BLOCK; /* hiredis then takes EAGAIN as "later" */
        redisEnableKeepAlive(c);
        m->c = c;
        atomic_store(&m->up, 1);
        return WX_OK;
    }
    snprintf(why, whysz, "%s",
             !c       ? "out of memory"
             : c->err ? c->errstr
                      : "no answer to AUTH, SELECT or PING");
    if (c)
        redisFree(c);
    if (mono_ms() - t0 >= m->cfg.timeout_ms / 2) { /* a hung or unreachable Redis */
        atomic_store(&m->hold_until, mono_ms() + m->cfg.timeout_ms);
    }
    return WX_ERR_STORE;
}

/* Formats the units of list into the output buffer and moves them to the in-flight list. */
static void send_units(struct wx_mux *m, struct unit *list)
{
    char why[128];
    if (!m->c && connect_now(m, why, sizeof why) != WX_OK) {
        fail_list(list, why);
        return;
    }
    while (list) {
        struct unit *u = list;
        list = u->next;
        u->next = NULL;
        int ok = 1;
        for (int i = 0; i < u->n && ok; i++)
            ok = redisAppendCommandArgv(m->c, u->a[i].n, u->a[i].v, u->a[i].l) == REDIS_OK;
        if (!ok) { /* out of memory half-way: the stream holds part of a unit */
            finish(u, WX_ERR_STORE, "out of memory");
            fail_list(list, "out of memory");
            broken(m, "out of memory", 0);
            return;
        }
        if (m->ftail)
            m->ftail->next = u;
        else
            m->fhead = u;
        m->ftail = u;
        atomic_fetch_add(&m->units, 1);
    }
}

static int has_output(const redisContext *c)
{
    return c && c->obuf && sdslen(c->obuf) > 0;
}

static void flush_output(struct wx_mux *m)
{
    if (!has_output(m->c))
        return;
    int done = 0;
    if (redisBufferWrite(m->c, &done) == REDIS_ERR)
        broken(m, m->c->errstr[0] ? m->c->errstr : "write failed", 0);
    else
        atomic_fetch_add(&m->writes, 1);
}

/* Reads what arrived and hands complete units their replies. */
static void read_replies(struct wx_mux *m)
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
        if (u->got == u->n) {
            m->fhead = u->next;
            if (!m->fhead)
                m->ftail = NULL;
            finish(u, WX_OK, "");
        }
    }
    if (m->c && m->c->err)
        broken(m, "malformed reply", 0);
}

static void *io_main(void *arg)
{
    struct wx_mux *m = arg;
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
        if (batch)
            send_units(m, batch);
        flush_output(m);
        wx_fiber_release_wakes();
        if (stop && !m->fhead)
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
        if (m->c) {
            p[1].fd = m->c->fd;
            p[1].events = POLLIN | (has_output(m->c) ? POLLOUT : 0);
        }
        int timeout = -1;
        if (m->fhead) {
            int64_t left = m->fhead->deadline - mono_ms();
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
        if (n > 0 && m->c && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
            read_replies(m);
        if (m->fhead && mono_ms() >= m->fhead->deadline)
            broken(m, "timed out", 1);
        /* the wakes of what was answered here go out after the next batch is sent (top) */
    }
    wx_fiber_release_wakes();
    if (m->c)
        redisFree(m->c);
    m->c = NULL;
    return NULL;
}

static int same_server(const struct wx_rc *a, const struct wx_rc *b)
{
    return a->port == b->port && a->db == b->db && a->timeout_ms == b->timeout_ms &&
           !strcmp(a->host, b->host) && !strcmp(a->user, b->user) && !strcmp(a->pass, b->pass);
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
        m->refs = 1;
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

static int hold(struct wx_mux *m, char *why, size_t whysz)
{
    if (mono_ms() < atomic_load(&m->hold_until)) {
        snprintf(why, whysz, "timed out a moment ago");
        return WX_ERR_STORE;
    }
    return WX_OK;
}

int wx_mux_ready(struct wx_mux *m, char *why, size_t whysz)
{
    if (hold(m, why, whysz) != WX_OK)
        return WX_ERR_STORE;
    if (atomic_load(&m->up))
        return WX_OK;
    struct wx_rc_args a; /* down: connecting is the test (a PING, as the handshake ends) */
    redisReply *r = NULL;
    char w[128]; /* written by the I/O thread: the caller's why may be shared (redis_conn.c) */
    wx_rc_arg_cmd(&a, "PING");
    int rc = wx_mux_run(m, &a, 1, &r, w, sizeof w);
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
        if (m->qtail)
            m->qtail->next = u;
        else
            m->qhead = u;
        m->qtail = u;
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
    struct unit *u;
};

/* A fiber's unit, handed over once its request is suspended (fiber.h). */
static void submit_parked(void *arg)
{
    struct park *k = arg;
    if (enqueue(k->m, k->u) != WX_OK)
        finish(k->u, WX_ERR_STORE, "the store is closing"); /* wakes the fiber at once */
}

int wx_mux_run(struct wx_mux *m, struct wx_rc_args *a, int n, redisReply **out, char *why,
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
    if (hold(m, why, whysz) != WX_OK)
        return WX_ERR_STORE;
    struct unit u = {.a = a, .n = n, .out = out, .why = why, .whysz = whysz};
    u.deadline = mono_ms() + m->cfg.timeout_ms;
    u.fiber = wx_fiber_self();
    if (u.fiber) { /* park: the event loop goes on meanwhile */
        struct park k = {m, &u};
        wx_fiber_wait(submit_parked, &k);
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
    *units = atomic_load(&m->units);
    *writes = atomic_load(&m->writes);
}
