/*
 * test_html.c — unit tests for lib/html.c: HTML escaping of reflected text (SECURITY.md rule 6)
 * and UTF-8 validation, including overlong forms, surrogates, out-of-range code points,
 * truncated sequences and control characters.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include <wxauth/wxauth.h>

#include "html.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define FFFD     "\xef\xbf\xbd"

struct escape_case {
    const char *in;
    const char *out;
};

static const struct escape_case escape_cases[] = {
    {"", ""},
    {"plain text 123", "plain text 123"},
    {"a&b", "a&amp;b"},
    {"<", "&lt;"},
    {">", "&gt;"},
    {"\"", "&quot;"},
    {"'", "&#39;"},
    {"&amp;", "&amp;amp;"},
    {"<script>alert('x')</script>", "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"},
    {"\" onmouseover=\"x", "&quot; onmouseover=&quot;x"},
    {"' autofocus onfocus='x", "&#39; autofocus onfocus=&#39;x"},
    {"\xe4\xbd\xa0\xe5\xa5\xbd", "\xe4\xbd\xa0\xe5\xa5\xbd"}, /* 你好 unchanged */
    {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},                 /* U+1F600 unchanged */
    {"\xc2\xa9 2024", "\xc2\xa9 2024"},
    /* invalid UTF-8: one U+FFFD per bad byte */
    {"\xff", FFFD},
    {"a\xfe"
     "b",
     "a" FFFD "b"},
    {"\x80", FFFD},
    {"\xc0\xaf", FFFD FFFD},                   /* overlong '/' */
    {"\xc0\xbc", FFFD FFFD},                   /* overlong '<' must not become '<' */
    {"\xe0\x80\xbc", FFFD FFFD FFFD},          /* overlong '<', 3 bytes */
    {"\xed\xa0\x80", FFFD FFFD FFFD},          /* surrogate U+D800 */
    {"\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD}, /* U+110000 */
    {"a\xe4\xbd", "a" FFFD FFFD},              /* truncated */
    {"\xe4<", FFFD "&lt;"},
    {"\xc3"
     "&",
     FFFD "&amp;"},
};

static void test_escape_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(escape_cases); i++) {
        const struct escape_case *c = &escape_cases[i];
        struct wx_buf b;
        wx_buf_init(&b, 4096);
        assert_int_equal(wx_html_escape(&b, c->in), WX_OK);
        const char *got = b.ptr ? b.ptr : "";
        if (strcmp(got, c->out) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, got, c->out);
        /* Nothing that can open a tag or attribute survives, and the output is valid UTF-8. */
        assert_null(strpbrk(got, "<>\"'"));
        assert_true(wx_utf8_valid(got, strlen(got)));
        wx_buf_free(&b);
    }
}

/*
 * Every pair of non-control bytes escapes to valid UTF-8 with no markup characters (controls
 * pass through unchanged and wx_utf8_valid refuses them by design, so they are left out here).
 */
static void test_escape_exhaustive_pairs(void **state)
{
    (void)state;
    for (int a = 0x20; a < 256; a++) {
        for (int c = 0x20; c < 256; c++) {
            if (a == 0x7f || c == 0x7f)
                continue;
            char in[3] = {(char)a, (char)c, 0};
            struct wx_buf b;
            wx_buf_init(&b, 64);
            assert_int_equal(wx_html_escape(&b, in), WX_OK);
            assert_null(strpbrk(b.ptr, "<>\"'"));
            if (!wx_utf8_valid(b.ptr, b.len))
                fail_msg("bytes %02x %02x escaped to invalid UTF-8", a, c);
            wx_buf_free(&b);
        }
    }
}

static void test_escape_cap(void **state)
{
    (void)state;
    struct wx_buf b;
    wx_buf_init(&b, 4);
    assert_int_equal(wx_html_escape(&b, "<"), WX_OK);
    assert_string_equal(b.ptr, "&lt;");
    assert_int_equal(wx_html_escape(&b, "x"), WX_ERR_LIMIT);
    assert_string_equal(b.ptr, "&lt;");
    wx_buf_free(&b);
}

struct utf8_case {
    const char *s;
    size_t len; /* 0: strlen */
    int valid;
};

static const struct utf8_case utf8_cases[] = {
    {"", 0, 1},
    {"abc", 0, 1},
    {"\xe4\xbd\xa0\xe5\xa5\xbd", 0, 1},
    {"\xc2\x80", 0, 1},         /* U+0080, smallest 2-byte */
    {"\xdf\xbf", 0, 1},         /* U+07FF */
    {"\xe0\xa0\x80", 0, 1},     /* U+0800, smallest 3-byte */
    {"\xed\x9f\xbf", 0, 1},     /* U+D7FF, just below the surrogates */
    {"\xee\x80\x80", 0, 1},     /* U+E000, just above */
    {"\xef\xbf\xbf", 0, 1},     /* U+FFFF */
    {"\xf0\x90\x80\x80", 0, 1}, /* U+10000, smallest 4-byte */
    {"\xf4\x8f\xbf\xbf", 0, 1}, /* U+10FFFF, the largest */
    {"\xf0\x9f\x98\x80", 0, 1},
    {"~", 0, 1},
    /* overlong forms */
    {"\xc0\x80", 0, 0},
    {"\xc0\xaf", 0, 0},
    {"\xc1\xbf", 0, 0},
    {"\xe0\x80\x80", 0, 0},
    {"\xe0\x80\xaf", 0, 0},
    {"\xe0\x9f\xbf", 0, 0},
    {"\xf0\x80\x80\x80", 0, 0},
    {"\xf0\x80\x80\xaf", 0, 0},
    {"\xf0\x8f\xbf\xbf", 0, 0},
    /* surrogates */
    {"\xed\xa0\x80", 0, 0},
    {"\xed\xaf\xbf", 0, 0},
    {"\xed\xb0\x80", 0, 0},
    {"\xed\xbf\xbf", 0, 0},
    {"\xed\xa0\xbd\xed\xb8\x80", 0, 0}, /* CESU-8 pair */
    /* beyond U+10FFFF, bytes never used */
    {"\xf4\x90\x80\x80", 0, 0},
    {"\xf5\x80\x80\x80", 0, 0},
    {"\xf8\x88\x80\x80\x80", 0, 0},
    {"\xfe", 0, 0},
    {"\xff", 0, 0},
    /* lone continuation, truncation, bad continuation */
    {"\x80", 0, 0},
    {"\xbf", 0, 0},
    {"\xc2", 0, 0},
    {"\xe4\xbd", 0, 0},
    {"\xf0\x9f\x98", 0, 0},
    {"a\xc2", 0, 0},
    {"\xc2\x41", 0, 0},
    {"\xe4\x41\xa0", 0, 0},
    {"\xe4\xbd\xc0", 0, 0},
    /* NUL and control characters */
    {"a\0b", 3, 0},
    {"\0", 1, 0},
    {"\x01", 0, 0},
    {"\t", 0, 0},
    {"\n", 0, 0},
    {"\x1f", 0, 0},
    {"\x7f", 0, 0},
};

static void test_utf8_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(utf8_cases); i++) {
        const struct utf8_case *c = &utf8_cases[i];
        size_t n = c->len ? c->len : strlen(c->s);
        int v = wx_utf8_valid(c->s, n);
        if (!!v != c->valid)
            fail_msg("case %zu: valid=%d, want %d", i, v, c->valid);
    }
}

/* The length is honoured: a valid prefix of an invalid string is valid, and vice versa. */
static void test_utf8_length(void **state)
{
    (void)state;
    const char s[] = "ab\xe4\xbd\xa0";
    assert_true(wx_utf8_valid(s, 2));
    assert_false(wx_utf8_valid(s, 3));
    assert_false(wx_utf8_valid(s, 4));
    assert_true(wx_utf8_valid(s, 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_table), cmocka_unit_test(test_escape_exhaustive_pairs),
        cmocka_unit_test(test_escape_cap),   cmocka_unit_test(test_utf8_table),
        cmocka_unit_test(test_utf8_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
