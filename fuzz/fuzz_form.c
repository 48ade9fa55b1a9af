/*
 * fuzz_form.c — libFuzzer driver for wx_query_parse on application/x-www-form-urlencoded
 * bodies (limit WX_MAX_BODY, '+' is a space). The driver carries its own small reference
 * decoder and checks the library against it segment by segment: same accept/refuse decision
 * (syntax), same count, same decoded keys and values, same limit errors. Also: input over
 * WX_MAX_BODY is WX_ERR_LIMIT and a refused body leaves the query empty.
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

static int hexv(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (unsigned char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Reference form decoding of s[0..n) into out; -1 on a bad escape or a NUL. */
static long ref_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (n - i < 3 || hexv((unsigned char)s[i + 1]) < 0 || hexv((unsigned char)s[i + 2]) < 0)
                return -1;
            c = (unsigned char)(hexv((unsigned char)s[i + 1]) * 16 + hexv((unsigned char)s[i + 2]));
            i += 2;
        }
        if (c == 0)
            return -1;
        out[o++] = (char)c;
    }
    return (long)o;
}

struct ref_param {
    long klen, vlen;
    char *k, *v;
};

/*
 * The expected outcome: WX_OK with params filled, or the first error in segment order
 * (a syntax error or a limit in an earlier segment wins over anything later).
 */
static int ref_parse(const char *s, size_t n, struct ref_param *ps, size_t *count, char *scratch)
{
    size_t start = 0, c = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '&')
            continue;
        size_t len = i - start;
        const char *seg = s + start;
        start = i + 1;
        if (!len)
            continue;
        const char *eq = memchr(seg, '=', len);
        size_t kl = eq ? (size_t)(eq - seg) : len, vl = eq ? len - kl - 1 : 0;
        if (kl > 3 * WX_MAX_PARAM || vl > 3 * WX_MAX_PARAM)
            return WX_ERR_LIMIT;
        if (c == WX_MAX_PARAMS)
            return WX_ERR_LIMIT;
        struct ref_param *p = &ps[c];
        p->k = scratch;
        p->klen = ref_decode(seg, kl, p->k);
        if (p->klen < 0)
            return WX_ERR_SYNTAX;
        p->v = p->k + p->klen;
        p->vlen = ref_decode(eq ? eq + 1 : seg + len, vl, p->v);
        if (p->vlen < 0)
            return WX_ERR_SYNTAX;
        scratch = p->v + p->vlen;
        if (p->klen > WX_MAX_PARAM || p->vlen > WX_MAX_PARAM)
            return WX_ERR_LIMIT;
        c++;
    }
    *count = c;
    return WX_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct wx_query q;
    int rc = wx_query_parse(&q, (struct wx_slice){in, size}, WX_MAX_BODY);
    if (size > WX_MAX_BODY) {
        CHECK(rc == WX_ERR_LIMIT);
        CHECK(q.count == 0 && q.arena == NULL);
        return 0;
    }
    struct ref_param ps[WX_MAX_PARAMS];
    size_t count = 0;
    char *scratch = malloc(size + 1);
    CHECK(scratch);
    int want = ref_parse(in, size, ps, &count, scratch);
    CHECK(rc == want);
    if (rc != WX_OK) {
        CHECK(q.count == 0 && q.ndup == 0 && q.arena == NULL);
        free(scratch);
        return 0;
    }
    CHECK(q.count == count);
    for (size_t i = 0; i < count; i++) {
        const struct wx_param *p = &q.params[i];
        CHECK(p->key_len == (size_t)ps[i].klen && p->value_len == (size_t)ps[i].vlen);
        CHECK(memcmp(p->key, ps[i].k, p->key_len) == 0);
        CHECK(memcmp(p->value, ps[i].v, p->value_len) == 0);
        CHECK(p->key[p->key_len] == '\0' && p->value[p->value_len] == '\0');
        CHECK(!memchr(p->key, '+', p->key_len) || memchr(in, '%', size));
    }
    free(scratch);
    wx_query_free(&q);
    return 0;
}
