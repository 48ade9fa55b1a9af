/*
 * cred.h — the server's keys and the credentials it mints: codes, access/refresh tokens,
 * basic tokens, and per-app identifiers (openid, unionid).
 *
 * A credential carries its row id (masked so credentials reveal no sequence) next to a random
 * secret of WX_CRED_SECRET bytes; the store keeps only a keyed MAC of the secret. Rows are thus
 * appended in id order and looked up by integer key (DEPENDENCIES.md: what makes SQLite fast).
 */
#ifndef WX_CRED_H
#define WX_CRED_H

#include <stdint.h>
#include <wxauth/base.h>

#define WX_KEY_LEN     32
#define WX_CRED_SECRET 20 /* 160 bits from the CSPRNG (SECURITY.md rules 2 and 3) */
#define WX_CRED_MAC    32
#define WX_CRED_MAX    48 /* longest credential string, with NUL */
#define WX_OPENID_LEN  28

enum wx_cred_kind { WX_CRED_CODE, WX_CRED_ACCESS, WX_CRED_REFRESH, WX_CRED_BASIC, WX_CRED_KINDS };

/* Keys derived from one master key (kept in the store's meta table). */
struct wx_keys {
    unsigned char cred[WX_CRED_KINDS][WX_KEY_LEN];
    unsigned char openid[WX_KEY_LEN];
    unsigned char unionid[WX_KEY_LEN];
    unsigned char secret[WX_KEY_LEN]; /* MAC of AppSecrets */
    unsigned char seal[WX_KEY_LEN];   /* AEAD for cookies and one-time form tickets */
};

void wx_keys_derive(struct wx_keys *k, const unsigned char master[WX_KEY_LEN]);

/* A fresh credential before its row exists: the secret, the MAC to store, the id mask. */
struct wx_cred {
    unsigned char secret[WX_CRED_SECRET];
    unsigned char mac[WX_CRED_MAC];
    uint64_t mask;
};

/*
 * n bytes from the kernel CSPRNG, drawn in blocks kept per thread (one system call per 640
 * bytes, the drawn bytes wiped from the block): for secrets and for random row ids alike.
 */
void wx_cred_random(void *out, size_t n);
void wx_cred_new(const struct wx_keys *k, enum wx_cred_kind kind, struct wx_cred *c);
/* Writes the credential string for row id into out (WX_CRED_MAX bytes). */
void wx_cred_format(enum wx_cred_kind kind, const struct wx_cred *c, int64_t id,
                    char out[WX_CRED_MAX]);
/*
 * Parses a credential string: on success *id is the row to fetch and mac what its stored MAC
 * must equal (compare with sodium_memcmp). WX_ERR_SYNTAX for anything malformed.
 */
int wx_cred_parse(const struct wx_keys *k, enum wx_cred_kind kind, struct wx_slice s, int64_t *id,
                  unsigned char mac[WX_CRED_MAC]);

/* MAC of an AppSecret string, as stored. */
void wx_secret_mac(const struct wx_keys *k, struct wx_slice secret, unsigned char mac[WX_CRED_MAC]);

/*
 * openid / unionid: 'o' + 27 URL-safe base64 characters, deterministic per (namespace, user),
 * reversible with the key, authenticated. The namespace is the appid (openid) or the
 * open-platform account id (unionid). The first characters are constant per namespace.
 */
void wx_ident_make(const unsigned char key[WX_KEY_LEN], const char *ns, int64_t user_id,
                   char out[WX_OPENID_LEN + 1]);
int wx_ident_parse(const unsigned char key[WX_KEY_LEN], const char *ns, struct wx_slice s,
                   int64_t *user_id);

#endif
