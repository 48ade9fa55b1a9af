/*
 * redis_mux.h — one pipelined connection to Redis shared by every thread of a process that
 * talks to the same server (the provider's HTTP thread and its writer lanes, the gate's
 * workers). Callers hand it a unit of commands and wait; its own I/O thread writes every unit
 * that is ready in one go, reads the replies in order and gives each caller its own. So the
 * commands of many requests share round trips, and writes that arrive together share one of
 * Redis's fsyncs (appendfsync always: once per event-loop pass of Redis).
 *
 * Failure rules (the same as one blocking connection's, redis_conn.h): a unit that gets no
 * complete answer within the timeout fails, and with it every unit sent after it on the same
 * stream (their replies can no longer be matched); the connection is dropped and, after a
 * timeout, units fail at once for timeout_ms, so that a request making several calls waits
 * once. A refused connection fails the waiting units at once; the next unit connects again. A
 * unit is never sent twice.
 */
#ifndef WX_REDIS_MUX_H
#define WX_REDIS_MUX_H

#include <hiredis/hiredis.h>

#include "redis_conn.h"

struct wx_mux;

/*
 * The shared connection for conn's server, database and credentials, started on first use
 * and counted: every wx_mux_get is matched by a wx_mux_put. NULL when out of memory.
 */
struct wx_mux *wx_mux_get(const struct wx_rc *conn);
void wx_mux_put(struct wx_mux *m);
/*
 * Whether units can be sent: WX_ERR_STORE (why set) while they fail at once after a timeout,
 * or when down and connecting fails; WX_OK when connected (no I/O) or connecting succeeds.
 */
int wx_mux_ready(struct wx_mux *m, char *why, size_t whysz);
/*
 * Sends the n commands a[0..n) as one unit and waits for their replies: WX_OK with out[0..n)
 * (error replies included: the caller reads them and frees every reply), or WX_ERR_STORE with
 * nothing to free and the reason in why (whysz with the NUL). wait (with the server's wait=N):
 * answered only once the WAIT N the stream sends after each batch that holds such units
 * confirmed it (else WX_ERR_STORE: written, not confirmed).
 */
int wx_mux_run(struct wx_mux *m, struct wx_rc_args *a, int n, int wait, redisReply **out, char *why,
               size_t whysz);
/* Units and writes (one write(2) can carry many units) so far, for tests and /metrics. */
void wx_mux_stats(struct wx_mux *m, uint64_t *units, uint64_t *writes);

#endif
