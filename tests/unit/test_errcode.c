/*
 * test_errcode.c — unit tests for lib/errcode.c: the rid format (three groups of eight lowercase
 * hex digits, the first being the request time), the errmsg wording per endpoint family
 * (", rid:" for /sns, " rid:" for /cgi-bin), and wx_error_json producing valid JSON.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include <wxauth/wxauth.h>

#include "html.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int setup(void **state)
{
    (void)state;
    return wx_init() == WX_OK ? 0 : -1;
}

/* 1 when s is exactly "xxxxxxxx-xxxxxxxx-xxxxxxxx" in lowercase hex. */
static int rid_shaped(const char *s)
{
    if (strlen(s) != 26)
        return 0;
    for (int i = 0; i < 26; i++) {
        char c = s[i];
        if (i == 8 || i == 17) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

struct rid_case {
    int64_t now;
    const char *first;
};

static const struct rid_case rid_cases[] = {
    {0, "00000000"},          {1, "00000001"},         {255, "000000ff"},
    {1700000000, "6553f100"}, {0x5f5e100, "05f5e100"}, {0xabcdef12, "abcdef12"},
    {0xffffffff, "ffffffff"},
};

static void test_rid_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(rid_cases); i++) {
        char rid[27];
        memset(rid, 'Z', sizeof rid);
        wx_rid(rid, rid_cases[i].now);
        assert_int_equal(rid[26], '\0');
        if (!rid_shaped(rid))
            fail_msg("case %zu: rid \"%s\" is not 3 groups of 8 lowercase hex", i, rid);
        assert_memory_equal(rid, rid_cases[i].first, 8);
    }
}

/* The two random groups change between calls (2^-64 chance of a false failure). */
static void test_rid_random(void **state)
{
    (void)state;
    char a[27], b[27];
    wx_rid(a, 1700000000);
    wx_rid(b, 1700000000);
    assert_memory_equal(a, b, 9);
    assert_string_not_equal(a + 9, b + 9);
}

struct msg_case {
    int errcode;
    enum wx_api_family family;
    const char *prefix; /* errmsg up to and including "rid: " */
};

static const struct msg_case msg_cases[] = {
    {WX_EC_INVALID_CODE, WX_API_SNS, "invalid code, rid: "},
    {WX_EC_CODE_USED, WX_API_SNS, "code been used, rid: "},
    {WX_EC_INVALID_SECRET, WX_API_SNS, "invalid appsecret, rid: "},
    {WX_EC_SECRET_MISSING, WX_API_SNS, "appsecret missing, rid: "},
    {WX_EC_APPID_MISSING, WX_API_SNS, "appid missing, rid: "},
    {WX_EC_CODE_MISSING, WX_API_SNS, "missing code, rid: "},
    {WX_EC_INVALID_GRANT_TYPE, WX_API_SNS, "invalid grant_type, rid: "},
    {WX_EC_INVALID_APPID, WX_API_SNS, "invalid appid, rid: "},
    {WX_EC_INVALID_REFRESH, WX_API_SNS, "invalid refresh_token, rid: "},
    {WX_EC_REFRESH_EXPIRED, WX_API_SNS, "refresh_token expired, rid: "},
    {WX_EC_API_UNAUTHORIZED, WX_API_SNS, "api unauthorized, rid: "},
    {WX_EC_INVALID_OPENID, WX_API_SNS, "invalid openid, rid: "},
    {WX_EC_SYSTEM, WX_API_SNS, "system error, rid: "},
    {WX_EC_INVALID_APPID, WX_API_CGI, "invalid appid rid: "},
    {WX_EC_INVALID_CODE, WX_API_CGI, "invalid code rid: "},
    {WX_EC_SYSTEM, WX_API_CGI, "system error rid: "},
    {WX_EC_INVALID_CREDENTIAL, WX_API_SNS,
     "invalid credential, access_token is invalid or not latest, rid: "},
    {WX_EC_INVALID_CREDENTIAL, WX_API_CGI,
     "invalid credential, access_token is invalid or not latest, could get access_token by "
     "getStableAccessToken, more details at https://mmbizurl.cn/s/JtxxFh33r rid: "},
    {12345, WX_API_SNS, "system error, rid: "}, /* unknown code: the generic message */
};

static void test_error_set_table(void **state)
{
    (void)state;
    const int64_t now = 1700000000;
    for (size_t i = 0; i < NELEM(msg_cases); i++) {
        const struct msg_case *c = &msg_cases[i];
        struct wx_error e;
        wx_error_set(&e, c->errcode, c->family, now);
        assert_int_equal(e.errcode, c->errcode);
        size_t p = strlen(c->prefix);
        if (strncmp(e.errmsg, c->prefix, p) != 0)
            fail_msg("case %zu: errmsg \"%s\", want prefix \"%s\"", i, e.errmsg, c->prefix);
        assert_true(rid_shaped(e.errmsg + p));
        assert_memory_equal(e.errmsg + p, "6553f100", 8);
        if (c->family == WX_API_CGI)
            assert_null(strstr(e.errmsg, ", rid:"));
    }
}

/* Every known errcode, both families: the JSON body parses and holds exactly the two keys. */
static void test_error_json_all(void **state)
{
    (void)state;
    size_t n = 0;
    const struct wx_errcode_info *all = wx_errcode_all(&n);
    assert_true(n >= 30);
    static const enum wx_api_family fams[] = {WX_API_SNS, WX_API_CGI};
    for (size_t i = 0; i <= n; i++) {
        int code = i < n ? all[i].errcode : 99999; /* plus one unknown code */
        for (size_t f = 0; f < NELEM(fams); f++) {
            struct wx_buf b;
            wx_buf_init(&b, WX_MAX_JSON_RESP);
            assert_int_equal(wx_error_json(&b, code, fams[f], 1700000000), WX_OK);
            json_error_t jerr;
            json_t *j = json_loadb(b.ptr, b.len, JSON_REJECT_DUPLICATES, &jerr);
            if (!j)
                fail_msg("errcode %d: invalid JSON \"%s\": %s", code, b.ptr, jerr.text);
            assert_true(json_is_object(j));
            assert_int_equal(json_object_size(j), 2);
            json_t *ec = json_object_get(j, "errcode");
            json_t *em = json_object_get(j, "errmsg");
            assert_true(json_is_integer(ec));
            assert_int_equal(json_integer_value(ec), code);
            assert_true(json_is_string(em));
            const char *msg = json_string_value(em);
            char want[300];
            snprintf(want, sizeof want, "%s%s rid: ", wx_errcode_msg(code, fams[f]),
                     fams[f] == WX_API_SNS ? "," : "");
            assert_int_equal(strncmp(msg, want, strlen(want)), 0);
            assert_true(rid_shaped(msg + strlen(want)));
            json_decref(j);
            wx_buf_free(&b);
        }
    }
}

static void test_error_json_cap(void **state)
{
    (void)state;
    struct wx_buf b;
    wx_buf_init(&b, 20);
    assert_int_equal(wx_error_json(&b, WX_EC_INVALID_CODE, WX_API_SNS, 0), WX_ERR_LIMIT);
    assert_int_equal(b.len, 0);
    wx_buf_free(&b);
}

/* The table: unique codes, non-empty texts, valid UTF-8, JSON-safe ASCII errmsgs. */
static void test_table(void **state)
{
    (void)state;
    size_t n = 0;
    const struct wx_errcode_info *all = wx_errcode_all(&n);
    for (size_t i = 0; i < n; i++) {
        const struct wx_errcode_info *e = &all[i];
        for (size_t j = i + 1; j < n; j++)
            assert_int_not_equal(e->errcode, all[j].errcode);
        assert_ptr_equal(wx_errcode_explain(e->errcode), e);
        assert_true(strlen(e->errmsg) > 0);
        assert_true(strlen(e->zh) > 0);
        for (const char *p = e->errmsg; *p; p++)
            assert_true(*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\');
        assert_true(wx_utf8_valid(e->zh, strlen(e->zh)));
        assert_true(wx_utf8_valid(e->hint_zh, strlen(e->hint_zh)));
        assert_true(wx_utf8_valid(e->hint_en, strlen(e->hint_en)));
        for (size_t f = 0; f < 2; f++) {
            const char *m = wx_errcode_msg(e->errcode, (enum wx_api_family)f);
            for (const char *p = m; *p; p++)
                assert_true(*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\');
        }
    }
    assert_null(wx_errcode_explain(12345));
    assert_string_equal(wx_errcode_msg(12345, WX_API_SNS), "system error");
    assert_string_equal(wx_errcode_explain(WX_EC_CODE_USED)->errmsg, "code been used");
    assert_string_equal(wx_errcode_explain(WX_EC_SYSTEM)->errmsg, "system error");
    assert_string_equal(wx_errcode_explain(WX_EC_MINUTE_QUOTA)->errmsg,
                        "api minute-quota reach limit, must slower, retry next minute");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rid_table),       cmocka_unit_test(test_rid_random),
        cmocka_unit_test(test_error_set_table), cmocka_unit_test(test_error_json_all),
        cmocka_unit_test(test_error_json_cap),  cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
