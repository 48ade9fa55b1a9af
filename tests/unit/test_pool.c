/*
 * test_pool.c — unit tests for lib/pool.c: every submitted task runs once, stop runs what is
 * queued, the queue's limit refuses more, bad sizes are refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <unistd.h>

#include "pool.h"

static atomic_int ran;

static void count(void *arg)
{
    atomic_fetch_add(&ran, *(int *)arg);
}

static atomic_int release, holding;

/* Holds its worker until the test releases it. */
static void blocker(void *arg)
{
    (void)arg;
    atomic_store(&holding, 1);
    while (!atomic_load(&release))
        usleep(1000);
}

static void test_every_task_runs_once(void **state)
{
    (void)state;
    struct wx_pool *p;
    static int one = 1;
    atomic_store(&ran, 0);
    assert_int_equal(wx_pool_start(&p, 4, "test-pool"), WX_OK);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(wx_pool_submit(p, count, &one), WX_OK);
    wx_pool_stop(p); /* runs what is still queued */
    assert_int_equal(atomic_load(&ran), 1000);
}

static void test_queue_limit(void **state)
{
    (void)state;
    struct wx_pool *p;
    static int one = 1;
    atomic_store(&ran, 0);
    atomic_store(&release, 0);
    assert_int_equal(wx_pool_start(&p, 1, "test-pool"), WX_OK);
    assert_int_equal(wx_pool_submit(p, blocker, NULL), WX_OK);
    while (!atomic_load(&holding)) /* the only worker holds the blocker: the rest queues */
        usleep(1000);
    int accepted = 0, refused = 0;
    for (int i = 0; i < WX_POOL_MAX_QUEUED + 50; i++) {
        int rc = wx_pool_submit(p, count, &one);
        accepted += rc == WX_OK;
        refused += rc == WX_ERR_LIMIT;
    }
    assert_int_equal(accepted, WX_POOL_MAX_QUEUED);
    assert_int_equal(refused, 50);
    atomic_store(&release, 1);
    wx_pool_stop(p);
    assert_int_equal(atomic_load(&ran), WX_POOL_MAX_QUEUED);
}

static void test_bad_sizes(void **state)
{
    (void)state;
    struct wx_pool *p;
    assert_int_equal(wx_pool_start(&p, 0, "x"), WX_ERR_INVALID);
    assert_int_equal(wx_pool_start(&p, 65, "x"), WX_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_task_runs_once),
        cmocka_unit_test(test_queue_limit),
        cmocka_unit_test(test_bad_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
