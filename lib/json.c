/*
 * json.c — bounded JSON parsing and compact output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int wx_json_parse(struct wx_slice text, size_t max, json_t **out, char *err, size_t errsz)
{
    json_error_t je;
    if (text.len > max) {
        snprintf(err, errsz, "JSON body over %zu bytes", max);
        return WX_ERR_LIMIT;
    }
    *out = json_loadb(text.ptr, text.len, JSON_REJECT_DUPLICATES, &je);
    if (!*out) {
        snprintf(err, errsz, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
        return WX_ERR_SYNTAX;
    }
    return WX_OK;
}

int wx_json_append(struct wx_buf *b, const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    if (!s)
        return WX_ERR_NOMEM;
    int rc = wx_buf_puts(b, s);
    free(s);
    return rc;
}
