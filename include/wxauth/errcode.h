/*
 * wxauth/errcode.h — WeChat's error codes as data: the errmsg each endpoint family sends, the
 * Chinese meaning, and a fix hint. Also the "rid" suffix that real responses append.
 */
#ifndef WXAUTH_ERRCODE_H
#define WXAUTH_ERRCODE_H

#include <stdint.h>
#include <wxauth/base.h>

#ifdef __cplusplus
extern "C" {
#endif

enum wx_errcode {
    WX_EC_SYSTEM = -1,
    WX_EC_OK = 0,
    /* authorize page (HTML) codes */
    WX_EC_REDIRECT_DOMAIN = 10003,
    WX_EC_BANNED = 10004,
    WX_EC_SCOPE_DENIED = 10005,
    WX_EC_TOO_FREQUENT = 10009,
    WX_EC_SCOPE_EMPTY = 10010,
    WX_EC_REDIRECT_EMPTY = 10011,
    WX_EC_APPID_EMPTY = 10012,
    WX_EC_STATE_EMPTY = 10013,
    WX_EC_OPEN_APPID = 10016,
    /* JSON API codes */
    WX_EC_INVALID_CREDENTIAL = 40001,
    WX_EC_INVALID_GRANT_TYPE = 40002,
    WX_EC_INVALID_OPENID = 40003,
    WX_EC_INVALID_APPID = 40013,
    WX_EC_INVALID_CODE = 40029,
    WX_EC_INVALID_REFRESH = 40030,
    WX_EC_INVALID_URL = 40066,
    WX_EC_INVALID_SECRET = 40125,
    WX_EC_CODE_USED = 40163,
    WX_EC_TOKEN_MISSING = 41001,
    WX_EC_APPID_MISSING = 41002,
    WX_EC_REFRESH_MISSING = 41003,
    WX_EC_SECRET_MISSING = 41004,
    WX_EC_CODE_MISSING = 41008,
    WX_EC_OPENID_MISSING = 41009,
    WX_EC_TOKEN_EXPIRED = 42001,
    WX_EC_REFRESH_EXPIRED = 42002,
    WX_EC_CODE_EXPIRED = 42003,
    WX_EC_REQUIRE_HTTPS = 43003,
    WX_EC_DAILY_QUOTA = 45009,
    WX_EC_MINUTE_QUOTA = 45011,
    WX_EC_API_UNAUTHORIZED = 48001,
    WX_EC_USER_UNAUTHORIZED = 50001,
    WX_EC_USER_LIMITED = 50002,
};

/* Which family of endpoint answers: the errmsg wording and the rid separator differ. */
enum wx_api_family {
    WX_API_SNS, /* /sns/...: "invalid code, rid: ..." */
    WX_API_CGI, /* /cgi-bin/...: "invalid appid rid: ..." (no comma) */
};

struct wx_errcode_info {
    int errcode;
    const char *errmsg;  /* bare errmsg as WeChat sends it (sns wording) */
    const char *zh;      /* official Chinese meaning */
    const char *hint_zh; /* what to do, in Chinese */
    const char *hint_en; /* what to do, in English */
};

/* The table entry for errcode, or NULL when wxauth does not know it. Static storage. */
const struct wx_errcode_info *wx_errcode_explain(int errcode);
/* Every known entry, for listings; *n receives the count. */
const struct wx_errcode_info *wx_errcode_all(size_t *n);

/* The errmsg text an endpoint family sends for errcode (without the rid). Never NULL. */
const char *wx_errcode_msg(int errcode, enum wx_api_family family);

/*
 * Writes a rid "xxxxxxxx-xxxxxxxx-xxxxxxxx" (first group: now as hex Unix seconds, two random
 * groups) into out, which must hold 27 bytes.
 */
void wx_rid(char out[27], int64_t now);

/* Fills e with errcode and the full errmsg (message + ", rid: ..." or " rid: ..."). */
void wx_error_set(struct wx_error *e, int errcode, enum wx_api_family family, int64_t now);

/* Appends the two-key JSON error body {"errcode":N,"errmsg":"..."} to b. */
int wx_error_json(struct wx_buf *b, int errcode, enum wx_api_family family, int64_t now);

#ifdef __cplusplus
}
#endif
#endif
