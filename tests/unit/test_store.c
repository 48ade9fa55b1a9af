/*
 * test_store.c — the store contract (lib/store.h), run against a backend chosen by URL:
 * WXAUTH_TEST_STORE (default: a fresh SQLite file; "redis-spawn": a redis-server that this test
 * starts itself — WXAUTH_REDIS_SERVER — on a free loopback port with AOF in a temporary
 * directory, and stops at the end; WXAUTH_REDIS_CLUSTER=1 makes it a one-node cluster, which
 * refuses multi-key steps across slots). Every backend must pass the same cases: apps and the
 * in-transaction memo, users, follows and consents, one-time code redemption (also under 50
 * racing connections), revocation (replay, secret reset, app deletion), basic-token grace,
 * nonces, expiring values, purge; with a spawned Redis also an outage, a hang and restarts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <wxauth/wxauth.h>

#include "child.h"
#include "redis_mux.h"
#include "store.h"
#include "store_redis.h"

static char dir[64], url[192];
static const char *redis_server; /* set when this test runs its own Redis (child_pid) */
static int redis_port, redis_cluster;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* SQLite rolls a batch back; Redis keeps what was written (store_redis.c, top comment). */
static int transactional(const struct wx_store *s)
{
    return strcmp(s->ops->name, "sqlite") == 0;
}

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Redis answers data commands (not only PING: an AOF may still be loading). */
static int redis_ready(void)
{
    struct wx_store *s = NULL;
    char err[256];
    unsigned char key[WX_KEY_LEN];
    if (wx_store_open(&s, url, err, sizeof err) != WX_OK)
        return 0;
    int ok = s->ops->master_key(s, key) == WX_OK;
    s->ops->close(s);
    return ok;
}

/*
 * Cluster mode: a one-node cluster serving every slot, where Redis refuses (CROSSSLOT) any
 * command or script whose keys are not all in one slot. Sent raw (RESP) once it listens.
 */
static void redis_claim_slots(void)
{
    static const char cmd[] = "*4\r\n$7\r\nCLUSTER\r\n$13\r\nADDSLOTSRANGE\r\n$1\r\n0\r\n"
                              "$5\r\n16383\r\n";
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)redis_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char reply[128];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        write(fd, cmd, sizeof cmd - 1) == (ssize_t)(sizeof cmd - 1))
        (void)!read(fd, reply, sizeof reply); /* +OK, or busy slots after a restart */
    if (fd >= 0)
        close(fd);
}

/* Starts redis-server on redis_port with its AOF (fsync always) in dir; 0 once it serves. */
static int redis_start(void)
{
    char port[16], log[128];
    snprintf(port, sizeof port, "%d", redis_port);
    snprintf(log, sizeof log, "%s/redis.log", dir);
    pid_t parent = getpid(), pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test, even after kill -9 */
        if (getppid() != parent)
            _exit(1);
        execl(redis_server, redis_server, "--port", port, "--bind", "127.0.0.1", "--dir", dir,
              "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
              "--logfile", log, "--cluster-enabled", redis_cluster ? "yes" : "no",
              "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "500", (char *)NULL);
        _exit(127);
    }
    child_pid = pid;
    for (int i = 0; i < 250; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            child_pid = 0;
            return -1;
        }
        if (redis_cluster)
            redis_claim_slots();
        if (redis_ready())
            return 0;
        usleep(20000);
    }
    child_stop();
    return -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int spawn_setup(void)
{
    redis_server = getenv("WXAUTH_REDIS_SERVER");
    redis_cluster = getenv("WXAUTH_REDIS_CLUSTER") && !strcmp(getenv("WXAUTH_REDIS_CLUSTER"), "1");
    snprintf(dir, sizeof dir, "/tmp/wxauth-redis-XXXXXX");
    if (!redis_server || !*redis_server || !mkdtemp(dir))
        return -1;
    child_guard();
    for (int tries = 0; tries < 5; tries++) {
        redis_port = free_port();
        /* A cluster has database 0 only. */
        snprintf(url, sizeof url, "redis://127.0.0.1:%d/%d?prefix=wxt:&timeout_ms=300", redis_port,
                 redis_cluster ? 0 : 3);
        if (redis_port > 0 && redis_start() == 0)
            return 0;
    }
    return -1;
}

static struct wx_store *open_store(void)
{
    struct wx_store *s = NULL;
    char err[256] = "";
    int rc = wx_store_open(&s, url, err, sizeof err);
    if (rc != WX_OK)
        fail_msg("cannot open %s: %s", url, err);
    return s;
}

static int setup(void **state)
{
    if (wx_init() != WX_OK)
        return -1;
    const char *env = getenv("WXAUTH_TEST_STORE");
    if (env && !strcmp(env, "redis-spawn")) {
        if (spawn_setup())
            return -1;
    } else if (env && *env) {
        snprintf(url, sizeof url, "%s", env);
    } else {
        snprintf(dir, sizeof dir, "/tmp/wxauth-store-XXXXXX");
        if (!mkdtemp(dir))
            return -1;
        snprintf(url, sizeof url, "%s/store.db", dir);
    }
    *state = open_store();
    return 0;
}

static int teardown(void **state)
{
    struct wx_store *s = *state;
    s->ops->close(s);
    if (redis_server) {
        child_stop();
        nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    } else if (dir[0]) {
        char path[160];
        static const char *const files[] = {"store.db", "store.db-wal", "store.db-shm"};
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, files[i]);
            unlink(path);
        }
        rmdir(dir);
    }
    return 0;
}

static void key16(unsigned char k[16], int n)
{
    memset(k, 0, 16);
    memcpy(k, &n, sizeof n);
    k[15] = 0x5a;
}

static void test_master_key_is_stable(void **state)
{
    struct wx_store *s = *state;
    unsigned char a[WX_KEY_LEN], b[WX_KEY_LEN], zero[WX_KEY_LEN] = {0};
    assert_int_equal(s->ops->master_key(s, a), WX_OK);
    assert_memory_not_equal(a, zero, WX_KEY_LEN);
    struct wx_store *again = open_store();
    assert_int_equal(again->ops->master_key(again, b), WX_OK);
    again->ops->close(again);
    assert_memory_equal(a, b, WX_KEY_LEN);
}

static struct wx_app app_spec(const char *appid)
{
    struct wx_app a;
    memset(&a, 0, sizeof a);
    snprintf(a.appid, sizeof a.appid, "%s", appid);
    snprintf(a.name, sizeof a.name, "测试公众号");
    snprintf(a.domains, sizeof a.domains, "app.example.com");
    memset(a.secret_mac, 0x11, sizeof a.secret_mac);
    a.created = 1700000000;
    return a;
}

static void test_apps(void **state)
{
    struct wx_store *s = *state;
    struct wx_app a = app_spec("wx00000000000000a1"), got, dup = app_spec("wx00000000000000a1");
    assert_int_equal(s->ops->app_insert(s, &a), WX_OK);
    assert_true(a.id > 0);
    assert_int_equal(s->ops->app_insert(s, &dup), WX_ERR_CONFLICT);
    assert_int_equal(s->ops->app_by_appid(s, "wx00000000000000a1", &got), WX_OK);
    assert_int_equal(got.id, a.id);
    assert_string_equal(got.name, "测试公众号");
    assert_memory_equal(got.secret_mac, a.secret_mac, WX_CRED_MAC);
    assert_int_equal(s->ops->app_by_id(s, a.id, &got), WX_OK);
    assert_string_equal(got.appid, "wx00000000000000a1");
    assert_int_equal(s->ops->app_by_appid(s, "wx00000000000000ff", &got), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->app_by_id(s, a.id + 1000, &got), WX_ERR_NOTFOUND);
}

/* Inside a transaction an app is remembered; a write to it must never leave a stale copy. */
static void test_app_memo_sees_own_writes(void **state)
{
    struct wx_store *s = *state;
    struct wx_app a = app_spec("wx00000000000000b1"), got;
    assert_int_equal(s->ops->app_insert(s, &a), WX_OK);
    assert_int_equal(s->ops->batch_begin(s), WX_OK);
    assert_int_equal(s->ops->app_by_appid(s, a.appid, &got), WX_OK);
    assert_string_equal(got.name, "测试公众号");
    snprintf(a.name, sizeof a.name, "改名了");
    assert_int_equal(s->ops->app_update(s, &a), WX_OK);
    assert_int_equal(s->ops->app_by_appid(s, a.appid, &got), WX_OK);
    assert_string_equal(got.name, "改名了");
    unsigned char mac[WX_CRED_MAC];
    memset(mac, 0x22, sizeof mac);
    assert_int_equal(s->ops->app_set_secret(s, a.id, mac), WX_OK);
    assert_int_equal(s->ops->app_by_id(s, a.id, &got), WX_OK);
    assert_memory_equal(got.secret_mac, mac, WX_CRED_MAC);
    s->ops->batch_rollback(s);
    /* Rolled back: the old name again, not a remembered copy. Redis has no rollback: what
     * was written stays written, and is what a read sees. */
    assert_int_equal(s->ops->app_by_appid(s, a.appid, &got), WX_OK);
    assert_string_equal(got.name, transactional(s) ? "测试公众号" : "改名了");
    /* Another connection's write is seen by the next transaction. */
    struct wx_store *other = open_store();
    assert_int_equal(s->ops->read_begin(s), WX_OK);
    assert_int_equal(s->ops->app_by_appid(s, a.appid, &got), WX_OK);
    s->ops->read_end(s);
    snprintf(a.name, sizeof a.name, "另一个连接");
    assert_int_equal(other->ops->app_update(other, &a), WX_OK);
    other->ops->close(other);
    assert_int_equal(s->ops->read_begin(s), WX_OK);
    assert_int_equal(s->ops->app_by_appid(s, a.appid, &got), WX_OK);
    s->ops->read_end(s);
    assert_string_equal(got.name, "另一个连接");
}

static void test_code_redeemed_once(void **state)
{
    struct wx_store *s = *state;
    struct wx_app a = app_spec("wx00000000000000c1"), b = app_spec("wx00000000000000c2");
    assert_int_equal(s->ops->app_insert(s, &a), WX_OK);
    assert_int_equal(s->ops->app_insert(s, &b), WX_OK);
    struct wx_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.nickname, sizeof u.nickname, "小明");
    assert_int_equal(s->ops->user_insert(s, &u), WX_OK);
    struct wx_code c = {0};
    memset(c.mac, 0x33, sizeof c.mac);
    c.app_id = a.id;
    c.user_id = u.id;
    c.scope = WX_SCOPE_USERINFO;
    c.expires = 1000;
    assert_int_equal(s->ops->code_insert(s, &c, 1), WX_OK);
    unsigned char wrong[WX_CRED_MAC];
    memset(wrong, 0x34, sizeof wrong);
    struct wx_grant g = {0};
    g.created = 900;
    g.expires = 900 + 30 * 86400;
    memset(g.mac, 0x44, sizeof g.mac);
    assert_int_equal(s->ops->batch_begin(s), WX_OK);
    assert_int_equal(s->ops->code_redeem(s, c.id, wrong, a.id, 900, &g, NULL), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->code_redeem(s, c.id, c.mac, b.id, 900, &g, NULL), WX_ERR_NOTFOUND);
    struct wx_access ac = {0}, got;
    memset(ac.mac, 0x55, sizeof ac.mac);
    ac.expires = 900 + 7200;
    assert_int_equal(s->ops->code_redeem(s, c.id, c.mac, a.id, 900, &g, &ac), WX_OK);
    assert_int_equal(g.user_id, u.id);
    assert_int_equal(g.scope, WX_SCOPE_USERINFO);
    /* The token minted in the same step is the grant's, with the code's user and scope. */
    assert_true(ac.id > 0);
    assert_int_equal(s->ops->access_get(s, ac.id, &got), WX_OK);
    assert_memory_equal(got.mac, ac.mac, WX_CRED_MAC);
    assert_int_equal(got.grant_id, g.id);
    assert_int_equal(got.app_id, a.id);
    assert_int_equal(got.user_id, u.id);
    assert_int_equal(got.scope, WX_SCOPE_USERINFO);
    assert_int_equal(got.expires, 900 + 7200);
    assert_false(got.revoked);
    assert_int_equal(s->ops->code_redeem(s, c.id, c.mac, a.id, 901, &g, NULL), WX_ERR_CONFLICT);
    assert_int_equal(s->ops->batch_commit(s), WX_OK);
    /* The replay revoked the grant the code had produced, and the token minted with it. */
    struct wx_grant first;
    assert_int_equal(s->ops->grant_get(s, g.id, &first), WX_OK);
    assert_true(first.revoked);
    assert_int_equal(s->ops->access_get(s, ac.id, &got), WX_OK);
    assert_true(got.revoked);
    struct wx_code late = c;
    late.expires = 1000;
    assert_int_equal(s->ops->code_insert(s, &late, 1), WX_OK);
    assert_int_equal(s->ops->batch_begin(s), WX_OK);
    assert_int_equal(s->ops->code_redeem(s, late.id, late.mac, a.id, 1000, &g, NULL),
                     WX_ERR_EXPIRED);
    assert_int_equal(s->ops->batch_commit(s), WX_OK);
}

static void test_nonce_once(void **state)
{
    struct wx_store *s = *state;
    unsigned char n[16];
    key16(n, 1);
    assert_int_equal(s->ops->nonce_use(s, n, 5000), WX_OK);
    assert_int_equal(s->ops->nonce_use(s, n, 5000), WX_ERR_CONFLICT);
    key16(n, 2);
    assert_int_equal(s->ops->nonce_use(s, n, 5000), WX_OK);
}

static void test_kv(void **state)
{
    struct wx_store *s = *state;
    unsigned char k[16], k2[16];
    char out[64];
    size_t n = 0;
    key16(k, 10);
    key16(k2, 11);
    assert_int_equal(s->ops->kv_get(s, k, 100, out, sizeof out, &n), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->kv_put(s, k, "hello", 5, 200), WX_OK);
    assert_int_equal(s->ops->kv_get(s, k, 100, out, sizeof out, &n), WX_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "hello", 5);
    /* Replaced, with a new lifetime. */
    assert_int_equal(s->ops->kv_put(s, k, "bye", 3, 300), WX_OK);
    assert_int_equal(s->ops->kv_get(s, k, 250, out, sizeof out, &n), WX_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "bye", 3);
    /* Expired at its time exactly. */
    assert_int_equal(s->ops->kv_get(s, k, 300, out, sizeof out, &n), WX_ERR_NOTFOUND);
    /* Too big for the caller's buffer: refused, not cut. */
    assert_int_equal(s->ops->kv_put(s, k2, "0123456789", 10, 300), WX_OK);
    assert_int_equal(s->ops->kv_get(s, k2, 100, out, 4, &n), WX_ERR_LIMIT);
    /* Binary-safe, empty values allowed. */
    assert_int_equal(s->ops->kv_put(s, k2, "a\0b", 3, 300), WX_OK);
    assert_int_equal(s->ops->kv_get(s, k2, 100, out, sizeof out, &n), WX_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "a\0b", 3);
    assert_int_equal(s->ops->kv_put(s, k2, "", 0, 300), WX_OK);
    assert_int_equal(s->ops->kv_get(s, k2, 100, out, sizeof out, &n), WX_OK);
    assert_int_equal(n, 0);
    /* Purge forgets what expired and keeps the rest. */
    int64_t deleted = 0;
    assert_int_equal(s->ops->purge(s, 301, 1000, &deleted), WX_OK);
    assert_int_equal(s->ops->kv_get(s, k2, 301, out, sizeof out, &n), WX_ERR_NOTFOUND);
    /* SQLite deletes the row (seen from an earlier clock); Redis leaves it to its TTL. */
    if (transactional(s))
        assert_int_equal(s->ops->kv_get(s, k2, 100, out, sizeof out, &n), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->kv_put(s, k, "keep", 4, 10000), WX_OK);
    assert_int_equal(s->ops->purge(s, 5000, 1000, &deleted), WX_OK);
    assert_int_equal(s->ops->kv_get(s, k, 4000, out, sizeof out, &n), WX_OK);
}

/* ---- helpers for the credential cases ---- */

static struct wx_app add_app(struct wx_store *s, const char *appid)
{
    struct wx_app a = app_spec(appid);
    assert_int_equal(s->ops->app_insert(s, &a), WX_OK);
    return a;
}

static struct wx_user add_user(struct wx_store *s, const char *nick)
{
    struct wx_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.nickname, sizeof u.nickname, "%s", nick);
    u.created = 1700000000;
    assert_int_equal(s->ops->user_insert(s, &u), WX_OK);
    assert_true(u.id > 0);
    return u;
}

static struct wx_code add_code(struct wx_store *s, int64_t app_id, int64_t user_id, int fill)
{
    struct wx_code c = {0};
    memset(c.mac, fill, sizeof c.mac);
    c.app_id = app_id;
    c.user_id = user_id;
    c.scope = WX_SCOPE_BASE;
    c.expires = 2000;
    assert_int_equal(s->ops->code_insert(s, &c, 1), WX_OK);
    assert_true(c.id > 0);
    return c;
}

/* Redeems c at time 1000 in a batch of its own; returns the grant. */
static struct wx_grant redeem(struct wx_store *s, const struct wx_code *c, int expect)
{
    struct wx_grant g = {0};
    memset(g.mac, 0x66, sizeof g.mac);
    g.created = 1000;
    g.expires = 1000 + 30 * 86400;
    assert_int_equal(s->ops->batch_begin(s), WX_OK);
    assert_int_equal(s->ops->code_redeem(s, c->id, c->mac, c->app_id, 1000, &g, NULL), expect);
    assert_int_equal(s->ops->batch_commit(s), WX_OK);
    return g;
}

static struct wx_access add_access(struct wx_store *s, const struct wx_grant *g)
{
    struct wx_access a = {0};
    memset(a.mac, 0x77, sizeof a.mac);
    a.grant_id = g->id;
    a.app_id = g->app_id;
    a.user_id = g->user_id;
    a.scope = g->scope;
    a.expires = 1000 + 7200;
    assert_int_equal(s->ops->access_insert(s, &a), WX_OK);
    assert_true(a.id > 0);
    return a;
}

static int access_revoked(struct wx_store *s, int64_t id)
{
    struct wx_access a;
    assert_int_equal(s->ops->access_get(s, id, &a), WX_OK);
    return a.revoked;
}

static int grant_revoked(struct wx_store *s, int64_t id)
{
    struct wx_grant g;
    assert_int_equal(s->ops->grant_get(s, id, &g), WX_OK);
    return g.revoked;
}

/* ---- users, follows, consents, lists ---- */

struct seen {
    int n;
    int64_t ids[64];
};

static void saw_app(void *ud, const struct wx_app *a)
{
    struct seen *v = ud;
    if (v->n < 64)
        v->ids[v->n++] = a->id;
}

static void saw_user(void *ud, const struct wx_user *u)
{
    struct seen *v = ud;
    if (v->n < 64)
        v->ids[v->n++] = u->id;
}

static int seen_has(const struct seen *v, int64_t id)
{
    for (int i = 0; i < v->n; i++)
        if (v->ids[i] == id)
            return 1;
    return 0;
}

static int ascending(const struct seen *v)
{
    for (int i = 1; i < v->n; i++)
        if (v->ids[i - 1] >= v->ids[i])
            return 0;
    return 1;
}

struct rec_seen {
    char names[8][WX_REC_MAX_NAME + 1];
    char values[8][32];
    int n;
};

static void rec_collect(void *ud, const char *name, const void *value, size_t len)
{
    struct rec_seen *r = ud;
    if (r->n < 8) {
        snprintf(r->names[r->n], sizeof r->names[0], "%s", name);
        snprintf(r->values[r->n], sizeof r->values[0], "%.*s", (int)len, (const char *)value);
    }
    r->n++;
}

/* Named records: create-only puts, replaces, name order, kinds apart, the named limits. */
static void test_records(void **state)
{
    struct wx_store *s = *state;
    char out[64], name[WX_REC_MAX_NAME + 2];
    size_t n = 0;
    assert_int_equal(s->ops->rec_get(s, "oidc_client", "b", out, sizeof out, &n), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->rec_put(s, "oidc_client", "b", "two", 3, 1), WX_OK);
    assert_int_equal(s->ops->rec_put(s, "oidc_client", "b", "again", 5, 1), WX_ERR_CONFLICT);
    assert_int_equal(s->ops->rec_put(s, "oidc_client", "a", "one", 3, 1), WX_OK);
    assert_int_equal(s->ops->rec_put(s, "oidc_client", "c", "a\0b", 3, 0), WX_OK);
    assert_int_equal(s->ops->rec_put(s, "oidc_key", "a", "key", 3, 1), WX_OK);
    assert_int_equal(s->ops->rec_get(s, "oidc_client", "b", out, sizeof out, &n), WX_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "two", 3);
    assert_int_equal(s->ops->rec_get(s, "oidc_client", "c", out, sizeof out, &n), WX_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "a\0b", 3); /* binary-safe */
    assert_int_equal(s->ops->rec_get(s, "oidc_client", "b", out, 2, &n), WX_ERR_LIMIT);
    /* A put without create replaces. */
    assert_int_equal(s->ops->rec_put(s, "oidc_client", "b", "TWO", 3, 0), WX_OK);
    struct rec_seen seen = {0};
    assert_int_equal(s->ops->rec_list(s, "oidc_client", rec_collect, &seen), WX_OK);
    assert_int_equal(seen.n, 3);
    assert_string_equal(seen.names[0], "a");
    assert_string_equal(seen.names[1], "b");
    assert_string_equal(seen.values[1], "TWO");
    assert_string_equal(seen.names[2], "c");
    memset(&seen, 0, sizeof seen);
    assert_int_equal(s->ops->rec_list(s, "oidc_key", rec_collect, &seen), WX_OK);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.values[0], "key");
    assert_int_equal(s->ops->rec_delete(s, "oidc_client", "b"), WX_OK);
    assert_int_equal(s->ops->rec_delete(s, "oidc_client", "b"), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->rec_get(s, "oidc_client", "b", out, sizeof out, &n), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->rec_get(s, "oidc_key", "a", out, sizeof out, &n), WX_OK);
    /* The limits: a name of WX_REC_MAX_NAME bytes fits, one more does not; so for values. */
    memset(name, 'n', sizeof name - 1);
    name[WX_REC_MAX_NAME] = '\0';
    assert_int_equal(s->ops->rec_put(s, "oidc_client", name, "x", 1, 1), WX_OK);
    assert_int_equal(s->ops->rec_get(s, "oidc_client", name, out, sizeof out, &n), WX_OK);
    name[WX_REC_MAX_NAME] = 'n';
    name[WX_REC_MAX_NAME + 1] = '\0';
    assert_int_equal(s->ops->rec_put(s, "oidc_client", name, "x", 1, 1), WX_ERR_LIMIT);
    assert_int_equal(s->ops->rec_put(s, "Bad-Kind", "x", "x", 1, 1), WX_ERR_LIMIT);
    char *big = calloc(1, WX_REC_MAX_VALUE + 1), *back = malloc(WX_REC_MAX_VALUE);
    assert_non_null(big);
    assert_non_null(back);
    memset(big, 'v', WX_REC_MAX_VALUE + 1);
    assert_int_equal(s->ops->rec_put(s, "oidc_key", "big", big, WX_REC_MAX_VALUE, 0), WX_OK);
    assert_int_equal(s->ops->rec_get(s, "oidc_key", "big", back, WX_REC_MAX_VALUE, &n), WX_OK);
    assert_int_equal(n, WX_REC_MAX_VALUE);
    assert_int_equal(s->ops->rec_put(s, "oidc_key", "big", big, WX_REC_MAX_VALUE + 1, 0),
                     WX_ERR_LIMIT);
    free(big);
    free(back);
}

static void test_users_follows_consents(void **state)
{
    struct wx_store *s = *state;
    struct wx_user u1 = add_user(s, "小红"), u2 = add_user(s, "小刚"), got;
    assert_true(u2.id > u1.id);
    assert_int_equal(s->ops->user_get(s, u1.id, &got), WX_OK);
    assert_string_equal(got.nickname, "小红");
    assert_int_equal(got.snapshot, 0);
    assert_int_equal(s->ops->user_set_snapshot(s, u1.id, 1), WX_OK);
    assert_int_equal(s->ops->user_get(s, u1.id, &got), WX_OK);
    assert_int_equal(got.snapshot, 1);
    assert_int_equal(s->ops->user_set_snapshot(s, u2.id + 1000, 1), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->user_get(s, u2.id + 1000, &got), WX_ERR_NOTFOUND);
    struct seen users = {0};
    assert_int_equal(s->ops->user_list(s, saw_user, &users), WX_OK);
    assert_true(seen_has(&users, u1.id) && seen_has(&users, u2.id) && ascending(&users));

    struct wx_app a = add_app(s, "wx00000000000000d1"), b = add_app(s, "wx00000000000000d2");
    int64_t since = 0;
    assert_int_equal(s->ops->follow_get(s, u1.id, a.id, &since), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->follow_set(s, u1.id, b.id, 1, 500), WX_OK);
    assert_int_equal(s->ops->follow_set(s, u1.id, a.id, 1, 600), WX_OK);
    assert_int_equal(s->ops->follow_set(s, u1.id, a.id, 1, 700), WX_OK); /* keeps the first */
    assert_int_equal(s->ops->follow_get(s, u1.id, a.id, &since), WX_OK);
    assert_int_equal(since, 600);
    struct seen fol = {0};
    assert_int_equal(s->ops->follow_list(s, u1.id, saw_app, &fol), WX_OK);
    assert_int_equal(fol.n, 2);
    assert_int_equal(fol.ids[0], a.id);
    assert_int_equal(fol.ids[1], b.id);
    assert_int_equal(s->ops->follow_set(s, u1.id, b.id, 0, 800), WX_OK);
    assert_int_equal(s->ops->follow_get(s, u1.id, b.id, &since), WX_ERR_NOTFOUND);
    fol.n = 0;
    assert_int_equal(s->ops->follow_list(s, u2.id, saw_app, &fol), WX_OK);
    assert_int_equal(fol.n, 0);

    int64_t at = 0;
    assert_int_equal(s->ops->consent_get(s, u1.id, a.id, &at), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->consent_set(s, u1.id, a.id, 900), WX_OK);
    assert_int_equal(s->ops->consent_set(s, u1.id, a.id, 950), WX_OK); /* the last one */
    assert_int_equal(s->ops->consent_get(s, u1.id, a.id, &at), WX_OK);
    assert_int_equal(at, 950);
    assert_int_equal(s->ops->consent_get(s, u2.id, a.id, &at), WX_ERR_NOTFOUND);
}

static void test_app_list_update(void **state)
{
    struct wx_store *s = *state;
    struct wx_app a = add_app(s, "wx00000000000000e1"), b = add_app(s, "wx00000000000000e2"), got;
    assert_true(b.id > a.id);
    struct seen apps = {0};
    assert_int_equal(s->ops->app_list(s, saw_app, &apps), WX_OK);
    assert_true(seen_has(&apps, a.id) && seen_has(&apps, b.id) && ascending(&apps));
    snprintf(a.domains, sizeof a.domains, "a.example.com,b.example.com");
    snprintf(a.menu, sizeof a.menu, "首页=https://a.example.com/");
    snprintf(a.open_account, sizeof a.open_account, "open1");
    a.kind = WX_APP_WEBSITE;
    a.https_only = 1;
    assert_int_equal(s->ops->app_update(s, &a), WX_OK);
    assert_int_equal(s->ops->app_by_id(s, a.id, &got), WX_OK);
    assert_string_equal(got.domains, "a.example.com,b.example.com");
    assert_string_equal(got.menu, "首页=https://a.example.com/");
    assert_string_equal(got.open_account, "open1");
    assert_int_equal(got.kind, WX_APP_WEBSITE);
    assert_int_equal(got.https_only, 1);
    assert_int_equal(got.created, 1700000000);
    struct wx_app ghost = a;
    ghost.id = b.id + 1000;
    assert_int_equal(s->ops->app_update(s, &ghost), WX_ERR_NOTFOUND);
    unsigned char mac[WX_CRED_MAC] = {0};
    assert_int_equal(s->ops->app_set_secret(s, ghost.id, mac), WX_ERR_NOTFOUND);
}

/* ---- credentials ---- */

static void test_replay_revokes_access_tokens(void **state)
{
    struct wx_store *s = *state;
    struct wx_app a = add_app(s, "wx00000000000000f1");
    struct wx_user u = add_user(s, "小李");
    struct wx_code c = add_code(s, a.id, u.id, 0x31), other = add_code(s, a.id, u.id, 0x32);
    struct wx_grant g = redeem(s, &c, WX_OK), g2 = redeem(s, &other, WX_OK), got;
    assert_int_not_equal(g.id, g2.id);
    assert_int_equal(s->ops->grant_get(s, g.id, &got), WX_OK);
    assert_memory_equal(got.mac, g.mac, WX_CRED_MAC);
    assert_int_equal(got.app_id, a.id);
    assert_int_equal(got.user_id, u.id);
    assert_int_equal(got.code_id, c.id);
    assert_int_equal(got.expires, g.expires);
    assert_false(got.revoked);
    struct wx_access t1 = add_access(s, &g), t2 = add_access(s, &g), o = add_access(s, &g2), at;
    assert_int_not_equal(t1.id, t2.id);
    assert_int_equal(s->ops->access_get(s, t1.id, &at), WX_OK);
    assert_memory_equal(at.mac, t1.mac, WX_CRED_MAC);
    assert_int_equal(at.grant_id, g.id);
    assert_int_equal(at.user_id, u.id);
    assert_int_equal(at.expires, t1.expires);
    assert_false(at.revoked);
    assert_int_equal(s->ops->access_get(s, INT64_MAX, &at), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->grant_get(s, INT64_MAX, &got), WX_ERR_NOTFOUND);
    /* The replay revokes the grant and every access token minted from it, nothing else. */
    redeem(s, &c, WX_ERR_CONFLICT);
    assert_true(grant_revoked(s, g.id));
    assert_true(access_revoked(s, t1.id) && access_revoked(s, t2.id));
    assert_false(grant_revoked(s, g2.id));
    assert_false(access_revoked(s, o.id));
}

static void test_secret_reset_revokes(void **state)
{
    struct wx_store *s = *state;
    struct wx_app a = add_app(s, "wx00000000000000f2"), b = add_app(s, "wx00000000000000f3");
    struct wx_user u = add_user(s, "小王");
    struct wx_code early = add_code(s, a.id, u.id, 0x41), late = add_code(s, a.id, u.id, 0x42);
    struct wx_code other = add_code(s, b.id, u.id, 0x43);
    struct wx_grant g = redeem(s, &early, WX_OK), gb = redeem(s, &other, WX_OK);
    struct wx_access t = add_access(s, &g), tb = add_access(s, &gb);
    struct wx_basic k = {.app_id = a.id, .expires = 8200}, kb = {.app_id = b.id, .expires = 8200};
    memset(k.mac, 0x51, sizeof k.mac);
    kb = k, kb.app_id = b.id;
    assert_int_equal(s->ops->basic_insert(s, &k, 1000, 300), WX_OK);
    assert_int_equal(s->ops->basic_insert(s, &kb, 1000, 300), WX_OK);
    unsigned char mac[WX_CRED_MAC];
    memset(mac, 0x99, sizeof mac);
    assert_int_equal(s->ops->app_set_secret(s, a.id, mac), WX_OK);
    struct wx_app got;
    assert_int_equal(s->ops->app_by_id(s, a.id, &got), WX_OK);
    assert_memory_equal(got.secret_mac, mac, WX_CRED_MAC);
    /* Issued before the reset: revoked (basic tokens gone); another app's: untouched. */
    assert_true(grant_revoked(s, g.id));
    assert_true(access_revoked(s, t.id));
    struct wx_basic bk;
    assert_int_equal(s->ops->basic_get(s, k.id, &bk), WX_ERR_NOTFOUND);
    assert_false(grant_revoked(s, gb.id));
    assert_false(access_revoked(s, tb.id));
    assert_int_equal(s->ops->basic_get(s, kb.id, &bk), WX_OK);
    /* Issued after it (from a code issued before): valid. */
    struct wx_grant g2 = redeem(s, &late, WX_OK);
    struct wx_access t2 = add_access(s, &g2);
    assert_false(grant_revoked(s, g2.id));
    assert_false(access_revoked(s, t2.id));
    struct wx_basic k2 = k;
    assert_int_equal(s->ops->basic_insert(s, &k2, 1100, 300), WX_OK);
    assert_int_equal(s->ops->basic_get(s, k2.id, &bk), WX_OK);
    assert_int_equal(bk.expires, 8200);
}

static void test_basic_grace(void **state)
{
    struct wx_store *s = *state;
    struct wx_app a = add_app(s, "wx00000000000000f4");
    struct wx_basic k1 = {.app_id = a.id, .expires = 1000 + 7200}, k2, k3, got;
    memset(k1.mac, 0x61, sizeof k1.mac);
    assert_int_equal(s->ops->basic_insert(s, &k1, 1000, 300), WX_OK);
    k2 = k1, k2.expires = 1010 + 7200;
    assert_int_equal(s->ops->basic_insert(s, &k2, 1010, 300), WX_OK);
    k3 = k1, k3.expires = 1020 + 7200;
    assert_int_equal(s->ops->basic_insert(s, &k3, 1020, 300), WX_OK);
    assert_true(k1.id != k2.id && k2.id != k3.id && k1.id != k3.id);
    /* Each earlier token keeps grace seconds from the first one issued after it. */
    assert_int_equal(s->ops->basic_get(s, k1.id, &got), WX_OK);
    assert_int_equal(got.expires, 1310);
    assert_memory_equal(got.mac, k1.mac, WX_CRED_MAC);
    assert_int_equal(got.app_id, a.id);
    assert_int_equal(s->ops->basic_get(s, k2.id, &got), WX_OK);
    assert_int_equal(got.expires, 1320);
    assert_int_equal(s->ops->basic_get(s, k3.id, &got), WX_OK);
    assert_int_equal(got.expires, 1020 + 7200);
}

static void test_app_delete_takes_dependents(void **state)
{
    struct wx_store *s = *state;
    struct wx_app a = add_app(s, "wx00000000000000f5"), keep = add_app(s, "wx00000000000000f6");
    struct wx_user u = add_user(s, "小赵");
    struct wx_code c = add_code(s, a.id, u.id, 0x71), unused = add_code(s, a.id, u.id, 0x72);
    struct wx_grant g = redeem(s, &c, WX_OK);
    struct wx_access t = add_access(s, &g);
    struct wx_basic k = {.app_id = a.id, .expires = 9000};
    assert_int_equal(s->ops->basic_insert(s, &k, 1000, 300), WX_OK);
    assert_int_equal(s->ops->follow_set(s, u.id, a.id, 1, 10), WX_OK);
    assert_int_equal(s->ops->follow_set(s, u.id, keep.id, 1, 10), WX_OK);
    assert_int_equal(s->ops->consent_set(s, u.id, a.id, 10), WX_OK);
    assert_int_equal(s->ops->app_delete(s, a.id), WX_OK);
    struct wx_app app;
    struct wx_grant gg;
    struct wx_access aa;
    struct wx_basic bb;
    int64_t v;
    assert_int_equal(s->ops->app_by_id(s, a.id, &app), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->app_by_appid(s, a.appid, &app), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->grant_get(s, g.id, &gg), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->access_get(s, t.id, &aa), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->basic_get(s, k.id, &bb), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->follow_get(s, u.id, a.id, &v), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->consent_get(s, u.id, a.id, &v), WX_ERR_NOTFOUND);
    redeem(s, &unused, WX_ERR_NOTFOUND);
    struct seen fol = {0};
    assert_int_equal(s->ops->follow_list(s, u.id, saw_app, &fol), WX_OK);
    assert_int_equal(fol.n, 1);
    assert_int_equal(fol.ids[0], keep.id);
    /* The appid is free again. */
    struct wx_app again = add_app(s, "wx00000000000000f5");
    assert_int_not_equal(again.id, a.id);
    assert_int_equal(s->ops->app_delete(s, a.id), WX_OK); /* deleting twice is fine */
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

static void test_ids_unique(void **state)
{
    struct wx_store *s = *state;
    enum { N = 300 };
    static int64_t ids[3 * N];
    struct wx_app a = add_app(s, "wx00000000000000f7");
    struct wx_user u = add_user(s, "小周");
    struct wx_code c = add_code(s, a.id, u.id, 0x11);
    struct wx_grant g = redeem(s, &c, WX_OK);
    for (int i = 0; i < N; i++) {
        struct wx_code ci = add_code(s, a.id, u.id, 0x12);
        struct wx_access t = add_access(s, &g);
        struct wx_basic k = {.app_id = a.id, .expires = 9000};
        assert_int_equal(s->ops->basic_insert(s, &k, 1000, 300), WX_OK);
        ids[i] = ci.id, ids[N + i] = t.id, ids[2 * N + i] = k.id;
    }
    for (int kind = 0; kind < 3; kind++) {
        qsort(ids + kind * N, N, sizeof ids[0], cmp_i64);
        for (int i = 0; i < N; i++) {
            assert_true(ids[kind * N + i] > 0);
            if (i)
                assert_true(ids[kind * N + i] != ids[kind * N + i - 1]);
        }
    }
}

/*
 * code_insert of many (what /admin/issue mints with): more than one Redis batch and not a
 * multiple of it, each code its own id and redeemable once with its own MAC.
 */
static void insert_codes_together(struct wx_store *s, const char *appid)
{
    enum { N = 2 * RD_BATCH + 45 };
    static struct wx_code c[N];
    static int64_t ids[N];
    struct wx_app a = add_app(s, appid);
    struct wx_user u = add_user(s, "小冯");
    for (int i = 0; i < N; i++) {
        c[i] = (struct wx_code){
            .app_id = a.id, .user_id = u.id, .scope = WX_SCOPE_BASE, .expires = 2000};
        memcpy(c[i].mac, &i, sizeof i);
    }
    assert_int_equal(s->ops->code_insert(s, c, N), WX_OK);
    for (int i = 0; i < N; i++) {
        assert_true(c[i].id > 0);
        ids[i] = c[i].id;
    }
    qsort(ids, N, sizeof ids[0], cmp_i64);
    for (int i = 1; i < N; i++)
        assert_true(ids[i] != ids[i - 1]);
    for (int i = 0; i < N; i += 7) {
        struct wx_code wrong = c[i];
        wrong.mac[0] ^= 1;
        redeem(s, &wrong, WX_ERR_NOTFOUND);
        redeem(s, &c[i], WX_OK);
        redeem(s, &c[i], WX_ERR_CONFLICT);
    }
}

static void test_codes_inserted_together(void **state)
{
    insert_codes_together(*state, "wx0000000000000ca1");
}

/* ---- 50 connections race to redeem one code ---- */

enum { RACERS = 50 };

struct racer {
    pthread_barrier_t *start;
    struct wx_code code;
    int rc;
    int64_t grant_id;
};

static void *race(void *p)
{
    struct racer *r = p;
    struct wx_store *s = NULL;
    char err[256];
    int opened = wx_store_open(&s, url, err, sizeof err) == WX_OK;
    pthread_barrier_wait(r->start);
    r->rc = -1;
    if (!opened)
        return NULL;
    struct wx_grant g = {0};
    memset(g.mac, 0x88, sizeof g.mac);
    g.created = 1000;
    g.expires = 1000 + 86400;
    if (s->ops->batch_begin(s) == WX_OK) {
        int rc = s->ops->code_redeem(s, r->code.id, r->code.mac, r->code.app_id, 1000, &g, NULL);
        if (rc == WX_OK || rc == WX_ERR_CONFLICT) {
            if (s->ops->batch_commit(s) == WX_OK)
                r->rc = rc;
        } else {
            s->ops->batch_rollback(s);
            r->rc = rc;
        }
    }
    r->grant_id = g.id;
    s->ops->close(s);
    return NULL;
}

static void test_code_race_one_winner(void **state)
{
    struct wx_store *s = *state;
    struct wx_app a = add_app(s, "wx00000000000000f8");
    struct wx_user u = add_user(s, "小钱");
    struct wx_code c = add_code(s, a.id, u.id, 0x21);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, RACERS);
    static struct racer r[RACERS];
    pthread_t t[RACERS];
    for (int i = 0; i < RACERS; i++) {
        r[i] = (struct racer){.start = &start, .code = c};
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    int wins = 0, conflicts = 0;
    int64_t grant = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(t[i], NULL);
        if (r[i].rc == WX_OK) {
            wins++;
            grant = r[i].grant_id;
        }
        conflicts += r[i].rc == WX_ERR_CONFLICT;
    }
    pthread_barrier_destroy(&start);
    assert_int_equal(wins, 1);
    assert_int_equal(conflicts, RACERS - 1);
    /* The losers were replays: the winner's grant is revoked. */
    assert_true(grant_revoked(s, grant));
}

/* ---- a spawned Redis: hang, crash, restart ---- */

/*
 * Calls that fail, all three within a second (the URL sets timeout_ms=300): after a timeout
 * the next calls fail at once instead of each waiting for its own.
 */
static void assert_down(struct wx_store *s, int64_t app_id)
{
    struct wx_app got;
    int64_t t0 = mono_ms();
    assert_int_equal(s->ops->app_by_id(s, app_id, &got), WX_ERR_STORE);
    assert_int_equal(s->ops->ping(s), WX_ERR_STORE);
    assert_int_equal(s->ops->batch_begin(s), WX_ERR_STORE);
    int64_t took = mono_ms() - t0;
    assert_true(took < 1000);
}

/* Back within a second, on the same store (after a timeout: once the 300 ms hold-off ends). */
static void assert_back(struct wx_store *s)
{
    int64_t t0 = mono_ms();
    while (s->ops->ping(s) != WX_OK && mono_ms() - t0 < 1000)
        usleep(10000);
    assert_int_equal(s->ops->ping(s), WX_OK);
}

static void test_redis_outage_and_restart(void **state)
{
    struct wx_store *s = *state;
    struct wx_app a = add_app(s, "wx00000000000000f9"), got;
    struct wx_user u = add_user(s, "小孙");
    struct wx_code c = add_code(s, a.id, u.id, 0x29);
    struct wx_grant g = redeem(s, &c, WX_OK);
    /* Hung (SIGSTOP): commands time out; the connection is rebuilt once it answers again. */
    assert_int_equal(kill(child_pid, SIGSTOP), 0);
    assert_down(s, a.id);
    assert_int_equal(kill(child_pid, SIGCONT), 0);
    assert_back(s);
    /* Crashed (SIGKILL): refused at once. */
    assert_int_equal(kill(child_pid, SIGKILL), 0);
    waitpid(child_pid, NULL, 0);
    child_pid = 0;
    assert_down(s, a.id);
    /* Back (from its AOF): the same store works again, and the code stays redeemed. */
    assert_int_equal(redis_start(), 0);
    assert_int_equal(s->ops->ping(s), WX_OK); /* refused connections leave no hold-off */
    assert_int_equal(s->ops->app_by_id(s, a.id, &got), WX_OK);
    redeem(s, &c, WX_ERR_CONFLICT);
    assert_true(grant_revoked(s, g.id));
    /* Restarted between two calls: the first call after it already succeeds. */
    child_stop();
    assert_int_equal(redis_start(), 0);
    assert_int_equal(s->ops->app_by_id(s, a.id, &got), WX_OK);
    struct wx_code c2 = add_code(s, a.id, u.id, 0x2a);
    redeem(s, &c2, WX_OK);
}

/*
 * The shared pipelined connection: many threads at once, each unit answered with its own
 * replies (a SET and a GET of a key only that thread writes), the units sharing writes; then
 * Redis hung with units in flight: every one fails within the timeout, and all recover.
 */
#define MUX_THREADS 16
#define MUX_ROUNDS  300

struct mux_worker {
    struct wx_store *s;
    int idx, wrong, failed;
};

static void *mux_work(void *arg)
{
    struct mux_worker *w = arg;
    struct wx_rc *conn = &RD(w->s)->conn;
    for (int i = 0; i < MUX_ROUNDS; i++) {
        char key[48], val[32];
        snprintf(key, sizeof key, "wxt:mux:%d", w->idx);
        snprintf(val, sizeof val, "%d-%d", w->idx, i);
        struct wx_rc_args a[2];
        redisReply *r[2];
        wx_rc_arg_cmd(&a[0], "SET");
        wx_rc_arg_strs(&a[0], key, val, NULL);
        wx_rc_arg_cmd(&a[1], "GET");
        wx_rc_arg_str(&a[1], key);
        if (wx_rc_pipeline(conn, a, 2, r) != WX_OK) {
            w->failed++;
            continue;
        }
        if (r[1]->type != REDIS_REPLY_STRING || strcmp(r[1]->str, val) != 0)
            w->wrong++;
        freeReplyObject(r[0]);
        freeReplyObject(r[1]);
    }
    return NULL;
}

struct mux_hung {
    struct wx_store *s;
    int rc;
    int64_t took;
};

static void *mux_ping(void *arg)
{
    struct mux_hung *h = arg;
    int64_t t0 = mono_ms();
    h->rc = h->s->ops->ping(h->s);
    h->took = mono_ms() - t0;
    return NULL;
}

static void test_redis_mux_shared(void **state)
{
    struct wx_store *s = *state, *more[MUX_THREADS];
    char err[160];
    struct mux_worker w[MUX_THREADS];
    pthread_t t[MUX_THREADS];
    assert_null(RD(s)->conn.mux);           /* a store keeps its own connection unless shared */
    for (int i = 0; i < MUX_THREADS; i++) { /* shared: every one on the same connection */
        assert_int_equal(wx_store_open(&more[i], url, err, sizeof err), WX_OK);
        assert_int_equal(more[i]->ops->share(more[i]), WX_OK);
        assert_non_null(RD(more[i])->conn.mux);
        assert_ptr_equal(RD(more[i])->conn.mux, RD(more[0])->conn.mux);
    }
    struct wx_mux *mux = RD(more[0])->conn.mux;
    uint64_t units0, writes0, units, writes;
    wx_mux_stats(mux, &units0, &writes0);
    for (int i = 0; i < MUX_THREADS; i++) {
        w[i] = (struct mux_worker){.s = more[i], .idx = i};
        assert_int_equal(pthread_create(&t[i], NULL, mux_work, &w[i]), 0);
    }
    for (int i = 0; i < MUX_THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failed, 0);
        assert_int_equal(w[i].wrong, 0);
    }
    wx_mux_stats(mux, &units, &writes);
    assert_int_equal(units - units0, MUX_THREADS * MUX_ROUNDS);
    assert_true(writes - writes0 <= units - units0);
    fprintf(stderr, "mux: %llu units in %llu writes\n", (unsigned long long)(units - units0),
            (unsigned long long)(writes - writes0));
    /* Hung with units in flight: each fails within the timeout (300 ms), none waits longer. */
    assert_int_equal(kill(child_pid, SIGSTOP), 0);
    struct mux_hung h[MUX_THREADS];
    for (int i = 0; i < MUX_THREADS; i++) {
        h[i] = (struct mux_hung){.s = more[i]};
        assert_int_equal(pthread_create(&t[i], NULL, mux_ping, &h[i]), 0);
    }
    for (int i = 0; i < MUX_THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(h[i].rc, WX_ERR_STORE);
        assert_true(h[i].took < 700);
    }
    assert_int_equal(kill(child_pid, SIGCONT), 0);
    assert_back(more[0]);
    for (int i = 0; i < MUX_THREADS; i++) {
        assert_int_equal(more[i]->ops->ping(more[i]), WX_OK);
        more[i]->ops->close(more[i]);
    }
}

/* Sends one raw command (arguments up to a NULL, the key made with conn's prefix). */
static void raw(struct wx_store *s, const char *cmd, const char *key, const void *val, size_t len)
{
    struct wx_rc *conn = &RD(s)->conn;
    struct wx_rc_args a;
    redisReply *r;
    wx_rc_arg_cmd(&a, cmd);
    wx_rc_arg_key(conn, &a, "%s", key);
    if (val)
        wx_rc_arg_bin(&a, val, len);
    if (!strcmp(cmd, "HSET"))
        wx_rc_arg_str(&a, "x");
    assert_int_equal(wx_rc_call(conn, &a, &r), WX_OK);
    freeReplyObject(r);
}

/*
 * Redis forgetting its scripts (a restart, a SCRIPT FLUSH) between the store's load and a
 * batch of codes: every call of the batch meets NOSCRIPT and is sent again as EVAL.
 */
static void test_redis_codes_after_script_flush(void **state)
{
    struct wx_store *s = *state;
    struct wx_app a = add_app(s, "wx0000000000000ca2");
    struct wx_user u = add_user(s, "小褚");
    add_code(s, a.id, u.id, 0x3e); /* the script is loaded: its sha is known */
    struct wx_rc_args f;
    redisReply *r;
    wx_rc_arg_cmd(&f, "SCRIPT");
    wx_rc_arg_str(&f, "FLUSH");
    assert_int_equal(wx_rc_call(&RD(s)->conn, &f, &r), WX_OK);
    freeReplyObject(r);
    insert_codes_together(s, "wx0000000000000ca3");
}

/*
 * Codes are packed strings too (store_redis.c: the MAC, the expiry in 20 characters, then
 * " app user scope snap"), read by the redeem script with string.sub: expiries at both ends of
 * int64 keep their meaning, and a record that is not one is never redeemed into a credential
 * (a store error, or not found when even its MAC cannot match).
 */
static void test_redis_packed_codes(void **state)
{
    struct wx_store *s = *state;
    struct wx_app app = app_spec("wx00000000000000f3");
    assert_int_equal(s->ops->app_insert(s, &app), WX_OK);
    struct wx_user u = add_user(s, "小周");

    struct wx_code c = add_code(s, app.id, u.id, 0x41);
    c.expires = INT64_MAX;
    c.scope = WX_SCOPE_USERINFO;
    c.snapshot = 1;
    assert_int_equal(s->ops->code_insert(s, &c, 1), WX_OK);
    struct wx_grant g = redeem(s, &c, WX_OK);
    assert_int_equal(g.user_id, u.id);
    assert_int_equal(g.app_id, app.id);
    assert_int_equal(g.code_id, c.id);
    assert_int_equal(g.scope, WX_SCOPE_USERINFO);
    assert_int_equal(g.snapshot, 1);
    c.expires = -1;
    assert_int_equal(s->ops->code_insert(s, &c, 1), WX_OK);
    redeem(s, &c, WX_ERR_EXPIRED);
    c.expires = INT64_MIN;
    assert_int_equal(s->ops->code_insert(s, &c, 1), WX_OK);
    redeem(s, &c, WX_ERR_EXPIRED);

    /* the same code's record rewritten: what the redeem script meets, what it answers */
    c = add_code(s, app.id, u.id, 0x42);
    char key[96], mac[WX_CRED_MAC + 1];
    snprintf(key, sizeof key, "{%llx}:code:%lld", (unsigned long long)((uint64_t)c.id >> 32),
             (long long)c.id);
    memset(mac, 0x42, WX_CRED_MAC);
    mac[WX_CRED_MAC] = '\0';
    char au[64]; /* B's app and user */
    snprintf(au, sizeof au, " %lld %lld", (long long)app.id, (long long)u.id);
    struct {
        const char *exp, *b; /* after the MAC: the expiry, then B (after au when it has one) */
        int with_au, rc;
    } bad[] = {
        {"short", "", 0, WX_ERR_NOTFOUND},                       /* no MAC to match */
        {"0000000000000002000", "", 0, WX_ERR_NOTFOUND},         /* a short expiry, no B */
        {"0000000000000002000", " 1 1 0 0", 0, WX_ERR_NOTFOUND}, /* B a character early */
        {"000000000000000200x0", " 0 0", 1, WX_ERR_STORE},       /* an expiry that is no number */
        {"00000000000000002000", " x 0", 1, WX_ERR_STORE},       /* a scope that is no number */
        {"00000000000000002000", " 0", 1, WX_ERR_STORE},         /* a field missing */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char v[160];
        int n = i == 0 ? snprintf(v, sizeof v, "%s", bad[i].exp)
                       : snprintf(v, sizeof v, "%s%s%s%s", mac, bad[i].exp,
                                  bad[i].with_au ? au : "", bad[i].b);
        raw(s, "SET", key, v, (size_t)n);
        redeem(s, &c, bad[i].rc);
    }
    raw(s, "DEL", key, NULL, 0);
    raw(s, "HSET", key, "mac", 3); /* a hash where a string belongs (a code of before) */
    redeem(s, &c, WX_ERR_STORE);
    raw(s, "DEL", key, NULL, 0);
    redeem(s, &c, WX_ERR_NOTFOUND);

    /* A grant's first token is its record's (id: the grant's with RD_FIRST); a grant made
     * without one has none to find, and a token of its own is an access key. */
    struct wx_access first;
    assert_int_equal(s->ops->access_get(s, g.id | RD_FIRST, &first), WX_ERR_NOTFOUND);
    struct wx_grant made = g;
    made.code_id = 0;
    assert_int_equal(s->ops->grant_insert(s, &made), WX_OK);
    assert_int_equal(s->ops->access_get(s, made.id | RD_FIRST, &first), WX_ERR_NOTFOUND);
    c = add_code(s, app.id, u.id, 0x43);
    struct wx_grant g3 = {0};
    struct wx_access ac = {0};
    memset(g3.mac, 0x66, sizeof g3.mac);
    memset(ac.mac, 0x67, sizeof ac.mac);
    g3.created = 1000;
    g3.expires = 1000 + 30 * 86400;
    ac.expires = 1000 + 7200;
    assert_int_equal(s->ops->code_redeem(s, c.id, c.mac, app.id, 1000, &g3, &ac), WX_OK);
    assert_int_equal(ac.id, g3.id | RD_FIRST);
    assert_int_equal(s->ops->access_get(s, ac.id, &first), WX_OK);
    assert_memory_equal(first.mac, ac.mac, WX_CRED_MAC);
    assert_int_equal(first.expires, 1000 + 7200);
    assert_int_equal(first.grant_id, g3.id);
    struct wx_access later = add_access(s, &g3);
    assert_int_equal(later.id & RD_FIRST, 0);
    assert_int_equal(s->ops->access_get(s, later.id, &first), WX_OK);
    assert_memory_equal(first.mac, later.mac, WX_CRED_MAC);
}

/*
 * Grants and access tokens are packed strings (store_redis.c): every field comes back as
 * written, the largest values included, and a record that is not one (cut short, a field
 * missing, too many, not a number, out of range, another type) is a store error, never a
 * credential made of whatever parsed.
 */
static void test_redis_packed_records(void **state)
{
    struct wx_store *s = *state;
    struct wx_app app = app_spec("wx00000000000000f2");
    assert_int_equal(s->ops->app_insert(s, &app), WX_OK);
    struct wx_user u = add_user(s, "小孙");
    struct wx_code c = add_code(s, app.id, u.id, 0x3d);
    struct wx_grant g = redeem(s, &c, WX_OK), got;
    struct wx_access a = {0}, back;
    memset(a.mac, 0x7e, sizeof a.mac);
    a.grant_id = g.id;
    a.app_id = app.id;
    a.user_id = u.id;
    a.scope = 2;
    a.snapshot = 1;
    a.expires = RD_MAX_TIME; /* the largest a store keeps */
    assert_int_equal(s->ops->access_insert(s, &a), WX_OK);
    assert_int_equal(s->ops->access_get(s, a.id, &back), WX_OK);
    assert_memory_equal(back.mac, a.mac, WX_CRED_MAC);
    assert_int_equal(back.grant_id, g.id);
    assert_int_equal(back.app_id, app.id);
    assert_int_equal(back.user_id, u.id);
    assert_int_equal(back.scope, 2);
    assert_int_equal(back.snapshot, 1);
    assert_int_equal(back.expires, RD_MAX_TIME);
    assert_int_equal(s->ops->grant_get(s, g.id, &got), WX_OK);
    assert_memory_equal(got.mac, g.mac, WX_CRED_MAC);
    assert_int_equal(got.code_id, c.id);
    assert_int_equal(got.created, 1000);
    assert_int_equal(got.expires, 1000 + 30 * 86400);

    char gkey[96], akey[96], mac[WX_CRED_MAC + 1];
    snprintf(gkey, sizeof gkey, "{%llx}:grant:%lld", (unsigned long long)((uint64_t)g.id >> 32),
             (long long)g.id);
    snprintf(akey, sizeof akey, "{%llx}:access:%lld", (unsigned long long)((uint64_t)a.id >> 32),
             (long long)a.id);
    memset(mac, 'm', WX_CRED_MAC);
    mac[WX_CRED_MAC] = '\0';
    /* Each kind's n numbers (grant 9, token 7), then what is wrong with them. */
    const char *bad[] = {"",
                         " 1 2 3 4 5 6",
                         " 1 2 3 4 5 6 7 8 9",
                         " 1 2 3 4 5 6 7 ",
                         " 1 2 3 x 5 6 7",
                         " 1 2 3 4 5 6 9223372036854775808",
                         " 1 2 3 4 5 6 99999999999999999999999",
                         " 1  2 3 4 5 6 7",
                         " 1 2 3 4 5 6 -",
                         "-"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int grant = 0; grant < 2; grant++) {
            char v[160];
            /* a grant has its first token's MAC after its own, and two numbers more: put them in
             * front, where they change nothing else */
            int n = i == 0 ? snprintf(v, sizeof v, "short")
                           : snprintf(v, sizeof v, "%s%s%s%s", mac, grant ? mac : "",
                                      grant ? " 1 1" : "", bad[i]);
            raw(s, "SET", grant ? gkey : akey, v, (size_t)n);
            if (grant)
                assert_int_equal(s->ops->grant_get(s, g.id, &got), WX_ERR_STORE);
            else
                assert_int_equal(s->ops->access_get(s, a.id, &back), WX_ERR_STORE);
        }
    }
    raw(s, "DEL", gkey, NULL, 0);
    raw(s, "HSET", gkey, "mac", 3); /* a hash where a string belongs */
    assert_int_equal(s->ops->grant_get(s, g.id, &got), WX_ERR_STORE);
    raw(s, "DEL", akey, NULL, 0);
    assert_int_equal(s->ops->access_get(s, a.id, &back), WX_ERR_NOTFOUND);
}

/*
 * The app cache of a store on the shared connection (store_redis.h): its own changes seen at
 * once, another connection's from its next read_begin, a secret reset's revocation likewise,
 * and nothing answered from the cache while Redis is down.
 */
static void test_redis_app_cache(void **state)
{
    struct wx_store *s = *state, *shared, *other;
    char err[160];
    assert_int_equal(wx_store_open(&shared, url, err, sizeof err), WX_OK);
    assert_int_equal(shared->ops->share(shared), WX_OK);
    other = open_store();
    struct wx_app a = app_spec("wx00000000000000f1"), got;
    assert_int_equal(shared->ops->app_insert(shared, &a), WX_OK);
    struct wx_user u = add_user(s, "小钱");
    struct wx_code c = add_code(s, a.id, u.id, 0x3c);
    struct wx_grant g = redeem(shared, &c, WX_OK);
    assert_int_equal(shared->ops->read_begin(shared), WX_OK);
    assert_int_equal(shared->ops->app_by_appid(shared, a.appid, &got), WX_OK);
    snprintf(a.name, sizeof a.name, "自己改的");
    assert_int_equal(shared->ops->app_update(shared, &a), WX_OK);
    assert_int_equal(shared->ops->app_by_id(shared, a.id, &got), WX_OK);
    assert_string_equal(got.name, "自己改的"); /* its own change: at once */
    shared->ops->read_end(shared);
    /* Another connection's change and secret reset: seen from the next group of reads. */
    assert_int_equal(shared->ops->read_begin(shared), WX_OK);
    assert_int_equal(shared->ops->app_by_id(shared, a.id, &got), WX_OK);
    snprintf(a.name, sizeof a.name, "别人改的");
    assert_int_equal(other->ops->app_update(other, &a), WX_OK);
    unsigned char mac[WX_CRED_MAC];
    memset(mac, 0x5a, sizeof mac);
    assert_int_equal(other->ops->app_set_secret(other, a.id, mac), WX_OK);
    shared->ops->read_end(shared);
    assert_int_equal(shared->ops->read_begin(shared), WX_OK);
    assert_int_equal(shared->ops->app_by_appid(shared, a.appid, &got), WX_OK);
    assert_string_equal(got.name, "别人改的");
    assert_memory_equal(got.secret_mac, mac, WX_CRED_MAC);
    assert_true(grant_revoked(shared, g.id));
    /* Cached, but Redis is gone: an error, as every other call. */
    assert_int_equal(shared->ops->app_by_id(shared, a.id, &got), WX_OK);
    assert_int_equal(kill(child_pid, SIGKILL), 0);
    waitpid(child_pid, NULL, 0);
    child_pid = 0;
    int64_t t0 = mono_ms(), rc;
    while ((rc = shared->ops->app_by_id(shared, a.id, &got)) == WX_OK && mono_ms() - t0 < 1000)
        usleep(1000); /* until the connection notices (its I/O thread reads the close) */
    assert_int_equal(rc, WX_ERR_STORE);
    shared->ops->read_end(shared);
    assert_int_equal(redis_start(), 0);
    assert_back(shared);
    other->ops->close(other);
    shared->ops->close(shared);
}

/* ---- URLs ---- */

static void test_store_urls(void **state)
{
    static const char *const bad[] = {
        "redis://",
        "redis://127.0.0.1:0",
        "redis://127.0.0.1:65536",
        "redis://127.0.0.1:6379/x",
        "redis://127.0.0.1:6379/1?prefix={a}",
        "redis://127.0.0.1:6379/1?prefix=a b",
        "redis://127.0.0.1:6379?timeout_ms=0",
        "redis://127.0.0.1:6379?timeout_ms=x",
        "redis://127.0.0.1:6379?tls=1",
        "redis://:@127.0.0.1:6379",
        "redis://user@127.0.0.1:6379",
        "redis://:%zz@127.0.0.1:6379",
        "redis://[::1:6379",
        "mysql://root:hunter2@db/x",
    };
    char err[256];
    struct wx_store *s = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (wx_store_open(&s, bad[i], err, sizeof err) != WX_ERR_INVALID)
            fail_msg("accepted %s", bad[i]);
        assert_true(err[0] != '\0');
        assert_null(strstr(err, "hunter2"));
    }
    /* Nothing listening: a quick WX_ERR_STORE that does not echo the password. */
    char u[96];
    snprintf(u, sizeof u, "redis://:hunter2@127.0.0.1:%d/0?timeout_ms=200", free_port());
    int64_t t0 = mono_ms();
    assert_int_equal(wx_store_open(&s, u, err, sizeof err), WX_ERR_STORE);
    assert_true(mono_ms() - t0 < 1000);
    assert_null(strstr(err, "hunter2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_master_key_is_stable),
        cmocka_unit_test(test_apps),
        cmocka_unit_test(test_app_memo_sees_own_writes),
        cmocka_unit_test(test_code_redeemed_once),
        cmocka_unit_test(test_nonce_once),
        cmocka_unit_test(test_kv),
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_users_follows_consents),
        cmocka_unit_test(test_app_list_update),
        cmocka_unit_test(test_replay_revokes_access_tokens),
        cmocka_unit_test(test_secret_reset_revokes),
        cmocka_unit_test(test_basic_grace),
        cmocka_unit_test(test_app_delete_takes_dependents),
        cmocka_unit_test(test_ids_unique),
        cmocka_unit_test(test_codes_inserted_together),
        cmocka_unit_test(test_code_race_one_winner),
        cmocka_unit_test(test_store_urls),
    };
    /* Only a Redis this test started itself can be stopped and restarted. */
    const struct CMUnitTest redis_tests[] = {
        cmocka_unit_test(test_redis_outage_and_restart),
        cmocka_unit_test(test_redis_mux_shared),
        cmocka_unit_test(test_redis_app_cache),
        cmocka_unit_test(test_redis_packed_records),
        cmocka_unit_test(test_redis_packed_codes),
        cmocka_unit_test(test_redis_codes_after_script_flush),
    };
    const char *env = getenv("WXAUTH_TEST_STORE"), *server = getenv("WXAUTH_REDIS_SERVER");
    if (env && !strcmp(env, "redis-spawn") && (!server || access(server, X_OK) != 0)) {
        fprintf(stderr, "skipped: no redis-server (WXAUTH_REDIS_SERVER)\n");
        return 77;
    }
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    if (env && !strcmp(env, "redis-spawn"))
        rc |= cmocka_run_group_tests(redis_tests, setup, teardown);
    return rc;
}
