/*
 * state.c — sealed OAuth state in WeChat's alphabet. ChaCha20-Poly1305 (IETF, 96-bit random
 * nonce) under the first key; the key id is authenticated as associated data.
 */
#include <sodium.h>
#include <string.h>

#include <wxauth/state.h>

#define ABYTES  crypto_aead_chacha20poly1305_ietf_ABYTES
#define RAW_MAX 93 /* 11 chunks of 8 bytes (121 chars) + 5 bytes (7 chars) = 128 chars */

static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/* characters needed for a chunk of k bytes (k = 0..8) */
static const int chunk_chars[9] = {0, 2, 3, 5, 6, 7, 9, 10, 11};

static void enc_chunk(const unsigned char *in, int k, char *out)
{
    uint64_t v = 0;
    for (int i = 0; i < k; i++)
        v = (v << 8) | in[i];
    for (int i = chunk_chars[k] - 1; i >= 0; i--) {
        out[i] = b62[v % 62];
        v /= 62;
    }
}

static int dec_chunk(const char *in, int n, unsigned char *out, int k)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        const char *d = memchr(b62, in[i], 62);
        if (!d || !in[i])
            return -1;
        uint64_t digit = (uint64_t)(d - b62);
        if (v > (UINT64_MAX - digit) / 62)
            return -1;
        v = v * 62 + digit;
    }
    if (k < 8 && v >> (8 * k))
        return -1; /* non-canonical: more bits than k bytes hold */
    for (int i = k - 1; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
    return 0;
}

static size_t encode(const unsigned char *raw, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 8) {
        int k = (int)(len - i < 8 ? len - i : 8);
        enc_chunk(raw + i, k, out + o);
        o += (size_t)chunk_chars[k];
    }
    out[o] = '\0';
    return o;
}

/* Decodes; returns the byte length or -1. */
static int decode(struct wx_slice s, unsigned char *raw, size_t rawmax)
{
    size_t full = s.len / 11, rem = s.len % 11, len = full * 8;
    int k = 0;
    if (rem) {
        for (k = 1; k < 8 && chunk_chars[k] != (int)rem; k++)
            ;
        if (chunk_chars[k] != (int)rem)
            return -1;
        len += (size_t)k;
    }
    if (len > rawmax)
        return -1;
    for (size_t i = 0; i < full; i++)
        if (dec_chunk(s.ptr + i * 11, 11, raw + i * 8, 8))
            return -1;
    if (rem && dec_chunk(s.ptr + full * 11, (int)rem, raw + full * 8, k))
        return -1;
    return (int)len;
}

/*
 * A return path the app can redirect to without leaving its origin: "/" not followed by '/' or
 * '\\', and only printable ASCII without '\\' (browsers drop tabs and newlines from URLs, so
 * "/\t/evil" would become "//evil", and treat '\\' as '/').
 */
static int path_ok(const char *p, size_t n)
{
    if (p[0] != '/' || (n > 1 && (p[1] == '/' || p[1] == '\\')))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f || c == '\\')
            return 0;
    }
    return 1;
}

static void bind_hash(const struct wx_state_key *k, struct wx_slice binding, unsigned char out[8])
{
    crypto_generichash(out, 8, (const unsigned char *)binding.ptr, binding.len, k->key,
                       WX_STATE_KEY_LEN);
}

int wx_state_seal(const struct wx_state_keys *keys, const char *return_path,
                  struct wx_slice binding, int64_t ttl, int64_t now, char out[WX_MAX_STATE + 1],
                  struct wx_state *sealed)
{
    unsigned char plain[1 + 4 + 8 + WX_STATE_MAX_PATH], raw[RAW_MAX];
    size_t plen = 0, path_len = return_path ? strlen(return_path) : 0;
    int bound = binding.ptr != NULL;
    if (!keys || !keys->count || !keys->keys)
        return WX_ERR_INVALID;
    /* An empty binding would match every browser that has none: refuse it. */
    if (bound && !binding.len)
        return WX_ERR_INVALID;
    if (path_len && !path_ok(return_path, path_len))
        return WX_ERR_INVALID;
    if (path_len > WX_STATE_MAX_PATH - (bound ? 8 : 0))
        return WX_ERR_LIMIT;
    const struct wx_state_key *k = &keys->keys[0];
    if (ttl <= 0 || ttl > UINT32_MAX || now < 0 || now > UINT32_MAX)
        return WX_ERR_INVALID;
    int64_t exp = now + ttl;
    if (exp > UINT32_MAX)
        return WX_ERR_INVALID;
    plain[plen++] = (unsigned char)bound;
    for (int i = 3; i >= 0; i--)
        plain[plen++] = (unsigned char)((uint64_t)exp >> (8 * i));
    if (bound) {
        bind_hash(k, binding, plain + plen);
        plen += 8;
    }
    memcpy(plain + plen, return_path ? return_path : "", path_len);
    plen += path_len;
    raw[0] = k->id;
    randombytes_buf(raw + 1, WX_STATE_NONCE_LEN);
    unsigned long long clen = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(raw + 1 + WX_STATE_NONCE_LEN, &clen, plain, plen, raw,
                                              1, NULL, raw + 1, k->key);
    encode(raw, 1 + WX_STATE_NONCE_LEN + (size_t)clen, out);
    if (sealed) {
        memset(sealed, 0, sizeof(*sealed));
        memcpy(sealed->nonce, raw + 1, WX_STATE_NONCE_LEN);
        sealed->expires = exp;
        sealed->has_binding = bound;
        memcpy(sealed->return_path, return_path ? return_path : "", path_len);
    }
    sodium_memzero(plain, sizeof plain);
    return WX_OK;
}

int wx_state_open(const struct wx_state_keys *keys, struct wx_slice state, struct wx_slice binding,
                  int64_t now, struct wx_state *st)
{
    unsigned char raw[RAW_MAX], plain[RAW_MAX];
    if (!keys || !keys->count || !keys->keys || !state.ptr || state.len == 0 ||
        state.len > WX_MAX_STATE)
        return WX_ERR_SYNTAX;
    int n = decode(state, raw, sizeof raw);
    if (n < 1 + WX_STATE_NONCE_LEN + (int)ABYTES + 5)
        return WX_ERR_SYNTAX;
    const struct wx_state_key *k = NULL;
    for (size_t i = 0; i < keys->count && !k; i++)
        if (keys->keys[i].id == raw[0])
            k = &keys->keys[i];
    if (!k)
        return WX_ERR_CRYPTO;
    unsigned long long plen = 0;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(plain, &plen, NULL, raw + 1 + WX_STATE_NONCE_LEN,
                                                  (unsigned long long)n - 1 - WX_STATE_NONCE_LEN,
                                                  raw, 1, raw + 1, k->key) != 0)
        return WX_ERR_CRYPTO;
    int bound = plain[0] & 1;
    size_t head = 5 + (bound ? 8 : 0);
    if (plen < head || plain[0] > 1)
        return WX_ERR_CRYPTO;
    int64_t exp = 0;
    for (int i = 1; i <= 4; i++)
        exp = (exp << 8) | plain[i];
    memset(st, 0, sizeof(*st));
    memcpy(st->nonce, raw + 1, WX_STATE_NONCE_LEN);
    st->expires = exp;
    st->has_binding = bound;
    memcpy(st->return_path, plain + head, (size_t)plen - head);
    if (exp <= now)
        return WX_ERR_EXPIRED;
    if (bound) {
        unsigned char want[8];
        if (!binding.ptr || !binding.len)
            return WX_ERR_INVALID;
        bind_hash(k, binding, want);
        if (sodium_memcmp(want, plain + 5, 8) != 0)
            return WX_ERR_INVALID;
    }
    return WX_OK;
}
