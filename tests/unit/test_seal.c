/*
 * test_seal.c — unit tests for lib/seal.c: sealed records round-trip; any tampering,
 * truncation, extension, wrong label or wrong key is refused; limits are enforced.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <wxauth/wxauth.h>

#include "seal.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define B64URL   "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"

static unsigned char key[32], key2[32];

static int setup(void **state)
{
    (void)state;
    if (wx_init() != WX_OK)
        return -1;
    for (int i = 0; i < 32; i++) {
        key[i] = (unsigned char)(0xa0 + i);
        key2[i] = (unsigned char)(0xa0 + i);
    }
    key2[31] ^= 1;
    return 0;
}

/* Seals plain under key/ad into a NUL-terminated heap string. */
static char *seal_str(const unsigned char *k, const char *ad, const void *plain, size_t len)
{
    struct wx_buf b;
    wx_buf_init(&b, 2 * WX_SEAL_MAX_PLAIN);
    assert_int_equal(wx_seal(k, ad, plain, len, &b), WX_OK);
    assert_non_null(b.ptr);
    return wx_buf_steal(&b);
}

static int unseal_str(const unsigned char *k, const char *ad, const char *s, size_t n,
                      unsigned char *out, size_t outmax, size_t *outlen)
{
    return wx_unseal(k, ad, (struct wx_slice){s, n}, out, outmax, outlen);
}

struct rt_case {
    const char *ad;
    const char *plain;
    size_t len; /* (size_t)-1: strlen(plain) */
};

static const struct rt_case rt_cases[] = {
    {"cookie", "", 0},
    {"cookie", "a", (size_t)-1},
    {"cookie", "uid=42;exp=1700000000", (size_t)-1},
    {"ticket", "\0\x01\x02\xff binary", 12},
    {"", "empty label", (size_t)-1},
};

static void test_round_trip_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(rt_cases); i++) {
        const struct rt_case *c = &rt_cases[i];
        size_t len = c->len == (size_t)-1 ? strlen(c->plain) : c->len;
        char *s = seal_str(key, c->ad, c->plain, len);
        assert_true(strspn(s, B64URL) == strlen(s));
        unsigned char out[WX_SEAL_MAX_PLAIN];
        size_t outlen = 9999;
        assert_int_equal(unseal_str(key, c->ad, s, strlen(s), out, sizeof out, &outlen), WX_OK);
        assert_int_equal(outlen, len);
        if (len)
            assert_memory_equal(out, c->plain, len);
        free(s);
    }
}

static void test_round_trip_max(void **state)
{
    (void)state;
    unsigned char plain[WX_SEAL_MAX_PLAIN], out[WX_SEAL_MAX_PLAIN];
    for (size_t i = 0; i < sizeof plain; i++)
        plain[i] = (unsigned char)(i * 31);
    char *s = seal_str(key, "cookie", plain, sizeof plain);
    size_t outlen = 0;
    assert_int_equal(unseal_str(key, "cookie", s, strlen(s), out, sizeof out, &outlen), WX_OK);
    assert_int_equal(outlen, sizeof plain);
    assert_memory_equal(out, plain, sizeof plain);
    /* A plaintext too big for the caller's buffer is refused, not truncated. */
    assert_int_not_equal(unseal_str(key, "cookie", s, strlen(s), out, sizeof out - 1, &outlen),
                         WX_OK);
    free(s);
    /* Over the limit: refused at sealing time. */
    unsigned char big[WX_SEAL_MAX_PLAIN + 1] = {0};
    struct wx_buf b;
    wx_buf_init(&b, 4 * WX_SEAL_MAX_PLAIN);
    assert_int_equal(wx_seal(key, "cookie", big, sizeof big, &b), WX_ERR_LIMIT);
    assert_int_equal(b.len, 0);
    wx_buf_free(&b);
}

/* Random nonces: sealing the same record twice gives two different strings. */
static void test_nonce_fresh(void **state)
{
    (void)state;
    char *a = seal_str(key, "cookie", "same", 4);
    char *b = seal_str(key, "cookie", "same", 4);
    assert_string_not_equal(a, b);
    free(a);
    free(b);
}

/* Changing any one character to any other base64url character is refused. */
static void test_tamper(void **state)
{
    (void)state;
    char *s = seal_str(key, "cookie", "uid=42", 6);
    size_t n = strlen(s);
    unsigned char out[WX_SEAL_MAX_PLAIN];
    size_t outlen;
    for (size_t pos = 0; pos < n; pos++) {
        for (const char *a = B64URL; *a; a++) {
            if (*a == s[pos])
                continue;
            char *t = strdup(s);
            t[pos] = *a;
            int rc = unseal_str(key, "cookie", t, n, out, sizeof out, &outlen);
            if (rc != WX_ERR_CRYPTO && rc != WX_ERR_SYNTAX)
                fail_msg("tamper at %zu with '%c': rc %d", pos, *a, rc);
            free(t);
        }
    }
    free(s);
}

/* Every truncation is refused; cutting whole base64 quanta decodes but fails authentication. */
static void test_truncate_and_extend(void **state)
{
    (void)state;
    char *s = seal_str(key, "cookie", "uid=42;role=admin", 17);
    size_t n = strlen(s);
    unsigned char out[WX_SEAL_MAX_PLAIN];
    size_t outlen;
    for (size_t cut = 0; cut < n; cut++) {
        int rc = unseal_str(key, "cookie", s, cut, out, sizeof out, &outlen);
        if (rc == WX_OK)
            fail_msg("truncated to %zu of %zu accepted", cut, n);
    }
    assert_int_equal(unseal_str(key, "cookie", s, n - 4, out, sizeof out, &outlen), WX_ERR_CRYPTO);
    assert_int_equal(unseal_str(key, "cookie", s + 4, n - 4, out, sizeof out, &outlen),
                     WX_ERR_CRYPTO);
    char *ext = malloc(n + 5);
    memcpy(ext, s, n);
    memcpy(ext + n, "AAAA", 5);
    assert_int_not_equal(unseal_str(key, "cookie", ext, n + 4, out, sizeof out, &outlen), WX_OK);
    free(ext);
    free(s);
}

static void test_wrong_label_and_key(void **state)
{
    (void)state;
    char *s = seal_str(key, "cookie", "uid=42", 6);
    size_t n = strlen(s);
    unsigned char out[WX_SEAL_MAX_PLAIN];
    size_t outlen;
    static const char *const labels[] = {"ticket", "Cookie", "cookie ", "cooki", ""};
    for (size_t i = 0; i < NELEM(labels); i++)
        assert_int_equal(unseal_str(key, labels[i], s, n, out, sizeof out, &outlen), WX_ERR_CRYPTO);
    assert_int_equal(unseal_str(key2, "cookie", s, n, out, sizeof out, &outlen), WX_ERR_CRYPTO);
    assert_int_equal(unseal_str(key, "cookie", s, n, out, sizeof out, &outlen), WX_OK);
    free(s);
}

struct garbage_case {
    const char *s;
    int rc;
};

static const struct garbage_case garbage_cases[] = {
    {"", WX_ERR_CRYPTO},
    {"AAAA", WX_ERR_CRYPTO},
    {"not base64!", WX_ERR_SYNTAX},
    {"AAAA====", WX_ERR_SYNTAX},
    {"AA+/AAAA", WX_ERR_SYNTAX},
    {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
     WX_ERR_CRYPTO},
};

static void test_garbage(void **state)
{
    (void)state;
    unsigned char out[WX_SEAL_MAX_PLAIN];
    size_t outlen;
    for (size_t i = 0; i < NELEM(garbage_cases); i++) {
        const char *s = garbage_cases[i].s;
        int rc = unseal_str(key, "cookie", s, strlen(s), out, sizeof out, &outlen);
        if (rc != garbage_cases[i].rc)
            fail_msg("case %zu: rc %d, want %d", i, rc, garbage_cases[i].rc);
    }
    /* An oversized sealed string is refused before decoding. */
    size_t n = WX_SEAL_MAX_PLAIN * 4 / 3 + 200;
    char *big = malloc(n + 1);
    memset(big, 'A', n);
    big[n] = '\0';
    assert_int_equal(unseal_str(key, "cookie", big, n, out, sizeof out, &outlen), WX_ERR_LIMIT);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_table),
        cmocka_unit_test(test_round_trip_max),
        cmocka_unit_test(test_nonce_fresh),
        cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_truncate_and_extend),
        cmocka_unit_test(test_wrong_label_and_key),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
