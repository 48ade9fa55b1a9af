/*
 * cred.c — key derivation, credential minting and parsing, and per-app user identifiers.
 * Codes are 38 characters of [0-9A-Za-z] (WeChat's codes are alphanumeric); tokens are
 * "90_" + URL-safe base64, like WeChat's "83_..." tokens.
 */
#include <sodium.h>
#include <string.h>

#include "cred.h"

#define RAW_LEN  (8 + WX_CRED_SECRET) /* masked id + secret */
#define CODE_LEN 38                   /* 62^38 > 2^224 */

static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

void wx_keys_derive(struct wx_keys *k, const unsigned char master[WX_KEY_LEN])
{
    for (int i = 0; i < WX_CRED_KINDS; i++)
        crypto_kdf_derive_from_key(k->cred[i], WX_KEY_LEN, (uint64_t)i + 1, "wxcred__", master);
    crypto_kdf_derive_from_key(k->openid, WX_KEY_LEN, 1, "wxopenid", master);
    crypto_kdf_derive_from_key(k->unionid, WX_KEY_LEN, 2, "wxopenid", master);
    crypto_kdf_derive_from_key(k->secret, WX_KEY_LEN, 1, "wxsecret", master);
    crypto_kdf_derive_from_key(k->seal, WX_KEY_LEN, 1, "wxseal__", master);
}

/* One keyed hash gives both the id mask (bytes 0..7) and the stored MAC (bytes 32..63). */
static void cred_hash(const struct wx_keys *k, enum wx_cred_kind kind,
                      const unsigned char secret[WX_CRED_SECRET], uint64_t *mask,
                      unsigned char mac[WX_CRED_MAC])
{
    unsigned char h[64];
    crypto_generichash(h, sizeof h, secret, WX_CRED_SECRET, k->cred[kind], WX_KEY_LEN);
    memcpy(mask, h, 8);
    memcpy(mac, h + 32, WX_CRED_MAC);
    sodium_memzero(h, sizeof h);
}

/*
 * Secrets come from the kernel CSPRNG (randombytes_buf) in 640-byte draws kept per thread: one
 * system call per 32 credentials instead of one each. Used bytes are wiped at once.
 * The server never forks after start, so no pool is ever shared by two processes.
 */
#define POOL_LEN (32 * WX_CRED_SECRET)

void wx_cred_random(void *out, size_t n)
{
    static _Thread_local unsigned char pool[POOL_LEN];
    static _Thread_local size_t left;
    if (n > POOL_LEN) {
        randombytes_buf(out, n);
        return;
    }
    if (left < n) {
        randombytes_buf(pool, POOL_LEN);
        left = POOL_LEN;
    }
    memcpy(out, pool + POOL_LEN - left, n);
    sodium_memzero(pool + POOL_LEN - left, n);
    left -= n;
}

void wx_cred_new(const struct wx_keys *k, enum wx_cred_kind kind, struct wx_cred *c)
{
    wx_cred_random(c->secret, WX_CRED_SECRET);
    cred_hash(k, kind, c->secret, &c->mask, c->mac);
}

/*
 * The 28 raw bytes as a big-endian number in 32-bit limbs (limb 0 most significant), so that
 * base 62 conversion works on 7 limbs per digit instead of 28 bytes.
 */
#define LIMBS (RAW_LEN / 4)
_Static_assert(RAW_LEN % 4 == 0, "raw credentials are whole 32-bit limbs");

/* Base 62 is worked five digits at a time: 62^5 < 2^30 keeps every step in 64 bits. */
#define B62_5 916132832u /* 62^5 */

static void base62_encode(const unsigned char in[RAW_LEN], char out[CODE_LEN + 1])
{
    uint32_t num[LIMBS];
    for (int i = 0; i < LIMBS; i++)
        num[i] = (uint32_t)in[4 * i] << 24 | (uint32_t)in[4 * i + 1] << 16 |
                 (uint32_t)in[4 * i + 2] << 8 | in[4 * i + 3];
    for (int pos = CODE_LEN; pos > 0;) {
        int k = pos >= 5 ? 5 : pos; /* the last group (the leading digits) may be shorter */
        uint64_t rem = 0;
        for (int i = 0; i < LIMBS; i++) {
            uint64_t cur = rem << 32 | num[i];
            num[i] = (uint32_t)(cur / B62_5);
            rem = cur % B62_5;
        }
        for (int j = 0; j < k; j++) {
            out[--pos] = b62[rem % 62];
            rem /= 62;
        }
    }
    out[CODE_LEN] = '\0';
    sodium_memzero(num, sizeof num);
}

/* Digit value of a base62 character, or -1. */
static int b62_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 36;
    return -1;
}

static int base62_decode(struct wx_slice s, unsigned char out[RAW_LEN])
{
    if (s.len != CODE_LEN)
        return WX_ERR_SYNTAX;
    uint32_t num[LIMBS + 1] = {0}; /* one limb of headroom: 62^38 < 2^227 */
    for (size_t p = 0; p < CODE_LEN;) {
        uint64_t chunk = 0, mul = 1;
        for (size_t end = p + 5 < CODE_LEN ? p + 5 : CODE_LEN; p < end; p++) {
            int d = b62_digit((unsigned char)s.ptr[p]);
            if (d < 0)
                return WX_ERR_SYNTAX;
            chunk = chunk * 62 + (uint64_t)d;
            mul *= 62;
        }
        uint64_t carry = chunk;
        for (int i = LIMBS; i >= 0; i--) {
            uint64_t cur = (uint64_t)num[i] * mul + carry;
            num[i] = (uint32_t)cur;
            carry = cur >> 32;
        }
    }
    if (num[0])
        return WX_ERR_SYNTAX; /* more than 224 bits */
    for (int i = 0; i < LIMBS; i++) {
        uint32_t v = num[i + 1];
        out[4 * i] = (unsigned char)(v >> 24);
        out[4 * i + 1] = (unsigned char)(v >> 16);
        out[4 * i + 2] = (unsigned char)(v >> 8);
        out[4 * i + 3] = (unsigned char)v;
    }
    sodium_memzero(num, sizeof num);
    return WX_OK;
}

void wx_cred_format(enum wx_cred_kind kind, const struct wx_cred *c, int64_t id,
                    char out[WX_CRED_MAX])
{
    unsigned char raw[RAW_LEN];
    uint64_t masked = (uint64_t)id ^ c->mask;
    memcpy(raw, &masked, 8);
    memcpy(raw + 8, c->secret, WX_CRED_SECRET);
    if (kind == WX_CRED_CODE) {
        base62_encode(raw, out);
    } else {
        memcpy(out, "90_", 3);
        sodium_bin2base64(out + 3, WX_CRED_MAX - 3, raw, RAW_LEN,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    }
    sodium_memzero(raw, sizeof raw);
}

int wx_cred_parse(const struct wx_keys *k, enum wx_cred_kind kind, struct wx_slice s, int64_t *id,
                  unsigned char mac[WX_CRED_MAC])
{
    unsigned char raw[RAW_LEN];
    size_t n = 0;
    if (kind == WX_CRED_CODE) {
        if (base62_decode(s, raw))
            return WX_ERR_SYNTAX;
    } else {
        if (s.len != 3 + 38 || memcmp(s.ptr, "90_", 3) != 0)
            return WX_ERR_SYNTAX;
        if (sodium_base642bin(raw, RAW_LEN, s.ptr + 3, s.len - 3, NULL, &n, NULL,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
            n != RAW_LEN)
            return WX_ERR_SYNTAX;
    }
    uint64_t mask, masked;
    cred_hash(k, kind, raw + 8, &mask, mac);
    memcpy(&masked, raw, 8);
    sodium_memzero(raw, sizeof raw);
    uint64_t v = masked ^ mask;
    if (v == 0 || v > INT64_MAX)
        return WX_ERR_SYNTAX;
    *id = (int64_t)v;
    return WX_OK;
}

void wx_secret_mac(const struct wx_keys *k, struct wx_slice secret, unsigned char mac[WX_CRED_MAC])
{
    crypto_generichash(mac, WX_CRED_MAC, (const unsigned char *)secret.ptr, secret.len, k->secret,
                       WX_KEY_LEN);
}

/* H(key, label || ns || 0 || extra) truncated to outlen. */
static void ident_hash(const unsigned char key[WX_KEY_LEN], char label, const char *ns,
                       const void *extra, size_t extra_len, unsigned char *out, size_t outlen)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, WX_KEY_LEN, outlen);
    crypto_generichash_update(&st, (const unsigned char *)&label, 1);
    crypto_generichash_update(&st, (const unsigned char *)ns, strlen(ns) + 1);
    crypto_generichash_update(&st, extra, extra_len);
    crypto_generichash_final(&st, out, outlen);
}

/*
 * The 4-byte prefix depends only on the key and the namespace (the app): remembered per thread
 * for the last few, which saves one keyed hash per openid (a server serves few apps).
 */
#define PREFIX_MEMO 4

static void ident_prefix(const unsigned char key[WX_KEY_LEN], const char *ns, unsigned char out[4])
{
    static _Thread_local struct {
        unsigned char key[WX_KEY_LEN];
        char ns[64];
        unsigned char prefix[4];
    } memo[PREFIX_MEMO];
    static _Thread_local int used, next;
    size_t n = strlen(ns);
    for (int i = 0; i < used && n < sizeof memo[0].ns; i++) {
        if (!strcmp(memo[i].ns, ns) && !sodium_memcmp(memo[i].key, key, WX_KEY_LEN)) {
            memcpy(out, memo[i].prefix, 4);
            return;
        }
    }
    ident_hash(key, 'p', ns, NULL, 0, out, 4);
    if (n >= sizeof memo[0].ns)
        return;
    memcpy(memo[next].key, key, WX_KEY_LEN);
    memcpy(memo[next].ns, ns, n + 1);
    memcpy(memo[next].prefix, out, 4);
    next = (next + 1) % PREFIX_MEMO;
    if (used < PREFIX_MEMO)
        used++;
}

/* Layout of the 20 decoded bytes: namespace prefix (4) | masked user id (8) | tag (8). */
void wx_ident_make(const unsigned char key[WX_KEY_LEN], const char *ns, int64_t user_id,
                   char out[WX_OPENID_LEN + 1])
{
    unsigned char raw[20], mask[8];
    uint64_t uid = (uint64_t)user_id;
    ident_prefix(key, ns, raw);
    ident_hash(key, 't', ns, &uid, 8, raw + 12, 8);
    ident_hash(key, 'm', ns, raw + 12, 8, mask, 8);
    for (int i = 0; i < 8; i++)
        raw[4 + i] = ((const unsigned char *)&uid)[i] ^ mask[i];
    out[0] = 'o';
    sodium_bin2base64(out + 1, WX_OPENID_LEN, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int wx_ident_parse(const unsigned char key[WX_KEY_LEN], const char *ns, struct wx_slice s,
                   int64_t *user_id)
{
    unsigned char raw[20], mask[8], want[8];
    size_t n = 0;
    if (s.len != WX_OPENID_LEN || s.ptr[0] != 'o')
        return WX_ERR_SYNTAX;
    if (sodium_base642bin(raw, sizeof raw, s.ptr + 1, s.len - 1, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        n != sizeof raw)
        return WX_ERR_SYNTAX;
    ident_hash(key, 'p', ns, NULL, 0, want, 4);
    if (sodium_memcmp(want, raw, 4) != 0)
        return WX_ERR_INVALID;
    ident_hash(key, 'm', ns, raw + 12, 8, mask, 8);
    uint64_t uid;
    for (int i = 0; i < 8; i++)
        ((unsigned char *)&uid)[i] = raw[4 + i] ^ mask[i];
    ident_hash(key, 't', ns, &uid, 8, want, 8);
    if (sodium_memcmp(want, raw + 12, 8) != 0)
        return WX_ERR_INVALID;
    *user_id = (int64_t)uid;
    return WX_OK;
}
