/*
 * writer.c — the group-commit writer thread.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "writer.h"

struct lane {
    struct wx_writer *w;
    struct wx_store *store;
    pthread_t thread;
    int started;
};

struct wx_writer {
    struct lane lanes[WX_WRITER_MAX_LANES];
    int nlanes;
    int max_batch; /* per transaction; 1 per lane when there are several */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct wx_job *head, *tail;
    int stopping;
    _Atomic uint64_t batches, jobs;
    void (*before_done)(void *), (*after_done)(void *);
    void *hook_ud;
};

void wx_writer_set_done_hooks(struct wx_writer *w, void (*before)(void *), void (*after)(void *),
                              void *ud)
{
    pthread_mutex_lock(&w->mu);
    w->before_done = before;
    w->after_done = after;
    w->hook_ud = ud;
    pthread_mutex_unlock(&w->mu);
}

static void hooks(struct wx_writer *w, int after)
{
    pthread_mutex_lock(&w->mu);
    void (*fn)(void *) = after ? w->after_done : w->before_done;
    void *ud = w->hook_ud;
    pthread_mutex_unlock(&w->mu);
    if (fn)
        fn(ud);
}

static int queued(const struct wx_writer *w)
{
    int n = 0;
    for (const struct wx_job *j = w->head; j && n < w->max_batch; j = j->next)
        n++;
    return n;
}

static struct wx_job *take_batch(struct wx_writer *w, int *stop)
{
    pthread_mutex_lock(&w->mu);
    while (!w->head && !w->stopping)
        pthread_cond_wait(&w->cv, &w->mu);
    /*
     * Let the threads that submit jobs run on before the batch is cut: requests that are
     * already arriving then share this commit instead of waiting for the next fsync. Yielding
     * stops as soon as the queue stops growing, so an idle server adds no latency.
     */
    for (int i = 0, n = queued(w); i < 4 && n < w->max_batch && !w->stopping; i++) {
        pthread_mutex_unlock(&w->mu);
        sched_yield();
        pthread_mutex_lock(&w->mu);
        int now = queued(w);
        if (now == n)
            break;
        n = now;
    }
    struct wx_job *first = w->head, *last = NULL, *j = w->head;
    for (int n = 0; j && n < w->max_batch; n++) {
        last = j;
        j = j->next;
    }
    if (last) {
        w->head = last->next;
        if (!w->head)
            w->tail = NULL;
        last->next = NULL;
    }
    *stop = w->stopping && !w->head && !first;
    pthread_mutex_unlock(&w->mu);
    return first;
}

/* Runs jobs[0..n) in one transaction; returns 1 when it committed. *failed: a job failed. */
static int run_txn(struct wx_store *s, struct wx_job *first, struct wx_job *stop, int *failed)
{
    *failed = 0;
    if (s->ops->batch_begin(s) != WX_OK)
        return 0;
    for (struct wx_job *j = first; j != stop; j = j->next) {
        if (j->run(j, s) != 0) {
            *failed = 1;
            s->ops->batch_rollback(s);
            return 0;
        }
    }
    if (s->ops->batch_commit(s) != WX_OK) {
        s->ops->batch_rollback(s);
        return 0;
    }
    return 1;
}

/*
 * A store without atomic batches (Redis): each job runs once; one that fails is answered as
 * failed and the others stand. (Running them again, as for SQLite, would redo their writes.)
 */
static void run_standalone(struct wx_writer *w, struct wx_store *s, struct wx_job *batch,
                           int with_hooks)
{
    int began = s->ops->batch_begin(s) == WX_OK;
    for (struct wx_job *j = batch; j; j = j->next)
        j->ran_ok = began && j->run(j, s) == 0;
    int committed = began && s->ops->batch_commit(s) == WX_OK;
    uint64_t good = 0;
    if (with_hooks)
        hooks(w, 0);
    for (struct wx_job *j = batch, *next; j; j = next) {
        next = j->next;
        int done_ok = committed && j->ran_ok;
        good += (uint64_t)done_ok;
        j->done(j, done_ok);
    }
    if (with_hooks)
        hooks(w, 1);
    atomic_fetch_add(&w->batches, 1);
    atomic_fetch_add(&w->jobs, good);
}

void wx_writer_run_here(struct wx_writer *w, struct wx_store *s, struct wx_job *job)
{
    job->next = NULL;
    run_standalone(w, s, job, 0);
}

/*
 * One transaction and one fsync for the whole batch. When a job fails, the batch is rolled back
 * and each job is run again alone, so one bad job costs the others only time.
 */
static void run_batch(struct wx_writer *w, struct wx_store *s, struct wx_job *batch)
{
    int failed = 0;
    uint64_t n = 0;
    for (struct wx_job *j = batch; j; j = j->next)
        n++;
    if (!s->ops->atomic_batches) {
        run_standalone(w, s, batch, 1);
        return;
    }
    if (run_txn(s, batch, NULL, &failed)) {
        atomic_fetch_add(&w->batches, 1);
        atomic_fetch_add(&w->jobs, n);
        hooks(w, 0);
        for (struct wx_job *j = batch, *next; j; j = next) {
            next = j->next;
            j->done(j, 1);
        }
        hooks(w, 1);
        return;
    }
    /* Retried jobs are answered one by one, each as soon as its own commit is done. */
    for (struct wx_job *j = batch, *next; j; j = next) {
        next = j->next;
        int ok = failed && run_txn(s, j, next, &failed);
        if (ok) {
            atomic_fetch_add(&w->batches, 1);
            atomic_fetch_add(&w->jobs, 1);
        }
        failed = 1; /* retry the remaining jobs alone too */
        j->done(j, ok);
    }
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * When the queue runs dry after writes, copy the log back into the database (SQLite's WAL
 * checkpoint; at most every WX_CHECKPOINT_MS). Otherwise the last writes before a quiet spell
 * stay in the log, and every read has to look there first.
 */
static void maybe_checkpoint(struct wx_writer *w, struct wx_store *s, uint64_t *seen, int64_t *last)
{
    uint64_t commits = atomic_load(&w->batches);
    if (commits == *seen || !s->ops->checkpoint)
        return;
    pthread_mutex_lock(&w->mu);
    int idle = w->head == NULL;
    pthread_mutex_unlock(&w->mu);
    int64_t now = mono_ms();
    if (!idle || now - *last < WX_CHECKPOINT_MS)
        return;
    if (s->ops->checkpoint(s) == WX_OK)
        *seen = commits;
    *last = now;
}

static void *writer_main(void *arg)
{
    struct lane *l = arg;
    struct wx_writer *w = l->w;
    pthread_setname_np(pthread_self(), "wx-writer");
    uint64_t checkpointed = 0;
    int64_t last_checkpoint = 0;
    for (;;) {
        int stop = 0;
        struct wx_job *batch = take_batch(w, &stop);
        if (batch)
            run_batch(w, l->store, batch);
        if (stop)
            break;
        maybe_checkpoint(w, l->store, &checkpointed, &last_checkpoint);
    }
    return NULL;
}

int wx_writer_start_lanes(struct wx_writer **out, struct wx_store **stores, int n, int max_batch)
{
    if (n < 1 || n > WX_WRITER_MAX_LANES)
        return WX_ERR_INVALID;
    struct wx_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return WX_ERR_NOMEM;
    /* Several lanes exist for stores without atomic batches: each takes one job at a time. */
    w->max_batch = n > 1 ? 1 : max_batch > 0 ? max_batch : 64;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    for (int i = 0; i < n; i++)
        w->lanes[i] = (struct lane){w, stores[i], 0, 0};
    w->nlanes = n;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&w->lanes[i].thread, NULL, writer_main, &w->lanes[i]) != 0) {
            pthread_mutex_lock(&w->mu); /* undo: the stores stay the caller's */
            w->stopping = 1;
            pthread_cond_broadcast(&w->cv);
            pthread_mutex_unlock(&w->mu);
            for (int j = 0; j < i; j++)
                pthread_join(w->lanes[j].thread, NULL);
            wx_writer_free(w);
            return WX_ERR_NOMEM;
        }
        w->lanes[i].started = 1;
    }
    *out = w;
    return WX_OK;
}

int wx_writer_start(struct wx_writer **out, struct wx_store *store, int max_batch)
{
    return wx_writer_start_lanes(out, &store, 1, max_batch);
}

void wx_writer_submit(struct wx_writer *w, struct wx_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->stopping) {
        /* Shutting down: the job is answered as a failed commit, never left hanging. */
        pthread_mutex_unlock(&w->mu);
        job->done(job, 0);
        return;
    }
    if (w->tail)
        w->tail->next = job;
    else
        w->head = job;
    w->tail = job;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void wx_writer_stop(struct wx_writer *w)
{
    if (!w || !w->nlanes)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->nlanes; i++) {
        if (w->lanes[i].started)
            pthread_join(w->lanes[i].thread, NULL);
        w->lanes[i].store->ops->close(w->lanes[i].store);
    }
    w->nlanes = 0;
}

void wx_writer_free(struct wx_writer *w)
{
    if (!w)
        return;
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

void wx_writer_stats(struct wx_writer *w, uint64_t *batches, uint64_t *jobs)
{
    *batches = atomic_load(&w->batches);
    *jobs = atomic_load(&w->jobs);
}
