/*
 * client_bench.c — libwxauth's client-side costs: sealed-state seal+open per second, callback
 * parses per second, and (given a provider) complete client flows per second — authorize (a
 * signed-in sandbox user, silent snsapi_userinfo via remembered consent is not needed: the flow
 * uses snsapi_base for the redirect and snsapi_userinfo codes minted... see usage) — with p99.
 *
 * Usage: wxauth-client-bench [--seconds N] [--threads N]
 *                            [--provider URL --appid A --secret S --cookie wxsb=...]
 * Without --provider only the local measurements run.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wxauth/wxauth.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static struct wx_state_key key = {.id = 1};
static struct wx_state_keys keys = {&key, 1};

static void bench_state(double seconds)
{
    char state[WX_MAX_STATE + 1];
    struct wx_state st;
    long n = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 1000; i++, n++) {
            if (wx_state_seal(&keys, "/orders/42", WX_SLICE_LIT("browser-cookie"), 600,
                              (int64_t)time(NULL), state, NULL) ||
                wx_state_open(&keys, wx_slice_cstr(state), WX_SLICE_LIT("browser-cookie"),
                              (int64_t)time(NULL), &st)) {
                fprintf(stderr, "state round trip failed\n");
                exit(1);
            }
        }
        t = now_s();
    } while (t - t0 < seconds);
    printf("state seal+open      %10.0f per second (one thread)\n", (double)n / (t - t0));
}

static void bench_callback(struct wx_client *c, double seconds)
{
    char state[WX_MAX_STATE + 1], query[512];
    struct wx_callback cb;
    wx_state_seal(&keys, "/", WX_SLICE_LIT("browser-cookie"), 600, (int64_t)time(NULL), state,
                  NULL);
    snprintf(query, sizeof query, "code=021YtV1V08FYm22w9uZU0QxT1V0YtV1n&state=%s", state);
    long n = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 1000; i++, n++) {
            wx_callback_parse(c, wx_slice_cstr(query), WX_SLICE_LIT("browser-cookie"),
                              (int64_t)time(NULL), &cb);
            if (cb.kind != WX_CALLBACK_CODE) {
                fprintf(stderr, "callback parse failed: %s\n", cb.reason);
                exit(1);
            }
        }
        t = now_s();
    } while (t - t0 < seconds);
    printf("callback parse       %10.0f per second (one thread)\n", (double)n / (t - t0));
}

struct flow_ctx {
    struct wx_client *client;
    const char *provider, *cookie;
    double seconds;
    double *lat;
    long nlat, cap, failed;
};

/* One flow: authorize (302 with a code) -> callback parse -> exchange -> userinfo. */
static int one_flow(struct flow_ctx *f, CURL *h)
{
    char state[WX_MAX_STATE + 1], *loc = NULL;
    struct wx_buf url;
    struct wx_callback cb;
    struct wx_token tok;
    struct wx_userinfo ui;
    struct wx_error err;
    long status = 0;
    int rc = -1;
    wx_state_seal(&keys, "/", (struct wx_slice){NULL, 0}, 600, (int64_t)time(NULL), state, NULL);
    struct wx_authorize_params p = {"http://localhost:9000/cb", "snsapi_userinfo", state, 0, 0, 0};
    wx_buf_init(&url, 4096);
    if (wx_authorize_url(f->client, &p, &url))
        goto done;
    curl_easy_setopt(h, CURLOPT_URL, url.ptr);
    if (curl_easy_perform(h) != CURLE_OK)
        goto done;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc);
    const char *q = loc ? strchr(loc, '?') : NULL;
    if (status != 302 || !q)
        goto done;
    wx_callback_parse(f->client, wx_slice_cstr(q + 1), (struct wx_slice){NULL, 0},
                      (int64_t)time(NULL), &cb);
    if (cb.kind != WX_CALLBACK_CODE || wx_exchange_code(f->client, cb.code, &tok, &err) ||
        wx_get_userinfo(f->client, tok.access_token, tok.openid, "zh_CN", &ui, &err))
        goto done;
    rc = 0;
done:
    wx_buf_free(&url);
    return rc;
}

static size_t discard(char *p, size_t s, size_t n, void *ud)
{
    return s * n;
}

static void *flow_thread(void *arg)
{
    struct flow_ctx *f = arg;
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_COOKIE, f->cookie);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    double t0 = now_s(), t;
    do {
        double s = now_s();
        if (one_flow(f, h))
            f->failed++;
        t = now_s();
        if (f->nlat < f->cap)
            f->lat[f->nlat++] = t - s;
    } while (t - t0 < f->seconds);
    curl_easy_cleanup(h);
    return NULL;
}

int main(int argc, char **argv)
{
    double seconds = 3;
    int threads = 4;
    const char *provider = NULL, *appid = "wx0123456789abcdef", *secret = NULL, *cookie = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seconds"))
            seconds = strtod(argv[i + 1], NULL);
        else if (!strcmp(argv[i], "--threads"))
            threads = (int)strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--provider"))
            provider = argv[i + 1];
        else if (!strcmp(argv[i], "--appid"))
            appid = argv[i + 1];
        else if (!strcmp(argv[i], "--secret"))
            secret = argv[i + 1];
        else if (!strcmp(argv[i], "--cookie"))
            cookie = argv[i + 1];
    }
    if (threads < 1 || threads > 64 || seconds <= 0) {
        fprintf(stderr, "usage: see the comment at the top of bench/client_bench.c\n");
        return 2;
    }
    if (wx_init())
        return 1;
    for (int i = 0; i < WX_STATE_KEY_LEN; i++)
        key.key[i] = (unsigned char)(i * 7 + 1);
    struct wx_client_config cfg = {0};
    struct wx_client *c;
    struct wx_error err;
    cfg.appid = appid;
    cfg.secret = secret;
    cfg.open_base = provider;
    cfg.api_base = provider;
    cfg.state_keys = keys;
    cfg.max_retries = -1;
    if (wx_client_new(&cfg, &c, &err)) {
        fprintf(stderr, "client: %s\n", err.errmsg);
        return 1;
    }
    bench_state(seconds);
    bench_callback(c, seconds);
    if (provider && secret && cookie) {
        pthread_t t[64];
        struct flow_ctx f[64];
        long total = 0, failed = 0;
        for (int i = 0; i < threads; i++) {
            f[i] = (struct flow_ctx){c, provider, cookie, seconds, NULL, 0, 1000000, 0};
            f[i].lat = malloc(sizeof(double) * (size_t)f[i].cap);
            pthread_create(&t[i], NULL, flow_thread, &f[i]);
        }
        double *all = malloc(sizeof(double) * (size_t)threads * 1000000);
        for (int i = 0; i < threads; i++) {
            pthread_join(t[i], NULL);
            memcpy(all + total, f[i].lat, sizeof(double) * (size_t)f[i].nlat);
            total += f[i].nlat;
            failed += f[i].failed;
            free(f[i].lat);
        }
        qsort(all, (size_t)total, sizeof(double), cmp_double);
        printf("client flows         %10.0f per second (%d threads: authorize -> callback -> "
               "exchange -> userinfo), p50 %.2f ms, p99 %.2f ms, %ld failed\n",
               (double)total / seconds, threads, total ? all[total / 2] * 1e3 : 0,
               total ? all[(long)((double)total * 0.99)] * 1e3 : 0, failed);
        free(all);
        if (failed)
            return 1;
    }
    wx_client_free(c);
    return 0;
}
