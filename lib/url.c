/*
 * url.c — percent-encoding and the strict parser for query strings and form bodies.
 * Values are decoded exactly once into an arena owned by struct wx_query.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include <wxauth/url.h>

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int wx_pct_decode(struct wx_slice src, int plus_space, char *out, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < src.len; i++) {
        unsigned char c = (unsigned char)src.ptr[i];
        if (c == '%') {
            if (i + 2 >= src.len)
                return WX_ERR_SYNTAX;
            int h = hexval((unsigned char)src.ptr[i + 1]);
            int l = hexval((unsigned char)src.ptr[i + 2]);
            if (h < 0 || l < 0)
                return WX_ERR_SYNTAX;
            c = (unsigned char)(h * 16 + l);
            if (c == 0)
                return WX_ERR_SYNTAX;
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        } else if (c == 0) {
            return WX_ERR_SYNTAX;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    *out_len = o;
    return WX_OK;
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int wx_pct_encode(struct wx_buf *b, struct wx_slice src)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < src.len; i++) {
        unsigned char c = (unsigned char)src.ptr[i];
        int rc;
        if (unreserved(c)) {
            rc = wx_buf_append(b, &c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = wx_buf_append(b, e, 3);
        }
        if (rc)
            return rc;
    }
    return WX_OK;
}

void wx_query_free(struct wx_query *q)
{
    if (q->arena)
        sodium_memzero(q->arena, q->arena_size);
    free(q->arena);
    memset(q, 0, sizeof(*q));
}

static int add_param(struct wx_query *q, struct wx_slice seg, char **cursor)
{
    const char *eq = memchr(seg.ptr, '=', seg.len);
    struct wx_slice k = {seg.ptr, eq ? (size_t)(eq - seg.ptr) : seg.len};
    struct wx_slice v = {eq ? eq + 1 : seg.ptr + seg.len, eq ? seg.len - k.len - 1 : 0};
    if (k.len > WX_MAX_PARAM * 3 || v.len > WX_MAX_PARAM * 3)
        return WX_ERR_LIMIT;
    if (q->count == WX_MAX_PARAMS)
        return WX_ERR_LIMIT;
    struct wx_param *p = &q->params[q->count];
    int rc = wx_pct_decode(k, 1, *cursor, &p->key_len);
    if (rc)
        return rc;
    p->key = *cursor;
    *cursor += p->key_len + 1;
    rc = wx_pct_decode(v, 1, *cursor, &p->value_len);
    if (rc)
        return rc;
    p->value = *cursor;
    *cursor += p->value_len + 1;
    if (p->key_len > WX_MAX_PARAM || p->value_len > WX_MAX_PARAM)
        return WX_ERR_LIMIT;
    for (size_t i = 0; i < q->count; i++) {
        if (q->params[i].key_len == p->key_len && !memcmp(q->params[i].key, p->key, p->key_len)) {
            q->ndup++;
            break;
        }
    }
    q->count++;
    return WX_OK;
}

int wx_query_parse(struct wx_query *q, struct wx_slice input, size_t max_input)
{
    memset(q, 0, sizeof(*q));
    if (input.len > max_input)
        return WX_ERR_LIMIT;
    /* Decoded text never grows; each parameter adds two NULs. */
    q->arena_size = input.len + 2 * WX_MAX_PARAMS + 2;
    q->arena = malloc(q->arena_size);
    if (!q->arena)
        return WX_ERR_NOMEM;
    char *cursor = q->arena;
    size_t start = 0;
    int rc = WX_OK;
    for (size_t i = 0; i <= input.len && rc == WX_OK; i++) {
        if (i == input.len || input.ptr[i] == '&') {
            struct wx_slice seg = {input.ptr + start, i - start};
            if (seg.len)
                rc = add_param(q, seg, &cursor);
            start = i + 1;
        }
    }
    if (rc)
        wx_query_free(q);
    return rc;
}

const char *wx_query_get(const struct wx_query *q, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < q->count; i++)
        if (q->params[i].key_len == n && !memcmp(q->params[i].key, key, n))
            return q->params[i].value;
    return NULL;
}

size_t wx_query_count(const struct wx_query *q, const char *key)
{
    size_t n = strlen(key), c = 0;
    for (size_t i = 0; i < q->count; i++)
        if (q->params[i].key_len == n && !memcmp(q->params[i].key, key, n))
            c++;
    return c;
}

int wx_state_valid(struct wx_slice state)
{
    if (state.len > WX_MAX_STATE)
        return WX_ERR_LIMIT;
    for (size_t i = 0; i < state.len; i++) {
        unsigned char c = (unsigned char)state.ptr[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return WX_ERR_INVALID;
    }
    return WX_OK;
}
