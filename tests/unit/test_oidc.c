/*
 * test_oidc.c — unit tests for lib/oidc.c: client records round-trip and their checks, secrets
 * checked by MAC, signing keys made, sealed, loaded, rotated and removed, ID tokens that a key
 * of the set verifies (and a changed one that none does), PKCE by RFC 7636's own example.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wxauth/wxauth.h>

#include "cred.h"
#include "oidc.h"
#include "store.h"

static char dir[64], path[96];
static struct wx_keys keys;

static int setup(void **state)
{
    unsigned char master[WX_KEY_LEN];
    struct wx_store *s = NULL;
    char err[256];
    if (wx_init() != WX_OK)
        return -1;
    snprintf(dir, sizeof dir, "/tmp/wxauth-oidc-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/store.db", dir);
    if (wx_store_open(&s, path, err, sizeof err) || s->ops->master_key(s, master))
        return -1;
    wx_keys_derive(&keys, master);
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    struct wx_store *s = *state;
    char p[128];
    s->ops->close(s);
    static const char *const files[] = {"store.db", "store.db-wal", "store.db-shm"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

static void test_checks(void **state)
{
    char err[160];
    assert_int_equal(wx_oidc_check_id("grafana.prod_1-x"), WX_OK);
    assert_int_not_equal(wx_oidc_check_id(""), WX_OK);
    assert_int_not_equal(wx_oidc_check_id("a b"), WX_OK);
    assert_int_not_equal(wx_oidc_check_id("a/b"), WX_OK);
    char id[WX_OIDC_MAX_ID + 2];
    memset(id, 'a', sizeof id - 1);
    id[WX_OIDC_MAX_ID] = '\0';
    assert_int_equal(wx_oidc_check_id(id), WX_OK);
    id[WX_OIDC_MAX_ID] = 'a';
    id[WX_OIDC_MAX_ID + 1] = '\0';
    assert_int_not_equal(wx_oidc_check_id(id), WX_OK);

    assert_int_equal(
        wx_oidc_check_uri("https://grafana.example.com/login/generic_oauth", err, sizeof err),
        WX_OK);
    assert_int_equal(wx_oidc_check_uri("http://127.0.0.1:3000/cb?x=1", err, sizeof err), WX_OK);
    static const char *const bad[] = {"ftp://x/",           "https://",     "https:///path",
                                      "https://a/#f",       "https://a/ b", "/relative",
                                      "javascript:alert(1)"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(wx_oidc_check_uri(bad[i], err, sizeof err), WX_ERR_INVALID);
        assert_true(err[0] != '\0');
    }
    char longuri[WX_OIDC_MAX_URI + 2] = "https://a/";
    memset(longuri + 10, 'p', sizeof longuri - 11);
    longuri[WX_OIDC_MAX_URI] = '\0';
    assert_int_equal(wx_oidc_check_uri(longuri, err, sizeof err), WX_OK);
    longuri[WX_OIDC_MAX_URI] = 'p';
    longuri[WX_OIDC_MAX_URI + 1] = '\0';
    assert_int_equal(wx_oidc_check_uri(longuri, err, sizeof err), WX_ERR_INVALID);

    assert_int_equal(wx_oidc_check_scopes("openid profile"), WX_OK);
    assert_int_equal(wx_oidc_check_scopes("openid profile offline_access"), WX_OK);
    assert_int_not_equal(wx_oidc_check_scopes("profile"), WX_OK); /* openid is required */
    assert_int_not_equal(wx_oidc_check_scopes("openid email"), WX_OK);
    assert_true(wx_oidc_scope_has("openid  profile", "profile"));
    assert_false(wx_oidc_scope_has("openid profiles", "profile"));
    assert_false(wx_oidc_scope_has("openid", ""));

    char uris[2][WX_OIDC_MAX_URI + 1] = {"https://a/cb", "https://b/cb"};
    assert_true(wx_oidc_uri_listed(uris, 2, "https://b/cb"));
    assert_false(wx_oidc_uri_listed(uris, 2, "https://b/cb/")); /* exact: no normalisation */
    assert_false(wx_oidc_uri_listed(uris, 2, "HTTPS://b/cb"));
    assert_false(wx_oidc_uri_listed(uris, 2, NULL));
}

static struct wx_oidc_client make_client(const char *id)
{
    struct wx_oidc_client c = {0};
    snprintf(c.id, sizeof c.id, "%s", id);
    snprintf(c.name, sizeof c.name, "Grafana 监控");
    snprintf(c.redirect[c.nredirect++], sizeof c.redirect[0], "https://g.example.com/cb");
    snprintf(c.redirect[c.nredirect++], sizeof c.redirect[0], "http://127.0.0.1:3000/cb");
    snprintf(c.logout[c.nlogout++], sizeof c.logout[0], "https://g.example.com/bye");
    snprintf(c.scopes, sizeof c.scopes, "openid profile");
    c.subject = WX_OIDC_SUB_UNIONID;
    c.alg = WX_OIDC_ES256;
    c.created = 1700000000;
    return c;
}

static int listed;
static void count_client(void *ud, const struct wx_oidc_client *c)
{
    listed++;
}

static void test_clients(void **state)
{
    struct wx_store *s = *state;
    struct wx_oidc_client c = make_client("grafana"), got;
    char secret[WX_OIDC_SECRET_LEN + 1];
    wx_oidc_secret_new(&keys, &c, secret);
    assert_int_equal(strlen(secret), WX_OIDC_SECRET_LEN);
    assert_int_equal(wx_oidc_client_put(s, &c, 1), WX_OK);
    assert_int_equal(wx_oidc_client_put(s, &c, 1), WX_ERR_CONFLICT);
    assert_int_equal(wx_oidc_client_get(s, "grafana", &got), WX_OK);
    assert_string_equal(got.name, "Grafana 监控");
    assert_int_equal(got.nredirect, 2);
    assert_string_equal(got.redirect[1], "http://127.0.0.1:3000/cb");
    assert_int_equal(got.nlogout, 1);
    assert_int_equal(got.subject, WX_OIDC_SUB_UNIONID);
    assert_int_equal(got.alg, WX_OIDC_ES256);
    assert_int_equal(got.created, 1700000000);
    assert_true(got.confidential);
    assert_true(wx_oidc_secret_ok(&keys, &got, secret));
    secret[3] ^= 1;
    assert_false(wx_oidc_secret_ok(&keys, &got, secret));
    assert_false(wx_oidc_secret_ok(&keys, &got, ""));
    assert_false(wx_oidc_secret_ok(&keys, &got, NULL));
    /* The same secret does not open another client (the MAC binds the client_id). */
    secret[3] ^= 1;
    struct wx_oidc_client other = make_client("gitea");
    memcpy(other.secret_mac, got.secret_mac, sizeof other.secret_mac);
    other.confidential = 1;
    assert_false(wx_oidc_secret_ok(&keys, &other, secret));
    /* A public client has no secret at all. */
    struct wx_oidc_client pub = make_client("spa");
    assert_int_equal(wx_oidc_client_put(s, &pub, 1), WX_OK);
    assert_int_equal(wx_oidc_client_get(s, "spa", &got), WX_OK);
    assert_false(got.confidential);
    assert_false(wx_oidc_secret_ok(&keys, &got, ""));
    listed = 0;
    assert_int_equal(wx_oidc_client_list(s, count_client, NULL), WX_OK);
    assert_int_equal(listed, 2);
    assert_int_equal(wx_oidc_client_delete(s, "spa"), WX_OK);
    assert_int_equal(wx_oidc_client_get(s, "spa", &got), WX_ERR_NOTFOUND);
    assert_int_equal(wx_oidc_client_get(s, "no/such", &got), WX_ERR_NOTFOUND);
}

static void test_keys_sign_verify(void **state)
{
    struct wx_store *s = *state;
    struct wx_oidc_keyset ks;
    int changed = 0;
    assert_int_equal(wx_oidc_keys_load(s, &keys, &ks), WX_OK);
    assert_int_equal(ks.n, 0);
    /* First upkeep: one key of each alg. */
    assert_int_equal(wx_oidc_keys_maintain(s, &keys, &ks, 1000, 86400, 3600, &changed), WX_OK);
    assert_true(changed);
    assert_int_equal(wx_oidc_keys_load(s, &keys, &ks), WX_OK);
    assert_int_equal(ks.n, 2);
    const struct wx_oidc_key *rs = wx_oidc_key_current(&ks, WX_OIDC_RS256);
    assert_non_null(rs);
    assert_non_null(wx_oidc_key_current(&ks, WX_OIDC_ES256));
    char first_rs[WX_OIDC_KID_LEN + 1];
    snprintf(first_rs, sizeof first_rs, "%s", rs->kid);
    /* Nothing due: nothing changes. */
    assert_int_equal(wx_oidc_keys_maintain(s, &keys, &ks, 2000, 86400, 3600, &changed), WX_OK);
    assert_false(changed);

    json_t *claims = json_pack("{s:s, s:s, s:I}", "iss", "https://x/wxauth", "sub", "o6_b", "exp",
                               (json_int_t)9999999999);
    struct wx_buf tok;
    for (int alg = 0; alg < WX_OIDC_ALGS; alg++) {
        wx_buf_init(&tok, WX_OIDC_MAX_JWS);
        assert_int_equal(wx_oidc_sign(wx_oidc_key_current(&ks, alg), claims, &tok), WX_OK);
        json_t *back = NULL;
        assert_int_equal(wx_oidc_verify(&ks, (struct wx_slice){tok.ptr, tok.len}, &back), WX_OK);
        assert_string_equal(json_string_value(json_object_get(back, "sub")), "o6_b");
        json_decref(back);
        /* One changed byte of the payload: no key verifies it. */
        char *dot = strchr(tok.ptr, '.');
        dot[3] = dot[3] == 'A' ? 'B' : 'A';
        assert_int_not_equal(wx_oidc_verify(&ks, (struct wx_slice){tok.ptr, tok.len}, &back),
                             WX_OK);
        assert_null(back);
        wx_buf_free(&tok);
    }
    json_t *back = NULL;
    assert_int_equal(wx_oidc_verify(&ks, wx_slice_cstr("not a jws"), &back), WX_ERR_SYNTAX);

    /* A token signed by the first RS256 key, then rotation: the old key still verifies it. */
    wx_buf_init(&tok, WX_OIDC_MAX_JWS);
    assert_int_equal(wx_oidc_sign(rs, claims, &tok), WX_OK);
    assert_int_equal(wx_oidc_keys_maintain(s, &keys, &ks, 1000 + 86400, 86400, 3600, &changed),
                     WX_OK);
    assert_true(changed);
    wx_oidc_keys_free(&ks);
    assert_int_equal(wx_oidc_keys_load(s, &keys, &ks), WX_OK);
    assert_int_equal(ks.n, 4);
    assert_string_not_equal(wx_oidc_key_current(&ks, WX_OIDC_RS256)->kid, first_rs);
    assert_int_equal(wx_oidc_verify(&ks, (struct wx_slice){tok.ptr, tok.len}, &back), WX_OK);
    json_decref(back);
    json_t *doc = wx_oidc_jwks(&ks);
    assert_non_null(doc);
    char *jwks = json_dumps(doc, JSON_COMPACT);
    assert_non_null(strstr(jwks, first_rs));
    assert_null(strstr(jwks, "\"d\"")); /* public halves only */
    assert_non_null(strstr(jwks, "\"use\":\"sig\""));
    assert_int_equal(json_array_size(json_object_get(doc, "keys")), 4);
    free(jwks);
    json_decref(doc);
    /* keep_s after the rotation the old keys go, and tokens they signed verify no more. */
    assert_int_equal(
        wx_oidc_keys_maintain(s, &keys, &ks, 1000 + 86400 + 3600, 86400, 3600, &changed), WX_OK);
    assert_true(changed);
    wx_oidc_keys_free(&ks);
    assert_int_equal(wx_oidc_keys_load(s, &keys, &ks), WX_OK);
    assert_int_equal(ks.n, 2);
    assert_int_equal(wx_oidc_verify(&ks, (struct wx_slice){tok.ptr, tok.len}, &back),
                     WX_ERR_CRYPTO);
    wx_buf_free(&tok);
    json_decref(claims);
    wx_oidc_keys_free(&ks);
}

/* Two nodes due to rotate at once: one key is made, not two. */
static void test_rotation_once(void **state)
{
    struct wx_store *s = *state;
    struct wx_oidc_keyset a, b;
    int ca = 0, cb = 0;
    assert_int_equal(wx_oidc_keys_load(s, &keys, &a), WX_OK);
    assert_int_equal(wx_oidc_keys_load(s, &keys, &b), WX_OK);
    int before = a.n;
    int64_t t = 10000000;
    assert_int_equal(wx_oidc_keys_maintain(s, &keys, &a, t, 86400, 3600, &ca), WX_OK);
    assert_int_equal(wx_oidc_keys_maintain(s, &keys, &b, t, 86400, 3600, &cb), WX_OK);
    assert_true(ca && cb);
    wx_oidc_keys_free(&a);
    wx_oidc_keys_free(&b);
    assert_int_equal(wx_oidc_keys_load(s, &keys, &a), WX_OK);
    assert_int_equal(a.n, before + 2); /* one per alg, whoever claimed it */
    wx_oidc_keys_free(&a);
}

static void test_pkce(void **state)
{
    /* RFC 7636, appendix B. */
    assert_true(wx_oidc_pkce_ok("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
    assert_false(wx_oidc_pkce_ok("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
                                 "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
    assert_false(wx_oidc_pkce_ok("short", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
    assert_false(wx_oidc_pkce_ok("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", NULL));
    assert_false(wx_oidc_pkce_ok(NULL, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
    char v[130];
    memset(v, 'a', 129);
    v[129] = '\0';
    assert_false(wx_oidc_pkce_ok(v, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")); /* > 128 */
    assert_false(wx_oidc_pkce_ok("dBjftJeZ4CVP+mB92K27uhbUJU1p1r/wW1gFWFOEjXk",
                                 "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
    char h[24];
    /* OIDC Core's at_hash: the left half of SHA-256, base64url; SHA-256("") starts e3b0c442
     * 98fc1c14 9afbf4c8 996fb924. */
    wx_oidc_half_hash("", h);
    assert_string_equal(h, "47DEQpj8HBSa-_TImW-5JA");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checks),
        cmocka_unit_test(test_clients),
        cmocka_unit_test(test_keys_sign_verify),
        cmocka_unit_test(test_rotation_once),
        cmocka_unit_test(test_pkce),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
