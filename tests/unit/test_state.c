/*
 * test_state.c — unit tests for lib/state.c: sealed OAuth state. Round trips with and without a
 * browser binding and a return path; WeChat's alphabet and 128-byte limit at the longest path;
 * path limits and non-relative paths; every single-character tampering, truncation and extension
 * refused; expiry; binding; key rotation; a fresh nonce per seal.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <wxauth/wxauth.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define B62      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#define NOW      INT64_C(1700000000)
#define TTL      600
#define NOBIND   ((struct wx_slice){NULL, 0})

static struct wx_state_key key1, key2, key3;
static struct wx_state_keys set1, set21, set2, set3;
static struct wx_state_key arr1[1], arr21[2], arr2[1], arr3[1];

static int setup(void **state)
{
    (void)state;
    if (wx_init() != WX_OK)
        return -1;
    key1.id = 1;
    key2.id = 2;
    key3.id = 1; /* same id as key1, other bytes: a forger's key */
    for (int i = 0; i < WX_STATE_KEY_LEN; i++) {
        key1.key[i] = (unsigned char)(0x10 + i);
        key2.key[i] = (unsigned char)(0x80 + i);
        key3.key[i] = (unsigned char)(0x10 + i);
    }
    key3.key[0] ^= 0x01;
    arr1[0] = key1;
    arr21[0] = key2;
    arr21[1] = key1;
    arr2[0] = key2;
    arr3[0] = key3;
    set1 = (struct wx_state_keys){arr1, 1};
    set21 = (struct wx_state_keys){arr21, 2};
    set2 = (struct wx_state_keys){arr2, 1};
    set3 = (struct wx_state_keys){arr3, 1};
    return 0;
}

/* A path of n bytes: "/" followed by letters. */
static void make_path(char *buf, size_t n)
{
    buf[0] = '/';
    for (size_t i = 1; i < n; i++)
        buf[i] = (char)('a' + i % 26);
    buf[n] = '\0';
}

static void assert_alphabet(const char *s)
{
    size_t n = strlen(s);
    assert_true(n > 0);
    assert_true(n <= WX_MAX_STATE);
    assert_int_equal(strspn(s, B62), n);
    assert_int_equal(wx_state_valid(wx_slice_cstr(s)), WX_OK);
}

struct rt_case {
    const char *name;
    const char *path;    /* NULL: no path */
    const char *binding; /* NULL: unbound */
};

static const struct rt_case rt_cases[] = {
    {"no path, unbound", NULL, NULL},
    {"empty path, unbound", "", NULL},
    {"root, unbound", "/", NULL},
    {"path with query, unbound", "/orders/42?tab=items&x=%2F", NULL},
    {"no path, bound", NULL, "browser-cookie-0123456789abcdef"},
    {"root, bound", "/", "b"},
    {"path, bound to binary bytes", "/a/b/c", "\x01\x02\xff"},
    {"longest unbound-ish path, bound", "/0123456789012345678901234567890123456789", "cookie"},
};

static void test_round_trip_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(rt_cases); i++) {
        const struct rt_case *c = &rt_cases[i];
        struct wx_slice bind = c->binding ? wx_slice_cstr(c->binding) : NOBIND;
        char out[WX_MAX_STATE + 1];
        struct wx_state sealed, opened;
        print_message("case %zu: %s\n", i, c->name);
        assert_int_equal(wx_state_seal(&set1, c->path, bind, TTL, NOW, out, &sealed), WX_OK);
        assert_alphabet(out);
        assert_int_equal(sealed.expires, NOW + TTL);
        assert_int_equal(sealed.has_binding, c->binding != NULL);
        assert_string_equal(sealed.return_path, c->path ? c->path : "");
        memset(&opened, 0xee, sizeof opened);
        assert_int_equal(wx_state_open(&set1, wx_slice_cstr(out), bind, NOW, &opened), WX_OK);
        assert_int_equal(opened.expires, NOW + TTL);
        assert_int_equal(opened.has_binding, c->binding != NULL);
        assert_string_equal(opened.return_path, c->path ? c->path : "");
        assert_memory_equal(opened.nonce, sealed.nonce, WX_STATE_NONCE_LEN);
        /* Still valid one second before expiry. */
        assert_int_equal(wx_state_open(&set1, wx_slice_cstr(out), bind, NOW + TTL - 1, &opened),
                         WX_OK);
        /* sealed may be NULL */
        assert_int_equal(wx_state_seal(&set1, c->path, bind, TTL, NOW, out, NULL), WX_OK);
        assert_int_equal(wx_state_open(&set1, wx_slice_cstr(out), bind, NOW, &opened), WX_OK);
    }
}

struct len_case {
    int bound;
    size_t path_len;
    int rc;
};

static const struct len_case len_cases[] = {
    {0, WX_STATE_MAX_PATH, WX_OK},
    {0, WX_STATE_MAX_PATH + 1, WX_ERR_LIMIT},
    {0, WX_STATE_MAX_PATH - 8, WX_OK},
    {1, WX_STATE_MAX_PATH - 8, WX_OK},
    {1, WX_STATE_MAX_PATH - 7, WX_ERR_LIMIT},
    {1, WX_STATE_MAX_PATH, WX_ERR_LIMIT},
    {0, 200, WX_ERR_LIMIT},
    {0, 1, WX_OK},
    {1, 1, WX_OK},
};

static void test_lengths(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(len_cases); i++) {
        const struct len_case *c = &len_cases[i];
        char path[256], out[WX_MAX_STATE + 1];
        struct wx_state st;
        struct wx_slice bind = c->bound ? WX_SLICE_LIT("the-browser") : NOBIND;
        make_path(path, c->path_len);
        print_message("case %zu: bound=%d len=%zu\n", i, c->bound, c->path_len);
        assert_int_equal(wx_state_seal(&set1, path, bind, TTL, NOW, out, &st), c->rc);
        if (c->rc != WX_OK)
            continue;
        assert_alphabet(out);
        if (c->path_len == (c->bound ? WX_STATE_MAX_PATH - 8 : WX_STATE_MAX_PATH))
            assert_int_equal(strlen(out), WX_MAX_STATE); /* the longest fills it exactly */
        assert_int_equal(wx_state_open(&set1, wx_slice_cstr(out), bind, NOW, &st), WX_OK);
        assert_string_equal(st.return_path, path);
    }
}

static const char *const bad_paths[] = {
    "http://x",     "https://evil.example/", "//evil", "//",       "/\\evil", "\\\\evil",
    "evil",         "javascript:alert(1)",   " /x",    "/\t/evil", /* browsers drop tabs: "//evil"
                                                                    */
    "/\n/evil",                                                    /* and newlines */
    "/\r\nX: y",                                                   /* header injection */
    "/a b",                                                        /* a space */
    "/a\\b",                                                       /* backslash later on */
    "/\x7f",                                                       /* DEL */
    "/caf\xc3\xa9", /* raw non-ASCII (should be percent-encoded) */
};

static void test_non_relative_paths(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(bad_paths); i++) {
        char out[WX_MAX_STATE + 1] = "untouched";
        print_message("case %zu\n", i);
        assert_int_equal(wx_state_seal(&set1, bad_paths[i], NOBIND, TTL, NOW, out, NULL),
                         WX_ERR_INVALID);
        assert_int_equal(wx_state_seal(&set1, bad_paths[i], WX_SLICE_LIT("b"), TTL, NOW, out, NULL),
                         WX_ERR_INVALID);
    }
}

struct misuse_case {
    const struct wx_state_keys *keys;
    struct wx_slice binding;
    int64_t ttl, now;
    int rc;
};

static void test_seal_misuse(void **state)
{
    (void)state;
    static const struct wx_state_keys none = {NULL, 0};
    const struct misuse_case cases[] = {
        {&none, NOBIND, TTL, NOW, WX_ERR_INVALID},
        {NULL, NOBIND, TTL, NOW, WX_ERR_INVALID},
        {&set1, (struct wx_slice){"", 0}, TTL, NOW, WX_ERR_INVALID}, /* empty binding */
        {&set1, NOBIND, 0, NOW, WX_ERR_INVALID},
        {&set1, NOBIND, -5, NOW, WX_ERR_INVALID},
        {&set1, NOBIND, INT64_MAX, NOW, WX_ERR_INVALID}, /* would overflow */
        {&set1, NOBIND, TTL, -1, WX_ERR_INVALID},
        {&set1, NOBIND, TTL, INT64_C(0xffffffff), WX_ERR_INVALID}, /* past 2106 */
        {&set1, NOBIND, 1, NOW, WX_OK},
    };
    for (size_t i = 0; i < NELEM(cases); i++) {
        char out[WX_MAX_STATE + 1];
        print_message("case %zu\n", i);
        assert_int_equal(wx_state_seal(cases[i].keys, "/", cases[i].binding, cases[i].ttl,
                                       cases[i].now, out, NULL),
                         cases[i].rc);
    }
}

/* Every single-character change, truncation and extension fails to open. */
static void test_tamper(void **state)
{
    (void)state;
    const struct rt_case *cases[] = {&rt_cases[0], &rt_cases[3], &rt_cases[4], &rt_cases[7]};
    for (size_t ci = 0; ci < NELEM(cases); ci++) {
        struct wx_slice bind = cases[ci]->binding ? wx_slice_cstr(cases[ci]->binding) : NOBIND;
        char out[WX_MAX_STATE + 1], t[WX_MAX_STATE + 8];
        struct wx_state st;
        assert_int_equal(wx_state_seal(&set1, cases[ci]->path, bind, TTL, NOW, out, NULL), WX_OK);
        size_t n = strlen(out);
        /* Replace each position by every other base62 digit and by some non-alphabet bytes. */
        for (size_t pos = 0; pos < n; pos++) {
            for (const char *r = B62 "+/-_=%. \x80"; *r; r++) {
                if (*r == out[pos])
                    continue;
                memcpy(t, out, n + 1);
                t[pos] = *r;
                int rc = wx_state_open(&set21, (struct wx_slice){t, n}, bind, NOW, &st);
                if (rc == WX_OK)
                    fail_msg("tampered state opened: case %zu pos %zu char %c", ci, pos, *r);
                assert_true(rc == WX_ERR_CRYPTO || rc == WX_ERR_SYNTAX);
            }
        }
        /* Truncated by 1..n characters (n: the empty state). */
        for (size_t cut = 1; cut <= n; cut++) {
            int rc = wx_state_open(&set21, (struct wx_slice){out, n - cut}, bind, NOW, &st);
            if (rc == WX_OK)
                fail_msg("truncated state opened: case %zu cut %zu", ci, cut);
        }
        /* Extended by 1..12 characters. */
        for (size_t add = 1; add <= 12; add++) {
            memcpy(t, out, n);
            for (size_t j = 0; j < add; j++)
                t[n + j] = B62[(add * 7 + j) % 62];
            t[n + add] = '\0';
            int rc = wx_state_open(&set21, (struct wx_slice){t, n + add}, bind, NOW, &st);
            if (rc == WX_OK)
                fail_msg("extended state opened: case %zu add %zu", ci, add);
        }
        /* Opens untouched. */
        assert_int_equal(wx_state_open(&set21, wx_slice_cstr(out), bind, NOW, &st), WX_OK);
    }
}

struct garbage_case {
    const char *s;
    int rc;
};

static const struct garbage_case garbage_cases[] = {
    {"", WX_ERR_SYNTAX},
    {"a", WX_ERR_SYNTAX},
    {"STATE", WX_ERR_SYNTAX},
    {"0000000000000000000000000000000000000000000000000000000000000000", WX_ERR_CRYPTO},
    {"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", WX_ERR_SYNTAX},
    {"0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "000000000000000000000000000000000000000000000",
     WX_ERR_SYNTAX}, /* 133 characters */
    {"00000000000/0000000000000000000000000000000000000000000000000000", WX_ERR_SYNTAX},
};

static void test_garbage(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(garbage_cases); i++) {
        struct wx_state st;
        print_message("case %zu\n", i);
        assert_int_equal(wx_state_open(&set1, wx_slice_cstr(garbage_cases[i].s), NOBIND, NOW, &st),
                         garbage_cases[i].rc);
    }
    /* A NULL pointer and an empty key set. */
    struct wx_state st;
    static const struct wx_state_keys none = {NULL, 0};
    assert_int_equal(wx_state_open(&set1, NOBIND, NOBIND, NOW, &st), WX_ERR_SYNTAX);
    char out[WX_MAX_STATE + 1];
    assert_int_equal(wx_state_seal(&set1, "/", NOBIND, TTL, NOW, out, NULL), WX_OK);
    assert_int_equal(wx_state_open(&none, wx_slice_cstr(out), NOBIND, NOW, &st), WX_ERR_SYNTAX);
}

struct expiry_case {
    int64_t now;
    int rc;
};

static void test_expiry(void **state)
{
    (void)state;
    const struct expiry_case cases[] = {
        {NOW - 100, WX_OK}, /* a clock behind the sealer's */
        {NOW, WX_OK},
        {NOW + TTL - 1, WX_OK},
        {NOW + TTL, WX_ERR_EXPIRED}, /* now = expires: expired */
        {NOW + TTL + 1, WX_ERR_EXPIRED},
        {NOW + 86400 * 365, WX_ERR_EXPIRED},
    };
    char out[WX_MAX_STATE + 1];
    struct wx_state st;
    assert_int_equal(wx_state_seal(&set1, "/x", NOBIND, TTL, NOW, out, NULL), WX_OK);
    for (size_t i = 0; i < NELEM(cases); i++) {
        print_message("case %zu\n", i);
        assert_int_equal(wx_state_open(&set1, wx_slice_cstr(out), NOBIND, cases[i].now, &st),
                         cases[i].rc);
    }
    /* Expiry is checked even for a bound state opened from the wrong browser. */
    assert_int_equal(wx_state_seal(&set1, "/x", WX_SLICE_LIT("b1"), TTL, NOW, out, NULL), WX_OK);
    assert_int_equal(wx_state_open(&set1, wx_slice_cstr(out), WX_SLICE_LIT("b2"), NOW + TTL, &st),
                     WX_ERR_EXPIRED);
}

struct bind_case {
    const char *seal_with; /* NULL: unbound */
    struct wx_slice open_with;
    int rc;
};

static void test_binding(void **state)
{
    (void)state;
    const struct bind_case cases[] = {
        {"cookie-A", WX_SLICE_LIT("cookie-A"), WX_OK},
        {"cookie-A", WX_SLICE_LIT("cookie-B"), WX_ERR_INVALID},  /* other browser */
        {"cookie-A", WX_SLICE_LIT("cookie-A "), WX_ERR_INVALID}, /* one byte more */
        {"cookie-A", WX_SLICE_LIT("cookie-"), WX_ERR_INVALID},   /* one byte less */
        {"cookie-A", NOBIND, WX_ERR_INVALID},                    /* missing */
        {"cookie-A", (struct wx_slice){"", 0}, WX_ERR_INVALID},  /* empty = missing */
        {NULL, NOBIND, WX_OK},                                   /* unbound, no cookie */
        {NULL, WX_SLICE_LIT("cookie-A"), WX_OK},                 /* unbound opens anywhere */
    };
    for (size_t i = 0; i < NELEM(cases); i++) {
        char out[WX_MAX_STATE + 1];
        struct wx_state st;
        struct wx_slice sb = cases[i].seal_with ? wx_slice_cstr(cases[i].seal_with) : NOBIND;
        print_message("case %zu\n", i);
        assert_int_equal(wx_state_seal(&set1, "/p", sb, TTL, NOW, out, NULL), WX_OK);
        assert_int_equal(wx_state_open(&set1, wx_slice_cstr(out), cases[i].open_with, NOW, &st),
                         cases[i].rc);
    }
}

struct rotation_case {
    const struct wx_state_keys *sealer, *opener;
    int rc;
};

static void test_rotation(void **state)
{
    (void)state;
    const struct rotation_case cases[] = {
        {&set1, &set1, WX_OK},
        {&set1, &set21, WX_OK},        /* old state, new key first */
        {&set1, &set2, WX_ERR_CRYPTO}, /* key 1 retired */
        {&set1, &set3, WX_ERR_CRYPTO}, /* same id, other key bytes */
        {&set21, &set21, WX_OK},       /* new states seal with key 2 */
        {&set21, &set2, WX_OK},
        {&set21, &set1, WX_ERR_CRYPTO}, /* a server not rotated yet */
        {&set3, &set1, WX_ERR_CRYPTO},  /* forged with a guessed key */
    };
    for (size_t i = 0; i < NELEM(cases); i++) {
        char out[WX_MAX_STATE + 1];
        struct wx_state st;
        print_message("case %zu\n", i);
        assert_int_equal(
            wx_state_seal(cases[i].sealer, "/r", WX_SLICE_LIT("b"), TTL, NOW, out, NULL), WX_OK);
        assert_int_equal(
            wx_state_open(cases[i].opener, wx_slice_cstr(out), WX_SLICE_LIT("b"), NOW, &st),
            cases[i].rc);
        if (cases[i].rc == WX_OK)
            assert_string_equal(st.return_path, "/r");
    }
}

static void test_nonce_unique(void **state)
{
    (void)state;
    enum { N = 64 };
    char outs[N][WX_MAX_STATE + 1];
    struct wx_state st[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(wx_state_seal(&set1, "/same", NOBIND, TTL, NOW, outs[i], &st[i]), WX_OK);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) {
            assert_string_not_equal(outs[i], outs[j]);
            assert_memory_not_equal(st[i].nonce, st[j].nonce, WX_STATE_NONCE_LEN);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_table),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_non_relative_paths),
        cmocka_unit_test(test_seal_misuse),
        cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_binding),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_nonce_unique),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
