/*
 * store.c — opens the backend a store URL names: "redis://...", "redis-sentinel://..." or
 * "redis-cluster://..."
 * (store_redis.c), or SQLite
 * ("sqlite:PATH" or a plain path).
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "store.h"

/* store_redis.c; URL form and options there. */
int wx_store_open_redis(struct wx_store **out, const char *url, char *err, size_t errsz);

int wx_store_rec_ok(const char *kind, const char *name, size_t len)
{
    if (!kind || !name || !*kind || !*name || strlen(kind) > WX_REC_MAX_KIND ||
        strlen(name) > WX_REC_MAX_NAME || len > WX_REC_MAX_VALUE)
        return 0;
    for (const char *p = kind; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
            return 0;
    return 1;
}

int wx_store_open(struct wx_store **out, const char *url, char *err, size_t errsz)
{
    if (!url || !*url) {
        snprintf(err, errsz, "no database given (--db FILE)");
        return WX_ERR_INVALID;
    }
    if (!strncmp(url, "redis://", 8) || !strncmp(url, "redis-sentinel://", 17) ||
        !strncmp(url, "redis-cluster://", 16))
        return wx_store_open_redis(out, url, err, errsz);
    if (!strncmp(url, "sqlite:", 7))
        url += 7;
    if (strstr(url, "://")) {
        snprintf(err, errsz, "unsupported store '%.*s' (this build has sqlite and redis)",
                 (int)strcspn(url, ":"), url);
        return WX_ERR_INVALID;
    }
    return wx_store_open_sqlite(out, url, err, errsz);
}

static const struct wx_log *_Atomic store_log;
static _Atomic int64_t last_line_ms = -WX_STORE_LOG_INTERVAL_MS; /* monotonic */
static _Atomic int64_t last_failure_ms;
static _Atomic long unwritten; /* failures since the last line, not in it */
static _Atomic long failing;   /* failures since the store last answered again */

void wx_store_set_log(const struct wx_log *log)
{
    atomic_store(&store_log, log);
}

/* s with what would break a logfmt value (quotes, backslashes, controls) replaced by '?'. */
static void clean(char *out, size_t outsz, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 1 < outsz; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = c < 0x20 || c == 0x7f || c == '"' || c == '\\' ? '?' : (char)c;
    }
    out[i] = '\0';
}

static int64_t now_ms(void)
{
    return wx_mono_ns() / 1000000;
}

void wx_store_note_failure(const char *where, const char *why)
{
    int64_t now = now_ms(), last = atomic_load(&last_line_ms);
    atomic_store(&last_failure_ms, now);
    atomic_fetch_add(&failing, 1);
    if (now - last < WX_STORE_LOG_INTERVAL_MS ||
        !atomic_compare_exchange_strong(&last_line_ms, &last, now)) {
        atomic_fetch_add(&unwritten, 1);
        return;
    }
    char w[320], y[320];
    clean(w, sizeof w, where);
    clean(y, sizeof y, why);
    wx_logf(atomic_load(&store_log), WX_LOG_ERROR,
            "level=error msg=\"store: %s: %s\" not_logged_since_last=%ld", w, y,
            atomic_exchange(&unwritten, 0));
}

void wx_store_note_ok(void)
{
    if (atomic_load_explicit(&failing, memory_order_relaxed) == 0)
        return;
    /* Answering again once a call succeeds with no failure for an interval: a read that works
     * while writes fail (a full Redis) is not a recovery. */
    int64_t since = now_ms() - atomic_load(&last_failure_ms);
    if (since < WX_STORE_LOG_INTERVAL_MS)
        return;
    long n = atomic_exchange(&failing, 0);
    if (n > 0) {
        atomic_store(&unwritten, 0);
        wx_logf(atomic_load(&store_log), WX_LOG_WARN,
                "level=warn msg=\"store: answering again\" failures=%ld last_failure_ms_ago=%lld",
                n, (long long)since);
    }
}

void wx_store_notef(const char *fmt, ...)
{
    char line[600], c[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    clean(c, sizeof c, line);
    wx_logf(atomic_load(&store_log), WX_LOG_WARN, "level=warn msg=\"%s\"", c);
}
