/*
 * test_client_live.c — the client library against the real provider. Starts `wxauth provider`
 * (path in $WXAUTH_BIN) on a free loopback port with a temporary database made through the CLI,
 * mints codes and tokens through POST /admin/issue, and checks every call of the client: code
 * exchange, replay (40163), refresh, userinfo, check_token, the basic token and basic userinfo;
 * then the retry policy through POST /admin/faults: idempotent calls retry on -1 and 45011, the
 * code exchange never does, and a delay past timeout_ms is a transport timeout. The provider is
 * killed at the end, on failure, and when this process dies (PR_SET_PDEATHSIG).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wxauth/wxauth.h>

#include "child.h"

#define ADMIN_TOKEN "client-live-admin-token-0123456789"

static struct {
    const char *bin;
    char dir[256], db[300], out[300], err[300];
    char base[64];
    char appid[64], secret[128];
    char user[16], user2[16];
    struct wx_client *c;    /* retries 2, 10 ms backoff */
    struct wx_client *fast; /* timeout 400 ms, no retries */
} g;

/* ---- processes ---- */

/* Runs argv, returns its stdout (malloc'd) or NULL when it fails. */
static char *run_capture(char *const argv[])
{
    int fds[2];
    if (pipe(fds))
        return NULL;
    pid_t pid = fork();
    if (pid < 0)
        return NULL;
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    ssize_t n;
    while ((n = read(fds[0], buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 2)
            buf = realloc(buf, cap *= 2);
    }
    close(fds[0]);
    buf[len] = '\0';
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s %s failed: %s\n", argv[0], argv[1], buf);
        free(buf);
        return NULL;
    }
    return buf;
}

static json_t *cli_json(char *const argv[])
{
    char *out = run_capture(argv);
    json_t *j = out ? json_loads(out, 0, NULL) : NULL;
    free(out);
    return j;
}

static int copy_str(char *dst, size_t n, const char *src)
{
    if (!src || strlen(src) >= n)
        return -1;
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

static int start_provider(void)
{
    child_pid = fork();
    if (child_pid < 0)
        return -1;
    if (child_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int o = open(g.out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(g.err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0)
            _exit(126);
        dup2(o, 1);
        dup2(e, 2);
        execl(g.bin, g.bin, "provider", "--db", g.db, "--listen", "127.0.0.1:0", "--sandbox",
              "--test-clock", "--admin-token", ADMIN_TOKEN, "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    /* Wait (10 s at most) for "listening on http://127.0.0.1:PORT". */
    for (int i = 0; i < 500; i++) {
        char buf[4096] = "";
        FILE *f = fopen(g.out, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            buf[n] = '\0';
            fclose(f);
        }
        const char *m = strstr(buf, "listening on http://");
        if (m) {
            m += strlen("listening on ");
            size_t n = strspn(m, "htp:/0123456789.");
            if (n < sizeof g.base && m[n] != '\0') {
                memcpy(g.base, m, n);
                g.base[n] = '\0';
                return 0;
            }
        }
        if (waitpid(child_pid, NULL, WNOHANG) == child_pid) {
            child_pid = 0;
            fprintf(stderr, "provider exited before listening\n");
            return -1;
        }
        usleep(20000);
    }
    return -1;
}

/* ---- admin API over libcurl ---- */

static size_t collect(char *d, size_t s, size_t n, void *ud)
{
    return wx_buf_append(ud, d, s * n) == WX_OK ? s * n : 0;
}

/* method + path with an optional JSON body; returns the parsed answer (status in *status). */
static json_t *admin(const char *method, const char *path, json_t *body, long *status)
{
    char url[256];
    struct wx_buf out;
    struct curl_slist *h = NULL;
    char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    long st = 0;
    wx_buf_init(&out, 1 << 20);
    snprintf(url, sizeof url, "%s%s", g.base, path);
    CURL *c = curl_easy_init();
    h = curl_slist_append(h, "Authorization: Bearer " ADMIN_TOKEN);
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (payload)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    free(payload);
    json_decref(body);
    json_t *j = cc == CURLE_OK && out.ptr ? json_loads(out.ptr, 0, NULL) : NULL;
    wx_buf_free(&out);
    if (status)
        *status = st;
    if (!j)
        fail_msg("admin %s %s failed (curl %d, HTTP %ld)", method, path, (int)cc, st);
    return j;
}

/* Mints one code for (user, scope); the openid goes to openid (if not NULL). */
static void issue_code(const char *user, const char *scope, char code[WX_MAX_CODE + 1],
                       char openid[WX_MAX_ID + 1])
{
    long st;
    json_t *r = admin("POST", "/admin/issue",
                      json_pack("{s:s, s:s, s:s, s:s, s:i}", "appid", g.appid, "user", user,
                                "scope", scope, "kind", "code", "count", 1),
                      &st);
    assert_int_equal(st, 200);
    assert_int_equal(copy_str(code, WX_MAX_CODE + 1,
                              json_string_value(json_array_get(json_object_get(r, "codes"), 0))),
                     0);
    if (openid)
        assert_int_equal(
            copy_str(openid, WX_MAX_ID + 1, json_string_value(json_object_get(r, "openid"))), 0);
    json_decref(r);
}

static void add_fault(const char *endpoint, int errcode, int count, int delay_ms)
{
    long st;
    json_t *r = admin("POST", "/admin/faults",
                      json_pack("{s:s, s:i, s:i, s:i}", "endpoint", endpoint, "errcode", errcode,
                                "count", count, "delay_ms", delay_ms),
                      &st);
    assert_int_equal(st, 200);
    json_decref(r);
}

/* How many injected answers are still pending for endpoint (0 when none). */
static long fault_remaining(const char *endpoint)
{
    long st, n = 0;
    json_t *r = admin("GET", "/admin/faults", NULL, &st), *v;
    size_t i;
    assert_int_equal(st, 200);
    json_array_foreach(json_object_get(r, "faults"), i,
                       v) if (!strcmp(json_string_value(json_object_get(v, "endpoint")), endpoint))
        n += (long)json_integer_value(json_object_get(v, "count"));
    json_decref(r);
    return n;
}

static void clear_faults(void)
{
    json_decref(admin("DELETE", "/admin/faults", NULL, NULL));
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    (void)state;
    g.bin = getenv("WXAUTH_BIN");
    if (!g.bin || access(g.bin, X_OK)) {
        fprintf(stderr, "WXAUTH_BIN must name the wxauth binary\n");
        return -1;
    }
    if (wx_init() || curl_global_init(CURL_GLOBAL_DEFAULT))
        return -1;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(g.dir, sizeof g.dir, "%s/wxauth-client-live-XXXXXX", tmp);
    if (!mkdtemp(g.dir))
        return -1;
    snprintf(g.db, sizeof g.db, "%s/t.db", g.dir);
    snprintf(g.out, sizeof g.out, "%s/provider.out", g.dir);
    snprintf(g.err, sizeof g.err, "%s/provider.err", g.dir);

    char *app_argv[] = {(char *)g.bin, "app",        "add",      "--db",           g.db,
                        "--name",      "客户端测试", "--domain", "localhost:9000", "--json",
                        NULL};
    json_t *app = cli_json(app_argv);
    if (!app ||
        copy_str(g.appid, sizeof g.appid, json_string_value(json_object_get(app, "appid"))) ||
        copy_str(g.secret, sizeof g.secret, json_string_value(json_object_get(app, "secret"))))
        return -1;
    json_decref(app);
    char *nick[] = {"小明", "Alice"};
    char *ids[] = {g.user, g.user2};
    for (int i = 0; i < 2; i++) {
        char *user_argv[] = {(char *)g.bin, "user",  "add",    "--db", g.db,
                             "--nickname",  nick[i], "--json", NULL};
        json_t *u = cli_json(user_argv);
        if (!u || copy_str(ids[i], sizeof g.user, json_string_value(json_object_get(u, "id"))))
            return -1;
        json_decref(u);
    }
    child_guard();
    if (start_provider()) {
        child_stop();
        return -1;
    }

    struct wx_client_config cfg = {0};
    struct wx_error err = {0};
    cfg.appid = g.appid;
    cfg.secret = g.secret;
    cfg.open_base = g.base;
    cfg.api_base = g.base;
    cfg.max_retries = 2;
    cfg.retry_backoff_ms = 10;
    cfg.timeout_ms = 5000;
    if (wx_client_new(&cfg, &g.c, &err)) {
        fprintf(stderr, "client: %s\n", err.errmsg);
        return -1;
    }
    cfg.max_retries = -1;
    cfg.timeout_ms = 400;
    if (wx_client_new(&cfg, &g.fast, &err))
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    child_stop();
    wx_client_free(g.c);
    wx_client_free(g.fast);
    char *rm_argv[] = {"/bin/rm", "-rf", g.dir, NULL};
    free(run_capture(rm_argv));
    curl_global_cleanup();
    return 0;
}

static int each_setup(void **state)
{
    (void)state;
    clear_faults();
    return 0;
}

/* ---- the calls ---- */

static void test_exchange(void **state)
{
    (void)state;
    char code[WX_MAX_CODE + 1], openid[WX_MAX_ID + 1];
    struct wx_token t;
    struct wx_error err = {0};
    issue_code(g.user, "snsapi_userinfo", code, openid);
    assert_int_equal(wx_exchange_code(g.c, code, &t, &err), WX_OK);
    assert_true(strlen(t.access_token) >= 27); /* >= 160 bits */
    assert_true(strlen(t.refresh_token) >= 27);
    assert_string_equal(t.openid, openid);
    assert_string_equal(t.scope, "snsapi_userinfo");
    assert_int_equal(t.expires_in, 7200);
    assert_int_equal(t.is_snapshotuser, 0);
    assert_int_equal(err.errcode, 0);

    /* base scope */
    issue_code(g.user, "snsapi_base", code, NULL);
    assert_int_equal(wx_exchange_code(g.c, code, &t, &err), WX_OK);
    assert_string_equal(t.scope, "snsapi_base");
    assert_string_equal(t.openid, openid);
    assert_string_equal(t.unionid, "");

    /* an unknown code: 40029 */
    assert_int_equal(wx_exchange_code(g.c, "0000000000000000000000000000000A", &t, &err),
                     WX_ERR_INVALID);
    assert_int_equal(err.errcode, 40029);
    assert_string_equal(t.access_token, "");
    /* arguments checked before any call */
    assert_int_equal(wx_exchange_code(g.c, "", &t, &err), WX_ERR_INVALID);
    assert_int_equal(wx_exchange_code(g.c, NULL, &t, &err), WX_ERR_INVALID);
}

static void test_exchange_used_code(void **state)
{
    (void)state;
    char code[WX_MAX_CODE + 1];
    struct wx_token t, t2;
    struct wx_error err = {0};
    issue_code(g.user, "snsapi_base", code, NULL);
    assert_int_equal(wx_exchange_code(g.c, code, &t, &err), WX_OK);
    assert_int_equal(wx_check_token(g.c, t.access_token, t.openid, &err), WX_OK);
    assert_int_equal(wx_exchange_code(g.c, code, &t2, &err), WX_ERR_INVALID);
    assert_int_equal(err.errcode, 40163);
    assert_non_null(strstr(err.errmsg, "code been used"));
    /* and the tokens minted from it are revoked */
    assert_int_equal(wx_check_token(g.c, t.access_token, t.openid, &err), WX_ERR_INVALID);
    assert_true(err.errcode != 0);
}

static void test_refresh(void **state)
{
    (void)state;
    char code[WX_MAX_CODE + 1];
    struct wx_token t, r;
    struct wx_error err = {0};
    issue_code(g.user, "snsapi_userinfo", code, NULL);
    assert_int_equal(wx_exchange_code(g.c, code, &t, &err), WX_OK);
    assert_int_equal(wx_refresh_token(g.c, t.refresh_token, &r, &err), WX_OK);
    assert_string_equal(r.openid, t.openid);
    assert_string_equal(r.refresh_token, t.refresh_token); /* the same one comes back */
    assert_string_equal(r.scope, "snsapi_userinfo");
    assert_true(r.access_token[0] != '\0');
    assert_int_equal(r.expires_in, 7200);
    assert_int_equal(wx_check_token(g.c, r.access_token, r.openid, &err), WX_OK);
    /* a bogus refresh_token: 40030 */
    assert_int_equal(wx_refresh_token(g.c, "not-a-refresh-token", &r, &err), WX_ERR_INVALID);
    assert_int_equal(err.errcode, 40030);
}

static void test_userinfo(void **state)
{
    (void)state;
    char code[WX_MAX_CODE + 1], openid2[WX_MAX_ID + 1];
    struct wx_token t, t2;
    struct wx_userinfo u;
    struct wx_error err = {0};
    issue_code(g.user, "snsapi_userinfo", code, NULL);
    assert_int_equal(wx_exchange_code(g.c, code, &t, &err), WX_OK);
    const char *langs[] = {"zh_CN", "zh_TW", "en", NULL};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(wx_get_userinfo(g.c, t.access_token, t.openid, langs[i], &u, &err), WX_OK);
        assert_string_equal(u.openid, t.openid);
        assert_string_equal(u.nickname, "小明");
        assert_true(u.sex >= 0 && u.sex <= 2);
    }
    assert_int_equal(wx_get_userinfo(g.c, t.access_token, t.openid, "fr", &u, &err),
                     WX_ERR_INVALID);
    /* user A's token with user B's openid: the provider answers 40003 */
    issue_code(g.user2, "snsapi_userinfo", code, openid2);
    assert_int_equal(wx_exchange_code(g.c, code, &t2, &err), WX_OK);
    assert_int_equal(wx_get_userinfo(g.c, t.access_token, openid2, NULL, &u, &err), WX_ERR_INVALID);
    assert_int_equal(err.errcode, 40003);
    assert_string_equal(u.openid, "");
    /* A userinfo answering another openid than asked (which this provider never sends) is
     * refused by the client's own check: see test_userinfo_other_openid in test_client.c and the
     * stub server of test_client_tls.c. */
    /* a base-only grant: 48001 */
    issue_code(g.user, "snsapi_base", code, NULL);
    assert_int_equal(wx_exchange_code(g.c, code, &t, &err), WX_OK);
    assert_int_equal(wx_get_userinfo(g.c, t.access_token, t.openid, "zh_CN", &u, &err),
                     WX_ERR_INVALID);
    assert_int_equal(err.errcode, 48001);
}

static void test_check_token(void **state)
{
    (void)state;
    char code[WX_MAX_CODE + 1];
    struct wx_token t;
    struct wx_error err = {0};
    issue_code(g.user, "snsapi_base", code, NULL);
    assert_int_equal(wx_exchange_code(g.c, code, &t, &err), WX_OK);
    assert_int_equal(wx_check_token(g.c, t.access_token, t.openid, &err), WX_OK);
    assert_int_equal(err.errcode, 0);
    assert_int_equal(wx_check_token(g.c, "bogus-access-token", t.openid, &err), WX_ERR_INVALID);
    assert_int_equal(err.errcode, 40001);
    assert_int_equal(wx_check_token(g.c, t.access_token, NULL, &err), WX_ERR_INVALID);
}

static void test_basic(void **state)
{
    (void)state;
    char token[WX_MAX_TOKEN + 1], code[WX_MAX_CODE + 1], openid[WX_MAX_ID + 1];
    int64_t expires = 0;
    struct wx_basic_userinfo bu;
    struct wx_error err = {0};
    assert_int_equal(wx_basic_token(g.c, token, &expires, &err), WX_OK);
    assert_true(strlen(token) >= 27);
    assert_int_equal(expires, 7200);
    issue_code(g.user, "snsapi_base", code, openid);
    assert_int_equal(wx_basic_userinfo(g.c, token, openid, &bu, &err), WX_OK);
    assert_string_equal(bu.openid, openid);
    assert_int_equal(bu.subscribe, 0); /* not a follower yet */
    /* the follower view */
    long st;
    char path[64];
    snprintf(path, sizeof path, "/admin/users/%s/follow", g.user);
    json_t *r = admin("POST", path, json_pack("{s:s, s:b}", "appid", g.appid, "follow", 1), &st);
    json_decref(r);
    assert_int_equal(st, 200);
    assert_int_equal(wx_basic_userinfo(g.c, token, openid, &bu, &err), WX_OK);
    assert_int_equal(bu.subscribe, 1);
    assert_string_equal(bu.openid, openid);
    assert_string_equal(bu.language, "zh_CN");
    assert_true(bu.subscribe_time > 0);
    /* a web token is not a basic token */
    assert_int_equal(wx_basic_userinfo(g.c, "bogus", openid, &bu, &err), WX_ERR_INVALID);
    assert_true(err.errcode == 40001 || err.errcode == 48001);
    /* a client without secret cannot ask */
    struct wx_client_config cfg = {0};
    struct wx_client *ns;
    cfg.appid = g.appid;
    cfg.api_base = g.base;
    assert_int_equal(wx_client_new(&cfg, &ns, &err), WX_OK);
    assert_int_equal(wx_basic_token(ns, token, &expires, &err), WX_ERR_INVALID);
    assert_int_equal(wx_exchange_code(ns, code, NULL, &err), WX_ERR_INVALID);
    wx_client_free(ns);
    /* a wrong secret: 40125 */
    cfg.secret = "0123456789abcdef0123456789abcdef";
    assert_int_equal(wx_client_new(&cfg, &ns, &err), WX_OK);
    assert_int_equal(wx_basic_token(ns, token, &expires, &err), WX_ERR_INVALID);
    assert_int_equal(err.errcode, 40125);
    wx_client_free(ns);
}

/* ---- the basic-token cache ---- */

struct cache_thread {
    struct wx_basic_cache *bc;
    char token[WX_MAX_TOKEN + 1];
    int rc;
};

static void *cache_worker(void *arg)
{
    struct cache_thread *t = arg;
    struct wx_error err = {0};
    t->rc = wx_basic_cache_get(t->bc, t->token, &err);
    return NULL;
}

static void test_basic_cache_threads(void **state)
{
    (void)state;
    struct wx_basic_cache *bc = NULL;
    struct cache_thread t[8];
    pthread_t th[8];
    assert_int_equal(wx_basic_cache_new(g.c, NULL, 0, &bc), WX_OK);
    for (int i = 0; i < 8; i++) {
        t[i].bc = bc;
        assert_int_equal(pthread_create(&th[i], NULL, cache_worker, &t[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].rc, WX_OK);
        assert_string_equal(t[i].token, t[0].token);
    }
    assert_int_equal(wx_basic_cache_fetches(bc), 1); /* one refresher for eight callers */
    /* invalidation forces exactly one new fetch, and a new token */
    char again[WX_MAX_TOKEN + 1];
    struct wx_error err = {0};
    wx_basic_cache_invalidate(bc);
    assert_int_equal(wx_basic_cache_get(bc, again, &err), WX_OK);
    assert_int_equal(wx_basic_cache_fetches(bc), 2);
    assert_string_not_equal(again, t[0].token);
    wx_basic_cache_free(bc);
}

/* Four processes share one lock file: one of them fetches, the others read its token. */
static void test_basic_cache_processes(void **state)
{
    (void)state;
    char lock[400], tokens[4][WX_MAX_TOKEN + 1];
    int fds[4][2];
    pid_t pids[4];
    snprintf(lock, sizeof lock, "%s/basic.lock", g.dir);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pipe(fds[i]), 0);
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            struct wx_basic_cache *bc = NULL;
            struct wx_error err = {0};
            char tok[WX_MAX_TOKEN + 1] = "";
            close(fds[i][0]);
            if (wx_basic_cache_new(g.c, lock, 0, &bc) == WX_OK &&
                wx_basic_cache_get(bc, tok, &err) == WX_OK)
                (void)!write(fds[i][1], tok, strlen(tok));
            _exit(0);
        }
        close(fds[i][1]);
    }
    for (int i = 0; i < 4; i++) {
        ssize_t n = read(fds[i][0], tokens[i], WX_MAX_TOKEN);
        close(fds[i][0]);
        waitpid(pids[i], NULL, 0);
        assert_true(n > 0);
        tokens[i][n] = '\0';
        assert_string_equal(tokens[i], tokens[0]);
    }
    struct stat st;
    assert_int_equal(stat(lock, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

/* ---- faults and retries ---- */

static void exchanged(const char *scope, struct wx_token *t)
{
    char code[WX_MAX_CODE + 1];
    struct wx_error err = {0};
    issue_code(g.user, scope, code, NULL);
    assert_int_equal(wx_exchange_code(g.c, code, t, &err), WX_OK);
}

static void test_refresh_retried_on_system_error(void **state)
{
    (void)state;
    struct wx_token t, r;
    struct wx_error err = {0};
    exchanged("snsapi_base", &t);
    add_fault("sns/oauth2/refresh_token", -1, 2, 0);
    assert_int_equal(fault_remaining("sns/oauth2/refresh_token"), 2);
    assert_int_equal(wx_refresh_token(g.c, t.refresh_token, &r, &err), WX_OK);
    assert_string_equal(r.openid, t.openid);
    assert_int_equal(fault_remaining("sns/oauth2/refresh_token"), 0); /* both were consumed */
    /* one more failure than the retries: the last answer is reported, 3 calls made */
    add_fault("sns/oauth2/refresh_token", -1, 5, 0);
    assert_int_equal(wx_refresh_token(g.c, t.refresh_token, &r, &err), WX_ERR_INVALID);
    assert_int_equal(err.errcode, -1);
    assert_int_equal(fault_remaining("sns/oauth2/refresh_token"), 2);
}

static void test_refresh_retried_on_45011(void **state)
{
    (void)state;
    struct wx_token t, r;
    struct wx_error err = {0};
    exchanged("snsapi_base", &t);
    add_fault("sns/oauth2/refresh_token", 45011, 2, 0);
    assert_int_equal(wx_refresh_token(g.c, t.refresh_token, &r, &err), WX_OK);
    assert_int_equal(fault_remaining("sns/oauth2/refresh_token"), 0);
    add_fault("sns/oauth2/refresh_token", 45011, 3, 0);
    assert_int_equal(wx_refresh_token(g.c, t.refresh_token, &r, &err), WX_ERR_INVALID);
    assert_int_equal(err.errcode, 45011);
    assert_int_equal(fault_remaining("sns/oauth2/refresh_token"), 0); /* exactly 3 calls */
    /* other idempotent calls retry too */
    add_fault("sns/auth", -1, 2, 0);
    assert_int_equal(wx_check_token(g.c, t.access_token, t.openid, &err), WX_OK);
    add_fault("sns/userinfo", 45011, 1, 0);
    exchanged("snsapi_userinfo", &t);
    struct wx_userinfo u;
    assert_int_equal(wx_get_userinfo(g.c, t.access_token, t.openid, NULL, &u, &err), WX_OK);
    /* but not on a definite answer such as 40001 */
    add_fault("sns/auth", 40001, 3, 0);
    assert_int_equal(wx_check_token(g.c, t.access_token, t.openid, &err), WX_ERR_INVALID);
    assert_int_equal(err.errcode, 40001);
    assert_int_equal(fault_remaining("sns/auth"), 2); /* one call */
}

static void test_exchange_not_retried(void **state)
{
    (void)state;
    char code[WX_MAX_CODE + 1];
    struct wx_token t;
    struct wx_error err = {0};
    issue_code(g.user, "snsapi_base", code, NULL);
    add_fault("sns/oauth2/access_token", -1, 2, 0);
    assert_int_equal(wx_exchange_code(g.c, code, &t, &err), WX_ERR_INVALID);
    assert_int_equal(err.errcode, -1);
    assert_non_null(strstr(err.errmsg, "system error"));
    assert_int_equal(fault_remaining("sns/oauth2/access_token"), 1); /* exactly one call */
    clear_faults();
    add_fault("sns/oauth2/access_token", 45011, 3, 0);
    assert_int_equal(wx_exchange_code(g.c, code, &t, &err), WX_ERR_INVALID);
    assert_int_equal(err.errcode, 45011);
    assert_int_equal(fault_remaining("sns/oauth2/access_token"), 2);
    clear_faults();
    /* the injected answers came before the code was looked at: it still works, once */
    assert_int_equal(wx_exchange_code(g.c, code, &t, &err), WX_OK);
}

static void test_timeout(void **state)
{
    (void)state;
    struct wx_token t;
    struct wx_error err = {0};
    struct timespec t0, t1;
    exchanged("snsapi_base", &t);
    add_fault("sns/auth", 0, 1, 1500);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(wx_check_token(g.fast, t.access_token, t.openid, &err), WX_ERR_IO);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(err.errcode, -1);
    if (!strstr(err.errmsg, "transport") || !strcasestr(err.errmsg, "time"))
        fail_msg("not a transport timeout: %s", err.errmsg);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms < 1400); /* gave up at timeout_ms, did not wait for the answer */

    /* The exchange times out once and is not asked again (the code may have been used). */
    char code[WX_MAX_CODE + 1];
    issue_code(g.user, "snsapi_base", code, NULL);
    add_fault("sns/oauth2/access_token", 0, 2, 1500);
    err.errcode = 0;
    assert_int_equal(wx_exchange_code(g.c, code, &t, &err), WX_OK); /* 5 s timeout: waits */
    clear_faults();
    issue_code(g.user, "snsapi_base", code, NULL);
    struct wx_client_config cfg = {0};
    struct wx_client *c;
    cfg.appid = g.appid;
    cfg.secret = g.secret;
    cfg.api_base = g.base;
    cfg.timeout_ms = 300;
    cfg.max_retries = 2;
    cfg.retry_backoff_ms = 10;
    assert_int_equal(wx_client_new(&cfg, &c, &err), WX_OK);
    add_fault("sns/oauth2/access_token", 0, 2, 1000);
    assert_int_equal(wx_exchange_code(c, code, &t, &err), WX_ERR_IO);
    assert_int_equal(fault_remaining("sns/oauth2/access_token"), 1); /* one call */
    /* an idempotent call with the same client retries the timeout: all 3 attempts made */
    add_fault("sns/auth", 0, 3, 1000);
    exchanged("snsapi_base", &t);
    assert_int_equal(wx_check_token(c, t.access_token, t.openid, &err), WX_ERR_IO);
    assert_int_equal(fault_remaining("sns/auth"), 0);
    wx_client_free(c);
    usleep(1200000); /* let the provider's delayed handlers finish */
}

static void test_connection_refused(void **state)
{
    (void)state;
    struct wx_client_config cfg = {0};
    struct wx_client *c;
    struct wx_error err = {0};
    struct wx_token t;
    cfg.appid = g.appid;
    cfg.secret = g.secret;
    cfg.api_base = "http://127.0.0.1:1"; /* nothing listens on port 1 */
    cfg.max_retries = -1;
    assert_int_equal(wx_client_new(&cfg, &c, &err), WX_OK);
    assert_int_equal(wx_exchange_code(c, "0123456789", &t, &err), WX_ERR_IO);
    assert_int_equal(err.errcode, -1);
    assert_non_null(strstr(err.errmsg, "transport"));
    wx_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_exchange, each_setup),
        cmocka_unit_test_setup(test_exchange_used_code, each_setup),
        cmocka_unit_test_setup(test_refresh, each_setup),
        cmocka_unit_test_setup(test_userinfo, each_setup),
        cmocka_unit_test_setup(test_check_token, each_setup),
        cmocka_unit_test_setup(test_basic, each_setup),
        cmocka_unit_test_setup(test_basic_cache_threads, each_setup),
        cmocka_unit_test_setup(test_basic_cache_processes, each_setup),
        cmocka_unit_test_setup(test_refresh_retried_on_system_error, each_setup),
        cmocka_unit_test_setup(test_refresh_retried_on_45011, each_setup),
        cmocka_unit_test_setup(test_exchange_not_retried, each_setup),
        cmocka_unit_test_setup(test_timeout, each_setup),
        cmocka_unit_test_setup(test_connection_refused, each_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
