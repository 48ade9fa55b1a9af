/*
 * redis_conn.h — one connection to Redis (hiredis 0.14, RESP2), below the Redis store
 * (store_redis.c): the redis:// URL, connecting within a timeout, noticing a connection Redis
 * closed, backing off after a timeout, commands one at a time or pipelined, and Lua scripts
 * run by EVALSHA with an EVAL fallback. A command's arguments are collected in a
 * struct wx_rc_args, every value its own argument (binary-safe, never formatted into a
 * command text).
 *
 * Errors: WX_OK, or WX_ERR_STORE for any failure. After an I/O error or a timeout the
 * connection is dropped and a later call connects again by itself. One struct wx_rc is used by
 * one thread at a time.
 */
#ifndef WX_REDIS_CONN_H
#define WX_REDIS_CONN_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "cred.h"

#define WX_RC_MAX_ARGS       48   /* arguments of one command */
#define WX_RC_POOL           2048 /* bytes of formatted keys and numbers per command */
#define WX_RC_MAX_PREFIX     64   /* key prefix */
#define WX_RC_MAX_SCRIPTS    16   /* Lua scripts one connection runs */
#define WX_RC_TIMEOUT_MS     1000 /* default connect and command timeout */
#define WX_RC_MAX_SENTINELS  8    /* sentinels one redis-sentinel:// URL names */
#define WX_RC_SENTINEL_PORT  26379
#define WX_RC_MAX_WAIT       16 /* replicas wait=N may ask for */
#define WX_RC_MAX_SEEDS      8  /* seed nodes one redis-cluster:// URL names */
#define WX_RC_MAX_NODES      64 /* cluster nodes one store follows (masters met over its life) */
#define WX_RC_MAX_REDIRECTS  5  /* MOVED, ASK or TRYAGAIN followed for one command */
#define WX_RC_SLOTS          16384
#define WX_RC_WATCH_PING_MS  1000 /* +switch-master: silence before a PING to the sentinel */
#define WX_RC_WATCH_RETRY_MS 500  /* ... and the pause before the next sentinel is tried */

/*
 * One command's arguments: borrowed values plus a pool for keys and numbers. Values added with
 * wx_rc_arg_bin/str/strs are borrowed: they must outlive the call that sends them. Whatever
 * does not fit sets over, and the call then fails with WX_ERR_STORE.
 */
struct wx_rc_args {
    int n, over;
    size_t used;
    const char *v[WX_RC_MAX_ARGS];
    size_t l[WX_RC_MAX_ARGS];
    char pool[WX_RC_POOL];
};

/*
 * A connection and what it was opened with. Zero it, fill it with wx_rc_parse_url and set lua;
 * it connects on first use. Release it with wx_rc_close.
 */
struct wx_mux;
struct wx_cluster;
struct wx_rc_watch;
struct wx_rc_addr {
    char host[256];
    int port;
};
struct wx_rc {
    redisContext *c; /* NULL while disconnected: the next call connects */
    /*
     * Set: every call goes through this shared pipelined connection instead (redis_mux.h), and
     * c stays NULL. wx_rc_close releases it.
     */
    struct wx_mux *mux;
    char host[256], user[128], pass[256];
    int port, db, timeout_ms;
    /*
     * redis-sentinel:// (nsentinels > 0): host and port are the master the sentinels last named
     * (empty until asked), found again at every connect; the master's name, the sentinels.
     */
    int nsentinels;
    struct wx_rc_addr sentinel[WX_RC_MAX_SENTINELS];
    char master[128];
    struct wx_rc_watch *watch; /* their +switch-master announcements (wx_rc_master_moved) */
    uint64_t master_gen;       /* ... as seen when c connected */
    /*
     * wait=N: a call that writes is followed, in the same round trip, by WAIT N (at most
     * timeout_ms / 2 ms), and fails unless N replicas confirmed it (0: no WAIT). On the shared
     * pipelined connection (redis_mux.h) one WAIT follows each batch it writes.
     */
    int wait;
    /*
     * redis-cluster:// (nseeds > 0): the nodes the URL names, asked for the slot map (CLUSTER
     * SLOTS) when there is none or it went stale; cluster: the map and a connection per node
     * (redis_cluster.c), made on first use. host and port stay empty.
     */
    int nseeds;
    struct wx_rc_addr seed[WX_RC_MAX_SEEDS];
    struct wx_cluster *cluster;
    char prefix[WX_RC_MAX_PREFIX + 1];
    const char *const *lua;          /* the scripts wx_rc_eval runs, by index (borrowed, static) */
    char sha[WX_RC_MAX_SCRIPTS][41]; /* SCRIPT LOAD results, learnt on first use */
    char why[128];                   /* why the last connection attempt failed */
    int64_t hold_until;              /* monotonic ms: after a timeout, fail at once until then */
};

/* ---- building arguments ---- */

/* Empties a for a new command. */
void wx_rc_arg_clear(struct wx_rc_args *a);
/* Empties a and adds the command name cmd (borrowed). */
void wx_rc_arg_cmd(struct wx_rc_args *a, const char *cmd);
/* Empties a for wx_rc_eval: EVALSHA, a place for the sha (filled in by eval), nkeys. */
void wx_rc_arg_script(struct wx_rc_args *a, int nkeys);
/* Adds n bytes at p (borrowed; n 0: an empty argument). */
void wx_rc_arg_bin(struct wx_rc_args *a, const void *p, size_t n);
/* Adds the string s (borrowed). */
void wx_rc_arg_str(struct wx_rc_args *a, const char *s);
/* Adds n bytes at p, copied into a's pool (they need not outlive the call). */
void wx_rc_arg_copy(struct wx_rc_args *a, const void *p, size_t n);
/* Adds several strings (borrowed), up to a NULL. */
__attribute__((sentinel)) void wx_rc_arg_strs(struct wx_rc_args *a, ...);
/* Adds a key: conn's prefix, then fmt, copied into a's pool. */
__attribute__((format(printf, 3, 4))) void
wx_rc_arg_key(const struct wx_rc *conn, struct wx_rc_args *a, const char *fmt, ...);
/* Adds v in decimal. */
void wx_rc_arg_i64(struct wx_rc_args *a, int64_t v);
/* A credential's key: the prefix, "{FAMILY}:" (hex, the Cluster hash tag), kind, and ":ID"
 * unless id < 0. The same as wx_rc_arg_key(.., "{%llx}:%s:%lld", ..), without printf. */
void wx_rc_arg_credkey(const struct wx_rc *conn, struct wx_rc_args *a, uint64_t family,
                       const char *kind, int64_t id);
/* v in decimal into out (no NUL); its length. */
#define WX_RC_I64_LEN 21 /* "-9223372036854775808" and room to spare */
size_t wx_rc_fmt_i64(char out[WX_RC_I64_LEN], int64_t v);
/* Adds a field name (borrowed) and its integer value. */
void wx_rc_arg_field(struct wx_rc_args *a, const char *field, int64_t v);

/*
 * Appends the n commands a[0..n) to c's output in RESP ("*<argc>", then "$<len>" and the bytes
 * of each argument), in one piece: the bytes redisAppendCommandArgv would write, without its
 * sdscatfmt per header (~10% of the provider's instructions per exchange). *buf and *cap are
 * the caller's buffer, grown as needed (free it when done); wipe: zeroed after (an AUTH).
 * REDIS_OK, or REDIS_ERR out of memory (nothing appended).
 */
int wx_rc_append(redisContext *c, const struct wx_rc_args *a, int n, char **buf, size_t *cap,
                 int wipe);

/* ---- reading replies (r borrowed; nothing here frees it) ---- */

/* An integer reply, or a string holding a decimal integer, into *out: 1, else 0. */
int wx_rc_reply_i64(const redisReply *r, int64_t *out);
/* An integer field; 0 when absent or malformed (for fields the caller wrote itself). */
int64_t wx_rc_reply_num(const redisReply *r);
/* A string into out (outsz with the NUL), cut to fit; "" when r is not a string. */
void wx_rc_reply_text(const redisReply *r, char *out, size_t outsz);
/* A MAC of exactly WX_CRED_MAC bytes; all zero when r is anything else. */
void wx_rc_reply_mac(const redisReply *r, unsigned char mac[WX_CRED_MAC]);

/* ---- the connection ---- */

/*
 * Opens a connection to conn's server within its timeout, AUTH, SELECT and PING done (NULL, why
 * set, on failure; a blocking call, for threads that are not event loops). With sentinels, asks
 * them in turn for the master, connects to it, checks with ROLE that it is one, and records
 * its address in conn->host and conn->port.
 */
redisContext *wx_rc_open(struct wx_rc *conn, char *why, size_t whysz);
/* c's socket non-blocking, and hiredis told so (EAGAIN means "later"): WX_OK or WX_ERR_STORE. */
int wx_rc_nonblock(redisContext *c);
/* Whether r is Redis's -READONLY (the server is a replica: with sentinels, look again). */
int wx_rc_readonly(const redisReply *r);
/*
 * With sentinels: whether they have announced (+switch-master, or a lookup after the watcher
 * reconnected) a master other than conn's host:port since *seen, which is brought up to date.
 * The first call starts following the announcements (a thread per sentinels and master).
 */
int wx_rc_master_moved(struct wx_rc *conn, uint64_t *seen);
/*
 * Fills conn (zeroed) from redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=P&timeout_ms=N], or
 * redis-sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER[?db=N&prefix=P&timeout_ms=N]
 * (the sentinels, 26379 by default; the password is the master's), or
 * redis-cluster://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...][/][?prefix=P&timeout_ms=N] (seed
 * nodes, 6379 by default; database 0, the only one a cluster has); all take wait=N as well:
 * password percent-decoded; port 6379, db 0, prefix "wx:", timeout WX_RC_TIMEOUT_MS unless
 * given. WX_OK, or WX_ERR_INVALID with the reason in err, which never echoes the URL (it may
 * hold a password). Does not connect.
 */
int wx_rc_parse_url(struct wx_rc *conn, const char *url, char *err, size_t errsz);
/*
 * Makes sure a live connection is up: keeps one Redis has not closed, else connects (AUTH,
 * SELECT, PING) within timeout_ms. For timeout_ms after a timeout it fails at once, so that a
 * request making several calls waits once. On failure conn->why says why.
 */
int wx_rc_connect(struct wx_rc *conn);
/* wx_rc_connect for a caller that fails its request when it fails: the failure is told to the
 * store's log (wx_store_note_failure) as a failed call's is. */
int wx_rc_ready(struct wx_rc *conn);
/*
 * Runs one command: WX_OK with *out a reply that is not an error (the caller frees it with
 * freeReplyObject), or WX_ERR_STORE (*out NULL).
 */
int wx_rc_call(struct wx_rc *conn, struct wx_rc_args *a, redisReply **out);
/*
 * Sends the n commands a[0..n-1] in one round trip. WX_OK when every reply arrived and none is
 * an error: out[0..n-1] then hold them, each for the caller to free; else WX_ERR_STORE and
 * nothing to free.
 */
int wx_rc_pipeline(struct wx_rc *conn, struct wx_rc_args *a, int n, redisReply **out);
/*
 * Runs script conn->lua[script] with a built by wx_rc_arg_script: EVALSHA, and EVAL when Redis
 * does not know the script (after a restart or a flush). WX_OK with *out as for wx_rc_call,
 * or WX_ERR_STORE.
 */
int wx_rc_eval(struct wx_rc *conn, int script, struct wx_rc_args *a, redisReply **out);
/*
 * wx_rc_eval for n calls of one script a[0..n) (each built by wx_rc_arg_script) in one round
 * trip: WX_OK with out[0..n) holding every reply, none an error (the caller frees them), or
 * WX_ERR_STORE and nothing to free. Calls that were sent may have run even then.
 */
int wx_rc_eval_pipeline(struct wx_rc *conn, int script, struct wx_rc_args *a, int n,
                        redisReply **out);
/* wx_rc_eval for a script whose reply is one integer, into *v. */
int wx_rc_eval_int(struct wx_rc *conn, int script, struct wx_rc_args *a, int64_t *v);
/* wx_rc_call for a command whose reply is one integer, into *v. */
int wx_rc_call_int(struct wx_rc *conn, struct wx_rc_args *a, int64_t *v);
/* Disconnects and wipes the password (the struct itself is the caller's to free). */
void wx_rc_close(struct wx_rc *conn);

/*
 * Sends the n commands a[0..n) in one round trip to conn's own server (never routed: a
 * cluster node's connection): WX_OK with every reply, error replies included (the caller frees
 * them), else WX_ERR_STORE and nothing to free. With wait=N, WAIT N follows the writes.
 */
int wx_rc_send(struct wx_rc *conn, struct wx_rc_args *a, int n, redisReply **out);

/* ---- Redis Cluster (redis_cluster.c) ---- */

/* The hash slot of key k[0..n) (CRC16 of the key, or of its {hash tag}). */
int wx_cluster_key_slot(const char *k, size_t n);
/*
 * The slot a command goes to: its key's (for EVAL/EVALSHA, every one of its KEYS must share
 * it), -1 when it has none (any node serves it), -2 when its keys span slots (never sent).
 */
int wx_cluster_command_slot(const struct wx_rc_args *a);
/*
 * wx_rc_send on a redis-cluster:// conn: each command to the master of its slot (the map
 * learnt from the seeds), commands for one node in one round trip; MOVED (the map updated and
 * refreshed), ASK (ASKING first) and TRYAGAIN followed up to WX_RC_MAX_REDIRECTS times each,
 * which is safe: a redirected command was not run. A node that fails makes the call fail and
 * the map stale (the next call asks again: a failover's new master is found).
 */
int wx_cluster_send(struct wx_rc *conn, struct wx_rc_args *a, int n, redisReply **out);
/* Makes sure the slot map is known (asks the nodes when it is stale or missing). */
int wx_cluster_ready(struct wx_rc *conn);
/* From now on every node's connection is the process's shared pipelined one (redis_mux.h). */
int wx_cluster_share(struct wx_rc *conn);
/* Closes every node's connection and frees the map. */
void wx_cluster_free(struct wx_rc *conn);

#endif
