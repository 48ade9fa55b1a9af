/*
 * fiber.c — cooperative fibers on ucontext (see fiber.h). Each fiber is one mapping: a guard
 * page, its stack, and its struct at the top. A fiber's context loops: it runs its function,
 * switches back to its starter, and is reused for the next function without makecontext again.
 * Under AddressSanitizer every switch is announced (__sanitizer_*_switch_fiber), so that ASan
 * knows which stack is live.
 *
 * Switches: swapcontext saves and restores the signal mask, two rt_sigprocmask system calls per
 * switch (four and more per parked request; provider CPU per exchange on Redis went from 30-32
 * to 25 us without them). So a fiber's context is entered with swapcontext once, at its first
 * start, and every switch after that is _setjmp/_longjmp between two live stacks (the signal
 * mask is the thread's and the same on both sides), as QEMU's ucontext coroutines do. glibc's
 * fortified longjmp refuses a jump to another stack ("longjmp causes uninitialized stack
 * frame"), hence no _FORTIFY_SOURCE here.
 */
#undef _FORTIFY_SOURCE
#include <setjmp.h>
#include <stdint.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "fiber.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(__SANITIZE_ADDRESS__)
#define __SANITIZE_ADDRESS__ 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define SWITCH_START(save, bottom, size)  __sanitizer_start_switch_fiber(save, bottom, size)
#define SWITCH_FINISH(save, bottom, size) __sanitizer_finish_switch_fiber(save, bottom, size)
#else
#define SWITCH_START(save, bottom, size)  ((void)(save), (void)(bottom), (void)(size))
#define SWITCH_FINISH(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#endif

struct wx_fiber {
    ucontext_t ctx;  /* the fiber's first context, entered once (trampoline) */
    ucontext_t back; /* the starter's at that first entry (never resumed) */
    jmp_buf here;    /* where the fiber goes on */
    jmp_buf ret;     /* where its starter goes on */
    int started;     /* the trampoline runs: enter by _longjmp */
    void (*fn)(void *arg);
    void *arg;
    int done;
    struct wx_fiber_hooks hooks;
    struct wx_fiber *next; /* the idle list, or the held wakes */
    void *map;
    size_t maplen;
    /* ASan: the fiber's fake stack, and the thread stack it switches back to */
    void *fake;
    const void *back_bottom;
    size_t back_size;
};

static _Thread_local struct wx_fiber *cur;
static _Thread_local struct wx_fiber *idle;
static _Thread_local int nidle;
static _Thread_local int holding;
static _Thread_local struct wx_fiber *held, *held_tail; /* in the order woken */

static void *stack_bottom(struct wx_fiber *f, size_t *size)
{
    long page = sysconf(_SC_PAGESIZE);
    char *lo = (char *)f->map + page;
    *size = (size_t)((char *)f - lo);
    return lo;
}

/* From the fiber back to its starter (the fiber will be continued, or reused). */
static void switch_out(struct wx_fiber *f)
{
    SWITCH_START(&f->fake, f->back_bottom, f->back_size);
    if (!_setjmp(f->here))
        _longjmp(f->ret, 1);
    SWITCH_FINISH(f->fake, &f->back_bottom, &f->back_size);
}

static void trampoline(void)
{
    struct wx_fiber *f = cur;
    SWITCH_FINISH(NULL, &f->back_bottom, &f->back_size);
    for (;;) {
        f->fn(f->arg);
        f->done = 1;
        switch_out(f);
    }
}

/* The fiber's first context: the trampoline on its own stack. */
static int init_context(struct wx_fiber *const f)
{
    if (getcontext(&f->ctx) != 0)
        return -1;
    size_t size;
    f->ctx.uc_stack.ss_sp = stack_bottom(f, &size);
    f->ctx.uc_stack.ss_size = size;
    f->ctx.uc_link = NULL; /* never returns: trampoline loops */
    makecontext(&f->ctx, trampoline, 0);
    return 0;
}

static struct wx_fiber *make(void)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t len = WX_FIBER_STACK + (size_t)page;
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
    if (map == MAP_FAILED)
        return NULL;
    if (mprotect(map, (size_t)page, PROT_NONE) != 0) { /* the guard page */
        munmap(map, len);
        return NULL;
    }
    uintptr_t top = ((uintptr_t)map + len - sizeof(struct wx_fiber)) & ~(uintptr_t)63;
    struct wx_fiber *f = (struct wx_fiber *)top;
    *f = (struct wx_fiber){.map = map, .maplen = len};
    if (init_context(f) != 0) {
        munmap(map, len);
        return NULL;
    }
    return f;
}

static void unmap(struct wx_fiber *f)
{
    munmap(f->map, f->maplen);
}

/* Into f until it returns or parks. */
static int enter(struct wx_fiber *f)
{
    void *fake = NULL;
    size_t size;
    const void *bottom = stack_bottom(f, &size);
    cur = f;
    SWITCH_START(&fake, bottom, size);
    if (!_setjmp(f->ret)) {
        if (f->started) {
            _longjmp(f->here, 1);
        } else {
            f->started = 1;
            swapcontext(&f->back, &f->ctx);
        }
    }
    SWITCH_FINISH(fake, NULL, NULL);
    (void)bottom;
    cur = NULL;
    if (!f->done)
        return 0;
    if (nidle < WX_FIBER_IDLE) {
        f->next = idle;
        idle = f;
        nidle++;
    } else {
        unmap(f);
    }
    return 1;
}

int wx_fiber_start(struct wx_fiber **out, void (*fn)(void *arg), void *arg,
                   const struct wx_fiber_hooks *hooks)
{
    if (cur)
        return -1;
    struct wx_fiber *f = idle;
    if (f) {
        idle = f->next;
        nidle--;
    } else if (!(f = make())) {
        return -1;
    }
    f->fn = fn;
    f->arg = arg;
    f->done = 0;
    f->hooks = *hooks;
    f->next = NULL;
    *out = f;
    return enter(f);
}

int wx_fiber_continue(struct wx_fiber *f)
{
    return enter(f);
}

struct wx_fiber *wx_fiber_self(void)
{
    return cur;
}

void wx_fiber_wait(void (*submit)(void *arg), void *arg)
{
    struct wx_fiber *f = cur;
    f->hooks.suspend(f->hooks.ud);
    submit(arg);
    switch_out(f);
}

void wx_fiber_wake(struct wx_fiber *f)
{
    if (holding) {
        f->next = NULL;
        if (held_tail)
            held_tail->next = f;
        else
            held = f;
        held_tail = f;
        return;
    }
    f->hooks.wake(f->hooks.ud);
}

void wx_fiber_hold_wakes(void)
{
    holding = 1;
}

void wx_fiber_release_wakes(void)
{
    holding = 0;
    struct wx_fiber *f = held;
    held = held_tail = NULL;
    while (f) {
        struct wx_fiber *next = f->next; /* f may run (and be reused) once woken */
        f->hooks.wake(f->hooks.ud);
        f = next;
    }
}

void wx_fiber_pool_drain(void)
{
    while (idle) {
        struct wx_fiber *f = idle;
        idle = f->next;
        unmap(f);
    }
    nidle = 0;
}

/* ---- the loop's sources ---- */

static _Thread_local const struct wx_loop_ops *loop_ops;
static _Thread_local struct wx_loop_src *sources;

void wx_loop_begin(const struct wx_loop_ops *ops)
{
    loop_ops = ops;
    sources = NULL;
}

int wx_loop_running(void)
{
    return loop_ops ? 0 : -1;
}

int wx_loop_pass(int64_t *due)
{
    int woke = 0;
    for (struct wx_loop_src *s = sources; s; s = s->next)
        woke += s->pass(s, due);
    return woke;
}

void wx_loop_end(void)
{
    while (sources) {
        struct wx_loop_src *s = sources;
        sources = s->next;
        s->close(s);
    }
    loop_ops = NULL;
}

int wx_loop_add(struct wx_loop_src *src)
{
    if (!loop_ops)
        return -1;
    src->next = sources;
    sources = src;
    return 0;
}

int wx_loop_watch(int fd, int out)
{
    return loop_ops ? loop_ops->watch(loop_ops->ud, fd, out) : -1;
}

void wx_loop_unwatch(int fd)
{
    if (loop_ops)
        loop_ops->unwatch(loop_ops->ud, fd);
}
