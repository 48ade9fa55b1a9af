/*
 * store.c — opens the backend a store URL names. Today: SQLite ("sqlite:PATH" or a plain path).
 */
#include <stdio.h>
#include <string.h>

#include "store.h"

int wx_store_open(struct wx_store **out, const char *url, char *err, size_t errsz)
{
    if (!url || !*url) {
        snprintf(err, errsz, "no database given (--db FILE)");
        return WX_ERR_INVALID;
    }
    if (!strncmp(url, "sqlite:", 7))
        url += 7;
    if (strstr(url, "://")) {
        snprintf(err, errsz, "unsupported store '%s' (this build has sqlite)", url);
        return WX_ERR_INVALID;
    }
    return wx_store_open_sqlite(out, url, err, errsz);
}
