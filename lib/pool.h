/*
 * pool.h — a few worker threads for blocking work (calls to WeChat's API), so that a server's
 * event loop never waits on the network: the handler suspends its request, submits the work,
 * and the work resumes the request when its answer is ready.
 */
#ifndef WX_POOL_H
#define WX_POOL_H

#include <wxauth/base.h>

#define WX_POOL_MAX_QUEUED 4096 /* tasks waiting for a thread; more are refused */

struct wx_pool;

/* Starts threads workers (1..64), named name (at most 15 characters). */
int wx_pool_start(struct wx_pool **out, int threads, const char *name);
/* Queues fn(arg) for a worker: WX_OK, WX_ERR_LIMIT (queue full or stopping), WX_ERR_NOMEM. */
int wx_pool_submit(struct wx_pool *p, void (*fn)(void *arg), void *arg);
/* Runs what is queued, then stops and frees the pool. */
void wx_pool_stop(struct wx_pool *p);

#endif
