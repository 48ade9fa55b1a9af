/*
 * metrics.c — counters and histograms rendered in the Prometheus text format.
 */
#include <string.h>

#include "metrics.h"

static const double bounds[WX_METRICS_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                  0.01,   0.025,   0.05,   0.1,   0.5,    1.0};

void wx_metrics_init(struct wx_metrics *m)
{
    memset(m, 0, sizeof(*m));
    pthread_mutex_init(&m->mu, NULL);
}

void wx_metrics_observe(struct wx_metrics *m, const char *route, int status, int errcode,
                        double seconds)
{
    if (!route)
        route = "other";
    pthread_mutex_lock(&m->mu);
    int i;
    for (i = 0; i < m->nslots; i++)
        if (m->slot[i].route == route && m->slot[i].status == status &&
            m->slot[i].errcode == errcode)
            break;
    if (i == m->nslots && m->nslots < WX_METRICS_SLOTS) {
        m->slot[i].route = route;
        m->slot[i].status = status;
        m->slot[i].errcode = errcode;
        m->nslots++;
    }
    if (i < m->nslots)
        m->slot[i].count++;
    else
        m->dropped++;
    int h;
    for (h = 0; h < m->nroutes; h++)
        if (m->hist[h].route == route)
            break;
    if (h == m->nroutes && m->nroutes < WX_METRICS_ROUTES)
        m->hist[m->nroutes++].route = route;
    if (h < m->nroutes) {
        int b = 0;
        while (b < WX_METRICS_BUCKETS && seconds > bounds[b])
            b++;
        m->hist[h].bucket[b]++;
        m->hist[h].sum += seconds;
        m->hist[h].count++;
    }
    pthread_mutex_unlock(&m->mu);
}

int wx_metrics_render(struct wx_metrics *m, const char *prefix, struct wx_buf *out)
{
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    rc |= wx_buf_printf(out,
                        "# HELP %s_requests_total Requests by route, HTTP status and errcode.\n"
                        "# TYPE %s_requests_total counter\n",
                        prefix, prefix);
    for (int i = 0; i < m->nslots; i++)
        rc |= wx_buf_printf(out,
                            "%s_requests_total{route=\"%s\",status=\"%d\",errcode=\"%d\"} %llu\n",
                            prefix, m->slot[i].route, m->slot[i].status, m->slot[i].errcode,
                            (unsigned long long)m->slot[i].count);
    rc |= wx_buf_printf(out,
                        "# HELP %s_request_duration_seconds Request latency by route.\n"
                        "# TYPE %s_request_duration_seconds histogram\n",
                        prefix, prefix);
    for (int h = 0; h < m->nroutes; h++) {
        uint64_t cum = 0;
        for (int b = 0; b <= WX_METRICS_BUCKETS; b++) {
            cum += m->hist[h].bucket[b];
            if (b < WX_METRICS_BUCKETS)
                rc |= wx_buf_printf(
                    out, "%s_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                    prefix, m->hist[h].route, bounds[b], (unsigned long long)cum);
            else
                rc |= wx_buf_printf(
                    out, "%s_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                    prefix, m->hist[h].route, (unsigned long long)cum);
        }
        rc |= wx_buf_printf(out, "%s_request_duration_seconds_sum{route=\"%s\"} %.6f\n", prefix,
                            m->hist[h].route, m->hist[h].sum);
        rc |= wx_buf_printf(out, "%s_request_duration_seconds_count{route=\"%s\"} %llu\n", prefix,
                            m->hist[h].route, (unsigned long long)m->hist[h].count);
    }
    pthread_mutex_unlock(&m->mu);
    return rc ? WX_ERR_LIMIT : WX_OK;
}
