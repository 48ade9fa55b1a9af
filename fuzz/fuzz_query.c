/*
 * fuzz_query.c — libFuzzer driver for wx_query_parse on query strings (limit WX_MAX_URL).
 * Invariants: input over the limit is WX_ERR_LIMIT; on error the query is left empty; on
 * success every limit holds, keys and values are NUL-terminated with no NUL inside, count
 * equals the number of non-empty '&'-segments, ndup equals the recomputed duplicate count,
 * wx_query_get/count agree with the array, and re-encoding the parameters and parsing again
 * gives the same parameters (values are decoded exactly once).
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

static size_t segments(const char *s, size_t n)
{
    size_t count = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '&') {
            count += i > start;
            start = i + 1;
        }
    }
    return count;
}

static int same_key(const struct wx_param *a, const struct wx_param *b)
{
    return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

static void check_query(const struct wx_query *q)
{
    CHECK(q->count <= WX_MAX_PARAMS);
    size_t dups = 0;
    for (size_t i = 0; i < q->count; i++) {
        const struct wx_param *p = &q->params[i];
        CHECK(p->key_len <= WX_MAX_PARAM && p->value_len <= WX_MAX_PARAM);
        CHECK(p->key[p->key_len] == '\0' && p->value[p->value_len] == '\0');
        CHECK(strlen(p->key) == p->key_len && strlen(p->value) == p->value_len);
        size_t first = i;
        for (size_t j = 0; j < i; j++) {
            if (same_key(&q->params[j], p)) {
                first = j;
                break;
            }
        }
        dups += first != i;
        CHECK(wx_query_get(q, p->key) == q->params[first].value);
        size_t same = 0;
        for (size_t j = 0; j < q->count; j++)
            same += same_key(&q->params[j], p);
        CHECK(wx_query_count(q, p->key) == same);
    }
    CHECK(q->ndup == dups);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wx_slice in = {(const char *)data, size};
    struct wx_query q;
    int rc = wx_query_parse(&q, in, WX_MAX_URL);
    CHECK(rc == WX_OK || rc == WX_ERR_LIMIT || rc == WX_ERR_SYNTAX);
    if (size > WX_MAX_URL)
        CHECK(rc == WX_ERR_LIMIT);
    if (rc != WX_OK) {
        CHECK(q.count == 0 && q.ndup == 0 && q.arena == NULL);
        return 0;
    }
    CHECK(q.count == segments(in.ptr, size));
    check_query(&q);

    /* Re-encode and parse again: the same parameters come back. */
    struct wx_buf b;
    wx_buf_init(&b, 8 * WX_MAX_URL);
    for (size_t i = 0; i < q.count; i++) {
        const struct wx_param *p = &q.params[i];
        if (i)
            CHECK(wx_buf_append(&b, "&", 1) == WX_OK);
        CHECK(wx_pct_encode(&b, (struct wx_slice){p->key, p->key_len}) == WX_OK);
        CHECK(wx_buf_append(&b, "=", 1) == WX_OK);
        CHECK(wx_pct_encode(&b, (struct wx_slice){p->value, p->value_len}) == WX_OK);
    }
    struct wx_query q2;
    CHECK(wx_query_parse(&q2, (struct wx_slice){b.ptr ? b.ptr : "", b.len}, b.len) == WX_OK);
    /* An empty key with an empty value encodes to "=", still one segment. */
    CHECK(q2.count == q.count && q2.ndup == q.ndup);
    for (size_t i = 0; i < q.count; i++) {
        CHECK(same_key(&q.params[i], &q2.params[i]));
        CHECK(q.params[i].value_len == q2.params[i].value_len);
        CHECK(memcmp(q.params[i].value, q2.params[i].value, q.params[i].value_len) == 0);
    }
    wx_query_free(&q2);
    wx_buf_free(&b);
    wx_query_free(&q);
    CHECK(q.arena == NULL && q.count == 0);
    return 0;
}
