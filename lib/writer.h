/*
 * writer.h — group commit. Jobs that write are queued to one writer thread that owns the write
 * connection; it runs every queued job (up to a batch limit) inside one transaction, commits
 * once (one fsync for the batch), and only then calls each job's done() with the outcome.
 * A response therefore never leaves before the commit that holds its write (SECURITY.md 12).
 */
#ifndef WX_WRITER_H
#define WX_WRITER_H

#include <stdint.h>

#include "store.h"

#define WX_CHECKPOINT_MS 200 /* the writer checkpoints when idle, at most this often */

struct wx_job {
    /*
     * Runs on the writer thread inside the batch's transaction; returns 0 to keep its writes,
     * nonzero on a store failure (the batch is then retried job by job, so run() may be called
     * again and must start from scratch each time).
     */
    int (*run)(struct wx_job *job, struct wx_store *store);
    /* Called after the commit (committed=1) or its failure (0), on the writer thread. */
    void (*done)(struct wx_job *job, int committed);
    struct wx_job *next;
    int ran_ok; /* the writer's own: run()'s outcome, kept until done() */
};

struct wx_writer;

#define WX_WRITER_MAX_LANES 32

/* Starts the thread; on success the writer owns store. max_batch bounds one transaction. */
int wx_writer_start(struct wx_writer **out, struct wx_store *store, int max_batch);
/*
 * For a store without atomic batches (Redis), whose writes wait on the network: n threads
 * ("lanes"), each with its own connection stores[i] (owned by the writer on success), each running
 * one job at a time from the shared queue, so that n writes are in flight and Redis persists them
 * together.
 */
int wx_writer_start_lanes(struct wx_writer **out, struct wx_store **stores, int n, int max_batch);
void wx_writer_submit(struct wx_writer *w, struct wx_job *job);
/*
 * For a store without atomic batches whose calls park a fiber instead of blocking (Redis on the
 * provider's HTTP loop): runs job on the calling thread with store s, then done(), exactly as
 * a lane would (counted in the stats alike). s must be a store this thread may use.
 */
void wx_writer_run_here(struct wx_writer *w, struct wx_store *s, struct wx_job *job);
/*
 * Optional: before() and after() run on the writer thread around the done() calls of a batch
 * that committed (the provider holds the HTTP loop's wake-ups there: one wake-up per batch).
 */
void wx_writer_set_done_hooks(struct wx_writer *w, void (*before)(void *), void (*after)(void *),
                              void *ud);
/*
 * Drains the queue, stops the thread and closes the store. Jobs submitted afterwards are
 * answered at once with done(job, 0). Free with wx_writer_free() once nothing submits.
 */
void wx_writer_stop(struct wx_writer *w);
void wx_writer_free(struct wx_writer *w);
/* Batches and jobs committed so far (for /metrics). */
void wx_writer_stats(struct wx_writer *w, uint64_t *batches, uint64_t *jobs);

#endif
