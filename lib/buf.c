/*
 * buf.c — the capped growable buffer and slice helpers every module builds on, plus the
 * library's one-time initialisation and error strings.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wxauth/wxauth.h>

int wx_init(void)
{
    return sodium_init() < 0 ? WX_ERR_CRYPTO : WX_OK;
}

const char *wx_strerror(int err)
{
    switch (err) {
    case WX_OK:
        return "success";
    case WX_ERR_NOMEM:
        return "out of memory";
    case WX_ERR_LIMIT:
        return "input exceeds a limit";
    case WX_ERR_SYNTAX:
        return "malformed input";
    case WX_ERR_INVALID:
        return "invalid value";
    case WX_ERR_NOTFOUND:
        return "not found";
    case WX_ERR_CONFLICT:
        return "already exists or already used";
    case WX_ERR_EXPIRED:
        return "expired";
    case WX_ERR_STORE:
        return "store error";
    case WX_ERR_IO:
        return "I/O error";
    case WX_ERR_CRYPTO:
        return "authentication failed";
    }
    return "unknown error";
}

struct wx_slice wx_slice_cstr(const char *s)
{
    return (struct wx_slice){s, s ? strlen(s) : 0};
}

int wx_slice_eq(struct wx_slice a, const char *cstr)
{
    size_t n = strlen(cstr);
    /* n == 0: a.ptr may be NULL (wx_slice_cstr(NULL)), and memcmp(NULL, ..., 0) is undefined. */
    return a.len == n && (n == 0 || memcmp(a.ptr, cstr, n) == 0);
}

void wx_buf_init(struct wx_buf *b, size_t max)
{
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

static int buf_reserve(struct wx_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return WX_ERR_LIMIT;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return WX_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->ptr, cap);
    if (!p)
        return WX_ERR_NOMEM;
    b->ptr = p;
    b->cap = cap;
    return WX_OK;
}

int wx_buf_append(struct wx_buf *b, const void *data, size_t len)
{
    int rc = buf_reserve(b, len);
    if (rc)
        return rc;
    if (len)
        memcpy(b->ptr + b->len, data, len);
    b->len += len;
    b->ptr[b->len] = '\0';
    return WX_OK;
}

int wx_buf_puts(struct wx_buf *b, const char *s)
{
    return wx_buf_append(b, s, strlen(s));
}

int wx_buf_vprintf(struct wx_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return WX_ERR_SYNTAX;
    int rc = buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return WX_OK;
}

int wx_buf_printf(struct wx_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = wx_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void wx_buf_reset(struct wx_buf *b)
{
    b->len = 0;
    if (b->ptr)
        b->ptr[0] = '\0';
}

void wx_buf_free(struct wx_buf *b)
{
    if (b->ptr) {
        sodium_memzero(b->ptr, b->cap);
        free(b->ptr);
    }
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
}

char *wx_buf_steal(struct wx_buf *b)
{
    char *p = b->ptr;
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
