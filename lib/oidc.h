/*
 * oidc.h — the OpenID Connect provider's pieces that the gate (its endpoints) and the CLI
 * (`wxauth oidc client|key`) share: registered clients, the signing keys, ID tokens (JWS by
 * libcjose on OpenSSL: no home-made JWS), PKCE. Clients and keys are named records in the store
 * (store.h rec_*), so every node on one store sees the same ones; a key's private half is kept
 * sealed with the store's master key (cred.h wx_keys.seal, label "oidc-key").
 */
#ifndef WX_OIDC_H
#define WX_OIDC_H

#include <jansson.h>
#include <stdint.h>
#include <wxauth/base.h>

#include "cred.h"
#include "store.h"

#define WX_OIDC_MAX_ID     WX_REC_MAX_NAME /* client_id: [A-Za-z0-9._-] */
#define WX_OIDC_MAX_NAME   64              /* a client's display name, bytes */
#define WX_OIDC_MAX_URIS   8               /* redirect_uris, and post_logout_redirect_uris */
#define WX_OIDC_MAX_URI    512             /* bytes of one registered URI */
#define WX_OIDC_MAX_SCOPES 128             /* the allowed scopes, space-separated */
#define WX_OIDC_SECRET_LEN 43              /* 32 random bytes, base64url without padding */
#define WX_OIDC_MAX_KEYS   8               /* signing keys loaded (the newest) */
#define WX_OIDC_KID_LEN    16
#define WX_OIDC_MAX_JWS    8192 /* an ID token, compact, bytes */
#define WX_OIDC_SCOPES_ALL "openid profile offline_access"

enum wx_oidc_alg { WX_OIDC_RS256 = 0, WX_OIDC_ES256 = 1, WX_OIDC_ALGS };
/* What sub holds: the openid always, or the unionid when the app has one (else the openid). */
enum wx_oidc_subject { WX_OIDC_SUB_OPENID = 0, WX_OIDC_SUB_UNIONID = 1 };

struct wx_oidc_client {
    char id[WX_OIDC_MAX_ID + 1];
    char name[WX_OIDC_MAX_NAME + 1];
    int confidential; /* 1: client_secret_basic/post; 0: public, PKCE required */
    unsigned char secret_mac[WX_CRED_MAC];
    int nredirect, nlogout;
    char redirect[WX_OIDC_MAX_URIS][WX_OIDC_MAX_URI + 1];
    char logout[WX_OIDC_MAX_URIS][WX_OIDC_MAX_URI + 1];
    char scopes[WX_OIDC_MAX_SCOPES + 1];
    int subject, alg;
    int64_t created;
};

const char *wx_oidc_alg_name(int alg);
/* WX_OIDC_* for "RS256"/"ES256", else -1. */
int wx_oidc_alg_of(const char *name);

/* ---- clients ---- */

/* WX_OK when id is a valid client_id ([A-Za-z0-9._-], 1..WX_OIDC_MAX_ID bytes). */
int wx_oidc_check_id(const char *id);
/* WX_OK when uri may be registered: http(s), a host, no fragment, no spaces or controls, at most
 * WX_OIDC_MAX_URI bytes; else WX_ERR_INVALID with the reason in err. */
int wx_oidc_check_uri(const char *uri, char *err, size_t errsz);
/* WX_OK when every scope of list (space-separated) is one of WX_OIDC_SCOPES_ALL and openid is
 * among them. */
int wx_oidc_check_scopes(const char *list);
/* 1 when scope is a word of the space-separated list. */
int wx_oidc_scope_has(const char *list, const char *scope);
/* 1 when uri equals one of the n registered ones, byte for byte (no normalisation). */
int wx_oidc_uri_listed(const char (*uris)[WX_OIDC_MAX_URI + 1], int n, const char *uri);

/* A new secret (WX_OIDC_SECRET_LEN chars + NUL) and its MAC into c. */
void wx_oidc_secret_new(const struct wx_keys *k, struct wx_oidc_client *c,
                        char secret[WX_OIDC_SECRET_LEN + 1]);
/* 1 when secret is c's (constant time). */
int wx_oidc_secret_ok(const struct wx_keys *k, const struct wx_oidc_client *c, const char *secret);

int wx_oidc_client_put(struct wx_store *s, const struct wx_oidc_client *c, int create);
/* WX_OK, WX_ERR_NOTFOUND, or a store error (a record that does not decode: WX_ERR_STORE). */
int wx_oidc_client_get(struct wx_store *s, const char *id, struct wx_oidc_client *c);
int wx_oidc_client_delete(struct wx_store *s, const char *id);
typedef void (*wx_oidc_client_cb)(void *ud, const struct wx_oidc_client *c);
int wx_oidc_client_list(struct wx_store *s, wx_oidc_client_cb cb, void *ud);
/* c as JSON (no secret MAC), for `client show --json` and tests. */
json_t *wx_oidc_client_json(const struct wx_oidc_client *c);

/* ---- signing keys ---- */

struct wx_oidc_key {
    char kid[WX_OIDC_KID_LEN + 1];
    int alg;
    int64_t created;
    int64_t retired; /* when the next key of its alg took over; 0: the current one */
    void *jwk;       /* cjose_jwk_t, private */
};

struct wx_oidc_keyset {
    struct wx_oidc_key key[WX_OIDC_MAX_KEYS]; /* newest first */
    int n;
};

/* Reads the keys of the store (the newest WX_OIDC_MAX_KEYS). */
int wx_oidc_keys_load(struct wx_store *s, const struct wx_keys *k, struct wx_oidc_keyset *ks);
void wx_oidc_keys_free(struct wx_oidc_keyset *ks);
/* The key that signs for alg now, or NULL. */
const struct wx_oidc_key *wx_oidc_key_current(const struct wx_oidc_keyset *ks, int alg);
/* A fresh key of alg (RSA 2048 or P-256) into the store; its kid into kid. */
int wx_oidc_key_add(struct wx_store *s, const struct wx_keys *k, int alg, int64_t now,
                    char kid[WX_OIDC_KID_LEN + 1]);
int wx_oidc_key_delete(struct wx_store *s, const char *kid);
/*
 * Key upkeep, safe on several nodes at once: for each alg, a key when there is none or when the
 * current one is rotate_s old (one node makes it: a claim in the store), and the removal of keys
 * retired more than keep_s ago (their tokens have expired). *changed: 1 when the store's keys
 * changed (reload them).
 */
int wx_oidc_keys_maintain(struct wx_store *s, const struct wx_keys *k,
                          const struct wx_oidc_keyset *ks, int64_t now, int64_t rotate_s,
                          int64_t keep_s, int *changed);
/* The JWKS document of the public halves of ks's keys (retired ones too: they are only loaded
 * until they are removed); NULL on failure. */
json_t *wx_oidc_jwks(const struct wx_oidc_keyset *ks);
/* claims signed by key, compact serialisation (typ JWT, kid) appended to out. */
int wx_oidc_sign(const struct wx_oidc_key *key, const json_t *claims, struct wx_buf *out);
/* The claims of a JWS one of ks's keys signed (its expiry is not checked); WX_ERR_CRYPTO when
 * none did, WX_ERR_SYNTAX when it is not a JWS. */
int wx_oidc_verify(const struct wx_oidc_keyset *ks, struct wx_slice jws, json_t **claims);

/* ---- PKCE (RFC 7636) ---- */

/* 1 when verifier is well-formed (43..128 of [A-Za-z0-9-._~]) and its S256 is challenge
 * (compared in constant time). */
int wx_oidc_pkce_ok(const char *verifier, const char *challenge);
/* at_hash / c_hash: the left half of SHA-256, base64url (23 chars + NUL). */
void wx_oidc_half_hash(const char *value, char out[24]);

#endif
