/*
 * json.h — jansson helpers: bounded parsing that rejects duplicate keys, and compact output
 * appended to a capped buffer (always valid UTF-8 JSON, SECURITY.md rule 7).
 */
#ifndef WX_JSON_H
#define WX_JSON_H

#include <jansson.h>
#include <wxauth/base.h>

/* Parses text (at most max bytes) into *out; the caller json_decref()s it. */
int wx_json_parse(struct wx_slice text, size_t max, json_t **out, char *err, size_t errsz);
/* Appends json_dumps(v, JSON_COMPACT) to b; steals no reference. */
int wx_json_append(struct wx_buf *b, const json_t *v);

#endif
