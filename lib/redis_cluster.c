/*
 * redis_cluster.c — Redis Cluster routing on top of redis_conn.c (hiredis 0.14 has none): the
 * slot map, a connection per master, and the redirects (the Cluster specification, "Redirection
 * and resharding").
 *
 * The map: for each of the 16384 slots, the node serving it (an index into the nodes met so
 * far, which are only added, never freed before the store closes, so that a thread holding
 * one while another refreshes the map never finds it gone). It is learnt from CLUSTER SLOTS,
 * asked of the known nodes and then the seeds, at the first call and again once it is stale:
 * after a MOVED (a resharding or a failover moved a slot), or a node that failed (a dead
 * master, whose replica the cluster promotes: the next map names it). Refreshes are at most one
 * at a time and one per WX_CL_REFRESH_MS; calls meanwhile use the map they have.
 *
 * A call's commands are grouped by node, each group in one round trip (wx_rc_send: on the
 * shared pipelined stream once the store shares, so many requests' commands for one node share
 * round trips and fsyncs), the groups one after the other. A reply -MOVED or -ASK means the
 * command was not run: it is sent again to the node named (after ASKING for ASK), at most
 * WX_RC_MAX_REDIRECTS times; -TRYAGAIN (a multi-key step while its slot moves) is retried after
 * a short pause the same number of times. Other error replies are the caller's, as on one Redis.
 *
 * Locks: mu guards adding nodes (no I/O under it: a fiber may park in a refresh, and no lock is
 * held across a park); the slots are atomics, written by the one refresh at a time.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "redis_conn.h"
#include "redis_mux.h"
#include "wxauth/base.h"

#define WX_CL_REFRESH_MS  100 /* the shortest time between two refreshes of the map */
#define WX_CL_TRYAGAIN_MS 5   /* the pause before a TRYAGAIN is retried (times the attempt) */

struct wx_cluster {
    pthread_mutex_t mu;
    int nnodes; /* (mu to add; read atomically) */
    struct wx_rc *_Atomic node[WX_RC_MAX_NODES];
    _Atomic unsigned char slot[WX_RC_SLOTS]; /* node index + 1; 0: unknown */
    atomic_int have_map, stale, refreshing, shared;
    _Atomic int64_t refreshed_ms;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- slots ---- */

/* CRC16-CCITT (XMODEM), the Cluster's key hash: polynomial 0x1021, initial value 0. */
static uint16_t crc16(const char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((unsigned char)p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

int wx_cluster_key_slot(const char *k, size_t n)
{
    const char *open = memchr(k, '{', n);
    if (open) { /* the first '{' and the first '}' after it, when something is between them */
        const char *close = memchr(open + 1, '}', n - (size_t)(open + 1 - k));
        if (close && close > open + 1) {
            k = open + 1;
            n = (size_t)(close - open - 1);
        }
    }
    return crc16(k, n) & (WX_RC_SLOTS - 1);
}

/* Whether a's command is name (case-insensitive). */
static int is_cmd(const struct wx_rc_args *a, const char *name)
{
    return a->n > 0 && a->l[0] == strlen(name) && !strncasecmp(a->v[0], name, a->l[0]);
}

int wx_cluster_command_slot(const struct wx_rc_args *a)
{
    if (is_cmd(a, "EVALSHA") || is_cmd(a, "EVAL")) {
        long nkeys = a->n > 2 && a->l[2] < 8 ? strtol(a->v[2], NULL, 10) : 0;
        if (nkeys <= 0)
            return -1;
        if (3 + nkeys > a->n)
            return -2;
        int slot = wx_cluster_key_slot(a->v[3], a->l[3]);
        for (long i = 1; i < nkeys; i++)
            if (wx_cluster_key_slot(a->v[3 + i], a->l[3 + i]) != slot)
                return -2; /* Redis would refuse it (CROSSSLOT): a bug in the key layout */
        return slot;
    }
    /* The commands the store sends without a key: every other one names its key first. */
    static const char *const keyless[] = {"PING", "SCRIPT", "INFO",   "ROLE", "CLUSTER",
                                          "WAIT", "ASKING", "DBSIZE", "TIME"};
    for (size_t i = 0; i < sizeof keyless / sizeof keyless[0]; i++)
        if (is_cmd(a, keyless[i]))
            return -1;
    return a->n > 1 ? wx_cluster_key_slot(a->v[1], a->l[1]) : -1;
}

/* ---- nodes ---- */

/* The node at host:port, added (a connection configured like conn's) when new; NULL if full. */
static struct wx_rc *node_at(struct wx_rc *conn, const char *host, int port)
{
    struct wx_cluster *cl = conn->cluster;
    pthread_mutex_lock(&cl->mu);
    struct wx_rc *found = NULL;
    for (int i = 0; i < cl->nnodes && !found; i++) {
        struct wx_rc *n = atomic_load(&cl->node[i]);
        if (n->port == port && !strcmp(n->host, host))
            found = n;
    }
    if (!found && cl->nnodes < WX_RC_MAX_NODES && (found = calloc(1, sizeof *found))) {
        memcpy(found->user, conn->user, sizeof found->user);
        memcpy(found->pass, conn->pass, sizeof found->pass);
        memcpy(found->prefix, conn->prefix, sizeof found->prefix);
        snprintf(found->host, sizeof found->host, "%s", host);
        found->port = port;
        found->timeout_ms = conn->timeout_ms;
        found->wait = conn->wait;
        found->lua = conn->lua;
        if (atomic_load(&cl->shared) && !(found->mux = wx_mux_get(found))) {
            free(found);
            found = NULL;
        }
        if (found) {
            if (found->mux) /* the shared stream has its own copy */
                sodium_memzero(found->pass, sizeof found->pass);
            atomic_store(&cl->node[cl->nnodes], found);
            cl->nnodes++;
        }
    }
    pthread_mutex_unlock(&cl->mu);
    return found;
}

static struct wx_rc *node_of_slot(struct wx_cluster *cl, int slot)
{
    int i = atomic_load_explicit(&cl->slot[slot], memory_order_acquire);
    return i ? atomic_load(&cl->node[i - 1]) : NULL;
}

static int node_index(struct wx_cluster *cl, const struct wx_rc *n)
{
    for (int i = 0; i < WX_RC_MAX_NODES; i++)
        if (atomic_load(&cl->node[i]) == n)
            return i;
    return -1;
}

/* Any node a keyless command may go to: the first with slots, else the first seed. */
static struct wx_rc *any_node(struct wx_rc *conn)
{
    struct wx_cluster *cl = conn->cluster;
    struct wx_rc *n = node_of_slot(cl, 0);
    for (int s = 0; !n && s < WX_RC_SLOTS; s += 1024)
        n = node_of_slot(cl, s);
    return n ? n : node_at(conn, conn->seed[0].host, conn->seed[0].port);
}

/* ---- the map ---- */

/*
 * Applies a CLUSTER SLOTS reply r got from node from (an empty host in it means from's):
 * WX_OK when it is well formed and every slot has a master, else WX_ERR_STORE (why set).
 */
static int apply_slots(struct wx_rc *conn, const struct wx_rc *from, const redisReply *r)
{
    static _Thread_local unsigned char next[WX_RC_SLOTS];
    struct wx_cluster *cl = conn->cluster;
    memset(next, 0, sizeof next);
    if (r->type != REDIS_REPLY_ARRAY) {
        snprintf(conn->why, sizeof conn->why, "CLUSTER SLOTS: not an array (%s)",
                 r->type == REDIS_REPLY_ERROR ? r->str : "?");
        return WX_ERR_STORE;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2 ||
            e->element[2]->element[0]->type != REDIS_REPLY_STRING ||
            e->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
            continue;
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        const char *host = e->element[2]->element[0]->str;
        if (!host[0] || !strcmp(host, "?"))
            host = from->host;
        long long port = e->element[2]->element[1]->integer;
        if (lo < 0 || hi >= WX_RC_SLOTS || lo > hi || port <= 0 || port > 65535)
            continue;
        struct wx_rc *n = node_at(conn, host, (int)port);
        if (!n) {
            snprintf(conn->why, sizeof conn->why, "more than %d cluster nodes", WX_RC_MAX_NODES);
            return WX_ERR_STORE;
        }
        int idx = node_index(cl, n);
        for (long long s = lo; s <= hi; s++)
            next[s] = (unsigned char)(idx + 1);
    }
    int missing = 0;
    for (int s = 0; s < WX_RC_SLOTS; s++)
        missing += next[s] == 0;
    if (missing == WX_RC_SLOTS) {
        snprintf(conn->why, sizeof conn->why, "%.64s:%d serves no slots (not a cluster yet?)",
                 from->host, from->port);
        return WX_ERR_STORE;
    }
    for (int s = 0; s < WX_RC_SLOTS; s++)
        if (next[s]) /* a slot no master serves now keeps its last known node */
            atomic_store_explicit(&cl->slot[s], next[s], memory_order_release);
    if (missing)
        snprintf(conn->why, sizeof conn->why, "%d slots have no master", missing);
    return WX_OK;
}

/* Asks the known nodes, then the seeds, for the map: WX_OK once one answered with one. */
static int refresh(struct wx_rc *conn)
{
    struct wx_cluster *cl = conn->cluster;
    if (atomic_exchange(&cl->refreshing, 1))
        return atomic_load(&cl->have_map) ? WX_OK : WX_ERR_STORE; /* another is at it */
    atomic_store(&cl->refreshed_ms, mono_ms());
    int rc = WX_ERR_STORE, known = atomic_load(&cl->nnodes);
    char why[sizeof conn->why] = "no cluster node answered";
    for (int i = 0; i < known + conn->nseeds && rc != WX_OK; i++) {
        struct wx_rc *n =
            i < known ? atomic_load(&cl->node[i])
                      : node_at(conn, conn->seed[i - known].host, conn->seed[i - known].port);
        if (!n)
            continue;
        struct wx_rc_args a;
        redisReply *r = NULL;
        wx_rc_arg_cmd(&a, "CLUSTER");
        wx_rc_arg_str(&a, "SLOTS");
        if (wx_rc_send(n, &a, 1, &r) != WX_OK) {
            snprintf(why, sizeof why, "%.64s:%d: %.56s", n->host, n->port, n->why);
            continue;
        }
        rc = apply_slots(conn, n, r);
        if (rc != WX_OK)
            memcpy(why, conn->why, sizeof why);
        freeReplyObject(r);
    }
    if (rc == WX_OK) {
        atomic_store(&cl->have_map, 1);
        atomic_store(&cl->stale, 0);
    } else {
        memcpy(conn->why, why, sizeof why);
    }
    atomic_store(&cl->refreshing, 0);
    return rc;
}

static int start(struct wx_rc *conn)
{
    if (conn->cluster)
        return WX_OK;
    struct wx_cluster *cl = calloc(1, sizeof *cl);
    if (!cl)
        return WX_ERR_NOMEM;
    pthread_mutex_init(&cl->mu, NULL);
    conn->cluster = cl;
    return WX_OK;
}

int wx_cluster_ready(struct wx_rc *conn)
{
    if (start(conn) != WX_OK)
        return WX_ERR_STORE;
    struct wx_cluster *cl = conn->cluster;
    int have = atomic_load(&cl->have_map);
    if (have && !atomic_load(&cl->stale))
        return WX_OK;
    if (have && mono_ms() - atomic_load(&cl->refreshed_ms) < WX_CL_REFRESH_MS)
        return WX_OK; /* stale, asked a moment ago: go on with it */
    int rc = refresh(conn);
    return rc == WX_OK || have ? WX_OK : WX_ERR_STORE;
}

int wx_cluster_share(struct wx_rc *conn)
{
    if (start(conn) != WX_OK)
        return WX_ERR_NOMEM;
    struct wx_cluster *cl = conn->cluster;
    pthread_mutex_lock(&cl->mu);
    atomic_store(&cl->shared, 1);
    int rc = WX_OK;
    for (int i = 0; i < cl->nnodes && rc == WX_OK; i++) {
        struct wx_rc *n = atomic_load(&cl->node[i]);
        if (n->mux)
            continue;
        struct wx_mux *m = wx_mux_get(n);
        if (!m) {
            rc = WX_ERR_NOMEM;
            break;
        }
        wx_rc_close(n); /* its own connection and password (the mux has a copy) */
        n->mux = m;
    }
    pthread_mutex_unlock(&cl->mu);
    return rc;
}

void wx_cluster_free(struct wx_rc *conn)
{
    struct wx_cluster *cl = conn->cluster;
    if (!cl)
        return;
    for (int i = 0; i < cl->nnodes; i++) {
        struct wx_rc *n = atomic_load(&cl->node[i]);
        wx_rc_close(n);
        free(n);
    }
    pthread_mutex_destroy(&cl->mu);
    free(cl);
    conn->cluster = NULL;
}

/* ---- sending ---- */

/* "MOVED 3999 127.0.0.1:6381" / "ASK ...": the node named (NULL when malformed), *slot. */
static struct wx_rc *redirect_target(struct wx_rc *conn, const struct wx_rc *from, const char *msg,
                                     int *slot)
{
    const char *sp = strchr(msg, ' ');
    if (!sp)
        return NULL;
    char *end;
    long s = strtol(sp + 1, &end, 10);
    if (*end != ' ' || s < 0 || s >= WX_RC_SLOTS)
        return NULL;
    const char *addr = end + 1, *colon = strrchr(addr, ':');
    long port = colon ? strtol(colon + 1, NULL, 10) : 0;
    if (!colon || port <= 0 || port > 65535)
        return NULL;
    char host[sizeof conn->host];
    size_t hn = (size_t)(colon - addr);
    if (!hn) /* an empty endpoint: the node's own address */
        snprintf(host, sizeof host, "%s", from->host);
    else
        snprintf(host, sizeof host, "%.*s", (int)(hn < sizeof host ? hn : sizeof host - 1), addr);
    *slot = (int)s;
    return node_at(conn, host, (int)port);
}

static int is_error(const redisReply *r, const char *what)
{
    size_t n = strlen(what);
    return r->type == REDIS_REPLY_ERROR && !strncmp(r->str, what, n) &&
           (r->str[n] == ' ' || r->str[n] == '\0');
}

static void pause_ms(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/*
 * rep, node n's reply to a: while it redirects (MOVED, ASK, TRYAGAIN: a was not run), a is sent
 * again where it says (ASKING first for ASK; MOVED also updates the map), up to
 * WX_RC_MAX_REDIRECTS times. WX_OK with *out the last reply (an error reply included; rep is
 * consumed), else WX_ERR_STORE (a node failed; nothing to free).
 */
static int follow(struct wx_rc *conn, struct wx_rc *n, struct wx_rc_args *a, redisReply *rep,
                  redisReply **out)
{
    struct wx_cluster *cl = conn->cluster;
    for (int hop = 0;; hop++) {
        int slot = -1, moved = is_error(rep, "MOVED"), ask = is_error(rep, "ASK");
        int again = is_error(rep, "TRYAGAIN");
        if (is_error(rep, "CLUSTERDOWN"))
            atomic_store(&cl->stale, 1);
        struct wx_rc *to = NULL;
        if (hop < WX_RC_MAX_REDIRECTS)
            to = again ? n : moved || ask ? redirect_target(conn, n, rep->str, &slot) : NULL;
        if (!to) { /* not a redirect, too many, or malformed: the caller's answer */
            *out = rep;
            return WX_OK;
        }
        freeReplyObject(rep);
        rep = NULL;
        if (moved) {
            atomic_store_explicit(&cl->slot[slot], (unsigned char)(node_index(cl, to) + 1),
                                  memory_order_release);
            atomic_store(&cl->stale, 1); /* the rest of the map may have moved too */
        }
        if (again)
            pause_ms(WX_CL_TRYAGAIN_MS * (hop + 1));
        struct wx_rc_args pre[2];
        redisReply *r[2] = {NULL, NULL};
        if (ask) {
            wx_rc_arg_cmd(&pre[0], "ASKING");
            memcpy(&pre[1], a, sizeof *a); /* values point into a's pool: a outlives this */
        }
        if (wx_rc_send(to, ask ? pre : a, ask + 1, r) != WX_OK) {
            memcpy(conn->why, to->why, sizeof conn->why);
            atomic_store(&cl->stale, 1);
            return WX_ERR_STORE;
        }
        if (ask)
            freeReplyObject(r[0]);
        rep = r[ask];
        n = to;
    }
}

int wx_cluster_send(struct wx_rc *conn, struct wx_rc_args *a, int n, redisReply **out)
{
    if (wx_cluster_ready(conn) != WX_OK)
        return WX_ERR_STORE;
    struct wx_cluster *cl = conn->cluster;
    struct wx_rc *to[n], *via[n]; /* to: not yet sent; via: where each went */
    for (int i = 0; i < n; i++) {
        int slot = wx_cluster_command_slot(&a[i]);
        if (slot == -2) {
            snprintf(conn->why, sizeof conn->why, "a command's keys span hash slots");
            return WX_ERR_STORE;
        }
        to[i] = slot < 0 ? any_node(conn) : node_of_slot(cl, slot);
        if (!to[i]) {
            snprintf(conn->why, sizeof conn->why, "no cluster node serves slot %d", slot);
            atomic_store(&cl->stale, 1);
            return WX_ERR_STORE;
        }
        via[i] = to[i];
    }
    for (int i = 0; i < n; i++)
        out[i] = NULL;
    int rc = WX_OK;
    /* One round trip per node, in the order the nodes first appear. */
    for (int i = 0; i < n && rc == WX_OK; i++) {
        if (!to[i]) /* sent with an earlier group */
            continue;
        struct wx_rc *node = to[i];
        int idx[n], k = 0;
        for (int j = i; j < n; j++)
            if (to[j] == node)
                idx[k++] = j;
        if (k == n) { /* the common case: one node for everything */
            rc = wx_rc_send(node, a, n, out);
        } else {
            struct wx_rc_args *g = malloc((size_t)k * sizeof *g);
            redisReply **o = malloc((size_t)k * sizeof *o);
            rc = g && o ? WX_OK : WX_ERR_STORE;
            for (int j = 0; j < k && rc == WX_OK; j++)
                memcpy(&g[j], &a[idx[j]], sizeof *g); /* values point into a's pools */
            if (rc == WX_OK && (rc = wx_rc_send(node, g, k, o)) == WX_OK)
                for (int j = 0; j < k; j++)
                    out[idx[j]] = o[j];
            free(g);
            free(o);
        }
        if (rc != WX_OK) { /* wx_rc_send freed what it got: out holds only earlier groups' */
            for (int j = 0; j < k; j++)
                out[idx[j]] = NULL;
            memcpy(conn->why, node->why, sizeof conn->why);
            atomic_store(&cl->stale, 1);
            break;
        }
        for (int j = 0; j < k; j++)
            to[idx[j]] = NULL;
    }
    /* Commands redirected (not run): each again, to the node named. */
    for (int i = 0; i < n && rc == WX_OK; i++)
        if (is_error(out[i], "MOVED") || is_error(out[i], "ASK") || is_error(out[i], "TRYAGAIN")) {
            redisReply *r = out[i];
            out[i] = NULL;
            rc = follow(conn, via[i], &a[i], r, &out[i]);
        }
    if (rc != WX_OK)
        for (int i = 0; i < n; i++)
            if (out[i]) {
                freeReplyObject(out[i]);
                out[i] = NULL;
            }
    return rc;
}
