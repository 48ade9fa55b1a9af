/*
 * test_cluster.c — unit tests for the Redis Cluster routing's pure parts (lib/redis_cluster.c):
 * key slots (the specification's CRC16 and hash tag rules), the slot of a command and of a
 * script (refused when its KEYS span slots), and the redis-cluster:// URL.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "redis_conn.h"

static int slot(const char *k)
{
    return wx_cluster_key_slot(k, strlen(k));
}

static void key_slots(void **state)
{
    (void)state;
    /* The specification's check value: CRC16("123456789") = 0x31C3 */
    assert_int_equal(slot("123456789"), 0x31C3 & 16383);
    assert_int_equal(slot("foo"), 12182); /* as redis-cli CLUSTER KEYSLOT foo */
    /* hash tags: the first {...} with something inside */
    assert_int_equal(slot("{user1000}.following"), slot("{user1000}.followers"));
    assert_int_equal(slot("{user1000}.following"), slot("user1000"));
    assert_int_equal(slot("foo{}{bar}"), wx_cluster_key_slot("foo{}{bar}", 10)); /* whole key */
    assert_int_not_equal(slot("foo{}{bar}"), slot("bar"));
    assert_int_equal(slot("foo{{bar}}zap"), slot("{bar"));
    assert_int_equal(slot("foo{bar}{zap}"), slot("bar"));
    assert_int_equal(slot("wx:{1a2b}:code:42"), slot("wx:{1a2b}:grant:42"));
}

static void command_slots(void **state)
{
    (void)state;
    struct wx_rc_args a;
    wx_rc_arg_cmd(&a, "GET");
    wx_rc_arg_str(&a, "wx:{r}:app:1");
    assert_int_equal(wx_cluster_command_slot(&a), slot("r"));
    wx_rc_arg_cmd(&a, "PING");
    assert_int_equal(wx_cluster_command_slot(&a), -1);
    wx_rc_arg_cmd(&a, "SCRIPT");
    wx_rc_arg_strs(&a, "LOAD", "return 1", NULL);
    assert_int_equal(wx_cluster_command_slot(&a), -1);
    /* a script: every KEYS in one slot, else refused before it is sent */
    wx_rc_arg_cmd(&a, "EVALSHA");
    wx_rc_arg_strs(&a, "0123456789012345678901234567890123456789", "2", "wx:{7}:code:1",
                   "wx:{7}:grant:1", "argv", NULL);
    assert_int_equal(wx_cluster_command_slot(&a), slot("7"));
    wx_rc_arg_cmd(&a, "EVALSHA");
    wx_rc_arg_strs(&a, "0123456789012345678901234567890123456789", "2", "wx:{7}:code:1",
                   "wx:{8}:grant:1", NULL);
    assert_int_equal(wx_cluster_command_slot(&a), -2);
    wx_rc_arg_cmd(&a, "EVAL");
    wx_rc_arg_strs(&a, "return 1", "0", NULL);
    assert_int_equal(wx_cluster_command_slot(&a), -1);
    wx_rc_arg_cmd(&a, "EVAL");
    wx_rc_arg_strs(&a, "return 1", "3", "k", NULL); /* more KEYS than arguments */
    assert_int_equal(wx_cluster_command_slot(&a), -2);
}

static void urls(void **state)
{
    (void)state;
    struct wx_rc c;
    char err[256];
    memset(&c, 0, sizeof c);
    assert_int_equal(
        wx_rc_parse_url(&c, "redis-cluster://:pw@10.0.0.5:7000,h2,[::1]:7002?prefix=p:&wait=1", err,
                        sizeof err),
        WX_OK);
    assert_int_equal(c.nseeds, 3);
    assert_string_equal(c.seed[0].host, "10.0.0.5");
    assert_int_equal(c.seed[0].port, 7000);
    assert_string_equal(c.seed[1].host, "h2");
    assert_int_equal(c.seed[1].port, 6379);
    assert_string_equal(c.seed[2].host, "::1");
    assert_int_equal(c.seed[2].port, 7002);
    assert_string_equal(c.pass, "pw");
    assert_string_equal(c.prefix, "p:");
    assert_int_equal(c.wait, 1);
    assert_int_equal(c.db, 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(wx_rc_parse_url(&c, "redis-cluster://h/", err, sizeof err), WX_OK);
    static const char *const bad[] = {"redis-cluster://",    "redis-cluster://a,,b",
                                      "redis-cluster://h/0", "redis-cluster://h?db=1",
                                      "redis-cluster://h:0", "redis-cluster://1,2,3,4,5,6,7,8,9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&c, 0, sizeof c);
        assert_int_equal(wx_rc_parse_url(&c, bad[i], err, sizeof err), WX_ERR_INVALID);
        assert_non_null(strstr(err, "redis store:"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_slots),
        cmocka_unit_test(command_slots),
        cmocka_unit_test(urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
