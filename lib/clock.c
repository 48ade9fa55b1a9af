/*
 * clock.c — wall clock with a test offset, and a monotonic clock for latency measurement.
 */
#include <time.h>

#include "clock.h"

int64_t wx_clock_now(struct wx_clock *c)
{
    return (int64_t)time(NULL) + (c ? atomic_load(&c->offset) : 0);
}

void wx_clock_advance(struct wx_clock *c, int64_t seconds)
{
    atomic_fetch_add(&c->offset, seconds);
}

int64_t wx_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
