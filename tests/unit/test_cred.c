/*
 * test_cred.c — unit tests for lib/cred.c: key derivation, credential minting/format/parse for
 * every kind, tamper detection against a small fake store (id -> stored MAC), kind confusion,
 * malformed input, and per-app identifiers (openid/unionid via wx_ident_make/parse).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sodium.h>
#include <string.h>

#include <wxauth/wxauth.h>

#include "cred.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define B62      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#define B64URL   B62 "-_"

static struct wx_keys keys;

static int setup(void **state)
{
    (void)state;
    if (wx_init() != WX_OK)
        return -1;
    unsigned char master[WX_KEY_LEN];
    for (int i = 0; i < WX_KEY_LEN; i++)
        master[i] = (unsigned char)(i * 7 + 1);
    wx_keys_derive(&keys, master);
    return 0;
}

/* ---- a fake store: rows 1..NROWS of one kind, each holding only the MAC ------------------ */

#define NROWS 16

struct fake_store {
    enum wx_cred_kind kind;
    unsigned char mac[NROWS + 1][WX_CRED_MAC];
    char str[NROWS + 1][WX_CRED_MAX];
};

static void store_fill(struct fake_store *s, enum wx_cred_kind kind)
{
    s->kind = kind;
    for (int64_t id = 1; id <= NROWS; id++) {
        struct wx_cred c;
        wx_cred_new(&keys, kind, &c);
        memcpy(s->mac[id], c.mac, WX_CRED_MAC);
        wx_cred_format(kind, &c, id, s->str[id]);
    }
}

/* What a server does with a presented credential: parse, fetch the row, compare the MAC. */
static int store_verify(const struct fake_store *s, enum wx_cred_kind kind, const char *str,
                        int64_t *id_out)
{
    int64_t id = 0;
    unsigned char mac[WX_CRED_MAC];
    if (wx_cred_parse(&keys, kind, wx_slice_cstr(str), &id, mac) != WX_OK)
        return 0;
    if (kind != s->kind || id < 1 || id > NROWS)
        return 0;
    if (sodium_memcmp(mac, s->mac[id], WX_CRED_MAC) != 0)
        return 0;
    *id_out = id;
    return 1;
}

static int only_chars(const char *s, const char *set)
{
    return strspn(s, set) == strlen(s);
}

static const enum wx_cred_kind kinds[] = {WX_CRED_CODE, WX_CRED_ACCESS, WX_CRED_REFRESH,
                                          WX_CRED_BASIC};
static const int64_t ids[] = {1, 2, 42, 1000000, INT64_MAX};

/* ---- round trip ------------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    (void)state;
    for (size_t k = 0; k < NELEM(kinds); k++) {
        for (size_t i = 0; i < NELEM(ids); i++) {
            struct wx_cred c;
            char s[WX_CRED_MAX];
            wx_cred_new(&keys, kinds[k], &c);
            memset(s, 'Z', sizeof s);
            wx_cred_format(kinds[k], &c, ids[i], s);
            assert_true(memchr(s, 0, sizeof s) != NULL);
            if (kinds[k] == WX_CRED_CODE) {
                assert_int_equal(strlen(s), 38);
                assert_true(only_chars(s, B62));
            } else {
                assert_int_equal(strlen(s), 41);
                assert_memory_equal(s, "90_", 3);
                assert_true(only_chars(s + 3, B64URL));
            }
            int64_t id = 0;
            unsigned char mac[WX_CRED_MAC];
            assert_int_equal(wx_cred_parse(&keys, kinds[k], wx_slice_cstr(s), &id, mac), WX_OK);
            assert_int_equal(id, ids[i]);
            assert_memory_equal(mac, c.mac, WX_CRED_MAC);
        }
    }
}

/* Two credentials never share a secret, a MAC or a string. */
static void test_fresh_each_time(void **state)
{
    (void)state;
    for (size_t k = 0; k < NELEM(kinds); k++) {
        struct wx_cred a, b;
        char sa[WX_CRED_MAX], sb[WX_CRED_MAX];
        wx_cred_new(&keys, kinds[k], &a);
        wx_cred_new(&keys, kinds[k], &b);
        assert_memory_not_equal(a.secret, b.secret, WX_CRED_SECRET);
        assert_memory_not_equal(a.mac, b.mac, WX_CRED_MAC);
        wx_cred_format(kinds[k], &a, 7, sa);
        wx_cred_format(kinds[k], &b, 7, sb);
        assert_string_not_equal(sa, sb);
    }
}

/* ---- tamper: any single changed character never verifies --------------------------------- */

static void test_tamper_one_char(void **state)
{
    (void)state;
    for (size_t k = 0; k < NELEM(kinds); k++) {
        struct fake_store st;
        store_fill(&st, kinds[k]);
        const char *alphabet = kinds[k] == WX_CRED_CODE ? B62 : B64URL;
        for (int64_t row = 1; row <= NROWS; row += 5) {
            int64_t id = 0;
            assert_true(store_verify(&st, kinds[k], st.str[row], &id));
            assert_int_equal(id, row);
            size_t n = strlen(st.str[row]);
            for (size_t pos = 0; pos < n; pos++) {
                for (const char *a = alphabet; *a; a++) {
                    if (*a == st.str[row][pos])
                        continue;
                    char t[WX_CRED_MAX];
                    memcpy(t, st.str[row], sizeof t);
                    t[pos] = *a;
                    if (store_verify(&st, kinds[k], t, &id))
                        fail_msg("kind %d row %lld: \"%s\" (pos %zu) verified as row %lld",
                                 (int)kinds[k], (long long)row, t, pos, (long long)id);
                }
            }
        }
    }
}

/* Truncated, extended or re-cased credentials do not verify either. */
static void test_tamper_length(void **state)
{
    (void)state;
    for (size_t k = 0; k < NELEM(kinds); k++) {
        struct fake_store st;
        store_fill(&st, kinds[k]);
        const char *s = st.str[3];
        size_t n = strlen(s);
        int64_t id;
        char t[WX_CRED_MAX + 8];
        for (size_t cut = 0; cut < n; cut++) {
            memcpy(t, s, cut);
            t[cut] = '\0';
            assert_false(store_verify(&st, kinds[k], t, &id));
        }
        memcpy(t, s, n);
        memcpy(t + n, "A", 2);
        assert_false(store_verify(&st, kinds[k], t, &id));
        memcpy(t, "A", 1);
        memcpy(t + 1, s, n + 1);
        assert_false(store_verify(&st, kinds[k], t, &id));
    }
}

/* A credential of one kind is never accepted as another kind. */
static void test_kind_confusion(void **state)
{
    (void)state;
    struct fake_store st[WX_CRED_KINDS];
    for (size_t k = 0; k < NELEM(kinds); k++)
        store_fill(&st[kinds[k]], kinds[k]);
    for (size_t from = 0; from < NELEM(kinds); from++) {
        for (size_t to = 0; to < NELEM(kinds); to++) {
            if (from == to)
                continue;
            for (int64_t row = 1; row <= NROWS; row++) {
                int64_t id;
                /* Presented as kind `to`, checked against the `to` store. */
                if (store_verify(&st[kinds[to]], kinds[to], st[kinds[from]].str[row], &id))
                    fail_msg("kind %d credential accepted as kind %d", (int)kinds[from],
                             (int)kinds[to]);
            }
        }
    }
    /* Same secret, different kind: the MAC differs because the key differs. */
    struct wx_cred c;
    char s[WX_CRED_MAX];
    int64_t id1 = 0, id2 = 0;
    unsigned char m1[WX_CRED_MAC], m2[WX_CRED_MAC];
    wx_cred_new(&keys, WX_CRED_ACCESS, &c);
    wx_cred_format(WX_CRED_ACCESS, &c, 5, s);
    assert_int_equal(wx_cred_parse(&keys, WX_CRED_ACCESS, wx_slice_cstr(s), &id1, m1), WX_OK);
    int rc = wx_cred_parse(&keys, WX_CRED_REFRESH, wx_slice_cstr(s), &id2, m2);
    assert_true(rc != WX_OK || sodium_memcmp(m1, m2, WX_CRED_MAC) != 0);
    /* Token strings are not codes and vice versa. */
    assert_int_equal(wx_cred_parse(&keys, WX_CRED_CODE, wx_slice_cstr(s), &id2, m2), WX_ERR_SYNTAX);
}

/* A different master key (another server) accepts none of our credentials. */
static void test_other_keys(void **state)
{
    (void)state;
    unsigned char master[WX_KEY_LEN] = {0};
    struct wx_keys other;
    wx_keys_derive(&other, master);
    assert_memory_not_equal(other.cred[0], keys.cred[0], WX_KEY_LEN);
    for (size_t k = 0; k < NELEM(kinds); k++) {
        struct wx_cred c;
        char s[WX_CRED_MAX];
        int64_t id = 0;
        unsigned char mac[WX_CRED_MAC];
        wx_cred_new(&keys, kinds[k], &c);
        wx_cred_format(kinds[k], &c, 9, s);
        int rc = wx_cred_parse(&other, kinds[k], wx_slice_cstr(s), &id, mac);
        assert_true(rc != WX_OK || sodium_memcmp(mac, c.mac, WX_CRED_MAC) != 0);
    }
}

static void test_keys_distinct(void **state)
{
    (void)state;
    const unsigned char *all[] = {keys.cred[0], keys.cred[1], keys.cred[2], keys.cred[3],
                                  keys.openid,  keys.unionid, keys.secret,  keys.seal};
    for (size_t i = 0; i < NELEM(all); i++)
        for (size_t j = i + 1; j < NELEM(all); j++)
            assert_memory_not_equal(all[i], all[j], WX_KEY_LEN);
}

struct malformed_case {
    enum wx_cred_kind kind;
    const char *s;
};

static const struct malformed_case malformed_cases[] = {
    {WX_CRED_ACCESS, ""},
    {WX_CRED_ACCESS, "90_"},
    {WX_CRED_ACCESS, "90_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},   /* 37 after prefix */
    {WX_CRED_ACCESS, "90_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, /* 39 */
    {WX_CRED_ACCESS, "83_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},  /* wrong prefix */
    {WX_CRED_ACCESS, "90-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
    {WX_CRED_ACCESS, "90_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+"}, /* standard base64 char */
    {WX_CRED_ACCESS, "90_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/"},
    {WX_CRED_ACCESS, "90_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},
    {WX_CRED_ACCESS, "90_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA "},
    {WX_CRED_ACCESS, "90_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB"}, /* non-zero spare bits */
    {WX_CRED_REFRESH, "90_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
    {WX_CRED_CODE, ""},
    {WX_CRED_CODE, "0000000000000000000000000000000000000"},   /* 37 */
    {WX_CRED_CODE, "000000000000000000000000000000000000000"}, /* 39 */
    {WX_CRED_CODE, "00000000000000000000000000000000000-00"},
    {WX_CRED_CODE, "00000000000000000000000000000000000_00"},
    {WX_CRED_CODE, "00000000000000000000000000000000000 00"},
    {WX_CRED_CODE, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"}, /* over 224 bits */
    {WX_CRED_CODE, "90_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
};

static void test_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(malformed_cases); i++) {
        int64_t id = -5;
        unsigned char mac[WX_CRED_MAC];
        int rc = wx_cred_parse(&keys, malformed_cases[i].kind, wx_slice_cstr(malformed_cases[i].s),
                               &id, mac);
        if (rc != WX_ERR_SYNTAX)
            fail_msg("case %zu \"%s\": rc %d, want WX_ERR_SYNTAX", i, malformed_cases[i].s, rc);
        assert_int_equal(id, -5);
    }
    /* An embedded NUL inside the explicit length is refused too. */
    char s[WX_CRED_MAX];
    struct wx_cred c;
    int64_t id;
    unsigned char mac[WX_CRED_MAC];
    wx_cred_new(&keys, WX_CRED_CODE, &c);
    wx_cred_format(WX_CRED_CODE, &c, 3, s);
    s[10] = '\0';
    assert_int_equal(wx_cred_parse(&keys, WX_CRED_CODE, (struct wx_slice){s, 38}, &id, mac),
                     WX_ERR_SYNTAX);
}

static void test_secret_mac(void **state)
{
    (void)state;
    unsigned char a[WX_CRED_MAC], b[WX_CRED_MAC], c[WX_CRED_MAC];
    wx_secret_mac(&keys, WX_SLICE_LIT("0123456789abcdef0123456789abcdef"), a);
    wx_secret_mac(&keys, WX_SLICE_LIT("0123456789abcdef0123456789abcdef"), b);
    wx_secret_mac(&keys, WX_SLICE_LIT("0123456789abcdef0123456789abcdeF"), c);
    assert_memory_equal(a, b, WX_CRED_MAC);
    assert_memory_not_equal(a, c, WX_CRED_MAC);
    wx_secret_mac(&keys, WX_SLICE_LIT(""), c);
    assert_memory_not_equal(a, c, WX_CRED_MAC);
}

/* ---- openid / unionid ------------------------------------------------------------------- */

static void test_ident_format_and_round_trip(void **state)
{
    (void)state;
    static const int64_t users[] = {0, 1, 2, 255, 256, 123456789, INT64_MAX, -1, INT64_MIN};
    for (size_t i = 0; i < NELEM(users); i++) {
        char o[WX_OPENID_LEN + 1];
        memset(o, 'Z', sizeof o);
        wx_ident_make(keys.openid, "wx1234567890abcdef", users[i], o);
        assert_int_equal(o[WX_OPENID_LEN], '\0');
        assert_int_equal(strlen(o), 28);
        assert_int_equal(o[0], 'o');
        assert_true(only_chars(o + 1, B64URL));
        int64_t uid = 99;
        assert_int_equal(wx_ident_parse(keys.openid, "wx1234567890abcdef", wx_slice_cstr(o), &uid),
                         WX_OK);
        assert_int_equal(uid, users[i]);
    }
}

static void test_ident_stable_and_distinct(void **state)
{
    (void)state;
    char a[WX_OPENID_LEN + 1], b[WX_OPENID_LEN + 1], c[WX_OPENID_LEN + 1];
    /* stable: same key, namespace and user give the same id, also after re-deriving keys */
    wx_ident_make(keys.openid, "wxapp1", 42, a);
    wx_ident_make(keys.openid, "wxapp1", 42, b);
    assert_string_equal(a, b);
    unsigned char master[WX_KEY_LEN];
    for (int i = 0; i < WX_KEY_LEN; i++)
        master[i] = (unsigned char)(i * 7 + 1);
    struct wx_keys again;
    wx_keys_derive(&again, master);
    wx_ident_make(again.openid, "wxapp1", 42, c);
    assert_string_equal(a, c);
    /* differs per namespace, per user, and between openid and unionid */
    wx_ident_make(keys.openid, "wxapp2", 42, b);
    assert_string_not_equal(a, b);
    wx_ident_make(keys.openid, "wxapp1", 43, b);
    assert_string_not_equal(a, b);
    wx_ident_make(keys.unionid, "wxapp1", 42, b);
    assert_string_not_equal(a, b);
    /* a namespace that is a prefix of another is still another namespace */
    wx_ident_make(keys.openid, "wxapp", 42, b);
    assert_string_not_equal(a, b);
}

/* The first 6 characters ('o' + 30 bits of the 32-bit namespace prefix) are constant. */
static void test_ident_prefix(void **state)
{
    (void)state;
    static const char *const ns[] = {"wxapp1", "wxapp2", "wxd930ea5d5a258f4f"};
    char first[NELEM(ns)][WX_OPENID_LEN + 1];
    for (size_t n = 0; n < NELEM(ns); n++) {
        wx_ident_make(keys.openid, ns[n], 1, first[n]);
        for (int64_t u = 2; u < 200; u++) {
            char o[WX_OPENID_LEN + 1];
            wx_ident_make(keys.openid, ns[n], u, o);
            assert_memory_equal(o, first[n], 6);
            assert_string_not_equal(o, first[n]);
        }
    }
    for (size_t n = 0; n < NELEM(ns); n++)
        for (size_t m = n + 1; m < NELEM(ns); m++)
            assert_memory_not_equal(first[n], first[m], 6);
}

static void test_ident_tamper(void **state)
{
    (void)state;
    char o[WX_OPENID_LEN + 1];
    int64_t uid;
    wx_ident_make(keys.openid, "wxapp1", 777, o);
    for (size_t pos = 0; pos < WX_OPENID_LEN; pos++) {
        for (const char *a = B64URL "o"; *a; a++) {
            if (*a == o[pos])
                continue;
            char t[WX_OPENID_LEN + 1];
            memcpy(t, o, sizeof t);
            t[pos] = *a;
            if (wx_ident_parse(keys.openid, "wxapp1", wx_slice_cstr(t), &uid) == WX_OK)
                fail_msg("tampered openid \"%s\" (pos %zu) accepted as user %lld", t, pos,
                         (long long)uid);
        }
    }
    /* wrong namespace, wrong key, wrong kind of key */
    assert_int_equal(wx_ident_parse(keys.openid, "wxapp2", wx_slice_cstr(o), &uid), WX_ERR_INVALID);
    assert_int_not_equal(wx_ident_parse(keys.unionid, "wxapp1", wx_slice_cstr(o), &uid), WX_OK);
    /* malformed */
    assert_int_equal(wx_ident_parse(keys.openid, "wxapp1", WX_SLICE_LIT(""), &uid), WX_ERR_SYNTAX);
    assert_int_equal(wx_ident_parse(keys.openid, "wxapp1", (struct wx_slice){o, 27}, &uid),
                     WX_ERR_SYNTAX);
    char longer[WX_OPENID_LEN + 2];
    memcpy(longer, o, WX_OPENID_LEN);
    memcpy(longer + WX_OPENID_LEN, "A", 2);
    assert_int_equal(wx_ident_parse(keys.openid, "wxapp1", wx_slice_cstr(longer), &uid),
                     WX_ERR_SYNTAX);
    char p[WX_OPENID_LEN + 1];
    memcpy(p, o, sizeof p);
    p[0] = 'O';
    assert_int_equal(wx_ident_parse(keys.openid, "wxapp1", wx_slice_cstr(p), &uid), WX_ERR_SYNTAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_fresh_each_time),
        cmocka_unit_test(test_tamper_one_char),
        cmocka_unit_test(test_tamper_length),
        cmocka_unit_test(test_kind_confusion),
        cmocka_unit_test(test_other_keys),
        cmocka_unit_test(test_keys_distinct),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_secret_mac),
        cmocka_unit_test(test_ident_format_and_round_trip),
        cmocka_unit_test(test_ident_stable_and_distinct),
        cmocka_unit_test(test_ident_prefix),
        cmocka_unit_test(test_ident_tamper),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
