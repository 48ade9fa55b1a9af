/*
 * clock.h — the time source. A test clock adds an offset that an admin call can advance, so a
 * five-minute expiry is tested in milliseconds. Thread-safe.
 */
#ifndef WX_CLOCK_H
#define WX_CLOCK_H

#include <stdatomic.h>
#include <stdint.h>

struct wx_clock {
    _Atomic int64_t offset; /* seconds added to the wall clock */
};

int64_t wx_clock_now(struct wx_clock *c);
void wx_clock_advance(struct wx_clock *c, int64_t seconds);
/* Monotonic nanoseconds, for latencies. */
int64_t wx_mono_ns(void);

#endif
