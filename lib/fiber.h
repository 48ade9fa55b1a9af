/*
 * fiber.h — handlers that wait without blocking their thread. A request's handler runs on a
 * fiber (a stack of its own, made with ucontext, switched to by _setjmp/_longjmp), and a call that
 * would wait on the network (a Redis round trip through redis_mux.h) parks the fiber instead: the
 * event loop goes on with other requests and continues the fiber once the answer is there. Outside
 * a fiber the same calls block as before (the CLI, the writer lanes, the tests).
 *
 * One thread starts and continues its fibers (a fiber never moves between threads); any thread
 * may wake one. Fibers are cooperative: between two parks a fiber runs alone on its thread, so
 * what only that thread touches needs no lock, and no lock may be held across a park (the
 * fiber that parked holding it would block its own thread's next taker).
 *
 * Limits: WX_FIBER_STACK bytes of stack each (a guard page below: an overflow faults instead of
 * writing into another fiber), WX_FIBER_IDLE idle fibers kept per thread for reuse.
 */
#ifndef WX_FIBER_H
#define WX_FIBER_H

#if defined(__SANITIZE_ADDRESS__)
#define WX_FIBER_STACK (1024u * 1024) /* ASan's redzones make every frame larger */
#else
#define WX_FIBER_STACK (256u * 1024)
#endif
#define WX_FIBER_IDLE 256

#include <stdint.h>

struct wx_fiber;

/*
 * What the starter of a fiber does when it parks and when it is woken (the HTTP server:
 * suspend the request's connection; resume it, so that the loop continues the fiber).
 */
struct wx_fiber_hooks {
    void (*suspend)(void *ud); /* on the fiber's thread, before the work that wakes it starts */
    void (*wake)(void *ud);    /* on any thread: arrange wx_fiber_continue on the fiber's */
    void *ud;
};

/*
 * Runs fn(arg) on a fiber of this thread until it returns (1) or parks (0: *out is the fiber to
 * continue when woken). -1 when no fiber can be had (out of memory, or already inside one):
 * the caller then runs fn itself, blocking.
 */
int wx_fiber_start(struct wx_fiber **out, void (*fn)(void *arg), void *arg,
                   const struct wx_fiber_hooks *hooks);
/* Continues a parked fiber after its wake: 1 when fn returned, 0 when it parked again. */
int wx_fiber_continue(struct wx_fiber *f);
/* The fiber running on this thread, or NULL. */
struct wx_fiber *wx_fiber_self(void);
/*
 * In a fiber: runs its suspend hook, then submit(arg), which hands work to another thread that
 * calls wx_fiber_wake(self) when it is done; then parks until continued.
 */
void wx_fiber_wait(void (*submit)(void *arg), void *arg);
/* Wakes a parked (or parking) fiber once: its wake hook runs now, or at the release below. */
void wx_fiber_wake(struct wx_fiber *f);
/*
 * Between these calls, this thread's wx_fiber_wake()s are collected and their hooks run at the
 * release, together (a batch of Redis replies resumes its requests in one go).
 */
void wx_fiber_hold_wakes(void);
void wx_fiber_release_wakes(void);
/* Unmaps this thread's idle fibers (when its loop ends). */
void wx_fiber_pool_drain(void);

/*
 * The loop that runs this thread's fibers can wait on other file descriptors for them, so that
 * a fiber's network round trip costs the loop no thread hand-off (redis_mux.c keeps a Redis
 * connection per loop thread this way). A part of lib/ adds a source and asks the loop to watch
 * its descriptor (input always, output while it has some to write). After every pass over its
 * connections the loop runs each source's pass(): read what arrived, wake the fibers answered,
 * write what the fibers queued meanwhile. pass() returns how many fibers it woke (the loop then
 * goes round again at once) and lowers *due (monotonic ms, -1: none) to when it must run next.
 * A loop runs no source's pass while it is inside a fiber, so sources need no lock.
 */
struct wx_loop_src {
    int (*pass)(struct wx_loop_src *src, int64_t *due);
    void (*close)(struct wx_loop_src *src); /* the loop ends: fail what waits, free it all */
    struct wx_loop_src *next;
};

/* What the loop lends its sources: watching a descriptor in its epoll set (level-triggered). */
struct wx_loop_ops {
    int (*watch)(void *ud, int fd, int out); /* add fd, or change it: input, and output if out */
    void (*unwatch)(void *ud, int fd);
    void *ud;
};

/* On the loop's thread: before its first pass, after each pass of its own, at its end. */
void wx_loop_begin(const struct wx_loop_ops *ops);
int wx_loop_pass(int64_t *due);
void wx_loop_end(void); /* closes every source */
/* 0, or -1 when this thread runs no loop (the caller then waits some other way). */
int wx_loop_running(void);
int wx_loop_add(struct wx_loop_src *src);
int wx_loop_watch(int fd, int out);
void wx_loop_unwatch(int fd);

#endif
