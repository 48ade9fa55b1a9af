/*
 * test_store.c — the store contract (lib/store.h), run against a backend chosen by URL:
 * WXAUTH_TEST_STORE (default: a fresh SQLite file). Every backend must pass the same cases:
 * apps and the in-transaction memo, one-time code redemption, nonces, expiring values, purge.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wxauth/wxauth.h>

#include "store.h"

static char dir[64], url[128];

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
    if (env && *env) {
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
    if (dir[0]) {
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
    /* Rolled back: the old name again, not a remembered copy. */
    assert_int_equal(s->ops->app_by_appid(s, a.appid, &got), WX_OK);
    assert_string_equal(got.name, "测试公众号");
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
    assert_int_equal(s->ops->code_insert(s, &c), WX_OK);
    unsigned char wrong[WX_CRED_MAC];
    memset(wrong, 0x34, sizeof wrong);
    struct wx_grant g = {0};
    g.created = 900;
    g.expires = 900 + 30 * 86400;
    memset(g.mac, 0x44, sizeof g.mac);
    assert_int_equal(s->ops->batch_begin(s), WX_OK);
    assert_int_equal(s->ops->code_redeem(s, c.id, wrong, a.id, 900, &g), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->code_redeem(s, c.id, c.mac, b.id, 900, &g), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->code_redeem(s, c.id, c.mac, a.id, 900, &g), WX_OK);
    assert_int_equal(g.user_id, u.id);
    assert_int_equal(g.scope, WX_SCOPE_USERINFO);
    assert_int_equal(s->ops->code_redeem(s, c.id, c.mac, a.id, 901, &g), WX_ERR_CONFLICT);
    assert_int_equal(s->ops->batch_commit(s), WX_OK);
    /* The replay revoked the grant the code had produced. */
    struct wx_grant first;
    assert_int_equal(s->ops->grant_get(s, g.id, &first), WX_OK);
    assert_true(first.revoked);
    struct wx_code late = c;
    late.expires = 1000;
    assert_int_equal(s->ops->code_insert(s, &late), WX_OK);
    assert_int_equal(s->ops->batch_begin(s), WX_OK);
    assert_int_equal(s->ops->code_redeem(s, late.id, late.mac, a.id, 1000, &g), WX_ERR_EXPIRED);
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
    assert_int_equal(s->ops->kv_get(s, k2, 100, out, sizeof out, &n), WX_ERR_NOTFOUND);
    assert_int_equal(s->ops->kv_put(s, k, "keep", 4, 10000), WX_OK);
    assert_int_equal(s->ops->purge(s, 5000, 1000, &deleted), WX_OK);
    assert_int_equal(s->ops->kv_get(s, k, 4000, out, sizeof out, &n), WX_OK);
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
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
