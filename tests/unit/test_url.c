/*
 * test_url.c — unit tests for lib/url.c: percent-decoding and -encoding, and the query/form
 * parser with its limits (WX_MAX_PARAMS, WX_MAX_PARAM, max_input), duplicate counting, bad
 * escapes, %00 and '+' handling. Every parser is driven by an {input, expected} case table.
 */
#include <dlfcn.h>
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <wxauth/wxauth.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- wx_pct_decode ---------------------------------------------------------------------- */

struct decode_case {
    const char *in;
    size_t in_len; /* 0: strlen(in) */
    int plus_space;
    int rc;
    const char *out; /* expected when rc == WX_OK */
    size_t out_len;  /* 0: strlen(out) */
};

static const struct decode_case decode_cases[] = {
    {"", 0, 0, WX_OK, "", 0},
    {"abc", 0, 0, WX_OK, "abc", 0},
    {"a%20b", 0, 0, WX_OK, "a b", 0},
    {"%41%42", 0, 0, WX_OK, "AB", 0},
    {"%4a%4A", 0, 0, WX_OK, "JJ", 0},
    {"%e4%BD%a0", 0, 0, WX_OK, "\xe4\xbd\xa0", 0},
    {"%ff", 0, 0, WX_OK, "\xff", 0},
    {"%25", 0, 0, WX_OK, "%", 0},
    {"%2541", 0, 0, WX_OK, "%41", 0}, /* decoded exactly once */
    {"a+b", 0, 0, WX_OK, "a+b", 0},
    {"a+b", 0, 1, WX_OK, "a b", 0},
    {"++", 0, 1, WX_OK, "  ", 0},
    {"%2B", 0, 1, WX_OK, "+", 0},
    {"%2b+", 0, 1, WX_OK, "+ ", 0},
    {"%20", 0, 1, WX_OK, " ", 0},
    {"%", 0, 0, WX_ERR_SYNTAX, NULL, 0},
    {"%4", 0, 0, WX_ERR_SYNTAX, NULL, 0},
    {"a%", 0, 0, WX_ERR_SYNTAX, NULL, 0},
    {"a%4", 0, 0, WX_ERR_SYNTAX, NULL, 0},
    {"%%", 0, 0, WX_ERR_SYNTAX, NULL, 0},
    {"%%41", 0, 0, WX_ERR_SYNTAX, NULL, 0},
    {"%G1", 0, 0, WX_ERR_SYNTAX, NULL, 0},
    {"%1G", 0, 0, WX_ERR_SYNTAX, NULL, 0},
    {"%-1", 0, 0, WX_ERR_SYNTAX, NULL, 0},
    {"% 1", 0, 0, WX_ERR_SYNTAX, NULL, 0},
    {"%00", 0, 0, WX_ERR_SYNTAX, NULL, 0},
    {"a%00b", 0, 1, WX_ERR_SYNTAX, NULL, 0},
    {"a\0b", 3, 0, WX_ERR_SYNTAX, NULL, 0}, /* raw NUL */
    {"ok%20%", 0, 0, WX_ERR_SYNTAX, NULL, 0},
};

static void test_pct_decode_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(decode_cases); i++) {
        const struct decode_case *c = &decode_cases[i];
        size_t n = c->in_len ? c->in_len : strlen(c->in);
        char out[64];
        size_t out_len = 12345;
        memset(out, 'Z', sizeof out);
        int rc = wx_pct_decode((struct wx_slice){c->in, n}, c->plus_space, out, &out_len);
        if (rc != c->rc)
            fail_msg("case %zu (\"%s\", plus=%d): rc %d, want %d", i, c->in, c->plus_space, rc,
                     c->rc);
        if (rc != WX_OK)
            continue;
        size_t want_len = c->out_len ? c->out_len : strlen(c->out);
        assert_int_equal(out_len, want_len);
        assert_memory_equal(out, c->out, want_len);
        assert_int_equal(out[out_len], '\0');
    }
}

/* ---- wx_pct_encode ---------------------------------------------------------------------- */

struct encode_case {
    const char *in;
    size_t in_len;
    const char *out;
};

static const struct encode_case encode_cases[] = {
    {"", 0, ""},
    {"abcXYZ019-._~", 0, "abcXYZ019-._~"},
    {" ", 0, "%20"},
    {"+", 0, "%2B"},
    {"%", 0, "%25"},
    {"a&b=c", 0, "a%26b%3Dc"},
    {"/?#[]@", 0, "%2F%3F%23%5B%5D%40"},
    {"\xe4\xbd\xa0", 0, "%E4%BD%A0"},
    {"\x00", 1, "%00"},
    {"\r\n", 0, "%0D%0A"},
    {"\x7f\xff", 0, "%7F%FF"},
    {"https://good.example/cb?x=1", 0, "https%3A%2F%2Fgood.example%2Fcb%3Fx%3D1"},
};

static void test_pct_encode_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(encode_cases); i++) {
        const struct encode_case *c = &encode_cases[i];
        size_t n = c->in_len ? c->in_len : strlen(c->in);
        struct wx_buf b;
        wx_buf_init(&b, 1024);
        assert_int_equal(wx_pct_encode(&b, (struct wx_slice){c->in, n}), WX_OK);
        if (strcmp(b.ptr ? b.ptr : "", c->out) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, b.ptr ? b.ptr : "", c->out);
        wx_buf_free(&b);
    }
}

static void test_pct_encode_cap(void **state)
{
    (void)state;
    struct wx_buf b;
    wx_buf_init(&b, 5);
    assert_int_equal(wx_pct_encode(&b, WX_SLICE_LIT("a ")), WX_OK);
    assert_string_equal(b.ptr, "a%20");
    /* One more escape would need 3 bytes: refused, contents unchanged. */
    assert_int_equal(wx_pct_encode(&b, WX_SLICE_LIT(" ")), WX_ERR_LIMIT);
    assert_string_equal(b.ptr, "a%20");
    wx_buf_free(&b);
}

/* Every byte value except NUL survives encode -> decode, with and without plus_space. */
static void test_pct_round_trip(void **state)
{
    (void)state;
    char all[255];
    for (int i = 0; i < 255; i++)
        all[i] = (char)(i + 1);
    for (int plus = 0; plus <= 1; plus++) {
        struct wx_buf b;
        wx_buf_init(&b, 4096);
        assert_int_equal(wx_pct_encode(&b, (struct wx_slice){all, sizeof all}), WX_OK);
        char out[4096];
        size_t n = 0;
        assert_int_equal(wx_pct_decode((struct wx_slice){b.ptr, b.len}, plus, out, &n), WX_OK);
        assert_int_equal(n, sizeof all);
        assert_memory_equal(out, all, sizeof all);
        wx_buf_free(&b);
    }
}

/* ---- wx_query_parse --------------------------------------------------------------------- */

struct kv {
    const char *k, *v;
};

struct query_case {
    const char *in;
    size_t max_input; /* 0: WX_MAX_URL */
    int rc;
    size_t count;
    size_t ndup;
    struct kv params[4]; /* the first min(count, 4) decoded parameters */
};

static const struct query_case query_cases[] = {
    {"", 0, WX_OK, 0, 0, {{0}}},
    {"a=1", 0, WX_OK, 1, 0, {{"a", "1"}}},
    {"a=1&b=2", 0, WX_OK, 2, 0, {{"a", "1"}, {"b", "2"}}},
    {"a", 0, WX_OK, 1, 0, {{"a", ""}}},
    {"a=", 0, WX_OK, 1, 0, {{"a", ""}}},
    {"=1", 0, WX_OK, 1, 0, {{"", "1"}}},
    {"=", 0, WX_OK, 1, 0, {{"", ""}}},
    {"a=1&&b=2", 0, WX_OK, 2, 0, {{"a", "1"}, {"b", "2"}}},
    {"&a=1&", 0, WX_OK, 1, 0, {{"a", "1"}}},
    {"&&&", 0, WX_OK, 0, 0, {{0}}},
    {"a=1=2", 0, WX_OK, 1, 0, {{"a", "1=2"}}},
    {"a=x+y", 0, WX_OK, 1, 0, {{"a", "x y"}}},
    {"a+b=c", 0, WX_OK, 1, 0, {{"a b", "c"}}},
    {"a=x%2By", 0, WX_OK, 1, 0, {{"a", "x+y"}}},
    {"a%3Db=c", 0, WX_OK, 1, 0, {{"a=b", "c"}}},
    {"a=%26&b=%3D", 0, WX_OK, 2, 0, {{"a", "&"}, {"b", "="}}},
    {"a=%2541", 0, WX_OK, 1, 0, {{"a", "%41"}}},
    {"s=%E4%BD%A0", 0, WX_OK, 1, 0, {{"s", "\xe4\xbd\xa0"}}},
    {"redirect_uri=https%3A%2F%2Fgood.example%2Fcb%3Fx%3D1&state=S",
     0,
     WX_OK,
     2,
     0,
     {{"redirect_uri", "https://good.example/cb?x=1"}, {"state", "S"}}},
    /* duplicates are kept in order and counted */
    {"a=1&a=2", 0, WX_OK, 2, 1, {{"a", "1"}, {"a", "2"}}},
    {"a=1&a=2&a=3", 0, WX_OK, 3, 2, {{"a", "1"}, {"a", "2"}, {"a", "3"}}},
    {"a=1&b=2&a=3&b=4", 0, WX_OK, 4, 2, {{"a", "1"}, {"b", "2"}, {"a", "3"}, {"b", "4"}}},
    {"a=1&A=2", 0, WX_OK, 2, 0, {{"a", "1"}, {"A", "2"}}},
    {"a%3D=1&a%3D=2", 0, WX_OK, 2, 1, {{"a=", "1"}, {"a=", "2"}}},
    /* bad escapes, %00 */
    {"a=%", 0, WX_ERR_SYNTAX, 0, 0, {{0}}},
    {"a=%4", 0, WX_ERR_SYNTAX, 0, 0, {{0}}},
    {"a=%zz", 0, WX_ERR_SYNTAX, 0, 0, {{0}}},
    {"a=1&b=%g0", 0, WX_ERR_SYNTAX, 0, 0, {{0}}},
    {"a=%00", 0, WX_ERR_SYNTAX, 0, 0, {{0}}},
    {"%00=1", 0, WX_ERR_SYNTAX, 0, 0, {{0}}},
    {"%=1", 0, WX_ERR_SYNTAX, 0, 0, {{0}}},
    /* max_input */
    {"a=1", 3, WX_OK, 1, 0, {{"a", "1"}}},
    {"a=1", 2, WX_ERR_LIMIT, 0, 0, {{0}}},
    {"a=1&b=2", 6, WX_ERR_LIMIT, 0, 0, {{0}}},
};

static void test_query_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(query_cases); i++) {
        const struct query_case *c = &query_cases[i];
        struct wx_query q;
        int rc = wx_query_parse(&q, wx_slice_cstr(c->in), c->max_input ? c->max_input : WX_MAX_URL);
        if (rc != c->rc)
            fail_msg("case %zu (\"%s\"): rc %d, want %d", i, c->in, rc, c->rc);
        if (rc != WX_OK) {
            /* On error q is left empty. */
            assert_int_equal(q.count, 0);
            assert_int_equal(q.ndup, 0);
            assert_null(q.arena);
            continue;
        }
        if (q.count != c->count || q.ndup != c->ndup)
            fail_msg("case %zu (\"%s\"): count %zu ndup %zu, want %zu %zu", i, c->in, q.count,
                     q.ndup, c->count, c->ndup);
        for (size_t j = 0; j < q.count && j < 4; j++) {
            const struct wx_param *p = &q.params[j];
            assert_int_equal(p->key_len, strlen(c->params[j].k));
            assert_int_equal(p->value_len, strlen(c->params[j].v));
            assert_string_equal(p->key, c->params[j].k);
            assert_string_equal(p->value, c->params[j].v);
        }
        wx_query_free(&q);
        assert_null(q.arena);
        assert_int_equal(q.count, 0);
    }
}

static void test_query_get_count(void **state)
{
    (void)state;
    struct wx_query q;
    assert_int_equal(wx_query_parse(&q, WX_SLICE_LIT("a=1&b=&a=2&c"), WX_MAX_URL), WX_OK);
    assert_string_equal(wx_query_get(&q, "a"), "1");
    assert_string_equal(wx_query_get(&q, "b"), "");
    assert_string_equal(wx_query_get(&q, "c"), "");
    assert_null(wx_query_get(&q, "d"));
    assert_null(wx_query_get(&q, "A"));
    assert_null(wx_query_get(&q, ""));
    assert_int_equal(wx_query_count(&q, "a"), 2);
    assert_int_equal(wx_query_count(&q, "b"), 1);
    assert_int_equal(wx_query_count(&q, "d"), 0);
    assert_int_equal(q.ndup, 1);
    wx_query_free(&q);
}

/*
 * free() is interposed here so that a test can see what wx_query_free() leaves in the arena it
 * releases: when the watched block is freed, its bytes are checked for zero first.
 */
static void *watched_block;
static int watched_state; /* 0: not freed yet, 1: freed wiped, 2: freed with data left */

void free(void *p)
{
    static void (*next_free)(void *);
    static int resolving; /* dlsym() may free while it looks free() up: that block is let go */
    if (!next_free) {
        if (resolving)
            return;
        resolving = 1;
        next_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
        resolving = 0;
    }
    if (p && p == watched_block) {
        const unsigned char *b = p;
        size_t n = malloc_usable_size(p), i = 0;
        while (i < n && b[i] == 0)
            i++;
        watched_state = i == n ? 1 : 2;
        watched_block = NULL;
    }
    next_free(p);
}

/* The decoded secret and code must not stay behind in freed memory. */
static void test_query_free_wipes(void **state)
{
    (void)state;
    struct wx_query q;
    assert_int_equal(
        wx_query_parse(&q, WX_SLICE_LIT("appid=wx1&secret=S3cr3tS3cr3t&code=C0de"), WX_MAX_URL),
        WX_OK);
    assert_string_equal(wx_query_get(&q, "secret"), "S3cr3tS3cr3t");
    assert_true(q.arena_size >= strlen("appid=wx1&secret=S3cr3tS3cr3t&code=C0de"));
    watched_block = q.arena;
    watched_state = 0;
    wx_query_free(&q);
    assert_int_equal(watched_state, 1);
    assert_null(q.arena);
    assert_int_equal(q.arena_size, 0);
}

/* Builds "k0=v&k1=v&..." with n parameters. */
static char *many_params(size_t n, const char *value)
{
    struct wx_buf b;
    wx_buf_init(&b, 1 << 20);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(wx_buf_printf(&b, "%sk%zu=%s", i ? "&" : "", i, value), WX_OK);
    return wx_buf_steal(&b);
}

static char *repeat(const char *prefix, const char *unit, size_t n)
{
    struct wx_buf b;
    wx_buf_init(&b, 1 << 22);
    assert_int_equal(wx_buf_puts(&b, prefix), WX_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(wx_buf_puts(&b, unit), WX_OK);
    return wx_buf_steal(&b);
}

struct limit_case {
    const char *what;
    char *(*make)(void);
    size_t max_input;
    int rc;
};

static char *mk_params_max(void)
{
    return many_params(WX_MAX_PARAMS, "v");
}
static char *mk_params_over(void)
{
    return many_params(WX_MAX_PARAMS + 1, "v");
}
static char *mk_params_max_with_empty(void)
{
    char *p = many_params(WX_MAX_PARAMS, "v");
    char *r = repeat(p, "&&", 8); /* empty segments do not count */
    free(p);
    return r;
}
static char *mk_value_max(void)
{
    return repeat("k=", "x", WX_MAX_PARAM);
}
static char *mk_value_over(void)
{
    return repeat("k=", "x", WX_MAX_PARAM + 1);
}
static char *mk_key_max(void)
{
    return repeat("", "k", WX_MAX_PARAM);
}
static char *mk_key_over(void)
{
    return repeat("", "k", WX_MAX_PARAM + 1);
}
static char *mk_escaped_value_max(void)
{
    return repeat("k=", "%41", WX_MAX_PARAM); /* 12288 raw bytes decode to 4096 */
}
static char *mk_escaped_value_over(void)
{
    return repeat("k=", "%41", WX_MAX_PARAM + 1);
}
static char *mk_mixed_value_over(void)
{
    char *p = repeat("k=", "%41", WX_MAX_PARAM - 1);
    char *r = repeat(p, "xx", 1); /* raw under 3 * WX_MAX_PARAM, decoded 4097 */
    free(p);
    return r;
}
static char *mk_one_mib(void)
{
    return repeat("a=", "b", 1 << 20);
}

static const struct limit_case limit_cases[] = {
    {"WX_MAX_PARAMS parameters", mk_params_max, 1 << 20, WX_OK},
    {"WX_MAX_PARAMS + 1 parameters", mk_params_over, 1 << 20, WX_ERR_LIMIT},
    {"WX_MAX_PARAMS with empty segments", mk_params_max_with_empty, 1 << 20, WX_OK},
    {"value of WX_MAX_PARAM", mk_value_max, WX_MAX_BODY, WX_OK},
    {"value of WX_MAX_PARAM + 1", mk_value_over, WX_MAX_BODY, WX_ERR_LIMIT},
    {"key of WX_MAX_PARAM", mk_key_max, WX_MAX_BODY, WX_OK},
    {"key of WX_MAX_PARAM + 1", mk_key_over, WX_MAX_BODY, WX_ERR_LIMIT},
    {"escaped value decoding to WX_MAX_PARAM", mk_escaped_value_max, WX_MAX_BODY, WX_OK},
    {"escaped value decoding to WX_MAX_PARAM + 1", mk_escaped_value_over, WX_MAX_BODY,
     WX_ERR_LIMIT},
    {"mixed value decoding to WX_MAX_PARAM + 1", mk_mixed_value_over, WX_MAX_BODY, WX_ERR_LIMIT},
    {"1 MiB query against WX_MAX_URL", mk_one_mib, WX_MAX_URL, WX_ERR_LIMIT},
};

static void test_query_limits(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(limit_cases); i++) {
        const struct limit_case *c = &limit_cases[i];
        char *in = c->make();
        struct wx_query q;
        int rc = wx_query_parse(&q, wx_slice_cstr(in), c->max_input);
        if (rc != c->rc)
            fail_msg("%s: rc %d, want %d", c->what, rc, c->rc);
        if (rc == WX_OK) {
            assert_true(q.count >= 1 && q.count <= WX_MAX_PARAMS);
            for (size_t j = 0; j < q.count; j++) {
                assert_true(q.params[j].key_len <= WX_MAX_PARAM);
                assert_true(q.params[j].value_len <= WX_MAX_PARAM);
            }
        } else {
            assert_int_equal(q.count, 0);
            assert_null(q.arena);
        }
        wx_query_free(&q);
        free(in);
    }
}

/* The parser honours the explicit length: bytes after input.len are never read. */
static void test_query_explicit_length(void **state)
{
    (void)state;
    const char text[] = "a=1&b=2";
    struct wx_query q;
    assert_int_equal(wx_query_parse(&q, (struct wx_slice){text, 3}, WX_MAX_URL), WX_OK);
    assert_int_equal(q.count, 1);
    assert_null(wx_query_get(&q, "b"));
    wx_query_free(&q);
}

/* ---- wx_state_valid lives in url.c too; its table is in test_redirect.c. ---------------- */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pct_decode_table),      cmocka_unit_test(test_pct_encode_table),
        cmocka_unit_test(test_pct_encode_cap),        cmocka_unit_test(test_pct_round_trip),
        cmocka_unit_test(test_query_table),           cmocka_unit_test(test_query_get_count),
        cmocka_unit_test(test_query_free_wipes),      cmocka_unit_test(test_query_limits),
        cmocka_unit_test(test_query_explicit_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
