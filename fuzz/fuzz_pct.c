/*
 * fuzz_pct.c — libFuzzer driver for wx_pct_decode / wx_pct_encode (lib/url.c).
 * Invariants: decoding never grows, never yields a NUL byte and always NUL-terminates; a
 * successful decode re-encodes and decodes back to itself; and for any input, encode then
 * decode (with and without plus_space) gives the input back exactly, unless the input holds
 * a NUL byte, which decoding must refuse.
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

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Encodes src, checks the encoding's alphabet, decodes it back and compares. */
static void round_trip(const char *src, size_t len)
{
    struct wx_buf b;
    wx_buf_init(&b, 3 * len + 16);
    CHECK(wx_pct_encode(&b, (struct wx_slice){src, len}) == WX_OK);
    CHECK(b.len >= len && b.len <= 3 * len);
    for (size_t i = 0; i < b.len; i++) {
        unsigned char c = (unsigned char)b.ptr[i];
        if (c == '%') {
            CHECK(i + 2 < b.len);
            i += 2;
        } else {
            CHECK(is_unreserved(c));
        }
    }
    int has_nul = len && memchr(src, 0, len) != NULL;
    char *out = malloc(b.len + 1);
    CHECK(out);
    for (int plus = 0; plus <= 1; plus++) {
        size_t n = 0;
        int rc = wx_pct_decode((struct wx_slice){b.ptr ? b.ptr : "", b.len}, plus, out, &n);
        if (has_nul) {
            CHECK(rc == WX_ERR_SYNTAX);
        } else {
            CHECK(rc == WX_OK);
            CHECK(n == len);
            CHECK(len == 0 || memcmp(out, src, len) == 0);
        }
    }
    free(out);
    wx_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char *out = malloc(size + 1);
    CHECK(out);
    for (int plus = 0; plus <= 1; plus++) {
        size_t n = (size_t)-1;
        int rc = wx_pct_decode((struct wx_slice){in, size}, plus, out, &n);
        CHECK(rc == WX_OK || rc == WX_ERR_SYNTAX);
        if (rc != WX_OK)
            continue;
        CHECK(n <= size);
        CHECK(out[n] == '\0');
        CHECK(memchr(out, 0, n) == NULL);
        /* Without plus_space the output length is exactly input minus two per escape. */
        if (!plus) {
            size_t pct = 0;
            for (size_t i = 0; i < size; i++)
                pct += data[i] == '%';
            CHECK(n == size - 2 * pct);
        }
        round_trip(out, n);
    }
    free(out);
    round_trip(in, size);
    return 0;
}
