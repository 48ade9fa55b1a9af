/*
 * metrics.h — Prometheus text metrics: requests by route, status and errcode, and a latency
 * histogram per route. Route labels are static strings owned by the program.
 */
#ifndef WX_METRICS_H
#define WX_METRICS_H

#include <pthread.h>
#include <stdint.h>
#include <wxauth/base.h>

#define WX_METRICS_SLOTS   256
#define WX_METRICS_ROUTES  40
#define WX_METRICS_BUCKETS 12

struct wx_metrics {
    pthread_mutex_t mu;
    struct {
        const char *route;
        int status, errcode;
        uint64_t count;
    } slot[WX_METRICS_SLOTS];
    int nslots;
    struct {
        const char *route;
        uint64_t bucket[WX_METRICS_BUCKETS + 1];
        double sum;
        uint64_t count;
    } hist[WX_METRICS_ROUTES];
    int nroutes;
    uint64_t dropped; /* observations that found no free slot */
};

void wx_metrics_init(struct wx_metrics *m);
void wx_metrics_observe(struct wx_metrics *m, const char *route, int status, int errcode,
                        double seconds);
/* Appends the exposition text, metric names prefixed with prefix (e.g. "wxauth_provider"). */
int wx_metrics_render(struct wx_metrics *m, const char *prefix, struct wx_buf *out);

#endif
