/*
 * store.c — opens the backend a store URL names: "redis://...", "redis-sentinel://..." or
 * "redis-cluster://..."
 * (store_redis.c), or SQLite
 * ("sqlite:PATH" or a plain path).
 */
#include <stdio.h>
#include <string.h>

#include "store.h"

/* store_redis.c; URL form and options there. */
int wx_store_open_redis(struct wx_store **out, const char *url, char *err, size_t errsz);

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
