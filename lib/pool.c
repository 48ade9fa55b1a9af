/*
 * pool.c — worker threads with one FIFO queue.
 */
#include <pthread.h>
#include <stdlib.h>

#include "pool.h"

struct task {
    void (*fn)(void *arg);
    void *arg;
    struct task *next;
};

struct wx_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct task *head, *tail;
    int queued, stopping, nthreads;
    pthread_t threads[64];
};

static void *worker(void *arg)
{
    struct wx_pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        struct task *t = p->head;
        if (t) {
            p->head = t->next;
            if (!p->head)
                p->tail = NULL;
            p->queued--;
        }
        pthread_mutex_unlock(&p->mu);
        if (!t)
            return NULL; /* stopping and nothing left */
        t->fn(t->arg);
        free(t);
    }
}

int wx_pool_start(struct wx_pool **out, int threads, const char *name)
{
    if (threads < 1 || threads > 64)
        return WX_ERR_INVALID;
    struct wx_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return WX_ERR_NOMEM;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (; p->nthreads < threads; p->nthreads++) {
        if (pthread_create(&p->threads[p->nthreads], NULL, worker, p) != 0) {
            wx_pool_stop(p);
            return WX_ERR_NOMEM;
        }
        pthread_setname_np(p->threads[p->nthreads], name);
    }
    *out = p;
    return WX_OK;
}

int wx_pool_submit(struct wx_pool *p, void (*fn)(void *arg), void *arg)
{
    struct task *t = malloc(sizeof(*t));
    if (!t)
        return WX_ERR_NOMEM;
    *t = (struct task){fn, arg, NULL};
    pthread_mutex_lock(&p->mu);
    if (p->stopping || p->queued >= WX_POOL_MAX_QUEUED) {
        pthread_mutex_unlock(&p->mu);
        free(t);
        return WX_ERR_LIMIT;
    }
    if (p->tail)
        p->tail->next = t;
    else
        p->head = t;
    p->tail = t;
    p->queued++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return WX_OK;
}

void wx_pool_stop(struct wx_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
