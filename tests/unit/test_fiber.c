/*
 * test_fiber.c — unit tests for lib/fiber.c: a fiber runs to its end or parks and goes on where
 * it parked, with its locals and its callee-saved state intact across switches; many parked
 * fibers are continued in any order; a finished fiber is reused without being made again; the
 * suspend and wake hooks run as documented, held wakes run at the release in order; a fiber
 * uses a deep stack; the thread's signal mask is the same after the switches as before.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "fiber.h"

struct job {
    int id;
    int parks;   /* how many times to park */
    int steps;   /* how far it got */
    long sum;    /* computed across the parks from locals */
    int woken;   /* wake hook calls */
    int suspend; /* suspend hook calls */
    struct wx_fiber *f;
};

static int wake_order[64], nwake;

static void on_suspend(void *ud)
{
    ((struct job *)ud)->suspend++;
}

static void on_wake(void *ud)
{
    struct job *j = ud;
    j->woken++;
    if (nwake < 64)
        wake_order[nwake++] = j->id;
}

static void no_submit(void *arg)
{
    (void)arg;
}

/* Keeps values in locals (and registers) across each park; they must come back unchanged. */
static void worker(void *arg)
{
    struct job *j = arg;
    long a = j->id * 1000L, b = 7;
    double d = j->id + 0.5;
    char buf[256];
    snprintf(buf, sizeof buf, "job-%d", j->id);
    for (int i = 0; i < j->parks; i++) {
        assert_ptr_equal(wx_fiber_self(), j->f);
        wx_fiber_wait(no_submit, NULL);
        a += i;
        b *= 3;
        j->steps++;
    }
    char want[256];
    snprintf(want, sizeof want, "job-%d", j->id);
    assert_string_equal(buf, want);
    assert_true(d == j->id + 0.5);
    j->sum = a + b;
}

static long expect_sum(int id, int parks)
{
    long a = id * 1000L, b = 7;
    for (int i = 0; i < parks; i++) {
        a += i;
        b *= 3;
    }
    return a + b;
}

static struct wx_fiber_hooks hooks_for(struct job *j)
{
    return (struct wx_fiber_hooks){.suspend = on_suspend, .wake = on_wake, .ud = j};
}

/* Starts fn(arg) on a fiber whose hooks only count, on a job of no test's. */
static int start_plain(struct wx_fiber **f, void (*fn)(void *arg), void *arg)
{
    static struct job nobody;
    struct wx_fiber_hooks h = hooks_for(&nobody);
    return wx_fiber_start(f, fn, arg, &h);
}

static void test_runs_to_end_without_parking(void **state)
{
    (void)state;
    struct job j = {.id = 1, .parks = 0};
    struct wx_fiber_hooks h = hooks_for(&j);
    assert_int_equal(wx_fiber_start(&j.f, worker, &j, &h), 1);
    assert_int_equal(j.sum, expect_sum(1, 0));
    assert_int_equal(j.suspend, 0);
    assert_null(wx_fiber_self());
}

static void test_parks_and_goes_on(void **state)
{
    (void)state;
    struct job j = {.id = 2, .parks = 5};
    struct wx_fiber_hooks h = hooks_for(&j);
    /* wx_fiber_start fills *out before the fiber runs, so the worker can compare */
    int rc = wx_fiber_start(&j.f, worker, &j, &h);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(rc, 0);
        assert_int_equal(j.steps, i);
        assert_int_equal(j.suspend, i + 1);
        assert_null(wx_fiber_self());
        rc = wx_fiber_continue(j.f);
    }
    assert_int_equal(rc, 1);
    assert_int_equal(j.steps, 5);
    assert_int_equal(j.sum, expect_sum(2, 5));
}

/* 40 fibers parked at once, continued in a scrambled order, each several times. */
static void test_many_parked_continued_in_any_order(void **state)
{
    (void)state;
    enum { N = 40, PARKS = 4 };
    struct job j[N];
    struct wx_fiber_hooks h[N];
    int done[N] = {0};
    for (int i = 0; i < N; i++) {
        j[i] = (struct job){.id = 100 + i, .parks = PARKS};
        h[i] = hooks_for(&j[i]);
        assert_int_equal(wx_fiber_start(&j[i].f, worker, &j[i], &h[i]), 0);
    }
    int left = N;
    for (unsigned k = 0; left; k++) {
        int i = (int)((k * 17u + 5u) % N);
        if (done[i])
            continue;
        if (wx_fiber_continue(j[i].f) == 1) {
            done[i] = 1;
            left--;
        }
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(j[i].steps, PARKS);
        assert_int_equal(j[i].sum, expect_sum(100 + i, PARKS));
    }
}

static void record_self(void *arg)
{
    *(struct wx_fiber **)arg = wx_fiber_self();
}

/* A finished fiber goes back to the idle list and the next start takes it again. */
static void test_finished_fiber_is_reused(void **state)
{
    (void)state;
    struct wx_fiber *f1, *f2, *self1 = NULL, *self2 = NULL;
    assert_int_equal(start_plain(&f1, record_self, &self1), 1);
    assert_int_equal(start_plain(&f2, record_self, &self2), 1);
    assert_non_null(self1);
    assert_ptr_equal(self1, self2);
    assert_ptr_equal(f1, f2);
}

static void nested_start(void *arg)
{
    struct wx_fiber *inner;
    *(int *)arg = start_plain(&inner, record_self, &inner);
}

static void test_no_fiber_inside_a_fiber(void **state)
{
    (void)state;
    struct wx_fiber *f;
    int inner_rc = 0;
    assert_int_equal(start_plain(&f, nested_start, &inner_rc), 1);
    assert_int_equal(inner_rc, -1);
}

static void test_held_wakes_run_at_release_in_order(void **state)
{
    (void)state;
    struct job j[3] = {{.id = 7, .parks = 1}, {.id = 8, .parks = 1}, {.id = 9, .parks = 1}};
    struct wx_fiber_hooks h[3];
    for (int i = 0; i < 3; i++) {
        h[i] = hooks_for(&j[i]);
        assert_int_equal(wx_fiber_start(&j[i].f, worker, &j[i], &h[i]), 0);
    }
    nwake = 0;
    wx_fiber_hold_wakes();
    wx_fiber_wake(j[2].f);
    wx_fiber_wake(j[0].f);
    wx_fiber_wake(j[1].f);
    assert_int_equal(nwake, 0);
    wx_fiber_release_wakes();
    assert_int_equal(nwake, 3);
    assert_int_equal(wake_order[0], 9);
    assert_int_equal(wake_order[1], 7);
    assert_int_equal(wake_order[2], 8);
    wx_fiber_wake(j[0].f); /* not holding: at once */
    assert_int_equal(nwake, 4);
    for (int i = 0; i < 3; i++)
        assert_int_equal(wx_fiber_continue(j[i].f), 1);
}

/* Most of the stack, in frames that each check their own bytes after a park below them. */
static int deep(int depth, int park_at)
{
    volatile char frame[2048];
    memset((char *)frame, depth & 0xff, sizeof frame);
    int below = 0;
    if (depth == park_at)
        wx_fiber_wait(no_submit, NULL);
    if (depth > 0)
        below = deep(depth - 1, park_at);
    for (size_t i = 0; i < sizeof frame; i++)
        if (frame[i] != (char)(depth & 0xff))
            return -1;
    return below < 0 ? -1 : below + 1;
}

static void deep_worker(void *arg)
{
    /* ~3/4 of WX_FIBER_STACK in 2 KiB frames (plus their overhead) */
    int depth = (int)(WX_FIBER_STACK / 2 / 2048);
    *(int *)arg = deep(depth, depth / 2);
}

static void test_deep_stack_survives_a_park(void **state)
{
    (void)state;
    struct wx_fiber *f;
    int res = 0;
    assert_int_equal(start_plain(&f, deep_worker, &res), 0);
    assert_int_equal(wx_fiber_continue(f), 1);
    assert_int_equal(res, (int)(WX_FIBER_STACK / 2 / 2048) + 1);
}

static void test_signal_mask_unchanged(void **state)
{
    (void)state;
    sigset_t set, before, after;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &set, &before), 0);
    struct job j = {.id = 3, .parks = 3};
    struct wx_fiber_hooks h = hooks_for(&j);
    int rc = wx_fiber_start(&j.f, worker, &j, &h);
    while (rc == 0)
        rc = wx_fiber_continue(j.f);
    assert_int_equal(pthread_sigmask(SIG_SETMASK, NULL, &after), 0);
    assert_true(sigismember(&after, SIGUSR2));
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &before, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_to_end_without_parking),
        cmocka_unit_test(test_parks_and_goes_on),
        cmocka_unit_test(test_many_parked_continued_in_any_order),
        cmocka_unit_test(test_finished_fiber_is_reused),
        cmocka_unit_test(test_no_fiber_inside_a_fiber),
        cmocka_unit_test(test_held_wakes_run_at_release_in_order),
        cmocka_unit_test(test_deep_stack_survives_a_park),
        cmocka_unit_test(test_signal_mask_unchanged),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    wx_fiber_pool_drain();
    return rc;
}
