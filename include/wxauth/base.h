/*
 * wxauth/base.h — the types every part of libwxauth shares: the error enum, the {ptr,len}
 * slice, the capped growable buffer, and the named input limits.
 *
 * Ownership: a struct wx_slice never owns its bytes; a struct wx_buf owns its storage and is
 * released with wx_buf_free(). Every limit below is enforced: exceeding one is WX_ERR_LIMIT,
 * never a silent truncation.
 */
#ifndef WXAUTH_BASE_H
#define WXAUTH_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Named limits (SECURITY.md rule 10). */
#define WX_MAX_STATE        128   /* WeChat: state is [A-Za-z0-9], at most 128 bytes */
#define WX_MAX_URL          8192  /* request target (path + query) */
#define WX_MAX_REDIRECT_URI 2048  /* decoded redirect_uri */
#define WX_MAX_PARAMS       32    /* parameters in one query string or form body */
#define WX_MAX_PARAM        4096  /* one decoded key or value */
#define WX_MAX_BODY         65536 /* request body (form or JSON) */
#define WX_MAX_HEADER       8192  /* all request headers together (enforced by the server) */
#define WX_MAX_NICKNAME     256   /* bytes of UTF-8 */
#define WX_MAX_APPNAME      128
#define WX_MAX_DOMAIN       253
#define WX_MAX_DOMAINS      2     /* WeChat allows two web-authorization domains per account */
#define WX_MAX_JSON_RESP    65536 /* a WeChat API response a client accepts */

enum wx_err {
    WX_OK = 0,
    WX_ERR_NOMEM,    /* allocation failed */
    WX_ERR_LIMIT,    /* an input or output exceeded its named limit */
    WX_ERR_SYNTAX,   /* malformed input */
    WX_ERR_INVALID,  /* well-formed but not acceptable (wrong host, bad charset...) */
    WX_ERR_NOTFOUND, /* no such record */
    WX_ERR_CONFLICT, /* already exists / already used */
    WX_ERR_EXPIRED,  /* past its lifetime */
    WX_ERR_STORE,    /* the store failed: callers must fail closed */
    WX_ERR_IO,       /* file or socket error */
    WX_ERR_CRYPTO,   /* authentication of sealed data failed */
};

/* A static English description of an enum wx_err value; never NULL. */
const char *wx_strerror(int err);

/* A view of bytes owned by someone else. */
struct wx_slice {
    const char *ptr;
    size_t len;
};

#define WX_SLICE_LIT(s) ((struct wx_slice){(s), sizeof(s) - 1})
struct wx_slice wx_slice_cstr(const char *s);
int wx_slice_eq(struct wx_slice a, const char *cstr);

/*
 * A growable byte buffer with a hard maximum fixed at init. Always NUL-terminated when
 * ptr != NULL. Appending past max fails with WX_ERR_LIMIT and leaves the contents unchanged.
 */
struct wx_buf {
    char *ptr;
    size_t len;
    size_t cap;
    size_t max;
};

void wx_buf_init(struct wx_buf *b, size_t max);
int wx_buf_append(struct wx_buf *b, const void *data, size_t len);
int wx_buf_puts(struct wx_buf *b, const char *s);
int wx_buf_printf(struct wx_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int wx_buf_vprintf(struct wx_buf *b, const char *fmt, va_list ap);
void wx_buf_reset(struct wx_buf *b);
/* Frees the storage (after wiping it) and leaves b empty but reusable with the same max. */
void wx_buf_free(struct wx_buf *b);
/* Hands the storage to the caller (free() it); b becomes empty. NULL if nothing was appended. */
char *wx_buf_steal(struct wx_buf *b);

/* A WeChat-style error carried as data: errcode plus the errmsg as it would be sent. */
struct wx_error {
    int errcode;
    char errmsg[256];
};

#ifdef __cplusplus
}
#endif
#endif
