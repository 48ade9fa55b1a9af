/*
 * oidc.c — OpenID Connect clients, signing keys, ID tokens and PKCE (oidc.h). JOSE is libcjose's
 * (the library mod_auth_openidc uses), on OpenSSL; hashing, randomness and sealing libsodium's.
 */
#include <cjose/cjose.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "oidc.h"
#include "seal.h"

#define KIND_CLIENT "oidc_client"
#define KIND_KEY    "oidc_key"
#define KEY_AD      "oidc-key"

static const char *const alg_names[WX_OIDC_ALGS] = {"RS256", "ES256"};

const char *wx_oidc_alg_name(int alg)
{
    return alg >= 0 && alg < WX_OIDC_ALGS ? alg_names[alg] : "RS256";
}

int wx_oidc_alg_of(const char *name)
{
    for (int i = 0; name && i < WX_OIDC_ALGS; i++)
        if (!strcmp(name, alg_names[i]))
            return i;
    return -1;
}

/* ---- clients ---- */

int wx_oidc_check_id(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > WX_OIDC_MAX_ID)
        return WX_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return WX_ERR_INVALID;
    }
    return WX_OK;
}

int wx_oidc_check_uri(const char *uri, char *err, size_t errsz)
{
    size_t n = strlen(uri);
    const char *why = NULL;
    const char *host = !strncmp(uri, "https://", 8)  ? uri + 8
                       : !strncmp(uri, "http://", 7) ? uri + 7
                                                     : NULL;
    if (n > WX_OIDC_MAX_URI)
        why = "longer than 512 bytes";
    else if (!host)
        why = "not an http:// or https:// URL";
    else if (!*host || *host == '/' || *host == ':' || *host == '?')
        why = "has no host";
    else if (strchr(uri, '#'))
        why = "has a fragment (#), which RFC 6749 forbids";
    for (size_t i = 0; !why && i < n; i++)
        if ((unsigned char)uri[i] <= ' ' || uri[i] == 0x7f)
            why = "holds a space or a control character";
    if (why) {
        snprintf(err, errsz, "'%.80s%s' %s", uri, n > 80 ? "..." : "", why);
        return WX_ERR_INVALID;
    }
    return WX_OK;
}

int wx_oidc_scope_has(const char *list, const char *scope)
{
    size_t n = strlen(scope);
    for (const char *p = list; p && *p;) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, " ");
        if (len == n && n && !memcmp(p, scope, n))
            return 1;
        p += len;
    }
    return 0;
}

int wx_oidc_check_scopes(const char *list)
{
    if (!list || strlen(list) > WX_OIDC_MAX_SCOPES || !wx_oidc_scope_has(list, "openid"))
        return WX_ERR_INVALID;
    for (const char *p = list; *p;) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, " ");
        char one[32];
        if (len >= sizeof one)
            return WX_ERR_INVALID;
        memcpy(one, p, len);
        one[len] = '\0';
        if (len && !wx_oidc_scope_has(WX_OIDC_SCOPES_ALL, one))
            return WX_ERR_INVALID;
        p += len;
    }
    return WX_OK;
}

int wx_oidc_uri_listed(const char (*uris)[WX_OIDC_MAX_URI + 1], int n, const char *uri)
{
    for (int i = 0; uri && i < n; i++)
        if (!strcmp(uris[i], uri))
            return 1;
    return 0;
}

static void secret_mac(const struct wx_keys *k, const char *id, const char *secret,
                       unsigned char mac[WX_CRED_MAC])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, k->secret, sizeof k->secret, WX_CRED_MAC);
    crypto_generichash_update(&st, (const unsigned char *)"oidc-client\n", 12);
    crypto_generichash_update(&st, (const unsigned char *)id, strlen(id) + 1);
    crypto_generichash_update(&st, (const unsigned char *)secret, strlen(secret));
    crypto_generichash_final(&st, mac, WX_CRED_MAC);
}

void wx_oidc_secret_new(const struct wx_keys *k, struct wx_oidc_client *c,
                        char secret[WX_OIDC_SECRET_LEN + 1])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(secret, WX_OIDC_SECRET_LEN + 1, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    secret_mac(k, c->id, secret, c->secret_mac);
    c->confidential = 1;
}

int wx_oidc_secret_ok(const struct wx_keys *k, const struct wx_oidc_client *c, const char *secret)
{
    unsigned char mac[WX_CRED_MAC];
    if (!c->confidential || !secret || strlen(secret) > 256)
        return 0;
    secret_mac(k, c->id, secret, mac);
    return sodium_memcmp(mac, c->secret_mac, sizeof mac) == 0;
}

static json_t *uri_array(const char (*uris)[WX_OIDC_MAX_URI + 1], int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(uris[i]));
    return a;
}

json_t *wx_oidc_client_json(const struct wx_oidc_client *c)
{
    return json_pack(
        "{s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:I}", "client_id", c->id, "name", c->name,
        "token_endpoint_auth_method", c->confidential ? "client_secret_basic" : "none",
        "redirect_uris", uri_array(c->redirect, c->nredirect), "post_logout_redirect_uris",
        uri_array(c->logout, c->nlogout), "scope", c->scopes, "subject",
        c->subject == WX_OIDC_SUB_UNIONID ? "unionid" : "openid", "id_token_signed_response_alg",
        wx_oidc_alg_name(c->alg), "created", (json_int_t)c->created);
}

int wx_oidc_client_put(struct wx_store *s, const struct wx_oidc_client *c, int create)
{
    json_t *o = wx_oidc_client_json(c);
    char mac[2 * WX_CRED_MAC + 1] = "";
    struct wx_buf b;
    int rc = WX_ERR_NOMEM;
    if (c->confidential)
        sodium_bin2hex(mac, sizeof mac, c->secret_mac, sizeof c->secret_mac);
    wx_buf_init(&b, WX_REC_MAX_VALUE);
    if (o && !json_object_set_new(o, "secret_mac", json_string(mac)) && !wx_json_append(&b, o))
        rc = s->ops->rec_put(s, KIND_CLIENT, c->id, b.ptr, b.len, create);
    json_decref(o);
    wx_buf_free(&b);
    return rc;
}

static int copy_str(json_t *o, const char *key, char *out, size_t outsz)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (!v || strlen(v) >= outsz)
        return -1;
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

static int copy_uris(json_t *o, const char *key, char (*out)[WX_OIDC_MAX_URI + 1], int *n)
{
    json_t *a = json_object_get(o, key);
    size_t i;
    json_t *v;
    if (!json_is_array(a) || json_array_size(a) > WX_OIDC_MAX_URIS)
        return -1;
    *n = 0;
    json_array_foreach(a, i, v)
    {
        const char *u = json_string_value(v);
        if (!u || strlen(u) > WX_OIDC_MAX_URI)
            return -1;
        memcpy(out[(*n)++], u, strlen(u) + 1);
    }
    return 0;
}

static int client_decode(const void *v, size_t len, struct wx_oidc_client *c)
{
    json_t *o = NULL;
    char err[128], mac[2 * WX_CRED_MAC + 1], auth[32], sub[16], alg[16];
    size_t bl = 0;
    memset(c, 0, sizeof *c);
    if (wx_json_parse((struct wx_slice){v, len}, WX_REC_MAX_VALUE, &o, err, sizeof err))
        return WX_ERR_STORE;
    int bad = copy_str(o, "client_id", c->id, sizeof c->id) ||
              copy_str(o, "name", c->name, sizeof c->name) ||
              copy_str(o, "token_endpoint_auth_method", auth, sizeof auth) ||
              copy_uris(o, "redirect_uris", c->redirect, &c->nredirect) ||
              copy_uris(o, "post_logout_redirect_uris", c->logout, &c->nlogout) ||
              copy_str(o, "scope", c->scopes, sizeof c->scopes) ||
              copy_str(o, "subject", sub, sizeof sub) ||
              copy_str(o, "id_token_signed_response_alg", alg, sizeof alg) ||
              copy_str(o, "secret_mac", mac, sizeof mac);
    c->created = (int64_t)json_integer_value(json_object_get(o, "created"));
    json_decref(o);
    c->confidential = !bad && strcmp(auth, "none") != 0;
    c->subject = !bad && !strcmp(sub, "unionid") ? WX_OIDC_SUB_UNIONID : WX_OIDC_SUB_OPENID;
    c->alg = bad ? -1 : wx_oidc_alg_of(alg);
    if (bad || c->alg < 0 ||
        (c->confidential &&
         (sodium_hex2bin(c->secret_mac, sizeof c->secret_mac, mac, strlen(mac), NULL, &bl, NULL) ||
          bl != WX_CRED_MAC)))
        return WX_ERR_STORE;
    return WX_OK;
}

int wx_oidc_client_get(struct wx_store *s, const char *id, struct wx_oidc_client *c)
{
    char *v = malloc(WX_REC_MAX_VALUE);
    size_t n = 0;
    if (!v)
        return WX_ERR_NOMEM;
    int rc = wx_oidc_check_id(id) ? WX_ERR_NOTFOUND
                                  : s->ops->rec_get(s, KIND_CLIENT, id, v, WX_REC_MAX_VALUE, &n);
    if (rc == WX_OK)
        rc = client_decode(v, n, c);
    free(v);
    return rc;
}

int wx_oidc_client_delete(struct wx_store *s, const char *id)
{
    return wx_oidc_check_id(id) ? WX_ERR_NOTFOUND : s->ops->rec_delete(s, KIND_CLIENT, id);
}

struct client_walk {
    wx_oidc_client_cb cb;
    void *ud;
    struct wx_oidc_client c;
};

static void client_each(void *ud, const char *name, const void *v, size_t len)
{
    struct client_walk *w = ud;
    if (client_decode(v, len, &w->c) == WX_OK)
        w->cb(w->ud, &w->c);
}

int wx_oidc_client_list(struct wx_store *s, wx_oidc_client_cb cb, void *ud)
{
    struct client_walk *w = malloc(sizeof *w);
    if (!w)
        return WX_ERR_NOMEM;
    w->cb = cb;
    w->ud = ud;
    int rc = s->ops->rec_list(s, KIND_CLIENT, client_each, w);
    free(w);
    return rc;
}

/* ---- signing keys: records {"kid", "alg", "created", "jwk": sealed private JWK} ---- */

struct key_walk {
    const struct wx_keys *k;
    struct wx_oidc_keyset *ks;
};

/* Keeps ks newest first, at most WX_OIDC_MAX_KEYS (the oldest beyond that are dropped). */
static void keyset_insert(struct wx_oidc_keyset *ks, const struct wx_oidc_key *key)
{
    int at = 0;
    while (at < ks->n && ks->key[at].created >= key->created)
        at++;
    if (at == WX_OIDC_MAX_KEYS) {
        cjose_jwk_release(key->jwk);
        return;
    }
    if (ks->n == WX_OIDC_MAX_KEYS)
        cjose_jwk_release(ks->key[--ks->n].jwk);
    memmove(&ks->key[at + 1], &ks->key[at], (size_t)(ks->n - at) * sizeof ks->key[0]);
    ks->key[at] = *key;
    ks->n++;
}

static void key_each(void *ud, const char *name, const void *v, size_t len)
{
    struct key_walk *w = ud;
    json_t *o = NULL;
    char err[128], plain[WX_SEAL_MAX_PLAIN];
    size_t n = 0;
    struct wx_oidc_key key = {0};
    if (wx_json_parse((struct wx_slice){v, len}, WX_REC_MAX_VALUE, &o, err, sizeof err))
        return;
    const char *kid = json_string_value(json_object_get(o, "kid"));
    const char *sealed = json_string_value(json_object_get(o, "jwk"));
    key.alg = wx_oidc_alg_of(json_string_value(json_object_get(o, "alg")));
    key.created = (int64_t)json_integer_value(json_object_get(o, "created"));
    if (kid && sealed && key.alg >= 0 && strlen(kid) == WX_OIDC_KID_LEN &&
        !wx_unseal(w->k->seal, KEY_AD, wx_slice_cstr(sealed), plain, sizeof plain, &n)) {
        memcpy(key.kid, kid, WX_OIDC_KID_LEN + 1);
        key.jwk = cjose_jwk_import(plain, n, NULL);
        if (key.jwk)
            keyset_insert(w->ks, &key);
    }
    sodium_memzero(plain, sizeof plain);
    json_decref(o);
}

int wx_oidc_keys_load(struct wx_store *s, const struct wx_keys *k, struct wx_oidc_keyset *ks)
{
    struct key_walk w = {k, ks};
    memset(ks, 0, sizeof *ks);
    int rc = s->ops->rec_list(s, KIND_KEY, key_each, &w);
    /* A key retires when the next of its alg is made. */
    for (int i = 0; i < ks->n; i++)
        for (int j = i - 1; j >= 0; j--)
            if (ks->key[j].alg == ks->key[i].alg) {
                ks->key[i].retired = ks->key[j].created;
                break;
            }
    if (rc)
        wx_oidc_keys_free(ks);
    return rc;
}

void wx_oidc_keys_free(struct wx_oidc_keyset *ks)
{
    for (int i = 0; i < ks->n; i++)
        cjose_jwk_release(ks->key[i].jwk);
    ks->n = 0;
}

const struct wx_oidc_key *wx_oidc_key_current(const struct wx_oidc_keyset *ks, int alg)
{
    for (int i = 0; i < ks->n; i++)
        if (ks->key[i].alg == alg)
            return &ks->key[i];
    return NULL;
}

int wx_oidc_key_add(struct wx_store *s, const struct wx_keys *k, int alg, int64_t now,
                    char kid[WX_OIDC_KID_LEN + 1])
{
    static const uint8_t e[] = {1, 0, 1};
    unsigned char raw[12];
    cjose_jwk_t *jwk = alg == WX_OIDC_ES256 ? cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, NULL)
                                            : cjose_jwk_create_RSA_random(2048, e, sizeof e, NULL);
    if (!jwk)
        return WX_ERR_CRYPTO;
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(kid, WX_OIDC_KID_LEN + 1, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    int rc = WX_ERR_CRYPTO;
    char *priv = cjose_jwk_set_kid(jwk, kid, WX_OIDC_KID_LEN, NULL)
                     ? cjose_jwk_to_json(jwk, true, NULL)
                     : NULL;
    struct wx_buf sealed, rec;
    wx_buf_init(&sealed, WX_REC_MAX_VALUE);
    wx_buf_init(&rec, WX_REC_MAX_VALUE);
    json_t *o = NULL;
    if (priv && !wx_seal(k->seal, KEY_AD, priv, strlen(priv), &sealed) &&
        (o = json_pack("{s:s, s:s, s:I, s:s}", "kid", kid, "alg", wx_oidc_alg_name(alg), "created",
                       (json_int_t)now, "jwk", sealed.ptr)) &&
        !wx_json_append(&rec, o))
        rc = s->ops->rec_put(s, KIND_KEY, kid, rec.ptr, rec.len, 1);
    if (priv) {
        sodium_memzero(priv, strlen(priv));
        free(priv);
    }
    json_decref(o);
    wx_buf_free(&sealed);
    wx_buf_free(&rec);
    cjose_jwk_release(jwk);
    return rc;
}

int wx_oidc_key_delete(struct wx_store *s, const char *kid)
{
    return s->ops->rec_delete(s, KIND_KEY, kid);
}

int wx_oidc_keys_maintain(struct wx_store *s, const struct wx_keys *k,
                          const struct wx_oidc_keyset *ks, int64_t now, int64_t rotate_s,
                          int64_t keep_s, int *changed)
{
    int rc = WX_OK;
    *changed = 0;
    for (int alg = 0; alg < WX_OIDC_ALGS && rc == WX_OK; alg++) {
        const struct wx_oidc_key *cur = wx_oidc_key_current(ks, alg);
        if (cur && cur->created + rotate_s > now)
            continue;
        /* One node makes the key: the first to claim the successor of cur. */
        unsigned char claim[16];
        crypto_generichash_state st;
        crypto_generichash_init(&st, NULL, 0, sizeof claim);
        crypto_generichash_update(&st, (const unsigned char *)"wxauth-oidc-rotate", 18);
        crypto_generichash_update(&st, (const unsigned char *)alg_names[alg], 5);
        crypto_generichash_update(&st, (const unsigned char *)(cur ? cur->kid : "-"),
                                  cur ? WX_OIDC_KID_LEN : 1);
        crypto_generichash_final(&st, claim, sizeof claim);
        rc = s->ops->nonce_use(s, claim, now + 60); /* a node that died meanwhile: another tries */
        if (rc == WX_ERR_CONFLICT) {
            rc = WX_OK;
            *changed = 1; /* another node makes it: read the keys again soon */
            continue;
        }
        char kid[WX_OIDC_KID_LEN + 1];
        if (rc == WX_OK && (rc = wx_oidc_key_add(s, k, alg, now, kid)) == WX_OK)
            *changed = 1;
    }
    for (int i = 0; i < ks->n && rc == WX_OK; i++)
        if (ks->key[i].retired && ks->key[i].retired + keep_s <= now) {
            int d = wx_oidc_key_delete(s, ks->key[i].kid);
            if (d != WX_OK && d != WX_ERR_NOTFOUND)
                rc = d;
            *changed = 1;
        }
    return rc;
}

json_t *wx_oidc_jwks(const struct wx_oidc_keyset *ks)
{
    json_t *keys = json_array(), *doc = json_pack("{s:o}", "keys", keys);
    for (int i = 0; doc && i < ks->n; i++) {
        char *pub = cjose_jwk_to_json(ks->key[i].jwk, false, NULL);
        json_t *o = pub ? json_loads(pub, 0, NULL) : NULL;
        free(pub);
        if (!o || json_object_set_new(o, "use", json_string("sig")) ||
            json_object_set_new(o, "alg", json_string(wx_oidc_alg_name(ks->key[i].alg))) ||
            json_array_append_new(keys, o)) {
            json_decref(doc);
            return NULL;
        }
    }
    return doc;
}

int wx_oidc_sign(const struct wx_oidc_key *key, const json_t *claims, struct wx_buf *out)
{
    char *payload = json_dumps(claims, JSON_COMPACT);
    cjose_header_t *h = cjose_header_new(NULL);
    cjose_jws_t *jws = NULL;
    const char *ser = NULL;
    int rc = WX_ERR_CRYPTO;
    if (payload && h && cjose_header_set(h, CJOSE_HDR_ALG, wx_oidc_alg_name(key->alg), NULL) &&
        cjose_header_set(h, CJOSE_HDR_KID, key->kid, NULL) &&
        cjose_header_set(h, "typ", "JWT", NULL) &&
        (jws = cjose_jws_sign(key->jwk, h, (const uint8_t *)payload, strlen(payload), NULL)) &&
        cjose_jws_export(jws, &ser, NULL))
        rc = strlen(ser) > WX_OIDC_MAX_JWS ? WX_ERR_LIMIT : wx_buf_puts(out, ser);
    cjose_jws_release(jws);
    cjose_header_release(h);
    free(payload);
    return rc;
}

int wx_oidc_verify(const struct wx_oidc_keyset *ks, struct wx_slice text, json_t **claims)
{
    *claims = NULL;
    if (text.len > WX_OIDC_MAX_JWS)
        return WX_ERR_LIMIT;
    cjose_jws_t *jws = cjose_jws_import(text.ptr, text.len, NULL);
    if (!jws)
        return WX_ERR_SYNTAX;
    cjose_header_t *h = cjose_jws_get_protected(jws);
    const char *kid = h ? cjose_header_get(h, CJOSE_HDR_KID, NULL) : NULL;
    const char *alg = h ? cjose_header_get(h, CJOSE_HDR_ALG, NULL) : NULL;
    int rc = WX_ERR_CRYPTO;
    for (int i = 0; kid && alg && i < ks->n; i++) {
        const struct wx_oidc_key *key = &ks->key[i];
        uint8_t *plain = NULL;
        size_t n = 0;
        char err[64];
        /* The header's alg must be the key's own: never let a token choose how it is checked. */
        if (strcmp(key->kid, kid) || strcmp(alg, wx_oidc_alg_name(key->alg)))
            continue;
        if (cjose_jws_verify(jws, key->jwk, NULL) && cjose_jws_get_plaintext(jws, &plain, &n, NULL))
            rc = wx_json_parse((struct wx_slice){(const char *)plain, n}, WX_OIDC_MAX_JWS, claims,
                               err, sizeof err)
                     ? WX_ERR_SYNTAX
                     : WX_OK;
        break;
    }
    cjose_jws_release(jws);
    return rc;
}

/* ---- PKCE ---- */

static void s256(const char *value, unsigned char out[crypto_hash_sha256_BYTES])
{
    crypto_hash_sha256(out, (const unsigned char *)value, strlen(value));
}

int wx_oidc_pkce_ok(const char *verifier, const char *challenge)
{
    size_t n = verifier ? strlen(verifier) : 0;
    unsigned char h[crypto_hash_sha256_BYTES];
    char enc[48];
    if (n < 43 || n > 128 || !challenge || strlen(challenge) != 43)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = verifier[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~'))
            return 0;
    }
    s256(verifier, h);
    sodium_bin2base64(enc, sizeof enc, h, sizeof h, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return sodium_memcmp(enc, challenge, 43) == 0;
}

void wx_oidc_half_hash(const char *value, char out[24])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    s256(value, h);
    sodium_bin2base64(out, 24, h, 16, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}
