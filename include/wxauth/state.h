/*
 * wxauth/state.h — sealed OAuth state that fits WeChat's rule ([A-Za-z0-9], at most 128 bytes)
 * and carries, under an AEAD key, a one-time nonce, an expiry, the return path and optionally a
 * browser binding. It verifies without cookies (WeChat's browser often drops them), and keys
 * rotate: several keys open, the first one seals.
 *
 * Layout before encoding: key id (1, authenticated) | 96-bit random nonce | ciphertext of
 * { flags (1) | expiry (4, Unix seconds) | binding (8, optional) | return path } | tag (16).
 * Encoding: 8-byte chunks as 11 base62 characters (a shorter tail chunk as fewer).
 */
#ifndef WXAUTH_STATE_H
#define WXAUTH_STATE_H

#include <stdint.h>
#include <wxauth/base.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WX_STATE_KEY_LEN   32
#define WX_STATE_MAX_KEYS  8
#define WX_STATE_NONCE_LEN 12
/* Longest return path a state can carry (with a browser binding: 8 bytes less). */
#define WX_STATE_MAX_PATH 59

struct wx_state_key {
    uint8_t id; /* carried in the clear so the right key is tried first */
    unsigned char key[WX_STATE_KEY_LEN];
};

/* Keys: keys[0] seals; all of them open. Borrowed: must outlive every call that uses them. */
struct wx_state_keys {
    const struct wx_state_key *keys;
    size_t count;
};

struct wx_state {
    unsigned char nonce[WX_STATE_NONCE_LEN]; /* one-time id: refuse a second use */
    int64_t expires;
    int has_binding;
    char return_path[WX_STATE_MAX_PATH + 1];
};

/*
 * Seals a state. return_path: a relative path ("/..." not starting "//" or "/\\", printable
 * ASCII only: no space, control character, backslash or non-ASCII byte), at most
 * WX_STATE_MAX_PATH bytes (WX_STATE_MAX_PATH - 8 with a binding), or NULL. binding: one or more
 * bytes identifying the browser (e.g. a cookie value; only a keyed hash is embedded), or
 * {NULL, 0} for none. ttl: seconds, > 0. out receives the state and a NUL. Errors: WX_ERR_LIMIT
 * (path too long), WX_ERR_INVALID (path not relative or not printable, empty binding, bad ttl or
 * time, no keys).
 */
int wx_state_seal(const struct wx_state_keys *keys, const char *return_path,
                  struct wx_slice binding, int64_t ttl, int64_t now, char out[WX_MAX_STATE + 1],
                  struct wx_state *sealed);

/*
 * Opens a state: WX_OK with *st filled; WX_ERR_SYNTAX (malformed), WX_ERR_CRYPTO (forged,
 * tampered, truncated, unknown key), WX_ERR_EXPIRED, WX_ERR_INVALID (binding required by the
 * state and missing or different). binding may be {NULL,0} (or empty) when the browser has none:
 * a state sealed without binding then opens; one sealed with a binding does not.
 */
int wx_state_open(const struct wx_state_keys *keys, struct wx_slice state, struct wx_slice binding,
                  int64_t now, struct wx_state *st);

#ifdef __cplusplus
}
#endif
#endif
