/*
 * fuzz_response.c — libFuzzer driver for the client's response parsers (wx_parse_token,
 * wx_parse_userinfo, wx_parse_status) on arbitrary bytes, as WeChat (or anything between) might
 * answer. Invariants: the result is one of WX_OK, WX_ERR_INVALID (a WeChat errcode answer,
 * errcode non-zero) or WX_ERR_IO (errcode -1, a message); bodies over WX_MAX_JSON_RESP are
 * WX_ERR_IO; every string field is NUL-terminated inside its buffer with no early NUL in the
 * JSON value; on WX_OK the required fields (access_token, refresh_token, openid, and
 * expires_in > 0 for a token; openid for a userinfo) are non-empty and sex is 0..2; on failure
 * the token is wiped; the three parsers agree on errcode answers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <wxauth/wxauth.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* NUL-terminated within its buffer. */
#define TERMINATED(field) CHECK(memchr((field), '\0', sizeof(field)) != NULL)

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

static void check_err(int rc, const struct wx_error *err)
{
    CHECK(rc == WX_OK || rc == WX_ERR_INVALID || rc == WX_ERR_IO);
    CHECK(memchr(err->errmsg, '\0', sizeof err->errmsg) != NULL);
    if (rc == WX_ERR_INVALID)
        CHECK(err->errcode != 0);
    if (rc == WX_ERR_IO)
        CHECK(err->errcode == -1 && err->errmsg[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copy into an exact-size heap buffer so ASan sees any read past the end. */
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    struct wx_slice body = {copy, size};
    struct wx_error e1, e2, e3;

    struct wx_token t;
    memset(&t, 0x55, sizeof t);
    memset(&e1, 0, sizeof e1);
    int r1 = wx_parse_token(body, &t, &e1);
    check_err(r1, &e1);
    if (size > WX_MAX_JSON_RESP)
        CHECK(r1 == WX_ERR_IO);
    if (r1 == WX_OK) {
        TERMINATED(t.access_token);
        TERMINATED(t.refresh_token);
        TERMINATED(t.openid);
        TERMINATED(t.unionid);
        TERMINATED(t.scope);
        CHECK(t.access_token[0] && t.refresh_token[0] && t.openid[0]);
        CHECK(t.expires_in > 0);
        CHECK(t.is_snapshotuser == 0 || t.is_snapshotuser == 1);
    } else {
        CHECK(all_zero(&t, sizeof t));
    }

    struct wx_userinfo u;
    memset(&u, 0x55, sizeof u);
    memset(&e2, 0, sizeof e2);
    int r2 = wx_parse_userinfo(body, &u, &e2);
    check_err(r2, &e2);
    if (r2 == WX_OK) {
        TERMINATED(u.openid);
        TERMINATED(u.unionid);
        TERMINATED(u.nickname);
        TERMINATED(u.headimgurl);
        TERMINATED(u.province);
        TERMINATED(u.city);
        TERMINATED(u.country);
        CHECK(u.openid[0] != '\0');
        CHECK(u.sex >= 0 && u.sex <= 2);
    } else {
        CHECK(all_zero(&u, sizeof u));
    }

    memset(&e3, 0, sizeof e3);
    int r3 = wx_parse_status(body, &e3);
    check_err(r3, &e3);

    /* An errcode answer is one for all three parsers, with the same errcode and errmsg. */
    if (r1 == WX_ERR_INVALID || r2 == WX_ERR_INVALID || r3 == WX_ERR_INVALID) {
        CHECK(r1 == WX_ERR_INVALID && r2 == WX_ERR_INVALID && r3 == WX_ERR_INVALID);
        CHECK(e1.errcode == e2.errcode && e2.errcode == e3.errcode);
        CHECK(strcmp(e1.errmsg, e2.errmsg) == 0 && strcmp(e2.errmsg, e3.errmsg) == 0);
    }
    free(copy);
    return 0;
}
