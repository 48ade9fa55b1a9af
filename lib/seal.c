/*
 * seal.c — XChaCha20-Poly1305 sealing of small records, base64url-encoded.
 */
#include <sodium.h>
#include <string.h>

#include "seal.h"

#define NPUB crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define ABYT crypto_aead_xchacha20poly1305_ietf_ABYTES

int wx_seal(const unsigned char key[32], const char *ad, const void *plain, size_t len,
            struct wx_buf *out)
{
    unsigned char raw[NPUB + WX_SEAL_MAX_PLAIN + ABYT];
    char enc[sizeof raw * 4 / 3 + 4];
    unsigned long long clen = 0;
    if (len > WX_SEAL_MAX_PLAIN)
        return WX_ERR_LIMIT;
    randombytes_buf(raw, NPUB);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        raw + NPUB, &clen, plain, len, (const unsigned char *)ad, strlen(ad), NULL, raw, key);
    sodium_bin2base64(enc, sizeof enc, raw, NPUB + (size_t)clen,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return wx_buf_puts(out, enc);
}

int wx_unseal(const unsigned char key[32], const char *ad, struct wx_slice sealed, void *out,
              size_t outmax, size_t *outlen)
{
    unsigned char raw[NPUB + WX_SEAL_MAX_PLAIN + ABYT];
    size_t n = 0;
    unsigned long long mlen = 0;
    if (sealed.len > sizeof raw * 4 / 3 + 4)
        return WX_ERR_LIMIT;
    if (sodium_base642bin(raw, sizeof raw, sealed.ptr, sealed.len, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return WX_ERR_SYNTAX;
    if (n < NPUB + ABYT || n - NPUB - ABYT > outmax)
        return WX_ERR_CRYPTO;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, NULL, raw + NPUB, n - NPUB,
                                                   (const unsigned char *)ad, strlen(ad), raw,
                                                   key) != 0)
        return WX_ERR_CRYPTO;
    *outlen = (size_t)mlen;
    return WX_OK;
}
