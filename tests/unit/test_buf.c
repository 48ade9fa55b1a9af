/*
 * test_buf.c — unit tests for lib/buf.c: the capped growable buffer (the cap is enforced by
 * every append path and an overflow leaves the contents unchanged), slices and wx_strerror.
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

/* One step of an append sequence: which call, its argument, and the rc it must return. */
enum op { OP_APPEND, OP_PUTS, OP_PRINTF, OP_RESET, OP_END };

struct step {
    enum op op;
    const char *arg;
    int rc;
};

struct seq_case {
    size_t max;
    struct step steps[6];
    const char *final; /* contents after the sequence; NULL: ptr stays NULL */
};

static const struct seq_case seq_cases[] = {
    {8, {{OP_END, NULL, 0}}, NULL},
    {8, {{OP_APPEND, "", WX_OK}, {OP_END, NULL, 0}}, ""},
    {8, {{OP_APPEND, "abcd", WX_OK}, {OP_APPEND, "efgh", WX_OK}, {OP_END, NULL, 0}}, "abcdefgh"},
    {8,
     {{OP_APPEND, "abcdefgh", WX_OK}, {OP_APPEND, "i", WX_ERR_LIMIT}, {OP_END, NULL, 0}},
     "abcdefgh"},
    {8, {{OP_APPEND, "abcdefghi", WX_ERR_LIMIT}, {OP_END, NULL, 0}}, NULL},
    {8,
     {{OP_PUTS, "abc", WX_OK},
      {OP_PUTS, "defghi", WX_ERR_LIMIT},
      {OP_PUTS, "de", WX_OK},
      {OP_END, NULL, 0}},
     "abcde"},
    {8,
     {{OP_PRINTF, "12345", WX_OK}, {OP_PRINTF, "6789", WX_ERR_LIMIT}, {OP_END, NULL, 0}},
     "12345"},
    {8, {{OP_PRINTF, "123456789", WX_ERR_LIMIT}, {OP_PUTS, "x", WX_OK}, {OP_END, NULL, 0}}, "x"},
    {8,
     {{OP_PUTS, "abcdefgh", WX_OK},
      {OP_RESET, NULL, WX_OK},
      {OP_PUTS, "12345678", WX_OK},
      {OP_PUTS, "9", WX_ERR_LIMIT},
      {OP_END, NULL, 0}},
     "12345678"},
    {0, {{OP_APPEND, "", WX_OK}, {OP_APPEND, "a", WX_ERR_LIMIT}, {OP_END, NULL, 0}}, ""},
    {1, {{OP_PUTS, "a", WX_OK}, {OP_PRINTF, "b", WX_ERR_LIMIT}, {OP_END, NULL, 0}}, "a"},
    {300,
     {{OP_PUTS, "0123456789012345678901234567890123456789", WX_OK}, {OP_END, NULL, 0}},
     "0123456789012345678901234567890123456789"},
};

static void test_sequences(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(seq_cases); i++) {
        const struct seq_case *c = &seq_cases[i];
        struct wx_buf b;
        wx_buf_init(&b, c->max);
        assert_null(b.ptr);
        assert_int_equal(b.len, 0);
        for (const struct step *s = c->steps; s->op != OP_END; s++) {
            char before[512] = "";
            size_t before_len = b.len;
            if (b.ptr)
                memcpy(before, b.ptr, b.len + 1);
            int rc = WX_OK;
            switch (s->op) {
            case OP_APPEND:
                rc = wx_buf_append(&b, s->arg, strlen(s->arg));
                break;
            case OP_PUTS:
                rc = wx_buf_puts(&b, s->arg);
                break;
            case OP_PRINTF:
                rc = wx_buf_printf(&b, "%s", s->arg);
                break;
            case OP_RESET:
                wx_buf_reset(&b);
                break;
            case OP_END:
                break;
            }
            if (rc != s->rc)
                fail_msg("case %zu step %zu: rc %d, want %d", i, (size_t)(s - c->steps), rc, s->rc);
            if (rc != WX_OK) {
                /* Overflow leaves the contents unchanged. */
                assert_int_equal(b.len, before_len);
                if (b.ptr)
                    assert_memory_equal(b.ptr, before, before_len + 1);
            }
            assert_true(b.len <= b.max);
            if (b.ptr) {
                assert_int_equal(b.ptr[b.len], '\0');
                assert_true(b.cap <= b.max + 1);
            }
        }
        if (!c->final) {
            assert_null(b.ptr);
        } else {
            assert_non_null(b.ptr);
            assert_int_equal(b.len, strlen(c->final));
            assert_string_equal(b.ptr, c->final);
        }
        wx_buf_free(&b);
        assert_null(b.ptr);
        assert_int_equal(b.max, c->max);
    }
}

/* Growth across many reallocations keeps every byte and stops exactly at max. */
static void test_growth_to_cap(void **state)
{
    (void)state;
    const size_t max = 100000;
    struct wx_buf b;
    wx_buf_init(&b, max);
    for (size_t i = 0; i < max; i++) {
        char c = (char)('a' + i % 26);
        assert_int_equal(wx_buf_append(&b, &c, 1), WX_OK);
    }
    assert_int_equal(b.len, max);
    assert_int_equal(wx_buf_append(&b, "z", 1), WX_ERR_LIMIT);
    assert_int_equal(wx_buf_printf(&b, "%d", 1), WX_ERR_LIMIT);
    assert_int_equal(wx_buf_append(&b, "", 0), WX_OK);
    assert_int_equal(b.len, max);
    for (size_t i = 0; i < max; i++)
        if (b.ptr[i] != (char)('a' + i % 26))
            fail_msg("byte %zu changed", i);
    assert_int_equal(b.ptr[max], '\0');
    wx_buf_free(&b);
}

/* A huge length cannot wrap the size check. */
static void test_no_overflow(void **state)
{
    (void)state;
    struct wx_buf b;
    wx_buf_init(&b, 16);
    assert_int_equal(wx_buf_puts(&b, "abc"), WX_OK);
    assert_int_equal(wx_buf_append(&b, "x", SIZE_MAX), WX_ERR_LIMIT);
    assert_int_equal(wx_buf_append(&b, "x", SIZE_MAX - 2), WX_ERR_LIMIT);
    assert_string_equal(b.ptr, "abc");
    wx_buf_free(&b);
}

static void test_printf_formats(void **state)
{
    (void)state;
    struct wx_buf b;
    wx_buf_init(&b, 256);
    assert_int_equal(wx_buf_printf(&b, "%d-%s-%05.1f-%x", -42, "str", 3.14159, 255u), WX_OK);
    assert_string_equal(b.ptr, "-42-str-003.1-ff");
    assert_int_equal(wx_buf_printf(&b, "%s", ""), WX_OK);
    assert_string_equal(b.ptr, "-42-str-003.1-ff");
    wx_buf_free(&b);
}

static void test_free_reuse_steal(void **state)
{
    (void)state;
    struct wx_buf b;
    wx_buf_init(&b, 4);
    assert_null(wx_buf_steal(&b));
    assert_int_equal(wx_buf_puts(&b, "abcd"), WX_OK);
    wx_buf_free(&b);
    assert_null(b.ptr);
    assert_int_equal(b.len, 0);
    /* Reusable with the same max after free. */
    assert_int_equal(wx_buf_puts(&b, "abcde"), WX_ERR_LIMIT);
    assert_int_equal(wx_buf_puts(&b, "wxyz"), WX_OK);
    char *s = wx_buf_steal(&b);
    assert_string_equal(s, "wxyz");
    assert_null(b.ptr);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    free(s);
    /* reset keeps storage and max */
    assert_int_equal(wx_buf_puts(&b, "ab"), WX_OK);
    wx_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.ptr, "");
    assert_int_equal(wx_buf_puts(&b, "abcd"), WX_OK);
    assert_int_equal(wx_buf_puts(&b, "e"), WX_ERR_LIMIT);
    wx_buf_free(&b);
}

static void test_slices(void **state)
{
    (void)state;
    struct wx_slice s = wx_slice_cstr("hello");
    assert_int_equal(s.len, 5);
    assert_true(wx_slice_eq(s, "hello"));
    assert_false(wx_slice_eq(s, "hell"));
    assert_false(wx_slice_eq(s, "hello!"));
    assert_false(wx_slice_eq(s, "HELLO"));
    struct wx_slice n = wx_slice_cstr(NULL);
    assert_int_equal(n.len, 0);
    assert_true(wx_slice_eq(n, ""));
    struct wx_slice lit = WX_SLICE_LIT("ab\0c");
    assert_int_equal(lit.len, 4);
    assert_false(wx_slice_eq(lit, "ab"));
    struct wx_slice part = {"abcdef", 3};
    assert_true(wx_slice_eq(part, "abc"));
}

static void test_strerror(void **state)
{
    (void)state;
    for (int e = WX_OK; e <= WX_ERR_CRYPTO; e++) {
        const char *s = wx_strerror(e);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown error");
        for (int f = WX_OK; f < e; f++)
            assert_string_not_equal(s, wx_strerror(f));
    }
    assert_string_equal(wx_strerror(WX_ERR_LIMIT), "input exceeds a limit");
    assert_string_equal(wx_strerror(-1), "unknown error");
    assert_string_equal(wx_strerror(1000), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequences),        cmocka_unit_test(test_growth_to_cap),
        cmocka_unit_test(test_no_overflow),      cmocka_unit_test(test_printf_formats),
        cmocka_unit_test(test_free_reuse_steal), cmocka_unit_test(test_slices),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
